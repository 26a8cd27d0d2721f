//! The daemon shell around passes (`run`): schedules, one pass at a time, backoff after a
//! whole-system failure, signals (stop, reload, pass now), systemd notifications, metrics.
//! It alone owns spawning, the scheduler, backoff and signals.

pub mod events;
pub mod metrics;
pub mod pass;
pub mod targeted;

use crate::config::{self, Config};
use crate::http::HttpSettings;
use crate::model::PassOutcome;
use crate::store::Store;
use crate::summary::PassReport;
use pass::{Clients, PassOptions, run_one_pass};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use targeted::{Named, Targeted, run_targeted_pass};
use tokio::sync::mpsc;

/// What the operator can ask of a running daemon (SIGTERM/SIGINT, SIGHUP, SIGUSR1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Reload,
    PassNow,
}

/// Which kind of pass a tick asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tick {
    Incremental,
    Full,
}

/// Starts the cron jobs; each sends a tick and nothing else.
async fn start_scheduler(
    config: &Config,
    ticks: mpsc::Sender<Tick>,
) -> anyhow::Result<tokio_cron_scheduler::JobScheduler> {
    use tokio_cron_scheduler::{Job, JobScheduler};
    let sched = JobScheduler::new().await?;
    for (expr, tick) in [
        (config.schedule.cron.clone(), Tick::Incremental),
        (config.schedule.full_cron.clone(), Tick::Full),
    ] {
        let tx = ticks.clone();
        let job = Job::new_async_tz(expr.as_str(), chrono::Local, move |_, _| {
            let tx = tx.clone();
            Box::pin(async move {
                // A full channel means a pass is already due: the tick is coalesced.
                let _ = tx.try_send(tick);
            })
        })?;
        sched.add(job).await?;
    }
    sched.start().await?;
    Ok(sched)
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// What changed between two configs, by section, for the reload log (no values: secrets).
fn config_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    // Secrets print the same in `Debug`: compare them by digest, or a rotated token or
    // secret file would never reach the clients.
    if old.okta.fingerprint() != new.okta.fingerprint() {
        changed.push("okta");
    }
    if old.telus.fingerprint() != new.telus.fingerprint() {
        changed.push("telus");
    }
    if old.store_path != new.store_path || old.journal_days != new.journal_days {
        changed.push("store");
    }
    if old.schedule != new.schedule {
        changed.push("schedule");
    }
    if old.events != new.events {
        changed.push("events");
    }
    if old.safety != new.safety {
        changed.push("safety");
    }
    if old.retry != new.retry {
        changed.push("retry");
    }
    if old.policy.features != new.policy.features {
        changed.push("features");
    }
    if old.policy.rules != new.policy.rules {
        changed.push("attributes");
    }
    if old.http != new.http {
        changed.push("http");
    }
    changed
}

/// Records a finished pass in the metrics.
fn record(
    figures: &metrics::Shared,
    config: &Config,
    store: &Store,
    clients: &Clients,
    report: &PassReport,
) {
    let kind = report.kind;
    let session = crate::report::session_assessment(
        config,
        store.credentials("telus").ok().flatten().as_ref(),
    );
    let mut f = figures.lock().unwrap_or_else(|e| e.into_inner());
    f.session_at_risk = session.at_risk;
    *f.passes
        .entry((
            kind.as_str().to_string(),
            report.outcome.as_str().to_string(),
        ))
        .or_default() += 1;
    if let Some(id) = report.pass_id
        && let Ok(counts) = store.pass_change_counts(id)
    {
        for (direction, outcome, n) in counts {
            *f.changes
                .entry((direction, outcome.as_str().to_string()))
                .or_default() += n;
        }
    }
    f.requests.insert(
        "okta".into(),
        clients.okta.counters.requests.load(Ordering::Relaxed),
    );
    f.requests.insert(
        "telus".into(),
        clients.telus.counters.requests.load(Ordering::Relaxed),
    );
    f.rate_limited.insert(
        "okta".into(),
        clients.okta.counters.rate_limited.load(Ordering::Relaxed),
    );
    f.rate_limited.insert(
        "telus".into(),
        clients.telus.counters.rate_limited.load(Ordering::Relaxed),
    );
    if matches!(
        report.outcome,
        PassOutcome::Clean | PassOutcome::UsersFailed
    ) {
        f.last_success = Some(chrono::Utc::now().timestamp());
    }
    f.refresh_expires_at = store
        .credentials("telus")
        .ok()
        .flatten()
        .and_then(|t| t.refresh_expires_at);
    f.quarantined = store
        .failures()
        .map(|v| v.iter().filter(|r| r.quarantined).count() as u64)
        .unwrap_or(0);
    if report.system_error.is_none() {
        f.left_out_rows = report.plan.left_out.len() as u64;
    }
    f.known_refusals = store.okta_refusals().map(|v| v.len() as u64).unwrap_or(0);
    f.data_problems = store.data_problems().map(|v| v.len() as u64).unwrap_or(0);
    f.bulk_refused = crate::apply::bulk_refusal(store).is_some();
    f.unconfirmed = store.unfinished_count().map(|n| n as u64).unwrap_or(0);
}

/// Whether a scheduled incremental tick may be skipped: the cron is the default one, every
/// event channel is healthy, and the last whole pass (its outcome and start) succeeded within
/// `events.quiet_incremental`.
fn skip_incremental_tick(
    config: &Config,
    healthy: bool,
    last_whole: Option<(Option<PassOutcome>, &str)>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let quiet = config.events.quiet_incremental;
    if quiet.is_zero() || !config.schedule.cron_is_default || !healthy {
        return false;
    }
    let Some((outcome, started_at)) = last_whole else {
        return false;
    };
    let ok = matches!(outcome, Some(PassOutcome::Clean | PassOutcome::UsersFailed));
    let recent = chrono::DateTime::parse_from_rfc3339(started_at)
        .map(|t| now - t.with_timezone(&chrono::Utc))
        .is_ok_and(|age| age.to_std().is_ok_and(|age| age < quiet));
    ok && recent
}

/// Says in the log which change events the daemon listens to.
fn log_events_config(config: &Config) {
    let e = &config.events;
    match (e.okta_poll, e.telus_websocket) {
        (None, false) => tracing::info!("change events off: passes run on the schedule only"),
        (okta, telus) => tracing::info!(
            okta_poll_s = okta.map(|d| d.as_secs()).unwrap_or(0),
            telus = if telus { "websocket" } else { "off" },
            quiet_incremental_min = e.quiet_incremental.as_secs() / 60,
            "change events on: targeted passes within seconds of a change"
        ),
    }
}

/// Delay before passes resume after a whole-system failure: 1 min doubling to 1 h, jittered.
fn failure_backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(60).saturating_mul(1 << failures.saturating_sub(1).min(6));
    crate::http::backoff_delay(
        &HttpSettings {
            backoff: base.min(Duration::from_secs(3600)),
            ..HttpSettings::default()
        },
        1,
    )
}

/// The daemon's state between passes.
struct Daemon {
    config_path: PathBuf,
    config: Config,
    store: Store,
    clients: Clients,
    figures: metrics::Shared,
    http: Option<tokio::task::JoinHandle<()>>,
    sched: tokio_cron_scheduler::JobScheduler,
    tick_tx: mpsc::Sender<Tick>,
    stop: AtomicBool,
    system_failures: u32,
    /// While backing off after a whole-system failure: when passes resume.
    resume_at: Option<tokio::time::Instant>,
    reload_pending: bool,
    /// An operator asked for a pass (SIGUSR1): it runs even while events keep passes quiet.
    forced: bool,
    /// The change-event channels, and what they have named since the last pass.
    channels: Option<events::Channels>,
    events: events::Events,
}

/// What the daemon answers while a pass runs.
struct Inbox<'a> {
    signals: &'a mut mpsc::Receiver<Signal>,
    ticks: &'a mut mpsc::Receiver<Tick>,
    watchdog: &'a mut tokio::time::Interval,
}

/// The next change event, or never when no channel runs.
async fn next_event(channels: &mut Option<events::Channels>) -> Option<events::Event> {
    match channels {
        Some(c) => c.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Drives `pass` to its end while answering signals (a stop lets the change in flight
/// finish; a reload waits for the end), coalescing ticks, and taking in change events (they
/// go in the next event-driven pass). Returns the pass's result and whether a reload waits.
async fn drive<T>(
    pass: impl std::future::Future<Output = T>,
    stop: &AtomicBool,
    inbox: &mut Inbox<'_>,
    channels: &mut Option<events::Channels>,
    ev: &mut events::Events,
    store: &Store,
) -> (T, bool) {
    tokio::pin!(pass);
    let mut reload = false;
    loop {
        tokio::select! {
            r = &mut pass => return (r, reload),
            Some(sig) = inbox.signals.recv() => match sig {
                Signal::Terminate => {
                    tracing::info!("stop requested: finishing the change in flight");
                    notify(&[sd_notify::NotifyState::Stopping]);
                    stop.store(true, Ordering::SeqCst);
                }
                Signal::Reload => reload = true,
                Signal::PassNow => {}
            },
            Some(_) = inbox.ticks.recv() => tracing::debug!("tick during a pass: coalesced"),
            Some(e) = next_event(channels) => ev.on_event(e, store),
            _ = inbox.watchdog.tick() => notify(&[sd_notify::NotifyState::Watchdog]),
        }
    }
}

/// Runs passes on the schedules until `Signal::Terminate`. `config_path` is re-read on
/// `Signal::Reload`; a config that fails validation is logged with its keys and ignored.
pub async fn run(
    config_path: PathBuf,
    config: Config,
    mut signals: mpsc::Receiver<Signal>,
) -> anyhow::Result<()> {
    let store = Store::open(&config.store_path)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let figures: metrics::Shared = Default::default();
    let http = match &config.http {
        Some(h) => Some(metrics::serve(h.listen, figures.clone(), h.max_pass_age).await?),
        None => None,
    };
    let (tick_tx, mut ticks) = mpsc::channel::<Tick>(1);
    let sched = start_scheduler(&config, tick_tx.clone()).await?;
    tracing::info!(cron = %config.schedule.cron, full_cron = %config.schedule.full_cron, "daemon started");
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("waiting for the first scheduled pass"),
    ]);
    let mut watchdog = tokio::time::interval(
        sd_notify::watchdog_enabled()
            .map(|d| d / 2)
            .unwrap_or(Duration::from_secs(3600)),
    );
    let channels = events::start(&config, &clients, &store);
    log_events_config(&config);
    let mut d = Daemon {
        events: events::Events::new(&config, figures.clone()),
        config_path,
        config,
        store,
        clients,
        figures,
        http,
        sched,
        tick_tx,
        stop: AtomicBool::new(false),
        system_failures: 0,
        resume_at: None,
        reload_pending: false,
        forced: false,
        channels,
    };
    let mut due: Option<Tick> = None;
    loop {
        if std::mem::take(&mut d.reload_pending) {
            d.reload().await?;
        }
        let mut inbox = Inbox {
            signals: &mut signals,
            ticks: &mut ticks,
            watchdog: &mut watchdog,
        };
        if let Some(tick) = due.take() {
            d.tick(tick, &mut inbox).await;
        }
        let backing_off = d.resume_at.is_some_and(|t| t > tokio::time::Instant::now());
        if !backing_off
            && !d.stop.load(Ordering::SeqCst)
            && d.events
                .due
                .is_some_and(|t| t <= tokio::time::Instant::now())
        {
            d.event_pass(&mut inbox).await;
        }
        if d.stop.load(Ordering::SeqCst) {
            break;
        }
        let event_due = d.events.due.map(|t| t.max(d.resume_at.unwrap_or(t)));
        tokio::select! {
            Some(e) = next_event(&mut d.channels) => d.events.on_event(e, &d.store),
            _ = tokio::time::sleep_until(event_due.unwrap_or_else(tokio::time::Instant::now)), if event_due.is_some() => {}
            Some(sig) = signals.recv() => match sig {
                Signal::Terminate => break,
                Signal::Reload => d.reload_pending = true,
                Signal::PassNow => {
                    // An operator's request overrides a backoff.
                    d.resume_at = None;
                    d.forced = true;
                    due = Some(Tick::Incremental);
                }
            },
            Some(tick) = ticks.recv() => due = Some(due.map_or(tick, |d| d.max(tick))),
            _ = watchdog.tick() => notify(&[sd_notify::NotifyState::Watchdog]),
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    d.channels = None;
    d.events.stopped(&d.store);
    let _ = d.sched.shutdown().await;
    if let Some(h) = d.http.take() {
        h.abort();
    }
    tracing::info!("daemon stopped");
    Ok(())
}

impl Daemon {
    /// Re-reads `sync.toml`: a valid one takes effect from the next pass (clients, schedule
    /// and listener rebuilt as needed); a broken one is logged and the old one stays.
    async fn reload(&mut self) -> anyhow::Result<()> {
        let new = match config::load(&self.config_path) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, "config reload rejected; the previous config stays in force");
                return Ok(());
            }
        };
        for w in &new.warnings {
            tracing::warn!(warning = %w, "configuration");
        }
        let changed = config_changes(&self.config, &new);
        if new.store_path != self.config.store_path {
            tracing::warn!("store.path changed: takes effect after a restart");
        }
        if changed.contains(&"okta") || changed.contains(&"telus") {
            self.clients = Clients::from_store(&new, HttpSettings::default(), &self.store)?;
        }
        if changed.contains(&"schedule") {
            let _ = self.sched.shutdown().await;
            self.sched = start_scheduler(&new, self.tick_tx.clone()).await?;
        }
        if changed.contains(&"http") {
            // The new listener is bound before the old one is dropped: a port that is taken
            // keeps the old listener (and the daemon) running.
            let replacement = match &new.http {
                Some(h) => {
                    match metrics::serve(h.listen, self.figures.clone(), h.max_pass_age).await {
                        Ok(server) => Some(Some(server)),
                        Err(e) => {
                            tracing::error!(listen = %h.listen, error = %e, "cannot listen on the new http.listen; the previous listener stays");
                            None
                        }
                    }
                }
                None => Some(None),
            };
            if let Some(server) = replacement
                && let Some(old) = std::mem::replace(&mut self.http, server)
            {
                old.abort();
            }
        }
        let store_path = self.config.store_path.clone();
        let restart_events = ["okta", "telus", "events"]
            .iter()
            .any(|c| changed.contains(c));
        self.config = new;
        self.config.store_path = store_path;
        if restart_events {
            // New credentials or settings: the channels start again, and what they missed
            // meanwhile is read by a pass.
            self.channels = None;
            self.events = events::Events::new(&self.config, self.figures.clone());
            self.channels = events::start(&self.config, &self.clients, &self.store);
            log_events_config(&self.config);
        }
        tracing::info!(changed = %changed.join(","), "config reloaded; takes effect from the next pass");
        Ok(())
    }

    /// Runs the pass a tick asks for (unless backing off, or, for an incremental tick, while
    /// change events are healthy and a whole pass ran recently enough).
    async fn tick(&mut self, tick: Tick, inbox: &mut Inbox<'_>) {
        if self
            .resume_at
            .is_some_and(|t| t > tokio::time::Instant::now())
        {
            tracing::info!("pass skipped: backing off after a whole-system failure");
            return;
        }
        if tick == Tick::Incremental && !std::mem::take(&mut self.forced) && self.quiet() {
            tracing::debug!(
                "incremental tick skipped: change events are healthy and a whole pass ran within events.quiet_incremental_minutes"
            );
            return;
        }
        // Hints heard before this pass are answered by its read.
        let (named, catchup) = self.events.take();
        let tick = match &catchup {
            Some((events::Catchup::Full, _)) => Tick::Full,
            _ => tick,
        };
        self.whole_pass(tick, named, catchup, inbox).await;
    }

    /// Whether change events are healthy and a whole pass ran recently enough that a
    /// scheduled incremental pass may wait.
    fn quiet(&self) -> bool {
        let last = self.store.last_whole_pass().ok().flatten();
        skip_incremental_tick(
            &self.config,
            self.events.healthy(),
            last.as_ref()
                .map(|p| (p.summary.outcome, p.started_at.as_str())),
            chrono::Utc::now(),
        )
    }

    /// Runs a full or incremental pass; `named` and `catchup` are what events had asked for
    /// (for the lag; put back when the pass could not run or failed whole).
    async fn whole_pass(
        &mut self,
        tick: Tick,
        named: Named,
        catchup: Option<(events::Catchup, String)>,
        inbox: &mut Inbox<'_>,
    ) {
        let kind = if tick == Tick::Full {
            "full"
        } else {
            "incremental"
        };
        notify(&[sd_notify::NotifyState::Status(&format!(
            "running a {kind} pass"
        ))]);
        let opts = PassOptions {
            full: tick == Tick::Full,
            stop: Some(&self.stop),
            ..PassOptions::default()
        };
        let (report, reload) = drive(
            run_one_pass(&self.config, &self.clients, &self.store, opts),
            &self.stop,
            inbox,
            &mut self.channels,
            &mut self.events,
            &self.store,
        )
        .await;
        self.reload_pending |= reload;
        match &report {
            Ok(r) if !matches!(r.outcome, PassOutcome::Busy | PassOutcome::SystemFailed) => {
                self.events
                    .after_pass(&self.store, r.pass_id, &named, r.apply.applied > 0);
            }
            // What events asked for waits for the store, or for the end of the backoff.
            _ if catchup.is_some() || !named.is_empty() => {
                self.events.put_back(named, catchup, Duration::from_secs(5));
            }
            _ => {}
        }
        self.after_pass(report);
    }

    /// Runs what change events asked for: a whole pass when events were lost (or a targeted
    /// pass escalates), else a targeted pass for the users they named.
    async fn event_pass(&mut self, inbox: &mut Inbox<'_>) {
        let (named, catchup) = self.events.take();
        if let Some((kind, reason)) = catchup {
            tracing::info!(reason = %reason, "change events ask for a pass of the whole directory");
            let tick = match kind {
                events::Catchup::Full => Tick::Full,
                events::Catchup::Incremental => Tick::Incremental,
            };
            return self
                .whole_pass(tick, named, Some((kind, reason)), inbox)
                .await;
        }
        if named.is_empty() {
            return;
        }
        notify(&[sd_notify::NotifyState::Status("running a targeted pass")]);
        let opts = PassOptions {
            stop: Some(&self.stop),
            ..PassOptions::default()
        };
        let (result, reload) = drive(
            run_targeted_pass(&self.config, &self.clients, &self.store, opts, &named),
            &self.stop,
            inbox,
            &mut self.channels,
            &mut self.events,
            &self.store,
        )
        .await;
        self.reload_pending |= reload;
        match result {
            Ok(Targeted::Nothing) => {
                tracing::debug!(users = named.len(), "change events named no linked user");
                self.events.after_pass(&self.store, None, &named, false);
            }
            Ok(Targeted::Escalate(reason)) => {
                tracing::info!(reason = %reason, "targeted pass not enough: an incremental pass follows");
                self.events.put_back(
                    Named::default(),
                    Some((events::Catchup::Incremental, reason)),
                    Duration::ZERO,
                );
            }
            Ok(Targeted::Ran(report)) if report.outcome == PassOutcome::Busy => {
                self.events.put_back(named, None, Duration::from_secs(5));
                self.after_pass(Ok(*report));
            }
            Ok(Targeted::Ran(report)) => {
                if report.outcome == PassOutcome::SystemFailed {
                    // After the backoff, a pass reads what these events named.
                    self.events.put_back(
                        Named::default(),
                        Some((
                            events::Catchup::Incremental,
                            "a targeted pass failed".into(),
                        )),
                        Duration::ZERO,
                    );
                } else {
                    let applied = report.apply.applied > 0;
                    self.events
                        .after_pass(&self.store, report.pass_id, &named, applied);
                    // A change whose answer was lost: a read of its user settles it.
                    match self.store.unfinished_count() {
                        Ok(0) => self.events.confirmed(&named),
                        _ => self.events.reread(&named, events::REREAD_AFTER),
                    }
                }
                self.after_pass(Ok(*report));
            }
            Err(e) => self.after_pass(Err(e)),
        }
    }

    /// Counts the pass, and backs off after a whole-system failure. A tick skipped because
    /// another pass holds the store is neither a failure nor a pass.
    fn after_pass(&mut self, report: anyhow::Result<PassReport>) {
        match report {
            Ok(report) if report.outcome == PassOutcome::Busy => {
                // An admin's `sync` is running: no backoff; the next tick tries again.
                tracing::info!(
                    holder = report.busy.as_deref().unwrap_or(""),
                    "tick skipped: another pass holds the store"
                );
                notify(&[sd_notify::NotifyState::Status(
                    "tick skipped: another pass holds the store",
                )]);
            }
            Ok(report) => {
                record(
                    &self.figures,
                    &self.config,
                    &self.store,
                    &self.clients,
                    &report,
                );
                let summary = crate::report::pass_text(&report);
                notify(&[sd_notify::NotifyState::Status(summary.trim())]);
                if report.outcome == PassOutcome::SystemFailed {
                    self.back_off();
                } else {
                    self.system_failures = 0;
                    self.resume_at = None;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "pass failed: the store is unusable");
                self.back_off();
            }
        }
    }

    fn back_off(&mut self) {
        self.system_failures += 1;
        let wait = failure_backoff(self.system_failures);
        self.resume_at = Some(tokio::time::Instant::now() + wait);
        tracing::warn!(
            failures = self.system_failures,
            wait_s = wait.as_secs(),
            "whole-system failure: backing off"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default incremental pass is skipped only while events are healthy and a whole
    /// pass succeeded within the quiet period; a written cron, a channel down, a failed or
    /// old last pass bring the schedule back.
    #[test]
    fn incremental_ticks_are_quiet_only_while_events_are_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[okta]\nurl = \"https://x.okta.com\"\ntoken = \"t\"\n[telus]\nclient_id = \"c\"\nclient_secret = \"s\"\njwt = \"j\"\n";
        let config = config::from_toml_str(text, Vec::new(), dir.path()).unwrap();
        let now = chrono::Utc::now();
        let ago = |min: i64| {
            (now - chrono::Duration::minutes(min))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let (recent, old) = (ago(20), ago(70));
        let ok = Some(PassOutcome::Clean);
        assert!(skip_incremental_tick(
            &config,
            true,
            Some((ok, &recent)),
            now
        ));
        assert!(
            !skip_incremental_tick(&config, false, Some((ok, &recent)), now),
            "a channel down"
        );
        assert!(
            !skip_incremental_tick(&config, true, Some((ok, &old)), now),
            "over an hour ago"
        );
        let failed = Some(PassOutcome::SystemFailed);
        assert!(!skip_incremental_tick(
            &config,
            true,
            Some((failed, &recent)),
            now
        ));
        assert!(
            !skip_incremental_tick(&config, true, None, now),
            "no whole pass yet"
        );
        let written = config::from_toml_str(
            &format!("{text}[schedule]\ncron = \"*/15 * * * *\"\n"),
            Vec::new(),
            dir.path(),
        )
        .unwrap();
        assert!(
            !skip_incremental_tick(&written, true, Some((ok, &recent)), now),
            "a written cron is kept"
        );
    }

    /// A reload whose only change is a rotated secret (a new `token_file` content) rebuilds
    /// that side's client: `Debug` prints every secret the same, so it cannot tell.
    #[test]
    fn a_rotated_secret_is_a_change_though_it_prints_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("okta-token");
        let load = |token: &str| {
            std::fs::write(&file, token).unwrap();
            let text = format!(
                "[okta]\nurl = \"https://x.okta.com\"\ntoken_file = {:?}\n[telus]\nclient_id = \"c\"\nclient_secret = \"s\"\njwt = \"j\"\n",
                file.display().to_string()
            );
            config::from_toml_str(&text, Vec::new(), dir.path()).unwrap()
        };
        let old = load("old-token");
        let new = load("new-token");
        assert_eq!(format!("{:?}", old.okta), format!("{:?}", new.okta));
        assert_eq!(config_changes(&old, &new), vec!["okta"]);
        assert!(config_changes(&old, &load("old-token")).is_empty());
        assert!(!old.okta.fingerprint().contains("old-token"));
    }
}
