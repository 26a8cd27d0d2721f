//! `init --from-okta-app APP_ID`: writes the `sync.toml` that replaces Okta's built-in TELUS
//! app (its features, mappings and masters), prints what was translated, what needs a hand
//! and the cutover steps; with `--links`, fills the store's links from the app's
//! assignments' `externalId`.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::config::{OktaAuth, OktaConfig, OktaScope};
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::init::{InitError, read_setup, write::write};
use okta_telus_sync::model::{ExtId, Link};
use secrecy::SecretString;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct InitArgs {
    /// The built-in TELUS Business Connect (or RingCentral) app's id in Okta.
    #[arg(long, value_name = "APP_ID")]
    from_okta_app: String,
    /// Where to write the new config (refused if it exists, unless --force).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long)]
    force: bool,
    /// The Okta org, when no `--config` file gives it; the token then comes from
    /// OKTA_TELUS_SYNC__OKTA__TOKEN.
    #[arg(long, value_name = "URL")]
    okta_url: Option<String>,
    /// Also link each assignment whose `externalId` names an existing TELUS extension, in
    /// the store of the (complete) `--config`.
    #[arg(long)]
    links: bool,
}

/// The Okta side to read from: the `--config` file's `[okta]`, or `--okta-url` and the
/// token from the environment.
fn okta_config(path: &Path, args: &InitArgs) -> Result<OktaConfig, Exit> {
    let Some(url) = &args.okta_url else {
        return load_config(path).map(|c| c.okta);
    };
    let parsed = match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" || okta_telus_sync::config::is_loopback(&u) => u,
        _ => {
            eprintln!(
                "error: --okta-url {url:?} is not an https URL (plain http only to loopback)"
            );
            return Err(Exit::Config);
        }
    };
    let Ok(token) = std::env::var("OKTA_TELUS_SYNC__OKTA__TOKEN") else {
        eprintln!(
            "error: with --okta-url, the API token comes from OKTA_TELUS_SYNC__OKTA__TOKEN, which is not set"
        );
        return Err(Exit::Config);
    };
    Ok(OktaConfig {
        url: parsed,
        auth: OktaAuth::Ssws(SecretString::from(token)),
        scope: OktaScope::All,
        write_concurrency: 4,
        rate_limit_percent: 50,
        app_id: None,
    })
}

pub async fn run(path: &Path, args: InitArgs) -> anyhow::Result<Exit> {
    let okta_cfg = match okta_config(path, &args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let out = args.out.clone();
    if let Some(out) = &out
        && out.exists()
        && !args.force
    {
        eprintln!(
            "error: {} exists: choose another --out, or --force to replace it",
            out.display()
        );
        return Ok(Exit::Config);
    }
    if out.is_none() && !args.links {
        eprintln!("error: say where to write the config (--out FILE), or --links");
        return Ok(Exit::Config);
    }
    if let Some(out) = &out {
        let okta = okta_telus_sync::okta::Client::new(&okta_cfg, HttpSettings::default());
        let url = okta_cfg.url.as_str().trim_end_matches('/').to_string();
        let setup = match read_setup(&okta, &url, &args.from_okta_app).await {
            Ok(s) => s,
            Err(e) => return Ok(failed(&e)),
        };
        let written = write(&setup);
        super::write_private(out, &written.text)?;
        print_summary(out, &written);
    }
    if args.links {
        return links(path, &args.from_okta_app).await;
    }
    Ok(Exit::Ok)
}

fn failed(e: &InitError) -> Exit {
    eprintln!("error: {e}");
    match e {
        InitError::Refused { .. } => Exit::Config,
        InitError::Unreachable { .. } => Exit::System,
    }
}

fn print_summary(out: &Path, w: &okta_telus_sync::init::Written) {
    println!(
        "Wrote {} ({} rows translated).",
        out.display(),
        w.rows.len()
    );
    for r in &w.rows {
        println!("  {r}");
    }
    if !w.by_hand.is_empty() {
        println!(
            "\nPort by hand (written as `sync = false` rows where a default row would sync it):"
        );
        for r in &w.by_hand {
            println!("  {r}");
        }
    }
    println!("\nAt the cutover:");
    for c in &w.cutover {
        println!("  - {c}");
    }
    println!(
        "  - fill in the credentials, then `check-config --connect`, and `plan` beside the running app"
    );
    println!(
        "\nNot readable by any API, so not carried over: the order of profile sources across apps, and this app's import settings."
    );
}

/// Links each assignment whose `externalId` names an existing TELUS extension, under the
/// pass lock; an `externalId` naming none is reported, not guessed.
async fn links(path: &Path, app: &str) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => {
            eprintln!(
                "  (--links needs the complete config: run `init --out`, fill in the credentials, then `init --from-okta-app {app} --links --config FILE`)"
            );
            return Ok(code);
        }
    };
    let store = open_store(&config)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let (assigned, telus) = tokio::join!(
        clients.okta.app_assignments(app),
        clients.telus.fetch_users_with(false)
    );
    clients.save_pacing(&store);
    let (assigned, telus) = match (assigned, telus) {
        (Ok(a), Ok(t)) => (a, t),
        (a, t) => {
            if let Err(e) = a {
                eprintln!("error: reading app {app}'s assignments: {e}");
            }
            if let Err(e) = t {
                eprintln!("error: reading the TELUS users: {e}");
            }
            return Ok(Exit::System);
        }
    };
    let exts: std::collections::HashSet<&ExtId> = telus.iter().map(|t| &t.id).collect();
    let known = store.links()?;
    let mut new = Vec::new();
    let mut unknown = Vec::new();
    for a in &assigned {
        let Some(ext) = a.external_id.as_ref().map(|e| ExtId(e.clone())) else {
            continue;
        };
        if !exts.contains(&ext) {
            unknown.push(format!("{} → {}", a.okta_id, ext));
        } else if !known
            .iter()
            .any(|l| l.okta_id == a.okta_id || l.ext_id == ext)
        {
            new.push(Link {
                okta_id: a.okta_id.clone(),
                ext_id: ext,
            });
        }
    }
    let lock = okta_telus_sync::store::lock::PassLock::acquire_within(
        &store.path(),
        std::time::Duration::from_secs(60),
    )
    .await?;
    if let Err(holder) = lock {
        eprintln!("error: another pass holds the store ({holder}); try again when it has finished");
        return Ok(Exit::Busy);
    }
    store.add_links_from(&new, "init --links")?;
    println!(
        "{} link(s) from app {app}'s assignments ({} assigned, {} already linked or without externalId).",
        new.len(),
        assigned.len(),
        assigned.len() - new.len() - unknown.len()
    );
    if !unknown.is_empty() {
        println!(
            "{} externalId(s) name no TELUS extension (not linked; email matching decides):",
            unknown.len()
        );
        for u in &unknown {
            println!("  {u}");
        }
    }
    Ok(Exit::Ok)
}
