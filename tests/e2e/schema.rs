//! Schema discovery against the fakes: `schema`, custom fields synced both ways, and
//! `check-config --connect` catching rows that cannot work before any write.

use crate::*;

const COST_ROW: &str =
    "[attributes.costCenter]\ntelus = \"customFields.Cost Center\"\nmaster = \"okta\"\n";

fn seed_cost_centers(sb: &Sandbox) {
    {
        let mut st = sb.okta.lock();
        for (id, cc) in [
            ("00u1ana", "4410"),
            ("00u2ben", "5520"),
            ("00u3chl", "6630"),
        ] {
            st.users
                .iter_mut()
                .find(|u| u.id == id)
                .unwrap()
                .profile
                .insert("costCenter".into(), json!(cc));
        }
    }
    let mut st = sb.telus.lock();
    // Ben's matches already; Chloé's differs; Ana has none in TELUS.
    st.custom_values
        .entry(62002)
        .or_default()
        .insert("cf1".into(), "5520".into());
    st.custom_values
        .entry(62003)
        .or_default()
        .insert("cf1".into(), "9999".into());
}

fn custom(sb: &Sandbox, ext: i64) -> Option<String> {
    sb.telus
        .lock()
        .custom_values
        .get(&ext)
        .and_then(|m| m.get("cf1").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_lists_base_and_custom_attributes_of_both_sides() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::write_config(dir.path(), &sb, COST_ROW)
        .display()
        .to_string();
    let out = crate::run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "schema".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let okta = doc["okta"].as_array().unwrap();
    let find = |list: &[Value], name: &str| {
        list.iter()
            .find(|a| a["name"] == json!(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(find(okta, "firstName")["custom"], json!(false));
    assert_eq!(find(okta, "costCenter")["custom"], json!(true));
    assert_eq!(find(okta, "costCenter")["mapped"], json!(true));
    assert_eq!(find(okta, "title")["mapped"], json!(false));
    let telus = doc["telus"].as_array().unwrap();
    assert_eq!(
        find(telus, "contact.department")["mapped_by"],
        json!("department")
    );
    let cc = find(telus, "customFields.Cost Center");
    assert_eq!(
        (
            cc["custom"].clone(),
            cc["id"].clone(),
            cc["mapped_by"].clone()
        ),
        (json!(true), json!("cf1"), json!("costCenter"))
    );
    assert_eq!(find(telus, "extensionNumber")["writable"], json!(false));
    let text = crate::run_bin(vec!["--config".into(), cfg, "schema".into()]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("* costCenter"), "{text}");
    assert!(
        text.contains("customFields.Cost Center") && text.contains("(by attributes.costCenter)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_custom_field_row_syncs_both_ways_and_converges() {
    let sb = Sandbox::start_seeded().await.unwrap();
    seed_cost_centers(&sb);
    // Frozen: the Company Directory leaves such a user out (spec: only Enabled, Disabled and
    // NotActivated extensions are returned), so its custom fields are unknown: left alone,
    // never read as empty, never read one user at a time.
    sb.telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.id == 62003)
        .unwrap()
        .status = "Frozen".into();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = crate::write_config(dir.path(), &sb, COST_ROW);
    let config = okta_telus_sync::config::load_with_env(&cfg_path, Vec::new()).unwrap();
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, settings());
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    // Okta masters it: pushed to TELUS by id.
    assert_eq!(custom(&sb, 62001).as_deref(), Some("4410"));
    assert_eq!(
        custom(&sb, 62003).as_deref(),
        Some("9999"),
        "unknown: left alone"
    );
    // The listing lacks customFields: they come from one Company Directory page for all,
    // never one read per user.
    let (directory, singles) = {
        let st = sb.telus.lock();
        let count = |p: &str| {
            st.requests
                .iter()
                .filter(|r| r.method == "GET" && r.path.starts_with(p))
                .count()
        };
        (
            count("/restapi/v1.0/account/~/directory/entries"),
            count("/restapi/v1.0/account/~/extension/"),
        )
    };
    assert_eq!((directory, singles), (1, 0));
    let writes = telus_writes(&sb) + okta_writes(&sb);
    // Thawed, the user is listed again and gets Okta's value.
    sb.telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.id == 62003)
        .unwrap()
        .status = "Enabled".into();
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(custom(&sb, 62003).as_deref(), Some("6630"));
    let writes = writes + 1;
    assert_eq!(telus_writes(&sb) + okta_writes(&sb), writes);
    let again = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(again.plan.change_count(), 0, "{:#?}", again.plan.actions);
    assert_eq!(telus_writes(&sb) + okta_writes(&sb), writes);

    // Now TELUS masters it: a value set in the TELUS portal flows back to Okta.
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("master = \"okta\"\n", "master = \"telus\"\n");
    std::fs::write(&cfg_path, text).unwrap();
    let config = okta_telus_sync::config::load_with_env(&cfg_path, Vec::new()).unwrap();
    sb.telus
        .lock()
        .custom_values
        .entry(62012)
        .or_default()
        .insert("cf1".into(), "7777".into());
    let clients = Clients::new(&config, settings());
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(
        okta_field(&sb, "00uCliam", "costCenter").as_deref(),
        Some("7777")
    );
    let last = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(last.plan.change_count(), 0, "{:#?}", last.plan.actions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_connect_names_a_row_whose_attribute_is_missing() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "[attributes.costCentre]\ntelus = \"customFields.Cost Centre\"\nmaster = \"okta\"\n";
    let cfg = crate::write_config(dir.path(), &sb, extra)
        .display()
        .to_string();
    let out = crate::run_bin(vec!["--config".into(), cfg.clone(), "check-config".into()]).await;
    assert_eq!(out.status.code(), Some(0), "offline, the row looks fine");
    let out = crate::run_bin(vec![
        "--config".into(),
        cfg,
        "check-config".into(),
        "--connect".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("attributes.costCentre: Okta's user profile has no attribute \"costCentre\""),
        "{err}"
    );
    assert!(err.contains("attributes.costCentre.telus: the TELUS account has no custom user field named \"Cost Centre\""), "{err}");
    // And a good config passes, having authenticated to both.
    let dir2 = tempfile::tempdir().unwrap();
    let good = crate::write_config(dir2.path(), &sb, COST_ROW)
        .display()
        .to_string();
    let out = crate::run_bin(vec![
        "--config".into(),
        good,
        "check-config".into(),
        "--connect".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("change events: Okta System Log readable"),
        "{text}"
    );
    assert!(
        text.contains("change events: TELUS WebSocket notifications allowed"),
        "{text}"
    );
    // Credentials that do not allow events: warned, not refused.
    sb.telus.lock().gateway.permitted = false;
    sb.okta.lock().logs_forbidden = true;
    let out = crate::run_bin(vec![
        "--config".into(),
        dir2.path().join("sync.toml").display().to_string(),
        "check-config".into(),
        "--connect".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: change events: Okta System Log not readable")
            && text.contains("okta.logs.read"),
        "{text}"
    );
    assert!(text.contains("WebSocketsSubscription permission"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_mastered_elsewhere_is_reported_before_any_write() {
    let sb = Sandbox::start_seeded().await.unwrap();
    sb.okta
        .lock()
        .masters
        .insert("primaryPhone".into(), "OVERRIDE".into());
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::write_config(dir.path(), &sb, "")
        .display()
        .to_string();
    let out = crate::run_bin(vec![
        "--config".into(),
        cfg,
        "check-config".into(),
        "--connect".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("attributes.primaryPhone"), "{err}");
    assert!(
        err.contains("E0000023") && err.contains("Inherit from Okta"),
        "{err}"
    );
    assert_eq!(
        okta_writes(&sb) + telus_writes(&sb),
        0,
        "nothing was written"
    );
    // A pass reads the schema too and leaves the attribute out of its Okta writes (Okta
    // would refuse each user's whole update with E0000023), naming the row once.
    let (_dir, config, store, clients) = setup(&sb);
    let report = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(report.plan.left_out.len(), 1, "{:?}", report.plan.left_out);
    let line = &report.plan.left_out[0];
    assert!(
        line.starts_with("attributes.primaryPhone: ") && line.contains("E0000023"),
        "{line}"
    );
    let refused = sb.okta.lock().requests.iter().any(|r| {
        r.method == "POST"
            && r.path.starts_with("/api/v1/users/")
            && r.body.contains("primaryPhone")
    });
    assert!(!refused, "primaryPhone was never sent");
    let rows = store
        .history(&HistoryFilter {
            attribute: Some("primaryPhone".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(rows.is_empty(), "{rows:#?}");
    assert!(
        report.apply.failed_users.is_empty(),
        "{:?}",
        report.apply.failed_users
    );
    let text = okta_telus_sync::report::plan_text(&report.plan);
    assert!(text.contains("LEFT OUT of Okta writes"), "{text}");
    let recorded = store.recent_passes(1).unwrap()[0].summary.message.clone();
    assert!(recorded.is_some_and(|m| m.contains("attributes.primaryPhone")));
}

/// Okta's default org: every attribute "Inherit from profile source" (PROFILE_MASTER). A
/// user sourced from Active Directory refuses API writes to them (403 E0000023), user by
/// user; everyone else takes them. The refused attribute fails for that user alone, the
/// user's other attributes still land, and later passes do not send it again until the
/// user's record or the attribute's master changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_sourced_user_refuses_write_back_alone_and_is_not_asked_again() {
    use okta_telus_sync::model::System;
    use okta_telus_sync::reconcile::policy::Master;
    let (mut okta, exts, nums) = crate::many_users(4);
    // Users 0 and 2 have a direct number Okta's primaryPhone lacks; user 0 is from AD.
    okta[0].provider = "ACTIVE_DIRECTORY";
    let sb = Sandbox::start(okta, exts, nums).await.unwrap();
    // The department inherits from Okta ("Inherit from Okta"): writable for every user.
    sb.okta
        .lock()
        .masters
        .insert("department".into(), "OKTA".into());
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::builtin();
    // TELUS masters the department: user 0's Okta update carries two attributes.
    policy
        .rules
        .iter_mut()
        .find(|r| r.okta_attr == "department")
        .unwrap()
        .master = Master::Priority(vec![System::Telus, System::Okta]);
    let config = sb.config(policy, &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, crate::settings());
    let ad = "00u0000000";

    // Pass 1: the refused attribute fails alone; the rest of the user's update lands.
    let r = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::UsersFailed, "{:?}", r.apply);
    assert_eq!(
        crate::okta_field(&sb, ad, "department").as_deref(),
        Some("Support")
    );
    assert_eq!(
        crate::okta_field(&sb, ad, "primaryPhone").as_deref(),
        Some("#1000")
    );
    assert_eq!(
        crate::okta_field(&sb, "00u0000002", "primaryPhone").as_deref(),
        Some("+16045550002#1002"),
        "an Okta-sourced user takes the write-back under the default PROFILE_MASTER"
    );
    let rows = store
        .history(&HistoryFilter {
            user_email: Some("user00000@northwind.ca".into()),
            attribute: Some("primaryPhone".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].outcome, Outcome::Failed);
    assert_eq!(rows[0].error_code.as_deref(), Some("E0000023"));
    assert!(
        rows[0]
            .explanation
            .as_deref()
            .is_some_and(|e| e.contains("ACTIVE_DIRECTORY") && e.contains("Inherit from Okta")),
        "{rows:?}"
    );
    assert_eq!(store.okta_refusals().unwrap().len(), 1);

    // Pass 2, full: nothing is sent to Okta; the refusal is listed, and the pass is clean.
    let before = okta_writes(&sb);
    let full = PassOptions::default();
    let r = run_whole(&config, &clients, &store, true, full)
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::Clean, "{:?}", r.plan.problems);
    assert_eq!(okta_writes(&sb), before, "the refused write was sent again");
    let text = okta_telus_sync::report::plan_text(&r.plan);
    assert!(
        text.contains("Known refusals") && text.contains("user00000@northwind.ca"),
        "{text}"
    );
    let status = okta_telus_sync::report::status_text(&config, &store).unwrap();
    assert!(status.contains("Known refusals"), "{status}");

    // The user's record changes in Okta: the write is tried again (and refused again).
    sb.okta.lock().touch(ad);
    let r = run_whole(&config, &clients, &store, true, full)
        .await
        .unwrap();
    assert_eq!(okta_writes(&sb), before + 1);
    assert_eq!(r.outcome, PassOutcome::UsersFailed);

    // `sync --retry-quarantined` tries it again too, whatever changed (refused again).
    let retry = PassOptions {
        retry_quarantined: true,
        ..PassOptions::default()
    };
    let r = run_whole(&config, &clients, &store, false, retry)
        .await
        .unwrap();
    assert_eq!(okta_writes(&sb), before + 2);
    assert_eq!(r.outcome, PassOutcome::UsersFailed);
    assert_eq!(store.okta_refusals().unwrap().len(), 1);

    // The admin sets the attribute to "Inherit from Okta": tried again, and it lands.
    sb.okta
        .lock()
        .masters
        .insert("primaryPhone".into(), "OKTA".into());
    let r = run_whole(&config, &clients, &store, true, full)
        .await
        .unwrap();
    assert_eq!(r.outcome, PassOutcome::Clean, "{:?}", r.apply);
    assert_eq!(
        crate::okta_field(&sb, ad, "primaryPhone").as_deref(),
        Some("+16045550000#1000")
    );
    assert!(store.okta_refusals().unwrap().is_empty());
}

/// A write that cannot be built here (a custom field the account does not have) is
/// journalled as not sent, with no server error code: it never reached TELUS.
#[tokio::test]
async fn a_write_that_cannot_be_built_is_not_journalled_as_a_server_error() {
    use okta_telus_sync::model::System;
    use okta_telus_sync::reconcile::policy::{AttrRule, Master, Normalize, TelusSide};
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut okta = sb.okta.lock();
        let ana = okta.users.iter_mut().find(|u| u.id == "00u1ana").unwrap();
        ana.profile.insert("costCenter".into(), json!("4410"));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::builtin();
    policy.rules.push(AttrRule {
        okta_attr: "costCenter".into(),
        telus: TelusSide::Field {
            path: "customFields.No Such Field".into(),
            writable: true,
        },
        master: Master::Priority(vec![System::Okta]),
        normalize: Normalize::None,
        create_only: false,
    });
    let config = sb.config(policy, &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, crate::settings());
    run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    let rows = store
        .history(&HistoryFilter {
            attribute: Some("costCenter".into()),
            ..Default::default()
        })
        .unwrap();
    let ana: Vec<_> = rows
        .iter()
        .filter(|r| r.user_email == "ana.silva@northwind.ca")
        .collect();
    assert_eq!(ana.len(), 1, "{rows:?}");
    assert_eq!(ana[0].outcome, Outcome::Failed);
    assert_eq!(ana[0].error_code, None, "{:?}", ana[0]);
    assert!(
        ana[0]
            .explanation
            .as_deref()
            .is_some_and(|e| e.starts_with("Not sent to TELUS")),
        "{:?}",
        ana[0]
    );
}
