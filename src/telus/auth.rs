//! TELUS OAuth: the session the client holds (the access token, refreshed ahead of expiry
//! under a cross-process lock, rotated pairs taken from and persisted to the store, a JWT
//! grant when a refresh is refused, the token request itself), and the pieces of the
//! authorization-code flow with PKCE (`auth telus`).

use super::client::{Client, epoch_s};
use super::error::Error;
use super::pacing::RateGroup;
use super::transport::decode;
use super::wire::{ErrorDto, TokenDto};
use crate::http::describe_reqwest;
use crate::model::TokenPair;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use url::Url;

pub use super::persist::{Persist, Restored};

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
    // The state first: an `error` on a redirect this run did not ask for is anyone's text.
    if pairs.get("state").map(String::as_str) != Some(expected_state) {
        return Err(
            "the redirect's state does not match this request: start `auth telus` again".into(),
        );
    }
    if let Some(err) = pairs.get("error") {
        let desc = pairs.get("error_description").cloned().unwrap_or_default();
        return Err(format!(
            "TELUS refused the authorization: {} {}",
            crate::model::printable(err),
            crate::model::printable(&desc)
        ));
    }
    pairs
        .get("code")
        .cloned()
        .ok_or_else(|| "the redirect carries no authorization code".into())
}

/// The loopback listener the browser is redirected to, bound before the authorize URL is
/// shown so that the browser never finds the port closed. Served by axum: only a GET on the
/// redirect path carrying this run's `state` ends the wait; another request on that path
/// gets a 400 and the wait goes on; anything else is a 404.
pub struct RedirectListener {
    listener: tokio::net::TcpListener,
    path: String,
}

/// The redirect listener's state: this run's `state`, and where the redirect goes.
#[derive(Clone)]
struct Landing {
    state: std::sync::Arc<str>,
    tx: tokio::sync::mpsc::Sender<String>,
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

    /// Waits for the browser's redirect that carries `state`, answers it with a short page,
    /// and returns the request target it came to (the redirect path with its query).
    pub async fn wait(self, state: &str, timeout: std::time::Duration) -> Result<String, String> {
        use axum::extract::{OriginalUri, State};
        use axum::http::StatusCode;
        async fn landed(
            State(landing): State<Landing>,
            OriginalUri(uri): OriginalUri,
        ) -> (StatusCode, &'static str) {
            let ours = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .any(|(k, v)| k == "state" && *v == *landing.state);
            if !ours {
                return (
                    StatusCode::BAD_REQUEST,
                    "Not the authorization okta-telus-sync is waiting for: it goes on waiting.",
                );
            }
            let target = uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let _ = landing.tx.try_send(target);
            (
                StatusCode::OK,
                "okta-telus-sync received the authorization. You can close this window.",
            )
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
        let app = axum::Router::new()
            .route(&self.path, axum::routing::get(landed))
            .with_state(Landing {
                state: state.into(),
                tx,
            });
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

/// Refresh an access token this long before it expires.
pub(super) const TOKEN_MARGIN: Duration = Duration::from_secs(120);

/// What a refused refresh leads to: a usable access token another process stored, or a new
/// pair to keep.
pub(super) enum Refreshed {
    Use(SecretString),
    New(TokenPair),
}

impl Client {
    /// A valid access token. Refreshed shortly before it expires (the rotated pair persisted
    /// before use), or fetched with the jwt-bearer grant; `force` after a 401.
    ///
    /// The pair is shared with every other process on the same store (the daemon, an admin's
    /// `plan` or `sync`): a refresh is taken under a cross-process lock, after re-reading the
    /// stored pair, which another process may have rotated already. A refused refresh reads
    /// the store again, then falls back to a new JWT grant when a JWT is configured.
    pub(super) async fn access_token(&self, force: bool) -> Result<SecretString, Error> {
        let mut guard = self.token.lock().await;
        let now = epoch_s();
        let margin = self.refresh_margin();
        let usable = |t: &TokenPair| t.access_expires_at > epoch_s() + margin;
        if !force
            && let Some(t) = guard.as_ref()
            && usable(t)
        {
            return Ok(t.access_token.clone());
        }
        let _refresh_lock = self.lock_refresh().await?;
        // Another process may have rotated the pair since this one loaded it: take the
        // stored one when it is newer (a token that just drew a 401 is not newer).
        if let Some(stored) = self.stored_pair() {
            let newer = guard
                .as_ref()
                .is_none_or(|held| !held.same_access(&stored) || !held.same_refresh(&stored));
            if newer {
                tracing::debug!("telus tokens rotated by another process: taken from the store");
                let fresh =
                    usable(&stored) && guard.as_ref().is_none_or(|held| !held.same_access(&stored));
                *guard = Some(stored);
                if fresh {
                    return Ok(self.keep(&mut guard));
                }
            }
        }
        let refresh = guard.as_ref().and_then(|t| {
            let alive = t.refresh_expires_at.is_none_or(|e| e > now);
            t.refresh_token.clone().filter(|_| alive)
        });
        let pair = match refresh {
            Some(rt) => match self.refresh_grant(&rt).await {
                Ok(pair) => pair,
                Err(Error::Auth {
                    status,
                    code,
                    message,
                }) if status == 400 || status == 401 => {
                    match self
                        .after_refused_refresh(&mut guard, &rt, (status, code, message))
                        .await?
                    {
                        Refreshed::Use(token) => return Ok(token),
                        Refreshed::New(pair) => pair,
                    }
                }
                Err(e) => return Err(e),
            },
            None => match &self.jwt {
                Some(jwt) => self.jwt_grant(jwt).await?,
                None => {
                    return Err(Error::Auth {
                        status: 0,
                        code: String::new(),
                        message:
                            "no TELUS session: set telus.jwt, or run `okta-telus-sync auth telus`"
                                .into(),
                    });
                }
            },
        };
        // Whether the session can lapse is said once per pass, against the schedule
        // (`telus::session::assess`), not at each refresh.
        *guard = Some(pair);
        Ok(self.keep(&mut guard))
    }

    /// A refresh was refused (`status`, `code`, `message`): perhaps another process spent
    /// the token a moment ago and stored its successor; else a JWT signs in anew; else the
    /// session is over.
    pub(super) async fn after_refused_refresh(
        &self,
        guard: &mut Option<TokenPair>,
        rt: &SecretString,
        (status, code, message): (u16, String, String),
    ) -> Result<Refreshed, Error> {
        let margin = self.refresh_margin();
        let usable = |t: &TokenPair| t.access_expires_at > epoch_s() + margin;
        // Refused: perhaps another process spent it a moment ago.
        let rotated = self
            .stored_pair()
            .filter(|stored| guard.as_ref().is_none_or(|held| !held.same_refresh(stored)));
        Ok(match (rotated, &self.jwt) {
            (Some(stored), _) if usable(&stored) => {
                tracing::info!(
                    "telus refresh token was spent by another process; using the pair it stored"
                );
                *guard = Some(stored);
                return Ok(Refreshed::Use(self.keep(guard)));
            }
            (Some(stored), _) if stored.refresh_token.is_some() => {
                let rt = stored.refresh_token.clone().unwrap_or_else(|| rt.clone());
                *guard = Some(stored);
                Refreshed::New(self.refresh_grant(&rt).await?)
            }
            (_, Some(jwt)) => {
                tracing::warn!(code = %code, "telus refresh token refused; signing in again with the JWT credential");
                Refreshed::New(self.jwt_grant(jwt).await?)
            }
            (_, None) => {
                return Err(Error::Auth {
                    status,
                    code,
                    message: format!(
                        "{message}: the TELUS session was revoked or expired; run `okta-telus-sync auth telus`"
                    ),
                });
            }
        })
    }

    /// How long before expiry a token is refreshed: two minutes, or a quarter of a short
    /// token's life.
    pub(super) fn refresh_margin(&self) -> i64 {
        let lifetime = self.token_lifetime.load(Ordering::Relaxed);
        (TOKEN_MARGIN.as_secs() as i64).min(lifetime / 4)
    }

    /// The held pair's access token, noting its lifetime (it sets how early it is refreshed).
    pub(super) fn keep(&self, guard: &mut Option<TokenPair>) -> SecretString {
        match guard.as_ref() {
            Some(pair) => {
                self.token_lifetime.store(
                    (pair.access_expires_at - epoch_s()).max(1),
                    Ordering::Relaxed,
                );
                pair.access_token.clone()
            }
            None => SecretString::from(String::new()),
        }
    }

    /// A refresh grant; the new pair is persisted before it is used, since the old refresh
    /// token is spent.
    pub(super) async fn refresh_grant(&self, rt: &SecretString) -> Result<TokenPair, Error> {
        let pair = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.expose_secret()),
            ])
            .await?;
        self.persist_tokens(&pair);
        Ok(pair)
    }

    /// A jwt-bearer grant. Its pair (with a refresh token) is persisted too, so that the
    /// other processes on this store use it instead of signing in again.
    pub(super) async fn jwt_grant(&self, jwt: &SecretString) -> Result<TokenPair, Error> {
        let pair = self
            .token_request(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", jwt.expose_secret()),
            ])
            .await?;
        self.persist_tokens(&pair);
        Ok(pair)
    }

    /// The stored pair, when this client persists (a store read that fails is logged).
    pub(super) fn stored_pair(&self) -> Option<TokenPair> {
        let p = self.persist.as_ref()?;
        match p.load_tokens() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the stored TELUS tokens");
                None
            }
        }
    }

    /// Waits (up to a minute) for the cross-process refresh lock; none without a store.
    pub(super) async fn lock_refresh(&self) -> Result<Option<Box<dyn Send>>, Error> {
        let Some(p) = &self.persist else {
            return Ok(None);
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match p.try_lock_refresh() {
                Ok(Some(g)) => return Ok(Some(g)),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => {
                    return Err(Error::Auth {
                        status: 0,
                        code: String::new(),
                        message:
                            "another process has held the TELUS token refresh lock for a minute"
                                .into(),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the TELUS token refresh lock; refreshing without it");
                    return Ok(None);
                }
            }
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) for a token pair, persists it
    /// and keeps it for this client.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &Url,
    ) -> Result<TokenPair, Error> {
        let pair = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri.as_str()),
                ("code_verifier", verifier.expose_secret()),
            ])
            .await?;
        self.persist_tokens(&pair);
        *self.token.lock().await = Some(pair.clone());
        Ok(pair)
    }

    /// The refresh token's expiry (seconds since the epoch), when a session is held.
    pub async fn refresh_expires_at(&self) -> Option<i64> {
        self.token
            .lock()
            .await
            .as_ref()
            .and_then(|t| t.refresh_expires_at)
    }

    /// Saves a new pair. When that fails, the pair is still used from memory (the old refresh
    /// token is already spent, so dropping the new one would lose the session), and the
    /// failure is logged as an error: a restart before the next successful save loses it.
    pub(super) fn persist_tokens(&self, pair: &TokenPair) {
        if let Some(p) = &self.persist
            && let Err(e) = p.save_tokens(pair)
        {
            tracing::error!(
                error = %e,
                "cannot save the rotated TELUS tokens: they are kept in memory only; fix the store (disk full? permissions?) before this process restarts, or run `auth telus` again after"
            );
        }
    }

    /// `POST /restapi/oauth/token` with HTTP Basic client auth.
    pub(super) async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenPair, Error> {
        let mut url = self.base.clone();
        url.set_path("/restapi/oauth/token");
        let endpoint = "POST oauth/token";
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let ticket = self.wait_for_group(RateGroup::Auth, endpoint).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = self
                .http
                .post(url.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .form(form)
                .send()
                .await;
            if let Ok(r) = &result {
                self.note_rate_headers(RateGroup::Auth, r);
            }
            drop(ticket);
            match result {
                Ok(r) => {
                    let code = r.status().as_u16();
                    // A refresh token is single-use: a token request is retried only when the
                    // server surely did not process it (429, 503), never after a timeout.
                    if (code == 429 || code == 503) && attempt < self.settings.attempts {
                        self.after_429_or_5xx(RateGroup::Auth, &r, attempt).await;
                        continue;
                    }
                    break r;
                }
                Err(e) => {
                    return Err(Error::Network {
                        endpoint: endpoint.to_string(),
                        message: describe_reqwest(&e),
                    });
                }
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let body = crate::http::read_capped(resp).await.unwrap_or_default();
            let dto: ErrorDto = serde_json::from_slice(&body).unwrap_or_default();
            let first = dto.errors.first();
            return Err(Error::Auth {
                status: status.as_u16(),
                code: first
                    .and_then(|e| e.error_code.clone())
                    .or(dto.oauth_error)
                    .unwrap_or_default(),
                message: dto
                    .oauth_description
                    .or_else(|| first.and_then(|e| e.message.clone()))
                    .unwrap_or_default(),
            });
        }
        let tok: TokenDto = decode(resp, endpoint).await?;
        let now = epoch_s();
        tracing::debug!(expires_in = tok.expires_in, "telus access token obtained");
        Ok(TokenPair {
            access_token: SecretString::from(tok.access_token),
            access_expires_at: now + tok.expires_in.unwrap_or(3600) as i64,
            refresh_token: tok.refresh_token.map(SecretString::from),
            refresh_expires_at: tok.refresh_token_expires_in.map(|s| now + s as i64),
        })
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

    /// An `error` on a redirect with another `state` is not this run's answer, and the
    /// server's text reaches the terminal with its control characters escaped.
    #[test]
    fn the_state_is_checked_before_the_error_and_server_text_is_escaped() {
        let other = code_from_redirect("?error=access_denied&state=zz", "s1").unwrap_err();
        assert!(other.contains("state does not match"), "{other}");
        let ours = code_from_redirect(
            "?error=access_denied&error_description=%1B%5B2Jgone%07&state=s1",
            "s1",
        )
        .unwrap_err();
        assert!(!ours.chars().any(|c| c.is_control()), "{ours:?}");
        assert!(ours.contains("\\u{1b}[2Jgone"), "{ours:?}");
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
