//! `sync.toml` plus environment overrides → a validated, typed `Config`. Reads the config
//! file and secret files; never touches the network. Every error names its key.

mod attributes;
pub mod okta_expr;
mod raw;
mod secret;
mod validate;

pub use crate::reconcile::policy::Safety;
use crate::reconcile::policy::{Policy, Retry};
use raw::RawConfig;
use secrecy::SecretString;
use std::fmt;
use std::path::{Path, PathBuf};
use url::Url;
pub use validate::is_loopback;
use validate::validate;

/// Environment variables with this prefix override keys: `OKTA_TELUS_SYNC__OKTA__TOKEN` sets `okta.token`.
pub const ENV_PREFIX: &str = "OKTA_TELUS_SYNC";

/// The optional `/metrics` and `/healthz` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// `/healthz` fails when the last successful pass is older than this.
    pub max_pass_age: std::time::Duration,
}

/// A notification webhook's URL: often a secret itself (a Slack or Teams incoming webhook
/// carries its token in the path), so its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(pub url::Url);

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebhookUrl({}://{}/…)",
            self.0.scheme(),
            self.0.host_str().unwrap_or("")
        )
    }
}

/// The body shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The event as this tool's JSON.
    Plain,
    /// `{"text": …}` (a Slack incoming webhook).
    Slack,
    /// An Adaptive Card in a message (a Microsoft Teams Workflows webhook).
    Teams,
}

/// `[notify]`: where the daemon sends its notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub webhook: Option<(WebhookUrl, NotifyFormat)>,
    /// A program and its arguments, run with the event as JSON on stdin.
    pub command: Vec<String>,
    /// At most one notification of a kind per this interval.
    pub min_interval: std::time::Duration,
    /// An event channel down this long is notified (`channel_down_seconds`, 600).
    pub channel_down_after: std::time::Duration,
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
    /// Okta's built-in TELUS app this tool replaced (`okta.app_id`): while it still pushes,
    /// two writers fight over the same users, and `check-config --connect`, `status` and a
    /// gauge say so.
    pub app_id: Option<String>,
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
    /// How long a pass waits for a bulk-update task before it sends no further chunk and
    /// leaves the rest to the next pass (`telus.bulk_task_timeout_seconds`).
    pub bulk_task_timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub cron: String,
    pub full_cron: String,
    /// `schedule.cron` was left unset: its incremental passes may be rarer while change
    /// events are healthy (`events.quiet_incremental_minutes`). A cron the admin wrote is
    /// kept as written.
    pub cron_is_default: bool,
}

impl Schedule {
    /// When the next scheduled pass (incremental or full) starts after `now`, by the
    /// scheduler's own cron parser; `None` when neither expression gives a time.
    pub fn next_pass_after(&self, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build();
        [&self.cron, &self.full_cron]
            .into_iter()
            .filter_map(|c| parser.parse(c).ok()?.find_next_occurrence(&now, false).ok())
            .map(|t| t.timestamp())
            .min()
    }
}

/// `[events]`: change events that start a pass within seconds of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// How often the Okta System Log is polled; `None`: Okta events off.
    pub okta_poll: Option<std::time::Duration>,
    /// Whether TELUS change notifications come over RingCentral's WebSocket gateway.
    pub telus_websocket: bool,
    /// While every event channel is healthy, scheduled incremental passes run at most this
    /// often (they stay the safety net for what events miss). Zero: as scheduled.
    pub quiet_incremental: std::time::Duration,
    /// Whole passes that events ask for (events lost, a new session, more users than a
    /// targeted pass reads) run at most once per this; the hints wait for it. Zero: at once.
    pub whole_pass_spacing: std::time::Duration,
    /// Quiet time on the WebSocket after which a heartbeat is sent.
    pub telus_heartbeat: std::time::Duration,
}

impl Events {
    /// No change events: passes only on the schedule.
    pub fn off() -> Events {
        Events {
            okta_poll: None,
            telus_websocket: false,
            quiet_incremental: std::time::Duration::ZERO,
            whole_pass_spacing: std::time::Duration::ZERO,
            telus_heartbeat: std::time::Duration::from_secs(30),
        }
    }

    pub fn any(&self) -> bool {
        self.okta_poll.is_some() || self.telus_websocket
    }
}

/// The validated configuration. Passed explicitly; never global.
#[derive(Debug, Clone)]
pub struct Config {
    pub okta: OktaConfig,
    pub telus: TelusConfig,
    pub store_path: PathBuf,
    /// Days the journal is kept.
    pub journal_days: u32,
    /// `store.backup_warning`: `status` and `check-config` warn about a store older than a
    /// week that was never backed up.
    pub backup_warning: bool,
    pub retry: Retry,
    pub schedule: Schedule,
    pub events: Events,
    pub http: Option<HttpConfig>,
    pub notify: Option<NotifyConfig>,
    pub safety: Safety,
    pub policy: Policy,
    /// What works but should be fixed (a secret file others can read), for the log and
    /// `check-config`.
    pub warnings: Vec<String>,
}

impl OktaConfig {
    /// What identifies this section's settings, secrets included as digests (never as
    /// text): two configs differ here exactly when a reload must rebuild the Okta client.
    pub fn fingerprint(&self) -> String {
        let secret = match &self.auth {
            OktaAuth::Ssws(t) => digest(t),
            OktaAuth::OAuth { private_key, .. } => digest(private_key),
        };
        format!("{self:?} {secret}")
    }
}

impl TelusConfig {
    /// As [`OktaConfig::fingerprint`], for `[telus]` (client secret and JWT as digests).
    pub fn fingerprint(&self) -> String {
        let jwt = self.jwt.as_ref().map(digest).unwrap_or_default();
        format!("{self:?} {} {jwt}", digest(&self.client_secret))
    }
}

/// A secret's SHA-256, to tell a rotated secret from the old one without holding either.
fn digest(secret: &SecretString) -> String {
    use secrecy::ExposeSecret as _;
    use sha2::Digest as _;
    sha2::Sha256::digest(secret.expose_secret().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    let mut config = from_toml_str(&text, env, base_dir).map_err(|problems| Error::Invalid {
        path: path.to_path_buf(),
        problems,
    })?;
    config
        .warnings
        .extend(secret::inline_in_readable_file(path, &text));
    Ok(config)
}

/// Parses and validates config text. Relative file paths are resolved against `base_dir`.
pub fn from_toml_str(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
    base_dir: &Path,
) -> Result<Config, Vec<Problem>> {
    let mut credentials = None;
    let env_map: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, v)| {
            if k == "CREDENTIALS_DIRECTORY" {
                credentials = Some(PathBuf::from(v));
            }
            k.starts_with(&format!("{ENV_PREFIX}__"))
        })
        .collect();
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                // Values stay the strings they are (`000123` is a client id, not 123);
                // numeric keys still parse from them.
                .try_parsing(false)
                .source(Some(env_map)),
        )
        .build()
        .map_err(|e| vec![deserialize_problem(&e)])?;
    let raw: RawConfig = built
        .try_deserialize()
        .map_err(|e| vec![deserialize_problem(&e)])?;
    validate(raw, base_dir, credentials)
}

/// Turns a `config` crate error into a problem naming the key when the crate says it.
fn deserialize_problem(err: &config::ConfigError) -> Problem {
    let text = without_source_lines(&err.to_string());
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

/// A parser's message without the lines of the file it quotes (`3 | token = "..."` and the
/// caret under it): those lines can hold a secret, and this message reaches the journal
/// (through `ExecStartPre` and SIGHUP reloads). What remains says where (line and column)
/// and what was expected.
fn without_source_lines(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let gutter = l
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !gutter.starts_with('|')
        })
        .collect();
    kept.join(": ").replace(": :", ":")
}

fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
}

/// The problems found so far, warnings (things that work but should be fixed), and where
/// systemd handed over credentials (`$CREDENTIALS_DIRECTORY`), if it did.
pub(crate) struct Problems(Vec<Problem>, Vec<String>, Option<PathBuf>);

impl Problems {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests;
