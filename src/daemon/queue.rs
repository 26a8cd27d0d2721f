//! The daemon's pass requests as a state machine with no IO. Scheduled ticks, SIGUSR1 and
//! what change events ask for are requests; a request that arrives while a pass runs, or
//! finds the store held by another process, is coalesced with what is queued, never
//! dropped; a full request outranks an incremental one. Typed pass outcomes step it: a
//! whole-system failure backs passes off, a busy store retries shortly. Time is tokio's, so
//! tests step it on a paused clock.

use super::events::{BUSY_RETRY, Catchup, Events, PassEnd, Taken};
use crate::pass::Scope;
use std::time::Duration;
use tokio::time::Instant;

/// Which kind of pass a scheduled tick asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tick {
    Incremental,
    Full,
}

/// A pass to run now: its scope, and what of the change events it answers.
#[derive(Debug)]
pub struct Job {
    pub scope: Scope,
    pub taken: Taken,
}

impl Job {
    pub fn is_targeted(&self) -> bool {
        matches!(self.scope, Scope::Named(_))
    }
}

/// The queue of pass requests.
#[derive(Debug, Default)]
pub struct Queue {
    /// A whole pass asked for (by the schedule or an operator) and not run yet: full or not.
    whole: Option<Tick>,
    /// A queued whole pass found the store busy: when it tries again.
    retry_at: Option<Instant>,
    /// Whole-system failures in a row, and when passes resume after the last one.
    failures: u32,
    resume_at: Option<Instant>,
}

impl Queue {
    /// A scheduled tick. An incremental tick is skipped (not queued) while `quiet`: change
    /// events are healthy and a whole pass ran within `events.quiet_incremental_minutes`.
    /// Returns whether it was queued.
    pub fn scheduled(&mut self, tick: Tick, quiet: bool) -> bool {
        if tick == Tick::Incremental && quiet {
            return false;
        }
        self.whole = self.whole.max(Some(tick));
        true
    }

    /// An operator asks for a pass now (SIGUSR1): it overrides a backoff and a busy retry,
    /// and runs even while events keep passes quiet.
    pub fn pass_now(&mut self) {
        self.whole = self.whole.max(Some(Tick::Incremental));
        self.resume_at = None;
        self.retry_at = None;
    }

    /// Whether passes wait out a whole-system failure at `now`.
    pub fn backing_off(&self, now: Instant) -> bool {
        self.resume_at.is_some_and(|t| t > now)
    }

    /// Whether a queued whole pass waits for another process to free the store.
    pub fn waiting_for_store(&self) -> bool {
        self.retry_at.is_some()
    }

    /// The pass to run at `now`, if any: a queued whole pass first (it answers whatever
    /// events named too), else what events ask for once their debounce is over.
    pub fn next(&mut self, now: Instant, events: &mut Events) -> Option<Job> {
        if self.backing_off(now) {
            return None;
        }
        if let Some(tick) = self.whole
            && self.retry_at.is_none_or(|t| t <= now)
        {
            self.whole = None;
            self.retry_at = None;
            let taken = events.take(true);
            let full = tick == Tick::Full || taken.catchup_kind() == Some(Catchup::Full);
            return Some(Job {
                scope: Scope::Whole { full },
                taken,
            });
        }
        if events.due().is_none_or(|t| t > now) {
            return None;
        }
        let taken = events.take(false);
        let scope = match taken.catchup_kind() {
            Some(kind) => Scope::Whole {
                full: kind == Catchup::Full,
            },
            None if taken.named.is_empty() => return None,
            None => Scope::Named(taken.named.clone()),
        };
        Some(Job { scope, taken })
    }

    /// When something may be due next (a busy retry, the end of a backoff, the events'
    /// debounce), or `None` when only a new request can make a pass due.
    pub fn wake_at(&self, events: &Events) -> Option<Instant> {
        let queued = self.whole.map(|_| self.retry_at);
        let due = match (queued, events.due()) {
            (Some(Some(retry)), Some(e)) => Some(retry.min(e)),
            (Some(Some(retry)), None) => Some(retry),
            (Some(None), _) => Some(Instant::now()),
            (None, e) => e,
        };
        due.map(|t| self.resume_at.map_or(t, |r| t.max(r)))
    }

    /// Steps the queue with how `job` ended at `now`. `backoff` gives the wait after the
    /// n-th whole-system failure in a row.
    pub fn finished(
        &mut self,
        job: &Job,
        end: &PassEnd,
        now: Instant,
        backoff: impl FnOnce(u32) -> Duration,
    ) {
        match end {
            PassEnd::Busy => {
                // The store is held by another process's pass: the whole request waits for
                // it (what events asked for is put back by the events themselves).
                if let Scope::Whole { full } = job.scope {
                    let tick = if full { Tick::Full } else { Tick::Incremental };
                    self.whole = self.whole.max(Some(tick));
                    self.retry_at = Some(now + BUSY_RETRY);
                }
            }
            PassEnd::SystemFailed => {
                self.failures += 1;
                self.resume_at = Some(now + backoff(self.failures));
            }
            PassEnd::Ran { .. } => {
                self.failures = 0;
                self.resume_at = None;
            }
            PassEnd::Escalated(_) | PassEnd::Nothing => {}
        }
    }

    /// Whole-system failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::events::Event;
    use crate::model::ExtId;
    use crate::store::Store;
    use crate::telus::events::Notice;

    fn setup() -> (Queue, Events, Store) {
        let config = crate::sandbox::config_for(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            crate::reconcile::policy::Policy::builtin(),
            std::path::Path::new(":memory:"),
        );
        (
            Queue::default(),
            Events::new(&config, Default::default()),
            Store::open_in_memory().unwrap(),
        )
    }

    fn edit_of(ext: &str) -> Event {
        Event::Telus(Notice::Changed {
            ext: ExtId(ext.into()),
            event_type: "Update".into(),
            timestamp: "2026-12-01T10:00:00.000Z".into(),
        })
    }

    fn ran() -> PassEnd {
        PassEnd::Ran {
            pass_id: None,
            applied: false,
            unconfirmed: false,
        }
    }

    /// Runs `job` to `end`, stepping the events and the queue as the daemon does.
    fn finish(q: &mut Queue, ev: &mut Events, store: &Store, job: Job, end: PassEnd) {
        q.finished(&job, &end, Instant::now(), |n| {
            Duration::from_secs(60 * u64::from(n))
        });
        let targeted = job.is_targeted();
        ev.finished(store, job.taken, targeted, &end);
    }

    /// The dropped tick: a daily full tick that lands while a targeted pass runs is queued,
    /// and the full pass runs as soon as the targeted one ends.
    #[tokio::test(start_paused = true)]
    async fn a_full_tick_during_a_targeted_pass_runs_right_after_it() {
        let (mut q, mut ev, store) = setup();
        ev.on_event(edit_of("61"), &store);
        assert!(q.next(Instant::now(), &mut ev).is_none(), "debounced");
        tokio::time::advance(crate::daemon::events::DEBOUNCE).await;
        let job = q.next(Instant::now(), &mut ev).expect("the targeted pass");
        assert!(matches!(job.scope, Scope::Named(_)));
        // The pass runs for a while; the full tick arrives meanwhile.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(q.scheduled(Tick::Full, false));
        finish(&mut q, &mut ev, &store, job, ran());
        let next = q
            .next(Instant::now(), &mut ev)
            .expect("the full pass, at once");
        assert_eq!(next.scope, Scope::Whole { full: true });
        assert!(q.next(Instant::now(), &mut ev).is_none(), "run once");
    }

    /// Ticks coalesce: a full request outranks an incremental one, and SIGUSR1 joins what
    /// is queued; a quiet incremental tick is not queued, a full one always is.
    #[tokio::test(start_paused = true)]
    async fn requests_coalesce_and_a_full_one_outranks_an_incremental_one() {
        let (mut q, mut ev, _store) = setup();
        assert!(q.scheduled(Tick::Incremental, false));
        assert!(q.scheduled(Tick::Full, false));
        q.pass_now();
        assert!(q.scheduled(Tick::Incremental, false));
        let job = q.next(Instant::now(), &mut ev).unwrap();
        assert_eq!(job.scope, Scope::Whole { full: true });
        assert!(q.next(Instant::now(), &mut ev).is_none());
        assert!(!q.scheduled(Tick::Incremental, true), "quiet");
        assert!(q.next(Instant::now(), &mut ev).is_none());
        assert!(q.scheduled(Tick::Full, true), "a full tick is never quiet");
        assert!(q.next(Instant::now(), &mut ev).is_some());
    }

    /// A whole pass that finds the store held by another process waits for it: it is tried
    /// again after `BUSY_RETRY`, still full, and what events named goes with it.
    #[tokio::test(start_paused = true)]
    async fn a_request_that_finds_the_store_busy_waits_for_it() {
        let (mut q, mut ev, store) = setup();
        q.scheduled(Tick::Full, false);
        ev.on_event(edit_of("61"), &store);
        let job = q.next(Instant::now(), &mut ev).unwrap();
        assert_eq!(
            job.taken.named.telus.len(),
            1,
            "the whole pass answers the hint"
        );
        finish(&mut q, &mut ev, &store, job, PassEnd::Busy);
        assert!(q.waiting_for_store());
        assert!(q.next(Instant::now(), &mut ev).is_none());
        assert_eq!(q.wake_at(&ev), Some(Instant::now() + BUSY_RETRY));
        tokio::time::advance(BUSY_RETRY).await;
        let again = q.next(Instant::now(), &mut ev).expect("tried again");
        assert_eq!(again.scope, Scope::Whole { full: true });
        assert_eq!(again.taken.named.telus.len(), 1, "the hint was put back");
        finish(&mut q, &mut ev, &store, again, ran());
        assert!(!q.waiting_for_store());
        assert!(q.next(Instant::now(), &mut ev).is_none());
    }

    /// A whole-system failure backs every pass off (events' too), doubling; SIGUSR1 ends the
    /// backoff; a pass that runs resets the count.
    #[tokio::test(start_paused = true)]
    async fn a_system_failure_backs_off_until_it_ends_or_an_operator_asks() {
        let (mut q, mut ev, store) = setup();
        q.scheduled(Tick::Incremental, false);
        let job = q.next(Instant::now(), &mut ev).unwrap();
        finish(&mut q, &mut ev, &store, job, PassEnd::SystemFailed);
        assert_eq!(q.failures(), 1);
        q.scheduled(Tick::Incremental, false);
        ev.on_event(edit_of("61"), &store);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(q.next(Instant::now(), &mut ev).is_none(), "backing off");
        assert_eq!(q.wake_at(&ev).map(|t| t > Instant::now()), Some(true));
        tokio::time::advance(Duration::from_secs(1)).await;
        let job = q.next(Instant::now(), &mut ev).expect("resumed");
        finish(&mut q, &mut ev, &store, job, PassEnd::SystemFailed);
        assert_eq!(q.failures(), 2);
        q.pass_now();
        let job = q
            .next(Instant::now(), &mut ev)
            .expect("an operator's pass now");
        finish(&mut q, &mut ev, &store, job, ran());
        assert_eq!(q.failures(), 0);
        assert!(!q.backing_off(Instant::now()));
    }

    /// A targeted pass that cannot decide asks the events for an incremental pass, which
    /// the queue gives at once.
    #[tokio::test(start_paused = true)]
    async fn an_escalated_targeted_pass_becomes_an_incremental_pass_at_once() {
        let (mut q, mut ev, store) = setup();
        ev.on_event(edit_of("61"), &store);
        tokio::time::advance(crate::daemon::events::DEBOUNCE).await;
        let job = q.next(Instant::now(), &mut ev).unwrap();
        let end = PassEnd::Escalated("TELUS extension 61 was deleted".into());
        finish(&mut q, &mut ev, &store, job, end);
        let next = q.next(Instant::now(), &mut ev).expect("at once");
        assert_eq!(next.scope, Scope::Whole { full: false });
        assert!(next.taken.catchup.is_some());
    }
}
