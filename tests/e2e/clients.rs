//! The API clients against the strict fakes: OAuth with PKCE and rotating refresh tokens,
//! rate-limit pacing and penalties, retries without duplicate writes, error explanations.

use crate::*;
use okta_telus_sync::sandbox::faults::FaultKind;

fn no_jwt(config: &mut okta_telus_sync::config::Config) {
    config.telus.jwt = None;
}

/// Runs the authorization-code flow against the fake the way a browser would, in process.
async fn authorize(sb: &Sandbox, config: &okta_telus_sync::config::Config, clients: &Clients) {
    use okta_telus_sync::telus::auth;
    let pkce = auth::Pkce::new();
    let state = auth::new_state();
    let url = auth::authorize_url(
        &config.telus.url,
        &config.telus.client_id,
        "7310",
        &config.telus.redirect_uri,
        &state,
        &pkce,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let code = auth::code_from_redirect(&location, &state).unwrap();
    clients
        .telus
        .exchange_code(&code, &pkce.verifier, &config.telus.redirect_uri)
        .await
        .unwrap();
    assert_eq!(sb.telus.lock().count("GET", "/restapi/oauth/authorize"), 1);
}

#[tokio::test]
async fn a_pass_outliving_several_access_tokens_rotates_refresh_tokens_and_never_reuses_one() {
    let sb = many_with(24, "department", "Sales").await;
    // One PUT per user: a pass long enough to outlive access tokens.
    without_bulk(&sb);
    {
        let mut st = sb.telus.lock();
        st.token_ttl = Duration::from_secs(2);
        st.write_delay = Duration::from_millis(200);
        st.limits.insert("Auth", 100);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    no_jwt(&mut config);
    config.safety.max_changed_percent = 100;
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    authorize(&sb, &config, &clients).await;
    assert!(
        store.credentials("telus").unwrap().is_some(),
        "the session is persisted"
    );

    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        PassOutcome::Clean,
        "{:?}",
        report.system_error
    );
    assert_eq!(report.apply.failed, 0);
    let (refreshes, reused) = {
        let st = sb.telus.lock();
        (st.refreshes, st.reused_refresh_tokens)
    };
    assert!(
        refreshes >= 2,
        "the pass outlived {refreshes} access tokens"
    );
    assert_eq!(reused, 0, "a spent refresh token was sent again");

    // A new process resumes from the persisted (rotated) pair.
    drop(clients);
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        PassOutcome::Clean,
        "{:?}",
        report.system_error
    );
    assert_eq!(sb.telus.lock().reused_refresh_tokens, 0);
    let status = okta_telus_sync::report::status_text(&config, &store).unwrap();
    assert!(
        status.contains("TELUS session (auth telus): refresh token valid until"),
        "{status}"
    );
}

#[tokio::test]
async fn without_a_session_or_jwt_the_pass_is_an_auth_failure() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    no_jwt(&mut config);
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, PassOutcome::SystemFailed);
    assert!(report.system_error.unwrap().contains("auth telus"));
}

#[tokio::test]
async fn a_pass_needing_three_times_a_groups_budget_gets_no_429() {
    let sb = many_with(15, "department", "Sales").await;
    without_bulk(&sb);
    {
        let mut st = sb.telus.lock();
        st.window = Duration::from_secs(1);
        st.limits.insert("Medium", 5);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    config.safety.max_changed_percent = 100;
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    // 1 listing + 15 updates = 16 Medium requests against a budget of 5 per window.
    assert_eq!(
        report.apply.applied,
        15 + 8,
        "{:?}",
        report.apply.failed_users
    );
    let st = sb.telus.lock();
    assert_eq!(st.count("PUT", "/restapi/v1.0/account/~/extension/"), 15);
    assert_eq!(st.rate_limited, 0, "no 429");
    assert_eq!(st.sent_during_penalty, 0);
    assert_eq!(
        clients
            .telus
            .counters
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn a_forced_429_is_followed_by_silence_until_the_penalty_ends_and_is_remembered() {
    let sb = Sandbox::start_seeded().await.unwrap();
    without_bulk(&sb);
    sb.telus.inject(
        "PUT",
        "/restapi/v1.0/account/~/extension/",
        FaultKind::TooManyRequests { retry_after: 2 },
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.apply.failed, 0,
        "the change was retried after the penalty"
    );
    let log = sb.telus.faults.lock().unwrap().log.clone();
    let (i, hit) = log
        .iter()
        .enumerate()
        .find(|(_, l)| l.2 == 429)
        .map(|(i, l)| (i, l.3))
        .expect("the 429 was served");
    let next_medium = log[i + 1..]
        .iter()
        .find(|l| l.1.starts_with("/restapi/v1.0/account/~/extension"))
        .expect("a later request to the group");
    assert!(
        next_medium.3.duration_since(hit) >= Duration::from_millis(1900),
        "next request to the group after {:?}",
        next_medium.3.duration_since(hit)
    );
    // The penalty is stored, so a restarted process would honour it too.
    let until: i64 = store.telus_penalty("Medium").unwrap().unwrap();
    assert!(until > chrono::Utc::now().timestamp_millis() - 5_000);
}

#[tokio::test]
async fn a_stored_penalty_is_honoured_by_a_new_process() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let until = chrono::Utc::now().timestamp_millis() + 1_500;
    store.save_telus_penalty("Medium", until).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let started = std::time::Instant::now();
    run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    // The fake never answers 429 here, so counting 429s proves nothing: the first request to
    // the penalized group must arrive after the penalty.
    let log = sb.telus.faults.lock().unwrap().log.clone();
    let (_, _, _, first_medium) = log
        .iter()
        .find(|(m, p, _, _)| m == "GET" && p == "/restapi/v1.0/account/~/extension")
        .expect("the extension listing was read");
    assert!(
        first_medium.duration_since(started) >= Duration::from_millis(1_300),
        "the first Medium request came {:?} after the start, inside the penalty",
        first_medium.duration_since(started)
    );
}

#[tokio::test]
async fn unavailable_and_slow_responses_are_retried_without_duplicate_writes() {
    let sb = Sandbox::start_seeded().await.unwrap();
    without_bulk(&sb);
    // Ana's update meets a 503 then succeeds; David's is answered too late once.
    sb.telus.inject(
        "PUT",
        "/restapi/v1.0/account/~/extension/62001",
        FaultKind::Unavailable,
        1,
    );
    sb.telus.inject(
        "PUT",
        "/restapi/v1.0/account/~/extension/62004",
        FaultKind::Slow(Duration::from_millis(2500)),
        1,
    );
    // The create is answered too late: it is not sent again, and the next pass links it.
    sb.telus.inject(
        "POST",
        "/restapi/v1.0/account/~/extension",
        FaultKind::Slow(Duration::from_millis(2500)),
        1,
    );
    let (_dir, config, store, clients) = setup_impatient(&sb);
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_ne!(
        first.outcome,
        PassOutcome::SystemFailed,
        "{:?}",
        first.system_error
    );
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Marketing")
    );
    assert_eq!(
        contact_field(&sb, 62004, &["businessAddress", "city"]).as_deref(),
        Some("Toronto")
    );
    // Let the slow create land, then run the next pass.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_ne!(second.outcome, PassOutcome::SystemFailed);
    let st = sb.telus.lock();
    assert_eq!(
        st.count("POST", "/restapi/v1.0/account/~/extension"),
        1,
        "the create was sent once"
    );
    assert_eq!(
        st.extensions
            .iter()
            .filter(|e| e.contact["email"] == json!("isabelle.cote@northwind.ca"))
            .count(),
        1
    );
    drop(st);
    assert_eq!(store.unfinished_count().unwrap(), 0);
    let journal = store
        .history(&HistoryFilter {
            user_email: Some("isabelle.cote@northwind.ca".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        journal
            .iter()
            .filter(|h| h.rule == okta_telus_sync::reconcile::Rule::Create)
            .all(|h| h.outcome == Outcome::Applied),
        "{journal:#?}"
    );
    let ana = store
        .history(&HistoryFilter {
            user_email: Some("ana.silva@northwind.ca".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ana.len(), 1, "one journalled change for one change");
}

fn rc_error(code: &str, message: &str, param: Option<&str>) -> String {
    let mut item = json!({"errorCode": code, "message": message});
    if let Some(p) = param {
        item["parameterName"] = json!(p);
    }
    json!({"errorCode": code, "message": message, "errors": [item]}).to_string()
}

#[tokio::test]
async fn every_telus_error_in_the_design_table_reaches_the_journal_explained() {
    let cases: Vec<(u16, String, &str)> = vec![
        (
            400,
            rc_error(
                "CMN-101",
                "Parameter [contact.department] value is invalid",
                Some("contact.department"),
            ),
            "The [contact.department] is invalid. Please correct the value in Okta/Active Directory.",
        ),
        (
            404,
            rc_error(
                "CMN-102",
                "Resource for parameter [extensionId] is not found",
                Some("extensionId"),
            ),
            "Resource for parameter [extensionId] is not found: the value is missing in Okta/Active Directory.",
        ),
        (
            400,
            rc_error("CMN-103", "JSON can not be parsed", None),
            "JSON can not be parsed. Check the user's data in Okta/Active Directory.",
        ),
        (
            400,
            rc_error(
                "CMN-101",
                "Extension number is already in use",
                Some("extensionNumber"),
            ),
            "Extension already in use: see which extensions are free in the TELUS portal.",
        ),
    ];
    for (status, body, explanation) in cases {
        let sb = Sandbox::start_seeded().await.unwrap();
        without_bulk(&sb);
        sb.telus.inject(
            "PUT",
            "/restapi/v1.0/account/~/extension/62001",
            FaultKind::Error { status, body },
            1,
        );
        let (_dir, config, store, clients) = setup(&sb);
        let r = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(r.outcome, PassOutcome::UsersFailed);
        let rows = store
            .history(&HistoryFilter {
                user_email: Some("ana.silva@northwind.ca".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(rows[0].outcome, Outcome::Failed);
        assert_eq!(rows[0].explanation.as_deref(), Some(explanation));
        // Not retried within the pass: a 4xx is the data's fault.
        assert_eq!(
            sb.telus
                .faults
                .lock()
                .unwrap()
                .log
                .iter()
                .filter(|l| l.1.ends_with("/62001"))
                .count(),
            1
        );
    }
    // 503 until the retries run out: the pass ends as a whole-system failure, explained.
    let sb = Sandbox::start_seeded().await.unwrap();
    without_bulk(&sb);
    sb.telus.inject(
        "PUT",
        "/restapi/v1.0/account/~/extension/",
        FaultKind::Unavailable,
        10,
    );
    let (_dir, config, store, clients) = setup(&sb);
    let r = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::SystemFailed);
    let failed: Vec<_> = store
        .history(&HistoryFilter::default())
        .unwrap()
        .into_iter()
        .filter(|h| {
            h.outcome == Outcome::Failed && h.system == okta_telus_sync::model::System::Telus
        })
        .filter(|h| h.error_code.as_deref() != Some("invalid-value"))
        .collect();
    assert_eq!(failed[0].error_code.as_deref(), Some("CMN-201"));
    assert_eq!(
        failed[0].explanation.as_deref(),
        Some("Service temporarily unavailable; will retry.")
    );
}

#[tokio::test]
async fn okta_rate_limit_429_waits_for_the_reset_and_continues() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.okta.inject(
        "GET",
        "/api/v1/users",
        FaultKind::TooManyRequests { retry_after: 2 },
        1,
    );
    let (_dir, config, store, clients) = setup(&sb);
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert_eq!(r.okta_read, 12);
    let log: Vec<_> = (sb.okta.faults.lock().unwrap().log.iter())
        .filter(|r| r.1 == "/api/v1/users")
        .cloned()
        .collect();
    assert_eq!(log[0].2, 429);
    // X-Rate-Limit-Reset is two whole seconds past the 429's second: over one second later.
    assert!(log[1].3.duration_since(log[0].3) >= Duration::from_secs(1));
}

#[tokio::test]
async fn malformed_or_html_responses_are_typed_errors_not_panics() {
    for kind in [FaultKind::Malformed, FaultKind::WrongContentType] {
        let sb = Sandbox::start_seeded().await.unwrap();
        sb.telus
            .inject("GET", "/restapi/v1.0/account/~/extension", kind.clone(), 1);
        let (_dir, config, store, clients) = setup(&sb);
        let r = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(r.outcome, PassOutcome::SystemFailed, "{kind:?}");
        let err = r.system_error.unwrap();
        assert!(
            err.contains("GET extension") && err.contains("unreadable"),
            "{err}"
        );
        // The next pass, with the server healthy again, converges.
        let r = run_whole(&config, &clients, &store, false, PassOptions::default())
            .await
            .unwrap();
        assert_eq!(r.outcome, PassOutcome::UsersFailed);
        assert_eq!(r.apply.failed, 0);
    }
}

/// Drives `auth telus` as an admin does: a browser GETs the printed authorize URL from the
/// fake, which approves and answers 302 to the redirect URI. With `no_browser`, the admin
/// pastes the address; without it (the README's default), the browser follows the redirect
/// to the command's own loopback listener. Then `sync` runs on the stored session.
async fn auth_telus_then_sync(no_browser: bool) {
    use std::io::{BufRead as _, Write as _};
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A free loopback port for the redirect listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // No jwt: the session from `auth telus` is the only credential.
    let cfg = crate::write_config(dir.path(), &sb, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("jwt"))
        .map(|l| {
            if l.starts_with("client_secret") {
                format!("{l}\nredirect_uri = \"http://127.0.0.1:{port}/callback\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.display().to_string();

    let mut args = vec!["--config", &cfg, "auth", "telus"];
    if no_browser {
        args.push("--no-browser");
    }
    let mut child = crate::bin()
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "no URL printed");
            if let Some(u) = line.trim().strip_prefix("http") {
                return (format!("http{u}"), reader);
            }
        }
    })
    .await
    .unwrap();
    let (url, mut reader) = url;
    assert!(
        url.contains("brand_id=7310") && url.contains("code_challenge_method=S256"),
        "{url}"
    );
    assert!(
        url.contains(&format!("127.0.0.1%3A{port}%2Fcallback")),
        "{url}"
    );
    // The "browser": the fake approves and redirects.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let mut stdin = child.stdin.take().unwrap();
    if no_browser {
        writeln!(stdin, "{location}").unwrap();
    } else {
        // Requests on the callback path that are not this run's redirect (no state, another
        // state with an `error`) get a 400, and the flow goes on waiting.
        let callback = format!("http://127.0.0.1:{port}/callback");
        for stray in [
            callback.clone(),
            format!("{callback}?error=access_denied&error_description=%1B%5B2J&state=other"),
            format!("{callback}?code=stolen&state=other"),
        ] {
            let page = http.get(&stray).send().await.unwrap();
            assert_eq!(page.status().as_u16(), 400, "{stray}");
        }
        // The browser follows the 302 to the command's loopback listener.
        let page = http.get(&location).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("received the authorization")
        );
    }
    drop(stdin);
    let status = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            rest,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}{}", status.1, status.2);
    assert!(status.1.contains("TELUS session stored"), "{}", status.1);
    let stored = okta_telus_sync::store::Store::open(&dir.path().join("state.db"))
        .unwrap()
        .credentials("telus")
        .unwrap();
    assert!(stored.is_some_and(|t| t.refresh_token.is_some()));

    let out = crate::run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sb.telus.lock().refreshes == 0,
        "a fresh access token needs no refresh yet"
    );
    let out = crate::run_bin(vec!["--config".into(), cfg, "status".into()]).await;
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("TELUS session (auth telus): refresh token valid until"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_auth_telus_no_browser_stores_a_session_that_sync_then_uses() {
    auth_telus_then_sync(true).await;
}

/// The flow the README gives: the browser comes back to the loopback listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_auth_telus_loopback_stores_a_session_that_sync_then_uses() {
    auth_telus_then_sync(false).await;
}

#[tokio::test]
async fn okta_oauth_private_key_jwt_gets_a_bearer_token_and_caches_it() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let public = std::fs::read_to_string("tests/fixtures/okta-test-key.pub.pem").unwrap();
    let private = std::fs::read_to_string("tests/fixtures/okta-test-key.pem").unwrap();
    sb.okta.lock().oauth_client = Some(("0oaservice".into(), public));
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    config.okta.auth = okta_telus_sync::config::OktaAuth::OAuth {
        client_id: "0oaservice".into(),
        private_key: secrecy::SecretString::from(private),
        key_id: Some("k1".into()),
        scopes: "okta.users.read okta.users.manage".into(),
    };
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_ne!(
        report.outcome,
        PassOutcome::SystemFailed,
        "{:?}",
        report.system_error
    );
    assert!(
        okta_writes(&sb) >= 3,
        "write-backs went through with the Bearer token"
    );
    assert_eq!(
        sb.okta.lock().tokens_issued,
        1,
        "one token for the whole pass"
    );

    // A wrong key is an auth failure of the whole system.
    let mut bad = config.clone();
    let other = okta_telus_sync::config::OktaAuth::OAuth {
        client_id: "0oaother".into(),
        private_key: secrecy::SecretString::from(
            std::fs::read_to_string("tests/fixtures/okta-test-key.pem").unwrap(),
        ),
        key_id: None,
        scopes: "okta.users.read okta.users.manage".into(),
    };
    bad.okta.auth = other;
    let clients = Clients::new(&bad, settings());
    let r = run_whole(&bad, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::SystemFailed);
    assert!(r.system_error.unwrap().contains("OAuth token refused"));
}

/// Fakes with `n` users whose Okta profiles all hold `value` for `attr`.
async fn many_with(n: usize, attr: &str, value: &str) -> Sandbox {
    let (mut okta, exts, nums) = many_users(n);
    for u in okta.iter_mut() {
        u.profile.insert(attr.into(), json!(value));
    }
    Sandbox::start(okta, exts, nums).await.unwrap()
}

/// `n` users whose Okta `primaryPhone` is stale (TELUS masters it: one Okta profile update
/// each), an Okta budget of `limit` per 1 s window, each update answered after `delay`; and
/// a store, config (no safety hold, `rate_limit_percent` as given) and clients for them.
async fn okta_writes_setup(
    n: usize,
    limit: u64,
    delay: Duration,
    percent: u8,
) -> (
    Sandbox,
    tempfile::TempDir,
    okta_telus_sync::config::Config,
    Store,
    Clients,
) {
    let sb = many_with(n, "primaryPhone", "stale").await;
    {
        let mut st = sb.okta.lock();
        st.rate_limit = limit;
        st.window_secs = 1;
        st.write_delay = delay;
    }
    let (dir, mut config, store, _) = setup(&sb);
    config.safety.max_changed_percent = 100;
    config.okta.rate_limit_percent = percent;
    let clients = Clients::new(&config, settings());
    (sb, dir, config, store, clients)
}

#[tokio::test]
async fn okta_writes_run_concurrently_within_the_budget_okta_reports() {
    // Over two windows of updates (a budget that is no multiple of the concurrency, so a
    // client that forgets its unanswered requests overshoots); 50 ms round trips; the whole
    // budget is this test's to spend.
    let (sb, _dir, config, store, clients) =
        okta_writes_setup(40, 18, Duration::from_millis(50), 100).await;
    assert_eq!(config.okta.write_concurrency, 4);
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        PassOutcome::Clean,
        "{:?}",
        report.system_error
    );
    let okta_updates = report
        .plan
        .actions
        .iter()
        .filter(|a| a.system == okta_telus_sync::model::System::Okta)
        .count();
    assert_eq!(okta_updates, 40);
    assert!(
        report.apply.failed_users.is_empty(),
        "{:?}",
        report.apply.failed_users
    );
    let st = sb.okta.lock();
    assert_eq!(st.count("POST", "/api/v1/users/"), 40, "one write per user");
    assert_eq!(st.peak_writes_in_flight, 4, "as many at once as configured");
    assert_eq!(st.rate_limited, 0, "never past the budget: no 429");
    assert_eq!(
        clients
            .okta
            .counters
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    drop(st);
    assert!(okta_field(&sb, "00u0000003", "primaryPhone").is_some_and(|p| p == "#1003"));
}

/// The first `n` seeded Okta user ids.
fn first_ids(sb: &Sandbox, n: usize) -> Vec<String> {
    sb.okta
        .lock()
        .users
        .iter()
        .take(n)
        .map(|u| u.id.clone())
        .collect()
}

#[tokio::test]
async fn app_scope_reads_the_apps_users_from_their_embedded_okta_profiles() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let ids = first_ids(&sb, 5);
    // Each assignment's app profile says something else: it must never be read as Okta's.
    let app_profile = json!({"department": "APP PROFILE", "email": "app@elsewhere.example"});
    sb.okta.lock().apps.insert(
        "0oaTelusApp".into(),
        ids.iter()
            .map(|id| (id.clone(), app_profile.as_object().unwrap().clone()))
            .collect(),
    );
    let (_dir, mut config, store, _) = setup(&sb);
    config.okta.scope = okta_telus_sync::config::OktaScope::App("0oaTelusApp".into());
    let clients = Clients::new(&config, settings());
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert_eq!(r.okta_read, 5, "{:?}", r.system_error);
    let listed = sb
        .okta
        .lock()
        .requests
        .iter()
        .any(|q| q.path == "/api/v1/apps/0oaTelusApp/users" && q.query.contains("expand=user"));
    assert!(listed);
    let text = format!("{:?}", r.plan);
    assert!(
        !text.contains("APP PROFILE") && !text.contains("app@elsewhere"),
        "{text}"
    );
    // The five are matched by their Okta emails, as with scope "all".
    assert!(r.plan.linked + r.plan.new_links.len() >= 5, "{:?}", r.plan);

    // An app the org does not have: Okta's 404, the pass a whole-system failure.
    config.okta.scope = okta_telus_sync::config::OktaScope::App("0oaGone".into());
    let clients = Clients::new(&config, settings());
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::SystemFailed);
    assert!(r.system_error.unwrap().contains("E0000007"));
}

#[tokio::test]
async fn group_scope_reads_only_the_groups_members() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let ids = first_ids(&sb, 3);
    sb.okta.lock().groups.insert("00gTelusUsers".into(), ids);
    let (_dir, mut config, store, _) = setup(&sb);
    config.okta.scope = okta_telus_sync::config::OktaScope::Group("00gTelusUsers".into());
    let clients = Clients::new(&config, settings());
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert_eq!(r.okta_read, 3, "{:?}", r.system_error);
    assert_eq!(
        sb.okta
            .lock()
            .count("GET", "/api/v1/groups/00gTelusUsers/users"),
        1
    );
}

#[tokio::test]
async fn okta_requests_keep_to_the_configured_share_of_each_limit() {
    let (sb, _dir, config, store, clients) = okta_writes_setup(24, 20, Duration::ZERO, 50).await;
    let defaults = sb.config(Policy::builtin(), std::path::Path::new("x.db"));
    assert_eq!(defaults.okta.rate_limit_percent, 50, "the default share");
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert!(report.apply.failed_users.is_empty());
    let st = sb.okta.lock();
    assert_eq!(st.count("POST", "/api/v1/users/"), 24);
    let windows = st.admitted_per_window("users-update");
    // Okta's first answer tells the limit: past it, at most half of each window is spent
    // (the first request of the pass is sent before any answer, so it may add one).
    assert!(
        windows.len() >= 3 && windows.iter().all(|n| *n <= 10 + 1),
        "{windows:?}"
    );
    assert!(windows[1..].iter().all(|n| *n <= 10), "{windows:?}");
    assert_eq!(st.rate_limited, 0);
}

/// A process started right after another paces from the budget that one left in the store
/// (requests left, window end), instead of from a full budget: no 429, so no penalty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_paces_from_the_budget_the_last_one_left() {
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut st = sb.telus.lock();
        st.window = Duration::from_secs(3);
        // One extension listing a window.
        st.limits.insert("Medium", 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let first = Clients::from_store(&config, settings(), &store).unwrap();
    run_whole(&config, &first, &store, false, DRY)
        .await
        .unwrap();
    drop(first);
    // The next process (an admin's `plan` right after the daemon's pass, say).
    let second = Clients::from_store(&config, settings(), &store).unwrap();
    let r = run_whole(&config, &second, &store, false, DRY)
        .await
        .unwrap();
    assert!(r.system_error.is_none(), "{:?}", r.system_error);
    assert_eq!(
        sb.telus.lock().rate_limited,
        0,
        "the second process drew a 429"
    );
    assert!(
        second
            .telus
            .counters
            .rate_waits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

/// An authorization-code session (no JWT), as `auth telus` leaves it, with 2-second access
/// tokens: the store and two "processes" (the daemon and an admin's command) on it.
async fn shared_session(
    sb: &Sandbox,
    jwt: bool,
) -> (tempfile::TempDir, okta_telus_sync::config::Config, Store) {
    use okta_telus_sync::telus::auth;
    sb.telus.lock().token_ttl = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    if !jwt {
        config.telus.jwt = None;
    }
    let store = Store::open(&config.store_path).unwrap();
    let pkce = auth::Pkce::new();
    let url = auth::authorize_url(
        &config.telus.url,
        &config.telus.client_id,
        &config.telus.brand_id,
        &config.telus.redirect_uri,
        "st",
        &pkce,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url.as_str()).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let code = auth::code_from_redirect(&location, "st").unwrap();
    let first = Clients::from_store(&config, settings(), &store).unwrap();
    first
        .telus
        .exchange_code(&code, &pkce.verifier, &config.telus.redirect_uri)
        .await
        .unwrap();
    (dir, config, store)
}

/// The daemon and an admin's command share the single-use refresh token: whichever
/// refreshes second takes the pair the first stored instead of spending a dead token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_by_another_process_is_taken_from_the_store_not_spent_again() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (_dir, config, store) = shared_session(&sb, false).await;
    // Both load the same pair at start.
    let daemon = Clients::from_store(&config, settings(), &store).unwrap();
    let admin = Clients::from_store(&config, settings(), &store).unwrap();
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    // The admin's `plan` refreshes (spends the refresh token, stores the new pair) ...
    let r = run_whole(&config, &admin, &store, false, DRY)
        .await
        .unwrap();
    assert!(r.system_error.is_none(), "{:?}", r.system_error);
    assert_eq!(sb.telus.lock().refreshes, 1);
    // ... then the daemon's pass needs a token: it takes the stored pair.
    let r = run_whole(&config, &daemon, &store, false, DRY)
        .await
        .unwrap();
    assert!(r.system_error.is_none(), "{:?}", r.system_error);
    assert_eq!(
        sb.telus.lock().reused_refresh_tokens,
        0,
        "a spent refresh token was sent"
    );
    // And once that one expires too, the daemon refreshes from it and goes on.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let r = run_whole(&config, &daemon, &store, false, DRY)
        .await
        .unwrap();
    assert!(r.system_error.is_none(), "{:?}", r.system_error);
    assert_eq!(sb.telus.lock().reused_refresh_tokens, 0);
}

/// A stored pair whose refresh token is dead (revoked, or spent by a process that could not
/// save its successor): with a JWT configured, the client signs in again with it instead of
/// failing every pass until a restart (and again after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_falls_back_to_the_jwt_grant() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    store
        .save_credentials(
            "telus",
            &okta_telus_sync::model::TokenPair {
                access_token: secrecy::SecretString::from("expired-access"),
                access_expires_at: 1,
                refresh_token: Some(secrecy::SecretString::from("dead-refresh")),
                refresh_expires_at: Some(chrono::Utc::now().timestamp() + 86_400),
            },
        )
        .unwrap();
    for _ in 0..2 {
        // A restart loads the stored pair again: it must not stay stuck on it.
        let clients = Clients::from_store(&config, settings(), &store).unwrap();
        let r = run_whole(&config, &clients, &store, false, DRY)
            .await
            .unwrap();
        assert!(r.system_error.is_none(), "{:?}", r.system_error);
    }
    let stored = store.credentials("telus").unwrap().unwrap();
    use secrecy::ExposeSecret as _;
    assert_ne!(
        stored.refresh_token.unwrap().expose_secret(),
        "dead-refresh",
        "the JWT grant's pair was stored"
    );
}

/// When the rotated pair cannot be saved, it is used from memory (the old refresh token is
/// already spent) and the failure is an ERROR in the log, not a failed pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_pair_that_cannot_be_saved_is_kept_in_memory() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let (dir, config, store) = shared_session(&sb, false).await;
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    drop(store);
    // The store's directory disappears: nothing can be saved there any more.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let elsewhere = Store::open_in_memory().unwrap();
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    for _ in 0..2 {
        let r = run_whole(&config, &clients, &elsewhere, false, DRY)
            .await
            .unwrap();
        assert!(r.system_error.is_none(), "{:?}", r.system_error);
    }
    assert_eq!(
        sb.telus.lock().refreshes,
        1,
        "the new pair was used from memory"
    );
    assert_eq!(sb.telus.lock().reused_refresh_tokens, 0);
}

/// The Okta share carries over between processes too: what one process spent of a bucket's
/// window is not spent again by the next one started within that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_keeps_within_the_okta_share_the_last_one_used() {
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut st = sb.okta.lock();
        // A limit of 2 a window: this tool's 50 % share is one listing page per window.
        st.rate_limit = 2;
        st.window_secs = 3;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    for _ in 0..2 {
        let clients = Clients::from_store(&config, settings(), &store).unwrap();
        let r = run_whole(&config, &clients, &store, false, DRY)
            .await
            .unwrap();
        assert!(r.system_error.is_none(), "{:?}", r.system_error);
    }
    let windows = sb.okta.lock().admitted_per_window("users-list");
    assert!(
        windows.iter().all(|n| *n <= 1),
        "share exceeded: {windows:?}"
    );
}

/// A penalty another process met mid-way (an admin's `plan` drew a 429 while the daemon
/// writes) reaches the running pass through the store: it stops sending to that group until
/// the penalty ends, since every request during a penalty restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_penalty_another_process_met_pauses_a_running_pass() {
    let (okta, mut exts, nums) = crate::many_users(30);
    for e in &mut exts {
        e.contact.insert("department".into(), json!("Elsewhere"));
    }
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    sb.telus.lock().write_delay = Duration::from_millis(40);
    // An account without bulk updates: one Medium PUT per user.
    sb.telus.lock().bulk = okta_telus_sync::sandbox::telus::BulkAvailability::FeatureNotAvailable;
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let other = Store::open(&config.store_path).unwrap();
    let path = "/restapi/v1.0/account/~/extension/";
    let pass = run_whole(&config, &clients, &store, false, PassOptions::default());
    let meddle = async {
        // Once the pass writes, another process stores a 1.5 s penalty on Medium.
        let started = std::time::Instant::now();
        while sb.telus.lock().count("PUT", path) < 3 {
            assert!(started.elapsed() < Duration::from_secs(30), "no PUT came");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let set = std::time::Instant::now();
        let until = chrono::Utc::now().timestamp_millis() + 1_500;
        other.save_telus_penalty("Medium", until).unwrap();
        set
    };
    let (r, set) = tokio::join!(pass, meddle);
    let r = r.unwrap();
    assert_eq!(r.apply.failed, 0, "{:?}", r.apply.failed_users);
    let log = sb.telus.faults.lock().unwrap().log.clone();
    let during: Vec<_> = log
        .iter()
        .filter(|(m, p, _, at)| {
            m == "PUT"
                && p.starts_with(path)
                && *at > set + Duration::from_millis(400)
                && *at < set + Duration::from_millis(1_450)
        })
        .collect();
    assert!(
        during.is_empty(),
        "{} writes during the penalty",
        during.len()
    );
    assert!(
        clients
            .telus
            .counters
            .rate_waits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

/// A server's `Retry-After` of 2^64 seconds neither crashes the process (an overflowing
/// clock) nor becomes a penalty for good: it is capped at an hour, and a stored penalty
/// beyond the cap (a year, from an older version or a hostile answer) is ignored.
#[tokio::test]
async fn server_given_waits_are_capped_and_absurd_stored_penalties_ignored() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.telus.inject(
        "GET",
        "/restapi/v1.0/account/~/extension",
        FaultKind::TooManyRequests {
            retry_after: u64::MAX,
        },
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        PassOutcome::SystemFailed,
        "the hour is over max_rate_wait"
    );
    let stored: i64 = store.telus_penalty("Medium").unwrap().unwrap();
    let hour_ms = 3_600_000 + 10_000;
    assert!(
        stored <= chrono::Utc::now().timestamp_millis() + hour_ms,
        "{stored}"
    );

    // A year-long penalty in a store is not honoured by the next process.
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let year = chrono::Utc::now().timestamp_millis() + 365 * 86_400_000;
    store.save_telus_penalty("Medium", year).unwrap();
    store.save_telus_budget("Medium", 0, year).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    let r = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert!(r.system_error.is_none(), "{:?}", r.system_error);
}
