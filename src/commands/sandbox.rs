//! `sandbox`: the demo a new user runs first: the fakes on loopback, seeded, and real passes
//! against them with what each shows.

use crate::Exit;
use anyhow::Context as _;
use okta_telus_sync::daemon::pass::{Clients, PassOptions, run_one_pass};
use okta_telus_sync::http::HttpSettings;
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
    let dry = run_one_pass(&config, &clients, &store, dry_run).await?;
    print!("{}", report::plan_text(&dry.plan));

    println!("\n== Pass 1 ==");
    let first = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
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

    println!("\n== Pass 2: the edit is drift, reported and overwritten by Okta ==");
    let second = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
    print!("{}", report::plan_text(&second.plan));
    print!("{}", report::pass_text(&second));

    let writes_before = writes(&sb);
    println!("\n== Pass 3 ==");
    let third = run_one_pass(&config, &clients, &store, PassOptions::default()).await?;
    print!("{}", report::pass_text(&third));
    println!(
        "Write requests sent in pass 3: {}",
        writes(&sb) - writes_before
    );

    print_directories(&sb);
    println!(
        "\nThe journal of every change is in the store; run passes against your own directories with `sync --dry-run` first."
    );
    Ok(Exit::Ok)
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

fn writes(sb: &sandbox::Sandbox) -> usize {
    let okta = sb.okta.lock().count("POST", "/api/v1/users/");
    let telus = sb.telus.lock();
    okta + telus.count("PUT", "/restapi/v1.0/") + telus.count("POST", "/restapi/v1.0/")
}
