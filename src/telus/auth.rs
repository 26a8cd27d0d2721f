//! TELUS OAuth: the token pair this tool holds, how it is persisted, and the pieces of the
//! authorization-code flow with PKCE (`auth telus`).

use crate::model::TokenPair;
use base64::Engine as _;
use secrecy::SecretString;
use sha2::Digest as _;
use url::Url;

/// Where the client keeps what must survive a restart: the rotated token pair (written
/// before the new access token is used, since the old refresh token is spent) and rate-limit
/// penalties still running. Implemented over the store by the daemon.
pub trait Persist: Send + Sync {
    fn save_tokens(&self, tokens: &TokenPair) -> Result<(), String>;
    fn save_penalty(&self, group: &str, until_epoch_ms: i64) -> Result<(), String>;
    /// The pair as stored now: another process (the daemon, an admin's command) may have
    /// rotated it since this one loaded it.
    fn load_tokens(&self) -> Result<Option<TokenPair>, String>;
    /// Takes the lock that serializes token refreshes across processes, if it is free. The
    /// lock is held until the returned guard is dropped.
    fn try_lock_refresh(&self) -> Result<Option<Box<dyn Send>>, String>;
    /// A penalty another process on the store met (its end, ms since the epoch).
    fn load_penalty(&self, group: &str) -> Result<Option<i64>, String>;
}

/// State restored at start-up.
#[derive(Debug, Default, Clone)]
pub struct Restored {
    pub tokens: Option<TokenPair>,
    /// Rate-limit group → penalty end (ms since the epoch).
    pub penalties: Vec<(String, i64)>,
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    for chunk in buf.chunks_mut(32) {
        let r: [u8; 32] = rand::random();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_urlsafe(48);
        Pkce {
            challenge: challenge_for(&verifier),
            verifier: SecretString::from(verifier),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge_for(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A random `state` value for the authorization request.
pub fn new_state() -> String {
    random_urlsafe(16)
}

/// The URL the admin opens to authorize this tool (with `brand_id` for TELUS).
pub fn authorize_url(
    base: &Url,
    client_id: &str,
    brand_id: &str,
    redirect_uri: &Url,
    state: &str,
    pkce: &Pkce,
) -> Url {
    let mut url = base.clone();
    url.set_path("/restapi/oauth/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri.as_str())
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("brand_id", brand_id);
    url
}

/// Reads the authorization code from the redirect the browser landed on, checking `state`.
/// Takes what the admin pastes (a full URL, or a bare query) or what the loopback listener
/// received (a path with its query, `/callback?code=…&state=…`).
pub fn code_from_redirect(redirect: &str, expected_state: &str) -> Result<String, String> {
    let redirect = redirect.trim();
    let query = match Url::parse(redirect) {
        Ok(u) => u.query().unwrap_or("").to_string(),
        // Not a whole URL: whatever follows the first `?`, or the whole text when none does.
        Err(_) => match redirect.split_once('?') {
            Some((_, q)) => q.to_string(),
            None => redirect.to_string(),
        },
    };
    let pairs: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    if let Some(err) = pairs.get("error") {
        let desc = pairs.get("error_description").cloned().unwrap_or_default();
        return Err(format!("TELUS refused the authorization: {err} {desc}"));
    }
    if pairs.get("state").map(String::as_str) != Some(expected_state) {
        return Err(
            "the redirect's state does not match this request: start `auth telus` again".into(),
        );
    }
    pairs
        .get("code")
        .cloned()
        .ok_or_else(|| "the redirect carries no authorization code".into())
}

/// The loopback listener the browser is redirected to, bound before the authorize URL is
/// shown so that the browser never finds the port closed. Served by axum: only a GET on the
/// redirect path ends the wait; anything else is a 404.
pub struct RedirectListener {
    listener: tokio::net::TcpListener,
    path: String,
}

impl RedirectListener {
    pub async fn bind(redirect_uri: &Url) -> Result<RedirectListener, String> {
        let host = redirect_uri.host_str().unwrap_or("127.0.0.1");
        let port = redirect_uri.port_or_known_default().unwrap_or(80);
        let listener = tokio::net::TcpListener::bind((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port} for the redirect: {e}"))?;
        let path = match redirect_uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Ok(RedirectListener { listener, path })
    }

    /// Waits for the browser, answers it with a short page, and returns the request target
    /// it came to (the redirect path with its query).
    pub async fn wait(self, timeout: std::time::Duration) -> Result<String, String> {
        use axum::extract::{OriginalUri, State};
        async fn landed(
            State(tx): State<tokio::sync::mpsc::Sender<String>>,
            OriginalUri(uri): OriginalUri,
        ) -> &'static str {
            let target = uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let _ = tx.try_send(target);
            "okta-telus-sync received the authorization. You can close this window."
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
        let app = axum::Router::new()
            .route(&self.path, axum::routing::get(landed))
            .with_state(tx);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        let got = tokio::time::timeout(timeout, rx.recv()).await;
        // The page was answered before the target was handed over; now the server stops.
        let _ = stop_tx.send(());
        let _ = server.await;
        match got {
            Ok(Some(target)) => Ok(target),
            Ok(None) => Err("the redirect listener stopped unexpectedly".into()),
            Err(_) => {
                Err("no browser came back to the redirect in time: run `auth telus` again".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_base64url_sha256_of_the_verifier() {
        // Computed independently: base64.urlsafe_b64encode(hashlib.sha256(v).digest()) in Python.
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mJ92K9GOz0ywB6x5tt2YMfWNQyUZpY"),
            "Sgo2EyBCSDaGZhHqxvGOWkYUlKgz93DsEcgvmz7mI1M"
        );
        let p = Pkce::new();
        use secrecy::ExposeSecret;
        assert!(p.verifier.expose_secret().len() >= 43);
    }

    #[test]
    fn code_is_read_from_the_redirect_and_state_checked() {
        let ok = code_from_redirect("http://127.0.0.1:8765/callback?code=abc&state=s1", "s1");
        assert_eq!(ok.unwrap(), "abc");
        assert!(
            code_from_redirect("http://127.0.0.1:8765/callback?code=abc&state=zz", "s1").is_err()
        );
        // What the loopback listener receives: the path and its query.
        assert_eq!(
            code_from_redirect("/callback?code=abc&state=s1", "s1").unwrap(),
            "abc"
        );
        assert_eq!(
            code_from_redirect("code=abc&state=s1", "s1").unwrap(),
            "abc"
        );
        assert!(
            code_from_redirect("?error=access_denied&state=s1", "s1")
                .unwrap_err()
                .contains("access_denied")
        );
    }

    #[test]
    fn token_pair_debug_hides_tokens() {
        let t = TokenPair {
            access_token: SecretString::from("at-secret"),
            access_expires_at: 1,
            refresh_token: Some(SecretString::from("rt-secret")),
            refresh_expires_at: Some(2),
        };
        let s = format!("{t:?}");
        assert!(!s.contains("secret"), "{s}");
    }
}
