//! The TELUS (RingCentral platform) client's state: its HTTP client and base URL, the
//! credentials, the token pair held, rate-limit pacing, the custom field ids and cached
//! Company Directory pages, counters; built fresh or resumed from persisted state. The
//! session, transport, reads, writes and bulk updates are each their own file's.

use super::pacing::{Pacing, RateGroup};
use super::persist::{Persist, Restored};
use crate::config::TelusConfig;
use crate::http::{HttpSettings, build_client};
use crate::model::ExtId;
use crate::model::TokenPair;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// The longest wait a server may impose, in ms: a stored penalty beyond it is ignored.
pub(super) const MAX_WAIT_MS: i64 = crate::http::MAX_SERVER_WAIT.as_millis() as i64;

pub(super) fn epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(super) fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Requests sent and 429s received (for tests and metrics).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Waits for a rate-limit budget or penalty, and their total length in milliseconds.
    pub rate_waits: AtomicU64,
    pub rate_wait_ms: AtomicU64,
    /// Company Directory pages answered 304 Not Modified (nothing decoded).
    pub not_modified: AtomicU64,
}

pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) client_id: String,
    pub(super) client_secret: SecretString,
    pub(super) jwt: Option<SecretString>,
    pub(super) settings: HttpSettings,
    pub(super) token: tokio::sync::Mutex<Option<TokenPair>>,
    pub(super) groups: Mutex<Pacing>,
    pub(super) persist: Option<Box<dyn Persist>>,
    /// Seconds an access token lasts, as last issued (sets how early it is refreshed).
    pub(super) token_lifetime: std::sync::atomic::AtomicI64,
    /// Custom user fields seen so far: display name → id (writes send ids).
    pub(super) custom_ids: Mutex<HashMap<String, String>>,
    /// When each group last looked for a penalty another process met.
    pub(super) penalty_checked: Mutex<HashMap<RateGroup, Instant>>,
    /// Company Directory pages as last read, with their `ETag`: a 304 reuses them.
    pub(super) directory_cache: Mutex<HashMap<u64, CachedPage>>,
    pub counters: Counters,
}

/// What this tool keeps of one Company Directory entry.
pub(super) struct DirectoryEntry {
    pub(super) id: Box<str>,
    pub(super) direct_number: Option<Box<str>>,
    /// Custom field values, kept only when the mapping names custom fields.
    pub(super) custom: Box<[super::wire::CustomFieldValueDto]>,
}

/// A directory page as last read: its `ETag`, the page count it reported, its entries.
pub(super) struct CachedPage {
    pub(super) etag: String,
    pub(super) total_pages: u64,
    pub(super) custom: bool,
    pub(super) entries: Arc<[DirectoryEntry]>,
}

pub(super) const LIST_EXTENSIONS: &str = "/restapi/v1.0/account/~/extension";

impl Client {
    pub fn new(cfg: &TelusConfig, settings: HttpSettings) -> Client {
        Client {
            http: build_client(&settings),
            base: cfg.url.clone(),
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            jwt: cfg.jwt.clone(),
            settings,
            token: tokio::sync::Mutex::new(None),
            groups: Mutex::new(Pacing::default()),
            persist: None,
            token_lifetime: std::sync::atomic::AtomicI64::new(3600),
            custom_ids: Mutex::new(HashMap::new()),
            penalty_checked: Mutex::new(HashMap::new()),
            directory_cache: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    /// A client that resumes from persisted state (a session from `auth telus`, penalties
    /// still running) and persists rotated tokens and new penalties through `persist`.
    pub fn with_persistence(
        cfg: &TelusConfig,
        settings: HttpSettings,
        restored: Restored,
        persist: Box<dyn Persist>,
    ) -> Client {
        let mut client = Client::new(cfg, settings);
        client.token = tokio::sync::Mutex::new(restored.tokens);
        let now_ms = epoch_ms();
        let now = tokio::time::Instant::now();
        let mut groups = Pacing::default();
        for (group, until_ms) in restored.penalties {
            if until_ms > now_ms && until_ms - now_ms <= MAX_WAIT_MS {
                let Some(group) = RateGroup::parse(&group) else {
                    continue;
                };
                groups.penalize(
                    group,
                    now + Duration::from_millis((until_ms - now_ms) as u64),
                );
            }
        }
        client.groups = Mutex::new(groups);
        client.persist = Some(persist);
        client
    }

    /// Each group's known budget: (group, requests left, window or penalty end in ms since the
    /// epoch), for the groups whose window has not ended.
    pub fn pacing(&self) -> Vec<(&'static str, u64, i64)> {
        let now_ms = epoch_ms();
        let Ok(groups) = self.groups.lock() else {
            return Vec::new();
        };
        groups
            .live(tokio::time::Instant::now())
            .into_iter()
            .map(|(g, remaining, left)| (g.as_str(), remaining, now_ms + left.as_millis() as i64))
            .collect()
    }

    /// Merges budgets another process saved: for a group whose saved window has not ended,
    /// the state with fewer requests left wins (with its own window end).
    pub fn merge_pacing(&self, saved: &[(&str, u64, i64)]) {
        let now = tokio::time::Instant::now();
        let now_ms = epoch_ms();
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        for (group, remaining, until_ms) in saved {
            // A stored end beyond what a server may impose is not kept.
            let Some(group) = RateGroup::parse(group) else {
                continue;
            };
            if *until_ms > now_ms && *until_ms - now_ms <= MAX_WAIT_MS {
                let left = Duration::from_millis((*until_ms - now_ms) as u64);
                groups.merge(group, *remaining, left, now);
            }
        }
    }
}

/// One extension's URL. The id comes from a server, so it is one percent-encoded path
/// segment: an id such as `../../oauth/revoke` cannot aim a write at another endpoint.
pub(super) fn extension_url(base: &Url, id: &ExtId) -> Url {
    let mut url = base.clone();
    url.set_path(LIST_EXTENSIONS);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(&id.0);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telus::error::explain;

    #[test]
    fn a_hostile_extension_id_stays_one_path_segment() {
        let base = Url::parse("https://platform.ringcentral.com").unwrap();
        let url = extension_url(&base, &ExtId("../../../oauth/revoke?x=1".into()));
        assert_eq!(
            url.path(),
            "/restapi/v1.0/account/~/extension/..%2F..%2F..%2Foauth%2Frevoke%3Fx=1"
        );
        assert_eq!(url.query(), None);
        let url = extension_url(&base, &ExtId("62001".into()));
        assert_eq!(url.path(), "/restapi/v1.0/account/~/extension/62001");
    }

    #[test]
    fn design_table_explanations() {
        assert_eq!(
            explain(
                400,
                "CMN-101",
                "Parameter [contact.email] value is invalid",
                Some("contact.email")
            ),
            "The [contact.email] is invalid. Please correct the value in Okta/Active Directory."
        );
        assert_eq!(
            explain(404, "CMN-102", "Resource not found", Some("extensionId")),
            "Resource for parameter [extensionId] is not found: the value is missing in Okta/Active Directory."
        );
        assert_eq!(
            explain(400, "CMN-103", "", None),
            "JSON can not be parsed. Check the user's data in Okta/Active Directory."
        );
        assert_eq!(
            explain(503, "CMN-201", "", None),
            "Service temporarily unavailable; will retry."
        );
        assert_eq!(
            explain(503, "", "", None),
            "Service temporarily unavailable; will retry."
        );
        assert!(
            explain(
                400,
                "CMN-101",
                "Extension number is already in use",
                Some("extensionNumber")
            )
            .starts_with("Extension already in use")
        );
    }
}
