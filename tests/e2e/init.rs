//! `init --from-okta-app` end to end against a fake org holding the built-in TELUS app as
//! Okta's guide sets it up: the written `sync.toml` passes `check-config`, plans exactly
//! what a hand-written config with the same rows plans, turns the untranslatable mapping
//! into a `sync = false` row listed to port by hand, writes `apply = "create"` for the
//! `DONT_PUSH` row; `--links` links by `externalId`; a still-pushing app draws the warning.

use crate::*;
use okta_telus_sync::sandbox::okta_apps::{BUILTIN_APP, install_builtin_app};

fn with_builtin_app(sb: &Sandbox) {
    let mut o = sb.okta.lock();
    install_builtin_app(&mut o);
    let ids: Vec<(String, serde_json::Map<String, Value>)> = o
        .users
        .iter()
        .map(|u| (u.id.clone(), serde_json::Map::new()))
        .collect();
    o.apps.insert(BUILTIN_APP.into(), ids);
    for (user, ext) in [
        ("00u1ana", "62001"),
        ("00u2ben", "62002"),
        ("00u3chl", "69999"),
    ] {
        o.external_ids
            .insert(format!("{BUILTIN_APP}/{user}"), ext.into());
    }
}

fn secrets_env(cmd: &mut std::process::Command) {
    cmd.env("OKTA_TELUS_SYNC__OKTA__TOKEN", sandbox::OKTA_TOKEN)
        .env(
            "OKTA_TELUS_SYNC__TELUS__CLIENT_SECRET",
            sandbox::TELUS_CLIENT_SECRET,
        )
        .env("OKTA_TELUS_SYNC__TELUS__JWT", sandbox::TELUS_JWT);
}

async fn run_env(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = bin();
        secrets_env(&mut cmd);
        cmd.args(args).output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_that_checks_and_plans_like_the_hand_written_one() {
    let sb = Sandbox::start_seeded().await.unwrap();
    with_builtin_app(&sb);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sync.toml");
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "init",
            "--from-okta-app",
            BUILTIN_APP,
            "--okta-url",
            &sb.okta.url(),
            "--out",
            &out.display().to_string(),
        ]
        .map(String::from)
        .to_vec()
    };
    let init = run_env(args(&out)).await;
    let summary = String::from_utf8_lossy(&init.stdout);
    assert_eq!(
        init.status.code(),
        Some(0),
        "{summary}{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(sandbox::OKTA_TOKEN), "no secret written");
    assert!(
        text.contains("telus = \"{directNumber}#{extensionNumber}\""),
        "{text}"
    );
    assert!(text.contains("master = [\"telus\", \"okta\"]"), "{text}");
    assert!(text.contains("apply = \"create\""), "{text}");
    assert!(text.contains(&format!("app_id = \"{BUILTIN_APP}\"")));
    assert!(
        summary.contains("mobilePhone") && summary.contains("null guard"),
        "{summary}"
    );
    assert!(summary.contains("Inherit from Okta"), "{summary}");
    let mobile = text
        .split("[attributes.mobilePhone]")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    assert!(
        mobile.contains("sync = false") && mobile.contains("port it by hand"),
        "{mobile}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file is not overwritten without --force.
    let again = run_env(args(&out)).await;
    assert_eq!(again.status.code(), Some(2));

    // `check-config` accepts it, the secrets coming from the environment.
    let check = run_env(vec![
        "--config".into(),
        out.display().to_string(),
        "check-config".into(),
    ])
    .await;
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Its plan equals the plan of a hand-written config with the same rows.
    // The same file with its secrets written in, loaded in this process.
    let filled = dir.path().join("filled.toml");
    let text = text
        .replacen(
            "[okta]\n",
            &format!("[okta]\ntoken = \"{}\"\n", sandbox::OKTA_TOKEN),
            1,
        )
        .replacen(
            "[telus]\n",
            &format!(
                "[telus]\nclient_secret = \"{}\"\njwt = \"{}\"\n",
                sandbox::TELUS_CLIENT_SECRET,
                sandbox::TELUS_JWT
            ),
            1,
        );
    std::fs::write(&filled, text).unwrap();
    let written = okta_telus_sync::config::load(&filled).unwrap();
    let mut by_hand = Policy::builtin();
    for r in by_hand.rules.iter_mut() {
        match r.okta_attr.as_str() {
            "primaryPhone" => {
                r.master = okta_telus_sync::reconcile::policy::Master::Priority(vec![
                    okta_telus_sync::model::System::Telus,
                    okta_telus_sync::model::System::Okta,
                ])
            }
            "department" => r.create_only = true,
            _ => {}
        }
    }
    by_hand.rules.retain(|r| r.okta_attr != "mobilePhone");
    let plan_of = |policy: Policy, features: okta_telus_sync::reconcile::policy::Features| {
        let sb = &sb;
        let dir = &dir;
        async move {
            let mut config = sb.config(policy, &dir.path().join(format!("{}.db", rand_name())));
            config.okta.scope = okta_telus_sync::config::OktaScope::App(BUILTIN_APP.into());
            config.policy.features = features;
            let store = Store::open(&config.store_path).unwrap();
            let clients = Clients::new(&config, settings());
            let r = run_whole(&config, &clients, &store, false, DRY)
                .await
                .unwrap();
            report::plan_json(&r.plan)
        }
    };
    assert_eq!(written.policy.rules.len(), by_hand.rules.len());
    let features = written.policy.features;
    assert!(!features.write_back, "PROFILE_MASTERING is off in the app");
    let a = plan_of(written.policy.clone(), features).await;
    let b = plan_of(by_hand, features).await;
    assert_eq!(a, b);
}

fn rand_name() -> String {
    format!("{:x}", rand::random::<u64>())
}

/// `--links` links each assignment whose `externalId` names an existing extension, reports
/// one that names none; a still-pushing built-in app draws the warning in `check-config
/// --connect` and `status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_links_by_external_id_and_a_pushing_app_is_warned_about() {
    let sb = Sandbox::start_seeded().await.unwrap();
    with_builtin_app(&sb);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "[telus]",
        &format!("app_id = \"{BUILTIN_APP}\"\nscope = \"app:{BUILTIN_APP}\"\n\n[telus]"),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let links = run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "init".into(),
        "--from-okta-app".into(),
        BUILTIN_APP.into(),
        "--links".into(),
    ])
    .await;
    let out = String::from_utf8_lossy(&links.stdout);
    assert_eq!(
        links.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&links.stderr)
    );
    assert!(out.contains("2 link(s)"), "{out}");
    assert!(out.contains("00u3chl → 69999"), "{out}");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let l = store.links().unwrap();
    assert!(
        l.iter()
            .any(|l| l.okta_id.0 == "00u1ana" && l.ext_id.0 == "62001")
    );
    assert_eq!(
        store
            .link_origins()
            .unwrap()
            .iter()
            .find(|(o, _)| o.as_deref() == Some("init --links"))
            .map(|(_, n)| *n),
        Some(2)
    );
    drop(store);
    let plan = run_bin(vec!["--config".into(), cfg.clone(), "plan".into()]).await;
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(out.contains("Links: 2 from init --links"), "{out}");
    let check = run_bin(vec![
        "--config".into(),
        cfg.clone(),
        "check-config".into(),
        "--connect".into(),
    ])
    .await;
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        out.contains(&format!(
            "built-in TELUS app {BUILTIN_APP} still has PUSH_NEW_USERS"
        )),
        "{out}"
    );
    run_bin(vec!["--config".into(), cfg.clone(), "sync".into()]).await;
    let status = run_bin(vec!["--config".into(), cfg.clone(), "status".into()]).await;
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("still has PUSH_NEW_USERS"), "{out}");
    assert!(out.contains("2 from init --links"), "{out}");
}
