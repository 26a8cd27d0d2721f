//! The real binary's `run` against the sandbox fakes: scheduled passes, SIGHUP reloads (good
//! and broken), SIGUSR1, SIGTERM during a slow apply, and the metrics listener.

use crate::*;
use std::process::{Child, Stdio};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) log: std::path::PathBuf,
}

impl Daemon {
    pub(crate) fn start(cfg: &str, dir: &std::path::Path) -> Daemon {
        let log = dir.join("daemon.log");
        let child = crate::bin()
            .args(["--config", cfg, "run"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn wait_for_log(&self, needle: &str, count: usize) {
        let started = std::time::Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "waited for {count}× {needle:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // real time: polls a condition (the daemon is another process)
        }
    }

    pub(crate) async fn wait_exit(mut self) -> std::process::ExitStatus {
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            loop {
                if let Some(s) = self.child.try_wait().unwrap() {
                    return s;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = self.child.kill();
                    panic!("daemon did not stop");
                }
                std::thread::sleep(Duration::from_millis(20)); // real time: polls the child's exit
            }
        })
        .await
        .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

const EVERY_SECOND: &str = "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n";

/// The daemon passing every second on fakes where most users change (the share hold off).
fn daemon_for_many_changes(sb: &Sandbox) -> (tempfile::TempDir, String, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{EVERY_SECOND}[safety]\nmax_changed_percent = 100\n");
    let cfg = crate::write_config(dir.path(), sb, &extra)
        .display()
        .to_string();
    let d = Daemon::start(&cfg, dir.path());
    (dir, cfg, d)
}

/// The daemon on the seeded fakes, passing every second, with `/metrics` on a free port.
async fn seeded_daemon_with_metrics() -> (Sandbox, tempfile::TempDir, u16, Daemon) {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!("{EVERY_SECOND}[http]\nlisten = \"127.0.0.1:{port}\"\n");
    let cfg = crate::write_config(dir.path(), &sb, &extra)
        .display()
        .to_string();
    let d = Daemon::start(&cfg, dir.path());
    (sb, dir, port, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_passes_on_schedule_serves_metrics_and_stops_on_sigterm() {
    let (sb, _dir, port, d) = seeded_daemon_with_metrics().await;
    d.wait_for_log("pass complete", 2).await;
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Marketing")
    );

    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("okta_telus_sync_passes_total{kind=\"full\",outcome=\"users-failed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "okta_telus_sync_changes_total{direction=\"okta->telus\",outcome=\"applied\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("okta_telus_sync_api_rate_limited_total{system=\"telus\"} 0"),
        "{metrics}"
    );
    // The README's table names these: they are rendered.
    for name in [
        "okta_telus_sync_rate_limit_waits_total{system=\"telus\"}",
        "okta_telus_sync_rate_limit_wait_seconds_total{system=\"okta\"}",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    let health = http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    signal(&d.child, "-TERM");
    let status = d.wait_exit().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_changed_master_and_rejects_a_broken_file() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = crate::write_config(dir.path(), &sb, EVERY_SECOND);
    let cfg = cfg_path.display().to_string();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;

    // TELUS now masters the department: Liam's TELUS value must reach Okta. The edit in
    // TELUS comes after the reload: a pass before it (one a second) would rightly put
    // Okta's value back while Okta was still the master.
    let good = std::fs::read_to_string(&cfg_path).unwrap()
        + "\n[attributes.department]\nmaster = \"telus\"\n";
    std::fs::write(&cfg_path, &good).unwrap();
    signal(&d.child, "-HUP");
    d.wait_for_log("config reloaded", 1).await;
    {
        let mut st = sb.telus.lock();
        let liam = st.extensions.iter_mut().find(|e| e.id == 62012).unwrap();
        liam.contact
            .insert("department".into(), json!("Facilities"));
    }
    let started = std::time::Instant::now();
    while okta_field(&sb, "00uCliam", "department").as_deref() != Some("Facilities") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new master never took effect:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // real time: polls a condition
    }
    assert!(
        d.log().contains("changed=\"attributes\"") || d.log().contains("changed=attributes"),
        "{}",
        d.log()
    );

    // A broken file is rejected with its key named; passes go on under the old config.
    std::fs::write(
        &cfg_path,
        good.replace("master = \"telus\"", "master = \"nobody\""),
    )
    .unwrap();
    signal(&d.child, "-HUP");
    d.wait_for_log("config reload rejected", 1).await;
    assert!(
        d.log().contains("attributes.department.master"),
        "{}",
        d.log()
    );
    let passes = d.log().matches("pass complete").count();
    d.wait_for_log("pass complete", passes + 2).await;

    // SIGUSR1 asks for a pass now (the schedule would too; it must not break anything).
    signal(&d.child, "-USR1");
    signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_apply_finishes_the_change_in_flight_and_exits_0() {
    let (mut okta, exts, nums) = many_users(40);
    for u in okta.iter_mut() {
        u.profile.insert("department".into(), json!("Sales"));
    }
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    without_bulk(&sb);
    sb.telus.lock().write_delay = Duration::from_millis(250);
    let (dir, _cfg, d) = daemon_for_many_changes(&sb);
    let started = std::time::Instant::now();
    while telus_writes(&sb) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "apply never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // real time: polls a condition
    }
    signal(&d.child, "-TERM");
    let stopped_at = std::time::Instant::now();
    let status = d.wait_exit().await;
    assert_eq!(status.code(), Some(0));
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    // The refused bulk request changed nothing: the writes are the PUTs.
    let writes = sb
        .telus
        .lock()
        .count("PUT", "/restapi/v1.0/account/~/extension/");
    assert!(writes < 40, "stopped early ({writes} of 40 written)");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(
        store.unfinished_count().unwrap(),
        0,
        "the journal is consistent"
    );
    let applied = store
        .history(&HistoryFilter::default())
        .unwrap()
        .iter()
        .filter(|h| h.direction == "okta->telus" && h.outcome == Outcome::Applied)
        .count();
    assert_eq!(
        applied, writes,
        "every write that was sent is journalled as applied"
    );
}

/// The admin beside the daemon: while it runs passes every second, two `sync`s and two
/// `plan`s start during its passes. No write is sent twice, nothing is sent during a
/// rate-limit penalty, at most one 429 is drawn, every command completes or refuses with
/// exit 5, and the daemon still syncs a change made afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_plan_beside_the_daemon_never_double_a_write() {
    let (okta, exts, nums) = crate::many_users(300);
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    {
        let mut t = sb.telus.lock();
        t.window = Duration::from_secs(2);
        t.limits.insert("Medium", 20);
        t.write_delay = Duration::from_millis(20);
        sb.okta.lock().write_delay = Duration::from_millis(20);
    }
    let (_dir, cfg, d) = daemon_for_many_changes(&sb);
    // The daemon's first pass is under way: it has started writing.
    let started = std::time::Instant::now();
    while crate::okta_writes(&sb) + crate::telus_writes(&sb) == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", d.log());
        tokio::time::sleep(Duration::from_millis(20)).await; // real time: polls a condition
    }
    let run = |args: &[&str]| {
        let mut v = vec!["--config".to_string(), cfg.clone()];
        v.extend(args.iter().map(|s| s.to_string()));
        tokio::spawn(crate::run_bin(v))
    };
    let commands = [
        ("sync", run(&["sync", "--wait", "30"])),
        ("plan", run(&["plan"])),
        ("sync", run(&["sync", "--wait", "0"])),
        ("plan", run(&["plan", "--json"])),
    ];
    for (name, handle) in commands {
        let out = handle.await.unwrap();
        let code = out.status.code();
        let err = String::from_utf8_lossy(&out.stderr);
        match name {
            "sync" => assert!(matches!(code, Some(0 | 5)), "sync: {code:?}\n{err}"),
            _ => assert_eq!(code, Some(0), "plan: {err}"),
        }
        if code == Some(5) {
            assert!(err.contains("another pass holds the store"), "{err}");
        }
    }
    // A change made afterwards still reaches TELUS through the daemon.
    {
        let mut okta = sb.okta.lock();
        let id = "00u0000001";
        okta.users
            .iter_mut()
            .find(|u| u.id == id)
            .unwrap()
            .profile
            .insert("department".into(), json!("Legal"));
        okta.touch(id);
    }
    let started = std::time::Instant::now();
    while contact_field(&sb, 100_001, &["department"]).as_deref() != Some("Legal") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon stopped syncing; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // real time: polls a condition
    }
    signal(&d.child, "-TERM");
    d.wait_exit().await;

    let telus = sb.telus.lock();
    let okta = sb.okta.lock();
    let mut seen = std::collections::HashSet::new();
    for r in telus.requests.iter().filter(|r| r.method != "GET") {
        if r.path.contains("oauth") {
            continue;
        }
        assert!(
            seen.insert((r.method.clone(), r.path.clone(), r.body.clone())),
            "TELUS write sent twice: {} {} {}",
            r.method,
            r.path,
            r.body
        );
    }
    for r in okta.requests.iter().filter(|r| r.method == "POST") {
        assert!(
            seen.insert((r.method.clone(), r.path.clone(), r.body.clone())),
            "Okta write sent twice: {} {}",
            r.path,
            r.body
        );
    }
    assert_eq!(telus.sent_during_penalty, 0, "requests during a penalty");
    assert!(
        telus.rate_limited + okta.rate_limited <= 1,
        "429s: TELUS {}, Okta {}",
        telus.rate_limited,
        okta.rate_limited
    );
    assert_eq!(telus.reused_refresh_tokens, 0);
}

/// While an admin's pass holds the store, the daemon's pass waits for it (said once at
/// INFO): not a failure, no backoff, no tick dropped, `/healthz` stays green; once the lock
/// is free the waiting pass runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_waits_while_another_pass_holds_the_store() {
    use okta_telus_sync::store::lock::PassLock;
    let (_sb, dir, port, d) = seeded_daemon_with_metrics().await;
    d.wait_for_log("pass complete", 1).await;
    let held = loop {
        // Between two of the daemon's passes.
        if let Ok(lock) = PassLock::try_acquire(&dir.path().join("state.db")).unwrap() {
            break lock;
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // real time: polls a condition
    };
    d.wait_for_log("the pass waits: another pass holds the store", 1)
        .await;
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "{}", d.log());
    assert!(!d.log().contains("backing off"), "{}", d.log());
    let passes = d.log().matches("pass complete").count();
    drop(held);
    d.wait_for_log("pass complete", passes + 1).await;
    signal(&d.child, "-TERM");
    d.wait_exit().await;
}

/// A reload that moves `http.listen` to a port already taken keeps the old listener: the
/// daemon neither dies nor loses `/healthz`, and goes on passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_a_busy_metrics_port_keeps_the_old_listener() {
    let (_sb, dir, port, d) = seeded_daemon_with_metrics().await;
    d.wait_for_log("pass complete", 1).await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let cfg_path = dir.path().join("sync.toml");
    let text = std::fs::read_to_string(&cfg_path).unwrap().replace(
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{busy_port}"),
    );
    std::fs::write(&cfg_path, text).unwrap();
    signal(&d.child, "-HUP");
    d.wait_for_log("cannot listen on the new http.listen", 1)
        .await;
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "{}", d.log());
    let passes = d.log().matches("pass complete").count();
    d.wait_for_log("pass complete", passes + 1).await;
    signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    drop(busy);
}
