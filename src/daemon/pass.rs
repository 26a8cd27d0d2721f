//! One pass: fetch both directories (IO), reconcile (pure), apply (IO), and record it.

use crate::apply::{ApplyContext, ApplyReport, Targets, TaskSettling, apply_plan, settle_tasks};
use crate::config::Config;
use crate::http::HttpSettings;
use crate::model::{ExtId, OktaId, PassKind, PassOutcome, TelusUser};
use crate::reconcile::decide::{self, AfterCreate, OktaWrites};
use crate::reconcile::retry::{fingerprint, record_failure, user_key};
use crate::reconcile::{HoldContext, Plan, PlannedAction, Unfinished, UserRef, settle};
use crate::store::{PassSummary, Store};
use crate::summary::PassReport;
use crate::{okta, telus};
use anyhow::Context as _;
use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

/// Both API clients, kept across passes so tokens and rate-limit state carry over.
pub struct Clients {
    /// Shared with the event channels: the Okta poller recognises this client's own writes;
    /// the WebSocket listener shares the TELUS token and pacing.
    pub okta: std::sync::Arc<okta::Client>,
    pub telus: std::sync::Arc<telus::Client>,
}

impl Clients {
    /// Clients that keep nothing across runs (tests, the sandbox's first look).
    pub fn new(config: &Config, settings: HttpSettings) -> Clients {
        Clients {
            okta: std::sync::Arc::new(okta::Client::new(&config.okta, settings)),
            telus: std::sync::Arc::new(telus::Client::new(&config.telus, settings)),
        }
    }

    /// Clients resuming from the store: the TELUS session from `auth telus` and rate-limit
    /// penalties still running; rotated tokens and new penalties are written back to it.
    pub fn from_store(
        config: &Config,
        settings: HttpSettings,
        store: &Store,
    ) -> anyhow::Result<Clients> {
        let mut restored = telus::auth::Restored {
            tokens: store.credentials("telus")?,
            penalties: Vec::new(),
        };
        for group in ["Light", "Medium", "Heavy", "Auth"] {
            if let Some(v) = store.meta(&format!("telus.penalty.{group}"))?
                && let Ok(until) = v.parse::<i64>()
            {
                restored.penalties.push((group.to_string(), until));
            }
        }
        Ok(Clients {
            okta: std::sync::Arc::new(okta::Client::new(&config.okta, settings)),
            telus: std::sync::Arc::new(telus::Client::with_persistence(
                &config.telus,
                settings,
                restored,
                Box::new(StorePersist {
                    path: config.store_path.clone(),
                }),
            )),
        })
    }
}

impl Clients {
    /// Takes up the TELUS rate-limit budgets and penalties, and the Okta buckets (what is
    /// left until the reset), that another process left in the store, where they are
    /// stricter than what this process knows.
    pub fn restore_pacing(&self, store: &Store) {
        let mut saved = Vec::new();
        for group in telus::pacing::GROUPS {
            let budget = store
                .meta(&format!("telus.budget.{group}"))
                .ok()
                .flatten()
                .and_then(|v| {
                    let (remaining, until) = v.split_once(',')?;
                    Some((remaining.parse().ok()?, until.parse().ok()?))
                });
            let penalty = store
                .meta(&format!("telus.penalty.{group}"))
                .ok()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
                .map(|until| (0u64, until));
            saved.extend(
                budget
                    .into_iter()
                    .chain(penalty)
                    .map(|(r, u)| (group, r, u)),
            );
        }
        self.telus.merge_pacing(&saved);
        let mut saved = Vec::new();
        for bucket in okta::BUCKETS {
            if let Some(v) = store.meta(&format!("okta.bucket.{bucket}")).ok().flatten() {
                let parts: Vec<u64> = v.split(',').filter_map(|p| p.parse().ok()).collect();
                if let [remaining, limit, reset] = parts[..] {
                    saved.push((bucket, remaining, limit, reset));
                }
            }
        }
        self.okta.merge_pacing(&saved);
    }

    /// Leaves this process's TELUS budgets and Okta buckets (what is left, and when each
    /// window ends) in the store, so that the next process, or an admin's command beside the daemon, paces from
    /// them instead of from a full budget.
    pub fn save_pacing(&self, store: &Store) {
        for (group, remaining, until_ms) in self.telus.pacing() {
            if let Err(e) = store.set_meta(
                &format!("telus.budget.{group}"),
                &format!("{remaining},{until_ms}"),
            ) {
                tracing::warn!(group, error = %e, "cannot save the rate-limit budget");
            }
        }
        for (bucket, remaining, limit, reset) in self.okta.pacing() {
            if let Err(e) = store.set_meta(
                &format!("okta.bucket.{bucket}"),
                &format!("{remaining},{limit},{reset}"),
            ) {
                tracing::warn!(bucket, error = %e, "cannot save the rate-limit budget");
            }
        }
    }
}

/// Persists TELUS client state through its own connection to the store file.
struct StorePersist {
    path: std::path::PathBuf,
}

impl telus::auth::Persist for StorePersist {
    fn save_tokens(&self, tokens: &crate::model::TokenPair) -> Result<(), String> {
        Store::open(&self.path)
            .and_then(|s| s.save_credentials("telus", tokens))
            .map_err(|e| e.to_string())
    }

    fn load_tokens(&self) -> Result<Option<crate::model::TokenPair>, String> {
        Store::open(&self.path)
            .and_then(|s| s.credentials("telus"))
            .map_err(|e| e.to_string())
    }

    fn try_lock_refresh(&self) -> Result<Option<Box<dyn Send>>, String> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".token");
        match crate::store::lock::PassLock::try_acquire(std::path::Path::new(&name)) {
            Ok(Ok(lock)) => Ok(Some(Box::new(lock))),
            Ok(Err(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn load_penalty(&self, group: &str) -> Result<Option<i64>, String> {
        Store::open(&self.path)
            .and_then(|s| s.meta(&format!("telus.penalty.{group}")))
            .map(|v| v.and_then(|v| v.parse().ok()))
            .map_err(|e| e.to_string())
    }

    fn save_penalty(&self, group: &str, until_epoch_ms: i64) -> Result<(), String> {
        Store::open(&self.path)
            .and_then(|s| {
                s.set_meta(
                    &format!("telus.penalty.{group}"),
                    &until_epoch_ms.to_string(),
                )
            })
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions<'a> {
    /// Compute the plan, write nothing to either API or to the store.
    pub dry_run: bool,
    /// Lift a safety hold for this pass.
    pub approve: bool,
    /// Release quarantined users before the pass.
    pub retry_quarantined: bool,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress_bar: bool,
    /// Read Okta whole even when an incremental read would do.
    pub full: bool,
    /// Set by a shutdown: the change in flight finishes, no further change starts.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// How long a pass that writes waits for another process's pass to finish before it
    /// gives up (`Busy`): `sync` waits a while; the daemon does not wait (it skips the tick).
    /// Dry runs take no lock.
    pub lock_wait: std::time::Duration,
}

/// How far back an incremental read reaches before the last good pass's start, so that
/// clock skew and Okta's indexing delay lose nothing.
const INCREMENTAL_MARGIN_MINUTES: i64 = 5;

/// How many linked Okta users missing from a full listing a pass reads by id.
const MAX_MISSING_READS: usize = 200;

/// The `lastUpdated` bound for an incremental Okta read, or `None` for a full read: the
/// first pass, `--full`, a scope Okta cannot filter, or a previous pass that failed.
fn incremental_since(
    config: &Config,
    store: &Store,
    opts: &PassOptions<'_>,
) -> anyhow::Result<Option<String>> {
    if opts.full || config.okta.scope != crate::config::OktaScope::All {
        return Ok(None);
    }
    if store.snapshot_counts()?.0 == 0 {
        return Ok(None);
    }
    let Some(last) = store.last_whole_pass()? else {
        return Ok(None);
    };
    if !matches!(
        last.summary.outcome,
        Some(PassOutcome::Clean | PassOutcome::UsersFailed)
    ) {
        return Ok(None);
    }
    let start = chrono::DateTime::parse_from_rfc3339(&last.started_at)?;
    let since =
        start.with_timezone(&chrono::Utc) - chrono::Duration::minutes(INCREMENTAL_MARGIN_MINUTES);
    Ok(Some(
        since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}

/// Runs one pass: take the store (unless a dry run), then fetch → settle → plan →
/// apply-and-record, and record the pass. Errors only when the store itself fails.
pub async fn run_one_pass(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions<'_>,
) -> anyhow::Result<PassReport> {
    register_mapped_names(config)?;
    let _lock = match take_store(store, &opts).await? {
        Ok(lock) => lock,
        Err(busy) => return Ok(PassReport::busy(busy)),
    };
    // Rate-limit budgets another process left (a pass just before this one, an admin's
    // command): this pass paces from them.
    clients.restore_pacing(store);
    let since = incremental_since(config, store, &opts)?;
    let kind = if since.is_some() {
        PassKind::Incremental
    } else {
        PassKind::Full
    };
    let pass_id = match opts.dry_run {
        true => None,
        false => Some(store.begin_pass(kind)?),
    };
    let span = tracing::info_span!(
        "sync_pass",
        pass_id = pass_id.unwrap_or(0),
        dry_run = opts.dry_run,
        kind = kind.as_str()
    );
    let pass = Pass {
        config,
        clients,
        store,
        opts,
        pass_id,
        targeted: false,
    };
    let mut report = async {
        // Bulk tasks an earlier run left are polled to their end before anything is read:
        // a read taken while a task runs says nothing about its records.
        let tasks = match opts.dry_run {
            true => TaskSettling::default(),
            false => settle_tasks(store, &clients.telus, &config.policy, opts.stop).await?,
        };
        let fetched = match pass
            .fetch(since.as_deref())
            .instrument(tracing::info_span!("fetch"))
            .await?
        {
            Ok(fetched) => fetched,
            Err(message) => return Ok(PassReport::system_failed(pass_id, opts.dry_run, message)),
        };
        let mut settled = pass.settle(&fetched, &tasks.in_flight)?;
        settled.0 += tasks.settled.0;
        settled.1 += tasks.settled.1;
        let plan = pass.plan(&fetched, &tasks.in_flight)?;
        pass.apply_and_record(fetched, plan, settled).await
    }
    .instrument(span)
    .await?;
    report.kind = kind;
    clients.save_pacing(store);
    warn_if_session_at_risk(config, store);
    if let Some(id) = pass_id {
        store.finish_pass(id, &summary_of(&report))?;
        store.checkpoint()?;
    }
    Ok(report)
}

/// Says in the log, once per pass, when the TELUS session can lapse (the rule `status` and
/// the `okta_telus_sync_telus_session_at_risk` gauge follow).
pub(super) fn warn_if_session_at_risk(config: &Config, store: &Store) {
    let stored = store.credentials("telus").ok().flatten();
    let a = crate::report::session_assessment(config, stored.as_ref());
    if a.at_risk {
        tracing::warn!(session = %a.line, "the TELUS session can lapse");
    }
}

/// The mapped names first, so that no flood of other names from a server can crowd them out.
pub(super) fn register_mapped_names(config: &Config) -> anyhow::Result<()> {
    let unmapped = crate::model::register_mapped_names(config.policy.field_names());
    if !unmapped.is_empty() {
        anyhow::bail!(
            "the field-name table cannot hold the mapped names {}",
            unmapped.join(", ")
        );
    }
    Ok(())
}

/// The one-writer lock for a pass that may write: `Ok(None)` for a dry run (no lock),
/// `Err(message)` naming the holder when another pass keeps it past `opts.lock_wait`.
pub(super) async fn take_store(
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

/// What a finished pass records in the store.
pub(super) fn summary_of(report: &PassReport) -> PassSummary {
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

/// Both directories as this pass read them, and what Okta's schema says about writes.
pub(super) struct Fetched {
    pub(super) okta: Vec<crate::model::OktaUser>,
    pub(super) telus: Vec<TelusUser>,
    pub(super) okta_writes: OktaWrites,
}

/// One pass's fixed parts, shared by its phases.
pub(super) struct Pass<'a> {
    pub(super) config: &'a Config,
    pub(super) clients: &'a Clients,
    pub(super) store: &'a Store,
    pub(super) opts: PassOptions<'a>,
    pub(super) pass_id: Option<i64>,
    /// Reads and stores only the users change events named (the others' stored copies stay).
    pub(super) targeted: bool,
}

impl Pass<'_> {
    /// Phase 1: both directories (Okta incrementally when `since` is set: the changed users
    /// replace their stored copies) and Okta's schema. `Err` is a whole-system failure.
    async fn fetch(&self, since: Option<&str>) -> anyhow::Result<Result<Fetched, String>> {
        let (okta, telus, okta_writes) = tokio::join!(
            self.clients.okta.fetch_users(since),
            self.clients
                .telus
                .fetch_users_with(self.config.policy.names_custom_fields()),
            okta_writes(self.config, self.clients)
        );
        let (okta, telus) = match (okta, telus) {
            (Ok(o), Ok(t)) => (o, t),
            (o, t) => {
                let errors: Vec<String> = [
                    o.err().map(|e| e.to_string()),
                    t.err().map(|e| e.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect();
                let message = errors.join("; ");
                tracing::error!(error = %message, "fetch failed, pass ended");
                return Ok(Err(message));
            }
        };
        let okta = match since {
            Some(_) => merge_changed(self.store.load_okta()?, okta),
            None if self.config.okta.scope == crate::config::OktaScope::All => {
                match self.with_deprovisioned(okta).await? {
                    Ok(okta) => okta,
                    Err(message) => return Ok(Err(message)),
                }
            }
            None => okta,
        };
        tracing::info!(okta = okta.len(), telus = telus.len(), "directories read");
        Ok(Ok(Fetched {
            okta,
            telus,
            okta_writes,
        }))
    }

    /// Okta's plain user listing leaves DEPROVISIONED users out (management spec,
    /// `listUsers`: "omits users that have a status of DEPROVISIONED"), so a linked user
    /// missing from a full listing is read by id: a deactivated user is then disabled as
    /// such, a deleted one (404) has left. A stored copy already DEPROVISIONED is kept
    /// without a read. Past `MAX_MISSING_READS` the rest stay missing (the deactivation
    /// limit holds such a pass). `Err` is a whole-system failure.
    async fn with_deprovisioned(
        &self,
        mut okta: Vec<crate::model::OktaUser>,
    ) -> anyhow::Result<Result<Vec<crate::model::OktaUser>, String>> {
        let listed: std::collections::HashSet<&OktaId> = okta.iter().map(|u| &u.id).collect();
        let links = self.store.links()?;
        let missing: Vec<&OktaId> = links
            .iter()
            .map(|l| &l.okta_id)
            .filter(|id| !listed.contains(id))
            .collect();
        if missing.is_empty() {
            return Ok(Ok(okta));
        }
        let stored = self.store.load_okta_ids(&missing)?;
        let mut found = Vec::new();
        let mut to_read = Vec::new();
        for id in missing {
            match stored.iter().find(|u| &u.id == id) {
                Some(u) if u.status == crate::model::OktaStatus::Deprovisioned => {
                    found.push(u.clone())
                }
                _ => to_read.push(id.clone()),
            }
        }
        if to_read.len() > MAX_MISSING_READS {
            tracing::warn!(
                missing = to_read.len(),
                read = MAX_MISSING_READS,
                "many linked Okta users are missing from the listing; only some are read by id"
            );
            to_read.truncate(MAX_MISSING_READS);
        }
        for id in &to_read {
            match self.clients.okta.get_user(id).await {
                Ok(Some(u)) => found.push(u),
                Ok(None) => {}
                Err(e) => {
                    let message = format!("reading Okta user {id}, missing from the listing: {e}");
                    tracing::error!(error = %message, "fetch failed, pass ended");
                    return Ok(Err(message));
                }
            }
        }
        if !found.is_empty() {
            tracing::info!(
                kept = found.len(),
                read = to_read.len(),
                "linked okta users missing from the listing (deactivated) kept"
            );
            okta.extend(found);
            okta.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(Ok(okta))
    }

    /// Phase 2: changes a run that stopped mid-apply left `planned` are settled against what
    /// was just read, before anything is planned: nothing done twice, nothing lost. Returns
    /// (landed, not landed). Quarantined users are released here on `--retry-quarantined`.
    fn settle(&self, fetched: &Fetched, in_flight: &[ExtId]) -> anyhow::Result<(usize, usize)> {
        if self.opts.dry_run {
            return Ok((0, 0));
        }
        let rows: Vec<Unfinished> = self
            .store
            .unfinished()?
            .into_iter()
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
    fn plan(&self, fetched: &Fetched, in_flight: &[ExtId]) -> anyhow::Result<Plan> {
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
    pub(super) fn decide(
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
    pub(super) async fn apply_and_record(
        &self,
        fetched: Fetched,
        plan: Plan,
        settled: (usize, usize),
    ) -> anyhow::Result<PassReport> {
        let (config, store) = (self.config, self.store);
        let mut apply = ApplyReport::default();
        if let (Some(pass_id), false) = (self.pass_id, plan.is_held()) {
            match self.targeted {
                true => store.merge_snapshots(&fetched.okta, &fetched.telus)?,
                false => store.save_snapshots(&fetched.okta, &fetched.telus)?,
            }
            store.add_links(&plan.new_links)?;
            store.set_baseline(&plan.agreed)?;
            record_data_problems(
                store,
                pass_id,
                &plan,
                self.targeted.then_some(&fetched.okta),
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
            };
            let mut progress = Progress::new(self.opts.progress_bar, plan.change_count());
            apply = apply_plan(&plan, &ctx, &mut |done, total| progress.update(done, total))
                .instrument(tracing::info_span!("apply"))
                .await?;
            progress.finish();
            record_outcomes(config, store, &plan, &apply)?;
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
            kind: PassKind::Full,
            dry_run: self.opts.dry_run,
            okta_read: fetched.okta.len(),
            telus_read: fetched.telus.len(),
            system_error: apply.systemic.clone(),
            settled,
            plan,
            apply,
            outcome,
            busy: None,
        })
    }
}

/// The Okta users changed since the last pass replace their stored copies in place (the
/// stored list is not copied into a map); new ones are added.
fn merge_changed(
    mut stored: Vec<crate::model::OktaUser>,
    changed: Vec<crate::model::OktaUser>,
) -> Vec<crate::model::OktaUser> {
    let okta_changed = changed.len();
    let mut changed: HashMap<OktaId, crate::model::OktaUser> =
        changed.into_iter().map(|u| (u.id.clone(), u)).collect();
    for u in stored.iter_mut() {
        if let Some(newer) = changed.remove(&u.id) {
            *u = newer;
        }
    }
    stored.extend(changed.into_values());
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    tracing::info!(okta_changed, "incremental okta read merged");
    stored
}

/// A journal row left `planned`, as the settlement reads it.
pub(super) fn unfinished(r: crate::store::JournalRow) -> Unfinished {
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

/// From Okta's profile schema (read once per pass when a row writes to Okta): the written
/// attributes Okta refuses for every user (read-only, or an OVERRIDE led by an app), and each
/// attribute's master (what a per-user refusal depends on). A schema that cannot be read (an
/// OAuth app without `okta.schemas.read`, say) leaves out nothing: Okta then refuses such
/// updates user by user, as the journal shows.
pub(super) async fn okta_writes(config: &Config, clients: &Clients) -> OktaWrites {
    if !crate::schema::policy_writes_okta(&config.policy) {
        return OktaWrites::default();
    }
    match clients.okta.fetch_schema().await {
        Ok(schema) => OktaWrites {
            refused: crate::schema::okta_refused_writes(&config.policy, &schema),
            masters: schema
                .iter()
                .map(|a| (a.name.clone(), a.master_label()))
                .collect(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "okta profile schema unreadable: attributes mastered elsewhere cannot be left out of Okta writes");
            OktaWrites::default()
        }
    }
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
            rule: crate::reconcile::Rule::Master.as_str(),
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
        .map(|(user, failure)| (key_of(user), failure))
        .collect();
    let mut by_user: BTreeMap<String, Vec<&PlannedAction>> = BTreeMap::new();
    for a in &applied.actions {
        by_user.entry(user_key(a)).or_default().push(a);
    }
    let now = chrono::Utc::now();
    // Users whose only failure was a value refused as invalid: remembered as a data
    // problem (not sent again while unchanged), so no backoff, no quarantine.
    let data_only: std::collections::HashSet<String> = report
        .data_problem_users
        .iter()
        .filter(|u| !report.other_failure_users.contains(*u))
        .map(key_of)
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

/// The failure key of a user (as `user_key` gives it for an action).
fn key_of(user: &UserRef) -> String {
    crate::reconcile::plan::user_key_of(user.okta_id.as_ref(), user.ext_id.as_ref(), &user.email)
}

/// Prunes journal rows older than `store.journal_days`, at most once a day.
fn prune_if_due(config: &Config, store: &Store) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let due = match store.meta("last_prune")? {
        Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|t| now - t.with_timezone(&chrono::Utc) > chrono::Duration::hours(24))
            .unwrap_or(true),
        None => true,
    };
    if due {
        let cutoff = now - chrono::Duration::days(i64::from(config.journal_days));
        let n =
            store.prune_journal(&cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))?;
        store.set_meta("last_prune", &now.to_rfc3339())?;
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
