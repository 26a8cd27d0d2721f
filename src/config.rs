//! `sync.toml` plus environment overrides → a validated, typed `Config`. Reads the config
//! file and secret files; never touches the network. Every error names its key.

use crate::model::System;
pub use crate::reconcile::policy::Safety;
use crate::reconcile::policy::{
    AttrRule, DEFAULT_TABLE, Features, Master, Normalize, OnConflict, Policy, Retry, TelusSide,
    parse_telus_side,
};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Environment variables with this prefix override keys: `OKTA_TELUS_SYNC__OKTA__TOKEN` sets `okta.token`.
pub const ENV_PREFIX: &str = "OKTA_TELUS_SYNC";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    okta: RawOkta,
    telus: RawTelus,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    features: RawFeatures,
    #[serde(default)]
    safety: RawSafety,
    #[serde(default)]
    retry: RawRetry,
    http: Option<RawHttp>,
    #[serde(default)]
    attributes: BTreeMap<String, RawAttr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOkta {
    url: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default = "default_scope")]
    scope: String,
    oauth: Option<RawOktaOauth>,
    #[serde(default = "default_write_concurrency")]
    write_concurrency: u64,
    #[serde(default = "default_rate_limit_percent")]
    rate_limit_percent: u64,
}

fn default_rate_limit_percent() -> u64 {
    50
}

fn default_write_concurrency() -> u64 {
    4
}

/// Okta counts simultaneous requests per org (75 on Workforce and Customer Identity orgs,
/// 35 on the Integrator Free plan) for all API clients together; this tool keeps well under.
const MAX_WRITE_CONCURRENCY: u64 = 16;

/// OAuth 2.0 client credentials with `private_key_jwt` (an Okta API service app).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOktaOauth {
    client_id: String,
    private_key: Option<String>,
    private_key_file: Option<PathBuf>,
    key_id: Option<String>,
    #[serde(default = "default_okta_scopes")]
    scopes: String,
}

fn default_okta_scopes() -> String {
    "okta.users.read okta.users.manage".to_string()
}

fn default_scope() -> String {
    "all".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelus {
    #[serde(default = "default_telus_url")]
    url: String,
    #[serde(default = "default_brand")]
    brand_id: String,
    client_id: String,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    jwt: Option<String>,
    jwt_file: Option<PathBuf>,
    redirect_uri: Option<String>,
}

fn default_telus_url() -> String {
    "https://platform.ringcentral.com".to_string()
}

fn default_brand() -> String {
    "7310".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    journal_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    quarantine_after: u32,
    backoff_seconds: u64,
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
struct RawHttp {
    listen: String,
    max_pass_age_seconds: Option<u64>,
}

/// The optional `/metrics` and `/healthz` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// `/healthz` fails when the last successful pass is older than this.
    pub max_pass_age: std::time::Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<String>,
    full_cron: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFeatures {
    create_users: bool,
    update_users: bool,
    deactivate_users: bool,
    write_back: bool,
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
struct RawSafety {
    max_deactivations: u32,
    max_changed_percent: u32,
    max_creates: u32,
    max_vanished: u32,
}

impl Default for RawSafety {
    fn default() -> Self {
        let s = Safety::default();
        RawSafety {
            max_deactivations: s.max_deactivations,
            max_changed_percent: s.max_changed_percent,
            max_creates: s.max_creates,
            max_vanished: s.max_vanished,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawMaster {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttr {
    telus: Option<String>,
    master: Option<RawMaster>,
    on_conflict: Option<String>,
    normalize: Option<String>,
    sync: Option<bool>,
}

/// Which Okta users are in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OktaScope {
    All,
    Group(String),
    App(String),
}

/// How this tool authenticates to Okta.
#[derive(Debug, Clone)]
pub enum OktaAuth {
    /// `Authorization: SSWS <api token>`.
    Ssws(SecretString),
    /// OAuth 2.0 client credentials, the client authenticated by a JWT signed with its
    /// RS256 private key (PEM); Bearer tokens cached until shortly before they expire.
    OAuth {
        client_id: String,
        private_key: SecretString,
        key_id: Option<String>,
        scopes: String,
    },
}

#[derive(Debug, Clone)]
pub struct OktaConfig {
    pub url: Url,
    pub auth: OktaAuth,
    pub scope: OktaScope,
    /// Okta profile updates in flight at once (each still within the bucket's budget).
    pub write_concurrency: usize,
    /// The share of each Okta rate-limit bucket this tool may spend per window, in percent:
    /// Okta's limits are org-wide, shared with every other integration and admin.
    pub rate_limit_percent: u8,
}

#[derive(Debug, Clone)]
pub struct TelusConfig {
    pub url: Url,
    pub brand_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The JWT credential (server-to-server); without it, the session from `auth telus`.
    pub jwt: Option<SecretString>,
    /// Where `auth telus` receives the authorization code; must be registered with the app.
    pub redirect_uri: Url,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub cron: String,
    pub full_cron: String,
}

/// The validated configuration. Passed explicitly; never global.
#[derive(Debug, Clone)]
pub struct Config {
    pub okta: OktaConfig,
    pub telus: TelusConfig,
    pub store_path: PathBuf,
    /// Days the journal is kept.
    pub journal_days: u32,
    pub retry: Retry,
    pub schedule: Schedule,
    pub http: Option<HttpConfig>,
    pub safety: Safety,
    pub policy: Policy,
}

/// One thing wrong with the configuration, naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Loads `path`, applies `OKTA_TELUS_SYNC__SECTION__KEY` environment overrides, and validates.
pub fn load(path: &Path) -> Result<Config, Error> {
    load_with_env(path, std::env::vars())
}

/// As `load`, with the environment given (tests pass their own).
pub fn load_with_env(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    from_toml_str(&text, env, base_dir).map_err(|problems| Error::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Parses and validates config text. Relative file paths are resolved against `base_dir`.
pub fn from_toml_str(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
    base_dir: &Path,
) -> Result<Config, Vec<Problem>> {
    let env_map: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
        .collect();
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env_map)),
        )
        .build()
        .map_err(|e| vec![deserialize_problem(&e)])?;
    let raw: RawConfig = built
        .try_deserialize()
        .map_err(|e| vec![deserialize_problem(&e)])?;
    validate(raw, base_dir)
}

/// Turns a `config` crate error into a problem naming the key when the crate says it.
fn deserialize_problem(err: &config::ConfigError) -> Problem {
    let text = err.to_string();
    // The crate appends " for key `a.b`" (sometimes with a source) when it knows the key.
    if let Some(start) = text.find(" for key `") {
        let rest = &text[start + " for key `".len()..];
        if let Some(end) = rest.find('`') {
            let mut key = rest[..end].to_string();
            let mut message = text[..start].to_string();
            if let Some(field) = unknown_field(&message) {
                key = format!("{key}.{field}");
                message = format!("unknown key ({message})");
            }
            if message.contains("untagged enum RawMaster") {
                message = "must be \"okta\", \"telus\", a list of them, or \"latest\"".into();
            }
            return Problem { key, message };
        }
    }
    if let Some(field) = unknown_field(&text) {
        return Problem {
            key: field.to_string(),
            message: format!("unknown section ({text})"),
        };
    }
    if let Some(field) = text
        .strip_prefix("missing configuration field \"")
        .and_then(|r| r.split('"').next())
    {
        return Problem {
            key: field.to_string(),
            message: "missing".to_string(),
        };
    }
    Problem {
        key: "sync.toml".to_string(),
        message: text,
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
}

struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, Vec<Problem>> {
    let mut p = Problems(Vec::new());

    let okta_url = check_url(&mut p, "okta.url", &raw.okta.url);
    let okta_token = match raw.okta.oauth {
        None => secret(
            &mut p,
            base_dir,
            "okta.token",
            raw.okta.token,
            raw.okta.token_file,
            "okta-token",
            true,
        )
        .map(OktaAuth::Ssws),
        Some(oauth) => {
            if raw.okta.token.is_some() || raw.okta.token_file.is_some() {
                p.push(
                    "okta.token",
                    "set either okta.token or [okta.oauth], not both",
                );
            }
            if oauth.client_id.trim().is_empty() {
                p.push("okta.oauth.client_id", "is empty");
            }
            let key = secret(
                &mut p,
                base_dir,
                "okta.oauth.private_key",
                oauth.private_key,
                oauth.private_key_file,
                "okta-private-key",
                true,
            );
            if let Some(k) = &key {
                use secrecy::ExposeSecret as _;
                if jsonwebtoken::EncodingKey::from_rsa_pem(k.expose_secret().as_bytes()).is_err() {
                    p.push(
                        "okta.oauth.private_key",
                        "is not an RSA private key in PEM form",
                    );
                }
            }
            key.map(|private_key| OktaAuth::OAuth {
                client_id: oauth.client_id,
                private_key,
                key_id: oauth.key_id,
                scopes: oauth.scopes,
            })
        }
    };
    let scope = match raw.okta.scope.split_once(':') {
        None if raw.okta.scope == "all" => Some(OktaScope::All),
        Some(("group", id)) if valid_id(id) => Some(OktaScope::Group(id.to_string())),
        Some(("app", id)) if valid_id(id) => Some(OktaScope::App(id.to_string())),
        _ => {
            p.push(
                "okta.scope",
                format!(
                    "{:?} is not \"all\", \"group:<id>\" or \"app:<id>\"",
                    raw.okta.scope
                ),
            );
            None
        }
    };

    if !(1..=MAX_WRITE_CONCURRENCY).contains(&raw.okta.write_concurrency) {
        p.push(
            "okta.write_concurrency",
            format!(
                "{} is not between 1 and {MAX_WRITE_CONCURRENCY} (Okta limits simultaneous requests per org, shared by every client)",
                raw.okta.write_concurrency
            ),
        );
    }

    if !(1..=100).contains(&raw.okta.rate_limit_percent) {
        p.push(
            "okta.rate_limit_percent",
            format!(
                "{} is not between 1 and 100 (the share of each Okta rate limit this tool may use)",
                raw.okta.rate_limit_percent
            ),
        );
    }

    let telus_url = check_url(&mut p, "telus.url", &raw.telus.url);
    if raw.telus.client_id.trim().is_empty() {
        p.push("telus.client_id", "is empty");
    }
    if !valid_id(&raw.telus.brand_id) {
        p.push("telus.brand_id", "must be a brand id such as \"7310\"");
    }
    let client_secret = secret(
        &mut p,
        base_dir,
        "telus.client_secret",
        raw.telus.client_secret,
        raw.telus.client_secret_file,
        "telus-client-secret",
        true,
    );
    let jwt = secret(
        &mut p,
        base_dir,
        "telus.jwt",
        raw.telus.jwt,
        raw.telus.jwt_file,
        "telus-jwt",
        false,
    );
    let redirect_uri = match raw.telus.redirect_uri.as_deref() {
        None => Url::parse("http://127.0.0.1:8765/callback").ok(),
        Some(r) => match Url::parse(r) {
            Ok(u) if u.scheme() == "http" && is_loopback(&u) && u.port().is_some() => Some(u),
            Ok(_) => {
                p.push(
                    "telus.redirect_uri",
                    format!("{r:?} must be http:// on a loopback host with a port, e.g. http://127.0.0.1:8765/callback"),
                );
                None
            }
            Err(e) => {
                p.push("telus.redirect_uri", format!("{r:?} is not a URL: {e}"));
                None
            }
        },
    };

    let store_path = match raw.store.path {
        Some(path) if path.as_os_str().is_empty() => {
            p.push("store.path", "is empty");
            PathBuf::new()
        }
        Some(path) => base_dir.join(path),
        None => base_dir.join("okta-telus-sync.db"),
    };

    let schedule = Schedule {
        cron: check_cron(&mut p, "schedule.cron", raw.schedule.cron, "0 */15 * * * *"),
        full_cron: check_cron(
            &mut p,
            "schedule.full_cron",
            raw.schedule.full_cron,
            "0 0 3 * * *",
        ),
    };

    let http = match raw.http {
        None => None,
        Some(h) => match h.listen.parse::<std::net::SocketAddr>() {
            Ok(listen) => Some(HttpConfig {
                listen,
                max_pass_age: std::time::Duration::from_secs(
                    h.max_pass_age_seconds.unwrap_or(7200),
                ),
            }),
            Err(e) => {
                p.push(
                    "http.listen",
                    format!("{:?} is not an address like 127.0.0.1:9464: {e}", h.listen),
                );
                None
            }
        },
    };
    if raw.store.journal_days == Some(0) {
        p.push("store.journal_days", "must be at least 1");
    }
    if raw.retry.quarantine_after == 0 {
        p.push("retry.quarantine_after", "must be at least 1");
    }
    if raw.safety.max_changed_percent > 100 {
        p.push(
            "safety.max_changed_percent",
            format!("{} is over 100", raw.safety.max_changed_percent),
        );
    }

    let features = Features {
        create_users: raw.features.create_users,
        update_users: raw.features.update_users,
        deactivate_users: raw.features.deactivate_users,
        write_back: raw.features.write_back,
    };
    let rules = build_rules(&mut p, raw.attributes);

    if !p.0.is_empty() {
        return Err(p.0);
    }
    match (
        okta_url,
        okta_token,
        scope,
        telus_url,
        client_secret,
        redirect_uri,
    ) {
        (Some(ou), Some(tok), Some(scope), Some(tu), Some(cs), Some(redirect_uri)) => Ok(Config {
            okta: OktaConfig {
                url: ou,
                auth: tok,
                scope,
                write_concurrency: raw.okta.write_concurrency as usize,
                rate_limit_percent: raw.okta.rate_limit_percent as u8,
            },
            telus: TelusConfig {
                url: tu,
                brand_id: raw.telus.brand_id,
                client_id: raw.telus.client_id,
                client_secret: cs,
                jwt,
                redirect_uri,
            },
            store_path,
            journal_days: raw.store.journal_days.unwrap_or(400),
            retry: Retry {
                quarantine_after: raw.retry.quarantine_after,
                backoff: std::time::Duration::from_secs(raw.retry.backoff_seconds),
            },
            schedule,
            http,
            safety: Safety {
                max_deactivations: raw.safety.max_deactivations,
                max_changed_percent: raw.safety.max_changed_percent,
                max_creates: raw.safety.max_creates,
                max_vanished: raw.safety.max_vanished,
            },
            policy: Policy { rules, features },
        }),
        // Every None above pushed a problem.
        _ => Err(vec![Problem {
            key: "sync.toml".into(),
            message: "invalid".into(),
        }]),
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Accepts `https://`, and `http://` only to a loopback host.
fn check_url(p: &mut Problems, key: &str, raw: &str) -> Option<Url> {
    let url = match Url::parse(raw.trim()) {
        Ok(u) => u,
        Err(e) => {
            p.push(key, format!("{raw:?} is not a URL: {e}"));
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        p.push(key, "must not carry credentials");
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        p.push(
            key,
            format!("{raw:?} must be an origin only, like https://host"),
        );
        return None;
    }
    match url.scheme() {
        "https" => Some(url),
        "http" if is_loopback(&url) => Some(url),
        "http" => {
            p.push(
                key,
                format!("{raw:?}: plain http is refused except to a loopback host; use https"),
            );
            None
        }
        other => {
            p.push(key, format!("scheme {other:?} is not https"));
            None
        }
    }
}

/// Whether the URL's host is on this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A secret from the key itself, from `<key>_file`, or from systemd's credentials directory
/// (`$CREDENTIALS_DIRECTORY/<cred_name>`), in that order. Exactly one source may be set.
fn secret(
    p: &mut Problems,
    base_dir: &Path,
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    cred_name: &str,
    required: bool,
) -> Option<SecretString> {
    let file_key = format!("{key}_file");
    let value = match (inline, file) {
        (Some(_), Some(_)) => {
            p.push(key, format!("set either {key} or {file_key}, not both"));
            return None;
        }
        (Some(v), None) => v,
        (None, Some(path)) => {
            let path = base_dir.join(path);
            match std::fs::read_to_string(&path) {
                Ok(v) => v,
                Err(e) => {
                    p.push(file_key, format!("cannot read {}: {e}", path.display()));
                    return None;
                }
            }
        }
        (None, None) => {
            let from_creds = std::env::var_os("CREDENTIALS_DIRECTORY")
                .map(|d| PathBuf::from(d).join(cred_name))
                .and_then(|path| std::fs::read_to_string(path).ok());
            match from_creds {
                Some(v) => v,
                None if required => {
                    p.push(
                        key,
                        format!(
                            "missing: set {key}, {file_key}, the environment variable {} or a systemd credential named {cred_name}",
                            env_name(key)
                        ),
                    );
                    return None;
                }
                None => return None,
            }
        }
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        p.push(key, "is empty");
        return None;
    }
    Some(SecretString::from(value))
}

fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}__{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Checks a 5- or 6-field cron expression's shape; the scheduler parses it fully.
fn check_cron(p: &mut Problems, key: &str, raw: Option<String>, default: &str) -> String {
    let Some(expr) = raw else {
        return default.to_string();
    };
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let ok_chars = fields.iter().all(|f| {
        f.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | ',' | '-' | '?'))
    });
    if !(5..=6).contains(&fields.len()) || !ok_chars {
        p.push(
            key,
            format!("{expr:?} is not a cron expression of 5 fields (or 6 with seconds first)"),
        );
        return default.to_string();
    }
    // Five fields: minute-first; the scheduler wants seconds first.
    let six = if fields.len() == 5 {
        format!("0 {}", fields.join(" "))
    } else {
        fields.join(" ")
    };
    // The scheduler's own parser decides: ranges, steps and names it cannot read are errors here.
    if let Err(e) = tokio_cron_scheduler::Job::new(six.as_str(), |_, _| {}) {
        p.push(key, format!("{expr:?} is not a valid cron expression: {e}"));
        return default.to_string();
    }
    six
}

/// The mastering table: the built-in defaults, overridden row by row by `[attributes.*]`.
fn build_rules(p: &mut Problems, attrs: BTreeMap<String, RawAttr>) -> Vec<AttrRule> {
    let mut rows: BTreeMap<String, RawAttr> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (name, telus, master, normalize) in DEFAULT_TABLE {
        order.push(name.to_string());
        rows.insert(
            name.to_string(),
            RawAttr {
                telus: Some(telus.to_string()),
                master: Some(RawMaster::One(master.to_string())),
                on_conflict: None,
                normalize: Some(normalize.to_string()),
                sync: None,
            },
        );
    }
    for (name, attr) in attrs {
        let row = rows.entry(name.clone()).or_insert_with(|| {
            order.push(name.clone());
            RawAttr::default()
        });
        if attr.telus.is_some() {
            row.telus = attr.telus;
        }
        if attr.master.is_some() {
            row.master = attr.master;
        }
        if attr.on_conflict.is_some() {
            row.on_conflict = attr.on_conflict;
        }
        if attr.normalize.is_some() {
            row.normalize = attr.normalize;
        }
        if attr.sync.is_some() {
            row.sync = attr.sync;
        }
    }

    let mut rules = Vec::new();
    let mut targets: BTreeMap<String, String> = BTreeMap::new();
    for name in order {
        let Some(row) = rows.remove(&name) else {
            continue;
        };
        let key = format!("attributes.{name}");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
            p.push(&key, "is not an Okta attribute name");
            continue;
        }
        if name == crate::reconcile::plan::STATUS_ATTR {
            p.push(
                &key,
                "`status` is reserved for the lifecycle (create, deactivate, reactivate)",
            );
            continue;
        }
        if row.sync == Some(false) {
            continue;
        }
        let Some(telus_raw) = row.telus else {
            p.push(format!("{key}.telus"), "missing");
            continue;
        };
        let telus = match parse_telus_side(&telus_raw) {
            Ok(t) => t,
            Err(e) => {
                p.push(format!("{key}.telus"), e);
                continue;
            }
        };
        let master = match row.master {
            None => {
                p.push(format!("{key}.master"), "missing");
                continue;
            }
            Some(RawMaster::One(s)) if s == "latest" => {
                let on_conflict = match row.on_conflict.as_deref() {
                    None | Some("skip") => OnConflict::Skip,
                    Some(s) => match System::parse(s) {
                        Some(sys) => OnConflict::Prefer(sys),
                        None => {
                            p.push(
                                format!("{key}.on_conflict"),
                                format!("{s:?} is not \"okta\", \"telus\" or \"skip\""),
                            );
                            continue;
                        }
                    },
                };
                Master::Latest { on_conflict }
            }
            Some(m) => {
                let names = match m {
                    RawMaster::One(s) => vec![s],
                    RawMaster::Many(v) => v,
                };
                let mut list = Vec::new();
                for n in &names {
                    match System::parse(n) {
                        Some(s) if !list.contains(&s) => list.push(s),
                        Some(_) => {
                            p.push(format!("{key}.master"), format!("{n:?} is listed twice"))
                        }
                        None => p.push(
                            format!("{key}.master"),
                            format!("{n:?} is not \"okta\", \"telus\" or \"latest\""),
                        ),
                    }
                }
                if list.len() != names.len() {
                    continue;
                }
                if list.is_empty() {
                    p.push(format!("{key}.master"), "names no system");
                    continue;
                }
                if row.on_conflict.is_some() {
                    p.push(
                        format!("{key}.on_conflict"),
                        "only applies to master = \"latest\"",
                    );
                }
                Master::Priority(list)
            }
        };
        // A template or read-only field can only ever be a source.
        let telus_is_target = match &master {
            Master::Latest { .. } => true,
            Master::Priority(list) => list.first() != Some(&System::Telus),
        };
        if telus_is_target && !telus.writable() {
            p.push(
                format!("{key}.master"),
                format!(
                    "TELUS side {telus_raw:?} is read-only (a template or a read-only field), so it can only be a source: set master = \"telus\""
                ),
            );
            continue;
        }
        let normalize = match row.normalize.as_deref() {
            None => Normalize::None,
            Some(s) => match Normalize::parse(s) {
                Some(n) => n,
                None => {
                    p.push(
                        format!("{key}.normalize"),
                        format!(
                            "{s:?} is not \"none\", \"email\", \"e164\" or \"iso-subdivision\""
                        ),
                    );
                    continue;
                }
            },
        };
        if let TelusSide::Field { path, .. } = &telus
            && let Some(other) = targets.insert(path.clone(), name.clone())
        {
            p.push(
                format!("{key}.telus"),
                format!("{path} is already mapped by attributes.{other}"),
            );
            continue;
        }
        rules.push(AttrRule {
            okta_attr: name,
            telus,
            master,
            normalize,
        });
    }
    // Each row's names are kept in a part of the process's field-name table that servers
    // cannot fill; a table this large is far beyond any directory, and is refused.
    if rules.len() > MAX_ROWS {
        p.push(
            "attributes",
            format!(
                "{} rows: at most {MAX_ROWS} attributes can be mapped",
                rules.len()
            ),
        );
    }
    rules
}

/// The most rows a mastering table may have: their names (about three per row) must fit in
/// the part of the field-name table kept for mapped names.
const MAX_ROWS: usize = crate::model::RESERVED_FOR_MAPPED / 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_policy_is_what_a_config_without_rows_means() {
        let mut p = Problems(Vec::new());
        let rules = build_rules(&mut p, BTreeMap::new());
        assert!(p.0.is_empty());
        assert_eq!(rules, Policy::builtin().rules);
        assert_eq!(rules.len(), crate::reconcile::policy::DEFAULT_TABLE.len());
    }

    const MINIMAL: &str = r#"
[okta]
url = "https://example.okta.com"
token = "okta-secret-token"

[telus]
client_id = "cid"
client_secret = "csecret"
jwt = "jwt-credential"
"#;

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        from_toml_str(text, Vec::new(), Path::new("/tmp"))
    }

    fn keys(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn minimal_config_gets_the_default_table() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len());
        assert_eq!(c.telus.brand_id, "7310");
        assert_eq!(c.okta.scope, OktaScope::All);
        assert_eq!(c.safety.max_deactivations, 10);
        let phone = c.policy.rule("primaryPhone").unwrap();
        assert_eq!(phone.master, Master::Priority(vec![System::Telus]));
        assert_eq!(
            c.policy.rule("state").unwrap().normalize,
            Normalize::IsoSubdivision
        );
    }

    #[test]
    fn shipped_sync_toml_is_valid() {
        let text = include_str!("../sync.toml");
        let env = vec![
            ("OKTA_TELUS_SYNC__OKTA__TOKEN".to_string(), "t".to_string()),
            (
                "OKTA_TELUS_SYNC__TELUS__CLIENT_SECRET".to_string(),
                "s".to_string(),
            ),
            ("OKTA_TELUS_SYNC__TELUS__JWT".to_string(), "j".to_string()),
        ];
        let text = text
            .lines()
            .filter(|l| !l.contains("_file"))
            .collect::<Vec<_>>()
            .join("\n");
        let c = from_toml_str(&text, env, Path::new("/etc")).unwrap();
        assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len());
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[telus]", "[telus]\nclient_idd = \"x\"");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs[0].key, "telus.client_idd", "{errs:?}");
    }

    #[test]
    fn wrong_type_is_named() {
        let text = format!("{MINIMAL}\n[safety]\nmax_deactivations = \"many\"\n");
        let errs = parse(&text).unwrap_err();
        assert!(
            errs.iter().any(|p| p.key == "safety.max_deactivations"),
            "{errs:?}"
        );
    }

    #[test]
    fn missing_section_is_named() {
        let text = MINIMAL.replace("[okta]", "[oktaa]");
        let errs = parse(&text).unwrap_err();
        assert_eq!(errs[0].key, "oktaa", "{errs:?}");
        let errs = parse("[telus]\nclient_id = \"c\"\n").unwrap_err();
        assert_eq!(errs[0].key, "okta", "{errs:?}");
    }

    #[test]
    fn plain_http_is_refused_except_loopback() {
        let text = MINIMAL.replace("https://example.okta.com", "http://example.okta.com");
        assert_eq!(keys(&text), vec!["okta.url"]);
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:80",
        ] {
            let text = MINIMAL.replace("https://example.okta.com", ok);
            assert!(parse(&text).is_ok(), "{ok}");
        }
    }

    #[test]
    fn url_with_path_is_refused() {
        let text = MINIMAL.replace("https://example.okta.com", "https://example.okta.com/api");
        assert_eq!(keys(&text), vec!["okta.url"]);
    }

    #[test]
    fn okta_write_concurrency_and_rate_share_are_bounded() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (c.okta.write_concurrency, c.okta.rate_limit_percent),
            (4, 50)
        );
        let with = |line: String| {
            MINIMAL.replace(
                "token = \"okta-secret-token\"",
                &format!("token = \"okta-secret-token\"\n{line}"),
            )
        };
        for (key, bad) in [
            ("write_concurrency", 0),
            ("write_concurrency", 17),
            ("rate_limit_percent", 0),
            ("rate_limit_percent", 101),
        ] {
            let text = with(format!("{key} = {bad}"));
            assert_eq!(keys(&text), vec![format!("okta.{key}")], "{key} = {bad}");
        }
        let c = parse(&with(
            "write_concurrency = 1\nrate_limit_percent = 100".into(),
        ))
        .unwrap();
        assert_eq!(
            (c.okta.write_concurrency, c.okta.rate_limit_percent),
            (1, 100)
        );
    }

    #[test]
    fn template_as_target_is_rejected() {
        let text = format!("{MINIMAL}\n[attributes.primaryPhone]\nmaster = \"okta\"\n");
        assert_eq!(keys(&text), vec!["attributes.primaryPhone.master"]);
        let text = format!("{MINIMAL}\n[attributes.primaryPhone]\nmaster = \"latest\"\n");
        assert_eq!(keys(&text), vec!["attributes.primaryPhone.master"]);
    }

    #[test]
    fn unknown_telus_field_is_rejected() {
        let text = format!(
            "{MINIMAL}\n[attributes.title]\ntelus = \"contact.title\"\nmaster = \"okta\"\n"
        );
        assert_eq!(keys(&text), vec!["attributes.title.telus"]);
    }

    #[test]
    fn bad_master_and_normalize_are_named() {
        let text = format!(
            "{MINIMAL}\n[attributes.city]\nmaster = \"ad\"\n[attributes.department]\nnormalize = \"upper\"\n"
        );
        assert_eq!(
            keys(&text),
            vec!["attributes.city.master", "attributes.department.normalize"]
        );
    }

    #[test]
    fn priority_list_and_latest_rows_parse() {
        let text = format!(
            "{MINIMAL}\n[attributes.city]\nmaster = [\"telus\", \"okta\"]\n[attributes.department]\nmaster = \"latest\"\non_conflict = \"okta\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.policy.rule("city").unwrap().master,
            Master::Priority(vec![System::Telus, System::Okta])
        );
        assert_eq!(
            c.policy.rule("department").unwrap().master,
            Master::Latest {
                on_conflict: OnConflict::Prefer(System::Okta)
            }
        );
    }

    #[test]
    fn sync_false_turns_a_row_off() {
        let text = format!("{MINIMAL}\n[attributes.department]\nsync = false\n");
        let c = parse(&text).unwrap();
        assert!(c.policy.rule("department").is_none());
        assert_eq!(c.policy.rules.len(), DEFAULT_TABLE.len() - 1);
    }

    #[test]
    fn two_rows_on_one_telus_field_are_rejected() {
        let text = format!(
            "{MINIMAL}\n[attributes.title]\ntelus = \"contact.department\"\nmaster = \"okta\"\n"
        );
        assert_eq!(keys(&text), vec!["attributes.title.telus"]);
    }

    #[test]
    fn environment_overrides_and_supplies_secrets() {
        let text = MINIMAL.replace("token = \"okta-secret-token\"\n", "");
        assert_eq!(keys(&text), vec!["okta.token"]);
        let env = vec![(
            "OKTA_TELUS_SYNC__OKTA__TOKEN".to_string(),
            "from-env".to_string(),
        )];
        let c = from_toml_str(&text, env, Path::new("/tmp")).unwrap();
        use secrecy::ExposeSecret;
        let OktaAuth::Ssws(t) = &c.okta.auth else {
            panic!()
        };
        assert_eq!(t.expose_secret(), "from-env");
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "file-token\n").unwrap();
        let text = MINIMAL.replace("token = \"okta-secret-token\"", "token_file = \"tok\"");
        let c = from_toml_str(&text, Vec::new(), dir.path()).unwrap();
        use secrecy::ExposeSecret;
        let OktaAuth::Ssws(t) = &c.okta.auth else {
            panic!()
        };
        assert_eq!(t.expose_secret(), "file-token");
        let text = MINIMAL.replace("token = \"okta-secret-token\"", "token_file = \"nope\"");
        let errs = from_toml_str(&text, Vec::new(), dir.path()).unwrap_err();
        assert_eq!(errs[0].key, "okta.token_file");
    }

    #[test]
    fn okta_oauth_needs_a_readable_rsa_key_and_excludes_a_token() {
        let base = MINIMAL.replace("token = \"okta-secret-token\"\n", "");
        let with = |extra: &str| format!("{base}\n[okta.oauth]\nclient_id = \"0oa1\"\n{extra}");
        let errs = parse(&with("private_key = \"not a key\"")).unwrap_err();
        assert_eq!(errs[0].key, "okta.oauth.private_key");
        let errs = parse(&with("")).unwrap_err();
        assert_eq!(errs[0].key, "okta.oauth.private_key");
        let pem = include_str!("../tests/fixtures/okta-test-key.pem");
        let c = parse(&with(&format!("private_key = \"\"\"{pem}\"\"\""))).unwrap();
        assert!(
            matches!(c.okta.auth, OktaAuth::OAuth { ref scopes, .. } if scopes == "okta.users.read okta.users.manage")
        );
        let both = format!(
            "{MINIMAL}\n[okta.oauth]\nclient_id = \"0oa1\"\nprivate_key = \"\"\"{pem}\"\"\""
        );
        assert_eq!(parse(&both).unwrap_err()[0].key, "okta.token");
    }

    #[test]
    fn http_listen_is_parsed_or_named() {
        let c = parse(&format!("{MINIMAL}\n[http]\nlisten = \"127.0.0.1:9464\"\n")).unwrap();
        assert_eq!(c.http.unwrap().listen.port(), 9464);
        let text = format!("{MINIMAL}\n[http]\nlisten = \"localhost\"\n");
        assert_eq!(keys(&text), vec!["http.listen"]);
    }

    #[test]
    fn bad_cron_is_named() {
        let text = format!("{MINIMAL}\n[schedule]\ncron = \"every 15 minutes\"\n");
        assert_eq!(keys(&text), vec!["schedule.cron"]);
        let text = format!("{MINIMAL}\n[schedule]\ncron = \"*/15 * * * *\"\n");
        assert_eq!(parse(&text).unwrap().schedule.cron, "0 */15 * * * *");
        let text = format!("{MINIMAL}\n[schedule]\nfull_cron = \"0 99 * * *\"\n");
        assert_eq!(keys(&text), vec!["schedule.full_cron"]);
    }

    #[test]
    fn errors_never_echo_secrets() {
        let text = MINIMAL.replace("https://example.okta.com", "ftp://x") + "\n[bogus]\n";
        let all = format!("{:?}", parse(&text).unwrap_err());
        assert!(!all.contains("okta-secret-token") && !all.contains("csecret"));
    }
}
