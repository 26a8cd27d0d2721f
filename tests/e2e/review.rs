//! Review, then apply exactly what was reviewed, through the real binary: `plan --out`,
//! `sync --plan` (stale changes skipped, new ones left alone, refusals whole with exit 6,
//! holds only from an approved file, creates exactly once), `safety.reviewed_only`.

use crate::*;

fn args(cfg: &str, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["--config".to_string(), cfg.to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn set_okta(sb: &Sandbox, id: &str, attr: &str, value: &str) {
    let mut o = sb.okta.lock();
    let u = o.users.iter_mut().find(|u| u.id == id).unwrap();
    u.profile.insert(attr.into(), json!(value));
    o.touch(id);
}

fn set_telus_department(sb: &Sandbox, ext: i64, value: &str) {
    let mut t = sb.telus.lock();
    let e = t.extensions.iter_mut().find(|e| e.id == ext).unwrap();
    e.contact.insert("department".into(), json!(value));
}

fn plan_id(file: &std::path::Path) -> String {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    doc["plan_id"].as_str().unwrap().to_string()
}

/// The reviewed change is applied; the one whose target moved after the review is skipped
/// as stale, naming the value found; a change that appeared after the review is left for a
/// pass. Applying the file again finds its change already applied and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_applies_what_was_reviewed_and_skips_the_stale_change() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    run_bin(args(&cfg, &["sync"])).await;
    set_okta(&sb, "00u1ana", "department", "Research");
    set_okta(&sb, "00u2ben", "department", "Legal");
    let file = dir.path().join("reviewed.json");
    let out = run_bin(args(&cfg, &["plan", "--out", file.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved = std::fs::read_to_string(&file).unwrap();
    for secret in [
        sandbox::OKTA_TOKEN,
        sandbox::TELUS_CLIENT_SECRET,
        sandbox::TELUS_JWT,
    ] {
        assert!(!saved.contains(secret), "a secret in the plan file");
    }
    assert!(saved.contains("\"Research\"") && saved.contains("\"Legal\""));
    let id = plan_id(&file);

    // After the review: Ben's department is edited in TELUS (his change is stale now), and
    // Chloé's changes in Okta (a new change nobody reviewed).
    set_telus_department(&sb, 62002, "Audit");
    set_okta(&sb, "00u3chl", "department", "Platform");
    let writes = telus_writes(&sb);
    let out = run_bin(args(&cfg, &["sync", "--plan", file.to_str().unwrap()])).await;
    let shown = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stale change: exit 1\n{shown}"
    );
    assert!(
        shown.contains("stale    ben.tremblay@northwind.ca telus department")
            && shown.contains("holds \"Audit\""),
        "{shown}"
    );
    assert!(shown.contains("apply    ana.silva@northwind.ca telus department"));
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Research")
    );
    assert_eq!(
        contact_field(&sb, 62002, &["department"]).as_deref(),
        Some("Audit"),
        "the stale change is not applied"
    );
    assert_eq!(
        contact_field(&sb, 62003, &["department"]).as_deref(),
        Some("Engineering"),
        "the change nobody reviewed waits"
    );
    assert_eq!(telus_writes(&sb), writes + 1, "one write: Ana's");

    let history = run_bin(args(&cfg, &["history", "--plan", &id, "--json"])).await;
    let rows: Vec<Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome = |email: &str| {
        rows.iter()
            .find(|r| r["user"] == email && r["attribute"] == "department")
            .map(|r| r["outcome"].as_str().unwrap().to_string())
    };
    assert_eq!(
        outcome("ana.silva@northwind.ca").as_deref(),
        Some("applied")
    );
    assert_eq!(
        outcome("ben.tremblay@northwind.ca").as_deref(),
        Some("skipped")
    );
    assert!(
        !rows.iter().any(|r| r["user"] == "chloe.wong@northwind.ca"),
        "{rows:?}"
    );

    // Applied again: Ana's change holds already; nothing is written.
    let again = run_bin(args(&cfg, &["sync", "--plan", file.to_str().unwrap()])).await;
    assert!(
        text(&again).contains("already  ana.silva@northwind.ca telus department"),
        "{}",
        text(&again)
    );
    assert_eq!(telus_writes(&sb), writes + 1);
}

/// A file edited by hand, written under another configuration or for another store, or
/// older than `--max-age` is refused whole, with exit 6, before anything is read or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_edited_from_elsewhere_or_too_old_is_refused_whole_with_exit_6() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "").display().to_string();
    run_bin(args(&cfg, &["sync"])).await;
    set_okta(&sb, "00u1ana", "department", "Research");
    let file = dir.path().join("p.json");
    let file_s = file.to_str().unwrap().to_string();
    run_bin(args(&cfg, &["plan", "--out", &file_s])).await;
    let saved = std::fs::read_to_string(&file).unwrap();
    let writes = telus_writes(&sb);
    let refused = |out: &std::process::Output, why: &str| {
        assert_eq!(out.status.code(), Some(6), "{}", text(out));
        assert!(text(out).contains(why), "{why} in {}", text(out));
    };

    for (from, to) in [
        ("\"Research\"", "\"Researchers\""),
        ("\"approved\": false", "\"approved\": true"),
    ] {
        assert!(saved.contains(from), "{from}");
        let edited = dir.path().join("edited.json");
        std::fs::write(&edited, saved.replace(from, to)).unwrap();
        let out = run_bin(args(&cfg, &["sync", "--plan", edited.to_str().unwrap()])).await;
        refused(&out, "edited after `plan --out` wrote it");
    }

    let other_dir = tempfile::tempdir().unwrap();
    let other = write_config(other_dir.path(), &sb, "[safety]\nmax_creates = 3\n");
    std::fs::write(
        &other,
        std::fs::read_to_string(&other)
            .unwrap()
            .replace("state.db", dir.path().join("state.db").to_str().unwrap()),
    )
    .unwrap();
    let out = run_bin(args(other.to_str().unwrap(), &["sync", "--plan", &file_s])).await;
    refused(&out, "another configuration");

    let elsewhere = tempfile::tempdir().unwrap();
    let cfg2 = write_config(elsewhere.path(), &sb, "");
    let out = run_bin(args(cfg2.to_str().unwrap(), &["sync", "--plan", &file_s])).await;
    refused(&out, "another store");

    let out = run_bin(args(&cfg, &["sync", "--plan", &file_s, "--max-age", "0m"])).await;
    refused(&out, "older than --max-age");

    let out = run_bin(args(&cfg, &["sync", "--plan", &file_s, "--approve"])).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("the approval travels in the file"));

    assert_eq!(telus_writes(&sb), writes, "nothing written");
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Marketing")
    );
    // The untouched file still applies.
    let out = run_bin(args(&cfg, &["sync", "--plan", &file_s])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        contact_field(&sb, 62001, &["department"]).as_deref(),
        Some("Research")
    );
}

/// A plan held by a safety limit applies only from a file the reviewer wrote with
/// `--approve` (exit 3 before); its create happens once: applied again, it is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_plan_applies_only_when_approved_and_its_create_is_never_repeated() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &sb, "[safety]\nmax_creates = 0\n")
        .display()
        .to_string();
    run_bin(args(&cfg, &["sync", "--approve"])).await;
    let creates = telus_creates(&sb);
    {
        let mut o = sb.okta.lock();
        o.users.push(okta_telus_sync::sandbox::okta::FakeOktaUser {
            id: "00uNEWmia".into(),
            status: "ACTIVE".into(),
            last_updated: "2026-11-01T09:00:00.000Z".into(),
            provider: "OKTA",
            profile: json!({"login": "mia.roy@northwind.ca", "email": "mia.roy@northwind.ca",
                "firstName": "Mia", "lastName": "Roy", "department": "Legal"})
            .as_object()
            .unwrap()
            .clone(),
        });
        o.touch("00uNEWmia");
    }
    let held = dir.path().join("held.json");
    let out = run_bin(args(&cfg, &["plan", "--out", held.to_str().unwrap()])).await;
    assert!(text(&out).contains("held"), "{}", text(&out));
    let out = run_bin(args(&cfg, &["sync", "--plan", held.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("max_creates"), "{}", text(&out));
    assert_eq!(telus_creates(&sb), creates);

    let approved = dir.path().join("approved.json");
    let out = run_bin(args(
        &cfg,
        &["plan", "--out", approved.to_str().unwrap(), "--approve"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run_bin(args(&cfg, &["sync", "--plan", approved.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(telus_creates(&sb), creates + 1);

    let out = run_bin(args(&cfg, &["sync", "--plan", approved.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already created"), "{}", text(&out));
    assert_eq!(telus_creates(&sb), creates + 1, "never a second user");
}

/// With `safety.reviewed_only`, the daemon's passes and a plain `sync` only plan: nothing
/// is written anywhere, `status` shows the pending plan's size; `sync --plan` writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reviewed_only_the_daemon_writes_nothing_until_a_plan_is_applied() {
    let sb = Sandbox::start_seeded().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = "[schedule]\ncron = \"* * * * * *\"\nfull_cron = \"0 0 3 * * *\"\n[safety]\nreviewed_only = true\n";
    let cfg = write_config(dir.path(), &sb, extra).display().to_string();
    let d = crate::daemon::Daemon::start(&cfg, dir.path());
    d.wait_for_log("pass complete", 2).await;
    assert!(d.log().contains("safety.reviewed_only"), "{}", d.log());
    crate::daemon::signal(&d.child, "-TERM");
    assert_eq!(d.wait_exit().await.code(), Some(0));
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), 0, "the daemon wrote");

    let out = run_bin(args(&cfg, &["sync"])).await;
    assert!(text(&out).contains("nothing was written"), "{}", text(&out));
    assert_eq!(okta_writes(&sb) + telus_writes(&sb), 0, "sync wrote");
    let status = run_bin(args(&cfg, &["status"])).await;
    assert!(
        text(&status).contains("Pending review:"),
        "{}",
        text(&status)
    );

    let file = dir.path().join("p.json");
    run_bin(args(
        &cfg,
        &["plan", "--out", file.to_str().unwrap(), "--approve"],
    ))
    .await;
    let out = run_bin(args(&cfg, &["sync", "--plan", file.to_str().unwrap()])).await;
    assert!(out.status.code() != Some(6), "{}", text(&out));
    assert!(
        telus_writes(&sb) > 0,
        "the reviewed plan writes: {}",
        text(&out)
    );
}

/// `explain` names, for one user, the rule of a master row and of a `latest` row, a known
/// refusal and a data problem, from a fresh read, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_rule_the_refusal_and_the_data_problem_of_one_user() {
    let sb = Sandbox::start_seeded().await.unwrap();
    // Ana is sourced from Active Directory: Okta refuses the write-back of primaryPhone
    // (E0000023), and it becomes a known refusal.
    {
        let mut o = sb.okta.lock();
        let ana = o.users.iter_mut().find(|u| u.id == "00u1ana").unwrap();
        ana.provider = "ACTIVE_DIRECTORY";
        ana.profile.remove("primaryPhone");
    }
    // Both sides agree on her department, so the first pass keeps a baseline for it.
    set_telus_department(&sb, 62001, "Marketing");
    let dir = tempfile::tempdir().unwrap();
    let extra = "[attributes.department]\ntelus = \"contact.department\"\nmaster = \"latest\"\n";
    let cfg = write_config(dir.path(), &sb, extra).display().to_string();
    run_bin(args(&cfg, &["sync"])).await;
    // The department changes in TELUS: the `latest` row lets TELUS win.
    set_telus_department(&sb, 62001, "Research");
    let (ow, tw) = (okta_writes(&sb), telus_writes(&sb));
    let gets = sb.okta.lock().count("GET", "/api/v1/users/00u1ana");

    let out = run_bin(args(&cfg, &["explain", "Ana.Silva@northwind.ca"])).await;
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("Link: matched by a pass"), "{shown}");
    assert!(
        shown.contains("firstName ↔ contact.firstName: equal")
            && shown.contains("rule: master: okta supplies the value"),
        "{shown}"
    );
    assert!(
        shown.contains("department ↔ contact.department: write to okta")
            && shown.contains("rule: latest: TELUS changed since the baseline"),
        "{shown}"
    );
    assert!(
        shown.contains("primaryPhone ↔ directNumber + extensionNumber: known refusal"),
        "{shown}"
    );
    assert!(
        shown.contains("known refusal: Okta refuses primaryPhone"),
        "{shown}"
    );
    assert_eq!(
        sb.okta.lock().count("GET", "/api/v1/users/00u1ana"),
        gets + 1,
        "Ana read now"
    );

    let out = run_bin(args(
        &cfg,
        &["explain", "hugo.gagnon@northwind.ca", "--json"],
    ))
    .await;
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let mobile = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["attribute"] == "mobilePhone")
        .unwrap();
    assert_eq!(mobile["result"], "data problem", "{mobile}");
    assert!(
        doc["applies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("data problem: mobilePhone")),
        "{doc}"
    );

    let out = run_bin(args(&cfg, &["explain", "nobody@northwind.ca"])).await;
    assert!(text(&out).contains("not linked"), "{}", text(&out));
    assert_eq!(
        (okta_writes(&sb), telus_writes(&sb)),
        (ow, tw),
        "explain wrote"
    );
}
