//! Change events end to end: the real daemon (`run`) on the sandbox fakes, with the fake
//! Okta's System Log and the fake TELUS WebSocket gateway. Edits on either side land through
//! targeted passes (no directory read), echoes of the daemon's own writes are recognised,
//! and every recovery path (session recovered, recovery failed, restart) loses nothing.
//! Tests assert counts and order, never wall time.

use crate::daemon::Daemon;
use crate::*;

/// Waits (up to 30 s) for `cond`, naming `what` when it never holds.
pub(crate) async fn until(what: &str, d: &Daemon, mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited for {what}; daemon log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // real time: polls a condition (the daemon is another process)
    }
}

/// Passes recorded in the store, by kind.
pub(crate) fn passes_of(dir: &std::path::Path, kind: &str) -> usize {
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
    tokio::time::sleep(Duration::from_secs(3)).await; // real time: two System Log polls go by, so any echo would have been heard

    assert_eq!(extension_listings(&sb), listings, "no TELUS listing read");
    assert_eq!(okta_listings(&sb), okta_lists, "no Okta listing read");
    assert_eq!(
        passes_of(dir.path(), "targeted"),
        2,
        "one targeted pass per edit; echoes read nothing"
    );
    let single = sb
        .telus
        .lock()
        .count("GET", "/restapi/v1.0/account/~/extension/62001");
    assert_eq!(
        single,
        2 + 2,
        "the extension and its numbers, once per targeted pass"
    );
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

/// Okta polled every 2 s, and the scheduled incremental pass kept out of the way (New Year's
/// at 04:00): these tests take a channel down, and a quarter-hour tick falling inside one
/// would carry the change itself (seen once in CI).
const FAST_POLL: &str = "[events]\nokta_poll_seconds = 2\n[schedule]\ncron = \"0 0 4 1 1 *\"\n";

/// The daemon on the seeded fakes with `extra` config, after its first pass and subscription.
async fn started(sb: &Sandbox, extra: &str) -> (tempfile::TempDir, String, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), sb, extra).display().to_string();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;
    until("the WebSocket subscription", &d, || {
        sb.telus.lock().gateway.subscribed() >= 1
    })
    .await;
    (dir, cfg, d)
}

fn whole_passes(dir: &std::path::Path) -> usize {
    passes_of(dir, "full") + passes_of(dir, "incremental")
}

/// The gateway drops the daemon's connection (recovering the session, or not), an admin
/// assigns Ben a number before the daemon is back, and the number reaches Okta. Answers
/// the gateway's (recovered, recovery failed, subscriptions) and the whole passes run
/// during it.
async fn drop_then_number(
    sb: &Sandbox,
    dir: &std::path::Path,
    d: &Daemon,
    recovery_fails: bool,
) -> ((u64, u64, u64), usize) {
    tokio::time::sleep(Duration::from_secs(1)).await; // real time: the daemon settles after its start (catch-up pass, subscription)
    let whole = whole_passes(dir);
    {
        let mut t = sb.telus.lock();
        t.gateway.recovery_fails = recovery_fails;
        t.gateway.drop_connections();
    }
    assign_number(sb, 62002, "+16045550299");
    until("the number in Okta", d, || {
        okta_field(sb, "00u2ben", "primaryPhone").as_deref() == Some("+16045550299#102")
    })
    .await;
    let t = sb.telus.lock();
    let g = &t.gateway;
    (
        (g.recovered, g.recovery_failed, g.subscriptions),
        whole_passes(dir) - whole,
    )
}

/// A dropped connection is recovered with `wsc` within the recovery timeout: the event
/// TELUS sent meanwhile is replayed and lands by a targeted pass, with no pass of the whole
/// directory and no new subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_recovered_and_the_missed_event_replayed() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    let (gateway, whole) = drop_then_number(&sb, dir.path(), &d, false).await;
    assert_eq!(gateway, (1, 0, 1), "recovered; the subscription kept");
    assert_eq!(whole, 0, "no catch-up pass after a recovery");
    assert!(passes_of(dir.path(), "targeted") >= 1);
}

/// A session the gateway cannot recover: the daemon subscribes again and runs an
/// incremental pass, which carries the change whose event was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_recovery_subscribes_again_and_a_pass_carries_the_lost_change() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    let (gateway, whole) = drop_then_number(&sb, dir.path(), &d, true).await;
    assert_eq!(
        gateway,
        (0, 1, 2),
        "refused; subscribed again on the new session"
    );
    assert_eq!(whole, 1, "one incremental catch-up pass");
    assert!(
        d.log().contains("TELUS events may have been missed"),
        "{}",
        d.log()
    );
}

/// A restart loses nothing and replays nothing: the System Log is read on from the stored
/// cursor (the edit made while the daemon was down arrives as an event; the one handled
/// before the stop does not come again), and TELUS's missed events are carried by the
/// catch-up pass that follows the new subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_stored_cursor_and_catches_up_on_telus() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, cfg, d) = started(&sb, FAST_POLL).await;
    okta_department(&sb, "00u1ana", "Finance");
    until("the first department in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    // Stored only once its pass has run: wait for the poll after it.
    until("the cursor stored", &d, || {
        Store::open(&dir.path().join("state.db"))
            .unwrap()
            .okta_cursor()
            .unwrap()
            .is_some_and(|c| c.next.contains("after="))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // real time: a poll after the cursor was stored, before the stop
    crate::daemon::signal(&d.child, "-TERM");
    assert!(d.wait_exit().await.success());
    let status = run_bin(vec!["--config".into(), cfg.clone(), "status".into()]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("down since") && text.contains("the daemon is not running"),
        "{text}"
    );

    // While it is down: an edit on each side.
    okta_department(&sb, "00u3chl", "Legal");
    assign_number(&sb, 62002, "+16045550299");
    let d = Daemon::start(&cfg, dir.path());
    until("the Okta edit in TELUS", &d, || {
        contact_field(&sb, 62003, &["department"]).as_deref() == Some("Legal")
    })
    .await;
    until("the TELUS edit in Okta", &d, || {
        okta_field(&sb, "00u2ben", "primaryPhone").as_deref() == Some("+16045550299#102")
    })
    .await;
    until("the System Log read on", &d, || {
        d.log().contains("System Log events")
    })
    .await;
    let log = d.log();
    assert!(
        log.contains("System Log events events=1 own=0"),
        "only the edit made while down comes from the cursor, not the one before:\n{log}"
    );
    assert!(
        !log.contains("Okta events start from now"),
        "the cursor was resumed:\n{log}"
    );
}

/// A stored cursor Okta refuses (its events are past the log's retention): a full pass reads
/// everything, then polling goes on from now and edits land by targeted passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_past_retention_means_a_full_pass_then_polling_from_now() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, cfg, d) = started(&sb, FAST_POLL).await;
    okta_department(&sb, "00u1ana", "Finance");
    until("the department in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // real time: the echoes of the pass are heard before the stop
    crate::daemon::signal(&d.child, "-TERM");
    assert!(d.wait_exit().await.success());
    // The log keeps a second; the daemon was away longer, and an edit went by meanwhile.
    okta_department(&sb, "00u3chl", "Legal");
    sb.okta.lock().log_retention = Duration::from_millis(1000);
    tokio::time::sleep(Duration::from_millis(1500)).await; // real time: the fake log's retention (1 s) runs out while the daemon is away
    let full = passes_of(dir.path(), "full");
    let d = Daemon::start(&cfg, dir.path());
    until("the lost edit in TELUS", &d, || {
        contact_field(&sb, 62003, &["department"]).as_deref() == Some("Legal")
    })
    .await;
    until("the full pass", &d, || {
        passes_of(dir.path(), "full") == full + 1
    })
    .await;
    assert!(d.log().contains("Okta events were lost"), "{}", d.log());
    sb.okta.lock().log_retention = Duration::from_secs(3600);
    okta_department(&sb, "00u4dav", "Research");
    until("an edit after the loss in TELUS", &d, || {
        contact_field(&sb, 62004, &["department"]).as_deref() == Some("Research")
    })
    .await;
}

/// A burst: 60 users edited in Okta at once is more than a targeted pass takes, so one
/// incremental pass carries it; TELUS's 60 notifications of that pass's own (bulk) write are
/// its echoes, and no extension is read one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_becomes_one_pass_and_its_echoes_are_not_read_again() {
    let (okta, telus, numbers) = many_users(60);
    let sb = Sandbox::start(okta, telus, numbers).await.unwrap();
    let (dir, _cfg, d) = started(
        &sb,
        &format!("{FAST_POLL}[safety]\nmax_changed_percent = 100\n"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // real time: the daemon settles after its start
    let incremental = passes_of(dir.path(), "incremental");
    let ids: Vec<String> = sb.okta.lock().users.iter().map(|u| u.id.clone()).collect();
    for id in &ids {
        okta_department(&sb, id, "Burst");
    }
    until("every department in TELUS", &d, || {
        let t = sb.telus.lock();
        t.extensions
            .iter()
            .all(|e| e.contact.get("department").and_then(Value::as_str) == Some("Burst"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // real time: no further pass follows the burst (a negative, so time must pass)
    assert_eq!(passes_of(dir.path(), "incremental"), incremental + 1);
    assert_eq!(
        passes_of(dir.path(), "targeted"),
        0,
        "no user read one by one"
    );
    let single_reads = sb
        .telus
        .lock()
        .requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/extension/"))
        .count();
    assert_eq!(single_reads, 0);
}

/// Idle, the daemon sends only System Log polls to Okta and nothing to TELUS's REST API,
/// and its heartbeats keep the WebSocket open past the gateway's idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_costs_only_log_polls_and_heartbeats_keep_the_connection() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.telus.lock().gateway.idle_timeout = Duration::from_secs(7);
    let extra = FAST_POLL.replace(
        "okta_poll_seconds = 2\n",
        "okta_poll_seconds = 2\ntelus_heartbeat_seconds = 5\n",
    );
    let (_dir, _cfg, d) = started(&sb, &extra).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // real time: the daemon settles after its start
    let (okta_before, telus_before) = (
        sb.okta.lock().requests.len(),
        sb.telus.lock().requests.len(),
    );
    // Notifications keep arriving for the first 10 s (an Update whose hints name nothing
    // this tool reads): they do not keep the connection open, as the gateway counts only
    // what the client says, so heartbeats must go meanwhile.
    for _ in 0..10 {
        sb.telus.lock().changed(62012, &["Features"]);
        tokio::time::sleep(Duration::from_secs(1)).await; // real time: notifications a second apart, against the idle timeout under test
    }
    tokio::time::sleep(Duration::from_secs(6)).await; // real time: the idle timeout (7 s) with heartbeats every 5 s
    let o = sb.okta.lock();
    let idle: Vec<&str> = o.requests[okta_before..]
        .iter()
        .map(|r| r.path.as_str())
        .collect();
    assert!(idle.iter().all(|p| *p == "/api/v1/logs"), "{idle:?}");
    assert!(
        (6..=9).contains(&idle.len()),
        "one poll every 2 s: {}",
        idle.len()
    );
    drop(o);
    let t = sb.telus.lock();
    assert_eq!(
        t.requests.len(),
        telus_before,
        "no TELUS REST request while idle: {}\n{:?}",
        d.log(),
        t.requests[telus_before..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (t.gateway.connections, t.gateway.idle_closed),
        (1, 0),
        "{}",
        d.log()
    );
    assert!(t.gateway.heartbeats >= 2);
}

/// An app without the `WebSocketsSubscription` permission: TELUS events are off with a line
/// that says why, Okta events still work, and `status` shows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_websocket_permission_telus_events_are_off_with_a_clear_line() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.telus.lock().gateway.permitted = false;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, FAST_POLL)
        .display()
        .to_string();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("TELUS change events are off", 1).await;
    d.wait_for_log("pass complete", 1).await;
    okta_department(&sb, "00u1ana", "Finance");
    until("the department in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    let status = run_bin(vec!["--config".into(), cfg, "status".into()]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("WebSocketsSubscription"), "{text}");
    assert!(
        text.contains("Okta:  System Log polled every 2 s: up since"),
        "{text}"
    );
}

/// The WebSocket token and the session's `wsc` never reach the log, even at TRACE (the
/// WebSocket crates quote the URL that carries them: they are silenced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_websocket_token_reaches_the_log_at_trace() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, FAST_POLL)
        .display()
        .to_string();
    let log = dir.path().join("daemon.log");
    let child = crate::bin()
        .args(["--config", &cfg, "run"])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon { child, log };
    d.wait_for_log("pass complete", 1).await;
    until("the subscription", &d, || {
        sb.telus.lock().gateway.subscribed() == 1
    })
    .await;
    // A reconnection with `wsc` too.
    sb.telus.lock().gateway.drop_connections();
    until("the recovery", &d, || {
        sb.telus.lock().gateway.recovered == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // real time: the TRACE lines of the recovery reach the log
    let text = d.log();
    assert!(text.len() > 10_000, "TRACE output was produced");
    // The fake's tokens look like `wst12x…` and `wsc3x…`.
    for prefix in ["wst", "wsc"] {
        let leaked = text.match_indices(prefix).any(|(i, _)| {
            let rest = &text[i + 3..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            digits > 0 && rest[digits..].starts_with('x')
        });
        assert!(!leaked, "a {prefix} token leaked");
    }
}

fn telus_named(ext: &str) -> okta_telus_sync::pass::Named {
    let mut named = okta_telus_sync::pass::Named::default();
    named
        .telus
        .insert(okta_telus_sync::model::ExtId(ext.into()), "Update".into());
    named
}

async fn targeted(
    config: &okta_telus_sync::config::Config,
    clients: &Clients,
    store: &Store,
    named: &okta_telus_sync::pass::Named,
) -> okta_telus_sync::summary::PassReport {
    use okta_telus_sync::pass::{Ran, Scope, run};
    let scope = Scope::Named(named.clone());
    match run(config, clients, store, &scope, PassOptions::default())
        .await
        .unwrap()
    {
        Ran::Pass(r) => *r,
        other => panic!("expected a targeted pass, got {other:?}"),
    }
}

/// A targeted pass's write whose answer is lost after Okta did the work stays unconfirmed;
/// the next read of that user settles it as landed, and nothing is sent again. Duplicate and
/// late hints for a user already in agreement read it and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_settled_by_the_next_read_and_duplicate_hints_write_nothing() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, config, store, clients) = setup_impatient(&sb);
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assign_number(&sb, 62001, "+16045550299");
    // Okta does the work, then the answer never comes (both attempts).
    sb.okta.inject(
        "POST",
        "/api/v1/users/00u1ana",
        okta_telus_sync::sandbox::faults::FaultKind::DoneThenSilence,
        2,
    );
    let named = telus_named("62001");
    let first = targeted(&config, &clients, &store, &named).await;
    assert_eq!(first.kind.as_str(), "targeted");
    assert_eq!(
        store.unfinished_count().unwrap(),
        1,
        "the write is unconfirmed"
    );
    assert_eq!(
        okta_field(&sb, "00u1ana", "primaryPhone").as_deref(),
        Some("+16045550299#101"),
        "Okta did the work"
    );
    let posts = sb.okta.lock().count("POST", "/api/v1/users/00u1ana");
    let second = targeted(&config, &clients, &store, &named).await;
    assert_eq!(second.settled, (1, 0), "settled as landed by the read");
    assert_eq!(second.plan.change_count(), 0);
    assert_eq!(store.unfinished_count().unwrap(), 0);
    assert_eq!(
        sb.okta.lock().count("POST", "/api/v1/users/00u1ana"),
        posts,
        "not sent again"
    );
    // The same hint again, and a late one for the earlier state: reads, no write.
    let writes = okta_writes(&sb) + telus_writes(&sb);
    for _ in 0..2 {
        let r = targeted(&config, &clients, &store, &named).await;
        assert_eq!(r.plan.change_count(), 0);
    }
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), writes);
    let history = store
        .history(&HistoryFilter::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.attribute == "primaryPhone" && r.okta_id.as_deref() == Some("00u1ana"))
        .collect::<Vec<_>>();
    assert_eq!(history.len(), 1, "one change, journalled once: {history:?}");
    assert_eq!(history[0].outcome, Outcome::Applied);
}

/// Faults on the event channels themselves: System Log polls answered 503 (past every
/// retry) and with a body that is not JSON, and `wstoken` answered 503 while the daemon
/// reconnects (retried: a token is safe to ask for again). Each channel reports itself down, keeps trying, and the edits made
/// meanwhile land; the session is still recovered (the retries stay within its timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_channels_ride_out_server_errors_and_bad_answers() {
    use okta_telus_sync::sandbox::faults::FaultKind;
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, cfg, d) = started(&sb, FAST_POLL).await;
    sb.okta
        .inject("GET", "/api/v1/logs", FaultKind::Unavailable, 4);
    sb.okta
        .inject("GET", "/api/v1/logs", FaultKind::Malformed, 1);
    okta_department(&sb, "00u1ana", "Finance");
    d.wait_for_log("System Log poll failed", 1).await;
    {
        // Two: each reconnection takes a token from the Auth group, five a minute at
        // RingCentral (the fake's budget too), which start-up has already drawn on.
        sb.telus
            .inject("POST", "/restapi/oauth/wstoken", FaultKind::Unavailable, 2);
        sb.telus.lock().gateway.drop_connections();
        assign_number(&sb, 62002, "+16045550299");
    }
    until("the Okta edit in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    until("the TELUS edit in Okta", &d, || {
        okta_field(&sb, "00u2ben", "primaryPhone").as_deref() == Some("+16045550299#102")
    })
    .await;
    until("the session recovered", &d, || {
        sb.telus.lock().gateway.recovered == 1
    })
    .await;
    assert!(d.log().contains("TELUS notifications down"), "{}", d.log());
    let status = run_bin(vec!["--config".into(), cfg, "status".into()]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Okta:  System Log polled every 2 s: up since"),
        "{text}"
    );
    assert!(
        text.contains("TELUS: WebSocket notifications: up since"),
        "{text}"
    );
    drop(dir);
}

/// A System Log that keeps answering 400 costs at most one full pass (the cursor it refused
/// is lost once; the queries from a time that follow lose nothing stored) and its polls back
/// off, instead of a full pass every poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_log_that_keeps_refusing_costs_one_full_pass_and_backs_off() {
    use okta_telus_sync::sandbox::faults::FaultKind;
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    until("a first poll", &d, || {
        sb.okta.lock().count("GET", "/api/v1/logs") >= 1
    })
    .await;
    let fulls_before = passes_of(dir.path(), "full");
    let body = r#"{"errorCode":"E0000001","errorSummary":"Api validation failed: since","errorLink":"E0000001","errorId":"x","errorCauses":[]}"#;
    sb.okta.inject(
        "GET",
        "/api/v1/logs",
        FaultKind::Error {
            status: 400,
            body: body.into(),
        },
        1000,
    );
    tokio::time::sleep(Duration::from_secs(16)).await; // real time: the daemon polls on its own clock
    let refused = crate::statuses(&sb.okta.faults, "GET", "/api/v1/logs")
        .iter()
        .filter(|s| **s == 400)
        .count();
    assert!(refused >= 2, "the fault fired ({refused})");
    // Every 2 s without backoff: 8 in 16 s. With it: 2, 4, 8 s apart.
    assert!(refused <= 5, "polls backed off ({refused} refused)");
    assert!(
        d.log().matches("Okta events were lost").count() <= 1,
        "{}",
        d.log()
    );
    assert!(
        passes_of(dir.path(), "full") <= fulls_before + 1,
        "{}",
        d.log()
    );
    assert!(d.log().contains("nothing stored was lost"), "{}", d.log());
}

/// A stored System Log cursor from another Okta org (okta.url changed) is not polled: one
/// full pass, polling from now on the new org, and its events land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_another_okta_origin_starts_polling_from_now() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, FAST_POLL)
        .display()
        .to_string();
    Store::open(&dir.path().join("state.db"))
        .unwrap()
        .save_okta_cursor("https://old-org.okta.com/api/v1/logs?after=1_2")
        .unwrap();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;
    assert!(
        d.log().contains("came from https://old-org.okta.com"),
        "{}",
        d.log()
    );
    okta_department(&sb, "00u1ana", "Finance");
    until("the Okta edit in TELUS by events", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    assert_eq!(d.log().matches("Okta events were lost").count(), 1);
    assert!(
        !d.log().contains("System Log poll failed"),
        "the old link was never polled: {}",
        d.log()
    );
}

/// A gateway that floods each session with errors and drops it right after subscribing:
/// reconnections back off (the Auth group, 5 a minute and shared with token refreshes, is
/// never exhausted: no 429), one gateway error line per connection, and the new sessions
/// cost at most one more whole pass (event-driven whole passes are spaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_drops_every_session_costs_bounded_tokens_and_passes() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    let whole_before = whole_passes(dir.path());
    let error = r#"[{"type":"Error","messageId":"e","status":400},{"errorCode":"WSG-400","message":"bad"}]"#;
    {
        let mut st = sb.telus.lock();
        st.gateway.recovery_fails = true;
        st.gateway.drop_after_subscribe = true;
        st.gateway.after_subscribe = vec![error.to_string(); 20];
        st.gateway.drop_connections();
    }
    let tokens_before = sb.telus.lock().count("POST", "/restapi/oauth/wstoken");
    tokio::time::sleep(Duration::from_secs(14)).await; // real time: the daemon reconnects on its own clock
    let (tokens, connections) = {
        let st = sb.telus.lock();
        (
            st.count("POST", "/restapi/oauth/wstoken") - tokens_before,
            st.gateway.connections,
        )
    };
    assert!(tokens >= 2, "the drops happened ({tokens} tokens)");
    // Backoff 1, 2, 4, 8 s, and the Auth group's last request kept for refreshes: a few in
    // 14 s (without either: the whole Auth budget within a second, then 429s).
    assert!(tokens <= 6, "reconnections backed off ({tokens} tokens)");
    let refused = crate::statuses(&sb.telus.faults, "POST", "/restapi/oauth/wstoken")
        .into_iter()
        .chain(crate::statuses(
            &sb.telus.faults,
            "POST",
            "/restapi/oauth/token",
        ))
        .filter(|s| *s == 429)
        .count();
    assert_eq!(refused, 0, "no 429 in the Auth group");
    let lines = d
        .log()
        .matches("the notification gateway reported an error")
        .count();
    assert!(
        lines >= 1 && lines as u64 <= connections,
        "one line per connection at most ({lines} lines, {connections} connections)"
    );
    assert!(
        whole_passes(dir.path()) <= whole_before + 1,
        "spaced whole passes: {}",
        d.log()
    );
}

/// A notification message over 1 MiB drops the connection (it is not read into memory):
/// tungstenite's default would take up to 64 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_gateway_message_drops_the_connection() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, _cfg, d) = started(&sb, FAST_POLL).await;
    let huge = format!(
        r#"[{{"type":"ServerNotification","messageId":"m"}},{{"pad":"{}"}}]"#,
        "x".repeat(2 << 20)
    );
    {
        let mut st = sb.telus.lock();
        st.gateway.recovery_fails = true;
        st.gateway.after_subscribe = vec![huge];
        st.gateway.drop_connections();
    }
    d.wait_for_log("message too large", 1).await;
    let st = sb.telus.lock();
    assert!(st.gateway.connections >= 2, "the client reconnected");
}

/// A 403 on the WebSocket token turns the channel off for a while, then it asks again: once
/// the permission is granted, it subscribes without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_websocket_is_asked_again_after_its_backoff() {
    use okta_telus_sync::telus::events::{ListenOptions, Notice, listen};
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.telus.lock().gateway.permitted = false;
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(
        okta_telus_sync::reconcile::policy::Policy::builtin(),
        &dir.path().join("s.db"),
    );
    let client = std::sync::Arc::new(okta_telus_sync::telus::Client::new(
        &config.telus,
        okta_telus_sync::http::HttpSettings::default(),
    ));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let opts = ListenOptions {
        refused_retry: Duration::from_millis(500),
        ..ListenOptions::default()
    };
    let task = tokio::spawn(listen(client, tx, opts));
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap();
    assert!(matches!(first, Some(Notice::Refused { .. })), "{first:?}");
    sb.telus.lock().gateway.permitted = true;
    let next = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap();
    assert!(matches!(next, Some(Notice::Subscribed { .. })), "{next:?}");
    task.abort();
}

/// A change of another user left unconfirmed (its answer lost) does not make a targeted
/// pass read its own users again: Ana is read once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrelated_unconfirmed_change_does_not_make_targeted_passes_read_again() {
    use okta_telus_sync::model::{ExtId, OktaId, System};
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    {
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let pass_id = store.recent_passes(1).unwrap()[0].id;
        let (ben, ext) = (OktaId("00u2ben".into()), ExtId("62002".into()));
        store
            .journal_planned(&[okta_telus_sync::store::JournalEntry {
                pass_id,
                system: System::Telus,
                okta_id: Some(&ben),
                ext_id: Some(&ext),
                user_email: "ben@example.com",
                attribute: "department",
                field: "contact.department",
                old: None,
                new: Some("Lost"),
                rule: okta_telus_sync::reconcile::Rule::Master,
            }])
            .unwrap();
        assert_eq!(store.unfinished_count().unwrap(), 1);
    }
    okta_department(&sb, "00u1ana", "Finance");
    until("the Okta edit in TELUS", &d, || {
        contact_field(&sb, 62001, &["department"]).as_deref() == Some("Finance")
    })
    .await;
    // A re-read would come 5 s after the pass (events::REREAD_AFTER).
    tokio::time::sleep(Duration::from_secs(7)).await; // real time: a negative, so time must pass
    let reads = sb.okta.lock().count("GET", "/api/v1/users/00u1ana");
    assert_eq!(reads, 1, "{}", d.log());
    // The planted change stayed unconfirmed throughout (no whole pass settled it).
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(store.unfinished_count().unwrap(), 1);
}

/// A membership change of a group that is not the configured scope (here the whole org) is
/// read off the System Log with its `UserGroup` target and costs nothing: no targeted pass,
/// no whole pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_event_outside_the_scope_costs_no_pass() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // real time: the start-up catch-up runs
    let (targeted, whole) = (passes_of(dir.path(), "targeted"), whole_passes(dir.path()));
    let polls = d.log().matches("System Log events").count();
    sb.okta.lock().membership_event(
        "group.user_membership.add",
        "00u1ana",
        "UserGroup",
        "00gOther",
    );
    d.wait_for_log("System Log events", polls + 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // real time: a negative, so time must pass
    assert_eq!(passes_of(dir.path(), "targeted"), targeted, "{}", d.log());
    assert_eq!(whole_passes(dir.path()), whole, "{}", d.log());
}

/// A lifecycle event of an Okta user not linked yet is answered by reading that user: a
/// staged one (never created) costs that one read and no pass; an active one asks for the
/// whole pass that creates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlinked_users_event_costs_a_read_and_a_pass_only_when_they_can_be_created() {
    use okta_telus_sync::sandbox::okta::FakeOktaUser;
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, _cfg, d) = started(&sb, FAST_POLL).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // real time: the start-up catch-up runs
    let whole = whole_passes(dir.path());
    let new_user = |id: &str, status: &str, email: &str| FakeOktaUser {
        id: id.into(),
        status: status.into(),
        // A new user's `lastUpdated` is now: the incremental read finds them.
        last_updated: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        provider: "OKTA",
        profile: json!({"login": email, "email": email, "firstName": "New", "lastName": "Hire"})
            .as_object()
            .unwrap()
            .clone(),
    };
    {
        let mut o = sb.okta.lock();
        o.users
            .push(new_user("00u9staged", "STAGED", "staged@example.com"));
        o.log_event("user.lifecycle.create", "00u9staged", None);
    }
    until("the staged user read", &d, || {
        sb.okta.lock().count("GET", "/api/v1/users/00u9staged") >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // real time: a negative, so time must pass
    assert_eq!(whole_passes(dir.path()), whole, "{}", d.log());
    assert_eq!(sb.okta.lock().count("GET", "/api/v1/users/00u9staged"), 1);
    {
        let mut o = sb.okta.lock();
        o.users
            .push(new_user("00u9active", "ACTIVE", "new.hire@example.com"));
        o.log_event("user.lifecycle.activate", "00u9active", None);
    }
    until("the active user created in TELUS", &d, || {
        sb.telus
            .lock()
            .extensions
            .iter()
            .any(|e| e.contact.get("email").and_then(Value::as_str) == Some("new.hire@example.com"))
    })
    .await;
    assert_eq!(whole_passes(dir.path()), whole + 1, "{}", d.log());
}
