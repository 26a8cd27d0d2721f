//! RingCentral's rate-limit groups as plain state: what each group has left and when its
//! window (or penalty) ends, learnt from the headers, a 429, or another process. Time is
//! tokio's, so the rules are tested with paused time; the client only feeds it and sleeps.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// RingCentral's rate-limit groups (API reference, "Rate limits": each endpoint belongs to
/// one, each with its own budget per window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateGroup {
    Light,
    Medium,
    Heavy,
    Auth,
}

impl RateGroup {
    pub const ALL: [RateGroup; 4] = [
        RateGroup::Light,
        RateGroup::Medium,
        RateGroup::Heavy,
        RateGroup::Auth,
    ];

    /// The group's name as RingCentral writes it (and as the store keeps it).
    pub fn as_str(self) -> &'static str {
        match self {
            RateGroup::Light => "Light",
            RateGroup::Medium => "Medium",
            RateGroup::Heavy => "Heavy",
            RateGroup::Auth => "Auth",
        }
    }

    /// A group named in saved state; an unknown name is `None` (ignored, never guessed).
    pub fn parse(name: &str) -> Option<RateGroup> {
        RateGroup::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

impl std::fmt::Display for RateGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    remaining: u64,
    /// When the current window ends (or a penalty is over).
    until: Instant,
}

/// Every group's known state.
#[derive(Debug, Default)]
pub struct Pacing {
    groups: HashMap<RateGroup, Group>,
    /// Groups whose budget is unknown (never seen, or its window ended) and that have one
    /// request out to learn it: the others wait for its answer instead of all going at once.
    probing: std::collections::HashSet<RateGroup>,
}

/// Whether a request may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Go: one request of the known budget is taken.
    Go,
    /// Go and learn the budget from the answer; call `answered` once it is noted (or failed).
    Learn,
    /// The budget is spent (or a penalty runs) for this long.
    Spent(Duration),
    /// Another request is learning the budget: ask again shortly.
    Probing,
}

impl Pacing {
    /// An answer's `X-Rate-Limit-Remaining` and `-Window` (seconds): a window ends `window`
    /// seconds after it began, so the earliest known end is kept. Within a window the lower
    /// of the server's count and this process's own (which already took the requests still
    /// in flight) is kept: answers arrive out of order.
    pub fn note(&mut self, group: RateGroup, remaining: u64, window_secs: u64, now: Instant) {
        let end = now + crate::http::server_wait_secs(window_secs);
        let g = self.groups.entry(group).or_insert(Group {
            remaining,
            until: end,
        });
        if g.until <= now {
            *g = Group {
                remaining,
                until: end,
            };
        } else {
            g.remaining = g.remaining.min(remaining);
        }
    }

    /// Takes one request of the group's budget, when there is one. An unknown budget is
    /// learnt by one request at a time; RingCentral counts every request, and with a small
    /// budget two sent blind at once could draw a 429 and its penalty.
    pub fn claim(&mut self, group: RateGroup, now: Instant) -> Claim {
        match self.groups.get_mut(&group) {
            Some(g) if g.until > now && g.remaining > 0 => {
                g.remaining -= 1;
                Claim::Go
            }
            Some(g) if g.until > now => Claim::Spent(g.until - now),
            _ if self.probing.insert(group) => Claim::Learn,
            _ => Claim::Probing,
        }
    }

    /// A request of the group was answered (or failed): a budget it was learning is known
    /// now, or is learnt by the next request.
    pub fn answered(&mut self, group: RateGroup) {
        self.probing.remove(&group);
    }

    /// A penalty (after a 429, or one another process met): nothing is sent to the group
    /// until it ends, since every request during a penalty restarts it. A penalty replaces
    /// the window; of two penalties the later end wins.
    pub fn penalize(&mut self, group: RateGroup, until: Instant) {
        let g = self.groups.entry(group).or_insert(Group {
            remaining: 0,
            until,
        });
        if g.remaining > 0 || g.until < until {
            *g = Group {
                remaining: 0,
                until,
            };
        }
    }

    /// How long the next request to the group must wait: `None` while budget is left or
    /// once the window has ended.
    pub fn wait(&self, group: RateGroup, now: Instant) -> Option<Duration> {
        let g = self.groups.get(&group)?;
        (g.remaining == 0 && g.until > now).then(|| g.until - now)
    }

    /// Each group whose window has not ended: (group, requests left, time to its end).
    pub fn live(&self, now: Instant) -> Vec<(RateGroup, u64, Duration)> {
        self.groups
            .iter()
            .filter(|(_, g)| g.until > now)
            .map(|(name, g)| (*name, g.remaining, g.until - now))
            .collect()
    }

    /// Merges a state another process saved (requests left, time to its end): for a group
    /// whose own window is over, or that has more left, the saved state wins whole.
    pub fn merge(&mut self, group: RateGroup, remaining: u64, left: Duration, now: Instant) {
        let until = now + left;
        let g = self
            .groups
            .entry(group)
            .or_insert(Group { remaining, until });
        if g.until <= now
            || remaining < g.remaining
            || (remaining == g.remaining && until > g.until)
        {
            *g = Group { remaining, until };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_spent_window_waits_until_it_ends_then_budget_is_learnt_again() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        p.note(RateGroup::Medium, 1, 60, t0);
        assert_eq!(p.wait(RateGroup::Medium, t0), None, "one request left");
        tokio::time::advance(Duration::from_secs(10)).await;
        // The window's end is kept from its start, not moved by later answers.
        p.note(RateGroup::Medium, 0, 60, Instant::now());
        assert_eq!(
            p.wait(RateGroup::Medium, Instant::now()),
            Some(Duration::from_secs(50))
        );
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(
            p.wait(RateGroup::Medium, Instant::now()),
            None,
            "the window is over"
        );
        assert!(p.live(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_take_the_budget_as_they_go_and_an_unknown_one_is_learnt_by_one() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        // Unknown: one request goes to learn it, the others wait for its answer.
        assert_eq!(p.claim(RateGroup::Medium, t0), Claim::Learn);
        assert_eq!(p.claim(RateGroup::Medium, t0), Claim::Probing);
        p.note(RateGroup::Medium, 2, 60, t0);
        p.answered(RateGroup::Medium);
        // Two left: two go, the third waits for the window's end.
        assert_eq!(p.claim(RateGroup::Medium, t0), Claim::Go);
        assert_eq!(p.claim(RateGroup::Medium, t0), Claim::Go);
        assert_eq!(
            p.claim(RateGroup::Medium, t0),
            Claim::Spent(Duration::from_secs(60))
        );
        // A late answer reporting more left than this process took does not give it back.
        p.note(RateGroup::Medium, 1, 60, t0);
        assert!(matches!(p.claim(RateGroup::Medium, t0), Claim::Spent(_)));
        // Once the window is over the budget is learnt again, by one request.
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        assert_eq!(p.claim(RateGroup::Medium, now), Claim::Learn);
        assert_eq!(p.claim(RateGroup::Medium, now), Claim::Probing);
        // Other groups are their own budgets.
        assert_eq!(p.claim(RateGroup::Light, now), Claim::Learn);
        // A learner that fails lets the next one learn.
        p.answered(RateGroup::Medium);
        assert_eq!(p.claim(RateGroup::Medium, now), Claim::Learn);
    }

    /// A window header of 2^64 seconds neither overflows the clock nor stalls for good.
    #[tokio::test(start_paused = true)]
    async fn a_window_header_of_any_size_waits_at_most_the_cap() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        p.note(RateGroup::Auth, 0, u64::MAX, t0);
        assert_eq!(
            p.wait(RateGroup::Auth, t0),
            Some(crate::http::MAX_SERVER_WAIT)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_replaces_the_window_and_the_later_one_wins() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        p.note(RateGroup::Heavy, 5, 60, t0);
        p.penalize(RateGroup::Heavy, t0 + Duration::from_secs(30));
        assert_eq!(p.wait(RateGroup::Heavy, t0), Some(Duration::from_secs(30)));
        p.penalize(RateGroup::Heavy, t0 + Duration::from_secs(10));
        assert_eq!(
            p.wait(RateGroup::Heavy, t0),
            Some(Duration::from_secs(30)),
            "kept"
        );
        p.penalize(RateGroup::Heavy, t0 + Duration::from_secs(45));
        assert_eq!(p.wait(RateGroup::Heavy, t0), Some(Duration::from_secs(45)));
        // Other groups are their own budgets.
        assert_eq!(p.wait(RateGroup::Light, t0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_state_with_less_left_wins_whole() {
        let mut p = Pacing::default();
        let t0 = Instant::now();
        p.note(RateGroup::Medium, 30, 60, t0);
        p.merge(RateGroup::Medium, 0, Duration::from_secs(20), t0);
        assert_eq!(p.wait(RateGroup::Medium, t0), Some(Duration::from_secs(20)));
        // More left than known: ignored.
        p.merge(RateGroup::Medium, 40, Duration::from_secs(59), t0);
        assert_eq!(p.wait(RateGroup::Medium, t0), Some(Duration::from_secs(20)));
        // An unknown group name from a file is no group (the client skips it).
        assert_eq!(RateGroup::parse("Bogus"), None);
        assert_eq!(RateGroup::parse("Medium"), Some(RateGroup::Medium));
        assert_eq!(p.live(t0).len(), 1);
    }
}
