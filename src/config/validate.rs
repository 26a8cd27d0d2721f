//! From the raw config to the typed `Config`: every key checked, each problem named by its
//! key, all of them reported at once.

use super::attributes::build_rules;
use super::raw::{MAX_WRITE_CONCURRENCY, RawConfig, RawHttp, RawOkta, RawTelus};
use super::secret::secret;
use super::*;
use crate::reconcile::policy::{Features, ImportPolicy, MatchOn, Policy, Retry};
use std::net::IpAddr;

pub(super) fn validate(
    raw: RawConfig,
    base_dir: &Path,
    credentials: Option<PathBuf>,
) -> Result<Config, Vec<Problem>> {
    let mut p = Problems(Vec::new(), Vec::new(), credentials);
    let okta = validate_okta(&mut p, raw.okta, base_dir);
    let telus = validate_telus(&mut p, raw.telus, base_dir);
    let store_path = match raw.store.path {
        Some(path) if path.as_os_str().is_empty() => {
            p.push("store.path", "is empty");
            PathBuf::new()
        }
        Some(path) => base_dir.join(path),
        None => base_dir.join("okta-telus-sync.db"),
    };
    if raw.store.journal_days == Some(0) {
        p.push("store.journal_days", "must be at least 1");
    }
    let cron_is_default = raw.schedule.cron.is_none();
    let schedule = Schedule {
        cron_is_default,
        cron: check_cron(&mut p, "schedule.cron", raw.schedule.cron, "0 */15 * * * *"),
        full_cron: check_cron(
            &mut p,
            "schedule.full_cron",
            raw.schedule.full_cron,
            "0 0 3 * * *",
        ),
    };
    let events = validate_events(&mut p, &raw.events);
    let http = raw.http.and_then(|h| validate_http(&mut p, h));
    let notify = raw
        .notify
        .and_then(|n| validate_notify(&mut p, n, base_dir));
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
    let import = validate_import(&mut p, &raw.import);
    if let Some(OktaScope::App(app)) = okta.as_ref().map(|o| &o.scope)
        && import.auto_confirm_new
        && !import.assign_to_app
    {
        p.push(
            "import.auto_confirm_new",
            format!("an imported user must be assigned to app {app} (okta.scope), or the next pass finds it outside the scope and disables its TELUS user: set import.assign_to_app = true (Okta then pushes it too if the app provisions), or turn auto_confirm_new off"),
        );
    }
    match (okta, telus) {
        (Some(okta), Some(telus)) if p.0.is_empty() => Ok(Config {
            okta,
            telus,
            store_path,
            journal_days: raw.store.journal_days.unwrap_or(400),
            backup_warning: raw.store.backup_warning.unwrap_or(true),
            retry: Retry {
                quarantine_after: raw.retry.quarantine_after,
                backoff: std::time::Duration::from_secs(raw.retry.backoff_seconds),
            },
            schedule,
            events,
            http,
            notify,
            safety: Safety {
                max_deactivations: raw.safety.max_deactivations,
                max_changed_percent: raw.safety.max_changed_percent,
                max_creates: raw.safety.max_creates,
                max_vanished: raw.safety.max_vanished,
                max_imports: raw.safety.max_imports,
                reviewed_only: raw.safety.reviewed_only,
            },
            policy: Policy {
                rules,
                features,
                import,
            },
            warnings: p.1,
        }),
        // Every `None` above pushed a problem.
        _ => Err(p.0),
    }
}

/// `[import]`.
fn validate_import(p: &mut Problems, raw: &super::raw::RawImport) -> ImportPolicy {
    let match_on = match raw.match_on.as_str() {
        "email" => MatchOn::Email,
        "login" => MatchOn::Login,
        other => {
            p.push(
                "import.match",
                format!("{other:?} is not \"email\" or \"login\""),
            );
            MatchOn::Email
        }
    };
    ImportPolicy {
        auto_confirm_new: raw.auto_confirm_new,
        activate: raw.activate,
        match_on,
        assign_to_app: raw.assign_to_app,
    }
}

/// `[events]`.
fn validate_events(p: &mut Problems, raw: &super::raw::RawEvents) -> Events {
    use std::time::Duration;
    // The logs bucket is 120 a minute for the whole org, and this tool takes half of a
    // bucket: one poll every 2 s is the most it may spend.
    if (1..2).contains(&raw.okta_poll_seconds) {
        p.push(
            "events.okta_poll_seconds",
            format!(
                "{} s would spend more than half of Okta's System Log rate limit (120 a minute for the whole org): use 2 or more, or 0 to turn Okta events off",
                raw.okta_poll_seconds
            ),
        );
    }
    let telus_websocket = match raw.telus.as_str() {
        "websocket" => true,
        "off" => false,
        other => {
            p.push(
                "events.telus",
                format!("{other:?} is not \"websocket\" or \"off\""),
            );
            false
        }
    };
    if !(5..=600).contains(&raw.telus_heartbeat_seconds) {
        p.push(
            "events.telus_heartbeat_seconds",
            format!(
                "{} is outside 5..=600 (RingCentral closes a connection idle for 30 minutes)",
                raw.telus_heartbeat_seconds
            ),
        );
    }
    Events {
        okta_poll: (raw.okta_poll_seconds > 0).then(|| Duration::from_secs(raw.okta_poll_seconds)),
        telus_websocket,
        quiet_incremental: Duration::from_secs(raw.quiet_incremental_minutes * 60),
        // A quarter of the quiet time unless set: 15 minutes with the defaults.
        whole_pass_spacing: Duration::from_secs(
            raw.whole_pass_spacing_minutes
                .unwrap_or(raw.quiet_incremental_minutes / 4)
                * 60,
        ),
        telus_heartbeat: Duration::from_secs(raw.telus_heartbeat_seconds),
    }
}

/// `[okta]` and `[okta.oauth]`.
fn validate_okta(p: &mut Problems, raw: RawOkta, base_dir: &Path) -> Option<OktaConfig> {
    let okta_url = check_url(p, "okta.url", &raw.url);
    let okta_token = match raw.oauth {
        None => secret(
            p,
            base_dir,
            "okta.token",
            raw.token,
            raw.token_file,
            "okta-token",
            true,
        )
        .map(OktaAuth::Ssws),
        Some(oauth) => {
            if raw.token.is_some() || raw.token_file.is_some() {
                p.push(
                    "okta.token",
                    "set either okta.token or [okta.oauth], not both",
                );
            }
            if oauth.client_id.trim().is_empty() {
                p.push("okta.oauth.client_id", "is empty");
            }
            let key = secret(
                p,
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
    let scope = match raw.scope.split_once(':') {
        None if raw.scope == "all" => Some(OktaScope::All),
        Some(("group", id)) if valid_id(id) => Some(OktaScope::Group(id.to_string())),
        Some(("app", id)) if valid_id(id) => Some(OktaScope::App(id.to_string())),
        _ => {
            p.push(
                "okta.scope",
                format!(
                    "{:?} is not \"all\", \"group:<id>\" or \"app:<id>\"",
                    raw.scope
                ),
            );
            None
        }
    };

    if !(1..=MAX_WRITE_CONCURRENCY).contains(&raw.write_concurrency) {
        p.push(
            "okta.write_concurrency",
            format!(
                "{} is not between 1 and {MAX_WRITE_CONCURRENCY} (Okta limits simultaneous requests per org, shared by every client)",
                raw.write_concurrency
            ),
        );
    }

    if !(1..=100).contains(&raw.rate_limit_percent) {
        p.push(
            "okta.rate_limit_percent",
            format!(
                "{} is not between 1 and 100 (the share of each Okta rate limit this tool may use)",
                raw.rate_limit_percent
            ),
        );
    }

    let app_id = app_id(p, raw.app_id);
    Some(OktaConfig {
        url: okta_url?,
        auth: okta_token?,
        scope: scope?,
        write_concurrency: raw.write_concurrency as usize,
        rate_limit_percent: raw.rate_limit_percent as u8,
        app_id,
    })
}

/// `[telus]`.
fn validate_telus(p: &mut Problems, raw: RawTelus, base_dir: &Path) -> Option<TelusConfig> {
    let telus_url = check_url(p, "telus.url", &raw.url);
    if raw.client_id.trim().is_empty() {
        p.push("telus.client_id", "is empty");
    }
    if !valid_id(&raw.brand_id) {
        p.push("telus.brand_id", "must be a brand id such as \"7310\"");
    }
    let client_secret = secret(
        p,
        base_dir,
        "telus.client_secret",
        raw.client_secret,
        raw.client_secret_file,
        "telus-client-secret",
        true,
    );
    let jwt = secret(
        p,
        base_dir,
        "telus.jwt",
        raw.jwt,
        raw.jwt_file,
        "telus-jwt",
        false,
    );
    let redirect_uri = match raw.redirect_uri.as_deref() {
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

    if raw.bulk_task_timeout_seconds == 0 {
        p.push(
            "telus.bulk_task_timeout_seconds",
            "must be at least 1 (seconds a pass waits for a bulk-update task)",
        );
    }
    Some(TelusConfig {
        url: telus_url?,
        brand_id: raw.brand_id,
        client_id: raw.client_id,
        client_secret: client_secret?,
        jwt,
        redirect_uri: redirect_uri?,
        bulk_task_timeout: std::time::Duration::from_secs(raw.bulk_task_timeout_seconds),
    })
}

/// `[http]`: the `/metrics` and `/healthz` listener.
fn validate_http(p: &mut Problems, h: RawHttp) -> Option<HttpConfig> {
    match h.listen.parse::<std::net::SocketAddr>() {
        Ok(listen) if !listen.ip().is_loopback() => {
            p.1.push(format!(
                "http.listen: {listen} is reachable from other hosts: /metrics and /healthz have no authentication; prefer 127.0.0.1 and a scraper on this host, or restrict it with a firewall"
            ));
            Some(HttpConfig {
                listen,
                max_pass_age: std::time::Duration::from_secs(
                    h.max_pass_age_seconds.unwrap_or(7200),
                ),
            })
        }
        Ok(listen) => Some(HttpConfig {
            listen,
            max_pass_age: std::time::Duration::from_secs(h.max_pass_age_seconds.unwrap_or(7200)),
        }),
        Err(e) => {
            p.push(
                "http.listen",
                format!("{:?} is not an address like 127.0.0.1:9464: {e}", h.listen),
            );
            None
        }
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `okta.app_id`: an Okta id, or a problem.
fn app_id(p: &mut Problems, raw: Option<String>) -> Option<String> {
    match raw {
        Some(id) if !valid_id(&id) => {
            p.push(
                "okta.app_id",
                format!("{id:?} is not an Okta app id (letters and digits)"),
            );
            None
        }
        other => other,
    }
}

/// `[notify]`: a webhook (https, or plain http to loopback only, as for the APIs) and/or a
/// command; at least one. The URL is a secret (a Slack or Teams incoming webhook carries its
/// token in the path): inline, `webhook_url_file`, or the credential `notify-webhook-url`.
fn validate_notify(
    p: &mut Problems,
    n: super::raw::RawNotify,
    base_dir: &Path,
) -> Option<super::NotifyConfig> {
    use super::{NotifyFormat, WebhookUrl};
    let format = match n.format.as_deref().unwrap_or("plain") {
        "plain" => NotifyFormat::Plain,
        "slack" => NotifyFormat::Slack,
        "teams" => NotifyFormat::Teams,
        other => {
            p.push(
                "notify.format",
                format!("{other:?} is not plain, slack or teams"),
            );
            NotifyFormat::Plain
        }
    };
    // The URL is not repeated in a problem: it may carry the webhook's token.
    use secrecy::ExposeSecret as _;
    let url = secret(
        p,
        base_dir,
        "notify.webhook_url",
        n.webhook_url,
        n.webhook_url_file,
        "notify-webhook-url",
        false,
    );
    let webhook = match url.map(|u| Url::parse(u.expose_secret().trim())) {
        None => None,
        Some(Err(_)) => {
            p.push("notify.webhook_url", "is not a URL");
            None
        }
        Some(Ok(u)) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
            Some((WebhookUrl(u), format))
        }
        Some(Ok(_)) => {
            p.push(
                "notify.webhook_url",
                "must be https:// (plain http only to a loopback host)",
            );
            None
        }
    };
    let command = n.command.unwrap_or_default();
    if command.first().is_some_and(|c| c.trim().is_empty()) {
        p.push("notify.command", "names no program");
    }
    if n.channel_down_seconds == Some(0) {
        p.push("notify.channel_down_seconds", "must be at least 1");
    }
    if webhook.is_none() && command.is_empty() && !p.0.iter().any(|x| x.key.starts_with("notify")) {
        p.push("notify", "has neither webhook_url nor command");
    }
    Some(super::NotifyConfig {
        webhook,
        command,
        min_interval: std::time::Duration::from_secs(n.min_interval_seconds.unwrap_or(3600)),
        channel_down_after: std::time::Duration::from_secs(n.channel_down_seconds.unwrap_or(600)),
    })
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
