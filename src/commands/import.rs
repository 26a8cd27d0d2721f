//! `import list|confirm|link|ignore|unignore`: the import queue (TELUS users with no Okta
//! match) as the last whole pass stored it, and what the admin does with each candidate.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::config::{Config, OktaScope};
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::model::{Link, OktaId, OktaStatus};
use okta_telus_sync::pass::{self, ImportRequest, PassOptions, Ran, Scope};
use okta_telus_sync::reconcile::import::{Candidate, Outcome};
use okta_telus_sync::report;

#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// The queue as the last whole pass computed it: each TELUS user with no Okta match and
    /// its proposed outcome (new, partial, conflict, unchecked). No network call.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Creates Okta users for these candidates now (STAGED unless --activate), links them,
    /// and journals it: a pass whose scope is the confirmed users.
    Confirm {
        /// Emails of candidates (as `import list` shows them).
        emails: Vec<String>,
        /// Every candidate proposed `new` (bound by safety.max_imports).
        #[arg(long, conflicts_with = "emails")]
        all_new: bool,
        /// Create them activated: PROVISIONED, and Okta emails each an activation link.
        #[arg(long)]
        activate: bool,
        /// Lift the safety.max_imports hold for this confirmation.
        #[arg(long)]
        approve: bool,
        /// Seconds to wait for another pass on the store to finish (exit 5 after).
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        wait: u64,
    },
    /// Links a candidate to an existing Okta user (a partial match that is the same person):
    /// no create; the next pass syncs the mastered attributes.
    Link { email: String, okta_login: String },
    /// Never proposes these emails again (remembered in the store) until `unignore`.
    Ignore { emails: Vec<String> },
    /// Proposes these emails again.
    Unignore { emails: Vec<String> },
}

pub async fn run(path: &std::path::Path, cmd: ImportCommand) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    match cmd {
        ImportCommand::List { json } => list(&store, json),
        ImportCommand::Ignore { emails } | ImportCommand::Unignore { emails }
            if emails.is_empty() =>
        {
            eprintln!("error: name at least one email");
            Ok(Exit::Config)
        }
        ImportCommand::Ignore { emails } => {
            let n = store.set_import_ignored(&normalized(&emails), true)?;
            println!("{n} email(s) ignored: never proposed for import until `import unignore`");
            Ok(Exit::Ok)
        }
        ImportCommand::Unignore { emails } => {
            let n = store.set_import_ignored(&normalized(&emails), false)?;
            println!("{n} email(s) proposed again from the next pass on");
            Ok(Exit::Ok)
        }
        ImportCommand::Link { email, okta_login } => {
            link(&config, &store, &email, &okta_login).await
        }
        ImportCommand::Confirm {
            emails,
            all_new,
            activate,
            approve,
            wait,
        } => {
            let request = ImportRequest {
                named: normalized(&emails),
                all_new,
                activate: activate || config.policy.import.activate,
            };
            let opts = PassOptions {
                approve,
                progress_bar: true,
                lock_wait: std::time::Duration::from_secs(wait),
                ..PassOptions::default()
            };
            confirm(&config, &store, request, opts).await
        }
    }
}

fn normalized(emails: &[String]) -> Vec<String> {
    emails.iter().map(|e| e.trim().to_lowercase()).collect()
}

fn list(store: &okta_telus_sync::store::Store, json: bool) -> anyhow::Result<Exit> {
    let (queue, at) = store.import_queue()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::imports_json(&queue))?
        );
        return Ok(Exit::Ok);
    }
    match at {
        None if queue.is_empty() => {
            println!(
                "The import queue is empty (a whole pass, `sync` or the daemon's, computes it)."
            );
        }
        _ => print!("{}", report::imports_text(&queue, at.as_deref())),
    }
    Ok(Exit::Ok)
}

/// The candidate an admin names, from the stored queue.
fn candidate(queue: &[Candidate], email: &str) -> Option<Candidate> {
    let key = email.trim().to_lowercase();
    queue.iter().find(|c| c.email == key).cloned()
}

async fn confirm(
    config: &Config,
    store: &okta_telus_sync::store::Store,
    request: ImportRequest,
    opts: PassOptions<'_>,
) -> anyhow::Result<Exit> {
    if request.named.is_empty() && !request.all_new {
        eprintln!("error: name the candidates' emails, or --all-new");
        return Ok(Exit::Config);
    }
    if let (OktaScope::App(app), false) = (&config.okta.scope, config.policy.import.assign_to_app) {
        eprintln!(
            "error: okta.scope is app:{app}, and an imported user must be assigned to that app, or the next pass finds it outside the scope and disables its TELUS user. Set import.assign_to_app = true in the config (Okta then also pushes the user if that app provisions), or import into a group scope"
        );
        return Ok(Exit::Config);
    }
    let (queue, _) = store.import_queue()?;
    let unknown: Vec<&String> = request
        .named
        .iter()
        .filter(|e| candidate(&queue, e).is_none())
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "error: not in the import queue: {} (see `import list`; a whole pass computes the queue, and linked or ignored users are not in it)",
            unknown
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Exit::Config);
    }
    let clients = Clients::from_store(config, HttpSettings::default(), store)?;
    let ran = pass::run(config, &clients, store, &Scope::Imports(request), opts).await?;
    let report = match ran {
        Ran::Pass(r) => r,
        Ran::Nothing | Ran::Escalate(_) => {
            println!("Nothing to import: no candidate proposed `new` in the stored queue.");
            return Ok(Exit::Ok);
        }
    };
    if let Some(busy) = &report.busy {
        eprintln!("error: {busy}; try again when it has finished");
        return Ok(report.outcome.into());
    }
    print!("{}", report::plan_text(&report.plan));
    print!("{}", report::pass_text(&report));
    Ok(report.outcome.into())
}

async fn link(
    config: &Config,
    store: &okta_telus_sync::store::Store,
    email: &str,
    login: &str,
) -> anyhow::Result<Exit> {
    let (queue, _) = store.import_queue()?;
    let Some(c) = candidate(&queue, email) else {
        eprintln!("error: {email} is not in the import queue (see `import list`)");
        return Ok(Exit::Config);
    };
    let clients = Clients::from_store(config, HttpSettings::default(), store)?;
    let holder = clients.okta.get_user_by_login(login).await;
    clients.save_pacing(store);
    let Some(o) = holder? else {
        eprintln!("error: Okta has no user with login {login}");
        return Ok(Exit::Config);
    };
    if matches!(o.status, OktaStatus::Deprovisioned | OktaStatus::Suspended) {
        eprintln!(
            "error: Okta user {login} is {}: reactivate it first, or a pass would disable the TELUS user it is linked to",
            o.status.as_str()
        );
        return Ok(Exit::Config);
    }
    let links = store.links()?;
    if let Some(l) = links.iter().find(|l| l.okta_id == o.id) {
        eprintln!(
            "error: Okta user {login} is already linked to TELUS extension {}",
            l.ext_id
        );
        return Ok(Exit::Config);
    }
    let in_scope = store.load_okta_ids(&[&o.id])?;
    if in_scope.is_empty() && config.okta.scope != OktaScope::All {
        eprintln!(
            "error: Okta user {login} is not in okta.scope as the last pass read it: add it to the scope first, or a pass would disable the linked TELUS user"
        );
        return Ok(Exit::Config);
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
    store.add_links_from(
        &[Link {
            okta_id: OktaId(o.id.0.clone()),
            ext_id: c.ext_id.clone(),
        }],
        "import link",
    )?;
    store.drop_from_import_queue(std::slice::from_ref(&c.ext_id))?;
    let was = match &c.outcome {
        Outcome::Partial { login: l, .. } if l.eq_ignore_ascii_case(login) => "its partial match",
        _ => "Okta user",
    };
    println!(
        "{} (TELUS extension {}) linked to {was} {login} ({}). No user was created; the next pass syncs the mastered attributes (`sync` to do it now).",
        c.email, c.ext_id, o.id
    );
    Ok(Exit::Ok)
}
