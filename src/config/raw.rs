//! The shape of `sync.toml` as read: serde structs with `deny_unknown_fields` and the
//! defaults of every optional key. Nothing here is validated; `validate` makes it typed.

use crate::reconcile::policy::{Features, Retry, Safety};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) okta: RawOkta,
    pub(super) telus: RawTelus,
    #[serde(default)]
    pub(super) store: RawStore,
    #[serde(default)]
    pub(super) schedule: RawSchedule,
    #[serde(default)]
    pub(super) events: RawEvents,
    #[serde(default)]
    pub(super) features: RawFeatures,
    #[serde(default)]
    pub(super) safety: RawSafety,
    #[serde(default)]
    pub(super) import: RawImport,
    #[serde(default)]
    pub(super) retry: RawRetry,
    pub(super) http: Option<RawHttp>,
    pub(super) notify: Option<RawNotify>,
    #[serde(default)]
    pub(super) attributes: BTreeMap<String, RawAttr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOkta {
    pub(super) url: String,
    pub(super) token: Option<String>,
    pub(super) token_file: Option<PathBuf>,
    #[serde(default = "default_scope")]
    pub(super) scope: String,
    pub(super) oauth: Option<RawOktaOauth>,
    #[serde(default = "default_write_concurrency")]
    pub(super) write_concurrency: u64,
    #[serde(default = "default_rate_limit_percent")]
    pub(super) rate_limit_percent: u64,
    /// Okta's built-in TELUS app this tool replaces (`init` writes it): checked for push
    /// features still on.
    pub(super) app_id: Option<String>,
}

pub(super) fn default_rate_limit_percent() -> u64 {
    50
}

pub(super) fn default_write_concurrency() -> u64 {
    4
}

/// Okta counts simultaneous requests per org (75 on Workforce and Customer Identity orgs,
/// 35 on the Integrator Free plan) for all API clients together; this tool keeps well under.
pub(super) const MAX_WRITE_CONCURRENCY: u64 = 16;

/// OAuth 2.0 client credentials with `private_key_jwt` (an Okta API service app).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOktaOauth {
    pub(super) client_id: String,
    pub(super) private_key: Option<String>,
    pub(super) private_key_file: Option<PathBuf>,
    pub(super) key_id: Option<String>,
    #[serde(default = "default_okta_scopes")]
    pub(super) scopes: String,
}

pub(super) fn default_okta_scopes() -> String {
    "okta.users.read okta.users.manage".to_string()
}

pub(super) fn default_scope() -> String {
    "all".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelus {
    #[serde(default = "default_telus_url")]
    pub(super) url: String,
    #[serde(default = "default_brand")]
    pub(super) brand_id: String,
    pub(super) client_id: String,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) jwt: Option<String>,
    pub(super) jwt_file: Option<PathBuf>,
    pub(super) redirect_uri: Option<String>,
    #[serde(default = "default_bulk_task_timeout")]
    pub(super) bulk_task_timeout_seconds: u64,
}

pub(super) fn default_bulk_task_timeout() -> u64 {
    120
}

pub(super) fn default_telus_url() -> String {
    "https://platform.ringcentral.com".to_string()
}

pub(super) fn default_brand() -> String {
    "7310".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<PathBuf>,
    pub(super) journal_days: Option<u32>,
    pub(super) backup_warning: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRetry {
    pub(super) quarantine_after: u32,
    pub(super) backoff_seconds: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        let r = Retry::default();
        RawRetry {
            quarantine_after: r.quarantine_after,
            backoff_seconds: r.backoff.as_secs(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: String,
    pub(super) max_pass_age_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) cron: Option<String>,
    pub(super) full_cron: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawEvents {
    pub(super) okta_poll_seconds: u64,
    pub(super) telus: String,
    pub(super) quiet_incremental_minutes: u64,
    pub(super) whole_pass_spacing_minutes: Option<u64>,
    pub(super) telus_heartbeat_seconds: u64,
}

impl Default for RawEvents {
    fn default() -> Self {
        RawEvents {
            okta_poll_seconds: 10,
            telus: "websocket".into(),
            quiet_incremental_minutes: 60,
            whole_pass_spacing_minutes: None,
            telus_heartbeat_seconds: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawFeatures {
    pub(super) create_users: bool,
    pub(super) update_users: bool,
    pub(super) deactivate_users: bool,
    pub(super) write_back: bool,
}

impl Default for RawFeatures {
    fn default() -> Self {
        let f = Features::default();
        RawFeatures {
            create_users: f.create_users,
            update_users: f.update_users,
            deactivate_users: f.deactivate_users,
            write_back: f.write_back,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSafety {
    pub(super) max_deactivations: u32,
    pub(super) max_changed_percent: u32,
    pub(super) max_creates: u32,
    pub(super) max_vanished: u32,
    pub(super) max_imports: u32,
    pub(super) reviewed_only: bool,
}

/// `[notify]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) webhook_url: Option<String>,
    pub(super) webhook_url_file: Option<std::path::PathBuf>,
    pub(super) format: Option<String>,
    pub(super) command: Option<Vec<String>>,
    pub(super) min_interval_seconds: Option<u64>,
    pub(super) channel_down_seconds: Option<u64>,
}

/// `[import]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawImport {
    pub(super) auto_confirm_new: bool,
    pub(super) activate: bool,
    #[serde(rename = "match")]
    pub(super) match_on: String,
    pub(super) assign_to_app: bool,
}

impl Default for RawImport {
    fn default() -> Self {
        RawImport {
            auto_confirm_new: false,
            activate: false,
            match_on: "email".into(),
            assign_to_app: false,
        }
    }
}

impl Default for RawSafety {
    fn default() -> Self {
        let s = Safety::default();
        RawSafety {
            max_deactivations: s.max_deactivations,
            max_changed_percent: s.max_changed_percent,
            max_creates: s.max_creates,
            max_vanished: s.max_vanished,
            max_imports: s.max_imports,
            reviewed_only: s.reviewed_only,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawMaster {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttr {
    pub(super) telus: Option<String>,
    pub(super) master: Option<RawMaster>,
    pub(super) on_conflict: Option<String>,
    pub(super) normalize: Option<String>,
    /// `"always"` (the default) or `"create"`.
    pub(super) apply: Option<String>,
    pub(super) sync: Option<bool>,
}
