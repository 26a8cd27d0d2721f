//! `sandbox`: the demo a new user runs first: the fakes on loopback, seeded, and real passes
//! against them with what each shows.

use crate::Exit;
use anyhow::Context as _;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::pass::{PassOptions, run_whole};
use okta_telus_sync::{report, sandbox, store};

pub async fn run() -> anyhow::Result<Exit> {
    let sb = sandbox::Sandbox::start_demo()
        .await
        .context("starting the sandbox servers")?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let config = sb.config(
        sandbox::Sandbox::demo_policy(),
        &dir.path().join("sandbox.db"),
    );
    println!(
        "Sandbox: fake Okta at {}, fake TELUS at {}",
        sb.okta.url(),
        sb.telus.url()
    );
    println!("Store: {}\n", config.store_path.display());
    let store = store::Store::open(&config.store_path)?;
    let clients = Clients::new(&config, HttpSettings::default());

    println!("== Plan (dry run) ==");
    let dry_run = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let dry = run_whole(&config, &clients, &store, false, dry_run).await?;
    print!("{}", report::plan_text(&dry.plan));

    println!("\n== Pass 1 ==");
    let first = run_whole(&config, &clients, &store, false, PassOptions::default()).await?;
    print!("{}", report::pass_text(&first));

    println!("\n(Meanwhile someone edits Liam's department by hand in the TELUS portal.)");
    if let Some(liam) = sb
        .telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.extension_number == "112")
    {
        liam.contact
            .insert("department".into(), serde_json::json!("Facilities"));
    }

    println!(
        "\n== Pass 2: the edit is drift, reported and overwritten by Okta; Hugo's mobilePhone (\"555-0108\", no area code) failed once in pass 1 and is now a known data problem: listed, not failed, until someone fixes it in Okta =="
    );
    let second = run_whole(&config, &clients, &store, false, PassOptions::default()).await?;
    print!("{}", report::plan_text(&second.plan));
    print!("{}", report::pass_text(&second));

    let writes_before = writes(&sb);
    println!("\n== Pass 3 ==");
    let third = run_whole(&config, &clients, &store, false, PassOptions::default()).await?;
    print!("{}", report::pass_text(&third));
    println!(
        "Write requests sent in pass 3: {}",
        writes(&sb) - writes_before
    );

    review(&sb, &config, &clients, &store, dir.path()).await?;
    import(&config, &clients, &store).await?;
    print_directories(&sb);
    drop(store);
    change_events(&sb, &config).await?;
    init_demo(&sb).await?;
    println!(
        "\nThe journal of every change is in the store; run passes against your own directories with `sync --dry-run` first."
    );
    Ok(Exit::Ok)
}

/// Review, then apply exactly what was reviewed: `plan --out`, an edit in TELUS and a new
/// change in Okta after the review, then `sync --plan`, which applies the reviewed change,
/// skips the stale one (naming the value found) and leaves the new one to a pass.
async fn review(
    sb: &sandbox::Sandbox,
    config: &okta_telus_sync::config::Config,
    clients: &Clients,
    store: &store::Store,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    use okta_telus_sync::pass::{Ran, Scope};
    let okta_edit = |id: &str, dept: &str| {
        let mut o = sb.okta.lock();
        if let Some(u) = o.users.iter_mut().find(|u| u.id == id) {
            u.profile
                .insert("department".into(), serde_json::json!(dept));
        }
        o.touch(id);
    };
    println!(
        "
== Review, then apply: (in Okta, Ana moves to Research and Ben to Legal) `plan --out reviewed-plan.json` =="
    );
    okta_edit("00u1ana", "Research");
    okta_edit("00u2ben", "Legal");
    let dry_run = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let planned = run_whole(config, clients, store, false, dry_run).await?;
    print!("{}", report::plan_text(&planned.plan));
    let signing = store.plan_signing()?;
    let now = chrono::Utc::now();
    let key = (signing.0.as_str(), signing.1.as_slice());
    let (id, doc) = okta_telus_sync::plan_file::document(&planned.plan, config, key, false, now);
    let file = dir.join("reviewed-plan.json");
    super::write_private(&file, &serde_json::to_string_pretty(&doc)?)?;
    println!(
        "Saved plan {id} ({} change(s)) to {}.",
        planned.plan.change_count(),
        file.display()
    );
    println!(
        "\n(After the review, someone sets Ben's department to \"Audit\" in the TELUS portal, and Chloé moves to Platform in Okta.)"
    );
    if let Some(ben) = sb
        .telus
        .lock()
        .extensions
        .iter_mut()
        .find(|e| e.extension_number == "102")
    {
        ben.contact
            .insert("department".into(), serde_json::json!("Audit"));
    }
    okta_edit("00u3chl", "Platform");
    println!("\n== `sync --plan reviewed-plan.json` ==");
    let text = std::fs::read_to_string(&file)?;
    let max_age = std::time::Duration::from_secs(86_400);
    let saved = okta_telus_sync::plan_file::read(&text, config, key, max_age, now)?;
    let scope = Scope::Saved(Box::new(saved));
    if let Ran::Pass(r) =
        okta_telus_sync::pass::run(config, clients, store, &scope, PassOptions::default()).await?
    {
        print!("{}", report::reviewed_text(&r.reviewed));
        print!("{}", report::pass_text(&r));
    }
    println!(
        "Chloé's change was not in the reviewed plan: it waits for the next pass (or the next review). `history --plan {id}` lists what this plan applied and skipped."
    );
    Ok(())
}

/// The daemon with change events on (the shipped `[events]` defaults): an edit on either
/// side lands within seconds, without waiting for a scheduled pass.
async fn change_events(
    sb: &sandbox::Sandbox,
    config: &okta_telus_sync::config::Config,
) -> anyhow::Result<()> {
    use okta_telus_sync::daemon::{self, Signal};
    println!(
        "\n== Change events: the daemon (`run`) with [events] on (Okta's System Log polled every 2 s here; 10 s by default) =="
    );
    let mut config = config.clone();
    config.events = okta_telus_sync::config::Events {
        okta_poll: Some(std::time::Duration::from_secs(2)),
        telus_websocket: true,
        quiet_incremental: std::time::Duration::from_secs(3600),
        whole_pass_spacing: std::time::Duration::from_secs(900),
        telus_heartbeat: std::time::Duration::from_secs(30),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // The daemon and the admin's edits run side by side in this task (the daemon's store
    // connection stays on one thread).
    let edits = async {
        let result = edits(sb).await;
        let _ = tx.send(Signal::Terminate).await;
        result
    };
    let (ran, edited) = tokio::join!(
        daemon::run(std::path::PathBuf::from("sandbox.toml"), config, rx),
        edits
    );
    ran.context("the daemon")?;
    edited
}

/// An edit on each side, each timed until it shows on the other.
async fn edits(sb: &sandbox::Sandbox) -> anyhow::Result<()> {
    // Up when subscribed and its start-up pass (events before it are unknown) is done.
    wait_for("the daemon to subscribe", || {
        sb.telus.lock().gateway.subscribed() == 1 && sb.okta.lock().count("GET", "/api/v1/logs") > 0
    })
    .await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    {
        let mut t = sb.telus.lock();
        for n in t
            .numbers
            .iter_mut()
            .filter(|n| n.extension_id == Some(62012))
        {
            n.extension_id = None;
        }
        if let Some(n) = t
            .numbers
            .iter_mut()
            .find(|n| n.phone_number == "+16045550299")
        {
            n.extension_id = Some(62012);
            n.primary = true;
        }
        t.changed(62012, &["CompanyNumbers"]);
    }
    println!(
        "An admin assigns +16045550299 to Liam (ext 112) in the TELUS portal (the WebSocket notifies the daemon)..."
    );
    let phone = |sb: &sandbox::Sandbox| okta_value(sb, "00uCliam", "primaryPhone");
    wait_for("Liam's new number in Okta", || {
        phone(sb).as_deref() == Some("+16045550299#112")
    })
    .await?;
    println!(
        "  ...Okta's primaryPhone for Liam is {} after {:.1} s (a targeted pass read Liam alone).",
        phone(sb).unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    let started = std::time::Instant::now();
    {
        let mut o = sb.okta.lock();
        if let Some(u) = o.users.iter_mut().find(|u| u.id == "00uCliam") {
            u.profile
                .insert("department".into(), serde_json::json!("Research"));
        }
        o.touch("00uCliam");
    }
    println!(
        "An admin moves Liam to Research in Okta (the daemon sees it at its next System Log poll)..."
    );
    let dept = |sb: &sandbox::Sandbox| {
        sb.telus.lock().extension(62012).and_then(|e| {
            e.contact
                .get("department")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
    };
    wait_for("Liam's new department in TELUS", || {
        dept(sb).as_deref() == Some("Research")
    })
    .await?;
    println!(
        "  ...TELUS shows Research after {:.1} s (a targeted pass, at the next poll).",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn okta_value(sb: &sandbox::Sandbox, id: &str, attr: &str) -> Option<String> {
    sb.okta.lock().user(id).and_then(|u| {
        u.profile
            .get(attr)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}

/// Waits up to 30 s for `cond`.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while !cond() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            anyhow::bail!("the sandbox waited 30 s for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Both fakes' directories as the passes left them.
fn print_directories(sb: &sandbox::Sandbox) {
    println!("\n== TELUS after the passes ==");
    {
        let st = sb.telus.lock();
        let mut exts: Vec<_> = st.extensions.iter().collect();
        exts.sort_by_key(|e| e.extension_number.clone());
        for e in exts {
            let c = |k: &str| {
                e.contact
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let city = e
                .contact
                .get("businessAddress")
                .and_then(|a| a.get("city"))
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let cost = st
                .custom_values
                .get(&e.id)
                .and_then(|m| m.get("cf1"))
                .cloned()
                .unwrap_or_default();
            println!(
                "  ext {:<4} {:<9} {:<30} {:<12} {:<13} {:<12} cost center {}",
                e.extension_number,
                e.status,
                c("email"),
                c("department"),
                c("mobilePhone"),
                city,
                cost
            );
        }
    }
    println!("\n== Okta after the passes ==");
    {
        let st = sb.okta.lock();
        for u in &st.users {
            let p = |k: &str| {
                u.profile
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            println!(
                "  {:<9} {:<30} primaryPhone {}",
                u.status,
                p("email"),
                p("primaryPhone")
            );
        }
    }
}

/// The import queue the passes computed (the TELUS-only reception desk), confirmed: the Okta
/// user is created STAGED and linked, and a pass after it writes nothing.
async fn import(
    config: &okta_telus_sync::config::Config,
    clients: &Clients,
    store: &store::Store,
) -> anyhow::Result<()> {
    use okta_telus_sync::pass::{self, ImportRequest, Ran, Scope};
    println!("\n== Import: TELUS users with no Okta match (`import list`) ==");
    let (queue, at) = store.import_queue()?;
    print!("{}", report::imports_text(&queue, at.as_deref()));
    let Some(first) = queue
        .iter()
        .find(|c| c.outcome == okta_telus_sync::reconcile::import::Outcome::New)
    else {
        return Ok(());
    };
    println!("\n== `import confirm {}` ==", first.email);
    let request = ImportRequest {
        named: vec![first.email.clone()],
        all_new: false,
        activate: false,
    };
    let ran = pass::run(
        config,
        clients,
        store,
        &Scope::Imports(request),
        PassOptions::default(),
    )
    .await?;
    if let Ran::Pass(r) = ran {
        print!("{}", report::plan_text(&r.plan));
        print!("{}", report::pass_text(&r));
    }
    let linked = store
        .links()?
        .into_iter()
        .find(|l| l.ext_id == first.ext_id);
    println!(
        "Linked: TELUS extension {} ↔ Okta user {} (STAGED: no activation email; it is activated in Okta when the person should sign in).",
        first.ext_id,
        linked.map(|l| l.okta_id.0).unwrap_or_else(|| "none".into())
    );
    let after = run_whole(config, clients, store, false, PassOptions::default()).await?;
    println!(
        "The pass after the import: {} change(s) planned.",
        after.plan.change_count()
    );
    Ok(())
}

/// `init --from-okta-app` against the fake org's built-in TELUS app (the guide's mappings,
/// primaryPhone overridden by the app, department create only, one mapping no tool can
/// translate): the summary and the rows it writes.
async fn init_demo(sb: &sandbox::Sandbox) -> anyhow::Result<()> {
    use okta_telus_sync::sandbox::okta_apps::{BUILTIN_APP, install_builtin_app};
    install_builtin_app(&mut sb.okta.lock());
    println!(
        "\n== `init --from-okta-app {BUILTIN_APP}`: the config that replaces Okta's built-in TELUS app =="
    );
    let okta_cfg = sb
        .config(
            sandbox::Sandbox::demo_policy(),
            std::path::Path::new(":memory:"),
        )
        .okta;
    let okta = okta_telus_sync::okta::Client::new(&okta_cfg, HttpSettings::default());
    let setup = okta_telus_sync::init::read_setup(&okta, &sb.okta.url(), BUILTIN_APP).await?;
    let w = okta_telus_sync::init::write::write(&setup);
    for r in &w.rows {
        println!("  {r}");
    }
    for r in &w.by_hand {
        println!("  port by hand: {r}");
    }
    for c in &w.cutover {
        println!("  at the cutover: {c}");
    }
    let rows: Vec<&str> = w
        .text
        .lines()
        .skip_while(|l| !l.starts_with("[attributes.department]"))
        .take_while(|l| !l.is_empty())
        .collect();
    println!("  written, for instance:\n    {}", rows.join("\n    "));
    Ok(())
}

fn writes(sb: &sandbox::Sandbox) -> usize {
    let okta = sb.okta.lock().count("POST", "/api/v1/users/");
    let telus = sb.telus.lock();
    okta + telus.count("PUT", "/restapi/v1.0/") + telus.count("POST", "/restapi/v1.0/")
}
