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
    /// Only these linked users (their email), now: each is read, planned and applied alone
    /// (provision on demand). Repeatable.
    #[arg(long = "user", value_name = "EMAIL", conflicts_with = "plan")]
    users: Vec<String>,
    /// Apply exactly the changes of a plan saved by `plan --out FILE`, nothing else: each
    /// checked against a fresh read first (stale ones are skipped and named).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["full", "retry_quarantined"])]
    plan: Option<std::path::PathBuf>,
    /// With --plan: refuse a plan older than this (an age: 24h, 90m, 2d).
    #[arg(long, default_value = "24h", value_name = "AGE", requires = "plan")]
    max_age: String,
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

/// `sync`: a whole pass, or with `--user` a pass of those users alone.
pub async fn sync(path: &std::path::Path, args: &SyncArgs) -> anyhow::Result<Exit> {
    if let Some(file) = &args.plan {
        if args.approve {
            eprintln!(
                "error: --approve cannot go with --plan: the approval travels in the file (`plan --out FILE --approve`)"
            );
            return Ok(Exit::Config);
        }
        return super::review::apply(path, file, &args.max_age, args.options()).await;
    }
    match args.users.is_empty() {
        true => run(path, args.full(), args.options(), false).await,
        false => for_users(path, &args.users, args.options(), false).await,
    }
}

/// `plan`: a dry run whose plan is printed (as one JSON document with `json`), of the whole
/// directory or of `users` alone.
pub async fn plan(path: &std::path::Path, json: bool, users: &[String]) -> anyhow::Result<Exit> {
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    match users.is_empty() {
        true => run(path, false, opts, json).await,
        false => for_users(path, users, opts, json).await,
    }
}

/// A targeted pass of these users (the one pass driver's `Scope::Named`): each linked user
/// is read by id on both sides, planned and (unless a dry run) applied; nothing else is read
/// or written. A user this tool does not link yet is named, not guessed at: a whole pass
/// matches or creates them.
async fn for_users(
    path: &std::path::Path,
    emails: &[String],
    opts: PassOptions<'_>,
    json: bool,
) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let named = match super::named_by_email(&store, emails)? {
        Ok(named) => named,
        Err(missing) => {
            eprintln!(
                "error: not linked yet: {} (`sync` runs a whole pass, which matches or creates them; `import list` shows TELUS users with no Okta match)",
                missing.join(", ")
            );
            return Ok(Exit::Config);
        }
    };
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let ran = okta_telus_sync::pass::run(
        &config,
        &clients,
        &store,
        &okta_telus_sync::pass::Scope::Named(named),
        opts,
    )
    .await?;
    let report = match ran {
        okta_telus_sync::pass::Ran::Pass(r) => r,
        okta_telus_sync::pass::Ran::Escalate(reason) => {
            eprintln!(
                "error: these users need a pass of the whole directory ({reason}): run `sync`"
            );
            return Ok(Exit::UsersFailed);
        }
        okta_telus_sync::pass::Ran::Nothing => {
            println!("Nothing to do for these users.");
            return Ok(Exit::Ok);
        }
    };
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
        print!("{}", report::plan_text(&report.plan));
        print!("{}", report::pass_text(&report));
    }
    say_if_reviewed_only(&config, opts.dry_run);
    Ok(report.outcome.into())
}

/// Under `safety.reviewed_only` a pass that was asked to write only planned: says so.
fn say_if_reviewed_only(config: &okta_telus_sync::config::Config, dry_run: bool) {
    if config.safety.reviewed_only && !dry_run {
        eprintln!(
            "safety.reviewed_only is on: nothing was written. Save the plan with `plan --out FILE`, have it reviewed, then apply it with `sync --plan FILE`."
        );
    }
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
    say_if_reviewed_only(&config, opts.dry_run);
    Ok(report.outcome.into())
}
