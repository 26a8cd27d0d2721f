//! TELUS bulk updates against the fake's `extension-bulk-update`: tasks applied when they
//! run, per-record results, an account that refuses bulk, a 400 naming one record, a crash
//! between a task's acceptance and its results, and an answer lost after acceptance.

use crate::*;
use okta_telus_sync::sandbox::faults::FaultKind;
use okta_telus_sync::sandbox::telus::BulkAvailability;

const BULK: &str = "/restapi/v1.0/account/~/extension-bulk-update";

/// A department the fake account refuses.
const REFUSED: &str = "Refused-Dept";

/// `n` linked-by-email users, each needing one TELUS department update (Okta says Sales),
/// and nothing else; user 7's department is one this account refuses (`CMN-101`: the fake's
/// `refused_values`, since values over the spec's bounds never leave the client).
async fn sandbox_with_updates(n: usize) -> Sandbox {
    let (mut okta, exts, nums) = many_users(n);
    for (i, u) in okta.iter_mut().enumerate() {
        u.profile.insert("department".into(), json!("Sales"));
        if i % 2 == 0 {
            let phone = format!("+1604555{:04}#{}", i % 10_000, 1000 + i);
            u.profile.insert("primaryPhone".into(), json!(phone));
        }
    }
    okta[7].profile.insert("department".into(), json!(REFUSED));
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    sb.telus.lock().refused_values = vec![("department".into(), REFUSED.into())];
    sb
}

fn count(sb: &Sandbox, method: &str, prefix: &str) -> usize {
    sb.telus.lock().count(method, prefix)
}

fn history_of(store: &Store, email: &str) -> Vec<okta_telus_sync::store::JournalRow> {
    store
        .history(&HistoryFilter {
            user_email: Some(email.into()),
            ..Default::default()
        })
        .unwrap()
}

/// The bodies of the bulk requests TELUS received, in order.
fn bulk_bodies(sb: &Sandbox) -> Vec<String> {
    sb.telus
        .lock()
        .requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == BULK)
        .map(|r| r.body.clone())
        .collect()
}

fn department(sb: &Sandbox, ext: i64) -> Option<String> {
    contact_field(sb, ext, &["department"])
}

/// One bulk request carries every update; the task is polled until it has run; each record
/// is journalled on its own: 29 applied, the one TELUS failed journalled failed with its
/// explanation. No PUT at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_update_journals_each_records_result() {
    let sb = sandbox_with_updates(30).await;
    let (_dir, config, store, clients) = setup(&sb);
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, PassOutcome::UsersFailed);
    assert_eq!((report.apply.applied, report.apply.failed), (29, 1));
    assert_eq!(count(&sb, "POST", BULK), 1);
    assert!(count(&sb, "GET", &format!("{BULK}/tasks/")) >= 1);
    assert_eq!(count(&sb, "PUT", "/restapi/v1.0/account/~/extension/"), 0);
    assert_eq!(department(&sb, 100_001).as_deref(), Some("Sales"));
    assert_eq!(department(&sb, 100_007).as_deref(), Some("Support"));
    let failed = history_of(&store, "user00007@northwind.ca");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].outcome, Outcome::Failed);
    assert_eq!(failed[0].error_code.as_deref(), Some("CMN-101"));
    assert!(
        failed[0]
            .explanation
            .as_deref()
            .unwrap()
            .contains("contact.department"),
        "{:?}",
        failed[0].explanation
    );
    let ok = history_of(&store, "user00001@northwind.ca");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].outcome, Outcome::Applied);
    assert_eq!(store.unfinished_count().unwrap(), 0);
    // Converged: the bad value is a known data problem, not sent again and not failing
    // while it is unchanged.
    let again = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(again.plan.change_count(), 0, "{:#?}", again.plan.actions);
    assert_eq!(again.outcome, PassOutcome::Clean);
    assert_eq!(store.data_problems().unwrap().len(), 1);
    assert_eq!(count(&sb, "POST", BULK), 1);
}

/// Where TELUS checks lengths when it accepts the request, its 400 names one record: that
/// record fails, and the rest go in the same pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_request_refused_for_one_record_sends_the_rest() {
    let sb = sandbox_with_updates(30).await;
    sb.telus.lock().bulk_checks_upfront = true;
    let (_dir, config, store, clients) = setup(&sb);
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!((report.apply.applied, report.apply.failed), (29, 1));
    assert_eq!(
        count(&sb, "POST", BULK),
        2,
        "the refused one, then the rest"
    );
    let failed = history_of(&store, "user00007@northwind.ca");
    assert_eq!(failed[0].outcome, Outcome::Failed);
    assert_eq!(failed[0].error_code.as_deref(), Some("CMN-101"));
    assert_eq!(department(&sb, 100_029).as_deref(), Some("Sales"));
    assert_eq!(store.unfinished_count().unwrap(), 0);
    // Refused up front or in the task, a value too long is a known data problem: the next
    // pass neither sends it nor fails.
    let again = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.outcome,
        PassOutcome::Clean,
        "{:#?}",
        again.plan.problems
    );
    assert_eq!(count(&sb, "POST", BULK), 2);
    assert_eq!(store.data_problems().unwrap().len(), 1);
}

/// 40 updates, 10 of them with a department the account refuses when the request is
/// accepted. When the 400 names every bad record, they are all taken out at once
/// and the 30 others go in one more request (2 in all, not 11). When it names one at a
/// time, after the second such refusal the rest of the chunk goes one PUT per user instead
/// of one Heavy bulk request per bad record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_records_cost_at_most_two_bulk_requests() {
    for every in [true, false] {
        let (mut okta, exts, nums) = many_users(40);
        for (i, u) in okta.iter_mut().enumerate() {
            let dept = if i % 4 == 1 { REFUSED } else { "Sales" };
            u.profile.insert("department".into(), json!(dept));
        }
        let sb = Sandbox::start(okta, exts, nums).await.unwrap();
        {
            let mut st = sb.telus.lock();
            st.bulk_checks_upfront = true;
            st.bulk_names_every_bad_record = every;
            st.refused_values = vec![("department".into(), REFUSED.into())];
        }
        let (_dir, config, store, clients) = setup(&sb);
        let report = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        let puts = count(&sb, "PUT", "/restapi/v1.0/account/~/extension/");
        assert_eq!(count(&sb, "POST", BULK), 2, "every={every}");
        match every {
            true => assert_eq!(puts, 0),
            // 2 bad records named, then 38 users one by one (8 of them refused).
            false => assert_eq!(puts, 38),
        }
        assert_eq!(report.apply.failed, 10, "every={every}: {:?}", report.apply);
        assert!(
            report.apply.applied >= 30,
            "every={every}: {:?}",
            report.apply
        );
        assert_eq!(department(&sb, 100_000).as_deref(), Some("Sales"));
        assert_eq!(store.unfinished_count().unwrap(), 0);
        assert_eq!(store.data_problems().unwrap().len(), 10, "every={every}");
    }
}

/// An account that refuses bulk updates (each way RingCentral says so): the same changes
/// go one PUT per user in the same pass, nothing journalled twice; the refusal is remembered
/// (no bulk request next pass) and `status` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_refuses_bulk_gets_one_put_per_user() {
    for mode in [
        BulkAvailability::FeatureNotAvailable,
        BulkAvailability::Forbidden,
        BulkAvailability::NotFound,
    ] {
        let sb = sandbox_with_updates(12).await;
        sb.telus.lock().bulk = mode;
        let (_dir, config, store, clients) = setup(&sb);
        let report = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (report.apply.applied, report.apply.failed),
            (11, 1),
            "{mode:?}"
        );
        assert_eq!(count(&sb, "POST", BULK), 1, "{mode:?}");
        assert_eq!(
            count(&sb, "PUT", "/restapi/v1.0/account/~/extension/"),
            12,
            "{mode:?}"
        );
        assert_eq!(department(&sb, 100_011).as_deref(), Some("Sales"));
        // One journal row per change, planned once.
        let rows = history_of(&store, "user00003@northwind.ca");
        assert_eq!(rows.len(), 1, "{mode:?}: {rows:#?}");
        assert_eq!(rows[0].outcome, Outcome::Applied);
        let status = okta_telus_sync::report::status_text(&config, &store).unwrap();
        assert!(
            status.contains("TELUS bulk updates: refused by this account"),
            "{status}"
        );
        // Remembered: the next change goes by PUT at once.
        {
            let mut st = sb.okta.lock();
            let u = st.users.iter_mut().find(|u| u.id == "00u0000002").unwrap();
            u.profile.insert("department".into(), json!("Legal"));
            u.last_updated =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        }
        run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(count(&sb, "POST", BULK), 1, "{mode:?}: bulk asked again");
        assert_eq!(department(&sb, 100_002).as_deref(), Some("Legal"));
    }
}

/// The process dies after TELUS accepted the task and before its results were recorded:
/// the next pass polls the task before reading, journals each record's result, and sends
/// nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_accepting_a_task_and_recording_it_loses_and_doubles_nothing() {
    let sb = sandbox_with_updates(30).await;
    sb.telus.lock().task_delay = Duration::from_millis(1500);
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    {
        let store = Store::open(&config.store_path).unwrap();
        let clients = Clients::new(&config, settings());
        // Accepted, and its answer taken in: the client polls the task.
        let accepted = async {
            let started = std::time::Instant::now();
            while count(&sb, "GET", &format!("{BULK}/tasks/")) == 0 {
                assert!(started.elapsed() < Duration::from_secs(20), "no task sent");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        // The pass is dropped mid-poll once the task is accepted, long before it runs: its
        // process died there.
        tokio::select! {
            r = run_whole(&config, &clients, &store, false, PassOptions::default()) => {
                panic!("the pass finished before the task was accepted: {:?}", r.map(|r| r.outcome));
            }
            () = accepted => {}
        }
    }
    let store = Store::open(&config.store_path).unwrap();
    assert_eq!(store.unfinished_count().unwrap(), 30, "all left planned");
    assert_eq!(department(&sb, 100_001).as_deref(), Some("Support"));

    let clients = Clients::new(&config, settings());
    let next = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(store.unfinished_count().unwrap(), 0);
    assert_eq!(next.settled, (29, 1));
    // Only the record TELUS failed is tried again; nothing that landed is sent twice.
    assert_eq!(next.plan.change_count(), 1, "{:#?}", next.plan.actions);
    let bodies = bulk_bodies(&sb);
    assert_eq!(bodies.len(), 2);
    assert!(bodies[1].contains("\"100007\"") && !bodies[1].contains("\"100001\""));
    assert_eq!(count(&sb, "PUT", "/restapi/v1.0/account/~/extension/"), 0);
    assert_eq!(department(&sb, 100_001).as_deref(), Some("Sales"));
    let ok = history_of(&store, "user00001@northwind.ca");
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].outcome, Outcome::Applied);
    let bad = history_of(&store, "user00007@northwind.ca");
    assert_eq!(bad[0].outcome, Outcome::Failed);
    assert_eq!(bad[0].error_code.as_deref(), Some("CMN-101"));
}

/// A bulk update whose answer is a 5xx (a gateway's 502 after TELUS accepted the task, or
/// RingCentral's own `503 CMN-201`) or never comes: an update is safe to repeat, so its users
/// are not held while a task might run. The next read settles each by its values: what
/// landed is applied, what did not is sent again at once. The 503's code and DESIGN's
/// explanation stay in the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_update_without_a_clear_answer_is_settled_by_the_next_read() {
    let cmn201 = FaultKind::Error {
        status: 503,
        body: r#"{"errorCode":"CMN-201","message":"Service Temporarily Unavailable","errors":[{"errorCode":"CMN-201","message":"Service Temporarily Unavailable"}]}"#.into(),
    };
    for (fault, landed_late) in [
        (FaultKind::DoneThen5xx, true),
        (FaultKind::DoneThenSilence, true),
        (cmn201, false),
    ] {
        let sb = sandbox_with_updates(10).await;
        sb.telus.lock().task_delay = Duration::from_millis(2500);
        sb.telus.inject("POST", BULK, fault.clone(), 1);
        let (_dir, config, store, clients) = setup_impatient(&sb);
        let first = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(first.apply.applied, 0, "{fault:?}");
        assert_eq!(store.unfinished_count().unwrap(), 10, "{fault:?}");
        // Bulk requests sent: the fake's fault log sees the ones a fault answered before
        // they reached it, its request log the ones it handled.
        let sent = |sb: &Sandbox| {
            crate::statuses(&sb.telus.faults, "POST", BULK)
                .len()
                .max(count(sb, "POST", BULK))
        };
        assert_eq!(sent(&sb), 1, "{fault:?}");
        assert!(
            sb.telus
                .faults
                .lock()
                .unwrap()
                .faults
                .iter()
                .all(|f| f.times == 0),
            "{fault:?}: the fault fired"
        );
        if !landed_late {
            let rows = store.unfinished().unwrap();
            let row = rows
                .iter()
                .find(|r| r.user_email == "user00003@northwind.ca" && r.attribute == "department")
                .unwrap_or_else(|| panic!("{rows:?}"));
            assert_eq!(row.error_code.as_deref(), Some("CMN-201"), "{row:?}");
            assert!(
                row.explanation
                    .as_deref()
                    .is_some_and(|e| e.contains("Service temporarily unavailable")),
                "{row:?}"
            );
        }
        // Not held: the next pass reads, settles, and sends what has not landed (the task
        // that may run late writes the same values).
        let second = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert!(second.plan.deferred.is_empty(), "{fault:?}: not held");
        assert_eq!(sent(&sb), 2, "{fault:?}: sent once more");
        assert!(second.apply.applied >= 9, "{fault:?}: {:?}", second.apply);
        assert_eq!(store.unfinished_count().unwrap(), 0, "{fault:?}");
        assert_eq!(department(&sb, 100_003).as_deref(), Some("Sales"));
        // Then nothing is left to do.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let third = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(third.apply.applied, 0, "{fault:?}");
        assert_eq!(sent(&sb), 2, "{fault:?}: nothing sent again");
        assert_eq!(count(&sb, "PUT", "/restapi/v1.0/account/~/extension/"), 0);
    }
}

/// The real binary killed with SIGKILL while TELUS runs its bulk task (accepted, polled, not
/// finished), then run again: the task is polled to its end before anything is read, every
/// record journalled once from its result, and no bulk request or PUT sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_bulk_task_then_rerun_settles_it_from_the_task() {
    let sb = sandbox_with_updates(20).await;
    sb.telus.lock().task_delay = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "[safety]\nmax_changed_percent = 100\n")
        .display()
        .to_string();
    // Killed while TELUS runs the task: accepted, and polled, not yet run.
    sigkill_sync_when(&cfg, "no task polled", || {
        count(&sb, "GET", &format!("{BULK}/tasks/")) > 0
    })
    .await;
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(store.unfinished_count().unwrap(), 20, "left planned");
    drop(store);
    assert_eq!(
        department(&sb, 100_001).as_deref(),
        Some("Support"),
        "not run yet"
    );
    // Later tasks (the retry of user 7) run quickly.
    sb.telus.lock().task_delay = Duration::from_millis(200);

    let out = run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    // User 7's record failed in the task (and again when retried): exit 1, the others done.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(department(&sb, 100_001).as_deref(), Some("Sales"));
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(store.unfinished_count().unwrap(), 0);
    for i in [1, 2, 19] {
        let rows = history_of(&store, &format!("user{i:05}@northwind.ca"));
        assert_eq!(rows.len(), 1, "user {i}: {rows:#?}");
        assert_eq!(rows[0].outcome, Outcome::Applied);
        assert_eq!(
            rows[0].explanation.as_deref(),
            Some("confirmed after an interrupted run")
        );
    }
    // The rerun sent one more bulk request: user 7's record alone, tried again.
    let bodies = bulk_bodies(&sb);
    assert_eq!(bodies.len(), 2);
    assert!(bodies[1].contains("\"100007\"") && !bodies[1].contains("\"100001\""));
    assert_eq!(count(&sb, "PUT", "/restapi/v1.0/account/~/extension/"), 0);
}

/// A task TELUS no longer knows (expired, 404) after a crash: its records are settled by a
/// fresh read instead, and what did not land is sent again, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_telus_forgot_is_settled_by_a_read_and_the_rest_sent_again() {
    let sb = sandbox_with_updates(10).await;
    sb.telus.lock().task_delay = Duration::from_secs(3600);
    let (_dir, config, store, clients) = setup(&sb);
    let polled = async {
        while count(&sb, "GET", &format!("{BULK}/tasks/")) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = run_whole(&config, &clients, &store, false, PassOptions::default()) => {
            panic!("the pass finished before its task was polled");
        }
        () = polled => {}
    }
    assert_eq!(store.unfinished_count().unwrap(), 10);
    // The task never ran, and TELUS has forgotten it.
    {
        let mut st = sb.telus.lock();
        st.tasks.clear();
        st.task_delay = Duration::from_millis(200);
    }
    let next = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(next.settled, (0, 10), "the read shows none landed");
    assert_eq!(next.plan.change_count(), 10);
    assert_eq!((next.apply.applied, next.apply.failed), (9, 1));
    assert_eq!(count(&sb, "POST", BULK), 2);
    assert_eq!(department(&sb, 100_001).as_deref(), Some("Sales"));
    assert_eq!(store.unfinished_count().unwrap(), 0);
}

/// A bulk task that outlives `telus.bulk_task_timeout_seconds` ends its pass (exit 1): no
/// further chunk is sent, so the store lock is not held for hours behind it. The next pass
/// polls that task to its end, records it, and sends the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_bulk_task_ends_its_pass_and_the_next_sends_the_rest() {
    let (mut okta, exts, nums) = many_users(600);
    for u in okta.iter_mut() {
        u.profile.insert("department".into(), json!("Stuck"));
    }
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    // The task does not run until released: stuck for as long as the first pass lasts,
    // however slow the machine.
    sb.telus.lock().hold_tasks = true;
    let (_dir, mut config, store, clients) = setup(&sb);
    config.telus.bulk_task_timeout = Duration::from_secs(1);
    config.safety.max_changed_percent = 100;
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(first.outcome, PassOutcome::UsersFailed);
    assert_eq!(
        count(&sb, "POST", BULK),
        1,
        "no second chunk behind the stuck task"
    );
    assert_eq!(
        store.unfinished_count().unwrap(),
        500,
        "the first chunk waits for its task"
    );
    sb.telus.lock().hold_tasks = false;
    let second = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        second.outcome,
        PassOutcome::Clean,
        "{:?}",
        second.apply.stuck_task
    );
    assert_eq!(count(&sb, "POST", BULK), 2, "the rest, once");
    assert_eq!(store.unfinished_count().unwrap(), 0);
    let t = sb.telus.lock();
    assert!(
        t.extensions
            .iter()
            .all(|e| e.contact.get("department").and_then(Value::as_str) == Some("Stuck"))
    );
}

/// A department over the 64 characters RingCentral's spec allows never leaves the client:
/// no bulk record carries it, it is the user's known data problem (`invalid-value`), and
/// the others go in the one bulk request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_the_specs_max_length_is_never_sent() {
    let (mut okta, exts, nums) = many_users(10);
    for u in okta.iter_mut() {
        u.profile.insert("department".into(), json!("Sales"));
    }
    okta[3]
        .profile
        .insert("department".into(), json!("D".repeat(70)));
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    let (_dir, config, store, clients) = setup(&sb);
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(count(&sb, "POST", BULK), 1);
    assert!(bulk_bodies(&sb).iter().all(|b| !b.contains("DDDDDDDDDD")));
    let problems = store.data_problems().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, "invalid-value");
    assert_eq!(department(&sb, 100_004).as_deref(), Some("Sales"));
}
