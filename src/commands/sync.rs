//! `sync` (and `plan`, which is a dry run): one pass now, its plan or summary printed.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::model::PassOutcome;
use okta_telus_sync::pass::{PassOptions, run_whole};
use okta_telus_sync::report;

/// `sync`'s flags.
#[derive(clap::Args)]
pub struct SyncArgs {
    /// Compute and print the plan; write nothing anywhere.
    #[arg(long)]
    dry_run: bool,
    /// Lift a safety hold (too many deactivations, creations or changes, users gone from a
    /// listing, an empty directory) for this pass.
    #[arg(long)]
    approve: bool,
    /// Release quarantined users and try them again in this pass.
    #[arg(long)]
    retry_quarantined: bool,
    /// Read Okta whole (by default only users changed since the last pass are read).
    #[arg(long)]
    full: bool,
    /// Seconds to wait for another pass on the same store (the daemon's, say) to finish
    /// before giving up with exit code 5.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    wait: u64,
}

impl SyncArgs {
    pub fn full(&self) -> bool {
        self.full
    }

    pub fn options(&self) -> PassOptions<'static> {
        PassOptions {
            dry_run: self.dry_run,
            approve: self.approve,
            retry_quarantined: self.retry_quarantined,
            progress_bar: true,
            stop: None,
            lock_wait: std::time::Duration::from_secs(self.wait),
        }
    }
}

/// `plan`: a dry run whose plan is printed (as one JSON document with `json`).
pub async fn plan(path: &std::path::Path, json: bool) -> anyhow::Result<Exit> {
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    run(path, false, opts, json).await
}

/// One whole pass (`full`: Okta read whole).
pub async fn run(
    path: &std::path::Path,
    full: bool,
    opts: PassOptions<'_>,
    json: bool,
) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let report = run_whole(&config, &clients, &store, full, opts).await?;
    if let Some(busy) = &report.busy {
        eprintln!("error: {busy}; try again when it has finished");
        return Ok(report.outcome.into());
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::plan_json(&report.plan))?
        );
    } else {
        if opts.dry_run || report.outcome == PassOutcome::Held {
            print!("{}", report::plan_text(&report.plan));
            print!("{}", report::link_origins_text(&store)?);
        }
        print!("{}", report::pass_text(&report));
    }
    Ok(report.outcome.into())
}
