//! Day one in a real org: every live Okta status, country names as TELUS records hold them,
//! phones written with an extension, known data problems, the session warning, and no
//! attribute value in the log above DEBUG.

use crate::*;
use okta_telus_sync::model::System;
use okta_telus_sync::reconcile::{Action, ProblemKind};

/// Okta-only users, one per status, copied from Isabelle (the seeded Okta-only user).
fn okta_only_in_every_status(sb: &Sandbox) -> Vec<(String, &'static str)> {
    let statuses = [
        "ACTIVE",
        "PROVISIONED",
        "RECOVERY",
        "PASSWORD_EXPIRED",
        "LOCKED_OUT",
        "STAGED",
        "SUSPENDED",
        "DEPROVISIONED",
    ];
    let mut st = sb.okta.lock();
    let isabelle = st.user("00u9isa").unwrap().clone();
    st.users.retain(|u| u.id != "00u9isa");
    let mut made = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let mut u = isabelle.clone();
        u.id = format!("00uS{i:03}");
        u.status = status.to_string();
        let email = format!("{}@northwind.ca", status.to_lowercase());
        u.profile.insert("email".into(), json!(email));
        u.profile.insert("login".into(), json!(email));
        made.push((email, *status));
        st.users.push(u);
    }
    made
}

/// A mixed-status directory creates exactly the live unmatched users; STAGED, SUSPENDED and
/// DEPROVISIONED ones are not created. Then a linked user deprovisioned in Okta, which
/// Okta's plain listing leaves out, is found by a read and disabled as deactivated.
#[tokio::test]
async fn a_mixed_status_directory_creates_exactly_the_live_users() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let made = okta_only_in_every_status(&sb);
    let (_dir, config, store, clients) = setup(&sb);
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    let created: Vec<&str> = first
        .plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, Action::Create { .. }))
        .map(|a| a.user.email.as_str())
        .collect();
    let live = [
        "active@northwind.ca",
        "locked_out@northwind.ca",
        "password_expired@northwind.ca",
        "provisioned@northwind.ca",
        "recovery@northwind.ca",
    ];
    assert_eq!(created, live, "{made:?}");
    {
        let st = sb.telus.lock();
        for (email, _) in &made {
            assert_eq!(
                st.extension_by_email(email).is_some(),
                live.contains(&email.as_str()),
                "{email}"
            );
        }
    }
    // The deprovisioned user was never listed (listUsers omits DEPROVISIONED).
    let listed_deprovisioned = first.okta_read;
    assert_eq!(listed_deprovisioned, 12 - 1 + 8 - 1, "{}", first.okta_read);

    // Ana is deactivated in Okta: the next full pass's listing leaves her out, a read by id
    // finds her DEPROVISIONED, and her TELUS user is disabled as deactivated (not as gone).
    {
        let mut st = sb.okta.lock();
        st.users
            .iter_mut()
            .find(|u| u.id == "00u1ana")
            .unwrap()
            .status = "DEPROVISIONED".into();
        st.touch("00u1ana");
    }
    let reads = sb.okta.lock().count("GET", "/api/v1/users/00u1ana");
    let full_pass = PassOptions::default();
    let full = run_whole(&config, &clients, &store, true, full_pass)
        .await
        .unwrap();
    assert_eq!(
        sb.okta.lock().count("GET", "/api/v1/users/00u1ana"),
        reads + 1,
        "read by id"
    );
    let deactivated: Vec<_> = full
        .plan
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::Deactivate { reason, .. } => Some((a.user.email.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        deactivated,
        [("ana.silva@northwind.ca", "deactivated in Okta")]
    );
    assert_eq!(sb.telus.lock().extension(62001).unwrap().status, "Disabled");
    // Stored DEPROVISIONED: the next full pass keeps it without reading it again.
    run_whole(&config, &clients, &store, true, full_pass)
        .await
        .unwrap();
    assert_eq!(
        sb.okta.lock().count("GET", "/api/v1/users/00u1ana"),
        reads + 1
    );
}

/// TELUS records holding "Canada", "USA" and "United States" against Okta's "CA" and "US",
/// and Okta phones written with an extension against TELUS's E.164: nothing to write.
#[tokio::test]
async fn country_names_and_phones_with_extensions_plan_no_write() {
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut st = sb.okta.lock();
        for (id, cc, phone) in [
            ("00u1ana", "CA", "(604) 555-0101 x123"),
            ("00u3chl", "US", "(604) 555-0103 ext. 7"),
            ("00u6far", "US", "+1 902 555 0106"),
        ] {
            let u = st.users.iter_mut().find(|u| u.id == id).unwrap();
            u.profile.insert("countryCode".into(), json!(cc));
            u.profile.insert("mobilePhone".into(), json!(phone));
        }
    }
    {
        let mut st = sb.telus.lock();
        for (ext, country) in [(62001, "Canada"), (62003, "USA"), (62006, "United States")] {
            let e = st.extensions.iter_mut().find(|e| e.id == ext).unwrap();
            e.contact["businessAddress"]["country"] = json!(country);
        }
    }
    let (_dir, config, store, clients) = setup(&sb);
    let plan = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap()
        .plan;
    let touched: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .flat_map(|a| {
            a.changes()
                .iter()
                .map(move |c| (a.user.email.as_str(), c.attr.as_str()))
        })
        .filter(|(_, attr)| *attr == "countryCode" || *attr == "mobilePhone")
        // Isabelle is created; Emma's mobile is missing in TELUS (seeded differences).
        .filter(|(who, _)| !who.starts_with("isabelle") && !who.starts_with("emma"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    let notes: Vec<&str> = plan
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::ExtensionLeftOut)
        .map(|p| p.user.email.as_str())
        .collect();
    assert_eq!(notes, ["ana.silva@northwind.ca", "chloe.wong@northwind.ca"]);
    // A country changed in Okta is written to TELUS as its name.
    sb.okta
        .lock()
        .users
        .iter_mut()
        .find(|u| u.id == "00u1ana")
        .unwrap()
        .profile
        .insert("countryCode".into(), json!("FR"));
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        contact_field(&sb, 62001, &["businessAddress", "country"]).as_deref(),
        Some("France")
    );
    let again = run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    assert!(
        !again
            .plan
            .actions
            .iter()
            .any(|a| a.changes().iter().any(|c| c.attr == "countryCode")),
        "the written name reads back as the code: {:#?}",
        again.plan.actions
    );
}

/// Okta refuses one attribute of a write-back with 400 E0000001 naming it: the user's other
/// attributes land in the same pass; the next pass neither sends it nor fails; a changed
/// value is sent again and lands.
#[tokio::test]
async fn an_okta_e0000001_on_one_field_is_a_known_data_problem() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let policy = {
        let mut p = Policy::builtin();
        // Emma's TELUS department goes to Okta too (a TELUS-mastered row besides primaryPhone).
        for r in &mut p.rules {
            if r.okta_attr == "department" {
                r.master =
                    okta_telus_sync::reconcile::policy::Master::Priority(vec![System::Telus]);
            }
        }
        p
    };
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(policy, &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    // Emma's Okta record refuses primaryPhone (a pattern her org set on the attribute).
    sb.okta.inject(
        "POST",
        "/api/v1/users/00u5emm",
        FaultKind::Error {
            status: 400,
            body: r#"{"errorCode":"E0000001","errorSummary":"Api validation failed: profile","errorLink":"E0000001","errorId":"oae1","errorCauses":[{"errorSummary":"primaryPhone: Does not match required pattern"}]}"#.into(),
        },
        1,
    );
    sb.telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.id == 62005)
        .unwrap()
        .contact
        .insert("department".into(), json!("Field Operations"));
    let first = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        statuses(&sb.okta.faults, "POST", "/api/v1/users/00u5emm"),
        [400, 200],
        "the refusal fired, then the department went alone"
    );
    assert_eq!(first.outcome, PassOutcome::UsersFailed);
    // The department landed without the refused attribute, in the same pass.
    assert_eq!(
        okta_field(&sb, "00u5emm", "department").as_deref(),
        Some("Field Operations")
    );
    assert_eq!(okta_field(&sb, "00u5emm", "primaryPhone"), None);
    let d = store.data_problems().unwrap();
    assert_eq!(
        d.iter()
            .map(|d| (d.email.as_str(), d.attr.as_str(), d.code.as_str()))
            .collect::<Vec<_>>(),
        [
            ("emma.roy@northwind.ca", "primaryPhone", "E0000001"),
            ("hugo.gagnon@northwind.ca", "mobilePhone", "invalid-value")
        ]
    );
    // Unchanged: not sent, not failed (the seeded duplicate email aside).
    let posts = sb.okta.lock().count("POST", "/api/v1/users/00u5emm");
    let second = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(sb.okta.lock().count("POST", "/api/v1/users/00u5emm"), posts);
    assert!(
        second
            .plan
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::DataProblem && p.user.email == "emma.roy@northwind.ca")
    );
    assert_eq!(second.apply.failed, 0);
    // `sync --retry-quarantined` tries every data problem again: this one lands now.
    let retried = run_whole(
        &config,
        &clients,
        &store,
        false,
        PassOptions {
            retry_quarantined: true,
            ..PassOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        sb.okta.lock().count("POST", "/api/v1/users/00u5emm"),
        posts + 1
    );
    assert_eq!(
        okta_field(&sb, "00u5emm", "primaryPhone").as_deref(),
        Some("+14035550299#105")
    );
    // Hugo's is still invalid: reported and failed again, then known again.
    assert!(
        retried
            .plan
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::InvalidValue)
    );
    assert!(
        store
            .data_problems()
            .unwrap()
            .iter()
            .all(|d| d.email == "hugo.gagnon@northwind.ca")
    );
}

/// The real binary's `sync` at the default INFO level, with values planted in each kind of
/// problem: an unparseable phone, a hand edit in TELUS (drift), a department TELUS refuses as
/// too long, a value Okta refuses: none of the values reaches stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_value_reaches_the_log_at_info() {
    let sb = Sandbox::start_seeded().await.unwrap();
    // A department this account refuses (values over the spec's bounds never leave the client).
    let long_dept = "PlantedQQQ-refused".to_string();
    sb.telus.lock().refused_values = vec![("department".into(), long_dept.clone())];
    {
        let mut st = sb.okta.lock();
        let set =
            |st: &mut okta_telus_sync::sandbox::okta::OktaState, id: &str, k: &str, v: &str| {
                st.users
                    .iter_mut()
                    .find(|u| u.id == id)
                    .unwrap()
                    .profile
                    .insert(k.into(), json!(v));
            };
        set(&mut st, "00u8hug", "mobilePhone", "555-0199");
        // Isabelle is created in TELUS: the create path reports it too.
        set(&mut st, "00u9isa", "mobilePhone", "555-0177");
        set(&mut st, "00u2ben", "department", &long_dept);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    let run = |cfg: String| async move {
        tokio::task::spawn_blocking(move || {
            bin()
                .args(["--config", &cfg, "sync"])
                .env("RUST_LOG", "info")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let first = run(cfg.clone()).await;
    // A hand edit in TELUS since, reported as drift on the next pass.
    sb.telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.id == 62012)
        .unwrap()
        .contact
        .insert("department".into(), json!("PlantedDrift"));
    let second = run(cfg).await;
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(stderr.contains("user not synced"), "{stderr}");
    assert!(stderr.contains("value refused as invalid"), "{stderr}");
    for planted in ["555-0199", "555-0177", "PlantedQQQ", "PlantedDrift"] {
        assert!(!stderr.contains(planted), "{planted} in the log:\n{stderr}");
    }
    assert!(
        sb.telus
            .lock()
            .extension(62002)
            .unwrap()
            .contact
            .get("department")
            .is_some_and(|d| d == "Finance"),
        "the long department was refused"
    );
}

/// Right after a JWT grant (RingCentral's refresh token lives 603917 s, under 7 days),
/// `status` gives no `auth telus` advice; an authorization-code session that no process
/// refreshed for six days warns, and its gauge says so.
#[tokio::test]
async fn the_session_warning_comes_only_when_the_session_can_lapse() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::from_store(&config, settings(), &store).unwrap();
    run_whole(&config, &clients, &store, false, DRY)
        .await
        .unwrap();
    let pair = store
        .credentials("telus")
        .unwrap()
        .expect("the JWT grant's pair is stored");
    let left = pair.refresh_expires_at.unwrap() - chrono::Utc::now().timestamp();
    assert!(left < 7 * 86_400 && left > 6 * 86_400, "{left}");
    let status = okta_telus_sync::report::status_text(&config, &store).unwrap();
    assert!(!status.contains("auth telus"), "{status}");
    assert!(!status.contains("WARNING"), "{status}");
    assert!(status.contains("renews itself"), "{status}");

    // An authorization-code session (no JWT) left unrefreshed for six days.
    let mut code_config = config.clone();
    code_config.telus.jwt = None;
    let mut stale = pair.clone();
    stale.refresh_expires_at = Some(chrono::Utc::now().timestamp() + 603_917 - 6 * 86_400);
    store.save_credentials("telus", &stale).unwrap();
    let status = okta_telus_sync::report::status_text(&code_config, &store).unwrap();
    assert!(status.contains("WARNING"), "{status}");
    assert!(status.contains("auth telus"), "{status}");
    assert!(okta_telus_sync::report::session_assessment(&code_config, Some(&stale)).at_risk);
    // Refreshed by a pass just now: healthy.
    stale.refresh_expires_at = Some(chrono::Utc::now().timestamp() + 603_917);
    store.save_credentials("telus", &stale).unwrap();
    let status = okta_telus_sync::report::status_text(&code_config, &store).unwrap();
    assert!(!status.contains("WARNING"), "{status}");
}
