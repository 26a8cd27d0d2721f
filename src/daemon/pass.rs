//! One pass: fetch both directories (IO), reconcile (pure), apply (IO), and record it.

use crate::apply::{ApplyReport, apply_plan};
use crate::config::Config;
use crate::http::HttpSettings;
use crate::model::{ExtId, TelusUser};
use crate::reconcile::{HoldContext, Plan, Snapshot, hold_reasons, plan_pass};
use crate::store::{PassSummary, Store};
use crate::{okta, telus};
use std::collections::HashMap;
use tracing::Instrument;

/// Both API clients, kept across passes so tokens and rate-limit state carry over.
pub struct Clients {
    pub okta: okta::Client,
    pub telus: telus::Client,
}

impl Clients {
    pub fn new(config: &Config, settings: HttpSettings) -> Clients {
        Clients {
            okta: okta::Client::new(&config.okta, settings),
            telus: telus::Client::new(&config.telus, settings),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Compute the plan, write nothing to either API or to the store.
    pub dry_run: bool,
    /// Lift a safety hold for this pass.
    pub approve: bool,
}

/// How a pass ended, mapped to `sync`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// Everything applied, or nothing to do.
    Clean,
    /// Some users failed (duplicate email, rejected write, unsettled conflict).
    UsersFailed,
    /// Held by a safety limit: nothing was written.
    Held,
    /// A whole system failed (auth, unreachable, repeated 5xx).
    SystemFailed,
}

impl PassOutcome {
    pub fn exit_code(self) -> i32 {
        match self {
            PassOutcome::Clean => 0,
            PassOutcome::UsersFailed => 1,
            PassOutcome::Held => 3,
            PassOutcome::SystemFailed => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::Clean => "ok",
            PassOutcome::UsersFailed => "users-failed",
            PassOutcome::Held => "held",
            PassOutcome::SystemFailed => "system-failed",
        }
    }
}

#[derive(Debug)]
pub struct PassReport {
    pub pass_id: Option<i64>,
    pub dry_run: bool,
    pub okta_read: usize,
    pub telus_read: usize,
    pub plan: Plan,
    pub apply: ApplyReport,
    /// The whole-system failure that ended the pass, if any.
    pub system_error: Option<String>,
    pub outcome: PassOutcome,
}

impl PassReport {
    pub fn failed_users(&self) -> usize {
        self.plan.failed_users() + self.apply.failed_users.len()
    }
}

/// Runs one full pass. Errors only when the store itself fails.
pub async fn run_one_pass(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions,
) -> anyhow::Result<PassReport> {
    let pass_id = if opts.dry_run {
        None
    } else {
        Some(store.begin_pass("full")?)
    };
    let span = tracing::info_span!(
        "sync_pass",
        pass_id = pass_id.unwrap_or(0),
        dry_run = opts.dry_run
    );
    let report = pass_body(config, clients, store, opts, pass_id)
        .instrument(span)
        .await?;
    if let Some(id) = pass_id {
        store.finish_pass(
            id,
            &PassSummary {
                outcome: report.outcome.as_str().to_string(),
                okta_read: report.okta_read,
                telus_read: report.telus_read,
                planned: report.plan.change_count(),
                applied: report.apply.applied,
                failed: report.apply.failed,
                failed_users: report.failed_users(),
                message: report.system_error.clone().or_else(|| {
                    (!report.plan.held.is_empty()).then(|| report.plan.held.join("; "))
                }),
            },
        )?;
    }
    Ok(report)
}

async fn pass_body(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions,
    pass_id: Option<i64>,
) -> anyhow::Result<PassReport> {
    let fetched =
        async { tokio::join!(clients.okta.fetch_users(None), clients.telus.fetch_users()) }
            .instrument(tracing::info_span!("fetch"))
            .await;
    let (okta_users, telus_users) = match fetched {
        (Ok(o), Ok(t)) => (o, t),
        (o, t) => {
            let mut errors = Vec::new();
            if let Err(e) = o {
                errors.push(e.to_string());
            }
            if let Err(e) = t {
                errors.push(e.to_string());
            }
            let message = errors.join("; ");
            tracing::error!(error = %message, "fetch failed, pass ended");
            return Ok(PassReport {
                pass_id,
                dry_run: opts.dry_run,
                okta_read: 0,
                telus_read: 0,
                plan: Plan::default(),
                apply: ApplyReport::default(),
                system_error: Some(message),
                outcome: PassOutcome::SystemFailed,
            });
        }
    };
    tracing::info!(
        okta = okta_users.len(),
        telus = telus_users.len(),
        "directories read"
    );

    let links = store.links()?;
    let baseline = store.baseline()?;
    let (known_okta, known_telus) = store.snapshot_counts()?;
    let plan = {
        let _g = tracing::info_span!("reconcile").entered();
        let mut plan = plan_pass(
            &Snapshot {
                okta: &okta_users,
                telus: &telus_users,
                links: &links,
                baseline: &baseline,
            },
            &config.policy,
        );
        plan.held = hold_reasons(
            &plan,
            &config.safety,
            &HoldContext {
                known_okta,
                known_telus,
                okta_read: okta_users.len(),
                telus_read: telus_users.len(),
                has_baseline: !baseline.is_empty(),
            },
        );
        plan
    };
    let held = !plan.held.is_empty() && !opts.approve;
    if !plan.held.is_empty() {
        if opts.approve {
            tracing::warn!(reasons = %plan.held.join("; "), "safety hold lifted by --approve");
        } else {
            tracing::error!(reasons = %plan.held.join("; "), "pass held by a safety limit: nothing written; run `sync --approve` to proceed once");
        }
    }
    for p in &plan.problems {
        if p.kind.fails_user() {
            tracing::warn!(user = %p.user.email, kind = p.kind.as_str(), attr = p.attr.as_deref().unwrap_or(""), problem = %p.message, "user not synced");
        } else {
            tracing::debug!(user = %p.user.email, kind = p.kind.as_str(), problem = %p.message, "noted");
        }
    }

    let mut apply = ApplyReport::default();
    if let (Some(id), false) = (pass_id, held) {
        store.save_snapshots(&okta_users, &telus_users)?;
        store.add_links(&plan.new_links)?;
        store.set_baseline(&plan.agreed)?;
        let by_id: HashMap<ExtId, TelusUser> = telus_users
            .iter()
            .map(|u| (u.id.clone(), u.clone()))
            .collect();
        apply = apply_plan(&plan, id, store, &clients.okta, &clients.telus, &by_id)
            .instrument(tracing::info_span!("apply"))
            .await?;
        if !apply.created.is_empty() && apply.systemic.is_none() {
            follow_up_creates(
                config,
                clients,
                store,
                id,
                &okta_users,
                telus_users.clone(),
                &mut apply,
            )
            .await?;
        }
    }

    let outcome = if apply.systemic.is_some() {
        PassOutcome::SystemFailed
    } else if held {
        PassOutcome::Held
    } else if plan.failed_users() > 0 || !apply.failed_users.is_empty() {
        PassOutcome::UsersFailed
    } else {
        PassOutcome::Clean
    };
    tracing::info!(
        planned = plan.change_count(),
        applied = apply.applied,
        failed = apply.failed,
        failed_users = plan.failed_users() + apply.failed_users.len(),
        outcome = outcome.as_str(),
        "pass complete"
    );
    Ok(PassReport {
        pass_id,
        dry_run: opts.dry_run,
        okta_read: okta_users.len(),
        telus_read: telus_users.len(),
        system_error: apply.systemic.clone(),
        plan,
        apply,
        outcome,
    })
}

/// A TELUS user just created has an extension number Okta's `primaryPhone` must learn: plan
/// again for the created users only, with them in the snapshot, and apply that.
async fn follow_up_creates(
    config: &Config,
    clients: &Clients,
    store: &Store,
    pass_id: i64,
    okta_users: &[crate::model::OktaUser],
    mut telus_users: Vec<TelusUser>,
    apply: &mut ApplyReport,
) -> anyhow::Result<()> {
    let created: Vec<TelusUser> = std::mem::take(&mut apply.created);
    let created_ids: std::collections::HashSet<ExtId> =
        created.iter().map(|u| u.id.clone()).collect();
    telus_users.extend(created.iter().cloned());
    let links = store.links()?;
    let baseline = store.baseline()?;
    let mut plan = plan_pass(
        &Snapshot {
            okta: okta_users,
            telus: &telus_users,
            links: &links,
            baseline: &baseline,
        },
        &config.policy,
    );
    plan.actions.retain(|a| {
        a.user
            .ext_id
            .as_ref()
            .is_some_and(|id| created_ids.contains(id))
    });
    let created_okta: std::collections::HashSet<_> = links
        .iter()
        .filter(|l| created_ids.contains(&l.ext_id))
        .map(|l| l.okta_id.clone())
        .collect();
    plan.agreed.retain(|a| created_okta.contains(&a.okta_id));
    store.set_baseline(&plan.agreed)?;
    let by_id: HashMap<ExtId, TelusUser> =
        created.iter().map(|u| (u.id.clone(), u.clone())).collect();
    let more = apply_plan(&plan, pass_id, store, &clients.okta, &clients.telus, &by_id).await?;
    apply.applied += more.applied;
    apply.failed += more.failed;
    apply.failed_users.extend(more.failed_users);
    apply.systemic = apply.systemic.take().or(more.systemic);
    apply.created = created;
    Ok(())
}
