//! `[notify]` from the real daemon against a local receiver: a held pass and the built-in
//! app still pushing are notified, the webhook is retried after a 500, one of a kind per
//! interval (the rest said once in the log as dropped), the command gets the same event on
//! stdin, and no payload carries a value or a secret.

use crate::*;
use okta_telus_sync::sandbox::okta_apps::{BUILTIN_APP, install_builtin_app};
use std::sync::{Arc, Mutex};

/// A webhook receiver on loopback: answers 500 to the first request, 200 after; keeps bodies.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/hooks/T000/secret-token",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                let mut b = kept.lock().unwrap();
                b.push(body);
                match b.len() {
                    1 => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    _ => axum::http::StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hooks/T000/secret-token"), bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notifies_a_held_pass_and_the_builtin_app_once_each_retrying_the_webhook() {
    let sb = Sandbox::start_seeded().await.unwrap();
    install_builtin_app(&mut sb.okta.lock());
    let (url, bodies) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[safety]\nmax_deactivations = 0\n[notify]\nwebhook_url = \"{url}\"\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n",
        events.display()
    );
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[telus]",
        &format!("app_id = \"{BUILTIN_APP}\"\n\n[telus]"),
        1,
    );
    std::fs::write(&cfg, text).unwrap();

    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 4).await;
    // The first POST (500) was retried after a second.
    let started = std::time::Instant::now();
    while bodies.lock().unwrap().len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}\n{}",
            bodies.lock().unwrap(),
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // real time: the retry waits 1 s
    }
    // The app's push features go off for a pass, then on again within the hour: the second
    // notice of the kind is dropped, and said so in the log.
    let features = {
        let mut o = sb.okta.lock();
        std::mem::take(&mut o.app_meta.get_mut(BUILTIN_APP).unwrap().features)
    };
    let passes = d.log().matches("pass complete").count();
    d.wait_for_log("pass complete", passes + 2).await;
    sb.okta
        .lock()
        .app_meta
        .get_mut(BUILTIN_APP)
        .unwrap()
        .features = features;
    d.wait_for_log("notification dropped", 1).await;
    let passes = d.log().matches("pass complete").count();
    d.wait_for_log("pass complete", passes + 2).await;
    crate::daemon::signal(&d.child, "-TERM");
    let log = d.log();
    assert_eq!(d.wait_exit().await.code(), Some(0));
    let got = bodies.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "pass_held").count(),
        2,
        "held every pass, sent once, plus its retry after the 500: {kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "builtin_app_pushing")
            .count(),
        1,
        "{kinds:?}"
    );
    let held = got.iter().find(|b| b["kind"] == "pass_held").unwrap();
    assert!(
        held["details"][0]
            .as_str()
            .unwrap()
            .contains("max_deactivations")
    );
    assert!(held["command"].as_str().unwrap().contains("sync --approve"));
    assert_eq!(
        log.matches("notification dropped").count(),
        1,
        "said once, though the app pushed at every pass since"
    );
    // The command got the same events, one JSON line each.
    let lines = std::fs::read_to_string(&events).unwrap();
    let sent: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 2, "{lines}");
    // No value, no secret anywhere: not in a payload, not in the log.
    let all = format!("{got:?}{lines}");
    for value in [
        "Marketing",
        "+1604555",
        "555-01",
        "ana.silva",
        "Vancouver",
        "secret-token",
        sandbox::OKTA_TOKEN,
        sandbox::TELUS_CLIENT_SECRET,
    ] {
        assert!(!all.contains(value), "{value} in a payload: {all}");
    }
    assert!(!log.contains("secret-token"), "the webhook URL in the log");
}

/// The first pass finds a data problem (Hugo's mobile number) and a known refusal (Ana's
/// primaryPhone, AD-sourced): one `new_problems` notice names both users and attributes, and
/// carries neither value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_problems_are_notified_by_user_and_attribute_without_their_values() {
    let sb = Sandbox::start_seeded().await.unwrap();
    // Ana is sourced from Active Directory and lacks the primaryPhone TELUS gives her: Okta
    // refuses its write-back (a known refusal after pass 1).
    {
        let mut o = sb.okta.lock();
        let ana = o.users.iter_mut().find(|u| u.id == "00u1ana").unwrap();
        ana.provider = "ACTIVE_DIRECTORY";
        ana.profile.remove("primaryPhone");
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[notify]\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n",
        events.display()
    );
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 3).await;
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    let lines = std::fs::read_to_string(&events).unwrap_or_default();
    let sent: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let problems: Vec<&Value> = sent
        .iter()
        .filter(|e| e["kind"] == "new_problems")
        .collect();
    assert_eq!(problems.len(), 1, "{lines}");
    let users = problems[0]["users"].to_string();
    let attrs = problems[0]["attributes"].to_string();
    assert!(
        users.contains("hugo.gagnon@northwind.ca") && attrs.contains("mobilePhone"),
        "{lines}"
    );
    assert!(
        users.contains("ana.silva@northwind.ca") && attrs.contains("primaryPhone"),
        "{lines}"
    );
    assert!(
        !lines.contains("555-0108") && !lines.contains("+1604555"),
        "a value in {lines}"
    );
}

/// A user whose writes TELUS refuses pass after pass is quarantined (after one failed pass
/// here), and that is notified once, by email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_user_is_notified_by_email() {
    let sb = Sandbox::start_seeded().await.unwrap();
    crate::without_bulk(&sb);
    crate::refuse_edits_of_ana(&sb, 1000);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[retry]\nquarantine_after = 1\nbackoff_seconds = 0\n[notify]\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n",
        events.display()
    );
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 3).await;
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    // The fault fired: Ana's PUT was refused.
    assert!(
        crate::ana_put_statuses(&sb).contains(&403),
        "Ana's edit was never refused"
    );
    let lines = std::fs::read_to_string(&events).unwrap_or_default();
    let sent: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let q: Vec<&Value> = sent
        .iter()
        .filter(|e| e["kind"] == "users_quarantined")
        .collect();
    assert_eq!(q.len(), 1, "{lines}");
    assert_eq!(q[0]["users"], json!(["ana.silva@northwind.ca"]), "{lines}");
    assert!(
        q[0]["command"]
            .as_str()
            .unwrap()
            .contains("--retry-quarantined")
    );
}
