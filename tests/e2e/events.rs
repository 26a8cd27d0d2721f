//! Change events end to end: the real daemon (`run`) on the sandbox fakes, with the fake
//! Okta's System Log and the fake TELUS WebSocket gateway. Edits on either side land through
//! targeted passes (no directory read), echoes of the daemon's own writes are recognised,
//! and every recovery path (session recovered, recovery failed, restart) loses nothing.
//! Tests assert counts and order, never wall time.

use crate::daemon::Daemon;
use crate::*;

/// Waits (up to 30 s) for `cond`, naming `what` when it never holds.
async fn until(what: &str, d: &Daemon, mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited for {what}; daemon log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Passes recorded in the store, by kind.
fn passes_of(dir: &std::path::Path, kind: &str) -> usize {
    let store = Store::open(&dir.join("state.db")).unwrap();
    store
        .recent_passes(1000)
        .unwrap()
        .iter()
        .filter(|p| p.kind.as_str() == kind)
        .count()
}

fn extension_listings(sb: &Sandbox) -> usize {
    let t = sb.telus.lock();
    t.requests
        .iter()
        .filter(|r| {
            r.method == "GET"
                && (r.path.ends_with("/extension") || r.path.ends_with("/directory/entries"))
        })
        .count()
}

fn okta_listings(sb: &Sandbox) -> usize {
    let all = sb.okta.lock().count("GET", "/api/v1/users");
    all - okta_single_reads(sb)
}

fn okta_single_reads(sb: &Sandbox) -> usize {
    sb.okta
        .lock()
        .requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/api/v1/users/"))
        .count()
}

/// Gives extension `ext` the company number `number` as its primary direct number, as an
/// admin does in the TELUS portal (the gateway sends the extension-list event).
fn assign_number(sb: &Sandbox, ext: i64, number: &str) {
    let mut t = sb.telus.lock();
    for n in t.numbers.iter_mut().filter(|n| n.extension_id == Some(ext)) {
        n.extension_id = None;
    }
    let n = t
        .numbers
        .iter_mut()
        .find(|n| n.phone_number == number)
        .unwrap();
    n.extension_id = Some(ext);
    n.primary = true;
    t.changed(ext, &["CompanyNumbers"]);
}

/// Sets an Okta user's department as an admin does (Okta logs the change).
fn okta_department(sb: &Sandbox, id: &str, dept: &str) {
    let mut o = sb.okta.lock();
    let u = o.users.iter_mut().find(|u| u.id == id).unwrap();
    u.profile.insert("department".into(), json!(dept));
    o.touch(id);
}

/// The README's path: `run` with the shipped defaults for `[events]` (Okta polled every
/// 10 s, TELUS over WebSocket), scheduled passes far away. A number assigned in TELUS reaches
/// Okta and a department changed in Okta reaches TELUS, each by a targeted pass that reads
/// the one user (no listing of either directory), and the daemon's own writes, which raise
/// events too, are not read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_on_either_side_land_by_targeted_passes_without_a_directory_read() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    let d = Daemon::start(&cfg, dir.path());
    // At start, events before now are unknown: a pass reads everything once.
    d.wait_for_log("pass complete", 1).await;
    until("the WebSocket subscription", &d, || {
        sb.telus.lock().gateway.subscribed() == 1
    })
    .await;
    let (listings, okta_lists) = (extension_listings(&sb), okta_listings(&sb));

    assign_number(&sb, 62001, "+16045550299");
    until("the new number in Okta", &d, || {
        okta_field(&sb, "00u1ana", "primaryPhone").as_deref() == Some("+16045550299#101")
    })
    .await;

    okta_department(&sb, "00u1ana", "Finance");
    until("the new department in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    // Two more polls: the echoes of both writes have been heard by now.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(extension_listings(&sb), listings, "no TELUS listing read");
    assert_eq!(okta_listings(&sb), okta_lists, "no Okta listing read");
    assert_eq!(
        passes_of(dir.path(), "targeted"),
        2,
        "one targeted pass per edit; echoes read nothing"
    );
    let t = sb.telus.lock();
    assert_eq!(
        t.count("GET", "/restapi/v1.0/account/~/extension/62001"),
        2 + 2
    );
    drop(t);
    let status = run_bin(vec!["--config".into(), cfg.clone(), "status".into()]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Okta:  System Log polled every 10 s: up since"),
        "{text}"
    );
    assert!(
        text.contains("TELUS: WebSocket notifications: up since"),
        "{text}"
    );
    assert!(text.contains("last event"), "{text}");
}
