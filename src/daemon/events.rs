//! Change events in the daemon: the Okta System Log poller and the TELUS WebSocket listener
//! run as tasks that send what they hear; `Events` coalesces it into the users the next
//! targeted pass reads, drops echoes of this tool's own writes, says when events were lost
//! (a pass of the whole directory then), keeps the System Log cursor, and reports each
//! channel's health to `status` (through the store) and the metrics.

use super::metrics;
use crate::clients::Clients;
use crate::config::Config;
use crate::model::{ExtId, OktaId};
use crate::okta::{self, LogCursor};
use crate::pass::Named;
use crate::store::Store;
use crate::telus::events::{ListenOptions, Notice};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::store::state::Channel;

/// How long after the first event of a batch its targeted pass starts: events a moment
/// apart (an admin saving a form, a script) go in one pass.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// How long after a pass wrote to a TELUS user the notification of that write is expected.
/// RingCentral's notifications name no author, so each write is expected to raise one
/// notification, which is taken as its echo; any further one is a real hint (an edit of
/// the same user meanwhile). The guide does not say a write raises exactly one: if it
/// raises more, each extra costs one targeted read that finds nothing to do.
pub const ECHO_WINDOW: Duration = Duration::from_secs(60);

/// A targeted pass that leaves a change unconfirmed (its answer lost) reads the user again
/// this much later, up to `MAX_REREADS` times; the read settles the change.
pub const REREAD_AFTER: Duration = Duration::from_secs(5);
pub const MAX_REREADS: u32 = 3;

/// How soon a pass that found the store held by another process's pass tries again.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);

/// How often the last event is written to the store for `status` during a stream of events.
const STATE_EVERY: Duration = Duration::from_secs(5);

/// Okta keeps the System Log for 90 days (Okta's System Log API): a cursor stored longer ago
/// than that may point past what Okta still has, so events are taken as lost without asking.
pub const LOG_RETENTION: chrono::Duration = chrono::Duration::days(90);

/// What the channel tasks send to the daemon.
#[derive(Debug)]
pub enum Event {
    /// A System Log poll: its events, and the link the next poll starts from.
    Okta {
        events: Vec<okta::LogEvent>,
        next: String,
    },
    /// Where Okta polling starts: `resumed` from the stored cursor, else from now (events
    /// before now are unknown).
    OktaStarted {
        resumed: bool,
    },
    /// Okta refused the cursor (too old for the log's retention, or unknown): events lost.
    OktaLost {
        reason: String,
    },
    /// A poll failed; the next one tries again.
    OktaDown {
        reason: String,
    },
    /// Okta refuses this credential the System Log (no `okta.logs.read`): Okta events off.
    OktaRefused {
        reason: String,
    },
    Telus(Notice),
}

/// The running channel tasks (stopped when dropped) and what they send.
pub struct Channels {
    pub rx: mpsc::Receiver<Event>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Channels {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the channels `config.events` asks for; `None` when both are off.
pub fn start(config: &Config, clients: &Clients, store: &Store) -> Option<Channels> {
    if !config.events.any() {
        return None;
    }
    let (tx, rx) = mpsc::channel(1024);
    let mut tasks = Vec::new();
    if let Some(every) = config.events.okta_poll {
        let mut stored = store.okta_cursor().ok().flatten();
        let stored_at = stored.as_ref().and_then(|c| c.stored_at.clone());
        if stored.is_some() && cursor_too_old(stored_at.as_deref(), chrono::Utc::now()) {
            // Okta may no longer have what the cursor points past: events were lost.
            let _ = tx.try_send(Event::OktaLost {
                reason: format!(
                    "the stored System Log cursor dates from {}, past the log's 90-day retention",
                    stored_at.as_deref().unwrap_or("an unknown time")
                ),
            });
            let _ = store.forget_okta_cursor();
            stored = None;
        }
        if let Some(c) = &stored
            && let Some(theirs) = foreign_origin(&c.next, &config.okta.url)
        {
            // The cursor is a link into the Okta org it came from (its origin is in it);
            // another org would refuse it on every poll.
            let _ = tx.try_send(Event::OktaLost {
                reason: format!(
                    "okta.url is now {}, but the stored System Log cursor came from {theirs}: polling starts from now",
                    config.okta.url.origin().ascii_serialization()
                ),
            });
            let _ = store.forget_okta_cursor();
            stored = None;
        }
        tasks.push(tokio::spawn(poll_okta(
            clients.okta.clone(),
            every,
            stored.map(|c| c.next),
            tx.clone(),
        )));
    }
    if config.events.telus_websocket {
        let (ntx, mut nrx) = mpsc::channel(1024);
        let opts = ListenOptions {
            heartbeat: config.events.telus_heartbeat,
            ..ListenOptions::default()
        };
        tasks.push(tokio::spawn(crate::telus::events::listen(
            clients.telus.clone(),
            ntx,
            opts,
        )));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(n) = nrx.recv().await {
                if tx.send(Event::Telus(n)).await.is_err() {
                    return;
                }
            }
        }));
    }
    Some(Channels { rx, tasks })
}

/// The origin a stored cursor link points at, when it is not `okta_url`'s (an unreadable
/// link counts as foreign).
fn foreign_origin(link: &str, okta_url: &url::Url) -> Option<String> {
    let theirs = url::Url::parse(link)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "an unreadable link".into());
    (theirs != okta_url.origin().ascii_serialization()).then_some(theirs)
}

/// Whether a cursor stored at `stored_at` is older than the System Log's retention (a
/// cursor with no time is taken as old).
fn cursor_too_old(stored_at: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> bool {
    match stored_at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => now - t.with_timezone(&chrono::Utc) > LOG_RETENTION,
        None => true,
    }
}

/// The longest a failing System Log poll waits before the next try.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(300);

/// How long the poll after `failures` failed polls in a row waits: `every`, doubled for each
/// failure, at most [`MAX_POLL_BACKOFF`].
fn poll_wait(every: Duration, failures: u32) -> Duration {
    every
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_POLL_BACKOFF.max(every))
}

/// What one poll's answer means for the events and for the next poll.
struct Judged {
    event: Event,
    cursor: LogCursor,
    /// The poll failed: the next one backs off.
    failed: bool,
    /// Okta refuses this credential the System Log: polling stops.
    stop: bool,
}

/// Judges one poll of `cursor`. A 400 on a `next` link loses the events it pointed past
/// (once: polling goes on from now); a 400 on a query from a time loses nothing stored, so it
/// is a failed poll that backs off, as are a page over the answer cap and any other error.
fn judge(cursor: LogCursor, result: Result<okta::LogPoll, okta::Error>) -> Judged {
    let failed = |cursor, reason: String| Judged {
        event: Event::OktaDown { reason },
        cursor,
        failed: true,
        stop: false,
    };
    match (result, &cursor) {
        (Ok(poll), _) => Judged {
            cursor: LogCursor::Next(poll.next.clone()),
            event: Event::Okta {
                events: poll.events,
                next: poll.next,
            },
            failed: false,
            stop: false,
        },
        (
            Err(okta::Error::Api {
                status: 400,
                code,
                summary,
                ..
            }),
            _,
        ) => match cursor {
            LogCursor::Next(_) => Judged {
                event: Event::OktaLost {
                    reason: format!("Okta refused the System Log cursor ({code}: {summary})"),
                },
                cursor: LogCursor::Since(crate::store::now()),
                failed: false,
                stop: false,
            },
            since @ LogCursor::Since(_) => failed(
                since,
                format!(
                    "Okta refused a System Log query from a time ({code}: {summary}); nothing stored was lost, the poll is retried with backoff"
                ),
            ),
        },
        (
            Err(okta::Error::Api {
                status: status @ (401 | 403),
                code,
                summary,
                ..
            }),
            _,
        ) => Judged {
            event: Event::OktaRefused {
                reason: format!(
                    "Okta refuses the System Log to this credential (HTTP {status} {code}: {summary}): an OAuth app needs the okta.logs.read scope; an API token, an admin role that can read the System Log"
                ),
            },
            cursor,
            failed: false,
            stop: true,
        },
        (Err(e @ okta::Error::Decode { .. }), _)
            if e.to_string()
                .contains(&crate::http::BodyError::TooLarge.to_string()) =>
        {
            failed(
                cursor,
                format!(
                    "a System Log page was over the answer size cap, refused unread ({e}); the poll is retried with backoff"
                ),
            )
        }
        (Err(e), _) => failed(cursor, e.to_string()),
    }
}

/// Polls the System Log every `every` from the stored cursor (else from now), sending each
/// poll's events and next link; failed polls back off (doubling, at most five minutes).
async fn poll_okta(
    client: std::sync::Arc<okta::Client>,
    every: Duration,
    stored: Option<String>,
    tx: mpsc::Sender<Event>,
) {
    let resumed = stored.is_some();
    let mut cursor = stored
        .map(LogCursor::Next)
        .unwrap_or_else(|| LogCursor::Since(crate::store::now()));
    if tx.send(Event::OktaStarted { resumed }).await.is_err() {
        return;
    }
    let mut failures = 0u32;
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tx.closed() => return,
        }
        let result = client.poll_logs(&cursor).await;
        let judged = judge(cursor, result);
        cursor = judged.cursor;
        failures = if judged.failed { failures + 1 } else { 0 };
        wait = poll_wait(every, failures);
        if tx.send(judged.event).await.is_err() || judged.stop {
            return;
        }
    }
}

/// A channel's health, as `status` and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Starting,
    Up { since: String },
    Down { reason: String, since: String },
    Off { reason: String },
}

impl Health {
    fn line(&self, last: Option<&(String, String)>) -> String {
        let state = match self {
            Health::Starting => "starting".to_string(),
            Health::Up { since } => format!("up since {since}"),
            Health::Down { reason, since } => format!("down since {since}: {reason}"),
            Health::Off { reason } => format!("off: {reason}"),
        };
        match last {
            Some((at, what)) => format!("{state}; last event {at} ({what})"),
            None => format!("{state}; no event yet"),
        }
    }
}

/// Which whole pass events ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Catchup {
    Incremental,
    Full,
}

/// What a pass took of the events: the users they named, and a whole pass they asked for
/// (with why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub named: Named,
    pub catchup: Option<(Catchup, String)>,
}

impl Taken {
    pub fn catchup_kind(&self) -> Option<Catchup> {
        self.catchup.as_ref().map(|c| c.0)
    }
}

/// How a pass ended, as the events and the queue see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassEnd {
    /// It ran to its end: its record, whether it applied anything, and whether changes are
    /// still unconfirmed after it (an answer lost).
    Ran {
        pass_id: Option<i64>,
        applied: bool,
        unconfirmed: bool,
    },
    /// Another process's pass holds the store.
    Busy,
    /// A whole-system failure (or the store failed).
    SystemFailed,
    /// A targeted pass could not decide: a pass of the whole directory must go; why.
    Escalated(String),
    /// Nothing the events named needs a pass.
    Nothing,
}

/// The daemon's event state between passes.
pub struct Events {
    /// Users named since the last pass, and when each was first named (for the lag).
    pending: Named,
    first_seen: HashMap<String, chrono::DateTime<chrono::Utc>>,
    /// A whole pass that events asked for, and why.
    catchup: Option<(Catchup, String)>,
    /// When the next event-driven pass is due.
    due: Option<Instant>,
    /// At most one event-driven whole pass per this (`events.whole_pass_spacing_minutes`).
    spacing: Duration,
    /// `okta.scope`: a membership event counts only when its group or app is this one.
    scope: crate::config::OktaScope,
    /// When the last whole pass that answered a catch-up was taken.
    last_catchup: Option<Instant>,
    /// The channels' start-up catch-up ("events start from now") was taken: it does not
    /// start the spacing, so a burst right after a start still goes at once.
    started_up: bool,
    /// The System Log cursor to store once the pass covering its events has run.
    cursor_unsaved: Option<String>,
    /// TELUS users this tool wrote: echoes still expected, and until when.
    echo: HashMap<ExtId, (u32, Instant)>,
    /// Notifications heard per TELUS user still pending (an echo heard before its pass
    /// ended takes one away).
    heard: HashMap<ExtId, u32>,
    /// Users read again because a change to them was left unconfirmed, and how often.
    rereads: HashMap<String, u32>,
    /// When the state lines were last written to the store.
    state_written: Option<Instant>,
    /// The System Log cursor last stored (not written again while unchanged).
    cursor_saved: Option<String>,
    pub okta: Health,
    pub telus: Health,
    last_okta: Option<(String, String)>,
    last_telus: Option<(String, String)>,
    figures: metrics::Shared,
}

impl Events {
    pub fn new(config: &Config, figures: metrics::Shared) -> Events {
        let off = |on: bool, what: &str| match on {
            true => Health::Starting,
            false => Health::Off {
                reason: format!("{what} in sync.toml"),
            },
        };
        Events {
            pending: Named::default(),
            first_seen: HashMap::new(),
            catchup: None,
            due: None,
            spacing: config.events.whole_pass_spacing,
            scope: config.okta.scope.clone(),
            last_catchup: None,
            started_up: false,
            cursor_unsaved: None,
            echo: HashMap::new(),
            heard: HashMap::new(),
            rereads: HashMap::new(),
            state_written: None,
            cursor_saved: None,
            okta: off(
                config.events.okta_poll.is_some(),
                "events.okta_poll_seconds = 0",
            ),
            telus: off(config.events.telus_websocket, "events.telus = \"off\""),
            last_okta: None,
            last_telus: None,
            figures,
        }
    }

    /// When the next event-driven pass is due.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Steps the event state with how a pass that took `taken` ended: what it answered is
    /// done with (echoes of its writes expected, the cursor stored, the lag recorded); what
    /// it could not answer is put back, or asked of a whole pass.
    pub fn finished(&mut self, store: &Store, taken: Taken, targeted: bool, end: &PassEnd) {
        let Taken { named, catchup } = taken;
        match end {
            PassEnd::Ran {
                pass_id,
                applied,
                unconfirmed,
            } => {
                self.after_pass(store, *pass_id, &named, *applied);
                if targeted {
                    // A change whose answer was lost: a read of its user settles it.
                    match unconfirmed {
                        false => self.confirmed(&named),
                        true => self.reread(&named, REREAD_AFTER),
                    }
                }
            }
            PassEnd::Nothing => self.after_pass(store, None, &named, false),
            PassEnd::Escalated(reason) => {
                self.forget_lag(&named);
                self.put_back(
                    Named::default(),
                    Some((Catchup::Incremental, reason.clone())),
                    Duration::ZERO,
                )
            }
            // After the backoff, a pass reads what these events named.
            PassEnd::SystemFailed if targeted => {
                self.forget_lag(&named);
                self.put_back(
                    Named::default(),
                    Some((Catchup::Incremental, "a targeted pass failed".into())),
                    Duration::ZERO,
                )
            }
            // What events asked for waits for the store, or for the end of the backoff.
            PassEnd::Busy | PassEnd::SystemFailed => {
                if catchup.is_some() || !named.is_empty() {
                    self.put_back(named, catchup, BUSY_RETRY);
                }
            }
        }
    }

    /// Drops when `named` were first heard of: their lag is measured by a pass that read them
    /// (an escalated one did not, and a later event must not inherit the old time).
    fn forget_lag(&mut self, named: &Named) {
        for u in named.okta.keys() {
            self.first_seen.remove(&format!("o:{u}"));
        }
        for e in named.telus.keys() {
            self.first_seen.remove(&format!("t:{e}"));
        }
    }

    /// Whether every event channel is up: then scheduled incremental passes may be rarer.
    pub fn healthy(&self) -> bool {
        matches!(self.okta, Health::Up { .. }) && matches!(self.telus, Health::Up { .. })
    }

    /// Takes in one event from a channel.
    pub fn on_event(&mut self, event: Event, store: &Store) {
        match event {
            Event::Okta { events, next } => self.on_okta(events, next, store),
            Event::OktaStarted { resumed } => {
                self.set_okta(Health::Up { since: now_text() }, store);
                if !resumed {
                    self.ask(
                        Catchup::Incremental,
                        "Okta events start from now: changes before are read by a pass",
                    );
                }
            }
            Event::OktaLost { reason } => {
                tracing::warn!(reason = %reason, "Okta events were lost: a full pass reads everything, then polling goes on from now");
                self.cursor_unsaved = None;
                self.cursor_saved = None;
                let _ = store.forget_okta_cursor();
                self.ask(Catchup::Full, &reason);
            }
            Event::OktaDown { reason } => {
                if !matches!(self.okta, Health::Down { .. }) {
                    tracing::warn!(error = %reason, "System Log poll failed; polling goes on");
                }
                self.set_okta(
                    Health::Down {
                        reason,
                        since: now_text(),
                    },
                    store,
                );
            }
            Event::OktaRefused { reason } => {
                tracing::error!(reason = %reason, "Okta change events are off; scheduled passes carry Okta's changes");
                self.set_okta(Health::Off { reason }, store);
            }
            Event::Telus(n) => self.on_telus(n, store),
        }
    }

    fn on_okta(&mut self, events: Vec<okta::LogEvent>, next: String, store: &Store) {
        if !matches!(self.okta, Health::Up { .. }) {
            self.set_okta(Health::Up { since: now_text() }, store);
        }
        let mut hinted = false;
        if !events.is_empty() {
            let own = events.iter().filter(|e| e.own).count();
            tracing::info!(events = events.len(), own, "System Log events");
        }
        for e in events {
            let kind = match (e.own, e.users.is_empty() || !self.in_scope(&e)) {
                (true, _) => "own",
                (false, true) => "ignored",
                (false, false) => "hint",
            };
            self.count("okta", kind);
            self.last_okta = Some((
                e.published.clone(),
                format!("{} {}", e.event_type, join(&e.users)),
            ));
            if kind != "hint" {
                continue;
            }
            hinted = true;
            let at = parse_time(&e.published);
            for u in e.users {
                self.first_seen.entry(format!("o:{u}")).or_insert(at);
                note(&mut self.pending.okta, u, &e.event_type);
            }
            self.bound_pending();
        }
        if hinted {
            self.schedule();
            self.note_last_event(store);
        }
        // The cursor moves on in the store only when nothing it passed over still waits.
        if self.pending.okta.is_empty() && self.catchup.is_none() {
            self.cursor_unsaved = None;
            self.save_cursor(store, next);
        } else {
            self.cursor_unsaved = Some(next);
        }
    }

    fn on_telus(&mut self, n: Notice, store: &Store) {
        match n {
            Notice::Subscribed { lost, recovered } => {
                self.set_telus(Health::Up { since: now_text() }, store);
                if recovered {
                    tracing::info!(
                        "TELUS notification session recovered: missed events are replayed"
                    );
                }
                if lost {
                    self.ask(
                        Catchup::Incremental,
                        "TELUS events may have been missed (a new WebSocket session)",
                    );
                }
            }
            Notice::Changed {
                ext,
                event_type,
                timestamp,
            } => {
                self.last_telus = Some((timestamp.clone(), format!("{event_type} {ext}")));
                if let Some((expected, until)) = self.echo.get_mut(&ext)
                    && *expected > 0
                    && *until > Instant::now()
                {
                    *expected -= 1;
                    self.count("telus", "own");
                    return;
                }
                *self.heard.entry(ext.clone()).or_default() += 1;
                self.count("telus", "hint");
                tracing::debug!(ext = %ext, event = %event_type, "TELUS notification");
                self.first_seen
                    .entry(format!("t:{ext}"))
                    .or_insert(parse_time(&timestamp));
                note(&mut self.pending.telus, ext, &event_type);
                self.bound_pending();
                self.schedule();
                self.note_last_event(store);
            }
            Notice::Down { reason } => {
                if !matches!(self.telus, Health::Down { .. }) {
                    tracing::warn!(reason = %reason, "TELUS notifications down; reconnecting");
                }
                self.set_telus(
                    Health::Down {
                        reason,
                        since: now_text(),
                    },
                    store,
                );
            }
            Notice::Refused { reason } => {
                tracing::error!(reason = %reason, "TELUS change events are off; scheduled passes carry TELUS's changes");
                self.set_telus(Health::Off { reason }, store);
            }
        }
    }

    /// Whether an event can change what a pass decides under `okta.scope`: a membership
    /// change only when its group (or app) is the configured scope, since membership of any
    /// other group or app neither brings a user in nor takes one out; every other event type.
    fn in_scope(&self, e: &okta::LogEvent) -> bool {
        use crate::config::OktaScope;
        if !e.event_type.contains("user_membership") {
            return true;
        }
        let (kind, id) = match &self.scope {
            OktaScope::All => return false,
            OktaScope::Group(g) => ("UserGroup", g),
            OktaScope::App(a) => ("AppInstance", a),
        };
        e.scopes.iter().any(|(k, i)| k == kind && i == id)
    }

    /// Past the users a targeted pass reads, the names are dropped and only "a whole pass is
    /// needed" is kept: a flood of events costs a bounded memory and one whole pass.
    fn bound_pending(&mut self) {
        let named = self.pending.okta.len() + self.pending.telus.len();
        if named > crate::pass::MAX_TARGETED_USERS {
            self.pending = Named::default();
            self.first_seen.clear();
            self.ask(
                Catchup::Incremental,
                "more users named by events than a targeted pass reads",
            );
        }
    }

    /// Asks for a whole pass (the larger kind wins) as soon as possible.
    fn ask(&mut self, kind: Catchup, reason: &str) {
        match &self.catchup {
            Some((k, _)) if *k >= kind => {}
            _ => self.catchup = Some((kind, reason.to_string())),
        }
        self.schedule();
    }

    /// Makes a pass due after the debounce (sooner than a catch-up that waits for its
    /// spacing: the users named go now, the whole pass when its time comes).
    fn schedule(&mut self) {
        let soon = Instant::now() + DEBOUNCE;
        self.due = Some(self.due.map_or(soon, |d| d.min(soon)));
    }

    /// Takes what the next event-driven pass covers, leaving nothing pending but a catch-up
    /// whose spacing is not over (it stays, due when it is); `whole`: a scheduled whole pass
    /// takes everything, and answers a catch-up too.
    pub fn take(&mut self, whole: bool) -> Taken {
        self.due = None;
        let now = Instant::now();
        let catchup = match self.last_catchup {
            Some(at) if !whole && self.catchup.is_some() && at + self.spacing > now => {
                self.due = Some(at + self.spacing);
                None
            }
            _ => self.catchup.take(),
        };
        if catchup.is_some() && std::mem::replace(&mut self.started_up, true) {
            self.last_catchup = Some(now);
        }
        // What was heard of these users is answered by this pass's read; what is heard from
        // now on (the pass's own echoes among it) is counted afresh.
        for ext in self.pending.telus.keys() {
            self.heard.remove(ext);
        }
        Taken {
            named: std::mem::take(&mut self.pending),
            catchup,
        }
    }

    /// Reads `named` again after `delay`, at most `MAX_REREADS` times per user: a change whose
    /// answer was lost is settled by the read. A user past that waits for a scheduled pass.
    fn reread(&mut self, named: &Named, delay: Duration) {
        let mut again = Named::default();
        for (k, v) in &named.okta {
            let n = self.rereads.entry(format!("o:{k}")).or_default();
            *n += 1;
            if *n <= MAX_REREADS {
                again.okta.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &named.telus {
            let n = self.rereads.entry(format!("t:{k}")).or_default();
            *n += 1;
            if *n <= MAX_REREADS {
                again.telus.insert(k.clone(), v.clone());
            }
        }
        if !again.is_empty() {
            self.put_back(again, None, delay);
        }
    }

    /// Forgets the re-reads of users whose changes are confirmed.
    fn confirmed(&mut self, named: &Named) {
        for k in named.okta.keys() {
            self.rereads.remove(&format!("o:{k}"));
        }
        for k in named.telus.keys() {
            self.rereads.remove(&format!("t:{k}"));
        }
    }

    /// Puts back what a pass could not take (the store was busy), to try again shortly.
    fn put_back(&mut self, named: Named, catchup: Option<(Catchup, String)>, retry: Duration) {
        for (k, v) in named.okta {
            note(&mut self.pending.okta, k, &v);
        }
        for (k, v) in named.telus {
            note(&mut self.pending.telus, k, &v);
        }
        if let Some((kind, reason)) = catchup {
            self.ask(kind, &reason);
        }
        self.due = Some(Instant::now() + retry);
    }

    /// After any pass that ran to its end: its TELUS writes' echoes are expected for a
    /// while (and those heard during the pass dropped); the System Log cursor is stored once
    /// nothing waits; the lag of what `named` (taken by the pass) asked for is recorded. A
    /// catch-up asked for while the pass ran stays: the pass read before that loss.
    fn after_pass(&mut self, store: &Store, pass_id: Option<i64>, named: &Named, applied: bool) {
        let now = Instant::now();
        self.echo.retain(|_, (n, until)| *n > 0 && *until > now);
        if let Some(id) = pass_id
            && let Ok((_, telus)) = store.written_in_pass(id)
        {
            let written: Vec<ExtId> = telus.into_iter().map(ExtId).collect();
            self.echo_written(&written);
        }
        if applied {
            let earliest = named
                .okta
                .keys()
                .map(|u| format!("o:{u}"))
                .chain(named.telus.keys().map(|e| format!("t:{e}")))
                .filter_map(|k| self.first_seen.get(&k).copied())
                .min();
            if let Some(at) = earliest {
                let lag = (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0;
                let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
                f.event_lag_sum += lag;
                f.event_lag_count += 1;
                f.event_lag_last = Some(lag);
            }
        }
        self.forget_lag(named);
        if self.pending.okta.is_empty()
            && self.catchup.is_none()
            && let Some(cursor) = self.cursor_unsaved.take()
        {
            self.save_cursor(store, cursor);
        }
        if self.pending.is_empty() && self.catchup.is_none() {
            self.due = None;
        }
    }

    /// One notification is expected of each TELUS user written: one heard while the pass
    /// ran is that echo (dropped now); else the next one heard is.
    fn echo_written(&mut self, written: &[ExtId]) {
        let now = Instant::now();
        for ext in written {
            if let Some(n) = self.heard.get_mut(ext).filter(|n| **n > 0) {
                *n -= 1;
                if *n == 0 {
                    self.heard.remove(ext);
                    self.pending.telus.remove(ext);
                }
                self.count("telus", "own");
                continue;
            }
            let e = self.echo.entry(ext.clone()).or_insert((0, now));
            e.0 += 1;
            e.1 = now + ECHO_WINDOW;
        }
    }

    /// Stores the System Log cursor, with when, unless it is the one already stored.
    fn save_cursor(&mut self, store: &Store, cursor: String) {
        if self.cursor_saved.as_ref() == Some(&cursor) {
            return;
        }
        if store.save_okta_cursor(&cursor).is_ok() {
            self.cursor_saved = Some(cursor);
        }
    }

    /// The daemon stops: `status` must not go on saying the channels are up.
    pub fn stopped(&mut self, store: &Store) {
        let since = now_text();
        for h in [&mut self.okta, &mut self.telus] {
            if !matches!(h, Health::Off { .. }) {
                *h = Health::Down {
                    reason: "the daemon is not running".into(),
                    since: since.clone(),
                };
            }
        }
        self.write_state(store);
    }

    fn count(&self, side: &str, kind: &str) {
        let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        *f.events
            .entry((side.to_string(), kind.to_string()))
            .or_default() += 1;
    }

    fn set_okta(&mut self, h: Health, store: &Store) {
        self.okta = h;
        self.write_state(store);
    }

    fn set_telus(&mut self, h: Health, store: &Store) {
        self.telus = h;
        self.write_state(store);
    }

    /// Each channel's state line, for `status` (another process) and the metrics.
    /// The last event in the state lines, at most every few seconds (a burst of thousands of
    /// events must not become thousands of store writes); health changes are written at once.
    fn note_last_event(&mut self, store: &Store) {
        if self
            .state_written
            .is_some_and(|t| t.elapsed() < STATE_EVERY)
        {
            return;
        }
        self.write_state(store);
    }

    fn write_state(&mut self, store: &Store) {
        self.state_written = Some(Instant::now());
        let _ = store.save_channel_line(Channel::Okta, &self.okta.line(self.last_okta.as_ref()));
        let _ = store.save_channel_line(Channel::Telus, &self.telus.line(self.last_telus.as_ref()));
        let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        for (side, h) in [("okta", &self.okta), ("telus", &self.telus)] {
            match h {
                Health::Off { .. } => f.channel_up.remove(side),
                _ => f
                    .channel_up
                    .insert(side.into(), matches!(h, Health::Up { .. })),
            };
        }
    }
}

/// How much an event type says, for the pass that reads its user: a deletion or creation,
/// a lifecycle or membership change, then a profile edit. Whatever order events come in,
/// a user keeps the weightiest.
fn weight(event_type: &str) -> u8 {
    match event_type {
        "Delete" => 4,
        "Update" => 2,
        "Create" => 1,
        t if t.starts_with("user.lifecycle") || t.contains("user_membership") => 3,
        _ => 2,
    }
}

/// Records `event_type` for `key` unless a weightier one is already pending.
fn note<K: Ord>(pending: &mut std::collections::BTreeMap<K, String>, key: K, event_type: &str) {
    match pending.entry(key) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(event_type.to_string());
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            if weight(event_type) > weight(o.get()) {
                o.insert(event_type.to_string());
            }
        }
    }
}

fn now_text() -> String {
    crate::store::now()
}

fn parse_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now())
}

fn join(users: &[OktaId]) -> String {
    users
        .iter()
        .map(|u| u.0.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> (Events, Store) {
        let config = crate::sandbox::config_for(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            crate::reconcile::policy::Policy::builtin(),
            std::path::Path::new(":memory:"),
        );
        (
            Events::new(&config, Default::default()),
            Store::open_in_memory().unwrap(),
        )
    }

    fn changed(ext: &str) -> Event {
        Event::Telus(Notice::Changed {
            ext: ExtId(ext.into()),
            event_type: "Update".into(),
            timestamp: "2026-12-01T10:00:00.000Z".into(),
        })
    }

    /// A System Log poll that read `events`.
    fn polled(events: Vec<okta::LogEvent>) -> Event {
        Event::Okta {
            events,
            next: "n".into(),
        }
    }

    fn okta_event(user: &str, own: bool) -> okta::LogEvent {
        okta::LogEvent {
            uuid: "u".into(),
            published: "2026-12-01T10:00:00.000Z".into(),
            event_type: "user.account.update_profile".into(),
            users: vec![OktaId(user.into())],
            scopes: Vec::new(),
            own,
        }
    }

    /// Under `scope = "group:00gSync"`, a membership change of another group (or any app) is
    /// ignored; one of that group names its user. Under the whole org, none matters.
    #[test]
    fn membership_events_count_only_for_the_configured_scope() {
        let store = Store::open_in_memory().unwrap();
        let membership = |kind: &str, id: &str| okta::LogEvent {
            event_type: "group.user_membership.add".into(),
            scopes: vec![(kind.into(), id.into())],
            ..okta_event("00u1", false)
        };
        for (scope, event, named) in [
            ("group:00gSync", membership("UserGroup", "00gOther"), false),
            ("group:00gSync", membership("AppInstance", "00gSync"), false),
            ("group:00gSync", membership("UserGroup", "00gSync"), true),
            ("app:0oaApp", membership("AppInstance", "0oaApp"), true),
            ("all", membership("UserGroup", "00gSync"), false),
        ] {
            let mut config = crate::sandbox::config_for(
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                crate::reconcile::policy::Policy::builtin(),
                std::path::Path::new(":memory:"),
            );
            config.okta.scope = match scope.split_once(':') {
                Some(("group", g)) => crate::config::OktaScope::Group(g.into()),
                Some((_, a)) => crate::config::OktaScope::App(a.into()),
                None => crate::config::OktaScope::All,
            };
            let mut ev = Events::new(&config, Default::default());
            ev.on_event(polled(vec![event]), &store);
            assert_eq!(!ev.take(false).named.is_empty(), named, "{scope}");
        }
    }

    /// An escalated targeted pass read nobody: its users' first-heard times are dropped, so
    /// no later lag inherits them.
    #[test]
    fn an_escalated_pass_drops_its_lag_records() {
        let (mut ev, store) = events();
        ev.on_event(polled(vec![okta_event("00u1", false)]), &store);
        let taken = ev.take(false);
        assert!(ev.first_seen.contains_key("o:00u1"));
        ev.finished(&store, taken, true, &PassEnd::Escalated("gone".into()));
        assert!(ev.first_seen.is_empty(), "{:?}", ev.first_seen);
    }

    /// Past the users a targeted pass reads, the names are dropped for one whole pass.
    #[test]
    fn a_flood_of_named_users_keeps_only_a_whole_pass() {
        let (mut ev, store) = events();
        let flood: Vec<_> = (0..=crate::pass::MAX_TARGETED_USERS)
            .map(|i| okta_event(&format!("00u{i}"), false))
            .collect();
        ev.on_event(polled(flood), &store);
        let taken = ev.take(false);
        assert!(taken.named.is_empty());
        assert_eq!(taken.catchup_kind(), Some(Catchup::Incremental));
    }

    /// Event-driven whole passes are spaced: a second catch-up within the spacing waits
    /// (users named meanwhile still go at once); a scheduled whole pass answers it.
    #[tokio::test(start_paused = true)]
    async fn event_driven_whole_passes_are_spaced() {
        let (mut ev, store) = events();
        ev.spacing = Duration::from_secs(900);
        let lost = || Event::OktaLost {
            reason: "lost".into(),
        };
        // The start-up catch-up does not start the spacing; the next one does.
        ev.on_event(lost(), &store);
        assert_eq!(ev.take(false).catchup_kind(), Some(Catchup::Full));
        ev.on_event(lost(), &store);
        assert_eq!(ev.take(false).catchup_kind(), Some(Catchup::Full));
        ev.on_event(lost(), &store);
        ev.on_event(polled(vec![okta_event("00u1", false)]), &store);
        let taken = ev.take(false);
        assert_eq!(taken.catchup_kind(), None, "the catch-up waits");
        assert_eq!(taken.named.okta.len(), 1, "the named user goes now");
        let due = ev.due().expect("due when the spacing ends");
        assert!(due >= Instant::now() + Duration::from_secs(899));
        tokio::time::advance(Duration::from_secs(901)).await;
        assert_eq!(ev.take(false).catchup_kind(), Some(Catchup::Full));
        ev.on_event(lost(), &store);
        assert_eq!(ev.take(true).catchup_kind(), Some(Catchup::Full));
    }

    /// A pass that wrote to extension 61: one notification of 61 is its echo, whether heard
    /// during the pass or after it; a second one is an edit to read.
    #[test]
    fn each_write_is_expected_to_echo_once() {
        let (mut ev, store) = events();
        // Heard during the pass that writes 61 (nothing pending before it).
        ev.on_event(changed("61"), &store);
        assert_eq!(ev.pending.telus.len(), 1);
        ev.echo_written(&[ExtId("61".into())]);
        assert!(
            ev.pending.telus.is_empty(),
            "the echo heard during the pass is dropped"
        );
        // Written again; its echo comes after the pass, then a real edit.
        ev.echo_written(&[ExtId("61".into())]);
        ev.on_event(changed("61"), &store);
        assert!(ev.pending.telus.is_empty(), "the expected echo");
        ev.on_event(changed("61"), &store);
        assert_eq!(ev.pending.telus.len(), 1, "a second notification is a hint");
        let f = ev.figures.lock().unwrap();
        assert_eq!(f.events[&("telus".to_string(), "own".to_string())], 2);
        assert_eq!(f.events[&("telus".to_string(), "hint".to_string())], 2);
    }

    /// The System Log cursor is stored only when no hint it passed over still waits for a
    /// pass; the Okta writes of this tool are no hint.
    #[test]
    fn the_cursor_is_stored_once_its_events_are_answered() {
        let (mut ev, store) = events();
        let cursor = || store.okta_cursor().unwrap().map(|c| c.next);
        ev.on_event(
            Event::Okta {
                events: vec![okta_event("00u1", true)],
                next: "c1".into(),
            },
            &store,
        );
        assert_eq!(
            cursor().as_deref(),
            Some("c1"),
            "only an own write: nothing waits"
        );
        ev.on_event(
            Event::Okta {
                events: vec![okta_event("00u2", false)],
                next: "c2".into(),
            },
            &store,
        );
        ev.on_event(
            Event::Okta {
                events: vec![],
                next: "c3".into(),
            },
            &store,
        );
        assert_eq!(
            cursor().as_deref(),
            Some("c1"),
            "00u2 still waits for its pass"
        );
        let named = ev.take(false).named;
        assert!(named.okta.contains_key(&OktaId("00u2".into())));
        ev.after_pass(&store, None, &named, false);
        assert_eq!(
            cursor().as_deref(),
            Some("c3"),
            "answered: the cursor moves on"
        );
    }

    /// A user whose change stays unconfirmed is read again a few times, then left to the
    /// scheduled passes; a confirmed change resets the count.
    #[test]
    fn unconfirmed_users_are_read_again_a_few_times() {
        let (mut ev, _store) = events();
        let mut named = Named::default();
        named.telus.insert(ExtId("61".into()), "Update".into());
        for _ in 0..MAX_REREADS {
            ev.reread(&named, Duration::ZERO);
            assert_eq!(ev.take(false).named, named);
        }
        ev.reread(&named, Duration::ZERO);
        assert!(
            ev.take(false).named.is_empty(),
            "given up after {MAX_REREADS}"
        );
        ev.confirmed(&named);
        ev.reread(&named, Duration::ZERO);
        assert_eq!(ev.take(false).named, named);
    }

    #[test]
    fn a_cursor_older_than_the_log_retention_is_taken_as_lost() {
        let now = chrono::Utc::now();
        let at = |days: i64| (now - chrono::Duration::days(days)).to_rfc3339();
        assert!(!cursor_too_old(Some(&at(89)), now));
        assert!(cursor_too_old(Some(&at(91)), now));
        assert!(cursor_too_old(None, now));
    }

    /// Out of order or not, a user keeps its weightiest event: an edit after (or before) the
    /// creation notice of a linked extension is still read; an activation is not hidden by
    /// a later profile edit.
    #[test]
    fn a_user_keeps_its_weightiest_event() {
        let mut p = std::collections::BTreeMap::new();
        note(&mut p, 1, "Update");
        note(&mut p, 1, "Create");
        assert_eq!(p[&1], "Update");
        note(&mut p, 2, "user.lifecycle.activate");
        note(&mut p, 2, "user.account.update_profile");
        assert_eq!(p[&2], "user.lifecycle.activate");
        note(&mut p, 1, "Delete");
        assert_eq!(p[&1], "Delete");
    }

    /// Events lost while a pass runs are not answered by that pass (it read before the loss):
    /// the catch-up stays for the next one.
    #[test]
    fn a_loss_during_a_pass_outlives_it() {
        let (mut ev, store) = events();
        ev.on_event(
            Event::Telus(Notice::Subscribed {
                lost: true,
                recovered: false,
            }),
            &store,
        );
        let taken = ev.take(false);
        assert!(taken.catchup.is_some());
        let named = taken.named;
        ev.on_event(
            Event::Telus(Notice::Subscribed {
                lost: true,
                recovered: false,
            }),
            &store,
        );
        ev.after_pass(&store, None, &named, false);
        assert!(ev.catchup.is_some() && ev.due.is_some());
    }

    /// A 400 loses events only on a `next` link, and only once; on a query from a time it is
    /// a failed poll, as is a page over the cap; failed polls double their wait up to 5 min.
    #[test]
    fn a_refused_poll_is_lost_events_only_on_a_link() {
        let refused = || {
            Err(okta::Error::Api {
                endpoint: "GET logs".into(),
                status: 400,
                code: "E0000001".into(),
                summary: "bad".into(),
                causes: Vec::new(),
            })
        };
        let j = judge(
            LogCursor::Next("https://o/api/v1/logs?after=1".into()),
            refused(),
        );
        assert!(matches!(j.event, Event::OktaLost { .. }) && !j.failed);
        assert!(matches!(j.cursor, LogCursor::Since(_)));
        let j = judge(j.cursor, refused());
        assert!(matches!(j.event, Event::OktaDown { .. }) && j.failed);
        assert!(matches!(j.cursor, LogCursor::Since(_)));
        let big = Err(okta::Error::Decode {
            endpoint: "GET logs".into(),
            message: crate::http::BodyError::TooLarge.to_string(),
        });
        let j = judge(LogCursor::Since("t".into()), big);
        assert!(
            matches!(&j.event, Event::OktaDown { reason } if reason.contains("over the answer size cap"))
                && j.failed
        );
        let every = Duration::from_secs(10);
        assert_eq!(poll_wait(every, 0), every);
        assert_eq!(poll_wait(every, 1), Duration::from_secs(20));
        assert_eq!(poll_wait(every, 3), Duration::from_secs(80));
        assert_eq!(poll_wait(every, 40), MAX_POLL_BACKOFF);
    }

    #[test]
    fn a_cursor_is_foreign_to_another_origin_only() {
        let url = url::Url::parse("https://acme.okta.com").unwrap();
        assert_eq!(
            foreign_origin("https://acme.okta.com/api/v1/logs?after=1", &url),
            None
        );
        assert_eq!(
            foreign_origin("https://old.okta.com/api/v1/logs?after=1", &url).as_deref(),
            Some("https://old.okta.com")
        );
        assert!(foreign_origin("garbage", &url).is_some());
    }

    /// Events were lost: the larger catch-up wins, and the stored cursor is forgotten.
    #[test]
    fn lost_events_ask_for_the_larger_pass_and_forget_the_cursor() {
        let (mut ev, store) = events();
        store.save_okta_cursor("old").unwrap();
        ev.on_event(
            Event::Telus(Notice::Subscribed {
                lost: true,
                recovered: false,
            }),
            &store,
        );
        ev.on_event(
            Event::OktaLost {
                reason: "too old".into(),
            },
            &store,
        );
        assert_eq!(ev.catchup.as_ref().map(|c| c.0), Some(Catchup::Full));
        assert_eq!(store.okta_cursor().unwrap(), None);
        ev.on_event(
            Event::Telus(Notice::Subscribed {
                lost: true,
                recovered: false,
            }),
            &store,
        );
        assert_eq!(ev.catchup.as_ref().map(|c| c.0), Some(Catchup::Full));
        assert!(ev.due.is_some());
    }
}
