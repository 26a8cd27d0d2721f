//! One pass: fetch both directories (IO), reconcile (pure), apply (IO), and record it.

use crate::apply::{ApplyReport, Targets, apply_plan};
use crate::config::Config;
use crate::http::HttpSettings;
use crate::model::{ExtId, TelusUser};
use crate::model::{OktaId, System};
use crate::reconcile::retry::{Gate, fingerprint, gate, record_failure, user_key};
use crate::reconcile::{
    HoldContext, Plan, PlannedAction, Snapshot, Unfinished, UserRef, hold_reasons, plan_pass,
    settle,
};
use crate::store::{PassSummary, Store};
use crate::summary::{PassOutcome, PassReport};
use crate::{okta, telus};
use anyhow::Context as _;
use std::collections::HashMap;
use tracing::Instrument;

/// Both API clients, kept across passes so tokens and rate-limit state carry over.
pub struct Clients {
    pub okta: okta::Client,
    pub telus: telus::Client,
}

impl Clients {
    /// Clients that keep nothing across runs (tests, the sandbox's first look).
    pub fn new(config: &Config, settings: HttpSettings) -> Clients {
        Clients {
            okta: okta::Client::new(&config.okta, settings),
            telus: telus::Client::new(&config.telus, settings),
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
            okta: okta::Client::new(&config.okta, settings),
            telus: telus::Client::with_persistence(
                &config.telus,
                settings,
                restored,
                Box::new(StorePersist {
                    path: config.store_path.clone(),
                }),
            ),
        })
    }
}

impl Clients {
    /// Takes up the TELUS rate-limit budgets and penalties, and the Okta buckets (what is
    /// left until the reset), that another process left in the store, where they are
    /// stricter than what this process knows.
    pub fn restore_pacing(&self, store: &Store) {
        let mut saved = Vec::new();
        for group in telus::GROUPS {
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
    let Some(last) = store.recent_passes(1)?.into_iter().next() else {
        return Ok(None);
    };
    if !matches!(last.summary.outcome.as_str(), "ok" | "users-failed") {
        return Ok(None);
    }
    let start = chrono::DateTime::parse_from_rfc3339(&last.started_at)?;
    let since =
        start.with_timezone(&chrono::Utc) - chrono::Duration::minutes(INCREMENTAL_MARGIN_MINUTES);
    Ok(Some(
        since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}

/// Runs one full pass. Errors only when the store itself fails.
pub async fn run_one_pass(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions<'_>,
) -> anyhow::Result<PassReport> {
    // The mapped names first, so that no flood of other names from a server can crowd them out.
    let unmapped = crate::model::register_mapped_names(config.policy.field_names());
    if !unmapped.is_empty() {
        anyhow::bail!(
            "the field-name table cannot hold the mapped names {}",
            unmapped.join(", ")
        );
    }
    // One writer: a pass that may write holds the store's lock for its whole length, so no
    // two passes ever settle each other's in-flight changes or send the same write twice.
    let _lock = if opts.dry_run || store.path().as_os_str() == ":memory:" {
        None
    } else {
        let path = store.path();
        match crate::store::lock::PassLock::acquire_within(&path, opts.lock_wait)
            .await
            .with_context(|| format!("locking the store {}", path.display()))?
        {
            Ok(lock) => Some(lock),
            Err(holder) => {
                let message = format!(
                    "another pass holds the store {} ({holder}); nothing was done",
                    path.display()
                );
                return Ok(PassReport::busy(message));
            }
        }
    };
    // Rate-limit budgets another process left (a pass just before this one, an admin's
    // command): this pass paces from them.
    clients.restore_pacing(store);
    let since = incremental_since(config, store, &opts)?;
    let kind = if since.is_some() {
        "incremental"
    } else {
        "full"
    };
    let pass_id = if opts.dry_run {
        None
    } else {
        Some(store.begin_pass(kind)?)
    };
    let span = tracing::info_span!(
        "sync_pass",
        pass_id = pass_id.unwrap_or(0),
        dry_run = opts.dry_run,
        kind
    );
    let mut report = pass_body(config, clients, store, opts, pass_id, since)
        .instrument(span)
        .await?;
    report.kind = kind;
    clients.save_pacing(store);
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
                message: report
                    .system_error
                    .clone()
                    .or_else(|| {
                        (!report.plan.held.is_empty())
                            .then(|| report.plan.held_reasons().join("; "))
                    })
                    .or_else(|| {
                        (!report.plan.left_out.is_empty())
                            .then(|| format!("left out: {}", report.plan.left_out.join("; ")))
                    }),
            },
        )?;
        store.checkpoint()?;
    }
    Ok(report)
}

async fn pass_body(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions<'_>,
    pass_id: Option<i64>,
    since: Option<String>,
) -> anyhow::Result<PassReport> {
    let (fetched, (refused, masters)) = async {
        let (okta, telus, refused) = tokio::join!(
            clients.okta.fetch_users(since.as_deref()),
            clients
                .telus
                .fetch_users_with(config.policy.names_custom_fields()),
            okta_refused_writes(config, clients)
        );
        ((okta, telus), refused)
    }
    .instrument(tracing::info_span!("fetch"))
    .await;
    let (okta_users, telus_users) = match fetched {
        (Ok(changed), Ok(t)) if since.is_some() => {
            // Incremental: the users changed since the last pass replace their stored copies.
            let okta_changed = changed.len();
            // The few changed users replace their stored copies in place: the stored list is
            // not copied into a map.
            let mut changed: HashMap<OktaId, crate::model::OktaUser> =
                changed.into_iter().map(|u| (u.id.clone(), u)).collect();
            let mut merged = store.load_okta()?;
            for u in merged.iter_mut() {
                if let Some(newer) = changed.remove(&u.id) {
                    *u = newer;
                }
            }
            merged.extend(changed.into_values());
            merged.sort_by(|a, b| a.id.cmp(&b.id));
            tracing::info!(okta_changed, "incremental okta read merged");
            (merged, t)
        }
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
                kind: "full",
                dry_run: opts.dry_run,
                okta_read: 0,
                telus_read: 0,
                plan: Plan::default(),
                apply: ApplyReport::default(),
                system_error: Some(message),
                deferred: Vec::new(),
                settled: (0, 0),
                outcome: PassOutcome::SystemFailed,
                busy: None,
            });
        }
    };
    tracing::info!(
        okta = okta_users.len(),
        telus = telus_users.len(),
        "directories read"
    );

    // A run that stopped mid-apply left changes `planned`: settle them against what was just
    // read before planning anything, so nothing is done twice and nothing is lost.
    let mut settled = (0, 0);
    if !opts.dry_run {
        let rows: Vec<Unfinished> = store
            .unfinished()?
            .into_iter()
            .map(|r| Unfinished {
                row_id: r.id,
                system: if r.system == "okta" {
                    System::Okta
                } else {
                    System::Telus
                },
                okta_id: r.okta_id.map(OktaId),
                ext_id: r.ext_id.map(ExtId),
                attr: r.attribute,
                field: r.field,
                new: r.new,
                rule: r.rule,
            })
            .collect();
        if !rows.is_empty() {
            let settlements = settle(&rows, &okta_users, &telus_users, &config.policy);
            let landed = settlements.iter().filter(|s| s.landed).count();
            settled = (landed, settlements.len() - landed);
            store.settle(&settlements)?;
            tracing::warn!(
                landed,
                not_landed = settlements.len() - landed,
                "settled changes interrupted by an earlier run"
            );
        }
        if opts.retry_quarantined {
            let n = store.release_quarantined()?;
            tracing::info!(released = n, "quarantined users released");
        }
    }

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
                approved: opts.approve,
            },
            &config.policy,
        );
        plan.leave_out_okta_writes(&refused);
        plan.hold_back_known_refusals(&store.okta_refusals()?, &okta_users, &masters);
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
            tracing::warn!(reasons = %plan.held_reasons().join("; "), "safety hold lifted by --approve");
        } else {
            tracing::error!(reasons = %plan.held_reasons().join("; "), "pass held by a safety limit: nothing written; run `sync --approve` to proceed once");
        }
    }
    for line in &plan.left_out {
        tracing::error!(problem = %line, "okta writes left out: fix the row or Okta's profile mastering");
    }
    for p in &plan.problems {
        if p.kind.fails_user() {
            tracing::warn!(user = %p.user.email, kind = p.kind.as_str(), attr = p.attr.as_deref().unwrap_or(""), problem = %p.message, "user not synced");
        } else {
            tracing::debug!(user = %p.user.email, kind = p.kind.as_str(), problem = %p.message, "noted");
        }
    }

    let mut apply = ApplyReport::default();
    let mut deferred = Vec::new();
    if let (Some(id), false) = (pass_id, held) {
        store.save_snapshots(&okta_users, &telus_users)?;
        store.add_links(&plan.new_links)?;
        store.set_baseline(&plan.agreed)?;
        let targets = Targets {
            telus_users: telus_users.iter().map(|u| (&u.id, u)).collect(),
            okta_users: okta_users.iter().map(|u| (&u.id, u)).collect(),
            okta_masters: &masters,
        };
        let (to_apply, fingerprints) = gate_users(&plan, store, &mut deferred)?;
        let mut progress = Progress::new(opts.progress_bar, to_apply.change_count());
        apply = apply_plan(
            &to_apply,
            id,
            store,
            &clients.okta,
            &clients.telus,
            &targets,
            &mut |done, total| progress.update(done, total),
            opts.stop,
            config.okta.write_concurrency,
        )
        .instrument(tracing::info_span!("apply"))
        .await?;
        progress.finish();
        record_outcomes(config, store, &to_apply, &fingerprints, &apply)?;
        prune_if_due(config, store)?;
        if !apply.created.is_empty() && apply.systemic.is_none() {
            follow_up_creates(
                config,
                clients,
                store,
                id,
                &okta_users,
                telus_users.clone(),
                (&refused, &masters),
                &mut apply,
            )
            .await?;
        }
    }

    let outcome = if apply.systemic.is_some() {
        PassOutcome::SystemFailed
    } else if held {
        PassOutcome::Held
    } else if plan.failed_users() > 0 || !apply.failed_users.is_empty() || !deferred.is_empty() {
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
        kind: "full",
        dry_run: opts.dry_run,
        okta_read: okta_users.len(),
        telus_read: telus_users.len(),
        system_error: apply.systemic.clone(),
        deferred,
        settled,
        plan,
        apply,
        outcome,
        busy: None,
    })
}

type Masters = std::collections::BTreeMap<String, String>;

/// From Okta's profile schema (read once per pass when a row writes to Okta): the written
/// attributes Okta refuses for every user (read-only, or an OVERRIDE led by an app), and each
/// attribute's master (what a per-user refusal depends on). A schema that cannot be read (an
/// OAuth app without `okta.schemas.read`, say) leaves out nothing: Okta then refuses such
/// updates user by user, as the journal shows.
async fn okta_refused_writes(config: &Config, clients: &Clients) -> (Masters, Masters) {
    if !crate::schema::policy_writes_okta(&config.policy) {
        return Default::default();
    }
    match clients.okta.fetch_schema().await {
        Ok(schema) => (
            crate::schema::okta_refused_writes(&config.policy, &schema),
            schema
                .iter()
                .map(|a| (a.name.clone(), a.master_label()))
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "okta profile schema unreadable: attributes mastered elsewhere cannot be left out of Okta writes");
            Default::default()
        }
    }
}

/// A TELUS user just created has an extension number Okta's `primaryPhone` must learn: plan
/// again for the created users only, with them in the snapshot, and apply that.
#[allow(clippy::too_many_arguments)]
async fn follow_up_creates(
    config: &Config,
    clients: &Clients,
    store: &Store,
    pass_id: i64,
    okta_users: &[crate::model::OktaUser],
    mut telus_users: Vec<TelusUser>,
    (refused, masters): (&Masters, &Masters),
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
            approved: false,
        },
        &config.policy,
    );
    plan.leave_out_okta_writes(refused);
    plan.hold_back_known_refusals(&store.okta_refusals()?, okta_users, masters);
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
    let targets = Targets {
        telus_users: created.iter().map(|u| (&u.id, u)).collect(),
        okta_users: okta_users.iter().map(|u| (&u.id, u)).collect(),
        okta_masters: masters,
    };
    let more = apply_plan(
        &plan,
        pass_id,
        store,
        &clients.okta,
        &clients.telus,
        &targets,
        &mut |_, _| {},
        None,
        config.okta.write_concurrency,
    )
    .await?;
    apply.applied += more.applied;
    apply.failed += more.failed;
    apply.failed_users.extend(more.failed_users);
    apply.systemic = apply.systemic.take().or(more.systemic);
    apply.created = created;
    Ok(())
}

/// Drops the actions of users still backing off after a failure or quarantined; returns the
/// plan to apply and each attempted user's fingerprint.
fn gate_users(
    plan: &Plan,
    store: &Store,
    deferred: &mut Vec<(UserRef, String)>,
) -> anyhow::Result<(Plan, HashMap<String, String>)> {
    let failures: HashMap<String, crate::reconcile::retry::FailureRow> = store
        .failures()?
        .into_iter()
        .map(|f| (f.user_key.clone(), f))
        .collect();
    let mut by_user: HashMap<String, Vec<&PlannedAction>> = HashMap::new();
    for a in &plan.actions {
        by_user.entry(user_key(a)).or_default().push(a);
    }
    let now = chrono::Utc::now();
    let mut fingerprints = HashMap::new();
    let mut skip = std::collections::HashSet::new();
    for (key, actions) in &by_user {
        let fp = fingerprint(actions.iter().copied());
        match gate(failures.get(key), &fp, now) {
            Gate::Go => {
                fingerprints.insert(key.clone(), fp);
            }
            Gate::Backoff(until) => {
                skip.insert(key.clone());
                deferred.push((
                    actions[0].user.clone(),
                    format!("failed recently; next retry after {until}"),
                ));
            }
            Gate::Quarantined => {
                skip.insert(key.clone());
                deferred.push((
                    actions[0].user.clone(),
                    "quarantined after repeated failures; fix the data or run `sync --retry-quarantined`".into(),
                ));
            }
        }
    }
    deferred.sort();
    // Only the actions are applied: the rest of the plan (links, agreed values, problems) is
    // recorded elsewhere, so it is not copied.
    let to_apply = Plan {
        actions: plan
            .actions
            .iter()
            .filter(|a| !skip.contains(&user_key(a)))
            .cloned()
            .collect(),
        ..Plan::default()
    };
    Ok((to_apply, fingerprints))
}

/// Records each attempted user's failure (backoff, quarantine) or clears it on success.
fn record_outcomes(
    config: &Config,
    store: &Store,
    applied: &Plan,
    fingerprints: &HashMap<String, String>,
    report: &ApplyReport,
) -> anyhow::Result<()> {
    let failures: HashMap<String, crate::reconcile::retry::FailureRow> = store
        .failures()?
        .into_iter()
        .map(|f| (f.user_key.clone(), f))
        .collect();
    let now = chrono::Utc::now();
    let mut seen = std::collections::HashSet::new();
    for a in &applied.actions {
        let key = user_key(a);
        if !seen.insert(key.clone()) {
            continue;
        }
        match report.failed_users.get(&a.user) {
            // Okta's refusal of an attribute for this user is remembered on its own (it is
            // not sent again while nothing changed): no backoff, no quarantine.
            Some((Some(code), _))
                if code == crate::okta::REFUSED_MASTERED && failures.contains_key(&key) =>
            {
                store.clear_failure(&key)?;
            }
            Some((Some(code), _)) if code == crate::okta::REFUSED_MASTERED => {}
            Some(failure) => {
                let fp = fingerprints.get(&key).cloned().unwrap_or_default();
                let row = record_failure(
                    failures.get(&key),
                    &key,
                    &a.user.email,
                    failure,
                    &fp,
                    now,
                    &config.retry,
                );
                if row.quarantined {
                    tracing::error!(user = %a.user.email, failures = row.consecutive, "user quarantined after repeated failures");
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
