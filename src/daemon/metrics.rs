//! What the daemon exposes on `[http] listen`: counters and gauges in Prometheus text format
//! at `/metrics`, and `/healthz`. The daemon updates the figures after each pass and as
//! change events arrive.

use super::listener::Capped;
pub use super::listener::Limits;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Figures {
    /// Passes by kind and outcome.
    pub passes: BTreeMap<(String, String), u64>,
    /// Changes by direction and outcome.
    pub changes: BTreeMap<(String, String), u64>,
    /// API requests and 429s received, by system (cumulative).
    pub requests: BTreeMap<String, u64>,
    pub rate_limited: BTreeMap<String, u64>,
    /// Waits for a rate-limit budget or penalty, and their total seconds, by system.
    pub rate_waits: BTreeMap<String, u64>,
    pub rate_wait_seconds: BTreeMap<String, f64>,
    /// Unix time of the last pass that ended `ok` or `users-failed`.
    pub last_success: Option<i64>,
    /// Unix time the TELUS refresh token expires, when a session is held.
    pub refresh_expires_at: Option<i64>,
    pub quarantined: u64,
    /// Mastering rows whose Okta writes the last pass left out (Okta refuses them).
    pub left_out_rows: u64,
    /// (user, attribute) pairs Okta refused and that are not sent again while unchanged.
    pub known_refusals: u64,
    /// Known data problems: values that cannot be written until fixed at their source.
    pub data_problems: u64,
    /// The import queue's candidates by proposed outcome, as the last whole pass stored it.
    pub import_queue: BTreeMap<String, u64>,
    /// Okta users imported from TELUS, by outcome (`applied`, `failed`).
    pub imports: BTreeMap<String, u64>,
    /// Okta's built-in TELUS app (`okta.app_id`) still has a push feature on.
    pub builtin_app_pushing: bool,
    /// The TELUS session can lapse (`telus::session::assess`).
    pub session_at_risk: bool,
    /// The TELUS account refused bulk updates: one PUT per user until the refusal expires.
    pub bulk_refused: bool,
    /// Changes not confirmed yet (a bulk task still running, a lost answer, a stopped run).
    pub unconfirmed: u64,
    /// When the oldest of them was journalled (Unix time).
    pub oldest_unconfirmed_at: Option<i64>,
    /// The last pass was held by a safety limit: it waits for `sync --approve`.
    pub pass_held: bool,
    /// Unix time the last full pass that ended well finished.
    pub last_full_pass: Option<i64>,
    /// Change events by side (`okta`, `telus`) and what became of them (`hint`: the user was
    /// read again; `own`: an echo of this tool's write; `ignored`: nothing this tool reads).
    pub events: BTreeMap<(String, String), u64>,
    /// Whether each configured event channel is up (by side).
    pub channel_up: BTreeMap<String, bool>,
    /// Seconds from a change event to the end of the pass that applied what it named:
    /// sum, count and the last one.
    pub event_lag_sum: f64,
    pub event_lag_count: u64,
    pub event_lag_last: Option<f64>,
    /// Notifications by kind and result (`sent`: every output took it; `failed`: one did
    /// not after its retries; `dropped`: one of its kind went out within the interval).
    pub notifications: BTreeMap<(String, String), u64>,
}

pub type Shared = Arc<Mutex<Figures>>;

/// Prometheus text exposition format (version 0.0.4).
pub fn render(f: &Figures, now: i64) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        "okta_telus_sync_passes_total",
        "counter",
        "Passes run, by kind and outcome.",
    );
    for ((kind, outcome), n) in &f.passes {
        let _ = writeln!(
            out,
            "okta_telus_sync_passes_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let mut family = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        "okta_telus_sync_changes_total",
        "counter",
        "Attribute and lifecycle changes, by direction and outcome.",
    );
    for ((direction, outcome), n) in &f.changes {
        let _ = writeln!(
            out,
            "okta_telus_sync_changes_total{{direction=\"{direction}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    by_system(
        &mut out,
        "okta_telus_sync_api_requests_total",
        "API requests sent, by system.",
        &f.requests,
    );
    by_system(
        &mut out,
        "okta_telus_sync_api_rate_limited_total",
        "429 responses received, by system.",
        &f.rate_limited,
    );
    by_system(
        &mut out,
        "okta_telus_sync_rate_limit_waits_total",
        "Pauses made to respect a rate-limit budget or penalty, by system.",
        &f.rate_waits,
    );
    by_system(
        &mut out,
        "okta_telus_sync_rate_limit_wait_seconds_total",
        "Time spent in those pauses, by system.",
        &f.rate_wait_seconds,
    );
    render_progress(&mut out, f, now);
    gauge(
        &mut out,
        "okta_telus_sync_quarantined_users",
        "Users quarantined after repeated failures.",
        f.quarantined,
    );
    gauge(
        &mut out,
        "okta_telus_sync_okta_rows_left_out",
        "Mastering rows whose Okta writes the last pass left out because Okta refuses them (read-only or mastered elsewhere).",
        f.left_out_rows,
    );
    render_known(&mut out, f);
    render_imports(&mut out, f);
    render_pending(&mut out, f, now);
    render_events(&mut out, f);
    render_notifications(&mut out, f);
    out
}

/// How passes are going: the last success, the last full pass, a held pass, the session.
fn render_progress(out: &mut String, f: &Figures, now: i64) {
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_last_success_timestamp_seconds When the last successful pass ended.\n# TYPE okta_telus_sync_last_success_timestamp_seconds gauge"
    );
    let _ = writeln!(
        out,
        "okta_telus_sync_last_success_timestamp_seconds {}",
        f.last_success.unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_last_full_pass_timestamp_seconds When the last full pass that ended well (ok or users-failed) finished; 0 before the first.\n# TYPE okta_telus_sync_last_full_pass_timestamp_seconds gauge\nokta_telus_sync_last_full_pass_timestamp_seconds {}",
        f.last_full_pass.unwrap_or(0)
    );
    gauge(
        out,
        "okta_telus_sync_pass_held",
        "1 while the last pass was held by a safety limit: nothing is written until `okta-telus-sync sync --approve`.",
        u8::from(f.pass_held),
    );
    // HELP and TYPE even while there is no sample: a dashboard or rule finds the family.
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_telus_refresh_token_seconds_left Seconds until the TELUS refresh token expires (no sample without an `auth telus` session).\n# TYPE okta_telus_sync_telus_refresh_token_seconds_left gauge"
    );
    if let Some(exp) = f.refresh_expires_at {
        let _ = writeln!(
            out,
            "okta_telus_sync_telus_refresh_token_seconds_left {}",
            exp - now
        );
    }
}

/// One gauge with its HELP and TYPE lines.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// The import queue and the imports done.
fn render_imports(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_import_queue TELUS users with no Okta match, by proposed outcome (new, partial, conflict, unchecked).\n# TYPE okta_telus_sync_import_queue gauge"
    );
    for outcome in ["new", "partial", "conflict", "unchecked"] {
        let n = f.import_queue.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "okta_telus_sync_import_queue{{outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_imports_total Okta users created (or linked) from the import queue, by outcome.\n# TYPE okta_telus_sync_imports_total counter"
    );
    for outcome in ["applied", "failed"] {
        let n = f.imports.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "okta_telus_sync_imports_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    gauge(
        out,
        "okta_telus_sync_builtin_app_pushing",
        "1 while Okta's built-in TELUS app (okta.app_id) still has a provisioning feature on: two writers fight over the same users.",
        u8::from(f.builtin_app_pushing),
    );
}

/// What is known not to be writable: Okta refusals, data problems, a session that can lapse.
fn render_known(out: &mut String, f: &Figures) {
    gauge(
        out,
        "okta_telus_sync_okta_known_refusals",
        "Attributes Okta refused for one user (E0000023: the user's profile source masters them), not sent again until the user or the attribute's master changes.",
        f.known_refusals,
    );
    gauge(
        out,
        "okta_telus_sync_data_problems",
        "Values that cannot be written until someone fixes them at their source (not a phone number, over a length limit, refused as invalid): not sent, and not failing passes, while unchanged.",
        f.data_problems,
    );
    gauge(
        out,
        "okta_telus_sync_telus_session_at_risk",
        "1 when the TELUS session can lapse: a JWT credential within 14 days of its expiry, or an authorization-code session whose refresh token ends within two days or before the next scheduled pass.",
        u8::from(f.session_at_risk),
    );
}

/// Change events: received per side, channel state, lag to the applied change.
fn render_events(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_events_total Change events received, by side and what became of them (hint: its users were read again; own: an echo of this tool's write; ignored: names nothing this tool syncs).\n# TYPE okta_telus_sync_events_total counter"
    );
    for ((side, kind), n) in &f.events {
        let _ = writeln!(
            out,
            "okta_telus_sync_events_total{{side=\"{side}\",kind=\"{kind}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_event_channel_up 1 while a configured change-event channel is up (Okta: the last System Log poll answered; TELUS: the WebSocket is subscribed).\n# TYPE okta_telus_sync_event_channel_up gauge"
    );
    for (side, up) in &f.channel_up {
        let _ = writeln!(
            out,
            "okta_telus_sync_event_channel_up{{side=\"{side}\"}} {}",
            u8::from(*up)
        );
    }
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_event_lag_seconds Seconds from a change event to the end of the pass that applied its change.\n# TYPE okta_telus_sync_event_lag_seconds summary\nokta_telus_sync_event_lag_seconds_sum {}\nokta_telus_sync_event_lag_seconds_count {}",
        f.event_lag_sum, f.event_lag_count
    );
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_event_lag_last_seconds The lag of the last event-driven change.\n# TYPE okta_telus_sync_event_lag_last_seconds gauge"
    );
    if let Some(last) = f.event_lag_last {
        let _ = writeln!(out, "okta_telus_sync_event_lag_last_seconds {last}");
    }
}

/// `[notify]`'s notifications and what became of them.
fn render_notifications(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_notifications_total Notifications ([notify]) by kind and result (sent: every output took it; failed: one did not, after its retries; dropped: one of the kind was sent within notify.min_interval_seconds).\n# TYPE okta_telus_sync_notifications_total counter"
    );
    for ((kind, result), n) in &f.notifications {
        let _ = writeln!(
            out,
            "okta_telus_sync_notifications_total{{kind=\"{kind}\",result=\"{result}\"}} {n}"
        );
    }
}

/// What waits on TELUS: a refusal of bulk updates, changes not confirmed yet.
fn render_pending(out: &mut String, f: &Figures, now: i64) {
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_telus_bulk_refused 1 while the TELUS account refuses bulk updates (extension-bulk-update) and updates go one PUT per user (40 a minute).\n# TYPE okta_telus_sync_telus_bulk_refused gauge\nokta_telus_sync_telus_bulk_refused {}",
        u8::from(f.bulk_refused)
    );
    let _ = writeln!(
        out,
        "# HELP okta_telus_sync_unconfirmed_changes Changes journalled but not confirmed yet (a bulk task still running, an answer lost, a stopped run); the next pass settles them.\n# TYPE okta_telus_sync_unconfirmed_changes gauge\nokta_telus_sync_unconfirmed_changes {}",
        f.unconfirmed
    );
    gauge(
        out,
        "okta_telus_sync_oldest_unconfirmed_change_age_seconds",
        "Age of the oldest change not confirmed yet; 0 when there is none.",
        f.oldest_unconfirmed_at.map_or(0, |t| (now - t).max(0)),
    );
}

/// Healthy when the last successful pass is recent enough and the TELUS session is alive.
pub fn health(f: &Figures, now: i64, max_age: std::time::Duration) -> Result<String, String> {
    if let Some(exp) = f.refresh_expires_at
        && exp <= now
    {
        return Err("the TELUS refresh token has expired: run `okta-telus-sync auth telus`".into());
    }
    match f.last_success {
        Some(t) if now - t <= max_age.as_secs() as i64 => {
            Ok(format!("ok: last successful pass {}s ago", now - t))
        }
        Some(t) => Err(format!("the last successful pass was {}s ago", now - t)),
        None => Err("no successful pass yet".into()),
    }
}

#[derive(Clone)]
struct AppState {
    figures: Shared,
    max_age: std::time::Duration,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let text = render(&s.figures.lock().unwrap_or_else(|e| e.into_inner()), now());
    ([("content-type", "text/plain; version=0.0.4")], text)
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match health(
        &s.figures.lock().unwrap_or_else(|e| e.into_inner()),
        now(),
        s.max_age,
    ) {
        Ok(m) => (StatusCode::OK, m),
        Err(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

/// A counter by system: its HELP and TYPE lines, then one line per system.
fn by_system<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    values: &BTreeMap<String, V>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (system, v) in values {
        let _ = writeln!(out, "{name}{{system=\"{system}\"}} {v}");
    }
}

/// Serves `/metrics` and `/healthz` until the task is aborted.
pub async fn serve(
    listen: std::net::SocketAddr,
    figures: Shared,
    max_age: std::time::Duration,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_with(listen, figures, max_age, Limits::default()).await
}

/// [`serve`] with explicit limits (tests use short ones).
pub async fn serve_with(
    listen: std::net::SocketAddr,
    figures: Shared,
    max_age: std::time::Duration,
    limits: Limits,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(AppState { figures, max_age });
    let listener = Capped::new(tokio::net::TcpListener::bind(listen).await?, limits);
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

#[cfg(test)]
mod tests {
    /// The metric families a text names (`okta_telus_sync_…`), a summary's `_sum` and
    /// `_count` series folded into their family.
    fn named_families(text: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("okta_telus_sync_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            out.insert(family.to_string());
            rest = &tail[end..];
        }
        out
    }

    /// Every family the shipped dashboard and alert rules query is one `/metrics` renders,
    /// with its HELP and TYPE lines, even while it has no sample (a fresh daemon): neither
    /// can rot when a metric is renamed.
    #[test]
    fn the_dashboard_and_the_alert_rules_query_only_exported_metrics() {
        let rendered = super::render(&super::Figures::default(), 0);
        let helped: std::collections::BTreeSet<String> = rendered
            .lines()
            .filter_map(|l| l.strip_prefix("# HELP "))
            .filter_map(|l| l.split(' ').next())
            .map(str::to_string)
            .collect();
        let typed = rendered
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .count();
        assert_eq!(typed, helped.len(), "a family without HELP or TYPE");
        for (file, text) in [
            (
                "packaging/grafana/okta-telus-sync.json",
                include_str!("../../packaging/grafana/okta-telus-sync.json"),
            ),
            (
                "packaging/prometheus/okta-telus-sync.rules.yml",
                include_str!("../../packaging/prometheus/okta-telus-sync.rules.yml"),
            ),
        ] {
            let queried = named_families(text);
            assert!(queried.len() >= 9, "{file} queries {queried:?}");
            let missing: Vec<&String> = queried.difference(&helped).collect();
            assert!(
                missing.is_empty(),
                "{file} queries {missing:?}, not exported"
            );
        }
    }

    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    async fn serve(limits: Limits) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let server = serve_with(addr, Default::default(), Duration::from_secs(60), limits)
            .await
            .unwrap();
        (addr, server)
    }

    /// Idle clients cannot hold the listener: each is closed at the latest at the end of
    /// its lifetime, the quietest at once when a new one comes, so `/healthz` answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_neither_pile_up_nor_starve_healthz() {
        use tokio::io::AsyncReadExt as _;
        let limits = Limits {
            connections: 4,
            lifetime: Duration::from_millis(800),
            first_byte: Duration::from_millis(400),
        };
        let (addr, server) = serve(limits).await;
        let mut idle = Vec::new();
        for _ in 0..40 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        for s in &mut idle {
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .expect("the server closed an idle connection");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
        let resp = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503, "no pass yet, but it answers");
        server.abort();
    }

    /// 64 clients that connect, send nothing, and reconnect as soon as they are closed.
    /// Counts their reconnections.
    fn hogs(addr: std::net::SocketAddr, stop: &Arc<AtomicBool>) -> Arc<AtomicU64> {
        use tokio::io::AsyncReadExt as _;
        let reconnects = Arc::new(AtomicU64::new(0));
        for _ in 0..64 {
            let (reconnects, stop) = (reconnects.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                        let mut buf = [0u8; 1];
                        let _ = s.read(&mut buf).await;
                        reconnects.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        reconnects
    }

    /// How many of 30 `/healthz` probes were answered.
    async fn probes(addr: std::net::SocketAddr) -> usize {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut answered = 0;
        for _ in 0..30 {
            if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await {
                answered += usize::from(r.status().as_u16() == 503);
            }
        }
        answered
    }

    /// 64 clients that reconnect as soon as they are closed do not starve `/healthz` under
    /// the shipped limits: every probe is answered, and the churn was real.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_that_reconnect_at_once_do_not_starve_healthz() {
        {
            let limits = Limits::default();
            let (addr, server) = serve(limits).await;
            let stop = Arc::new(AtomicBool::new(false));
            let reconnects = hogs(addr, &stop);
            // real time: the hogs are closed for their silence and come back
            tokio::time::sleep(limits.first_byte + Duration::from_millis(300)).await;
            let answered = probes(addr).await;
            stop.store(true, Ordering::SeqCst);
            server.abort();
            assert!(
                reconnects.load(Ordering::SeqCst) >= 64,
                "{limits:?}: the hogs were closed and came back"
            );
            assert_eq!(answered, 30, "{limits:?}: every probe answered");
        }
    }

    #[test]
    fn health_follows_the_last_success_and_the_token() {
        let mut f = Figures::default();
        let max = std::time::Duration::from_secs(600);
        assert!(health(&f, 1000, max).is_err());
        f.last_success = Some(900);
        assert!(health(&f, 1000, max).is_ok());
        assert!(health(&f, 2000, max).is_err());
        f.refresh_expires_at = Some(950);
        assert!(health(&f, 1000, max).unwrap_err().contains("auth telus"));
    }

    #[test]
    fn event_metrics_render_per_side_with_the_lag() {
        let mut f = Figures::default();
        f.events.insert(("telus".into(), "own".into()), 5000);
        f.events.insert(("okta".into(), "hint".into()), 3);
        f.channel_up.insert("okta".into(), true);
        f.channel_up.insert("telus".into(), false);
        f.event_lag_sum = 12.5;
        f.event_lag_count = 3;
        f.event_lag_last = Some(1.5);
        let text = render(&f, 0);
        for line in [
            "okta_telus_sync_events_total{side=\"telus\",kind=\"own\"} 5000",
            "okta_telus_sync_events_total{side=\"okta\",kind=\"hint\"} 3",
            "okta_telus_sync_event_channel_up{side=\"okta\"} 1",
            "okta_telus_sync_event_channel_up{side=\"telus\"} 0",
            "okta_telus_sync_event_lag_seconds_sum 12.5",
            "okta_telus_sync_event_lag_seconds_count 3",
            "okta_telus_sync_event_lag_last_seconds 1.5",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn metrics_render_in_prometheus_text() {
        let mut f = Figures::default();
        f.passes.insert(("full".into(), "ok".into()), 2);
        f.changes
            .insert(("okta->telus".into(), "applied".into()), 7);
        f.requests.insert("telus".into(), 12);
        f.rate_limited.insert("telus".into(), 0);
        f.rate_waits.insert("telus".into(), 4);
        f.rate_wait_seconds.insert("telus".into(), 12.5);
        f.last_success = Some(1_700_000_000);
        let text = render(&f, 1_700_000_100);
        assert!(text.contains("okta_telus_sync_passes_total{kind=\"full\",outcome=\"ok\"} 2"));
        assert!(text.contains(
            "okta_telus_sync_changes_total{direction=\"okta->telus\",outcome=\"applied\"} 7"
        ));
        assert!(text.contains("# TYPE okta_telus_sync_api_requests_total counter"));
        assert!(text.contains("okta_telus_sync_last_success_timestamp_seconds 1700000000"));
        assert!(text.contains("okta_telus_sync_rate_limit_waits_total{system=\"telus\"} 4"));
        assert!(
            text.contains("okta_telus_sync_rate_limit_wait_seconds_total{system=\"telus\"} 12.5")
        );
        f.left_out_rows = 1;
        assert!(render(&f, 0).contains("okta_telus_sync_okta_rows_left_out 1"));
        f.known_refusals = 2;
        assert!(render(&f, 0).contains("okta_telus_sync_okta_known_refusals 2"));
        f.data_problems = 3;
        assert!(render(&f, 0).contains("okta_telus_sync_data_problems 3"));
        assert!(render(&f, 0).contains("okta_telus_sync_telus_session_at_risk 0"));
        f.session_at_risk = true;
        assert!(render(&f, 0).contains("okta_telus_sync_telus_session_at_risk 1"));
        assert!(render(&f, 0).contains("okta_telus_sync_telus_bulk_refused 0"));
        f.bulk_refused = true;
        f.unconfirmed = 3;
        assert!(render(&f, 0).contains("okta_telus_sync_telus_bulk_refused 1"));
        assert!(render(&f, 0).contains("okta_telus_sync_unconfirmed_changes 3"));
    }
}
