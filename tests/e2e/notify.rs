//! `[notify]` from the real daemon against a local receiver: each kind of event (a held
//! pass, the built-in app still pushing, new problems, a quarantine, a session that can
//! lapse, a channel down too long, a streak of whole-system failures), the webhook retried
//! after a 500, one of a kind per interval (the rest said once in the log as dropped), the
//! command given the same event on stdin, and no payload carrying a value or a secret.

use crate::*;
use okta_telus_sync::sandbox::okta_apps::{BUILTIN_APP, install_builtin_app};
use std::sync::{Arc, Mutex};

/// A webhook receiver on loopback: answers 500 to the first `failing` requests, 200 after;
/// keeps bodies.
async fn receiver(failing: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/hooks/T000/secret-token",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                let mut b = kept.lock().unwrap();
                b.push(body);
                if b.len() <= failing {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
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
    let (url, bodies) = receiver(1).await;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let port = crate::daemon::free_port();
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[safety]\nmax_deactivations = 0\n[http]\nlisten = \"127.0.0.1:{port}\"\n[notify]\nwebhook_url = \"{url}\"\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n",
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
    // What became of each, as /metrics counts it: the retried one sent once, none failed.
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "okta_telus_sync_notifications_total{kind=\"pass_held\",result=\"sent\"} 1",
        "okta_telus_sync_notifications_total{kind=\"builtin_app_pushing\",result=\"sent\"} 1",
        "okta_telus_sync_notifications_total{kind=\"builtin_app_pushing\",result=\"dropped\"} 1",
        "okta_telus_sync_notifications_total{kind=\"pass_held\",result=\"failed\"} 0",
        "okta_telus_sync_notifications_total{kind=\"channel_down\",result=\"failed\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
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
/// carries neither value. The daemon restarted does not announce them again (the store
/// keeps what was announced).
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
    for _restart in 0..2 {
        let d = crate::daemon::Daemon::start(&cfg, dir.path());
        d.wait_for_log("pass complete", 3).await;
        crate::daemon::signal(&d.child, "-TERM");
        assert_eq!(d.wait_exit().await.code(), Some(0));
    }
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

/// The events `notify.command` wrote (`cat >> path`), one JSON line each.
fn sent_events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (20 s at most) until the command has been given an event of `kind`.
async fn wait_for_kind(path: &std::path::Path, kind: &str, d: &crate::daemon::Daemon) -> Value {
    let started = std::time::Instant::now();
    loop {
        if let Some(e) = sent_events(path).into_iter().find(|e| e["kind"] == kind) {
            return e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {kind} event; sent {:?}\n{}",
            sent_events(path),
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // real time: polls a file another process writes
    }
}

fn command_to(events: &std::path::Path) -> String {
    format!(
        "command = [\"sh\", \"-c\", \"cat >> {}\"]\n",
        events.display()
    )
}

/// A JWT credential that expires in 5 days (RingCentral lets its creator choose an expiry):
/// the first pass finds the session at risk and says so once, with the date and the step,
/// never the credential. The fake refuses the JWT once it has expired, as the real one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_close_to_its_expiry_is_notified_once_without_the_credential() {
    use base64::Engine as _;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = chrono::Utc::now().timestamp() + 5 * 86_400;
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            json!({"aud": "https://platform.ringcentral.com/restapi/oauth/token", "sub": "62001", "iss": "sandbox-client-id", "exp": exp, "jti": "Xk2dQ"})
        )
    );
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.telus.lock().jwt = jwt.clone();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let extra = format!(
        "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[notify]\n{}",
        command_to(&events)
    );
    let cfg = write_config(dir.path(), &sb, &extra);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(sandbox::TELUS_JWT, &jwt);
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    let e = wait_for_kind(&events, "session_at_risk", &d).await;
    d.wait_for_log("pass complete", 3).await;
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    // The passes ran (the JWT is still valid): the session is at risk, not lapsed.
    assert!(sb.telus.lock().count("POST", "/restapi/oauth/token") >= 1);
    let all = sent_events(&events);
    assert_eq!(
        all.iter()
            .filter(|e| e["kind"] == "session_at_risk")
            .count(),
        1,
        "at risk at every pass, notified once: {all:?}"
    );
    let details = e["details"].to_string();
    assert!(
        details.contains("expires")
            && (details.contains("(5 days)") || details.contains("(4 days)")),
        "{details}"
    );
    assert!(details.contains("telus.jwt"), "the step: {details}");
    assert!(
        !format!("{all:?}").contains(&jwt[..20]),
        "the credential in {all:?}"
    );

    // Past its expiry the fake refuses it: a pass is then a whole-system failure.
    let expired = {
        let claims = json!({"sub": "62001", "exp": chrono::Utc::now().timestamp() - 60});
        format!("{}.{}.c2ln", b64(json!({"alg": "RS256"})), b64(claims))
    };
    sb.telus.lock().jwt = expired.clone();
    let mut config = sb.config(
        okta_telus_sync::reconcile::policy::Policy::builtin(),
        &dir.path().join("other.db"),
    );
    config.telus.jwt = Some(secrecy::SecretString::from(expired));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let r = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::SystemFailed);
    let why = r.system_error.unwrap();
    assert!(why.contains("JWT token is expired"), "{why}");
}

/// The Okta System Log stops answering (503 past every retry): once the channel has been down
/// for `notify.channel_down_seconds`, it is notified between passes (none runs meanwhile),
/// once for the outage, naming the side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_down_too_long_is_notified_between_passes_once() {
    use okta_telus_sync::sandbox::faults::FaultKind;
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // Okta polled every 2 s; no scheduled pass (New Year's at 04:00) after the first.
    let extra = format!(
        "[events]\nokta_poll_seconds = 2\n[schedule]\ncron = \"0 0 4 1 1 *\"\n[notify]\nchannel_down_seconds = 3\n{}",
        command_to(&events)
    );
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 1).await;
    sb.okta
        .inject("GET", "/api/v1/logs", FaultKind::Unavailable, 10_000);
    let e = wait_for_kind(&events, "channel_down", &d).await;
    // The fault fired: polls answered 503, and the daemon said so.
    assert!(crate::statuses(&sb.okta.faults, "GET", "/api/v1/logs").contains(&503));
    assert!(d.log().contains("System Log poll failed"), "{}", d.log());
    assert_eq!(
        d.log().matches("pass complete").count(),
        1,
        "notified between passes, not by one: {}",
        d.log()
    );
    let summary = e["summary"].as_str().unwrap();
    assert!(
        summary.contains("The Okta change-event channel") && summary.contains("down for"),
        "{summary}"
    );
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .contains("okta-telus-sync status")
    );
    // Still down a while later: still one notice for this outage.
    tokio::time::sleep(Duration::from_secs(4)).await; // real time: checks run every second meanwhile
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    let all = sent_events(&events);
    assert_eq!(
        all.iter().filter(|e| e["kind"] == "channel_down").count(),
        1,
        "{all:?}"
    );
}

/// Okta's API token was revoked (401 E0000011 to every request): the first pass fails as a
/// whole, the daemon backs off, and an operator's SIGUSR1 runs the next ones at once. The
/// third failure in a row is notified, with its cause; the fourth is not (the same streak);
/// a pass that runs ends it. (Not a refused TELUS JWT: TELUS's Auth group allows 5 token
/// requests a minute, and a fourth pass would wait a minute's penalty, as it would for real.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_whole_system_failures_in_a_row_are_notified_once_with_their_cause() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.okta.lock().token = "a-token-that-was-revoked".into();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let extra = format!(
        "[schedule]\ncron = \"0 0 4 1 1 *\"\n[notify]\n{}",
        command_to(&events)
    );
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    for n in 1..=4 {
        d.wait_for_log("whole-system failure: backing off", n).await;
        if n == 2 {
            assert!(
                sent_events(&events).is_empty(),
                "two failures are not a streak yet"
            );
        }
        if n < 4 {
            crate::daemon::signal(&d.child, "-USR1");
        }
    }
    let e = wait_for_kind(&events, "system_failures", &d).await;
    // The fault fired: Okta answered 401 to the passes' reads.
    let refused = crate::statuses(&sb.okta.faults, "GET", "/api/v1/users");
    assert!(
        refused.iter().filter(|s| **s == 401).count() >= 4,
        "{refused:?}"
    );
    assert!(
        e["summary"]
            .as_str()
            .unwrap()
            .starts_with("3 passes in a row"),
        "{e}"
    );
    let cause = e["details"].to_string();
    assert!(cause.contains("okta") || cause.contains("Okta"), "{cause}");
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .contains("check-config --connect")
    );
    // The credential is put right: the next pass runs and ends the streak.
    sb.okta.lock().token = sandbox::OKTA_TOKEN.into();
    crate::daemon::signal(&d.child, "-USR1");
    d.wait_for_log("pass complete", 1).await;
    crate::daemon::signal(&d.child, "-TERM");
    let log = d.log();
    assert_eq!(d.wait_exit().await.code(), Some(0));
    let all = sent_events(&events);
    assert_eq!(
        all.iter()
            .filter(|e| e["kind"] == "system_failures")
            .count(),
        1,
        "{all:?}"
    );
    assert!(!format!("{all:?}{log}").contains(sandbox::OKTA_TOKEN));
}

/// `check-config --notify` sends one test event to each output and says how each took it,
/// never naming the URL: a 500 is reported at once (exit 4), a failing command too; then sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_notify_sends_a_test_and_names_the_output_that_failed() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (url, bodies) = receiver(1).await;
    let dir = tempfile::tempdir().unwrap();
    let extra =
        format!("[notify]\nwebhook_url = \"{url}\"\nformat = \"teams\"\ncommand = [\"false\"]\n");
    let cfg = write_config(dir.path(), &sb, &extra).display().to_string();
    let args = vec![
        "--config".to_string(),
        cfg.clone(),
        "check-config".into(),
        "--notify".into(),
    ];
    let first = run_bin(args.clone()).await;
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert_eq!(first.status.code(), Some(4), "{out}");
    assert!(
        out.contains("notify: webhook: NOT delivered: the webhook answered HTTP 500"),
        "{out}"
    );
    assert!(out.contains("notify: command: NOT delivered"), "{out}");
    assert!(!out.contains("secret-token"), "the URL in {out}");
    // The receiver answers 200 from now on; the command is fixed.
    let fixed = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("command = [\"false\"]", "command = [\"true\"]");
    std::fs::write(&cfg, fixed).unwrap();
    let second = run_bin(args).await;
    let out = String::from_utf8_lossy(&second.stdout).to_string();
    assert_eq!(second.status.code(), Some(0), "{out}");
    assert!(
        out.contains("notify: webhook: sent") && out.contains("notify: command: sent"),
        "{out}"
    );
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one attempt each time: {got:?}");
    assert_eq!(got[1]["attachments"][0]["content"]["type"], "AdaptiveCard");
    assert!(got[1].to_string().contains("A test notification"));
    // Nothing was read from either API: the test sends, it does not sync.
    assert_eq!(sb.okta.lock().count("GET", "/api/v1/users"), 0);
}

/// The path README gives: the shipped `sync.toml` edited as step 2 says, its `[notify]` block
/// uncommented down to `format = "slack"`, and the webhook URL put in the credentials
/// directory as `notify-webhook-url`. `check-config --notify` sends the test, under systemd
/// (`$CREDENTIALS_DIRECTORY/okta-telus-sync_notify-webhook-url`) and as root outside it
/// (`credentials/notify-webhook-url` beside the file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_notify_block_with_the_url_as_a_credential_sends_the_test() {
    let (url, bodies) = receiver(0).await;
    let text = crate::shipped_as_step_2_edits_it()
        .replace("# [notify]\n", "[notify]\n")
        .replace("# format = \"slack\"", "format = \"slack\"");
    assert!(
        text.contains("\n[notify]\n") && text.contains("\nformat = \"slack\""),
        "the shipped block moved"
    );
    let etc = tempfile::tempdir().unwrap();
    let cfg = etc.path().join("sync.toml");
    std::fs::write(&cfg, text).unwrap();
    let creds = tempfile::tempdir().unwrap();
    std::fs::create_dir(etc.path().join("credentials")).unwrap();
    for (file, value) in [
        ("okta-token", "t"),
        ("telus-client-secret", "s"),
        ("telus-jwt", "j"),
        ("notify-webhook-url", url.as_str()),
    ] {
        for p in [
            etc.path().join("credentials").join(file),
            creds.path().join(format!("okta-telus-sync_{file}")),
        ] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(&p, format!("{value}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let cfg = cfg.display().to_string();
    for systemd in [true, false] {
        let mut cmd = crate::bin();
        cmd.args(["--config", &cfg, "check-config", "--notify"])
            .env_remove("CREDENTIALS_DIRECTORY");
        if systemd {
            cmd.env("CREDENTIALS_DIRECTORY", creds.path());
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "systemd {systemd}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("notify: webhook: sent"), "{stdout}");
        assert!(!stdout.contains("secret-token"), "{stdout}");
    }
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("*okta-telus-sync*: A test notification"),
        "a Slack body: {got:?}"
    );
}
