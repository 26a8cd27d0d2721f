//! The TELUS client's transport: each request paced by its rate-limit group (budgets learnt
//! from headers, a 429's penalty, a penalty another process met), and answers decoded.

use super::client::{Client, MAX_WAIT_MS, epoch_ms};
use super::error::Error;
use super::pacing::{Claim, Pacing, RateGroup};
use crate::http::backoff_delay;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a group looks in the store for a penalty another process met: a store read,
/// so not before every request; a request sent in this gap restarts the other's penalty.
pub(super) const SHARED_PENALTY_CHECK: Duration = Duration::from_millis(250);

impl Client {
    /// After a 429: nothing more goes to the group until `Retry-After` (else the window) has
    /// passed, since every request during a penalty restarts it. After a 5xx: backoff.
    pub(super) async fn after_429_or_5xx(
        &self,
        group: RateGroup,
        resp: &reqwest::Response,
        attempt: u32,
    ) {
        if resp.status().as_u16() == 429 {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            let penalty = crate::http::server_wait_secs(
                header("retry-after")
                    .or_else(|| header("x-rate-limit-window"))
                    .unwrap_or(60),
            );
            let secs = penalty.as_secs();
            let until = tokio::time::Instant::now() + penalty;
            if let Some(p) = &self.persist
                && let Err(e) = p.save_penalty(group.as_str(), epoch_ms() + secs as i64 * 1000)
            {
                tracing::warn!(group = group.as_str(), error = %e, "cannot save the rate-limit penalty");
            }
            if let Ok(mut g) = self.groups.lock() {
                g.penalize(group, until);
            }
            tracing::warn!(
                group = group.as_str(),
                penalty_s = secs,
                "telus rate limit hit, pausing group"
            );
        } else {
            tokio::time::sleep(backoff_delay(&self.settings, attempt)).await;
        }
    }

    pub(super) fn note_rate_headers(&self, group: RateGroup, resp: &reqwest::Response) {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if resp.status().as_u16() == 429 {
            return;
        }
        if let (Some(remaining), Some(window)) = (
            header("x-rate-limit-remaining"),
            header("x-rate-limit-window"),
        ) && let Ok(mut g) = self.groups.lock()
        {
            g.note(group, remaining, window, tokio::time::Instant::now());
        }
    }

    /// Takes up a penalty another process on the store met since this one last looked (at
    /// most every [`SHARED_PENALTY_CHECK`] per group): every request sent during a penalty restarts it, so a
    /// process beside the daemon must not send into the daemon's, nor it into theirs.
    pub(super) fn look_for_shared_penalty(&self, group: RateGroup) {
        let Some(p) = &self.persist else { return };
        {
            let Ok(mut checked) = self.penalty_checked.lock() else {
                return;
            };
            if checked
                .get(&group)
                .is_some_and(|t| t.elapsed() < SHARED_PENALTY_CHECK)
            {
                return;
            }
            checked.insert(group, Instant::now());
        }
        let Ok(Some(until_ms)) = p.load_penalty(group.as_str()) else {
            return;
        };
        let left = until_ms.saturating_sub(epoch_ms());
        if left > 0
            && left <= MAX_WAIT_MS
            && let Ok(mut g) = self.groups.lock()
        {
            let now = tokio::time::Instant::now();
            let until = now + Duration::from_millis(left as u64);
            if g.wait(group, now).is_none_or(|w| w < until - now) {
                tracing::info!(
                    group = group.as_str(),
                    "a penalty another process met: pausing the group"
                );
            }
            g.penalize(group, until);
        }
    }

    /// Sleeps while the group's known budget has no more than `reserve` requests left in
    /// its window (or a penalty runs), so that what is left stays for other requests.
    pub(super) async fn keep_in_reserve(&self, group: RateGroup, reserve: u64) {
        loop {
            let now = tokio::time::Instant::now();
            let wait = self.groups.lock().ok().and_then(|g| {
                g.live(now)
                    .into_iter()
                    .find(|(g, left, _)| *g == group && *left <= reserve)
                    .map(|(_, _, until_end)| until_end)
            });
            match wait {
                Some(wait) => {
                    tracing::debug!(
                        group = group.as_str(),
                        wait_s = wait.as_secs(),
                        "keeping the group's last requests for token refreshes"
                    );
                    tokio::time::sleep(wait).await;
                }
                None => return,
            }
        }
    }

    /// Sleeps while the group's budget is spent or a penalty runs.
    pub(super) async fn wait_for_group(
        &self,
        group: RateGroup,
        endpoint: &str,
    ) -> Result<Ticket<'_>, Error> {
        self.look_for_shared_penalty(group);
        loop {
            let claim = self
                .groups
                .lock()
                .map(|mut g| g.claim(group, tokio::time::Instant::now()))
                .unwrap_or(Claim::Go);
            let wait = match claim {
                Claim::Go => return Ok(Ticket(None)),
                Claim::Learn => return Ok(Ticket(Some((&self.groups, group)))),
                Claim::Probing => {
                    tokio::time::sleep(PROBE_POLL).await;
                    continue;
                }
                Claim::Spent(wait) => wait,
            };
            if wait > self.settings.max_rate_wait {
                return Err(Error::RateLimited {
                    endpoint: endpoint.to_string(),
                });
            }
            crate::http::announce_wait(
                &format!("the TELUS {group} rate-limit budget ({endpoint})"),
                wait,
            );
            self.counters.rate_waits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .rate_wait_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request's place in its group. The one learning an unknown budget lets the others go
/// when dropped: after its answer's headers are noted, or when it failed or was cancelled.
pub(super) struct Ticket<'a>(Option<(&'a Mutex<Pacing>, RateGroup)>);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some((groups, group)) = self.0
            && let Ok(mut g) = groups.lock()
        {
            g.answered(group);
        }
    }
}

/// How often a request asks again while another learns its group's budget.
pub(super) const PROBE_POLL: Duration = Duration::from_millis(20);

pub(super) async fn decode<T: DeserializeOwned>(
    resp: reqwest::Response,
    endpoint: &str,
) -> Result<T, Error> {
    if resp.status().as_u16() == 304 {
        return Err(Error::Decode {
            endpoint: endpoint.to_string(),
            message: "answered 304 Not Modified to a request that was not conditional".into(),
        });
    }
    let bytes = crate::http::read_capped(resp).await.map_err(|e| match e {
        crate::http::BodyError::TooLarge => Error::Decode {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        },
        crate::http::BodyError::Read(message) => Error::Interrupted {
            endpoint: endpoint.to_string(),
            message,
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}
