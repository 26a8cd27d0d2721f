//! A pass after its reads: settle what an earlier run left unconfirmed, decide (the one
//! pure plan), apply, and record each user's outcome, the snapshots, links and agreed values.

use super::context::{Fetched, Pass, Target};
use crate::apply::{ApplyContext, ApplyReport, Targets, apply_plan};
use crate::config::Config;
use crate::model::{ExtId, Link, OktaId, PassOutcome};
use crate::reconcile::decide::{self, AfterCreate};
use crate::reconcile::retry::{fingerprint, record_failure};
use crate::reconcile::{HoldContext, Plan, PlannedAction, Rule, Unfinished, UserRef, settle};
use crate::store::{JournalRow, PassSummary, Store};
use crate::summary::PassReport;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tracing::Instrument as _;

impl Pass<'_> {
    /// Phase 2: changes a run that stopped mid-apply left `planned` are settled against what
    /// was just read, before anything is planned: nothing done twice, nothing lost. Returns
    /// (landed, not landed). Quarantined users are released here on `--retry-quarantined`.
    pub fn settle(&self, fetched: &Fetched, in_flight: &[ExtId]) -> anyhow::Result<(usize, usize)> {
        if self.opts.dry_run {
            return Ok((0, 0));
        }
        let rows: Vec<Unfinished> = match self.target {
            Target::Whole { .. } => self.store.unfinished()?,
            Target::Pairs(pairs) => unconfirmed_of(self.store, pairs)?,
            Target::Imports { .. } => Vec::new(),
        }
        .into_iter()
        // Imports are settled by reading their login (`imports::settle_lost`).
        .filter(|r| r.rule != Rule::Import)
        .map(unfinished)
        .collect();
        let mut settled = (0, 0);
        if !rows.is_empty() {
            let mut settlements = settle(&rows, &fetched.okta, &fetched.telus, &self.config.policy);
            // A bulk update that may still be running: a read showing the change proves it
            // landed; one not showing it yet proves nothing, so that row waits.
            let waiting: std::collections::HashSet<i64> = rows
                .iter()
                .filter(|r| r.ext_id.as_ref().is_some_and(|id| in_flight.contains(id)))
                .map(|r| r.row_id)
                .collect();
            settlements.retain(|s| s.landed || !waiting.contains(&s.row_id));
            let landed = settlements.iter().filter(|s| s.landed).count();
            settled = (landed, settlements.len() - landed);
            self.store.settle(&settlements)?;
            tracing::warn!(
                landed,
                not_landed = settled.1,
                "settled changes interrupted by an earlier run"
            );
        }
        if self.opts.retry_quarantined {
            let n = self.store.release_quarantined()?;
            let data = self.store.clear_data_problems()?;
            let refusals = self.store.clear_all_okta_refusals()?;
            tracing::info!(
                released = n,
                data_problems = data,
                known_refusals = refusals,
                "quarantined users released; known data problems and refusals tried again"
            );
        }
        Ok(settled)
    }

    /// Phase 3: the one pure call that decides the pass.
    /// The whole-directory holds do not apply to a handful of users read one by one (an
    /// empty read, vanished users, the changed share); the limits on deactivations and
    /// creations do.
    pub fn plan(&self, fetched: &Fetched, in_flight: &[ExtId]) -> anyhow::Result<Plan> {
        // `import confirm` plans only its imports (`imports::targeted_queue`).
        if let Target::Imports { .. } = self.target {
            return Ok(Plan {
                approved: self.opts.approve,
                ..Plan::default()
            });
        }
        if let Target::Pairs(pairs) = self.target {
            let links: Vec<Link> = pairs
                .iter()
                .map(|(o, e)| Link {
                    okta_id: o.clone(),
                    ext_id: e.clone(),
                })
                .collect();
            let n = pairs.len();
            return self.decide(fetched, &links, &[], |_| HoldContext {
                known_okta: n,
                known_telus: n,
                okta_read: n,
                telus_read: n,
                has_baseline: false,
            });
        }
        let (known_okta, known_telus) = self.store.snapshot_counts()?;
        self.decide(fetched, &self.store.links()?, in_flight, |has_baseline| {
            HoldContext {
                known_okta,
                known_telus,
                okta_read: fetched.okta.len(),
                telus_read: fetched.telus.len(),
                has_baseline,
            }
        })
    }

    /// The pure plan over `fetched` and `links`, with the stored baseline, refusals and
    /// failures (none for a dry run: it shows every user's changes); `hold` is given whether a
    /// baseline exists. Logs what the plan holds back.
    fn decide(
        &self,
        fetched: &Fetched,
        links: &[crate::model::Link],
        in_flight: &[ExtId],
        hold: impl FnOnce(bool) -> HoldContext,
    ) -> anyhow::Result<Plan> {
        let store = self.store;
        let baseline = store.baseline()?;
        let failures = match self.opts.dry_run {
            true => Vec::new(),
            false => store.failures()?,
        };
        let _g = tracing::info_span!("reconcile").entered();
        let plan = decide::plan(&decide::Inputs {
            okta: &fetched.okta,
            telus: &fetched.telus,
            links,
            baseline: &baseline,
            policy: &self.config.policy,
            safety: &self.config.safety,
            okta_writes: &fetched.okta_writes,
            known_refusals: &store.okta_refusals()?,
            data_problems: &store.data_problems()?,
            hold: hold(!baseline.is_empty()),
            failures: &failures,
            now: chrono::Utc::now(),
            approved: self.opts.approve,
            in_flight,
        });
        log_plan(&plan);
        Ok(plan)
    }

    /// Phase 4: unless held or a dry run, store the snapshots, links and agreed values, apply
    /// the plan, and record each attempted user's failure or success.
    pub async fn apply_and_record(
        &self,
        fetched: Fetched,
        plan: Plan,
        settled: (usize, usize),
    ) -> anyhow::Result<PassReport> {
        let (config, store) = (self.config, self.store);
        let mut apply = ApplyReport::default();
        // The queue is kept even when the pass is held: the hold asks the admin to review it.
        if let (Some(_), Target::Whole { .. }) = (self.pass_id, self.target) {
            store.replace_import_queue(&plan.imports)?;
        }
        if let (Some(pass_id), false) = (self.pass_id, plan.is_held()) {
            match self.target {
                Target::Whole { .. } => store.save_snapshots(&fetched.okta, &fetched.telus)?,
                Target::Pairs(_) => store.merge_snapshots(&fetched.okta, &fetched.telus)?,
                Target::Imports { .. } => store.merge_snapshots(&[], &fetched.telus)?,
            }
            store.add_links(&plan.new_links)?;
            store.set_baseline(&plan.agreed)?;
            record_data_problems(
                store,
                pass_id,
                &plan,
                (!self.target.is_whole()).then_some(&fetched.okta),
            )?;
            let known_refusals = store.okta_refusals()?;
            let ctx = ApplyContext {
                pass_id,
                store,
                okta: &self.clients.okta,
                telus: &self.clients.telus,
                targets: Targets {
                    telus_users: fetched.telus.iter().map(|u| (&u.id, u)).collect(),
                    okta_users: fetched.okta.iter().map(|u| (&u.id, u)).collect(),
                    okta_masters: &fetched.okta_writes.masters,
                },
                after_create: AfterCreate {
                    policy: &config.policy,
                    okta_writes: &fetched.okta_writes,
                    known_refusals: &known_refusals,
                },
                stop: self.opts.stop,
                okta_concurrency: config.okta.write_concurrency,
                bulk_task_timeout: config.telus.bulk_task_timeout,
                import_into: import_into(config),
            };
            let mut progress = Progress::new(self.opts.progress_bar, plan.change_count());
            apply = apply_plan(&plan, &ctx, &mut |done, total| progress.update(done, total))
                .instrument(tracing::info_span!("apply"))
                .await?;
            progress.finish();
            record_outcomes(config, store, &plan, &apply)?;
            drop_imported(store, &plan)?;
            prune_if_due(config, store)?;
        }
        let outcome = if apply.systemic.is_some() {
            PassOutcome::SystemFailed
        } else if plan.is_held() {
            PassOutcome::Held
        } else if plan.failed_users() > 0
            || !apply.failed_users.is_empty()
            || !plan.deferred.is_empty()
        {
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
            pass_id: self.pass_id,
            kind: self.target.kind(),
            dry_run: self.opts.dry_run,
            okta_read: fetched.okta.len(),
            telus_read: fetched.telus.len(),
            system_error: apply.systemic.clone(),
            settled,
            plan,
            apply,
            outcome,
            busy: None,
            reviewed: Vec::new(),
        })
    }
}

/// Candidates this pass linked (imported, or an answer lost: pending) leave the stored
/// queue at once; the next whole pass computes it again anyway.
fn drop_imported(store: &Store, plan: &Plan) -> anyhow::Result<()> {
    let exts: Vec<ExtId> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, crate::reconcile::Action::Import { .. }))
        .filter_map(|a| a.user.ext_id.clone())
        .collect();
    if !exts.is_empty() {
        store.drop_from_import_queue(&exts)?;
    }
    Ok(())
}

/// Where an imported user goes besides the directory: the scope's group (`groupIds`), or its
/// app when `import.assign_to_app` allows it (config validation and `import confirm` refuse
/// an app scope without it).
pub fn import_into(config: &Config) -> crate::okta::CreateInto {
    match &config.okta.scope {
        crate::config::OktaScope::Group(g) => crate::okta::CreateInto {
            group: Some(g.clone()),
            app: None,
        },
        crate::config::OktaScope::App(a) if config.policy.import.assign_to_app => {
            crate::okta::CreateInto {
                group: None,
                app: Some(a.clone()),
            }
        }
        _ => crate::okta::CreateInto::default(),
    }
}

/// A journal row left `planned`, as the settlement reads it.
fn unfinished(r: JournalRow) -> Unfinished {
    Unfinished {
        row_id: r.id,
        system: r.system,
        okta_id: r.okta_id.map(OktaId),
        ext_id: r.ext_id.map(ExtId),
        attr: r.attribute,
        field: r.field,
        new: r.new,
        rule: r.rule,
    }
}

/// Says in the log what the plan holds back: holds, attributes left out, users not synced.
fn log_plan(plan: &Plan) {
    if !plan.held.is_empty() {
        let reasons = plan.held_reasons().join("; ");
        if plan.approved {
            tracing::warn!(reasons = %reasons, "safety hold lifted by --approve");
        } else {
            tracing::error!(reasons = %reasons, "pass held by a safety limit: nothing written; run `sync --approve` to proceed once");
        }
    }
    for line in &plan.left_out {
        tracing::error!(problem = %line, "okta writes left out: fix the row or Okta's profile mastering");
    }
    for p in &plan.problems {
        // Values only at DEBUG: the message names the attribute, never what it holds.
        if p.kind.fails_user() {
            tracing::warn!(user = %p.user.email, kind = p.kind.as_str(), attr = p.attr.as_deref().unwrap_or(""), problem = %p.message, "user not synced");
        } else {
            tracing::debug!(user = %p.user.email, kind = p.kind.as_str(), problem = %p.message, "noted");
        }
        if let Some(values) = &p.values {
            tracing::debug!(user = %p.user.email, kind = p.kind.as_str(), values = %values, "values");
        }
    }
}

/// Changes journalled `planned` for the users of `pairs`.
pub fn unconfirmed_of(store: &Store, pairs: &[(OktaId, ExtId)]) -> anyhow::Result<Vec<JournalRow>> {
    let okta: BTreeSet<&str> = pairs.iter().map(|(o, _)| o.0.as_str()).collect();
    let ext: BTreeSet<&str> = pairs.iter().map(|(_, e)| e.0.as_str()).collect();
    Ok(store
        .unfinished()?
        .into_iter()
        .filter(|r| {
            r.okta_id.as_deref().is_some_and(|o| okta.contains(o))
                || r.ext_id.as_deref().is_some_and(|e| ext.contains(e))
        })
        .collect())
}

/// Keeps the plan's data problems in the store (those of the users a targeted pass read, or
/// all of them), and journals each one found for the first time `failed`: reported once,
/// then listed and not failed while the values are unchanged.
fn record_data_problems(
    store: &Store,
    pass_id: i64,
    plan: &Plan,
    targeted: Option<&Vec<crate::model::OktaUser>>,
) -> anyhow::Result<()> {
    let users: Option<Vec<&OktaId>> = targeted.map(|u| u.iter().map(|u| &u.id).collect());
    store.replace_data_problems(users.as_deref(), &plan.data_problems)?;
    for d in plan.data_problems.iter().filter(|d| d.since.is_empty()) {
        let rows = store.journal_planned(&[crate::store::JournalEntry {
            pass_id,
            system: d.system,
            okta_id: d.okta_id.as_ref(),
            ext_id: d.ext_id.as_ref(),
            user_email: &d.email,
            attribute: &d.attr,
            field: &d.field,
            old: None,
            new: d.value.as_deref(),
            rule: Rule::Master,
        }])?;
        store.journal_outcome(
            &rows,
            crate::store::Outcome::Failed,
            Some(&d.code),
            Some(&d.explanation),
            &[],
        )?;
    }
    Ok(())
}

/// Records each attempted user's failure (backoff, quarantine) or clears it on success. A
/// user's failures are keyed by its Okta id (else its extension), so a create's dependent
/// step counts for the user that was created.
fn record_outcomes(
    config: &Config,
    store: &Store,
    applied: &Plan,
    report: &ApplyReport,
) -> anyhow::Result<()> {
    let failures: HashMap<String, crate::reconcile::retry::FailureRow> = store
        .failures()?
        .into_iter()
        .map(|f| (f.user_key.clone(), f))
        .collect();
    let failed: HashMap<String, &(Option<String>, String)> = report
        .failed_users
        .iter()
        .map(|(user, failure)| (user.key(), failure))
        .collect();
    let mut by_user: BTreeMap<String, Vec<&PlannedAction>> = BTreeMap::new();
    for a in &applied.actions {
        by_user.entry(a.user.key()).or_default().push(a);
    }
    let now = chrono::Utc::now();
    // Users whose only failure was a value refused as invalid: remembered as a data
    // problem (not sent again while unchanged), so no backoff, no quarantine.
    let data_only: std::collections::HashSet<String> = report
        .data_problem_users
        .iter()
        .filter(|u| !report.other_failure_users.contains(*u))
        .map(UserRef::key)
        .collect();
    for (key, actions) in by_user {
        match failed.get(&key) {
            Some(_) if data_only.contains(&key) && failures.contains_key(&key) => {
                store.clear_failure(&key)?;
            }
            Some(_) if data_only.contains(&key) => {}
            // Okta's refusal of an attribute for this user is remembered on its own (it is
            // not sent again while nothing changed): no backoff, no quarantine.
            Some((Some(code), _))
                if code == crate::okta::REFUSED_MASTERED && failures.contains_key(&key) =>
            {
                store.clear_failure(&key)?;
            }
            Some((Some(code), _)) if code == crate::okta::REFUSED_MASTERED => {}
            Some(failure) => {
                let row = record_failure(
                    failures.get(&key),
                    &key,
                    &actions[0].user.email,
                    failure,
                    &fingerprint(actions.iter().copied()),
                    now,
                    &config.retry,
                );
                if row.quarantined {
                    tracing::error!(user = %actions[0].user.email, failures = row.consecutive, "user quarantined after repeated failures");
                }
                store.put_failure(&row)?;
            }
            None if report.systemic.is_none() && failures.contains_key(&key) => {
                store.clear_failure(&key)?;
            }
            None => {}
        }
    }
    Ok(())
}

/// Prunes journal rows older than `store.journal_days`, at most once a day.
fn prune_if_due(config: &Config, store: &Store) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let due = match store.last_prune()? {
        Some(t) => now - t > chrono::Duration::hours(24),
        None => true,
    };
    if due {
        let cutoff = now - chrono::Duration::days(i64::from(config.journal_days));
        let n =
            store.prune_journal(&cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))?;
        store.save_last_prune(now)?;
        if n > 0 {
            tracing::info!(pruned = n, "old journal rows pruned");
        }
    }
    Ok(())
}

/// Apply progress: an INFO line at least every 10 seconds, and a bar on a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_log: std::time::Instant,
}

impl Progress {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(want_bar: bool, total: usize) -> Progress {
        use std::io::IsTerminal as _;
        let bar = (want_bar && total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} changes  {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            last_log: std::time::Instant::now(),
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
        if self.last_log.elapsed() >= Self::EVERY {
            self.last_log = std::time::Instant::now();
            tracing::info!(done, total, "applying changes");
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What a finished pass records in the store.
pub fn summary_of(report: &PassReport) -> PassSummary {
    let message = report
        .system_error
        .clone()
        .or_else(|| (!report.plan.held.is_empty()).then(|| report.plan.held_reasons().join("; ")))
        .or_else(|| {
            (!report.plan.left_out.is_empty())
                .then(|| format!("left out: {}", report.plan.left_out.join("; ")))
        });
    PassSummary {
        outcome: Some(report.outcome),
        okta_read: report.okta_read,
        telus_read: report.telus_read,
        planned: report.plan.change_count(),
        applied: report.apply.applied,
        failed: report.apply.failed,
        failed_users: report.failed_users(),
        message,
    }
}
