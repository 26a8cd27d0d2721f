//! Per-user retry policy: exponential backoff after a failed write, quarantine after repeated
//! failures until the user's data changes or an admin releases it. Pure; time is a parameter.

use super::plan::PlannedAction;
use super::policy::Retry;
use chrono::{DateTime, Utc};

/// A user whose changes failed on recent passes (as the store keeps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    /// The Okta id, or `ext:<id>` for a TELUS-only action.
    pub user_key: String,
    pub email: String,
    pub consecutive: u32,
    pub last_code: Option<String>,
    pub last_error: Option<String>,
    pub last_failed_at: String,
    pub next_retry_at: String,
    pub quarantined: bool,
    /// Fingerprint of the changes that failed: new data releases the quarantine.
    pub data_hash: String,
}

/// A stable fingerprint (FNV-1a, 64 bit) of what a user's actions would write. Hand-written
/// because std's hasher is not stable across releases and a crate is too much for 10 lines.
pub fn fingerprint<'a>(actions: impl IntoIterator<Item = &'a PlannedAction>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for a in actions {
        feed(a.system.as_str());
        feed(a.action.as_str());
        for c in a.changes() {
            feed(&c.field);
            feed(c.new.as_deref().unwrap_or("\u{0}"));
        }
    }
    format!("{h:016x}")
}

/// Whether a user's actions go ahead this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Go,
    /// Failed recently: waiting until this time (RFC 3339).
    Backoff(String),
    Quarantined,
}

pub fn gate(record: Option<&FailureRow>, fingerprint: &str, now: DateTime<Utc>) -> Gate {
    let Some(r) = record else { return Gate::Go };
    if r.data_hash != fingerprint {
        // The data changed since it failed: try the new data at once.
        return Gate::Go;
    }
    if r.quarantined {
        return Gate::Quarantined;
    }
    match DateTime::parse_from_rfc3339(&r.next_retry_at) {
        Ok(t) if t.with_timezone(&Utc) > now => Gate::Backoff(r.next_retry_at.clone()),
        _ => Gate::Go,
    }
}

/// The record after another failed attempt; `failure` is the error's code and explanation.
pub fn record_failure(
    prev: Option<&FailureRow>,
    key: &str,
    email: &str,
    failure: &(Option<String>, String),
    fingerprint: &str,
    now: DateTime<Utc>,
    policy: &Retry,
) -> FailureRow {
    let consecutive = prev.map_or(0, |p| p.consecutive) + 1;
    let factor = 1u32 << (consecutive - 1).min(16);
    let wait = policy.backoff.saturating_mul(factor);
    let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    FailureRow {
        user_key: key.to_string(),
        email: email.to_string(),
        consecutive,
        last_code: failure.0.clone(),
        last_error: Some(failure.1.clone()),
        last_failed_at: ts(now),
        next_retry_at: ts(next),
        quarantined: consecutive >= policy.quarantine_after,
        data_hash: fingerprint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> Retry {
        Retry {
            quarantine_after: 3,
            backoff: Duration::from_secs(60),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn backoff_doubles_and_quarantine_follows() {
        let now = t("2026-11-26T10:00:00Z");
        let fail = (Some("CMN-101".to_string()), "bad".to_string());
        let r1 = record_failure(None, "o1", "a@x.ca", &fail, "h", now, &policy());
        assert_eq!(r1.last_code.as_deref(), Some("CMN-101"));
        assert_eq!(r1.next_retry_at, "2026-11-26T10:01:00.000Z");
        assert!(!r1.quarantined);
        let r2 = record_failure(
            Some(&r1),
            "o1",
            "a@x.ca",
            &(None, "bad".into()),
            "h",
            now,
            &policy(),
        );
        assert_eq!(r2.next_retry_at, "2026-11-26T10:02:00.000Z");
        let r3 = record_failure(
            Some(&r2),
            "o1",
            "a@x.ca",
            &(None, "bad".into()),
            "h",
            now,
            &policy(),
        );
        assert!(r3.quarantined);
        assert_eq!(r3.consecutive, 3);
    }

    #[test]
    fn gate_waits_for_backoff_and_holds_quarantine_until_data_changes() {
        let now = t("2026-11-26T10:00:00Z");
        let r1 = record_failure(
            None,
            "o1",
            "a@x.ca",
            &(None, "bad".into()),
            "h",
            now,
            &policy(),
        );
        assert!(matches!(gate(Some(&r1), "h", now), Gate::Backoff(_)));
        assert_eq!(gate(Some(&r1), "h", t("2026-11-26T10:01:01Z")), Gate::Go);
        let mut q = r1.clone();
        q.quarantined = true;
        assert_eq!(
            gate(Some(&q), "h", t("2027-01-01T00:00:00Z")),
            Gate::Quarantined
        );
        assert_eq!(gate(Some(&q), "other", now), Gate::Go);
        assert_eq!(gate(None, "h", now), Gate::Go);
    }
}
