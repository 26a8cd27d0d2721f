//! Review, then apply exactly what was reviewed: `plan --out FILE [--approve]` saves a signed
//! plan, `sync --plan FILE` applies its changes (and nothing else) after a fresh read.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::pass::{self, PassOptions, Ran, Scope};
use okta_telus_sync::reconcile::saved::Verdict;
use okta_telus_sync::{plan_file, report};

/// `plan --out FILE`: a dry run (of `users` alone when given) whose plan is printed and
/// saved, signed with this store's key.
pub async fn plan_out(
    path: &std::path::Path,
    out: &std::path::Path,
    approve: bool,
    json: bool,
    users: &[String],
) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let scope = match users.is_empty() {
        true => Scope::Whole { full: false },
        false => match super::named_by_email(&store, users)? {
            Ok(named) => Scope::Named(named),
            Err(missing) => {
                eprintln!("error: not linked yet: {}", missing.join(", "));
                return Ok(Exit::Config);
            }
        },
    };
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let opts = PassOptions {
        dry_run: true,
        ..PassOptions::default()
    };
    let report = match pass::run(&config, &clients, &store, &scope, opts).await? {
        Ran::Pass(r) => r,
        Ran::Escalate(reason) => {
            eprintln!("error: these users need a plan of the whole directory ({reason})");
            return Ok(Exit::UsersFailed);
        }
        Ran::Nothing => {
            println!("Nothing to plan for these users.");
            return Ok(Exit::Ok);
        }
    };
    if report.system_error.is_some() {
        print!("{}", report::pass_text(&report));
        return Ok(Exit::System);
    }
    let signing = store.plan_signing()?;
    let (id, doc) = plan_file::document(
        &report.plan,
        &config,
        (&signing.0, &signing.1),
        approve,
        chrono::Utc::now(),
    );
    super::write_private(out, &serde_json::to_string_pretty(&doc)?)?;
    match json {
        true => println!("{}", serde_json::to_string_pretty(&doc)?),
        false => print!("{}", report::plan_text(&report.plan)),
    }
    eprintln!(
        "Saved plan {id} to {} ({} change(s){}). Apply exactly these changes with `sync --plan {}`.",
        out.display(),
        report.plan.change_count(),
        match (report.plan.held.is_empty(), approve) {
            (true, _) => String::new(),
            (false, true) => ", its holds approved by this reviewer".to_string(),
            (false, false) =>
                ", held: `sync --plan` will refuse it unless written with --approve".to_string(),
        },
        out.display()
    );
    Ok(Exit::Ok)
}

/// `sync --plan FILE`: the file checked whole (signature, version, configuration, store,
/// age, approval), then one pass of the one driver that applies its changes that still hold.
pub async fn apply(
    path: &std::path::Path,
    file: &std::path::Path,
    max_age: &str,
    opts: PassOptions<'_>,
) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let now = chrono::Utc::now();
    let max_age = match report::parse_since(max_age, now)
        .ok()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .and_then(|t| now.signed_duration_since(t).to_std().ok())
    {
        Some(age) => age,
        None => {
            eprintln!("error: --max-age {max_age:?} is not an age (24h, 90m, 2d)");
            return Ok(Exit::Config);
        }
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: reading the plan {}: {e}", file.display());
            return Ok(Exit::Config);
        }
    };
    let store = open_store(&config)?;
    let signing = store.plan_signing()?;
    let saved = match plan_file::read(&text, &config, (&signing.0, &signing.1), max_age, now) {
        Ok(s) => s,
        Err(refusal) => {
            eprintln!(
                "error: refusing the plan {} whole: {refusal}",
                file.display()
            );
            return Ok(Exit::PlanRefused);
        }
    };
    if !saved.held.is_empty() && !saved.approved {
        eprintln!(
            "error: the plan {} is held, and its holds were not approved:",
            saved.id
        );
        for h in &saved.held {
            eprintln!("  {h}");
        }
        eprintln!(
            "the reviewer approves them by writing the plan with `plan --out FILE --approve`; nothing was written"
        );
        return Ok(Exit::Held);
    }
    let id = saved.id.clone();
    let changes = saved.change_count();
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let scope = Scope::Saved(Box::new(saved));
    let report = match pass::run(&config, &clients, &store, &scope, opts).await? {
        Ran::Pass(r) => r,
        other => anyhow::bail!("a saved plan's pass ended as {other:?}"),
    };
    if let Some(busy) = &report.busy {
        eprintln!("error: {busy}; try again when it has finished");
        return Ok(report.outcome.into());
    }
    println!("Plan {id}: {changes} reviewed change(s).");
    print!("{}", report::reviewed_text(&report.reviewed));
    print!("{}", report::pass_text(&report));
    let stale = report
        .reviewed
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Stale { .. }));
    Ok(match (stale, Exit::from(report.outcome)) {
        (true, Exit::Ok) => Exit::UsersFailed,
        (_, exit) => exit,
    })
}
