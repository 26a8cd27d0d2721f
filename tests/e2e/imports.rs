//! The import queue end to end: TELUS users with no Okta match looked up in the whole org
//! (a read by login and a search), proposed as new, partial or conflict, confirmed through
//! the real binary into STAGED Okta users that are linked and then left alone; a lost create
//! answer, a login held by a deactivated user, `max_imports`, `ignore`, `match = "login"`,
//! and a TELUS Create notification reaching the queue.

use crate::daemon::Daemon;
use crate::events::until;
use crate::*;
use okta_telus_sync::reconcile::import::Outcome;

fn ext(id: i64, number: &str, first: &str, last: &str, email: &str) -> FakeExtension {
    FakeExtension {
        id,
        directory_ref: None,
        extension_number: number.into(),
        status: "Enabled".into(),
        kind: "User".into(),
        contact: json!({
            "firstName": first, "lastName": last, "email": email,
            "businessAddress": {"street": "1055 W Georgia St", "city": "Vancouver",
                "state": "British Columbia", "zip": "V6E 3P3", "country": "Canada"},
            "department": "Front Desk",
        })
        .as_object()
        .unwrap()
        .clone(),
    }
}

fn okta_user(
    id: &str,
    status: &str,
    login: &str,
    email: &str,
    first: &str,
    last: &str,
) -> FakeOktaUser {
    FakeOktaUser {
        id: id.into(),
        status: status.into(),
        last_updated: "2026-11-01T09:00:00.000Z".into(),
        provider: "OKTA",
        profile: json!({"login": login, "email": email, "firstName": first, "lastName": last})
            .as_object()
            .unwrap()
            .clone(),
    }
}

/// The seeded directory plus: a TELUS user whose name matches a STAGED Okta user with
/// another email (partial), and one whose email a DEPROVISIONED Okta user holds as its login
/// (conflict: Okta's listing leaves that user out). The seeded reception desk is new.
fn with_candidates(sb: &Sandbox) {
    let mut o = sb.okta.lock();
    o.users.push(okta_user(
        "00uKkim",
        "STAGED",
        "kim.park@northwind.ca",
        "kim.park@northwind.ca",
        "Kim",
        "Park",
    ));
    o.users.push(okta_user(
        "00uLold",
        "DEPROVISIONED",
        "Old.Hand@northwind.ca",
        "old.hand@northwind.ca",
        "Old",
        "Hand",
    ));
    drop(o);
    let mut t = sb.telus.lock();
    t.extensions
        .push(ext(62030, "130", "Kim", "Park", "kpark@northwind.ca"));
    t.extensions
        .push(ext(62031, "131", "Old", "Hand", "old.hand@northwind.ca"));
}

/// Okta user creates received (`POST /api/v1/users` itself, not the updates under it).
fn okta_creates(sb: &Sandbox) -> usize {
    sb.okta
        .lock()
        .requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/users")
        .count()
}

fn outcome_of<'a>(
    queue: &'a [okta_telus_sync::reconcile::import::Candidate],
    email: &str,
) -> &'a Outcome {
    &queue
        .iter()
        .find(|c| c.email == email)
        .unwrap_or_else(|| panic!("{email} not in {queue:?}"))
        .outcome
}

/// The three outcomes on one directory, each from a lookup that really went to Okta; the
/// deactivated holder is found although the listing leaves it out, and named.
#[tokio::test]
async fn the_queue_proposes_new_partial_and_conflict_from_the_whole_org() {
    let sb = Sandbox::start_seeded().await.unwrap();
    with_candidates(&sb);
    let (_dir, config, store, clients) = setup(&sb);
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    let (queue, at) = store.import_queue().unwrap();
    assert!(at.is_some());
    assert_eq!(queue.len(), 3, "{queue:?}");
    assert_eq!(outcome_of(&queue, "reception@northwind.ca"), &Outcome::New);
    assert!(matches!(outcome_of(&queue, "kpark@northwind.ca"),
        Outcome::Partial { okta_id, .. } if okta_id.0 == "00uKkim"));
    let Outcome::Conflict { okta_id, why } = outcome_of(&queue, "old.hand@northwind.ca") else {
        panic!("{queue:?}")
    };
    assert_eq!(okta_id.0, "00uLold");
    assert!(
        why.contains("DEPROVISIONED") && why.contains("E0000001"),
        "{why}"
    );
    // Each candidate was looked up: one read by login and one search each.
    let (searches, by_login) = {
        let o = sb.okta.lock();
        let searches = o
            .requests
            .iter()
            .filter(|r| r.path == "/api/v1/users" && r.query.contains("search="))
            .count();
        (
            searches,
            o.count("GET", "/api/v1/users/reception@northwind.ca"),
        )
    };
    assert_eq!(searches, 3);
    assert_eq!(by_login, 1);
    // Nothing was created in Okta, and the queue costs no write.
    assert!(
        !sb.okta
            .lock()
            .requests
            .iter()
            .any(|r| r.method == "POST" && r.path == "/api/v1/users")
    );
    assert_eq!(report.plan.count("import"), 0);
    // A second pass within the hour reuses the lookups.
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    let o = sb.okta.lock();
    assert_eq!(
        o.requests
            .iter()
            .filter(|r| r.query.contains("search="))
            .count(),
        3
    );
    drop(o);
    // `import list --json` reads the stored queue with no network call.
    let text = report::imports_json(&queue).to_string();
    assert!(text.contains("\"outcome\":\"partial\""), "{text}");
}

/// `[import] match = "login"`: a TELUS user whose email is an Okta user's login (but not its
/// email) is linked by the pass itself: no import, no TELUS create.
#[tokio::test]
async fn match_on_login_links_with_no_create() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.okta.lock().users.push(okta_user(
        "00uMops",
        "ACTIVE",
        "ops@northwind.ca",
        "operations.lead@northwind.ca",
        "Opal",
        "Stone",
    ));
    sb.telus
        .lock()
        .extensions
        .push(ext(62040, "140", "Opal", "Stone", "ops@northwind.ca"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    config.policy.import.match_on = okta_telus_sync::reconcile::policy::MatchOn::Login;
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let telus_before = sb.telus.lock().extensions.len();
    run_whole(
        &config,
        &clients,
        &store,
        false,
        PassOptions {
            approve: true,
            ..PassOptions::default()
        },
    )
    .await
    .unwrap();
    let links = store.links().unwrap();
    assert!(
        links
            .iter()
            .any(|l| l.okta_id.0 == "00uMops" && l.ext_id.0 == "62040"),
        "{links:?}"
    );
    let (queue, _) = store.import_queue().unwrap();
    assert!(queue.iter().all(|c| c.email != "ops@northwind.ca"));
    // Isabelle (Okta only) is created; nobody for Opal.
    assert_eq!(sb.telus.lock().extensions.len(), telus_before + 1);
    // Okta masters the email: the linked TELUS user now carries Okta's.
    assert_eq!(
        sb.telus
            .lock()
            .extension_by_email("operations.lead@northwind.ca")
            .map(|e| e.id),
        Some(62040)
    );
}

fn import_cli(cfg: &str, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--config".into(), cfg.into(), "import".into()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

/// The README's path through the real binary: `sync`, `import list`, `import confirm
/// EMAIL`: the Okta user is created STAGED (`activate=false`: no email), with the profile
/// in Okta's forms, linked to its TELUS user; `history --json` shows it; the next `sync`
/// writes nothing to either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_confirm_creates_a_staged_linked_user_and_the_next_pass_writes_nothing() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    let first = run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let list = run_bin(import_cli(&cfg, &["list", "--json"])).await;
    let queue: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(queue[0]["email"], "reception@northwind.ca");
    assert_eq!(queue[0]["outcome"], "new");
    let text = run_bin(import_cli(&cfg, &["list"])).await;
    assert!(String::from_utf8_lossy(&text.stdout).contains("1 new"));
    let status = run_bin(vec!["--config".into(), cfg.clone(), "status".into()]).await;
    assert!(String::from_utf8_lossy(&status.stdout).contains("Import queue: 1 TELUS user(s)"));

    let confirm = run_bin(import_cli(&cfg, &["confirm", "Reception@Northwind.ca"])).await;
    let out = String::from_utf8_lossy(&confirm.stdout);
    assert_eq!(
        confirm.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&confirm.stderr)
    );
    let (created, query) = {
        let o = sb.okta.lock();
        let post = o
            .requests
            .iter()
            .find(|r| r.method == "POST" && r.path == "/api/v1/users")
            .expect("a create")
            .clone();
        let u = o
            .users
            .iter()
            .find(|u| {
                u.profile.get("login").and_then(Value::as_str) == Some("reception@northwind.ca")
            })
            .unwrap()
            .clone();
        (u, post.query)
    };
    assert!(query.contains("activate=false"), "{query}");
    assert_eq!(created.status, "STAGED");
    assert!(
        sb.okta.lock().activation_emails.is_empty(),
        "no activation email"
    );
    assert_eq!(created.profile["countryCode"], "CA");
    assert_eq!(created.profile["state"], "BC");
    assert_eq!(created.profile["primaryPhone"], "#120");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert!(
        store
            .links()
            .unwrap()
            .iter()
            .any(|l| l.okta_id.0 == created.id && l.ext_id.0 == "62020")
    );
    assert!(store.import_queue().unwrap().0.is_empty());
    drop(store);

    let hist = run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "history".into(),
        "--json".into(),
        "--user".into(),
        "reception@northwind.ca".into(),
    ])
    .await;
    let rows: Vec<Value> = String::from_utf8_lossy(&hist.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    assert!(rows.iter().all(|r| r["direction"] == "telus->okta"
        && r["outcome"] == "applied"
        && r["rule"] == "import"));
    assert!(rows.iter().all(|r| r["okta_id"] == created.id.as_str()));

    let (ow, tw) = (okta_writes(&sb), telus_writes(&sb));
    let creates = okta_creates(&sb);
    let next = run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    let next_out = String::from_utf8_lossy(&next.stdout);
    assert!(next_out.contains("0 change(s) planned"), "{next_out}");
    assert_eq!(
        (okta_writes(&sb), telus_writes(&sb)),
        (ow, tw),
        "the next pass writes nothing"
    );
    assert_eq!(okta_creates(&sb), creates);
    // STAGED keeps its TELUS user Enabled.
    assert_eq!(sb.telus.lock().extension(62020).unwrap().status, "Enabled");
}

/// A create whose answer is lost (the gateway answers 502 after Okta created the user) is
/// not sent again: the next pass reads the login, finds the user and links it.
#[tokio::test]
async fn a_lost_create_answer_is_settled_by_the_login_without_a_second_create() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, config, store, clients) = setup(&sb);
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    sb.okta
        .inject("POST", "/api/v1/users", FaultKind::DoneThen5xx, 1);
    let confirm = ImportRequest {
        named: vec!["reception@northwind.ca".into()],
        ..ImportRequest::default()
    };
    let ran = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(confirm.clone()),
        PassOptions::default(),
    )
    .await
    .unwrap();
    let Ran::Pass(r) = ran else { panic!("{ran:?}") };
    assert_eq!(r.outcome, PassOutcome::UsersFailed, "{:?}", r.apply);
    let fired = sb
        .okta
        .faults
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|(m, p, s, _)| m == "POST" && p == "/api/v1/users" && *s == 502)
        .count();
    assert_eq!(fired, 1, "the fault fired");
    assert!(
        sb.okta
            .lock()
            .users
            .iter()
            .any(|u| u.profile.get("login").and_then(Value::as_str)
                == Some("reception@northwind.ca")),
        "the work was done"
    );
    assert!(
        store
            .unfinished()
            .unwrap()
            .iter()
            .any(|r| r.rule == okta_telus_sync::reconcile::Rule::Import),
        "left planned"
    );
    // Confirming again now changes nothing (the create is unconfirmed, not proposed).
    let again = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(confirm),
        PassOptions::default(),
    )
    .await
    .unwrap();
    if let Ran::Pass(r) = again {
        assert_eq!(r.plan.count("import"), 0);
    }
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert!(report.settled.0 > 0, "settled as landed");
    assert_eq!(okta_creates(&sb), 1, "one create, never two");
    let created = sb
        .okta
        .lock()
        .users
        .iter()
        .find(|u| u.profile.get("login").and_then(Value::as_str) == Some("reception@northwind.ca"))
        .unwrap()
        .id
        .clone();
    assert!(
        store
            .links()
            .unwrap()
            .iter()
            .any(|l| l.okta_id.0 == created && l.ext_id.0 == "62020")
    );
    assert!(store.unfinished().unwrap().is_empty());
    assert!(store.import_queue().unwrap().0.is_empty());
}

/// A login a deactivated user holds, appearing after the queue was computed: Okta refuses
/// the create with E0000001; it is a conflict naming that user, failed once, and the next
/// pass proposes it as a conflict, never sending the create again.
#[tokio::test]
async fn a_login_held_by_a_deactivated_user_is_a_conflict_not_a_failure_loop() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, config, store, clients) = setup(&sb);
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        outcome_of(&store.import_queue().unwrap().0, "reception@northwind.ca"),
        &Outcome::New
    );
    // Meanwhile someone deactivated an old account with that login (the stored lookup is
    // from before it: the create is refused).
    sb.okta.lock().users.push(okta_user(
        "00uNrec",
        "DEPROVISIONED",
        "reception@northwind.ca",
        "frontdesk.old@northwind.ca",
        "Front",
        "Desk",
    ));
    let confirm = ImportRequest {
        named: vec!["reception@northwind.ca".into()],
        ..ImportRequest::default()
    };
    // The targeted pass looks up afresh: a conflict before any create.
    let Ran::Pass(r) = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(confirm),
        PassOptions::default(),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.plan.count("import"), 0);
    let refused = r
        .plan
        .problems
        .iter()
        .find(|p| p.kind == okta_telus_sync::reconcile::ProblemKind::ImportRefused)
        .expect("refused");
    assert!(
        refused.message.contains("00uNrec") && refused.message.contains("deactivated"),
        "{}",
        refused.message
    );
    assert_eq!(r.outcome, PassOutcome::UsersFailed);
    // With auto-confirm, a stale stored lookup (new) meets Okta's E0000001 once.
    let mut auto = config.clone();
    auto.policy.import.auto_confirm_new = true;
    store
        .put_import_lookups(&[(
            okta_telus_sync::model::ExtId("62020".into()),
            "reception@northwind.ca".into(),
            vec![],
        )])
        .unwrap();
    let first = run_whole(&auto, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(first.plan.count("import"), 1);
    let (code, why) = first
        .apply
        .failed_users
        .values()
        .find(|(c, _)| c.as_deref() == Some("E0000001"))
        .expect("E0000001")
        .clone();
    assert_eq!(code.as_deref(), Some("E0000001"));
    assert!(why.contains("00uNrec"), "{why}");
    // The next passes propose a conflict (the failed create dropped the stale lookup) and
    // send nothing.
    for _ in 0..2 {
        let later = run_whole(&auto, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(later.plan.count("import"), 0);
    }
    assert_eq!(okta_creates(&sb), 1, "one refused create, no loop");
    assert!(matches!(
        outcome_of(&store.import_queue().unwrap().0, "reception@northwind.ca"),
        Outcome::Conflict { .. }
    ));
}

/// `safety.max_imports` holds auto-confirmed imports over it, and `--all-new`; `--approve`
/// lifts it once; users named one by one are not held.
#[tokio::test]
async fn max_imports_holds_bulk_imports_until_approved() {
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut t = sb.telus.lock();
        for i in 0..3 {
            t.extensions.push(ext(
                62050 + i,
                &format!("15{i}"),
                "Temp",
                &format!("Worker{i}"),
                &format!("temp{i}@northwind.ca"),
            ));
        }
    }
    let (_dir, mut config, store, clients) = setup(&sb);
    config.safety.max_imports = 2;
    config.policy.import.auto_confirm_new = true;
    let held = run_whole(
        &config,
        &clients,
        &store,
        false,
        PassOptions {
            approve: false,
            ..PassOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(held.outcome, PassOutcome::Held);
    assert!(
        held.plan
            .held_reasons()
            .iter()
            .any(|h| h.contains("4 Okta users to import exceed safety.max_imports = 2")),
        "{:?}",
        held.plan.held_reasons()
    );
    assert_eq!(okta_creates(&sb), 0);
    assert_eq!(
        store.import_queue().unwrap().0.len(),
        4,
        "the queue is kept for review"
    );
    // One named by hand is the admin's decision: not held.
    config.policy.import.auto_confirm_new = false;
    let named = ImportRequest {
        named: vec!["temp0@northwind.ca".into()],
        ..ImportRequest::default()
    };
    let Ran::Pass(r) = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(named),
        PassOptions::default(),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.outcome, PassOutcome::Clean, "{:?}", r.plan.held_reasons());
    assert_eq!(okta_creates(&sb), 1);
    // `--all-new` over the limit holds; approved, it goes.
    config.safety.max_imports = 1;
    let all = ImportRequest {
        all_new: true,
        ..ImportRequest::default()
    };
    let Ran::Pass(r) = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(all.clone()),
        PassOptions::default(),
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.outcome, PassOutcome::Held);
    assert_eq!(okta_creates(&sb), 1);
    let Ran::Pass(r) = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &Scope::Imports(all),
        PassOptions {
            approve: true,
            ..PassOptions::default()
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.outcome, PassOutcome::Clean);
    assert_eq!(okta_creates(&sb), 4);
}

/// `import ignore` is remembered in the store: the user is not proposed again, by any pass,
/// until `import unignore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_ignore_is_remembered_until_unignored() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    let ignore = run_bin(import_cli(&cfg, &["ignore", "reception@northwind.ca"])).await;
    assert_eq!(ignore.status.code(), Some(0));
    for _ in 0..2 {
        run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
        let list = run_bin(import_cli(&cfg, &["list", "--json"])).await;
        let queue: Value = serde_json::from_slice(&list.stdout).unwrap();
        assert_eq!(queue.as_array().unwrap().len(), 0, "{queue}");
    }
    let confirm = run_bin(import_cli(&cfg, &["confirm", "reception@northwind.ca"])).await;
    assert_eq!(
        confirm.status.code(),
        Some(2),
        "an ignored user is not in the queue"
    );
    assert!(String::from_utf8_lossy(&confirm.stderr).contains("not in the import queue"));
    run_bin(import_cli(&cfg, &["unignore", "reception@northwind.ca"])).await;
    run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    let list = run_bin(import_cli(&cfg, &["list", "--json"])).await;
    let queue: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(queue[0]["email"], "reception@northwind.ca");
}

/// The daemon with the shipped `[events]` defaults: a TELUS user created in the portal (a
/// `Create` notification for an extension nobody links) is in the import queue within a
/// minute, without waiting for a scheduled pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telus_create_notification_puts_the_new_user_in_the_queue() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;
    until("the WebSocket subscription", &d, || {
        sb.telus.lock().gateway.subscribed() == 1
    })
    .await;
    {
        let mut t = sb.telus.lock();
        t.extensions
            .push(ext(62060, "160", "New", "Hire", "new.hire@northwind.ca"));
        t.gateway.notify(62060, "Create", &[]);
    }
    until("the new hire in the import queue", &d, || {
        Store::open(&dir.path().join("state.db"))
            .ok()
            .and_then(|s| s.import_queue().ok())
            .is_some_and(|(q, _)| {
                q.iter()
                    .any(|c| c.email == "new.hire@northwind.ca" && c.outcome == Outcome::New)
            })
    })
    .await;
    assert!(
        d.log().contains("TELUS extension 62060 was created"),
        "{}",
        d.log()
    );
}

/// With `[import] auto_confirm_new`, the daemon imports a TELUS hire announced by a Create
/// notification, and the System Log events of its own create are echoes: no pass reads the
/// new user again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_confirmed_import_by_the_daemon_is_its_own_echo() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = "[import]\nauto_confirm_new = true\n\n[events]\nokta_poll_seconds = 2\n";
    let cfg = write_config(dir.path(), &sb, extra).display().to_string();
    let d = Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;
    until("the WebSocket subscription", &d, || {
        sb.telus.lock().gateway.subscribed() == 1
    })
    .await;
    // The start-up pass imported the seeded reception desk (auto-confirmed).
    until("the reception desk in Okta", &d, || okta_creates(&sb) == 1).await;
    {
        let mut t = sb.telus.lock();
        t.extensions
            .push(ext(62061, "161", "Auto", "Hire", "auto.hire@northwind.ca"));
        t.gateway.notify(62061, "Create", &[]);
    }
    until("the new hire created in Okta", &d, || {
        okta_creates(&sb) == 2
    })
    .await;
    let created = sb
        .okta
        .lock()
        .users
        .iter()
        .find(|u| u.profile.get("login").and_then(Value::as_str) == Some("auto.hire@northwind.ca"))
        .map(|u| (u.id.clone(), u.status.clone()))
        .unwrap();
    assert_eq!(created.1, "STAGED");
    // Several System Log polls go by: the create's `user.lifecycle.create` is heard.
    let polls = sb.okta.lock().count("GET", "/api/v1/logs");
    until("three more System Log polls", &d, || {
        sb.okta.lock().count("GET", "/api/v1/logs") >= polls + 3
    })
    .await;
    let logged = sb
        .okta
        .lock()
        .log
        .iter()
        .any(|e| e.event_type == "user.lifecycle.create" && e.user_id == created.0);
    assert!(logged, "the fake logged the create");
    assert_eq!(
        crate::events::passes_of(dir.path(), "targeted"),
        0,
        "the create's own events start no pass; log:\n{}",
        d.log()
    );
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert!(
        store
            .links()
            .unwrap()
            .iter()
            .any(|l| l.okta_id.0 == created.0 && l.ext_id.0 == "62061")
    );
}

/// Under a group or app scope, an import must land inside the scope, or the next pass would
/// find a linked user outside it and disable its TELUS user: created into the group
/// (`groupIds`), or assigned to the app (with `import.assign_to_app`). The next pass keeps
/// the TELUS user Enabled and writes nothing.
#[tokio::test]
async fn an_import_under_a_group_or_app_scope_stays_in_the_scope() {
    use okta_telus_sync::config::OktaScope;
    for scope in ["group", "app"] {
        let sb = Sandbox::start_seeded().await.unwrap();
        let ids: Vec<String> = sb.okta.lock().users.iter().map(|u| u.id.clone()).collect();
        let (_dir, mut config, store, _) = setup(&sb);
        if scope == "group" {
            sb.okta.lock().groups.insert("00gTelus".into(), ids);
            config.okta.scope = OktaScope::Group("00gTelus".into());
        } else {
            let assigned = ids
                .into_iter()
                .map(|i| (i, serde_json::Map::new()))
                .collect();
            sb.okta.lock().apps.insert("0oaTelus".into(), assigned);
            config.okta.scope = OktaScope::App("0oaTelus".into());
            config.policy.import.assign_to_app = true;
        }
        let clients = Clients::new(&config, settings());
        run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        let confirm = ImportRequest {
            named: vec!["reception@northwind.ca".into()],
            ..ImportRequest::default()
        };
        let Ran::Pass(r) = okta_telus_sync::pass::run(
            &config,
            &clients,
            &store,
            &Scope::Imports(confirm),
            PassOptions::default(),
        )
        .await
        .unwrap() else {
            panic!("{scope}")
        };
        assert_eq!(r.outcome, PassOutcome::Clean, "{scope}: {:?}", r.apply);
        let created = sb
            .okta
            .lock()
            .users
            .iter()
            .find(|u| {
                u.profile.get("login").and_then(Value::as_str) == Some("reception@northwind.ca")
            })
            .unwrap()
            .id
            .clone();
        {
            let o = sb.okta.lock();
            let inside = match scope {
                "group" => o.groups["00gTelus"].contains(&created),
                _ => o.apps["0oaTelus"].iter().any(|(u, _)| *u == created),
            };
            assert!(inside, "{scope}: the new user is in the scope");
            let post = o
                .requests
                .iter()
                .find(|r| r.method == "POST" && r.path == "/api/v1/users")
                .unwrap();
            assert_eq!(
                post.body.contains("\"groupIds\":[\"00gTelus\"]"),
                scope == "group",
                "{}",
                post.body
            );
        }
        let next = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(next.plan.count("deactivate"), 0, "{scope}");
        assert_eq!(
            next.plan.change_count(),
            0,
            "{scope}: {}",
            report::plan_text(&next.plan)
        );
        assert_eq!(sb.telus.lock().extension(62020).unwrap().status, "Enabled");
    }
}

/// `import link`: a partial match the admin knows is the same person is linked with no
/// create, and the next pass syncs the Okta-mastered rows onto the TELUS user. Under an app
/// scope without `import.assign_to_app`, `import confirm` refuses, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_link_links_a_partial_match_and_an_app_scope_needs_assign_to_app() {
    let sb = Sandbox::start_seeded().await.unwrap();
    with_candidates(&sb);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    let link = run_bin(import_cli(
        &cfg,
        &["link", "kpark@northwind.ca", "kim.park@northwind.ca"],
    ))
    .await;
    let out = String::from_utf8_lossy(&link.stdout);
    assert_eq!(
        link.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&link.stderr)
    );
    assert!(out.contains("linked to its partial match"), "{out}");
    run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    assert_eq!(
        contact_field(&sb, 62030, &["email"]).as_deref(),
        Some("kim.park@northwind.ca")
    );
    assert_eq!(okta_creates(&sb), 0, "no user created");
    // Linking a deactivated Okta user is refused: a pass would disable the TELUS user.
    let refused = run_bin(import_cli(
        &cfg,
        &["link", "old.hand@northwind.ca", "Old.Hand@northwind.ca"],
    ))
    .await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DEPROVISIONED"));

    // The same org scoped to an app, without assign_to_app.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let app = text.replacen("[telus]", "scope = \"app:0oaTelus\"\n\n[telus]", 1);
    std::fs::write(&cfg, app).unwrap();
    let confirm = run_bin(import_cli(&cfg, &["confirm", "reception@northwind.ca"])).await;
    assert_eq!(confirm.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&confirm.stderr).contains("import.assign_to_app = true"));
    assert_eq!(okta_creates(&sb), 0);
}

/// An auto-confirmed import Okta refuses is failed once, then backs off like any failed
/// user's changes: the next pass does not send it again.
#[tokio::test]
async fn a_refused_auto_import_backs_off_instead_of_being_sent_every_pass() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, mut config, store, clients) = setup(&sb);
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    config.policy.import.auto_confirm_new = true;
    config.retry.backoff = Duration::from_secs(300);
    let refusal = json!({"errorCode": "E0000001", "errorSummary": "Api validation failed: department",
        "errorLink": "E0000001", "errorId": "oae1", "errorCauses": [{"errorSummary": "department: Invalid value"}]});
    sb.okta.inject(
        "POST",
        "/api/v1/users",
        FaultKind::Error {
            status: 400,
            body: refusal.to_string(),
        },
        10,
    );
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(first.outcome, PassOutcome::UsersFailed);
    let attempts = |sb: &Sandbox| {
        sb.okta
            .faults
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(m, p, _, _)| m == "POST" && p == "/api/v1/users")
            .count()
    };
    assert_eq!(attempts(&sb), 1, "sent once and refused");
    let refused = sb
        .okta
        .faults
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|(m, p, s, _)| m == "POST" && p == "/api/v1/users" && *s == 400)
        .count();
    assert_eq!(refused, 1, "the refusal fired");
    let failures = store.failures().unwrap();
    let second = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        attempts(&sb),
        1,
        "not sent again while backing off: {failures:?} {:?} {:?}",
        first.apply.failed_users,
        second.plan.deferred
    );
    assert!(second.plan.deferred.iter().any(|(u, why)| u.email == "reception@northwind.ca" && why.contains("next retry after")), "{:?}", second.plan.deferred);
}
