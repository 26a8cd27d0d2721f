//! End-to-end tests: real passes over real HTTP on loopback against the sandbox fakes, with a
//! temporary SQLite file; and the real binary for CLI behaviour and exit codes.

use okta_telus_sync::config::default_policy;
use okta_telus_sync::daemon::pass::{Clients, PassOptions, PassOutcome, run_one_pass};
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::sandbox::okta::{FakeOktaUser, LinkStyle};
use okta_telus_sync::sandbox::telus::{FakeExtension, FakeNumber};
use okta_telus_sync::sandbox::{self, Sandbox};
use okta_telus_sync::store::{HistoryFilter, Store};
use serde_json::{Value, json};
use std::time::Duration;

fn settings() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(5),
        attempts: 2,
        backoff: Duration::from_millis(10),
        max_rate_wait: Duration::from_secs(5),
    }
}

fn okta_writes(sb: &Sandbox) -> usize {
    sb.okta.lock().count("POST", "/api/v1/users/")
}

fn telus_writes(sb: &Sandbox) -> usize {
    let st = sb.telus.lock();
    st.count("PUT", "/restapi/v1.0/") + st.count("POST", "/restapi/v1.0/")
}

fn contact_field(sb: &Sandbox, ext: i64, path: &[&str]) -> Option<String> {
    let st = sb.telus.lock();
    let mut v: Value = Value::Object(st.extension(ext)?.contact.clone());
    for p in path {
        v = v.get(p)?.clone();
    }
    v.as_str().map(str::to_string)
}

fn okta_field(sb: &Sandbox, id: &str, attr: &str) -> Option<String> {
    let st = sb.okta.lock();
    st.user(id)?
        .profile
        .get(attr)
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[tokio::test]
async fn first_pass_converges_both_sides_and_second_pass_writes_nothing() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());

    let first = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    // A duplicate email and an unreadable phone: those users failed, the rest converged.
    assert_eq!(first.outcome, PassOutcome::UsersFailed);
    assert_eq!(first.outcome.exit_code(), 1);
    assert_eq!(first.apply.failed, 0);
    // Every planned change, plus the created user's primaryPhone written back to Okta.
    assert_eq!(first.apply.applied, first.plan.change_count() + 1);
    assert_eq!(first.plan.count("create"), 1);
    assert_eq!(first.plan.count("deactivate"), 1);

    // Lifecycle: the Okta-only user now exists in TELUS, linked, and Okta knows its extension;
    // the suspended user's extension is disabled, not deleted.
    let isabelle = sb
        .telus
        .lock()
        .extension_by_email("isabelle.cote@northwind.ca")
        .cloned()
        .expect("created");
    assert_eq!(isabelle.status, "Enabled");
    assert_eq!(
        isabelle.contact["businessAddress"]["state"].as_str(),
        Some("ON")
    );
    assert_eq!(
        okta_field(&sb, "00u9isa", "primaryPhone"),
        Some(format!("#{}", isabelle.extension_number))
    );
    assert_eq!(sb.telus.lock().extension(62010).unwrap().status, "Disabled");

    // Okta-mastered attributes reached TELUS.
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Marketing")
    );
    assert_eq!(
        contact_field(&sb, 62004, &["businessAddress", "city"]).as_deref(),
        Some("Toronto")
    );
    // The address was sent whole: the unchanged fields survived RingCentral's replace.
    assert_eq!(
        contact_field(&sb, 62004, &["businessAddress", "zip"]).as_deref(),
        Some("M5X 1A9")
    );
    assert_eq!(
        contact_field(&sb, 62005, &["mobilePhone"]).as_deref(),
        Some("+14035550105")
    );
    assert_eq!(
        contact_field(&sb, 62011, &["lastName"]).as_deref(),
        Some("O'Brien")
    );
    // Reformatted-but-equal values were left alone.
    assert_eq!(
        contact_field(&sb, 62002, &["businessAddress", "state"]).as_deref(),
        Some("QC")
    );
    // TELUS-mastered primaryPhone reached Okta, with the template rule.
    assert_eq!(
        okta_field(&sb, "00u5emm", "primaryPhone").as_deref(),
        Some("+14035550299#105")
    );
    assert_eq!(
        okta_field(&sb, "00u6far", "primaryPhone").as_deref(),
        Some("#106")
    );
    // The duplicate email's user got nothing; the invalid phone was not written.
    assert_eq!(okta_field(&sb, "00u7gra", "primaryPhone"), None);
    assert_eq!(
        contact_field(&sb, 62008, &["mobilePhone"]).as_deref(),
        Some("+14185550108")
    );
    // Only changed attributes were sent to Okta.
    {
        let st = sb.okta.lock();
        for r in st.requests.iter().filter(|r| r.method == "POST") {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(
                body["profile"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .collect::<Vec<_>>(),
                vec!["primaryPhone"],
                "{}",
                r.body
            );
        }
    }

    let history = store.history(&HistoryFilter::default()).unwrap();
    assert_eq!(history.len(), first.apply.applied);
    assert!(history.iter().all(|h| h.outcome == "applied"));
    assert_eq!(store.unfinished_count().unwrap(), 0);

    let (ow, tw) = (okta_writes(&sb), telus_writes(&sb));
    let second = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(second.plan.change_count(), 0, "{:?}", second.plan.actions);
    assert_eq!(okta_writes(&sb), ow);
    assert_eq!(telus_writes(&sb), tw);
    // The token was reused across passes.
    assert_eq!(sb.telus.lock().count("POST", "/restapi/oauth/token"), 1);
}

#[tokio::test]
async fn dry_run_writes_nothing_anywhere() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_one_pass(
        &config,
        &clients,
        &store,
        PassOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(report.plan.change_count() >= 8);
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), 0);
    insta::assert_snapshot!(
        "sandbox_dry_run_plan",
        okta_telus_sync::report::plan_text(&report.plan)
    );
    assert!(store.recent_passes(10).unwrap().is_empty());
    assert!(store.links().unwrap().is_empty());
}

fn many_users(n: usize) -> (Vec<FakeOktaUser>, Vec<FakeExtension>, Vec<FakeNumber>) {
    let mut okta = Vec::new();
    let mut exts = Vec::new();
    let mut nums = Vec::new();
    for i in 0..n {
        let email = format!("user{i:05}@northwind.ca");
        let dept = if i % 7 == 0 { "Sales" } else { "Support" };
        okta.push(FakeOktaUser {
            id: format!("00u{i:07}"),
            status: "ACTIVE".into(),
            last_updated: "2026-11-01T09:00:00.000Z".into(),
            profile: json!({
                "login": email, "email": email, "firstName": "User", "lastName": format!("N{i}"),
                "department": dept, "primaryPhone": format!("#{}", 1000 + i),
            })
            .as_object()
            .unwrap()
            .clone(),
        });
        exts.push(FakeExtension {
            id: 100_000 + i as i64,
            extension_number: format!("{}", 1000 + i),
            status: "Enabled".into(),
            kind: "User".into(),
            contact: json!({"firstName": "User", "lastName": format!("N{i}"), "email": email, "department": "Support"})
                .as_object()
                .unwrap()
                .clone(),
        });
        if i % 2 == 0 {
            nums.push(FakeNumber {
                id: 500_000 + i as i64,
                phone_number: format!("+1604555{:04}", i % 10_000),
                usage_type: "DirectNumber".into(),
                primary: true,
                extension_id: Some(100_000 + i as i64),
            });
        }
    }
    (okta, exts, nums)
}

async fn paging_case(style: LinkStyle) {
    let (okta, exts, nums) = many_users(2_100);
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    sb.okta.lock().link_style = style;
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_one_pass(
        &config,
        &clients,
        &store,
        PassOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.okta_read, 2_100);
    assert_eq!(report.telus_read, 2_100);
    assert_eq!(report.plan.linked, 2_100);
    // 2,100 users: 11 Okta pages of 200, 3 extension pages and 2 number pages of 1000.
    assert_eq!(sb.okta.lock().count("GET", "/api/v1/users"), 11);
    assert_eq!(
        sb.telus
            .lock()
            .count("GET", "/restapi/v1.0/account/~/extension"),
        3
    );
    assert_eq!(
        sb.telus
            .lock()
            .count("GET", "/restapi/v1.0/account/~/phone-number"),
        2
    );
    // Every 7th user's department differs; every even user has a direct number to write back.
    let to_telus = report
        .plan
        .actions
        .iter()
        .filter(|a| a.system == okta_telus_sync::model::System::Telus)
        .count();
    assert_eq!(to_telus, 2_100usize.div_ceil(7));
}

#[tokio::test]
async fn paging_follows_separate_link_headers_and_navigation() {
    paging_case(LinkStyle::Separate).await;
}

#[tokio::test]
async fn paging_follows_a_comma_joined_link_header() {
    paging_case(LinkStyle::Joined).await;
}

#[tokio::test]
async fn a_rejected_write_is_journalled_with_its_explanation_and_others_continue() {
    let sb = Sandbox::start_seeded().await.unwrap();
    // An email TELUS will refuse: Okta masters email, so the write is attempted and rejected.
    {
        let mut st = sb.okta.lock();
        let ana = st.users.iter_mut().find(|u| u.id == "00u1ana").unwrap();
        ana.profile
            .insert("email".into(), json!("ana.silva-at-northwind.ca"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    // Link Ana by hand, as an earlier pass would have.
    store
        .add_links(&[okta_telus_sync::model::Link {
            okta_id: okta_telus_sync::model::OktaId("00u1ana".into()),
            ext_id: okta_telus_sync::model::ExtId("62001".into()),
        }])
        .unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, PassOutcome::UsersFailed);
    assert!(report.apply.failed >= 1);
    let failed = store
        .history(&HistoryFilter {
            user_email: Some("ana.silva-at-northwind.ca".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|h| h.outcome == "failed"));
    assert_eq!(failed[0].error_code.as_deref(), Some("CMN-101"));
    assert_eq!(
        failed[0].explanation.as_deref(),
        Some("The [contact.email] is invalid. Please correct the value in Okta/Active Directory.")
    );
    // The other users' changes still went through.
    assert_eq!(
        contact_field(&sb, 62004, &["businessAddress", "city"]).as_deref(),
        Some("Toronto")
    );
    // The failed attribute has no baseline, so the next pass tries again.
    let again = run_one_pass(
        &config,
        &clients,
        &store,
        PassOptions {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        again.plan.actions.iter().any(|a| a
            .user
            .okta_id
            .as_ref()
            .is_some_and(|i| i.0 == "00u1ana"))
    );
}

#[tokio::test]
async fn a_bad_okta_token_ends_the_pass_as_a_system_failure() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.okta.lock().token = "rotated".into();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let report = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, PassOutcome::SystemFailed);
    assert_eq!(report.outcome.exit_code(), 4);
    assert!(report.system_error.unwrap().contains("E0000011"));
    assert_eq!(telus_writes(&sb), 0);
    let passes = store.recent_passes(1).unwrap();
    assert_eq!(passes[0].summary.outcome, "system-failed");
}

#[tokio::test]
async fn a_paging_link_to_another_host_is_refused() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header(
                    "link",
                    "<https://evil.example/api/v1/users?after=x>; rel=\"next\"",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(default_policy(), &dir.path().join("s.db"));
    config.okta.url = url::Url::parse(&server.uri()).unwrap();
    let client = okta_telus_sync::okta::Client::new(&config.okta, settings());
    let err = client.fetch_users(None).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

// ---- the real binary ----

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_okta-telus-sync"))
}

fn write_config(dir: &std::path::Path, sb: &Sandbox, extra: &str) -> std::path::PathBuf {
    let path = dir.join("sync.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[okta]
url = "{}"
token = "{}"

[telus]
url = "{}"
client_id = "{}"
client_secret = "{}"
jwt = "{}"

[store]
path = "state.db"
{extra}
"#,
            sb.okta.url(),
            sandbox::OKTA_TOKEN,
            sb.telus.url(),
            sandbox::TELUS_CLIENT_ID,
            sandbox::TELUS_CLIENT_SECRET,
            sandbox::TELUS_JWT
        ),
    )
    .unwrap();
    path
}

async fn run_bin(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || bin().args(args).output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sync_exit_codes_follow_the_design() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();

    // plan writes nothing and prints the JSON document.
    let out = run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "plan".into(),
        "--json".into(),
    ])
    .await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["changes"].as_u64().unwrap() >= 8);
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), 0);

    // The seeded directory has a duplicate email: some users fail, exit 1.
    let out = run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(sandbox::OKTA_TOKEN) && !stderr.contains(sandbox::TELUS_JWT));

    // Remove the duplicate and fix the phone: everything applies, exit 0.
    {
        let mut st = sb.telus.lock();
        st.extensions.retain(|e| e.id != 62017);
    }
    {
        let mut st = sb.okta.lock();
        let hugo = st.users.iter_mut().find(|u| u.id == "00u8hug").unwrap();
        hugo.profile
            .insert("mobilePhone".into(), json!("418 555 0108"));
    }
    let out = run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Grace is linked now; her extension has no direct number.
    assert_eq!(
        okta_field(&sb, "00u7gra", "primaryPhone").as_deref(),
        Some("#107")
    );

    // A whole system failing exits 4.
    sb.okta.lock().token = "revoked".into();
    let out = run_bin(vec!["--config".into(), cfg, "sync".into()]).await;
    assert_eq!(out.status.code(), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_config_errors_exit_2_naming_the_key() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &sb,
        "[safety]\nmax_deactivations = \"ten\"\n[attributes.primaryPhone]\nmaster = \"okta\"\n",
    )
    .display()
    .to_string();
    for cmd in ["check-config", "sync"] {
        let out = run_bin(vec!["--config".into(), cfg.clone(), cmd.into()]).await;
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("safety.max_deactivations"), "{stderr}");
    }
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = write_config(
        dir2.path(),
        &sb,
        "[attributes.primaryPhone]\nmaster = \"okta\"\n",
    )
    .display()
    .to_string();
    let out = run_bin(vec!["--config".into(), cfg2, "check-config".into()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("attributes.primaryPhone.master"));

    let out = run_bin(vec![
        "--config".into(),
        "/nonexistent/sync.toml".into(),
        "check-config".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = run_bin(vec!["sync".into(), "--no-such-flag".into()]).await;
    assert_eq!(out.status.code(), Some(2));

    let good = write_config(dir2.path(), &sb, "").display().to_string();
    let out = run_bin(vec!["--config".into(), good, "check-config".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn too_many_deactivations_hold_the_pass_until_approved() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = sb.config(default_policy(), &dir.path().join("s.db"));
    config.safety.max_deactivations = 0;
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    let held = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(held.outcome, PassOutcome::Held);
    assert_eq!(held.outcome.exit_code(), 3);
    assert!(
        held.plan.held[0].contains("max_deactivations"),
        "{:?}",
        held.plan.held
    );
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), 0);
    assert!(store.links().unwrap().is_empty());
    assert_eq!(store.recent_passes(1).unwrap()[0].summary.outcome, "held");

    let approved = run_one_pass(
        &config,
        &clients,
        &store,
        PassOptions {
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(approved.outcome, PassOutcome::UsersFailed);
    assert_eq!(sb.telus.lock().extension(62010).unwrap().status, "Disabled");
}

#[tokio::test]
async fn an_empty_directory_where_users_were_known_holds_the_pass() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    // Okta suddenly answers with nobody (a token narrowed to an empty scope, say).
    sb.okta.lock().users.clear();
    let writes = telus_writes(&sb);
    let held = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(held.outcome, PassOutcome::Held);
    assert!(
        held.plan
            .held
            .iter()
            .any(|r| r.contains("Okta returned no users"))
    );
    assert_eq!(telus_writes(&sb), writes, "no mass deactivation");
    // The empty read was not stored, so the hold persists on the next pass.
    let again = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, PassOutcome::Held);
}

#[tokio::test]
async fn a_user_back_in_okta_is_reactivated_and_a_hand_disabled_one_is_left_alone() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(sb.telus.lock().extension(62010).unwrap().status, "Disabled");
    // Jack is unsuspended; Liam's extension is disabled by hand in the TELUS portal.
    {
        let mut st = sb.okta.lock();
        st.users
            .iter_mut()
            .find(|u| u.id == "00uAjac")
            .unwrap()
            .status = "ACTIVE".into();
    }
    {
        let mut st = sb.telus.lock();
        st.extensions
            .iter_mut()
            .find(|e| e.id == 62012)
            .unwrap()
            .status = "Disabled".into();
    }
    let report = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.plan.count("reactivate"), 1);
    assert_eq!(sb.telus.lock().extension(62010).unwrap().status, "Enabled");
    assert_eq!(sb.telus.lock().extension(62012).unwrap().status, "Disabled");
    assert!(
        report
            .plan
            .problems
            .iter()
            .any(|p| p.user.email == "liam.fraser@northwind.ca"
                && p.kind == okta_telus_sync::reconcile::ProblemKind::DisabledElsewhere)
    );
}

#[tokio::test]
async fn a_hand_edit_in_telus_is_reported_as_drift_and_overwritten() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(default_policy(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    {
        let mut st = sb.telus.lock();
        let liam = st.extensions.iter_mut().find(|e| e.id == 62012).unwrap();
        liam.contact
            .insert("department".into(), json!("Facilities"));
    }
    let report = run_one_pass(&config, &clients, &store, PassOptions::default())
        .await
        .unwrap();
    let change = report
        .plan
        .actions
        .iter()
        .flat_map(|a| a.changes())
        .find(|c| c.attr == "department")
        .unwrap();
    assert_eq!(change.rule, okta_telus_sync::reconcile::Rule::Drift);
    assert_eq!(change.old.as_deref(), Some("Facilities"));
    assert_eq!(
        contact_field(&sb, 62012, &["department"]).as_deref(),
        Some("Operations")
    );
}
