//! Fuzzes what servers say about rate limits (any group name, remaining, window, Retry-After,
//! stored penalty): the pacing state never panics and never waits longer than the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use okta_telus_sync::http::{MAX_SERVER_WAIT, server_wait_secs};
use okta_telus_sync::telus::pacing::{GROUPS, Pacing};
use std::time::Duration;

fuzz_target!(|data: (u8, u64, u64, u64, u64, u64)| {
    let (group, remaining, window, retry_after, saved_left, saved_remaining) = data;
    let group = GROUPS[group as usize % GROUPS.len()];
    let now = tokio::time::Instant::now();
    let mut p = Pacing::default();
    p.note(group, remaining, window, now);
    p.penalize(group, now + server_wait_secs(retry_after));
    p.merge(group, saved_remaining, Duration::from_millis(saved_left % 3_600_000), now);
    if let Some(wait) = p.wait(group, now) {
        assert!(wait <= MAX_SERVER_WAIT, "{wait:?}");
    }
    let _ = p.live(now);
});
