//! The TELUS (RingCentral platform) client: jwt-bearer token grant with Basic client auth,
//! extension listings and Company Directory pages (direct numbers, custom fields, 304s),
//! contact updates one by one or in bulk tasks, rate-limit groups and typed errors.
//! Returns `model` types; never decides, never stores.

use super::auth::{Persist, Restored};
use super::pacing::{Claim, Pacing};
use super::wire::{
    BulkTaskDto, CustomFieldDefDto, DIRECTORY_REF, DirectoryEntryDto, ErrorDto, ExtensionDto,
    ListDto, TokenDto, contact_body, flatten_contact,
};
use crate::config::TelusConfig;
use crate::http::{HttpSettings, backoff_delay, build_client, describe_reqwest, same_origin_link};
use crate::model::TokenPair;
use crate::model::{
    ExtId, OktaId, TELUS_DIRECT_NUMBER, TELUS_EXTENSION_NUMBER, TelusCustomField, TelusStatus,
    TelusUser,
};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// How often a group looks in the store for a penalty another process met: a store read,
/// so not before every request; a request sent in this gap restarts the other's penalty.
const SHARED_PENALTY_CHECK: Duration = Duration::from_millis(250);

/// The longest wait a server may impose, in ms: a stored penalty beyond it is ignored.
const MAX_WAIT_MS: i64 = crate::http::MAX_SERVER_WAIT.as_millis() as i64;

/// Records per page: RingCentral's maximum.
pub const PER_PAGE: u32 = 1000;

/// Refresh an access token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);

fn epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("telus {endpoint}: {message}")]
    Network { endpoint: String, message: String },
    /// No answer in time: the request may or may not have been processed.
    #[error("telus {endpoint}: timed out")]
    Timeout { endpoint: String },
    /// The connection failed after the request was sent (reset, body cut short): the
    /// request may or may not have been processed.
    #[error("telus {endpoint}: connection lost after sending: {message}")]
    Interrupted { endpoint: String, message: String },
    #[error("telus {endpoint}: HTTP {status} {code}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
        parameter: Option<String>,
    },
    /// A write that is not safe to repeat (a create) drew a 5xx: a gateway may answer so
    /// after the work was done, so its outcome is unknown until the next read.
    #[error(
        "telus {endpoint}: HTTP {status} after sending; the outcome is checked on the next read"
    )]
    Unconfirmed { endpoint: String, status: u16 },
    #[error("telus {endpoint}: request rate exceeded (CMN-301) after waiting")]
    RateLimited { endpoint: String },
    /// The request could not be built here (a custom field the account does not have): it
    /// was never sent, so it is not a server's error.
    #[error("telus {endpoint}: not sent: {message}")]
    Unsendable { endpoint: String, message: String },
    #[error("telus {endpoint}: unreadable response: {message}")]
    Decode { endpoint: String, message: String },
    #[error("telus {endpoint}: {message}")]
    Paging { endpoint: String, message: String },
    #[error("telus authentication failed: HTTP {status} {code}: {message}")]
    Auth {
        status: u16,
        code: String,
        message: String,
    },
}

impl Error {
    /// For a write: whether it may have been processed although no readable answer came
    /// back (then it is settled against a fresh read, not sent again blindly).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Interrupted { .. }
                | Error::Decode { .. }
                | Error::Unconfirmed { .. }
        )
    }

    /// The whole system is unusable this pass.
    pub fn is_systemic(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 401 || *status >= 500,
            Error::Timeout { .. } | Error::Unconfirmed { .. } | Error::Unsendable { .. } => false,
            Error::Interrupted { .. } => true,
            Error::Network { .. }
            | Error::RateLimited { .. }
            | Error::Decode { .. }
            | Error::Paging { .. }
            | Error::Auth { .. } => true,
        }
    }

    /// The account or app refuses bulk updates as such (the spec marks the endpoint
    /// `x-availability: Limited`): a 403, a 404, or a feature-unavailable code. Per-user
    /// writes are the way then.
    pub fn refuses_bulk(&self) -> bool {
        match self {
            Error::Api { status, code, .. } => {
                matches!(status, 403 | 404) || code.eq_ignore_ascii_case("FeatureNotAvailable")
            }
            _ => false,
        }
    }

    /// The record a refused bulk request names (`parameterName` `records[N]...`).
    pub fn bulk_record_index(&self) -> Option<usize> {
        let Error::Api {
            status: 400,
            parameter: Some(p),
            ..
        } = self
        else {
            return None;
        };
        let rest = p.strip_prefix("records[")?;
        rest[..rest.find(']')?].parse().ok()
    }

    /// The field a 400 names as invalid (`parameterName` such as `contact.email`, or
    /// `records[3].contact.email` in a bulk request refused for one record's value).
    pub fn invalid_field(&self) -> Option<&str> {
        match self {
            Error::Api {
                status: 400,
                parameter: Some(p),
                code,
                ..
            } if code.starts_with("CMN-1") => match p.strip_prefix("records[") {
                Some(rest) => rest.split_once("].").map(|(_, field)| field),
                None => Some(p),
            },
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } | Error::Auth { code, .. } if !code.is_empty() => Some(code),
            Error::RateLimited { .. } => Some("CMN-301"),
            _ => None,
        }
    }

    /// The admin-facing explanation (DESIGN.md's table).
    pub fn explanation(&self) -> String {
        match self {
            Error::Api {
                status,
                code,
                message,
                parameter,
                ..
            } => explain(*status, code, message, parameter.as_deref()),
            Error::RateLimited { .. } => {
                "TELUS request rate exceeded; the change will be retried.".into()
            }
            Error::Auth { .. } => "TELUS authentication failed: check telus.client_id, client_secret and jwt (or run `auth telus`).".into(),
            Error::Unsendable { message, .. } => format!(
                "Not sent to TELUS: {message}. Check the mapping row and the account's custom fields (`schema`)."
            ),
            other => other.to_string(),
        }
    }
}

/// Maps a RingCentral error to what an identity admin should read.
pub fn explain(status: u16, code: &str, message: &str, parameter: Option<&str>) -> String {
    let param = parameter.unwrap_or("value");
    let lower = message.to_ascii_lowercase();
    if lower.contains("extension") && (lower.contains("already") || lower.contains("in use")) {
        return "Extension already in use: see which extensions are free in the TELUS portal."
            .into();
    }
    match code {
        "CMN-101" => {
            format!("The [{param}] is invalid. Please correct the value in Okta/Active Directory.")
        }
        "CMN-102" => format!(
            "Resource for parameter [{param}] is not found: the value is missing in Okta/Active Directory."
        ),
        "CMN-103" => {
            "JSON can not be parsed. Check the user's data in Okta/Active Directory.".into()
        }
        "CMN-201" => "Service temporarily unavailable; will retry.".into(),
        "CMN-301" => "TELUS request rate exceeded; the change will be retried.".into(),
        _ if status == 503 => "Service temporarily unavailable; will retry.".into(),
        _ if code.starts_with("OAU-") => format!(
            "TELUS rejected the credentials ({code}): check the app's client id, secret and JWT."
        ),
        _ => format!("TELUS answered {status} {code}: {message}"),
    }
}

/// What a refused refresh leads to: a usable access token another process stored, or a new
/// pair to keep.
enum Refreshed {
    Use(SecretString),
    New(TokenPair),
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
    client_id: String,
    client_secret: SecretString,
    jwt: Option<SecretString>,
    settings: HttpSettings,
    token: tokio::sync::Mutex<Option<TokenPair>>,
    groups: Mutex<Pacing>,
    persist: Option<Box<dyn Persist>>,
    /// Seconds an access token lasts, as last issued (sets how early it is refreshed).
    token_lifetime: std::sync::atomic::AtomicI64,
    /// Custom user fields seen so far: display name → id (writes send ids).
    custom_ids: Mutex<HashMap<String, String>>,
    /// When each group last looked for a penalty another process met.
    penalty_checked: Mutex<HashMap<&'static str, Instant>>,
    /// Company Directory pages as last read, with their `ETag`: a 304 reuses them.
    directory_cache: Mutex<HashMap<u64, CachedPage>>,
    pub counters: Counters,
}

/// What this tool keeps of one Company Directory entry.
struct DirectoryEntry {
    id: Box<str>,
    direct_number: Option<Box<str>>,
    /// Custom field values, kept only when the mapping names custom fields.
    custom: Box<[super::wire::CustomFieldValueDto]>,
}

/// A directory page as last read: its `ETag`, the page count it reported, its entries.
struct CachedPage {
    etag: String,
    total_pages: u64,
    custom: bool,
    entries: Arc<[DirectoryEntry]>,
}

/// Pages read of one listing at most: a server that never ends one is not followed for ever.
const MAX_PAGES: u64 = 10_000;

const LIST_EXTENSIONS: &str = "/restapi/v1.0/account/~/extension";
const DIRECTORY_ENTRIES: &str = "/restapi/v1.0/account/~/directory/entries";
const BULK_UPDATE: &str = "/restapi/v1.0/account/~/extension-bulk-update";
/// Records one bulk update takes at most (spec: extensionBulkUpdate).
pub const BULK_MAX: usize = 500;

/// One extension's record in a bulk update.
pub struct BulkRecord {
    pub ext_id: ExtId,
    body: serde_json::Value,
}

/// A bulk update's task (spec: ExtensionBulkUpdateTaskResource).
#[derive(Debug)]
pub struct BulkTask {
    pub id: String,
    pub status: TaskStatus,
    /// Each record's outcome, once the task has run: `Ok` for `Success`, else the record's
    /// first error.
    pub results: Vec<(ExtId, Result<(), Error>)>,
    /// The task's own errors (a task that `Failed` as a whole).
    pub errors: Vec<Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Accepted,
    InProgress,
    Completed,
    Failed,
}

impl TaskStatus {
    /// Whether the task has run: only then do its results, or a read, say anything.
    pub fn finished(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

/// A task from the wire; an unknown status reads as still running (the harsher case).
fn bulk_task(dto: super::wire::BulkTaskDto, endpoint: &str) -> BulkTask {
    let status = match dto.status.as_deref() {
        Some("Completed") => TaskStatus::Completed,
        Some("Failed") => TaskStatus::Failed,
        Some("InProgress") => TaskStatus::InProgress,
        _ => TaskStatus::Accepted,
    };
    let error = |e: super::wire::ErrorItemDto| Error::Api {
        endpoint: endpoint.to_string(),
        status: 400,
        code: e.error_code.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        parameter: e.parameter_name,
    };
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    if let Some(result) = dto.result {
        for r in result.affected_items.map(|a| a.result).unwrap_or_default() {
            let Some(ext) = r.extension_id else { continue };
            let outcome = match r.status.as_deref() {
                Some("Success") => Ok(()),
                _ => Err(r
                    .errors
                    .into_iter()
                    .next()
                    .map(error)
                    .unwrap_or_else(|| Error::Api {
                        endpoint: endpoint.to_string(),
                        status: 400,
                        code: String::new(),
                        message: "the bulk update failed this record without saying why".into(),
                        parameter: None,
                    })),
            };
            results.push((ExtId(ext), outcome));
        }
        errors = result.errors.into_iter().map(error).collect();
    }
    BulkTask {
        id: dto.id,
        status,
        results,
        errors,
    }
}
/// Company Directory records per page: its maximum.
const DIRECTORY_PER_PAGE: u32 = 2000;

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
                groups.penalize(
                    &group,
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
            .map(|(g, remaining, left)| (g, remaining, now_ms + left.as_millis() as i64))
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
            if *until_ms > now_ms && *until_ms - now_ms <= MAX_WAIT_MS {
                let left = Duration::from_millis((*until_ms - now_ms) as u64);
                groups.merge(group, *remaining, left, now);
            }
        }
    }

    /// The account's custom user fields (`GET /restapi/v1.0/account/~/custom-fields`).
    pub async fn fetch_custom_fields(&self) -> Result<Vec<TelusCustomField>, Error> {
        let endpoint = "GET custom-fields";
        let mut url = self.base.clone();
        url.set_path("/restapi/v1.0/account/~/custom-fields");
        let resp = self
            .send("Light", endpoint, true, || self.http.get(url.clone()))
            .await?;
        let list: ListDto<CustomFieldDefDto> = decode(resp, endpoint).await?;
        let fields: Vec<TelusCustomField> = list
            .records
            .into_iter()
            .filter(|f| f.category.as_deref().is_none_or(|c| c == "User"))
            .filter_map(|f| {
                Some(TelusCustomField {
                    id: f.id,
                    display_name: f.display_name?,
                })
            })
            .collect();
        if let Ok(mut ids) = self.custom_ids.lock() {
            for f in &fields {
                ids.insert(f.display_name.clone(), f.id.clone());
            }
        }
        Ok(fields)
    }

    /// Reads every user extension and the Company Directory, and joins them: the directory
    /// gives each user's direct number and, with `custom_fields`, custom field values. The
    /// two listings are read side by side (both Medium: 1,000 extensions and 2,000 directory
    /// entries a page); no request is made per user, and no Heavy listing at all.
    pub async fn fetch_users_with(&self, custom_fields: bool) -> Result<Vec<TelusUser>, Error> {
        if custom_fields && self.custom_ids.lock().map(|m| m.is_empty()).unwrap_or(true) {
            self.fetch_custom_fields().await?;
        }
        let (users, directory) =
            tokio::join!(self.fetch_extensions(), self.fetch_directory(custom_fields));
        let (mut users, directory) = (users?, directory?);
        let mut listed: HashMap<&str, &DirectoryEntry> = directory
            .iter()
            .flat_map(|page| page.iter())
            .map(|e| (&*e.id, e))
            .collect();
        let mut unlisted = 0usize;
        for u in users.iter_mut() {
            // The directory lists only Enabled, Disabled and NotActivated users, and not one
            // created between the two reads: for a user it leaves out, the direct number and
            // custom fields are unknown (left alone this pass), never empty.
            let Some(entry) = listed.remove(u.id.0.as_str()) else {
                u.in_directory = false;
                unlisted += 1;
                continue;
            };
            if let Some(n) = &entry.direct_number {
                u.fields.insert(TELUS_DIRECT_NUMBER, n.to_string());
            }
            if custom_fields
                && !u
                    .fields
                    .iter()
                    .any(|(k, _)| k.starts_with(crate::model::TELUS_CUSTOM_PREFIX))
            {
                for (k, v) in self.custom_values(&entry.custom) {
                    u.fields.insert(&k, v);
                }
            }
        }
        if unlisted > 0 {
            tracing::debug!(
                unlisted,
                "users not in the Company Directory (Frozen, Unassigned or just created): their direct number and custom fields are left alone this pass"
            );
        }
        Ok(users)
    }

    /// Every Company Directory page: `GET directory/entries?showFederated=false&type=User&
    /// perPage=2000`, paged by page number up to `paging.totalPages` (the directory sends no
    /// navigation links). A page read before is asked for with `If-None-Match`; a 304
    /// reuses what that page gave then and decodes nothing.
    async fn fetch_directory(&self, custom: bool) -> Result<Vec<Arc<[DirectoryEntry]>>, Error> {
        let endpoint = "GET directory/entries";
        let mut pages = Vec::new();
        let mut page = 1u64;
        loop {
            if page > MAX_PAGES {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("more than {MAX_PAGES} pages: not followed further"),
                });
            }
            let cached = self.directory_cache.lock().ok().and_then(|c| {
                c.get(&page)
                    .filter(|p| p.custom == custom)
                    .map(|p| (p.etag.clone(), p.total_pages, p.entries.clone()))
            });
            let mut url = self.base.clone();
            url.set_path(DIRECTORY_ENTRIES);
            url.query_pairs_mut()
                .append_pair("showFederated", "false")
                .append_pair("type", "User")
                .append_pair("perPage", &DIRECTORY_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let resp = self
                .send("Medium", endpoint, true, || {
                    let req = self.http.get(url.clone());
                    match &cached {
                        Some((etag, _, _)) => {
                            req.header(reqwest::header::IF_NONE_MATCH, etag.as_str())
                        }
                        None => req,
                    }
                })
                .await?;
            let (entries, total) = match (resp.status().as_u16(), cached) {
                (304, Some((_, total, entries))) => {
                    self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
                    (entries, total)
                }
                _ => self.directory_page(resp, endpoint, page, custom).await?,
            };
            let empty = entries.is_empty();
            pages.push(entries);
            if page >= total || empty {
                if let Ok(mut c) = self.directory_cache.lock() {
                    c.retain(|k, _| *k <= page);
                }
                return Ok(pages);
            }
            page += 1;
        }
    }

    /// Decodes one directory page (remembering it with its `ETag`); answers its entries and
    /// the server's page count.
    async fn directory_page(
        &self,
        resp: reqwest::Response,
        endpoint: &str,
        page: u64,
        custom: bool,
    ) -> Result<(Arc<[DirectoryEntry]>, u64), Error> {
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256)
            .map(str::to_string);
        let dto: ListDto<DirectoryEntryDto> = decode(resp, endpoint).await?;
        let total = dto.paging.as_ref().and_then(|p| p.total_pages).unwrap_or(1);
        if dto
            .paging
            .as_ref()
            .and_then(|p| p.page)
            .is_some_and(|p| p != page)
        {
            return Err(Error::Paging {
                endpoint: endpoint.to_string(),
                message: format!("asked for page {page}, was served another"),
            });
        }
        let entries: Arc<[DirectoryEntry]> = dto
            .records
            .into_iter()
            .map(|e| DirectoryEntry {
                direct_number: e.direct_number().map(Into::into),
                custom: match (custom, e.custom_fields) {
                    (true, Some(values)) => values.into_iter().map(Into::into).collect(),
                    _ => Box::default(),
                },
                id: e.id.into(),
            })
            .collect();
        if let Ok(mut c) = self.directory_cache.lock() {
            match etag {
                Some(etag) => {
                    c.insert(
                        page,
                        CachedPage {
                            etag,
                            total_pages: total,
                            custom,
                            entries: entries.clone(),
                        },
                    );
                }
                None => {
                    c.remove(&page);
                }
            }
        }
        Ok((entries, total))
    }

    /// `customFields` of a record as `customFields.<name>` fields, learning their ids.
    pub(super) fn custom_values(
        &self,
        fields: &[super::wire::CustomFieldValueDto],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(mut ids) = self.custom_ids.lock() else {
            return out;
        };
        for f in fields {
            let name = match &f.display_name {
                Some(n) => n.clone(),
                None => match ids.iter().find(|(_, id)| **id == f.id) {
                    Some((n, _)) => n.clone(),
                    None => continue,
                },
            };
            ids.insert(name.clone(), f.id.clone());
            out.push((
                format!("{}{name}", crate::model::TELUS_CUSTOM_PREFIX),
                crate::model::capped(f.value.clone().unwrap_or_default()),
            ));
        }
        out
    }

    /// Every user with its direct number (custom fields not read): `fetch_users_with(false)`.
    pub async fn fetch_users(&self) -> Result<Vec<TelusUser>, Error> {
        self.fetch_users_with(false).await
    }

    /// Every user extension (`GET extension?type=User`, Medium). Each page becomes users as it
    /// arrives, so no page's JSON outlives its page.
    async fn fetch_extensions(&self) -> Result<Vec<TelusUser>, Error> {
        self.fetch_all(
            LIST_EXTENSIONS,
            &[("type", "User")],
            "Medium",
            "GET extension",
            |e: ExtensionDto| {
                if e.kind.as_deref().is_some_and(|k| k != "User") {
                    return None;
                }
                let custom = self.custom_values(e.custom_fields.as_deref().unwrap_or_default());
                let mut user = to_user(e);
                for (k, v) in custom {
                    user.fields.insert(&k, v);
                }
                Some(user)
            },
        )
        .await
    }

    /// The `contact` (and `customFields`) part of a write of `changes`: the unchanged address
    /// fields come from `current` (RingCentral replaces the address whole), custom fields go by
    /// the ids learnt from the account. A custom field the account lacks is `Unsendable`.
    fn contact_request(
        &self,
        changes: &[(String, Option<String>)],
        current: Option<&TelusUser>,
        endpoint: &str,
    ) -> Result<serde_json::Value, Error> {
        let flat: Vec<(String, String)> = current
            .into_iter()
            .flat_map(|c| c.fields.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ids = self.custom_ids.lock().unwrap_or_else(|e| e.into_inner());
        contact_body(changes, &flat, &ids).map_err(|message| Error::Unsendable {
            endpoint: endpoint.to_string(),
            message,
        })
    }

    /// `PUT extension/{id}` with the changed contact fields. `current` supplies the unchanged
    /// address fields, which RingCentral needs because it replaces the address whole.
    pub async fn update_contact(
        &self,
        current: &TelusUser,
        changes: &[(String, Option<String>)],
        okta_id: Option<&OktaId>,
    ) -> Result<(), Error> {
        let endpoint = format!("PUT extension/{}", current.id);
        let url = extension_url(&self.base, &current.id);
        let mut body = self.contact_request(changes, Some(current), &endpoint)?;
        backfill_reference(&mut body, current, okta_id);
        let resp = self
            .send("Medium", &endpoint, true, || {
                self.http.put(url.clone()).json(&body)
            })
            .await?;
        // The answer is the updated extension; one that cannot be read leaves the write unconfirmed.
        let _: ExtensionDto = decode(resp, &endpoint).await?;
        Ok(())
    }

    /// `POST extension`: a new `User` extension, `Enabled`, with these contact fields; the
    /// extension number is assigned by TELUS. Returns the created user.
    pub async fn create_user(
        &self,
        changes: &[(String, Option<String>)],
        okta_id: &OktaId,
    ) -> Result<TelusUser, Error> {
        let endpoint = "POST extension";
        let mut url = self.base.clone();
        url.set_path(LIST_EXTENSIONS);
        let mut body = self.contact_request(changes, None, endpoint)?;
        body["type"] = serde_json::json!("User");
        body["status"] = serde_json::json!("Enabled");
        // The Okta id travels with the user: it settles a create whose answer was lost, and
        // links users again without the store.
        body["references"] = references(okta_id);
        let resp = self
            .send("Medium", endpoint, false, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let e: ExtensionDto = decode(resp, endpoint).await?;
        Ok(to_user(e))
    }

    /// `PUT extension/{id}` with `{"status": ...}`: `Disabled` never deletes the user.
    pub async fn set_status(
        &self,
        current: &TelusUser,
        status: &TelusStatus,
        okta_id: Option<&OktaId>,
    ) -> Result<(), Error> {
        let id = &current.id;
        let endpoint = format!("PUT extension/{id} status");
        let url = extension_url(&self.base, id);
        let mut body = serde_json::json!({ "status": status.as_str() });
        backfill_reference(&mut body, current, okta_id);
        let resp = self
            .send("Medium", &endpoint, true, || {
                self.http.put(url.clone()).json(&body)
            })
            .await?;
        let _: ExtensionDto = decode(resp, &endpoint).await?;
        Ok(())
    }

    /// One extension's record for a bulk update: its changed contact fields (the whole
    /// address when any part of it changed, as for a PUT), custom fields by id, a new status,
    /// and the Okta id reference when the record lacks it.
    pub fn bulk_record(
        &self,
        current: &TelusUser,
        changes: &[(String, Option<String>)],
        status: Option<&TelusStatus>,
        okta_id: Option<&OktaId>,
    ) -> Result<BulkRecord, Error> {
        let endpoint = format!("POST extension-bulk-update record {}", current.id);
        let mut body = match changes.is_empty() {
            true => serde_json::json!({}),
            false => self.contact_request(changes, Some(current), &endpoint)?,
        };
        if let Some(status) = status {
            body["status"] = serde_json::json!(status.as_str());
        }
        backfill_reference(&mut body, current, okta_id);
        body["id"] = serde_json::json!(current.id.0);
        Ok(BulkRecord {
            ext_id: current.id.clone(),
            body,
        })
    }

    /// `POST extension-bulk-update` (Heavy) with up to 500 records: answers the task it
    /// started. Never sent twice: a 5xx or a lost answer is `outcome_unknown`, since the
    /// task may have been accepted.
    pub async fn bulk_update(&self, records: &[&BulkRecord]) -> Result<BulkTask, Error> {
        let endpoint = "POST extension-bulk-update";
        let mut url = self.base.clone();
        url.set_path(BULK_UPDATE);
        let body = serde_json::json!({
            "records": records.iter().map(|r| &r.body).collect::<Vec<_>>()
        });
        let resp = self
            .send("Heavy", endpoint, false, || {
                self.http.post(url.clone()).json(&body)
            })
            .await?;
        let dto: BulkTaskDto = decode(resp, endpoint).await?;
        Ok(bulk_task(dto, endpoint))
    }

    /// `GET extension-bulk-update/tasks/{id}` (Light): the task's state, with each record's
    /// outcome once it has run.
    pub async fn bulk_task(&self, id: &str) -> Result<BulkTask, Error> {
        let endpoint = "GET extension-bulk-update/tasks";
        let mut url = self.base.clone();
        url.set_path(BULK_UPDATE);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("tasks").push(id);
        }
        let resp = self
            .send("Light", endpoint, true, || self.http.get(url.clone()))
            .await?;
        let dto: BulkTaskDto = decode(resp, endpoint).await?;
        Ok(bulk_task(dto, endpoint))
    }

    /// Follows `navigation.nextPage.uri` from the first page; refuses loops, other origins and
    /// paging past `totalPages`.
    /// Reads every page of a listing, keeping what `keep` makes of each record.
    async fn fetch_all<T: DeserializeOwned, U>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        group: &'static str,
        endpoint: &str,
        mut keep: impl FnMut(T) -> Option<U>,
    ) -> Result<Vec<U>, Error> {
        let mut url = self.base.clone();
        url.set_path(path);
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            q.append_pair("perPage", &PER_PAGE.to_string());
            q.append_pair("page", "1");
        }
        let mut seen = HashSet::new();
        let mut seen_pages = HashSet::new();
        let mut out = Vec::new();
        let mut pages = 0u64;
        loop {
            if !seen.insert(url.to_string()) {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("page {url} was already read: the listing loops"),
                });
            }
            let resp = self
                .send(group, endpoint, true, || self.http.get(url.clone()))
                .await?;
            let page: ListDto<T> = decode(resp, endpoint).await?;
            pages += 1;
            if let Some(n) = page.paging.as_ref().and_then(|p| p.page)
                && !seen_pages.insert(n)
            {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("page {n} was served twice: the listing loops"),
                });
            }
            out.extend(page.records.into_iter().filter_map(&mut keep));
            if let Some(total) = page.paging.as_ref().and_then(|p| p.total_pages)
                && pages > total.max(1)
            {
                return Err(Error::Paging {
                    endpoint: endpoint.to_string(),
                    message: format!("read {pages} pages but the server reported {total}"),
                });
            }
            let next = page.navigation.and_then(|n| n.next_page).map(|p| p.uri);
            match next {
                Some(uri) => {
                    url = same_origin_link(&self.base, &uri).map_err(|message| Error::Paging {
                        endpoint: endpoint.to_string(),
                        message,
                    })?;
                }
                None => {
                    // A listing must reach its last page: one that stops early would read as
                    // users deleted (deactivations, holds) or missing (creations).
                    if let Some(total) = page.paging.as_ref().and_then(|p| p.total_pages)
                        && pages < total
                    {
                        return Err(Error::Paging {
                            endpoint: endpoint.to_string(),
                            message: format!(
                                "the listing ended after {pages} of the {total} pages the server reported"
                            ),
                        });
                    }
                    return Ok(out);
                }
            }
        }
    }

    /// A valid access token. Refreshed shortly before it expires (the rotated pair persisted
    /// before use), or fetched with the jwt-bearer grant; `force` after a 401.
    ///
    /// The pair is shared with every other process on the same store (the daemon, an admin's
    /// `plan` or `sync`): a refresh is taken under a cross-process lock, after re-reading the
    /// stored pair, which another process may have rotated already. A refused refresh reads
    /// the store again, then falls back to a new JWT grant when a JWT is configured.
    async fn access_token(&self, force: bool) -> Result<SecretString, Error> {
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
    async fn after_refused_refresh(
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
    fn refresh_margin(&self) -> i64 {
        let lifetime = self.token_lifetime.load(Ordering::Relaxed);
        (TOKEN_MARGIN.as_secs() as i64).min(lifetime / 4)
    }

    /// The held pair's access token, noting its lifetime (it sets how early it is refreshed).
    fn keep(&self, guard: &mut Option<TokenPair>) -> SecretString {
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
    async fn refresh_grant(&self, rt: &SecretString) -> Result<TokenPair, Error> {
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
    async fn jwt_grant(&self, jwt: &SecretString) -> Result<TokenPair, Error> {
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
    fn stored_pair(&self) -> Option<TokenPair> {
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
    async fn lock_refresh(&self) -> Result<Option<Box<dyn Send>>, Error> {
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
    fn persist_tokens(&self, pair: &TokenPair) {
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
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenPair, Error> {
        let mut url = self.base.clone();
        url.set_path("/restapi/oauth/token");
        let endpoint = "POST oauth/token";
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let ticket = self.wait_for_group("Auth", endpoint).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = self
                .http
                .post(url.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .form(form)
                .send()
                .await;
            if let Ok(r) = &result {
                self.note_rate_headers("Auth", r);
            }
            drop(ticket);
            match result {
                Ok(r) => {
                    let code = r.status().as_u16();
                    // A refresh token is single-use: a token request is retried only when the
                    // server surely did not process it (429, 503), never after a timeout.
                    if (code == 429 || code == 503) && attempt < self.settings.attempts {
                        self.after_429_or_5xx("Auth", &r, attempt).await;
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

    /// Sends with a Bearer token; paces by rate-limit group; retries 5xx, network errors and
    /// 429 (after the penalty); refreshes the token once on a 401.
    pub(super) async fn send(
        &self,
        group: &'static str,
        endpoint: &str,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.access_token(false).await?;
            let ticket = self.wait_for_group(group, endpoint).await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = build()
                .bearer_auth(token.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await;
            // The budget the answer reports is noted before a request waiting to learn it goes.
            if let Ok(resp) = &result {
                self.note_rate_headers(group, resp);
            }
            drop(ticket);
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = if e.is_timeout() {
                        Error::Timeout {
                            endpoint: endpoint.to_string(),
                        }
                    } else if e.is_connect() {
                        Error::Network {
                            endpoint: endpoint.to_string(),
                            message: describe_reqwest(&e),
                        }
                    } else {
                        Error::Interrupted {
                            endpoint: endpoint.to_string(),
                            message: describe_reqwest(&e),
                        }
                    };
                    // A create that may have reached the server is not sent again: the next
                    // pass finds the user by email if it was created.
                    if attempt < self.settings.attempts && idempotent {
                        tracing::warn!(endpoint, attempt, error = %err, "telus request failed, retrying");
                        tokio::time::sleep(backoff_delay(&self.settings, attempt)).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            // Wire detail without headers (they carry the credentials) or bodies.
            tracing::trace!(endpoint, attempt, status = status.as_u16(), "response");
            // 304 answers a conditional read (`If-None-Match`); its caller keeps what it had.
            if status.is_success() || status.as_u16() == 304 {
                return Ok(resp);
            }
            if status.as_u16() == 401 && !refreshed {
                refreshed = true;
                attempt -= 1;
                self.access_token(true).await?;
                continue;
            }
            // A 5xx may come after the work was done (a gateway losing the answer): a write
            // that is not safe to repeat is never sent again; the next read settles it.
            if status.is_server_error() && !idempotent {
                tracing::warn!(
                    endpoint,
                    status = status.as_u16(),
                    "telus answered a create with a server error: not sent again; the next read settles it"
                );
                return Err(Error::Unconfirmed {
                    endpoint: endpoint.to_string(),
                    status: status.as_u16(),
                });
            }
            if (status.as_u16() == 429 || status.is_server_error())
                && attempt < self.settings.attempts
            {
                self.after_429_or_5xx(group, &resp, attempt).await;
                continue;
            }
            if status.as_u16() == 429 {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            return Err(api_error(endpoint, resp).await);
        }
    }

    /// After a 429: nothing more goes to the group until `Retry-After` (else the window) has
    /// passed, since every request during a penalty restarts it. After a 5xx: backoff.
    async fn after_429_or_5xx(&self, group: &'static str, resp: &reqwest::Response, attempt: u32) {
        if resp.status().as_u16() == 429 {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let penalty = crate::http::server_wait_secs(
                header("retry-after")
                    .or_else(|| header("x-rate-limit-window"))
                    .unwrap_or(60),
            );
            let secs = penalty.as_secs();
            let until = tokio::time::Instant::now() + penalty;
            if let Some(p) = &self.persist
                && let Err(e) = p.save_penalty(group, epoch_ms() + secs as i64 * 1000)
            {
                tracing::warn!(group, error = %e, "cannot save the rate-limit penalty");
            }
            if let Ok(mut g) = self.groups.lock() {
                g.penalize(group, until);
            }
            tracing::warn!(
                group,
                penalty_s = secs,
                "telus rate limit hit, pausing group"
            );
        } else {
            tokio::time::sleep(backoff_delay(&self.settings, attempt)).await;
        }
    }

    fn note_rate_headers(&self, group: &'static str, resp: &reqwest::Response) {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if resp.status().as_u16() == 429 {
            return;
        }
        if let (Some(remaining), Some(window)) = (
            header("x-rate-limit-remaining"),
            header("x-rate-limit-window"),
        ) && let Ok(mut g) = self.groups.lock()
        {
            g.note(group, remaining, window, tokio::time::Instant::now());
        }
    }

    /// Takes up a penalty another process on the store met since this one last looked (at
    /// most every [`SHARED_PENALTY_CHECK`] per group): every request sent during a penalty restarts it, so a
    /// process beside the daemon must not send into the daemon's, nor it into theirs.
    fn look_for_shared_penalty(&self, group: &'static str) {
        let Some(p) = &self.persist else { return };
        {
            let Ok(mut checked) = self.penalty_checked.lock() else {
                return;
            };
            if checked
                .get(group)
                .is_some_and(|t| t.elapsed() < SHARED_PENALTY_CHECK)
            {
                return;
            }
            checked.insert(group, Instant::now());
        }
        let Ok(Some(until_ms)) = p.load_penalty(group) else {
            return;
        };
        let left = until_ms.saturating_sub(epoch_ms());
        if left > 0
            && left <= MAX_WAIT_MS
            && let Ok(mut g) = self.groups.lock()
        {
            let now = tokio::time::Instant::now();
            let until = now + Duration::from_millis(left as u64);
            if g.wait(group, now).is_none_or(|w| w < until - now) {
                tracing::info!(group, "a penalty another process met: pausing the group");
            }
            g.penalize(group, until);
        }
    }

    /// Sleeps while the group's budget is spent or a penalty runs.
    async fn wait_for_group(
        &self,
        group: &'static str,
        endpoint: &str,
    ) -> Result<Ticket<'_>, Error> {
        self.look_for_shared_penalty(group);
        loop {
            let claim = self
                .groups
                .lock()
                .map(|mut g| g.claim(group, tokio::time::Instant::now()))
                .unwrap_or(Claim::Go);
            let wait = match claim {
                Claim::Go => return Ok(Ticket(None)),
                Claim::Learn => return Ok(Ticket(Some((&self.groups, group)))),
                Claim::Probing => {
                    tokio::time::sleep(PROBE_POLL).await;
                    continue;
                }
                Claim::Spent(wait) => wait,
            };
            if wait > self.settings.max_rate_wait {
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            crate::http::announce_wait(
                &format!("the TELUS {group} rate-limit budget ({endpoint})"),
                wait,
            );
            self.counters.rate_waits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .rate_wait_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request's place in its group. The one learning an unknown budget lets the others go
/// when dropped: after its answer's headers are noted, or when it failed or was cancelled.
struct Ticket<'a>(Option<(&'a Mutex<Pacing>, &'static str)>);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some((groups, group)) = self.0
            && let Ok(mut g) = groups.lock()
        {
            g.answered(group);
        }
    }
}

/// How often a request asks again while another learns its group's budget.
const PROBE_POLL: Duration = Duration::from_millis(20);

/// A refused request's error, from RingCentral's error body (`errors[0]`, else the top-level
/// `errorCode`/`message`).
async fn api_error(endpoint: &str, resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let body = crate::http::read_capped(resp).await.unwrap_or_default();
    let dto: ErrorDto = serde_json::from_slice(&body).unwrap_or_default();
    let first = dto.errors.into_iter().next();
    Error::Api {
        endpoint: endpoint.to_string(),
        status,
        code: first
            .as_ref()
            .and_then(|e| e.error_code.clone())
            .or(dto.error_code)
            .unwrap_or_default(),
        message: first
            .as_ref()
            .and_then(|e| e.message.clone())
            .or(dto.message)
            .unwrap_or_default(),
        parameter: first.and_then(|e| e.parameter_name),
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

/// `references` naming the Okta user (type `CustomerDirectoryId`).
fn references(okta_id: &OktaId) -> serde_json::Value {
    serde_json::json!([{ "type": DIRECTORY_REF, "ref": okta_id.0 }])
}

/// Adds the Okta id to a write's body when the record does not carry it yet: links made
/// before references existed (or by email) get theirs at their next write.
fn backfill_reference(body: &mut serde_json::Value, current: &TelusUser, okta_id: Option<&OktaId>) {
    if let Some(okta_id) = okta_id
        && current.directory_ref.as_ref() != Some(okta_id)
    {
        body["references"] = references(okta_id);
    }
}

/// Decodes one page of the extension listing into users (without direct numbers), and the
/// next page's link. Public for the fuzz targets.
pub fn decode_extension_page(
    body: &[u8],
) -> Result<(Vec<TelusUser>, Option<String>), serde_json::Error> {
    let page: ListDto<ExtensionDto> = serde_json::from_slice(body)?;
    let next = page.navigation.and_then(|n| n.next_page).map(|p| p.uri);
    Ok((page.records.into_iter().map(to_user).collect(), next))
}

/// Decodes one Company Directory page into (extension id, direct number) pairs (for fuzzing).
pub fn decode_directory_page(
    body: &[u8],
) -> Result<Vec<(String, Option<String>)>, serde_json::Error> {
    let page: ListDto<DirectoryEntryDto> = serde_json::from_slice(body)?;
    Ok(page
        .records
        .into_iter()
        .map(|e| (e.direct_number(), e.id))
        .map(|(n, id)| (id, n))
        .collect())
}

pub(super) fn to_user(e: ExtensionDto) -> TelusUser {
    let mut flat = Vec::new();
    if let Some(contact) = &e.contact {
        flatten_contact(contact, &mut flat);
    }
    let mut fields: crate::model::Fields = flat.into_iter().collect();
    if let Some(n) = e.extension_number {
        fields.insert(TELUS_EXTENSION_NUMBER, n);
    }
    let directory_ref = e
        .references
        .iter()
        .flatten()
        .find(|r| r.kind.as_deref() == Some(DIRECTORY_REF))
        .and_then(|r| r.reference.clone())
        .filter(|r| !r.trim().is_empty())
        .map(crate::model::OktaId);
    TelusUser {
        id: ExtId(e.id),
        status: TelusStatus::parse(e.status.as_deref().unwrap_or("")),
        directory_ref,
        fields,
        // A listing read sets it from the directory. A user just created is known to have no
        // direct number: `POST extension` assigns none (numbers are assigned separately).
        in_directory: true,
    }
}

pub(super) async fn decode<T: DeserializeOwned>(
    resp: reqwest::Response,
    endpoint: &str,
) -> Result<T, Error> {
    if resp.status().as_u16() == 304 {
        return Err(Error::Decode {
            endpoint: endpoint.to_string(),
            message: "answered 304 Not Modified to a request that was not conditional".into(),
        });
    }
    let bytes = crate::http::read_capped(resp).await.map_err(|e| match e {
        crate::http::BodyError::TooLarge => Error::Decode {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        },
        crate::http::BodyError::Read(message) => Error::Interrupted {
            endpoint: endpoint.to_string(),
            message,
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
