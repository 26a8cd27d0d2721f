//! HTTP plumbing shared by the two API clients: the reqwest client (rustls, timeouts), the
//! same-origin rule for server-sent links, and backoff delays. Knows no API's wire format.

use std::time::Duration;
use url::Url;

/// Client settings common to both APIs.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Attempts for a transient failure (5xx, network, 429), the first included.
    pub attempts: u32,
    /// First retry delay; doubled each attempt, with jitter.
    pub backoff: Duration,
    /// Longest single wait for a rate-limit reset before giving up on the request.
    pub max_rate_wait: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_rate_wait: Duration::from_secs(120),
        }
    }
}

/// The HTTP client both APIs use: rustls, timeouts, never a redirect (it could carry the
/// Authorization header elsewhere).
pub fn build_client(settings: &HttpSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("okta-telus-sync/", env!("CARGO_PKG_VERSION")))
        // Redirects could carry our Authorization header elsewhere: never follow them.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // A start-up invariant (it fails only when the TLS backend cannot start). Falling
        // back to `Client::new()` would silently drop the no-redirect rule and the timeouts.
        .expect("cannot build the HTTP client (TLS backend failed to start)")
}

/// The longest wait a server may impose (`Retry-After`, a rate-limit window or reset): a
/// header of a year, or of 2^64 seconds, must neither crash the process nor stall it for
/// good. A stored penalty beyond it is ignored.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(3600);

/// Seconds a server asked to wait, as a bounded duration.
pub fn server_wait_secs(secs: u64) -> Duration {
    Duration::from_secs(secs.min(MAX_SERVER_WAIT.as_secs()))
}

/// Waits at least this long are announced: at INFO in the log, and on a terminal when the
/// log would not show them (`sandbox`, `plan` and `schema` log only warnings).
pub const VISIBLE_WAIT: Duration = Duration::from_secs(2);

/// Says that a rate-limit wait is starting: what it waits for and until when. Short waits
/// (pacing between requests) only reach DEBUG.
pub fn announce_wait(waiting_for: &str, wait: Duration) {
    if wait < VISIBLE_WAIT {
        tracing::debug!(
            waiting_for,
            wait_ms = wait.as_millis() as u64,
            "rate-limit wait"
        );
        return;
    }
    let until = chrono::Local::now()
        + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::zero());
    let until = until.format("%H:%M:%S").to_string();
    let wait_s = wait.as_secs_f64().ceil() as u64;
    tracing::info!(waiting_for, wait_s, until = %until, "rate-limit wait");
    use std::io::IsTerminal as _;
    if !tracing::enabled!(tracing::Level::INFO) && std::io::stderr().is_terminal() {
        eprintln!("{}", wait_line(waiting_for, wait_s, &until));
    }
}

/// The terminal line for a visible wait.
pub fn wait_line(waiting_for: &str, wait_s: u64, until: &str) -> String {
    format!("waiting {wait_s} s for {waiting_for} (until {until}) ...")
}

/// The largest answer read, in bytes: a listing page of 1,000 extensions or 200 Okta users
/// is well under 2 MiB. Past it the answer is refused, so a server cannot fill memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why an answer's body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than [`MAX_BODY_BYTES`] (as declared, or as it arrived).
    TooLarge,
    /// The connection failed mid-body.
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge => write!(
                f,
                "the answer is larger than {} MiB: refused",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
            BodyError::Read(m) => f.write_str(m),
        }
    }
}

/// Reads an answer's body, at most [`MAX_BODY_BYTES`] of it.
pub async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(describe_reqwest(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Resolves a link sent by a server and accepts it only on the configured origin, so a token
/// is never sent to another host.
pub fn same_origin_link(base: &Url, link: &str) -> Result<Url, String> {
    let url = base
        .join(link)
        .map_err(|e| format!("paging link {link:?} is not a URL: {e}"))?;
    if url.origin() != base.origin() {
        return Err(format!(
            "paging link points at {} instead of the configured {}: refused",
            url.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

/// The delay before retry `attempt` (1-based): exponential with up to 50% jitter.
pub fn backoff_delay(settings: &HttpSettings, attempt: u32) -> Duration {
    let base = settings
        .backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 2000.0);
    base + jitter
}

/// How a request that got no answer failed, as both clients tell it: the time ran out (the
/// server may have done the work), no connection was made (it did not), or the exchange
/// broke off (it may have). Messages carry no URL or header (`describe_reqwest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    Timeout,
    Connect(String),
    Interrupted(String),
}

impl NoAnswer {
    pub fn of(e: &reqwest::Error) -> NoAnswer {
        if e.is_timeout() {
            NoAnswer::Timeout
        } else if e.is_connect() {
            NoAnswer::Connect(describe_reqwest(e))
        } else {
            NoAnswer::Interrupted(describe_reqwest(e))
        }
    }
}

/// The retry ladder both clients climb after a failure: whether attempt `attempt` (1-based)
/// goes again. Only a `repeatable` request with attempts left does, after the backoff, with
/// a WARN line naming the API, the endpoint and the error.
pub async fn retry_after(
    settings: &HttpSettings,
    attempt: u32,
    repeatable: bool,
    api: &str,
    endpoint: &str,
    error: &(dyn std::fmt::Display + Sync),
) -> bool {
    if !repeatable || attempt >= settings.attempts {
        return false;
    }
    tracing::warn!(api, endpoint, attempt, error = %error, "request failed, retrying");
    tokio::time::sleep(backoff_delay(settings, attempt)).await;
    true
}

/// A reqwest error without its URL (which may carry query parameters) or any header.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "response body cut short"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_on_another_host_is_refused() {
        let base = Url::parse("https://acme.okta.com").unwrap();
        assert!(same_origin_link(&base, "https://acme.okta.com/api/v1/users?after=1").is_ok());
        assert!(same_origin_link(&base, "/api/v1/users?after=1").is_ok());
        assert!(same_origin_link(&base, "https://evil.example/api/v1/users").is_err());
        assert!(same_origin_link(&base, "http://acme.okta.com/api/v1/users").is_err());
    }

    #[test]
    fn backoff_grows() {
        let s = HttpSettings::default();
        assert!(backoff_delay(&s, 3) >= Duration::from_secs(2));
        assert!(backoff_delay(&s, 1) < Duration::from_secs(1));
    }
}
