//! `backup` beside a pass that writes: the copy is 0600, opens, passes an integrity check,
//! and a daemon started on it (restored as the README says) syncs with no duplicate create.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_pass_writes_restores_with_no_duplicate_create() {
    let (mut okta, exts, nums) = many_users(20);
    for u in okta.iter_mut() {
        u.profile.insert("department".into(), json!("Sales"));
    }
    for i in 0..6 {
        let email = format!("new{i}@northwind.ca");
        okta.push(FakeOktaUser {
            id: format!("00uNEW{i}"),
            status: "ACTIVE".into(),
            last_updated: "2026-11-01T09:00:00.000Z".into(),
            provider: "OKTA",
            profile: json!({"login": email, "email": email, "firstName": "New", "lastName": format!("Hire{i}")})
                .as_object().unwrap().clone(),
        });
    }
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    without_bulk(&sb);
    sb.telus.lock().write_delay = Duration::from_millis(80);
    sb.telus.lock().limits.insert("Medium", 1000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "[safety]\nmax_changed_percent = 100\n")
        .display()
        .to_string();

    let args = vec!["--config".to_string(), cfg.clone(), "sync".to_string()];
    let sync = tokio::task::spawn_blocking(move || bin().args(args).output().unwrap());
    let started = std::time::Instant::now();
    while telus_creates(&sb) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no create began"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // real time: polls another process's progress
    }
    let copy = dir.path().join("copy.db");
    let out = run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "backup".into(),
        copy.display().to_string(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The fault this test is about: the pass was still writing when the copy was taken.
    assert!(!sync.is_finished(), "the pass ended before the backup");
    assert!(telus_creates(&sb) < 6 || telus_writes(&sb) < 26);
    let synced = sync.await.unwrap();
    assert!(matches!(synced.status.code(), Some(0 | 1)));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Restored: the copy becomes the store of a daemon (a new directory, as the service
    // user: this user).
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("state.db")).unwrap();
    let store = Store::open(&restored.path().join("state.db")).unwrap();
    assert!(store.integrity_ok().unwrap());
    drop(store);
    sb.telus.lock().write_delay = Duration::ZERO;
    let extra = "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[safety]\nmax_changed_percent = 100\n";
    let cfg2 = write_config(restored.path(), &sb, extra)
        .display()
        .to_string();
    let d = crate::daemon::Daemon::start(&cfg2, restored.path());
    d.wait_for_log("pass complete", 2).await;
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    let st = sb.telus.lock();
    for i in 0..6 {
        let n = st
            .extensions
            .iter()
            .filter(|e| e.contact["email"] == json!(format!("new{i}@northwind.ca")))
            .count();
        assert_eq!(n, 1, "new{i} created {n} times");
    }
    assert_eq!(st.count("POST", "/restapi/v1.0/account/~/extension"), 6);
}
