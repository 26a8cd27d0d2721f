//! The Okta Management API client: SSWS or OAuth 2.0 (a service app's private_key_jwt) auth,
//! `Link`-header paging, partial profile updates, the profile schema, rate-limit buckets
//! and typed errors. Returns `model` types; never decides, never stores.

use super::wire::{ErrorDto, ListItemDto, SchemaDto, UserDto, next_link, profile_text};
use crate::config::{OktaAuth, OktaConfig, OktaScope};
use crate::http::{HttpSettings, build_client, describe_reqwest, same_origin_link};
use crate::model::{OktaId, OktaMaster, OktaSchemaAttr, OktaStatus, OktaUser};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Users per page: Okta's maximum for `/api/v1/users`.
pub const PAGE_LIMIT: u32 = 200;

/// Okta's error code for a write to an attribute mastered elsewhere (for this user, or for
/// every user).
pub const REFUSED_MASTERED: &str = "E0000023";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("okta {endpoint}: {message}")]
    Network { endpoint: String, message: String },
    /// No answer in time: the request may or may not have been processed.
    #[error("okta {endpoint}: timed out")]
    Timeout { endpoint: String },
    /// The connection failed after the request was sent (reset, body cut short): the
    /// request may or may not have been processed.
    #[error("okta {endpoint}: connection lost after sending: {message}")]
    Interrupted { endpoint: String, message: String },
    #[error("okta {endpoint}: HTTP {status} {code}: {summary}")]
    Api {
        endpoint: String,
        status: u16,
        code: String,
        summary: String,
        /// `errorCauses[].errorSummary`, each `attribute: what is wrong` for a profile.
        causes: Vec<String>,
    },
    #[error("okta {endpoint}: rate limit still exhausted after waiting (E0000047)")]
    RateLimited { endpoint: String },
    #[error("okta {endpoint}: unreadable response: {message}")]
    Decode { endpoint: String, message: String },
    #[error("okta {endpoint}: {message}")]
    Paging { endpoint: String, message: String },
}

impl Error {
    /// A request that got no answer, as this API's error.
    pub fn no_answer(endpoint: &str, failure: crate::http::NoAnswer) -> Error {
        let endpoint = endpoint.to_string();
        match failure {
            crate::http::NoAnswer::Timeout => Error::Timeout { endpoint },
            crate::http::NoAnswer::Connect(message) => Error::Network { endpoint, message },
            crate::http::NoAnswer::Interrupted(message) => Error::Interrupted { endpoint, message },
        }
    }

    /// For a write: whether it may have been processed although no readable answer came
    /// back (then it is settled against a fresh read, not sent again blindly).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Interrupted { .. } | Error::Decode { .. }
        )
    }

    /// The whole system is unusable this pass (bad token, unreachable, repeated 5xx).
    pub fn is_systemic(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                *status == 401 || code == "E0000011" || *status >= 500
            }
            Error::Timeout { .. } => false,
            Error::Interrupted { .. } => true,
            Error::Network { .. } | Error::RateLimited { .. } => true,
            Error::Decode { .. } | Error::Paging { .. } => true,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } if !code.is_empty() => Some(code),
            Error::RateLimited { .. } => Some("E0000047"),
            _ => None,
        }
    }

    /// What an admin should understand and do.
    pub fn explanation(&self) -> String {
        match self.code() {
            Some("E0000001") => format!(
                "Okta rejected the value as invalid: {}",
                self.summary().unwrap_or("check the attribute's format in Okta")
            ),
            Some("E0000007") => "The Okta user no longer exists.".into(),
            Some("E0000011") => {
                "The Okta API token is invalid or expired: issue a new one and update okta.token."
                    .into()
            }
            Some(REFUSED_MASTERED) => "Okta refuses this attribute for this user: it is mastered by the user's profile source (a directory or app such as Active Directory), or by an app that precedes Okta in the attribute's priority. Change the value at that source, or in Okta's Profile Editor set the attribute to \"Inherit from Okta\".".into(),
            Some("E0000047") => "Okta's rate limit was reached; the change will be retried.".into(),
            _ => self.to_string(),
        }
    }

    /// The profile attributes a 400 `E0000001` names as invalid (its `errorCauses` read
    /// `attribute: what is wrong`, as in Okta's answers).
    pub fn invalid_attributes(&self) -> Vec<&str> {
        match self {
            Error::Api {
                status: 400,
                code,
                causes,
                ..
            } if code == "E0000001" => causes
                .iter()
                .filter_map(|c| c.split_once(':').map(|(a, _)| a.trim()))
                .filter(|a| !a.is_empty() && !a.contains(' '))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn summary(&self) -> Option<&str> {
        match self {
            Error::Api { summary, .. } => Some(summary),
            _ => None,
        }
    }
}

/// What Okta last said of a bucket, and how many of our requests to it are unanswered.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// `X-Rate-Limit-Remaining` of the latest answer; `None` before any (or after a reset).
    remaining: Option<u64>,
    /// `X-Rate-Limit-Limit` of the latest answer.
    limit: Option<u64>,
    reset_epoch: u64,
    in_flight: u64,
}

impl Bucket {
    /// Requests this tool may still send in the window: what Okta says remains, less the
    /// part of the limit left to others.
    fn usable(&self, percent: u8) -> Option<u64> {
        let remaining = self.remaining?;
        let reserve = self.limit.map_or(0, |limit| {
            // In u128: a hostile `X-Rate-Limit-Limit` near 2^64 must not overflow.
            let ours = ((u128::from(limit) * u128::from(percent) / 100) as u64).max(1);
            limit.saturating_sub(ours)
        });
        Some(remaining.saturating_sub(reserve))
    }
}

/// What a request may do with a bucket's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Go: one unit of the budget is now claimed.
    Go,
    /// Budget is left, but all of it is claimed by requests not answered yet.
    WaitForAnswer,
    /// This tool's share is spent until the reset (epoch seconds).
    WaitForReset(u64),
}

impl Bucket {
    /// Claims one unit of the budget for a request, or says what to wait for.
    fn claim(&mut self, percent: u8) -> Claim {
        match self.usable(percent) {
            Some(0) => Claim::WaitForReset(self.reset_epoch),
            Some(r) if r <= self.in_flight => Claim::WaitForAnswer,
            _ => {
                self.in_flight += 1;
                Claim::Go
            }
        }
    }
}

/// A request's claim on one unit of a bucket's budget, released when its answer is noted
/// (or it fails): concurrent writers never send more than the budget Okta reported.
struct Slot<'a> {
    client: &'a Client,
    bucket: &'static str,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.client.buckets.lock()
            && let Some(state) = b.get_mut(self.bucket)
        {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        self.client.freed.notify_waiters();
    }
}

/// Requests sent, by endpoint bucket (for tests and metrics).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Waits for a rate-limit budget or penalty, and their total length in milliseconds.
    pub rate_waits: AtomicU64,
    pub rate_wait_ms: AtomicU64,
}

/// The credential in use: an API token, or an OAuth service app's signing key and the
/// Bearer token it last obtained (with its expiry, in seconds since the epoch).
enum Auth {
    Ssws(SecretString),
    OAuth {
        client_id: String,
        key: Box<jsonwebtoken::EncodingKey>,
        key_id: Option<String>,
        scopes: String,
        token: tokio::sync::Mutex<Option<(SecretString, i64)>>,
    },
}

#[derive(serde::Deserialize)]
struct OktaTokenDto {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    auth: Auth,
    scope: OktaScope,
    settings: HttpSettings,
    buckets: Mutex<HashMap<&'static str, Bucket>>,
    /// The share of each bucket's limit this client may spend, in percent.
    rate_limit_percent: u8,
    /// Woken when a request's slot is released.
    freed: tokio::sync::Notify,
    pub counters: Counters,
    /// `X-Okta-Request-Id` of this client's recent profile writes, newest last: the System
    /// Log names the same id as each event's `transaction.id`, so the event poller can tell
    /// its own writes from an admin's.
    pub(super) own_requests: Mutex<super::own::OwnRequests>,
}

pub(super) const BUCKET_LIST: &str = "users-list";
/// The most pages one listing follows: two million users at 200 a page.
const MAX_PAGES: usize = 10_000;
pub(super) const BUCKET_UPDATE: &str = "users-update";
pub(super) const BUCKET_SCHEMA: &str = "schemas";
/// `GET /api/v1/users/{id}`: Okta counts single-user reads apart from listings.
pub(super) const BUCKET_GET: &str = "users-get";
/// `GET /api/v1/logs`: a small org-wide bucket (DESIGN: 120 a minute).
pub(super) const BUCKET_LOGS: &str = "logs";
/// `/api/v1/apps/{id}/users` (an import's app assignment): a bucket of its own, 100 a minute
/// in okta-sdk-python's recording of `assignUserToApplication`.
pub(super) const BUCKET_APPS: &str = "apps";
/// The rate-limit buckets this client tracks.
pub const BUCKETS: [&str; 6] = [
    BUCKET_LIST,
    BUCKET_UPDATE,
    BUCKET_SCHEMA,
    BUCKET_GET,
    BUCKET_LOGS,
    BUCKET_APPS,
];

impl Client {
    pub fn new(cfg: &OktaConfig, settings: HttpSettings) -> Client {
        Client {
            http: build_client(&settings),
            base: cfg.url.clone(),
            auth: match &cfg.auth {
                OktaAuth::Ssws(t) => Auth::Ssws(t.clone()),
                OktaAuth::OAuth {
                    client_id,
                    private_key,
                    key_id,
                    scopes,
                } => Auth::OAuth {
                    client_id: client_id.clone(),
                    // Validated by config; an unreadable key fails the token request instead.
                    key: Box::new(
                        jsonwebtoken::EncodingKey::from_rsa_pem(
                            private_key.expose_secret().as_bytes(),
                        )
                        .unwrap_or_else(|_| jsonwebtoken::EncodingKey::from_secret(b"")),
                    ),
                    key_id: key_id.clone(),
                    scopes: scopes.clone(),
                    token: tokio::sync::Mutex::new(None),
                },
            },
            scope: cfg.scope.clone(),
            settings,
            buckets: Mutex::new(HashMap::new()),
            rate_limit_percent: cfg.rate_limit_percent,
            freed: tokio::sync::Notify::new(),
            counters: Counters::default(),
            own_requests: Mutex::new(Default::default()),
        }
    }

    fn first_page(&self, since: Option<&str>) -> Url {
        let path = match &self.scope {
            OktaScope::All => "/api/v1/users".to_string(),
            OktaScope::Group(id) => format!("/api/v1/groups/{id}/users"),
            OktaScope::App(id) => format!("/api/v1/apps/{id}/users"),
        };
        let mut url = self.base.clone();
        url.set_path(&path);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &PAGE_LIMIT.to_string());
            if matches!(self.scope, OktaScope::App(_)) {
                q.append_pair("expand", "user");
            }
            if let (Some(since), OktaScope::All) = (since, &self.scope) {
                q.append_pair("filter", &format!("lastUpdated gt \"{since}\""));
            }
        }
        url
    }

    /// Reads every in-scope user, following `Link: rel="next"`. With `since` (RFC 3339), only
    /// users updated after it (the `all` scope supports the filter; other scopes read whole).
    pub async fn fetch_users(&self, since: Option<&str>) -> Result<Vec<OktaUser>, Error> {
        let endpoint = "GET users".to_string();
        let mut url = self.first_page(since);
        let mut seen = HashSet::new();
        let mut users = Vec::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(Error::Paging {
                    endpoint,
                    message: format!("page {url} was already read: the listing loops"),
                });
            }
            // A cursor that never ends (a new `after=` every page) is not followed for ever.
            if seen.len() > MAX_PAGES {
                return Err(Error::Paging {
                    endpoint,
                    message: format!(
                        "more than {MAX_PAGES} pages ({} users at {PAGE_LIMIT} a page): the cursor does not end",
                        MAX_PAGES * PAGE_LIMIT as usize
                    ),
                });
            }
            let (body, next) = self.get_page(BUCKET_LIST, &endpoint, &url).await?;
            let decode_err = |e: serde_json::Error| Error::Decode {
                endpoint: endpoint.clone(),
                message: e.to_string(),
            };
            let app = matches!(self.scope, OktaScope::App(_));
            users.extend(decode_users(&body, app).map_err(decode_err)?);
            match next {
                Some(next) => {
                    url = same_origin_link(&self.base, &next).map_err(|message| Error::Paging {
                        endpoint: endpoint.clone(),
                        message,
                    })?
                }
                None => return Ok(users),
            }
        }
    }

    /// `/api/v1/users/{id}` on the configured org, the id one percent-encoded segment.
    pub(super) fn user_url(&self, id: &OktaId, endpoint: &str) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Paging {
                endpoint: endpoint.to_string(),
                message: "base URL cannot take a path".into(),
            })?
            .extend(["api", "v1", "users", &id.0]);
        Ok(url)
    }

    /// One page of a listing: its body and the `rel="next"` link of its `Link` headers.
    pub(super) async fn get_page(
        &self,
        bucket: &'static str,
        endpoint: &str,
        url: &Url,
    ) -> Result<(Vec<u8>, Option<String>), Error> {
        let resp = self
            .send(bucket, endpoint, || self.http.get(url.clone()))
            .await?;
        let links: Vec<String> = resp
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = read_body(resp, endpoint).await?;
        Ok((body, next_link(links.iter().map(String::as_str))))
    }

    /// Each bucket's known state whose window has not reset: (bucket, remaining, limit,
    /// reset in seconds since the epoch), for the next process on the store.
    pub fn pacing(&self) -> Vec<(&'static str, u64, u64, u64)> {
        let now = now_epoch();
        let b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        b.iter()
            .filter(|(_, s)| s.reset_epoch > now)
            .filter_map(|(name, s)| Some((*name, s.remaining?, s.limit?, s.reset_epoch)))
            .collect()
    }

    /// Merges bucket states another process saved: for a window that has not reset, the
    /// fewer requests left win.
    pub fn merge_pacing(&self, saved: &[(&str, u64, u64, u64)]) {
        let now = now_epoch();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for (name, remaining, limit, reset) in saved {
            let Some(name) = BUCKETS.iter().find(|n| *n == name) else {
                continue;
            };
            // A reset in the past, or beyond what a server may impose, is not kept.
            if *reset <= now || *reset > now + crate::http::MAX_SERVER_WAIT.as_secs() {
                continue;
            }
            let state = b.entry(name).or_default();
            if state.reset_epoch < *reset || state.remaining.is_none() {
                state.remaining = Some(*remaining);
                state.limit = Some(*limit);
                state.reset_epoch = *reset;
            } else if state.reset_epoch == *reset {
                state.remaining = state.remaining.map(|r| r.min(*remaining));
            }
        }
    }

    /// The user profile schema: base and custom attributes with type, mutability and master.
    pub async fn fetch_schema(&self) -> Result<Vec<OktaSchemaAttr>, Error> {
        let endpoint = "GET meta/schemas/user/default".to_string();
        let mut url = self.base.clone();
        url.set_path("/api/v1/meta/schemas/user/default");
        let resp = self
            .send(BUCKET_SCHEMA, &endpoint, || self.http.get(url.clone()))
            .await?;
        let body = read_body(resp, &endpoint).await?;
        let dto: SchemaDto = serde_json::from_slice(&body).map_err(|e| Error::Decode {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        for (custom, group) in [
            (false, dto.definitions.base),
            (true, dto.definitions.custom),
        ] {
            for (name, p) in group.properties {
                let master = match p.master.as_ref().and_then(|m| m.kind.as_deref()) {
                    Some("PROFILE_MASTER") => OktaMaster::ProfileMaster,
                    Some("OVERRIDE") => OktaMaster::Override {
                        first: p
                            .master
                            .as_ref()
                            .and_then(|m| m.priority.first())
                            .and_then(|f| f.kind.clone()),
                        priority: p
                            .master
                            .as_ref()
                            .map(|m| {
                                m.priority
                                    .iter()
                                    .map(|e| (e.kind.clone().unwrap_or_default(), e.value.clone()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    },
                    _ => OktaMaster::Okta,
                };
                out.push(OktaSchemaAttr {
                    title: p.title.unwrap_or_else(|| name.clone()),
                    name,
                    kind: p.kind.unwrap_or_else(|| "string".into()),
                    custom,
                    mutability: p.mutability.unwrap_or_else(|| "READ_WRITE".into()),
                    master,
                });
            }
        }
        Ok(out)
    }

    /// `POST /api/v1/users/{id}` with only the given attributes (`None` clears one).
    pub async fn update_profile(
        &self,
        id: &OktaId,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<OktaUser, Error> {
        let endpoint = format!("POST users/{id}");
        let url = self.user_url(id, &endpoint)?;
        let body = serde_json::json!({ "profile": changes });
        let resp = self
            .send(BUCKET_UPDATE, &endpoint, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        self.remember_own_request(&resp);
        let bytes = read_body(resp, &endpoint).await?;
        let dto: UserDto = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        Ok(to_model(dto))
    }

    /// The Authorization header value: `SSWS <token>`, or `Bearer <token>` from the client
    /// credentials grant (obtained again shortly before it expires, or when `force`).
    async fn authorization(&self, force: bool) -> Result<String, Error> {
        let Auth::OAuth {
            client_id,
            key,
            key_id,
            scopes,
            token,
        } = &self.auth
        else {
            let Auth::Ssws(t) = &self.auth else {
                unreachable!("two variants")
            };
            return Ok(format!("SSWS {}", t.expose_secret()));
        };
        let mut guard = token.lock().await;
        let now = now_epoch() as i64;
        if !force
            && let Some((t, exp)) = guard.as_ref()
            && *exp > now + 120
        {
            return Ok(format!("Bearer {}", t.expose_secret()));
        }
        let endpoint = "POST oauth2/v1/token";
        let mut url = self.base.clone();
        url.set_path("/oauth2/v1/token");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = key_id.clone();
        let jti: [u8; 16] = rand::random();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": url.as_str(),
            "iat": now,
            "exp": now + 300,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        let assertion = jsonwebtoken::encode(&header, &claims, key).map_err(|e| Error::Api {
            endpoint: endpoint.into(),
            status: 0,
            code: "E0000004".into(),
            summary: format!("cannot sign the client assertion with okta.oauth.private_key: {e}"),
            causes: Vec::new(),
        })?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scopes.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| Error::Network {
                endpoint: endpoint.into(),
                message: describe_reqwest(&e),
            })?;
        let status = resp.status();
        let body = read_body(resp, endpoint).await?;
        if !status.is_success() {
            #[derive(serde::Deserialize, Default)]
            struct OAuthErr {
                #[serde(default)]
                error: String,
                #[serde(default)]
                error_description: String,
            }
            let e: OAuthErr = serde_json::from_slice(&body).unwrap_or_default();
            return Err(Error::Api {
                endpoint: endpoint.into(),
                status: 401,
                code: "E0000011".into(),
                summary: format!("OAuth token refused: {} {}", e.error, e.error_description),
                causes: Vec::new(),
            });
        }
        let dto: OktaTokenDto = serde_json::from_slice(&body).map_err(|e| Error::Decode {
            endpoint: endpoint.into(),
            message: e.to_string(),
        })?;
        let exp = now + dto.expires_in.unwrap_or(3600);
        let value = SecretString::from(dto.access_token);
        let header = format!("Bearer {}", value.expose_secret());
        *guard = Some((value, exp));
        Ok(header)
    }

    /// Sends with auth, waits out exhausted rate-limit buckets, retries transient failures.
    pub(super) async fn send(
        &self,
        bucket: &'static str,
        endpoint: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        self.send_with(bucket, endpoint, true, build).await
    }

    /// `send`; a request that is not `repeatable` (a create) is never sent again after it
    /// may have been processed (a 5xx, a timeout, a reset): only a 429 (refused before any
    /// work) or an expired Bearer token repeats it.
    pub(super) async fn send_with(
        &self,
        bucket: &'static str,
        endpoint: &str,
        repeatable: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            let _slot = self.wait_for_bucket(bucket, endpoint).await?;
            let auth = self.authorization(false).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = build()
                .header(reqwest::header::AUTHORIZATION, auth)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = Error::no_answer(endpoint, crate::http::NoAnswer::of(&e));
                    if crate::http::retry_after(
                        &self.settings,
                        attempt,
                        repeatable,
                        "okta",
                        endpoint,
                        &err,
                    )
                    .await
                    {
                        continue;
                    }
                    return Err(err);
                }
            };
            self.note_rate_headers(bucket, &resp);
            let status = resp.status();
            // Wire detail without headers (they carry the credentials) or bodies.
            tracing::trace!(endpoint, attempt, status = status.as_u16(), "response");
            if status.is_success() {
                return Ok(resp);
            }
            if status.as_u16() == 401 && matches!(self.auth, Auth::OAuth { .. }) && !reauthorized {
                // The Bearer token was revoked or expired early: obtain a new one, once.
                reauthorized = true;
                attempt -= 1;
                self.authorization(true).await?;
                continue;
            }
            if status.as_u16() == 429 {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                if attempt < self.settings.attempts {
                    // Wait for the bucket's reset (noted above) before the next attempt.
                    self.mark_exhausted(bucket);
                    continue;
                }
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            let bytes = crate::http::read_capped(resp).await.unwrap_or_default();
            let err = api_error(endpoint, status.as_u16(), &bytes);
            if status.is_server_error()
                && crate::http::retry_after(
                    &self.settings,
                    attempt,
                    repeatable,
                    "okta",
                    endpoint,
                    &err,
                )
                .await
            {
                continue;
            }
            return Err(err);
        }
    }

    fn note_rate_headers(&self, bucket: &'static str, resp: &reqwest::Response) {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(remaining), Some(reset_epoch)) = (
            header("x-rate-limit-remaining"),
            header("x-rate-limit-reset"),
        ) && let Ok(mut b) = self.buckets.lock()
        {
            let state = b.entry(bucket).or_default();
            state.remaining = Some(remaining);
            state.limit = header("x-rate-limit-limit");
            state.reset_epoch = reset_epoch;
        }
    }

    fn mark_exhausted(&self, bucket: &'static str) {
        if let Ok(mut b) = self.buckets.lock() {
            let entry = b.entry(bucket).or_insert(Bucket {
                remaining: Some(0),
                limit: None,
                reset_epoch: now_epoch() + 1,
                in_flight: 0,
            });
            entry.remaining = Some(0);
        }
    }

    /// Claims one unit of the bucket's budget: at once while the budget Okta last reported
    /// exceeds the requests still unanswered; after one of those is answered when it does
    /// not; after the bucket's reset when it is spent. Refuses waits longer than allowed.
    async fn wait_for_bucket(
        &self,
        bucket: &'static str,
        endpoint: &str,
    ) -> Result<Slot<'_>, Error> {
        loop {
            // Created before the check, so a release between the check and the wait is seen.
            let freed = self.freed.notified();
            let wait_for = {
                let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
                match b.entry(bucket).or_default().claim(self.rate_limit_percent) {
                    Claim::Go => None,
                    Claim::WaitForAnswer => Some(None),
                    Claim::WaitForReset(epoch) => Some(Some(epoch)),
                }
            };
            let reset_epoch = match wait_for {
                None => {
                    return Ok(Slot {
                        client: self,
                        bucket,
                    });
                }
                Some(None) => {
                    freed.await;
                    continue;
                }
                Some(Some(reset)) => reset,
            };
            // Until the reset (whole seconds since the epoch, by Okta's clock) and a margin for
            // the two clocks' difference; a host clock that is further off costs a 429, after
            // which the client waits for the reset again.
            let wait = reset_wait(reset_epoch, now_epoch_ms());
            if wait > self.settings.max_rate_wait {
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            crate::http::announce_wait(
                &format!(
                    "the Okta rate-limit reset ({endpoint}; this tool's {}% share is spent)",
                    self.rate_limit_percent
                ),
                wait,
            );
            self.counters.rate_waits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .rate_wait_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            if let Ok(mut b) = self.buckets.lock()
                && let Some(state) = b.get_mut(bucket)
                && state.reset_epoch == reset_epoch
            {
                // A new window: its budget is learnt from the next answer.
                state.remaining = None;
            }
        }
    }
}

/// How long past a bucket's reset the next request waits.
const RESET_MARGIN_MS: u64 = 100;

/// The wait until a bucket's reset (whole seconds since the epoch, by Okta's clock) plus a
/// margin for the two clocks' difference (a host clock further off costs a 429, after which
/// the client waits for the reset again); never longer than a server may impose, whatever
/// the header says.
fn reset_wait(reset_epoch: u64, now_ms: u64) -> Duration {
    let ms = reset_epoch
        .saturating_mul(1000)
        .saturating_sub(now_ms)
        .saturating_add(RESET_MARGIN_MS);
    Duration::from_millis(ms).min(crate::http::MAX_SERVER_WAIT)
}

fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An error answer as `Error::Api`: Okta's code, its summary with the causes, and the
/// `errorId` an admin quotes to Okta support.
fn api_error(endpoint: &str, status: u16, bytes: &[u8]) -> Error {
    let dto: ErrorDto = serde_json::from_slice(bytes).unwrap_or_default();
    let mut summary = dto.error_summary;
    let causes: Vec<String> = dto
        .error_causes
        .into_iter()
        .map(|c| c.error_summary)
        .filter(|s| !s.is_empty())
        .collect();
    if !causes.is_empty() {
        summary = format!("{summary} ({})", causes.join("; "));
    }
    let causes_kept = causes;
    if !dto.error_id.is_empty() {
        summary = format!("{summary} [errorId {}]", dto.error_id);
    }
    Error::Api {
        endpoint: endpoint.to_string(),
        status,
        code: dto.error_code,
        summary,
        causes: causes_kept,
    }
}

pub(super) async fn read_body(resp: reqwest::Response, endpoint: &str) -> Result<Vec<u8>, Error> {
    match crate::http::read_capped(resp).await {
        Ok(b) => Ok(b),
        Err(crate::http::BodyError::TooLarge) => Err(Error::Decode {
            endpoint: endpoint.to_string(),
            message: crate::http::BodyError::TooLarge.to_string(),
        }),
        Err(crate::http::BodyError::Read(message)) => Err(Error::Interrupted {
            endpoint: endpoint.to_string(),
            message,
        }),
    }
}

/// Decodes one page of users (`/users`, `/groups/{id}/users`, or with `app` the
/// `_embedded.user` of `/apps/{id}/users?expand=user`). Public for the fuzz targets.
pub fn decode_users(body: &[u8], app: bool) -> Result<Vec<OktaUser>, serde_json::Error> {
    if app {
        // App users: the assignment carries the app's own profile, never to be taken for the
        // Okta profile; the Okta user is embedded (`expand=user`) or the page is refused.
        let items: Vec<ListItemDto> = serde_json::from_slice(body)?;
        let mut users = Vec::with_capacity(items.len());
        for item in items {
            let Some(user) = item.embedded.and_then(|e| e.user) else {
                let id = item.user.get("id").and_then(|v| v.as_str()).unwrap_or("?");
                return Err(serde::de::Error::custom(format!(
                    "app user {id} came without _embedded.user (the expand=user the request asked for)"
                )));
            };
            users.push(to_model(serde_json::from_value(user)?));
        }
        Ok(users)
    } else {
        // Users decode straight into their DTOs: no intermediate JSON tree.
        let items: Vec<UserDto> = serde_json::from_slice(body)?;
        Ok(items.into_iter().map(to_model).collect())
    }
}

pub(super) fn to_model(dto: UserDto) -> OktaUser {
    OktaUser {
        id: OktaId(dto.id),
        status: OktaStatus::parse(&dto.status),
        last_updated: dto.last_updated,
        provider: dto
            .credentials
            .and_then(|c| c.provider)
            .and_then(|p| p.kind),
        profile: dto
            .profile
            .iter()
            .filter_map(|(k, v)| profile_text(v).map(|t| (k.clone(), t)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reset header of any size neither overflows nor stalls the client past the cap.
    #[test]
    fn a_reset_far_away_waits_at_most_the_cap() {
        let now_ms = 1_700_000_000_000;
        assert_eq!(reset_wait(u64::MAX, now_ms), crate::http::MAX_SERVER_WAIT);
        assert_eq!(
            reset_wait(1_700_000_002, now_ms),
            Duration::from_millis(2_100)
        );
        assert_eq!(
            reset_wait(0, now_ms),
            Duration::from_millis(RESET_MARGIN_MS)
        );
    }

    /// The bucket's rules, plainly: this tool spends its share of what Okta reports, counts
    /// requests not answered yet, and waits for the reset once the share is spent.
    #[test]
    fn a_bucket_claims_only_its_share_and_counts_unanswered_requests() {
        let mut b = Bucket {
            remaining: Some(53),
            limit: Some(100),
            reset_epoch: 1_700_000_060,
            in_flight: 0,
        };
        // 50 % of 100: 50 are left to others, so 3 of the 53 remaining are ours.
        assert_eq!(b.usable(50), Some(3));
        assert_eq!(b.claim(50), Claim::Go);
        assert_eq!(b.claim(50), Claim::Go);
        assert_eq!(b.claim(50), Claim::Go);
        assert_eq!(b.claim(50), Claim::WaitForAnswer, "3 ours, 3 in flight");
        b.in_flight = 0;
        b.remaining = Some(50);
        assert_eq!(b.claim(50), Claim::WaitForReset(1_700_000_060));
        assert_eq!(b.usable(100), Some(50));
        // A limit header near 2^64 neither overflows nor panics.
        let huge = Bucket {
            remaining: Some(u64::MAX),
            limit: Some(u64::MAX),
            reset_epoch: 0,
            in_flight: 0,
        };
        assert!(huge.usable(50).is_some());
        // Before any answer the budget is unknown: requests go to learn it.
        let mut fresh = Bucket::default();
        assert_eq!(fresh.claim(50), Claim::Go);
    }
}
