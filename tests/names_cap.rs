//! The process-wide field-name table under a flood of names from a server. Its own test
//! binary (so its own process): the table is never emptied, so filling it here cannot
//! disturb any other test.

use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::pass::{PassOptions, run_whole};
use okta_telus_sync::reconcile::policy::Policy;
use okta_telus_sync::sandbox::Sandbox;
use okta_telus_sync::store::Store;
use serde_json::Value;

/// A hostile (or merely enormous) Okta profile: 4,200 distinct attribute names on the first
/// user, sorted before every mapped name so they are numbered first. A mapped value must
/// never be lost to the cap: losing one would read as empty and plan a clearing write.
#[tokio::test]
async fn a_flood_of_names_never_loses_a_mapped_value() {
    let sb = Sandbox::start_seeded().await.unwrap();
    {
        let mut okta = sb.okta.lock();
        let first = okta
            .users
            .iter_mut()
            .min_by(|a, b| a.id.cmp(&b.id))
            .unwrap();
        for i in 0..4200 {
            first
                .profile
                .insert(format!("aaHostile{i:05}"), Value::String("x".into()));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = sb.config(Policy::builtin(), &dir.path().join("s.db"));
    let store = Store::open(&config.store_path).unwrap();
    let clients = Clients::new(&config, HttpSettings::default());
    let dry = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let before = run_whole(&config, &clients, &store, false, dry)
        .await
        .unwrap();
    // Nothing in the seeded directory is cleared: every change sets a value.
    let clearing: Vec<String> = before
        .plan
        .actions
        .iter()
        .flat_map(|a| a.changes().iter().map(move |c| (a, c)))
        .filter(|(_, c)| c.new.is_none())
        .map(|(a, c)| format!("{} {}", a.user.email, c.attr))
        .collect();
    assert!(
        clearing.is_empty(),
        "mapped values read as empty: {clearing:?}"
    );

    // The same pass as against an unflooded directory: the mapped rows all still plan.
    assert!(before.plan.change_count() > 5, "{:?}", before.plan.actions);
    // Unmapped names past the cap were ignored, never stored: the snapshot holds no more
    // names than the table allows.
    let r = run_whole(&config, &clients, &store, false, PassOptions::default())
        .await
        .unwrap();
    assert!(r.apply.failed == 0, "{:?}", r.apply.failed_users);
    let stored = store.load_okta().unwrap();
    let most = stored.iter().map(|u| u.profile.len()).max().unwrap();
    assert!(most < 4096, "{most} names stored for one user");
}
