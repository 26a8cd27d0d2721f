//! The daemon shell (`run`): it feeds the queue of pass requests (cron ticks, signals,
//! change events) and runs the pass the queue gives, one at a time, while it answers
//! signals (stop, reload, pass now), systemd's watchdog and the metrics. It owns the
//! scheduler, the signals and the event channels' lifetime; what runs when is the queue's.

pub mod events;
mod listener;
pub mod metrics;
pub mod notify;
pub mod queue;

use crate::clients::Clients;
use crate::config::{self, Config};
use crate::http::HttpSettings;
use crate::model::PassOutcome;
use crate::pass::{self, PassOptions, Ran};
use crate::store::Store;
use crate::summary::PassReport;
use events::PassEnd;
use queue::{Job, Queue, Tick};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the operator can ask of a running daemon (SIGTERM/SIGINT, SIGHUP, SIGUSR1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Reload,
    PassNow,
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
                // The queue coalesces ticks as they come, during passes too.
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
    for (system, waits, wait_ms) in [
        (
            "okta",
            &clients.okta.counters.rate_waits,
            &clients.okta.counters.rate_wait_ms,
        ),
        (
            "telus",
            &clients.telus.counters.rate_waits,
            &clients.telus.counters.rate_wait_ms,
        ),
    ] {
        f.rate_waits
            .insert(system.into(), waits.load(Ordering::Relaxed));
        f.rate_wait_seconds.insert(
            system.into(),
            wait_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        );
    }
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
    record_imports(&mut f, store, report);
    f.bulk_refused = crate::apply::bulk_refusal(store).is_some();
    f.pass_held = report.outcome == PassOutcome::Held;
    from_store(&mut f, store);
}

/// The figures the store keeps across restarts: the last good full pass, the unconfirmed
/// changes and the oldest of them.
fn from_store(f: &mut metrics::Figures, store: &Store) {
    let epoch = |t: Option<String>| {
        t.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp())
    };
    f.unconfirmed = store.unfinished_count().map(|n| n as u64).unwrap_or(0);
    f.oldest_unconfirmed_at = epoch(store.oldest_unfinished_time().ok().flatten());
    f.last_full_pass = epoch(store.last_good_full_pass_end().ok().flatten());
}

/// The import queue's gauge, and the imports a pass made.
fn record_imports(f: &mut metrics::Figures, store: &Store, report: &PassReport) {
    f.builtin_app_pushing = store
        .builtin_app_pushing()
        .ok()
        .flatten()
        .is_some_and(|(p, _)| !p.is_empty());
    if let Ok((queue, _)) = store.import_queue() {
        f.import_queue = crate::reconcile::import::counts(&queue)
            .into_iter()
            .map(|(o, n)| (o.to_string(), n as u64))
            .collect();
    }
    for a in &report.plan.actions {
        if matches!(a.action, crate::reconcile::Action::Import { .. })
            && report.pass_id.is_some()
            && !report.plan.is_held()
        {
            let outcome = match report.apply.failed_users.contains_key(&a.user) {
                true => "failed",
                false => "applied",
            };
            *f.imports.entry(outcome.into()).or_default() += 1;
        }
    }
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

/// For an incremental tick: whether change events are healthy and a whole pass ran
/// recently enough that it may wait.
fn quiet_tick(config: &Config, events: &events::Events, store: &Store, tick: Tick) -> bool {
    if tick != Tick::Incremental {
        return false;
    }
    let last = store.last_whole_pass().ok().flatten();
    skip_incremental_tick(
        config,
        events.healthy(),
        last.as_ref()
            .map(|p| (p.summary.outcome, p.started_at.as_str())),
        chrono::Utc::now(),
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
    reload_pending: bool,
    queue: Queue,
    /// The change-event channels, and what they have named since the last pass.
    channels: Option<events::Channels>,
    events: events::Events,
    /// `[notify]`'s sender, and what was known after the last pass.
    notifier: Option<notify::Notifier>,
    watch: notify::Watch,
}

/// What the daemon answers while a pass runs.
struct Inbox<'a> {
    signals: &'a mut mpsc::Receiver<Signal>,
    ticks: &'a mut mpsc::Receiver<Tick>,
    watchdog: &'a mut tokio::time::Interval,
    /// How often the channels are checked for `[notify]`, between passes and during them.
    checks: &'a mut tokio::time::Interval,
}

/// The next change event, or never when no channel runs.
async fn next_event(channels: &mut Option<events::Channels>) -> Option<events::Event> {
    match channels {
        Some(c) => c.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What arrives at the daemon while it waits or while a pass runs.
enum Input {
    Signal(Signal),
    Tick(Tick),
    Event(events::Event),
    Watchdog,
    Check,
}

/// The next input, or the end of `wake` (when something may be due).
async fn next_input(
    inbox: &mut Inbox<'_>,
    channels: &mut Option<events::Channels>,
    wake: Option<tokio::time::Instant>,
) -> Option<Input> {
    tokio::select! {
        Some(e) = next_event(channels) => Some(Input::Event(e)),
        Some(sig) = inbox.signals.recv() => Some(Input::Signal(sig)),
        Some(tick) = inbox.ticks.recv() => Some(Input::Tick(tick)),
        _ = inbox.watchdog.tick() => Some(Input::Watchdog),
        _ = inbox.checks.tick() => Some(Input::Check),
        _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => None,
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
    from_store(
        &mut figures.lock().unwrap_or_else(|e| e.into_inner()),
        &store,
    );
    let http = match &config.http {
        Some(h) => Some(metrics::serve(h.listen, figures.clone(), h.max_pass_age).await?),
        None => None,
    };
    // Room for a tick of each kind while the loop is busy for a moment: the queue takes
    // them in as they come, during passes too.
    let (tick_tx, mut ticks) = mpsc::channel::<Tick>(16);
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
    let mut checks = tokio::time::interval(check_every(&config));
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
        reload_pending: false,
        queue: Queue::default(),
        channels,
        notifier: None,
        watch: notify::Watch::default(),
    };
    // What an earlier run already announced is not announced again.
    d.watch = notify::Watch::from_announced(d.store.announced().unwrap_or_default());
    d.notifier = d
        .config
        .notify
        .clone()
        .map(|n| notify::Notifier::start(n, d.figures.clone()));
    let mut inbox = Inbox {
        signals: &mut signals,
        ticks: &mut ticks,
        watchdog: &mut watchdog,
        checks: &mut checks,
    };
    loop {
        if std::mem::take(&mut d.reload_pending) {
            d.reload().await?;
            if inbox.checks.period() != check_every(&d.config) {
                *inbox.checks = tokio::time::interval(check_every(&d.config));
            }
        }
        if d.stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(job) = d.queue.next(tokio::time::Instant::now(), &mut d.events) {
            d.run_job(job, &mut inbox).await;
            continue;
        }
        let wake = d.queue.wake_at(&d.events);
        match next_input(&mut inbox, &mut d.channels, wake).await {
            Some(Input::Signal(Signal::Terminate)) => break,
            Some(input) => d.take_in(input),
            None => {}
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
    /// Takes in one input, between passes or during one: a stop lets the change in flight
    /// finish; a reload waits for the end of the pass; ticks and SIGUSR1 are queued; events
    /// go to the event state.
    fn take_in(&mut self, input: Input) {
        match input {
            Input::Signal(Signal::Terminate) => {
                tracing::info!("stop requested: finishing the change in flight");
                notify(&[sd_notify::NotifyState::Stopping]);
                self.stop.store(true, Ordering::SeqCst);
            }
            Input::Signal(Signal::Reload) => self.reload_pending = true,
            Input::Signal(Signal::PassNow) => self.queue.pass_now(),
            Input::Tick(tick) => {
                let quiet = quiet_tick(&self.config, &self.events, &self.store, tick);
                if !self.queue.scheduled(tick, quiet) {
                    tracing::debug!(
                        "incremental tick skipped: change events are healthy and a whole pass ran within events.quiet_incremental_minutes"
                    );
                }
            }
            Input::Event(e) => self.events.on_event(e, &self.store),
            Input::Watchdog => notify(&[sd_notify::NotifyState::Watchdog]),
            Input::Check => notify_channels(self.notifier.as_ref(), &mut self.watch, &self.figures),
        }
    }

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
            self.replace_listener(&new).await;
        }
        let store_path = self.config.store_path.clone();
        let restart_events = ["okta", "telus", "events"]
            .iter()
            .any(|c| changed.contains(c));
        if self.config.notify != new.notify {
            self.notifier = new
                .notify
                .clone()
                .map(|n| notify::Notifier::start(n, self.figures.clone()));
        }
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

    /// The new listener is bound before the old one is dropped: a port that is taken keeps
    /// the old listener (and the daemon) running.
    async fn replace_listener(&mut self, new: &Config) {
        let replacement = match &new.http {
            Some(h) => match metrics::serve(h.listen, self.figures.clone(), h.max_pass_age).await {
                Ok(server) => Some(Some(server)),
                Err(e) => {
                    tracing::error!(listen = %h.listen, error = %e, "cannot listen on the new http.listen; the previous listener stays");
                    None
                }
            },
            None => Some(None),
        };
        if let Some(server) = replacement
            && let Some(old) = std::mem::replace(&mut self.http, server)
        {
            old.abort();
        }
    }

    /// Runs the pass the queue gave, taking in what arrives meanwhile, then steps the events
    /// and the queue with how it ended.
    async fn run_job(&mut self, job: Job, inbox: &mut Inbox<'_>) {
        let status = match &job.scope {
            pass::Scope::Whole { full: true } => "running a full pass",
            pass::Scope::Whole { full: false } => "running an incremental pass",
            pass::Scope::Named(_) | pass::Scope::Imports(_) | pass::Scope::Saved(_) => {
                "running a targeted pass"
            }
        };
        if let (Some((_, reason)), false) = (&job.taken.catchup, job.is_targeted()) {
            tracing::info!(reason = %reason, "change events ask for a pass of the whole directory");
        }
        notify(&[sd_notify::NotifyState::Status(status)]);
        let result = {
            let stop = &self.stop;
            let opts = PassOptions {
                stop: Some(stop),
                ..PassOptions::default()
            };
            let run = pass::run(&self.config, &self.clients, &self.store, &job.scope, opts);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    r = &mut run => break r,
                    Some(input) = next_input(inbox, &mut self.channels, None) => match input {
                        Input::Signal(Signal::Terminate) => {
                            tracing::info!("stop requested: finishing the change in flight");
                            notify(&[sd_notify::NotifyState::Stopping]);
                            stop.store(true, Ordering::SeqCst);
                        }
                        Input::Signal(Signal::Reload) => self.reload_pending = true,
                        Input::Signal(Signal::PassNow) => self.queue.pass_now(),
                        // Queued, never dropped: it runs once this pass ends (an incremental
                        // one is quiet as it would be between passes).
                        Input::Tick(tick) => {
                            let quiet = quiet_tick(&self.config, &self.events, &self.store, tick);
                            let _ = self.queue.scheduled(tick, quiet);
                        }
                        Input::Event(e) => self.events.on_event(e, &self.store),
                        Input::Watchdog => notify(&[sd_notify::NotifyState::Watchdog]),
                        Input::Check => notify_channels(
                            self.notifier.as_ref(),
                            &mut self.watch,
                            &self.figures,
                        ),
                    },
                }
            }
        };
        let end = self.pass_end(&job, &result);
        let targeted = job.is_targeted();
        let waited = self.queue.waiting_for_store();
        self.queue
            .finished(&job, &end, tokio::time::Instant::now(), failure_backoff);
        let Job { taken, .. } = job;
        self.events.finished(&self.store, taken, targeted, &end);
        self.after_pass(result, &end, waited);
    }

    /// How a pass ended, typed for the events and the queue.
    fn pass_end(&self, job: &Job, result: &anyhow::Result<Ran>) -> PassEnd {
        match result {
            Ok(Ran::Pass(r)) if r.outcome == PassOutcome::Busy => PassEnd::Busy,
            Ok(Ran::Pass(r)) if r.outcome == PassOutcome::SystemFailed => PassEnd::SystemFailed,
            Ok(Ran::Pass(r)) => PassEnd::Ran {
                pass_id: r.pass_id,
                applied: r.apply.applied > 0,
                // Of a targeted pass, only its own users' changes: another user's lost
                // answer must not make every targeted pass read its users again.
                unconfirmed: match &job.scope {
                    pass::Scope::Named(named) => self.store.unfinished().map_or(true, |rows| {
                        rows.iter()
                            .any(|r| named.names_row(r.okta_id.as_deref(), r.ext_id.as_deref()))
                    }),
                    pass::Scope::Whole { .. } | pass::Scope::Imports(_) | pass::Scope::Saved(_) => {
                        !matches!(self.store.unfinished_count(), Ok(0))
                    }
                },
            },
            Ok(Ran::Escalate(reason)) => {
                tracing::info!(reason = %reason, "targeted pass not enough: an incremental pass follows");
                PassEnd::Escalated(reason.clone())
            }
            Ok(Ran::Nothing) => {
                if let pass::Scope::Named(named) = &job.scope {
                    tracing::debug!(users = named.len(), "change events named no linked user");
                }
                PassEnd::Nothing
            }
            Err(_) => PassEnd::SystemFailed,
        }
    }

    /// Logs and counts the pass. A pass that found the store held by another process is
    /// neither a failure nor a pass: it waits for its turn (`waited`: it already did).
    fn after_pass(&mut self, result: anyhow::Result<Ran>, end: &PassEnd, waited: bool) {
        match result {
            Ok(Ran::Pass(report)) if report.outcome == PassOutcome::Busy => {
                let holder = report.busy.as_deref().unwrap_or("");
                if waited {
                    tracing::debug!(holder, "still waiting: another pass holds the store");
                } else {
                    tracing::info!(
                        holder,
                        "the pass waits: another pass holds the store; it runs once that one ends"
                    );
                    notify(&[sd_notify::NotifyState::Status(
                        "waiting: another pass holds the store",
                    )]);
                }
            }
            Ok(Ran::Pass(report)) => {
                record(
                    &self.figures,
                    &self.config,
                    &self.store,
                    &self.clients,
                    &report,
                );
                let summary = crate::report::pass_text(&report);
                notify(&[sd_notify::NotifyState::Status(summary.trim())]);
                self.notify_after(&report);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pass failed: the store is unusable"),
        }
        if *end == PassEnd::SystemFailed {
            tracing::warn!(
                failures = self.queue.failures(),
                "whole-system failure: backing off"
            );
        }
    }
}

impl Daemon {
    /// Sends what the pass changed that an admin must hear about (`[notify]`).
    fn notify_after(&mut self, report: &PassReport) {
        let now = self.watch_now(report);
        if let Some(n) = &self.notifier {
            for e in notify::changes(&self.watch, &now, n.channel_after) {
                n.notify(e);
            }
            let announced = now.announced();
            if announced != self.watch.announced()
                && let Err(e) = self.store.save_announced(&announced)
            {
                tracing::warn!(error = %e, "could not record what was notified: a restart may notify it again");
            }
        }
        self.watch = now;
    }

    /// What is known now, from the pass, the store and the figures.
    fn watch_now(&self, report: &PassReport) -> notify::Watch {
        let at = chrono::Utc::now().timestamp();
        let store = &self.store;
        let mut problems: std::collections::BTreeSet<(String, String)> = store
            .okta_refusals()
            .unwrap_or_default()
            .into_iter()
            .map(|k| (k.email, k.attr))
            .collect();
        problems.extend(
            store
                .data_problems()
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.email, d.attr)),
        );
        let channels_down = channels_down(&self.figures, &self.watch, at);
        let session = crate::report::session_assessment(
            &self.config,
            store.credentials("telus").ok().flatten().as_ref(),
        );
        notify::Watch {
            held: match report.outcome {
                PassOutcome::Held => report.plan.held_reasons(),
                _ => Vec::new(),
            },
            quarantined: store
                .failures()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.quarantined)
                .map(|r| r.email)
                .collect(),
            problems,
            session_at_risk: session.at_risk.then_some(session.line),
            channels_down,
            failure_streak: match report.outcome {
                PassOutcome::SystemFailed => self.queue.failures(),
                _ => 0,
            },
            system_error: match report.outcome {
                PassOutcome::SystemFailed => report.system_error.clone(),
                _ => None,
            },
            builtin_pushing: store
                .builtin_app_pushing()
                .ok()
                .flatten()
                .map(|(p, _)| p)
                .unwrap_or_default(),
            at,
        }
    }
}

/// The channels down now, by side, each since when it was first seen down (or `at`).
fn channels_down(
    figures: &metrics::Shared,
    prev: &notify::Watch,
    at: i64,
) -> std::collections::BTreeMap<String, i64> {
    let f = figures.lock().unwrap_or_else(|e| e.into_inner());
    f.channel_up
        .iter()
        .filter(|(_, up)| !**up)
        .map(|(side, _)| {
            let since = prev.channels_down.get(side).copied().unwrap_or(at);
            (side.clone(), since)
        })
        .collect()
}

/// How often the channels are checked: often enough to notify an outage within a quarter
/// of `notify.channel_down_seconds` of its threshold (between 1 s and 30 s); hourly without
/// `[notify]`, where the check has nothing to send.
fn check_every(config: &Config) -> Duration {
    match &config.notify {
        Some(n) => {
            (n.channel_down_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
        }
        None => Duration::from_secs(3600),
    }
}

/// A channel down too long is notified when it becomes so, not at the next pass (which may
/// be an hour away): the check runs on its own interval, passes or not.
fn notify_channels(
    notifier: Option<&notify::Notifier>,
    watch: &mut notify::Watch,
    figures: &metrics::Shared,
) {
    let Some(n) = notifier else { return };
    let at = chrono::Utc::now().timestamp();
    let now = notify::Watch {
        channels_down: channels_down(figures, watch, at),
        at,
        ..watch.clone()
    };
    for e in notify::changes(watch, &now, n.channel_after) {
        n.notify(e);
    }
    *watch = now;
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
