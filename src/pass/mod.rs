//! The only pass driver. Every pass, whole or targeted, goes: take the store → pacing →
//! resolve its scope → begin → bulk tasks left unfinished (whole only) → fetch → settle →
//! decide (the one pure `decide::plan`) → apply → record → finish → checkpoint. `sync`,
//! `plan`, `sandbox`, the daemon and the bench all run passes through `run`.

mod context;
mod explain;
mod fetch;
mod imports;
mod record;
mod saved;
mod scope;

pub use context::PassOptions;
pub use explain::{PairRead, read_pair};
pub use imports::{ImportRequest, MAX_LOOKUPS_PER_PASS};
pub use scope::{MAX_TARGETED_USERS, Named, Scope, resolve};

use crate::apply::{TaskSettling, settle_tasks};
use crate::clients::Clients;
use crate::config::Config;
use crate::model::PassKind;
use crate::store::Store;
use crate::summary::PassReport;
use anyhow::Context as _;
use context::{Pass, Target, register_mapped_names};
use fetch::Fetch;
use std::collections::BTreeSet;
use tracing::Instrument as _;

/// How a pass ended.
#[derive(Debug)]
pub enum Ran {
    /// It ran (or found the store busy: `PassOutcome::Busy`).
    Pass(Box<PassReport>),
    /// A targeted pass cannot decide what the events named: a pass of the whole directory
    /// must go instead; why. Nothing was recorded.
    Escalate(String),
    /// Nothing the events named needs a pass (users this tool does not sync).
    Nothing,
}

/// Runs one pass over `scope`. Errors only when the store itself fails.
pub async fn run(
    config: &Config,
    clients: &Clients,
    store: &Store,
    scope: &Scope,
    opts: PassOptions<'_>,
) -> anyhow::Result<Ran> {
    register_mapped_names(config)?;
    // Under `safety.reviewed_only` every pass only plans, except a reviewed plan's.
    let reviewed_only = config.safety.reviewed_only && !matches!(scope, Scope::Saved(_));
    let mut opts = opts;
    opts.dry_run |= reviewed_only;
    let _lock = match take_store(store, &opts).await? {
        Ok(lock) => lock,
        Err(busy) => return Ok(Ran::Pass(Box::new(PassReport::busy(busy)))),
    };
    // Rate-limit budgets another process left (a pass just before this one, an admin's
    // command): this pass paces from them.
    clients.restore_pacing(store);
    let (target, unlinked) = match resolve_target(config, store, scope)? {
        Ok(resolved) => resolved,
        Err(not_run) => return Ok(not_run),
    };
    // Unlinked users whose lifecycle changed are read first: only one that can be created
    // (or matched) is worth a whole pass.
    if !unlinked.is_empty() {
        let needed = fetch::unlinked_needing_a_pass(clients, store, &unlinked).await;
        clients.save_pacing(store);
        match needed? {
            Some(reason) => return Ok(Ran::Escalate(reason)),
            None if matches!(&target, Target::Pairs(p) if p.is_empty()) => {
                return Ok(Ran::Nothing);
            }
            None => {}
        }
    }
    let kind = target.kind();
    let span = tracing::info_span!(
        "sync_pass",
        pass_id = tracing::field::Empty,
        dry_run = opts.dry_run,
        kind = kind.as_str()
    );
    let mut pass = Pass {
        config,
        clients,
        store,
        opts,
        target: &target,
        pass_id: None,
        saved: match scope {
            Scope::Saved(s) => Some(s),
            _ => None,
        },
    };
    let ran = drive(&mut pass, &span).instrument(span.clone()).await;
    clients.save_pacing(store);
    let mut report = match ran? {
        Ran::Pass(report) => report,
        other => return Ok(other),
    };
    report.kind = kind;
    if reviewed_only && matches!(scope, Scope::Whole { .. }) {
        store.set_pending_review(report.plan.change_count())?;
    }
    if reviewed_only {
        tracing::info!(
            planned = report.plan.change_count(),
            "safety.reviewed_only: this pass only planned; `plan --out FILE`, then `sync --plan FILE`, applies reviewed changes"
        );
    }
    warn_if_session_at_risk(config, store);
    if let Some(id) = pass.pass_id {
        store.finish_pass(id, &record::summary_of(&report))?;
        store.checkpoint()?;
    }
    Ok(Ran::Pass(report))
}

/// A whole pass (`full`: Okta read whole even where an incremental read would do).
pub async fn run_whole(
    config: &Config,
    clients: &Clients,
    store: &Store,
    full: bool,
    opts: PassOptions<'_>,
) -> anyhow::Result<PassReport> {
    match run(config, clients, store, &Scope::Whole { full }, opts).await? {
        Ran::Pass(report) => Ok(*report),
        // A whole scope reads everything there is: it has nothing to escalate to.
        other => anyhow::bail!("a whole pass ended as {other:?}"),
    }
}

/// The pass from its record onwards: a whole pass is recorded before its reads (an
/// incremental read reaches back to the start of the last good one); a targeted pass once
/// its pairs are read (one that cannot read them escalates, unrecorded).
async fn drive(pass: &mut Pass<'_>, span: &tracing::Span) -> anyhow::Result<Ran> {
    let (store, opts) = (pass.store, pass.opts);
    let begin = |kind: PassKind| -> anyhow::Result<Option<i64>> {
        let id = (!opts.dry_run)
            .then(|| store.begin_pass(kind))
            .transpose()?;
        span.record("pass_id", id.unwrap_or(0));
        Ok(id)
    };
    let whole = pass.target.is_whole();
    if whole {
        pass.pass_id = begin(pass.target.kind())?;
    }
    // Bulk tasks an earlier run left are polled to their end before anything is read: a
    // read taken while a task runs says nothing about its records.
    let tasks = match whole && !opts.dry_run {
        true => {
            settle_tasks(
                store,
                &pass.clients.telus,
                &pass.config.policy,
                pass.config.telus.bulk_task_timeout,
                opts.stop,
            )
            .await?
        }
        false => TaskSettling::default(),
    };
    let fetched = match fetch::read(pass)
        .instrument(tracing::info_span!("fetch"))
        .await?
    {
        Fetch::Read(fetched) => fetched,
        Fetch::Failed(message) => {
            return Ok(Ran::Pass(Box::new(PassReport::system_failed(
                pass.pass_id,
                opts.dry_run,
                message,
            ))));
        }
        Fetch::Escalate(reason) => return Ok(Ran::Escalate(reason)),
    };
    if !whole {
        pass.pass_id = begin(pass.target.kind())?;
    }
    let lost = match pass.target {
        Target::Pairs(_) => (0, 0),
        _ => imports::settle_lost(pass).await?,
    };
    let mut settled = pass.settle(&fetched, &tasks.in_flight)?;
    settled.0 += tasks.settled.0 + lost.0;
    settled.1 += tasks.settled.1 + lost.1;
    let mut plan = pass.plan(&fetched, &tasks.in_flight)?;
    match pass.target {
        Target::Whole { .. } => imports::whole_queue(pass, &fetched, &mut plan).await?,
        Target::Imports { request, .. } => {
            imports::targeted_queue(pass, &fetched, &mut plan, request).await?
        }
        Target::Pairs(_) => {}
    }
    let reviewed = match pass.saved {
        Some(s) => saved::select(pass, s, &fetched, &mut plan)?,
        None => Vec::new(),
    };
    let mut report = pass.apply_and_record(fetched, plan, settled).await?;
    if let Some(s) = pass.saved {
        saved::record(pass, s, &reviewed)?;
    }
    report.reviewed = reviewed;
    Ok(Ran::Pass(Box::new(report)))
}

/// Unlinked Okta users whose lifecycle changed, with the event type: read before a pass.
type Unlinked = Vec<(crate::model::OktaId, String)>;

/// What `scope` reads, or why no pass runs: nothing named is linked, or a targeted pass
/// cannot decide (an unlinked user, a created or deleted extension, a burst, a change of
/// one of the users sent earlier that only a whole pass can confirm).
fn resolve_target(
    config: &Config,
    store: &Store,
    scope: &Scope,
) -> anyhow::Result<Result<(Target, Unlinked), Ran>> {
    let named = match scope {
        Scope::Whole { full } => {
            let since = fetch::incremental_since(config, store, *full)?;
            return Ok(Ok((Target::Whole { since }, Vec::new())));
        }
        Scope::Named(named) => named,
        Scope::Saved(s) => return Ok(Ok((saved::target(config, store, s)?, Vec::new()))),
        Scope::Imports(request) => {
            let (queue, _) = store.import_queue()?;
            let exts: Vec<crate::model::ExtId> = queue
                .into_iter()
                .filter(|c| {
                    request.named.contains(&c.email)
                        || (request.all_new && c.outcome == crate::reconcile::import::Outcome::New)
                })
                .map(|c| c.ext_id)
                .collect();
            if exts.is_empty() {
                return Ok(Err(Ran::Nothing));
            }
            let target = Target::Imports {
                exts,
                request: request.clone(),
            };
            return Ok(Ok((target, Vec::new())));
        }
    };
    let (pairs, unlinked) = match resolve(named, &store.links()?, &config.okta.scope) {
        Ok(r) if r.pairs.is_empty() && r.unlinked.is_empty() => return Ok(Err(Ran::Nothing)),
        Ok(r) => (r.pairs, r.unlinked),
        Err(reason) => return Ok(Err(Ran::Escalate(reason))),
    };
    // Unconfirmed changes of these users (an answer lost) are settled against the read; a
    // bulk task or a create is left to a whole pass, which polls tasks and finds created
    // users by reference.
    let tasks: BTreeSet<i64> = store.unfinished_tasks()?.into_iter().map(|t| t.0).collect();
    if let Some(r) = record::unconfirmed_of(store, &pairs)?
        .iter()
        .find(|r| r.rule == crate::reconcile::Rule::Create || tasks.contains(&r.id))
    {
        return Ok(Err(Ran::Escalate(format!(
            "a change to {} sent earlier is not confirmed yet",
            r.user_email
        ))));
    }
    Ok(Ok((Target::Pairs(pairs), unlinked)))
}

/// Says in the log, once per pass, when the TELUS session can lapse (the rule `status` and
/// the `okta_telus_sync_telus_session_at_risk` gauge follow).
fn warn_if_session_at_risk(config: &Config, store: &Store) {
    let stored = store.credentials("telus").ok().flatten();
    let a = crate::report::session_assessment(config, stored.as_ref());
    if a.at_risk {
        tracing::warn!(session = %a.line, "the TELUS session can lapse");
    }
}

/// The one-writer lock for a pass that may write: `Ok(None)` for a dry run (no lock),
/// `Err(message)` naming the holder when another pass keeps it past `opts.lock_wait`.
async fn take_store(
    store: &Store,
    opts: &PassOptions<'_>,
) -> anyhow::Result<Result<Option<crate::store::lock::PassLock>, String>> {
    if opts.dry_run || store.path().as_os_str() == ":memory:" {
        return Ok(Ok(None));
    }
    let path = store.path();
    let taken = crate::store::lock::PassLock::acquire_within(&path, opts.lock_wait)
        .await
        .with_context(|| format!("locking the store {}", path.display()))?;
    Ok(taken.map(Some).map_err(|holder| {
        format!(
            "another pass holds the store {} ({holder}); nothing was done",
            path.display()
        )
    }))
}
