//! Executes a `Plan`: the only caller of mutating API methods. Every change is journalled
//! `planned` before its call and `applied` or `failed` after it; the baseline moves only after
//! a confirmed write. One user's failure never stops the others; a whole-system failure ends
//! the apply cleanly.

use crate::model::{ExtId, Link, OktaId, OktaUser, System, TelusStatus, TelusUser};
use crate::reconcile::decide::AfterCreate;
use crate::reconcile::{
    Action, Agreed, AttrChange, DataProblem, KnownRefusal, Plan, PlannedAction, UserRef,
};
use crate::store::{JournalEntry, Outcome, Store};
use crate::{okta, telus};
use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

/// What applying a plan did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Attribute changes confirmed by the target.
    pub applied: usize,
    /// Attribute changes the target refused or that could not be sent.
    pub failed: usize,
    /// Users with a failed write, with the last error's code and explanation.
    pub failed_users: BTreeMap<UserRef, (Option<String>, String)>,
    /// Set when a whole system failed and the rest of the plan was not attempted.
    pub systemic: Option<String>,
    /// A shutdown stopped the apply between two changes.
    pub stopped: bool,
    /// A bulk task outlived `telus.bulk_task_timeout_seconds`: no further change was
    /// started; the next pass polls it and sends the rest.
    pub stuck_task: Option<String>,
    /// Users with a value the target refused as invalid (a data problem, remembered so that
    /// it is not sent again while unchanged), and of those, the ones with another failure
    /// too: only these back off.
    pub data_problem_users: std::collections::BTreeSet<UserRef>,
    pub other_failure_users: std::collections::BTreeSet<UserRef>,
}

mod bulk;
mod import;
pub use bulk::{BulkRefusal, PENDING_TASK, TaskSettling, bulk_refusal, settle_tasks};

/// A write's failure, reduced to what the journal and the pass need.
#[derive(Clone)]
struct WriteError {
    code: Option<String>,
    explanation: String,
    message: String,
    systemic: bool,
    /// No answer came: the change stays `planned` and the next pass settles it against a
    /// fresh read instead of sending it again.
    unknown: bool,
    /// Fields the target named as invalid (Okta attribute names, TELUS field paths).
    invalid: Vec<String>,
}

impl WriteError {
    /// The same failure, its outcome left to the next read (not systemic: the other chunks
    /// go on; not a data problem).
    fn unconfirmed(self) -> WriteError {
        WriteError {
            unknown: true,
            systemic: false,
            invalid: Vec::new(),
            ..self
        }
    }

    /// The indexes of `changes` this refusal names as invalid values: data problems.
    fn named(&self, changes: &[AttrChange]) -> Vec<usize> {
        if self.unknown || self.systemic {
            return Vec::new();
        }
        changes
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                self.invalid.iter().any(|f| {
                    c.field == *f
                        || c.field
                            .strip_prefix(f.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
            })
            .map(|(i, _)| i)
            .collect()
    }
}

impl From<okta::Error> for WriteError {
    fn from(e: okta::Error) -> Self {
        WriteError::from(&e)
    }
}

impl From<&okta::Error> for WriteError {
    fn from(e: &okta::Error) -> Self {
        WriteError {
            code: e.code().map(str::to_string),
            explanation: e.explanation(),
            message: e.to_string(),
            systemic: e.is_systemic(),
            unknown: e.outcome_unknown(),
            invalid: e
                .invalid_attributes()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }
}

impl From<telus::Error> for WriteError {
    fn from(e: telus::Error) -> Self {
        WriteError::from(&e)
    }
}

impl From<&telus::Error> for WriteError {
    fn from(e: &telus::Error) -> Self {
        WriteError {
            code: e.code().map(str::to_string),
            explanation: e.explanation(),
            message: e.to_string(),
            systemic: e.is_systemic(),
            unknown: e.outcome_unknown(),
            invalid: e.invalid_field().map(str::to_string).into_iter().collect(),
        }
    }
}

/// What the writes are sent against: this pass's snapshot of each side, and the master of
/// each Okta attribute in Okta's schema (what a per-user refusal depends on).
pub struct Targets<'a> {
    pub telus_users: HashMap<&'a ExtId, &'a TelusUser>,
    pub okta_users: HashMap<&'a OktaId, &'a OktaUser>,
    /// Okta attribute → master label (`PROFILE_MASTER`, `OKTA`, `OVERRIDE:APP`); empty when
    /// the schema could not be read.
    pub okta_masters: &'a BTreeMap<String, String>,
}

/// What one action's attempt did, merged into the report between awaits.
#[derive(Default)]
struct Attempt {
    applied: usize,
    failed: usize,
    failed_user: Option<(UserRef, (Option<String>, String))>,
    systemic: Option<String>,
    created: Option<TelusUser>,
    /// Of `failed`, the changes refused as data problems.
    data_problems: usize,
}

impl Attempt {
    /// Adds another part of the same action's attempt.
    fn absorb(&mut self, other: Attempt) {
        self.applied += other.applied;
        self.failed += other.failed;
        self.data_problems += other.data_problems;
        if self.failed_user.is_none() {
            self.failed_user = other.failed_user;
        }
        if self.systemic.is_none() {
            self.systemic = other.systemic;
        }
    }
}

impl ApplyReport {
    fn merge(&mut self, a: Attempt) {
        self.applied += a.applied;
        self.failed += a.failed;
        if let Some((user, failure)) = a.failed_user {
            if a.data_problems > 0 {
                self.data_problem_users.insert(user.clone());
            }
            if a.failed > a.data_problems {
                self.other_failure_users.insert(user.clone());
            }
            self.failed_users.insert(user, failure);
        }
        if self.systemic.is_none() {
            self.systemic = a.systemic;
        }
    }
}

/// What an apply works with: where it journals, the two clients, what the writes are sent
/// against, how a created user's dependent step is planned, and when to stop.
pub struct ApplyContext<'a> {
    pub pass_id: i64,
    pub store: &'a Store,
    pub okta: &'a okta::Client,
    pub telus: &'a telus::Client,
    pub targets: Targets<'a>,
    pub after_create: AfterCreate<'a>,
    /// Set by a shutdown: the change in flight finishes, no further change starts.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Okta profile updates in flight at once.
    pub okta_concurrency: usize,
    /// How long a bulk-update task is polled before no further chunk is sent.
    pub bulk_task_timeout: std::time::Duration,
    /// Where an imported Okta user goes besides the directory (the scope's group or app).
    pub import_into: okta::CreateInto,
}

/// Applies every action of the plan, calling `progress(done, total)` (in changes) after
/// each. Okta profile updates go `okta_concurrency` users at a time, within the budget Okta
/// reports (the client claims it per request); TELUS writes go one at a time, paced by their
/// rate group; the two run side by side. A user's own actions stay in plan order; a create is
/// followed at once by its dependent step (planned by `reconcile::decide::after_create`). A
/// stop or a whole-system failure starts nothing new; changes in flight finish and are
/// recorded. Errors only for the store itself.
pub async fn apply_plan(
    plan: &Plan,
    ctx: &ApplyContext<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ApplyReport, crate::store::Error> {
    use futures_util::TryStreamExt as _;
    let run = Run {
        ctx,
        total: plan.change_count(),
        report: std::cell::RefCell::new(ApplyReport::default()),
        progress: std::cell::RefCell::new(progress),
        resend: std::cell::RefCell::new(Vec::new()),
    };
    // Each user's actions in order, users in plan order.
    let by_user = |okta_side: bool| {
        let mut users: Vec<Vec<&PlannedAction>> = Vec::new();
        let mut at: HashMap<&UserRef, usize> = HashMap::new();
        for a in plan
            .actions
            .iter()
            .filter(|a| is_okta_write(a) == okta_side)
        {
            match at.get(&a.user) {
                Some(&i) => users[i].push(a),
                None => {
                    at.insert(&a.user, users.len());
                    users.push(vec![a]);
                }
            }
        }
        users
    };
    let telus_lane = async {
        // Updates and status changes go in bulk requests unless the account refuses them;
        // creates (and everyone, after a refusal) go one request at a time.
        let users = by_user(false);
        let (bulk, single): (Vec<_>, Vec<_>) = match bulk::bulk_refusal(ctx.store) {
            Some(_) => (Vec::new(), users),
            None => users.into_iter().partition(|u| bulk::bulk_eligible(u)),
        };
        let refused = run.bulk(bulk).await?;
        futures_util::stream::iter(refused.into_iter().chain(single).map(Ok))
            .try_for_each_concurrent(1, |actions| run.user(actions))
            .await?;
        // What bulk records left after a value TELUS refused: sent one request at a time.
        let again = run.resend.take();
        for action in &again {
            run.user(vec![action]).await?;
        }
        Ok(())
    };
    futures_util::future::try_join(
        futures_util::stream::iter(by_user(true).into_iter().map(Ok))
            .try_for_each_concurrent(ctx.okta_concurrency.max(1), |actions| run.user(actions)),
        telus_lane,
    )
    .await?;
    Ok(run.report.into_inner())
}

/// One apply's shared state: its concurrent parts run on one task, so plain cells do.
struct Run<'a, 'p> {
    ctx: &'a ApplyContext<'a>,
    total: usize,
    report: std::cell::RefCell<ApplyReport>,
    progress: std::cell::RefCell<&'p mut dyn FnMut(usize, usize)>,
    /// Changes taken out of a bulk record TELUS failed for one invalid value, to send again
    /// without it.
    resend: std::cell::RefCell<Vec<PlannedAction>>,
}

impl Run<'_, '_> {
    /// Whether to start another action: not after a stop or a whole-system failure.
    fn go_on(&self) -> bool {
        let mut r = self.report.borrow_mut();
        if r.systemic.is_some() || r.stopped || r.stuck_task.is_some() {
            return false;
        }
        if self
            .ctx
            .stop
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
        {
            tracing::info!(
                done = r.applied + r.failed,
                total = self.total,
                "stopping: the rest of the plan is left for the next pass"
            );
            r.stopped = true;
            return false;
        }
        true
    }

    /// One user's actions, in order; a create's dependent step right after it.
    async fn user(&self, actions: Vec<&PlannedAction>) -> Result<(), crate::store::Error> {
        for action in actions {
            if !self.go_on() {
                break;
            }
            let created = self.one(action, None).await?;
            if let (
                Some(created),
                Action::Create {
                    then_sync: true, ..
                },
            ) = (created, &action.action)
            {
                self.after_create(action, &created).await?;
            }
        }
        Ok(())
    }

    /// Applies one action (against `created` when it is about that just-created user) and
    /// merges its outcome; answers the created user of a create that landed.
    async fn one(
        &self,
        action: &PlannedAction,
        created: Option<&TelusUser>,
    ) -> Result<Option<TelusUser>, crate::store::Error> {
        let span = tracing::debug_span!(
            "action",
            user_key = %action.user.email,
            system = action.system.as_str(),
            action = action.action.as_str()
        );
        let mut attempt = apply_action(action, self.ctx, created)
            .instrument(span)
            .await?;
        let new_user = attempt.created.take();
        self.absorb(attempt);
        Ok(new_user)
    }

    /// Merges an attempt into the report and moves the progress on.
    fn absorb(&self, attempt: Attempt) {
        let done = {
            let mut r = self.report.borrow_mut();
            r.merge(attempt);
            r.applied + r.failed
        };
        (self.progress.borrow_mut())(done, self.total);
    }

    /// The dependent step of a create that landed: what the created user now gives back
    /// (its extension number to Okta's `primaryPhone`, with the default table), applied at
    /// once under the same journal, stop and failure rules as any action.
    async fn after_create(
        &self,
        create: &PlannedAction,
        created: &TelusUser,
    ) -> Result<(), crate::store::Error> {
        let Some(okta_user) = create
            .user
            .okta_id
            .as_ref()
            .and_then(|id| self.ctx.targets.okta_users.get(id))
        else {
            return Ok(());
        };
        let written = Agreed {
            okta_id: okta_user.id.clone(),
            values: create
                .changes()
                .iter()
                .map(|c| (crate::model::intern(&c.attr), compared(self.ctx, c)))
                .collect(),
        };
        let (actions, agreed) = crate::reconcile::decide::after_create(
            &self.ctx.after_create,
            okta_user,
            created,
            &written,
        );
        self.ctx.store.set_baseline(&agreed)?;
        for action in &actions {
            if !self.go_on() {
                break;
            }
            self.one(action, Some(created)).await?;
        }
        Ok(())
    }
}

/// An action's changes as journal entries.
fn journal_entries<'a>(action: &'a PlannedAction, pass_id: i64) -> Vec<JournalEntry<'a>> {
    action
        .changes()
        .iter()
        .map(|c| JournalEntry {
            pass_id,
            system: action.system,
            okta_id: action.user.okta_id.as_ref(),
            ext_id: action.user.ext_id.as_ref(),
            user_email: &action.user.email,
            attribute: &c.attr,
            field: &c.field,
            old: c.old.as_deref(),
            new: c.new.as_deref(),
            rule: c.rule,
        })
        .collect()
}

/// Okta profile updates: the only writes that go to Okta.
fn is_okta_write(a: &PlannedAction) -> bool {
    matches!(a.action, Action::Update { .. } | Action::Import { .. }) && a.system == System::Okta
}

/// Journals, sends and records one action; a whole-system failure is in the attempt's
/// `systemic`. `created` stands in for the TELUS snapshot when the action is about a user
/// this apply just created.
async fn apply_action(
    action: &PlannedAction,
    ctx: &ApplyContext<'_>,
    created: Option<&TelusUser>,
) -> Result<Attempt, crate::store::Error> {
    let (pass_id, store, telus, targets) = (ctx.pass_id, ctx.store, ctx.telus, &ctx.targets);
    let current = |id: &ExtId| -> Option<&TelusUser> {
        created
            .filter(|c| &c.id == id)
            .or_else(|| targets.telus_users.get(id).copied())
    };
    let changes = action.changes();
    let rows = store.journal_planned(&journal_entries(action, pass_id))?;
    let mut created: Option<TelusUser> = None;
    let result: Result<(), WriteError> = match (&action.action, action.system) {
        (Action::Import { activate, .. }, _) => {
            return import::apply_import(action, *activate, &rows, ctx).await;
        }
        (Action::Create { .. }, _) => {
            let body: Vec<(String, Option<String>)> = changes
                .iter()
                .map(|c| (c.field.clone(), c.new.clone()))
                .collect();
            match &action.user.okta_id {
                Some(okta_id) => match telus.create_user(&body, okta_id).await {
                    Ok(user) => {
                        created = Some(user);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                },
                None => Err(missing("the Okta user id")),
            }
        }
        (Action::Deactivate { .. }, _) | (Action::Reactivate { .. }, _) => {
            let status = match action.action {
                Action::Deactivate { .. } => TelusStatus::Disabled,
                _ => TelusStatus::Enabled,
            };
            match action.user.ext_id.as_ref().and_then(current) {
                Some(current) => telus
                    .set_status(current, &status, action.user.okta_id.as_ref())
                    .await
                    .map_err(WriteError::from),
                None => Err(missing("the TELUS extension")),
            }
        }
        (Action::Update { .. }, System::Okta) => match &action.user.okta_id {
            Some(id) => {
                return apply_okta_update(action, id, &rows, ctx).await;
            }
            None => Err(missing("the Okta user id")),
        },
        (Action::Update { .. }, System::Telus) => {
            match action.user.ext_id.as_ref().and_then(current) {
                Some(current) => {
                    let send = |changes: Vec<AttrChange>| async move {
                        let body: Vec<(String, Option<String>)> = changes
                            .iter()
                            .map(|c| (c.field.clone(), c.new.clone()))
                            .collect();
                        telus
                            .update_contact(current, &body, action.user.okta_id.as_ref())
                            .await
                            .map_err(WriteError::from)
                    };
                    return send_without_invalid(action, &rows, None, ctx, send).await;
                }
                None => Err(missing("the TELUS extension")),
            }
        }
    };
    let mut report = record(action, &rows, changes, result, ctx)?;
    if let (Some(user), Some(okta_id), 0) = (created, &action.user.okta_id, report.failed) {
        store.add_links(&[Link {
            okta_id: okta_id.clone(),
            ext_id: user.id.clone(),
        }])?;
        report.created = Some(user);
    }
    Ok(report)
}

/// A profile update to Okta. When Okta refuses it (403 E0000023: an attribute in it is
/// mastered by the user's profile source), its answer does not say which attribute, so each
/// is sent alone: the ones Okta takes land, the refused ones are journalled `failed` with
/// Okta's explanation and remembered with what the refusal depended on, so that later passes
/// do not send them again while nothing changed.
async fn apply_okta_update(
    action: &PlannedAction,
    okta_id: &OktaId,
    rows: &[i64],
    ctx: &ApplyContext<'_>,
) -> Result<Attempt, crate::store::Error> {
    let (store, okta) = (ctx.store, ctx.okta);
    let changes = action.changes();
    let first = okta.update_profile(okta_id, &profile_body(changes)).await;
    let refusal = match first {
        Err(e) if e.code() == Some(okta::REFUSED_MASTERED) => e,
        Err(e) if !WriteError::from(&e).named(changes).is_empty() => {
            let send = |changes: Vec<AttrChange>| async move {
                okta.update_profile(okta_id, &profile_body(&changes))
                    .await
                    .map(|_| ())
                    .map_err(WriteError::from)
            };
            let first = Some(Err(WriteError::from(&e)));
            return send_without_invalid(action, rows, first, ctx, send).await;
        }
        other => {
            let applied = other.is_ok();
            let report = record(
                action,
                rows,
                changes,
                other.map(|_| ()).map_err(WriteError::from),
                ctx,
            )?;
            if applied {
                let attrs: Vec<&str> = changes.iter().map(|c| c.attr.as_str()).collect();
                store.clear_okta_refusals(okta_id, &attrs)?;
            }
            return Ok(report);
        }
    };
    let (mut report, refused, last_updated) = probe_each(action, okta_id, rows, ctx).await?;
    let e = WriteError::from(refusal);
    let explanation = record_refusals(action, okta_id, rows, (&refused, last_updated), &e, ctx)?;
    report.failed += refused.len();
    if report.failed_user.is_none() {
        report.failed_user = Some((action.user.clone(), (e.code.clone(), explanation)));
    }
    Ok(report)
}

/// Sends an action's changes with `send` (or takes `first` as the answer to all of them).
/// When the target refuses some as invalid values, naming them, those are journalled
/// `failed` and remembered as data problems, and the rest are sent again without them, in
/// the same pass: one bad value never holds back the user's other attributes.
async fn send_without_invalid<F, Fut>(
    action: &PlannedAction,
    rows: &[i64],
    mut first: Option<Result<(), WriteError>>,
    ctx: &ApplyContext<'_>,
    send: F,
) -> Result<Attempt, crate::store::Error>
where
    F: Fn(Vec<AttrChange>) -> Fut,
    Fut: std::future::Future<Output = Result<(), WriteError>>,
{
    let changes = action.changes();
    let mut left: Vec<usize> = (0..changes.len()).collect();
    let mut attempt = Attempt::default();
    loop {
        let subset: Vec<AttrChange> = left.iter().map(|&i| changes[i].clone()).collect();
        let sub_rows: Vec<i64> = left.iter().map(|&i| rows[i]).collect();
        let result = match first.take() {
            Some(r) => r,
            None => send(subset.clone()).await,
        };
        if let Err(e) = &result {
            let named = e.named(&subset);
            if !named.is_empty() {
                let bad: Vec<usize> = named.iter().map(|&i| left[i]).collect();
                attempt.absorb(record_data_problems(action, &bad, rows, e, ctx)?);
                left.retain(|i| !bad.contains(i));
                if left.is_empty() {
                    return Ok(attempt);
                }
                continue;
            }
        }
        attempt.absorb(record(action, &sub_rows, &subset, result, ctx)?);
        return Ok(attempt);
    }
}

/// Journals the changes at `bad` (indexes of the action's changes, rows in `rows`) `failed`
/// with the target's explanation, and remembers each as a data problem: not sent again
/// while the values on both sides are unchanged. The user is failed for this pass only.
fn record_data_problems(
    action: &PlannedAction,
    bad: &[usize],
    rows: &[i64],
    e: &WriteError,
    ctx: &ApplyContext<'_>,
) -> Result<Attempt, crate::store::Error> {
    let changes = action.changes();
    let bad_rows: Vec<i64> = bad.iter().map(|&i| rows[i]).collect();
    ctx.store.journal_outcome(
        &bad_rows,
        Outcome::Failed,
        e.code.as_deref(),
        Some(&e.explanation),
        &[],
    )?;
    let problems: Vec<DataProblem> = bad
        .iter()
        .map(|&i| DataProblem {
            okta_id: action.user.okta_id.clone(),
            ext_id: action.user.ext_id.clone(),
            email: action.user.email.clone(),
            attr: changes[i].attr.clone(),
            system: action.system,
            field: changes[i].field.clone(),
            value: None,
            fingerprint: crate::reconcile::data::change_fingerprint(&changes[i]),
            code: e.code.clone().unwrap_or_default(),
            explanation: e.explanation.clone(),
            since: String::new(),
        })
        .collect();
    ctx.store.put_data_problems(&problems)?;
    for p in &problems {
        tracing::warn!(
            user = %action.user.email,
            attribute = %p.attr,
            system = p.system.as_str(),
            code = %p.code,
            explanation = %p.explanation,
            "value refused as invalid: a data problem, not sent again until the value changes on either side"
        );
    }
    Ok(Attempt {
        failed: bad.len(),
        data_problems: bad.len(),
        failed_user: Some((action.user.clone(), (e.code.clone(), e.explanation.clone()))),
        ..Attempt::default()
    })
}

/// An Okta profile update's body: the changed attributes only.
fn profile_body(changes: &[AttrChange]) -> BTreeMap<String, Option<String>> {
    changes
        .iter()
        .map(|c| (c.field.clone(), c.new.clone()))
        .collect()
}

/// Sends each attribute of a refused update alone: the ones Okta takes land (and are
/// recorded); answers the attempt so far, the indexes Okta refused, and the user's
/// `lastUpdated` after what landed (a refusal holds while the record is so).
async fn probe_each(
    action: &PlannedAction,
    okta_id: &OktaId,
    rows: &[i64],
    ctx: &ApplyContext<'_>,
) -> Result<(Attempt, Vec<usize>, Option<String>), crate::store::Error> {
    let (store, okta, targets) = (ctx.store, ctx.okta, &ctx.targets);
    let changes = action.changes();
    let mut report = Attempt::default();
    let mut refused: Vec<usize> = Vec::new();
    let mut last_updated = targets
        .okta_users
        .get(okta_id)
        .and_then(|u| u.last_updated.clone());
    if changes.len() == 1 {
        return Ok((report, vec![0], last_updated));
    }
    tracing::info!(
        user = %action.user.email,
        attributes = changes.len(),
        "okta refused the update (E0000023): sending each attribute alone"
    );
    for (i, c) in changes.iter().enumerate() {
        let one = std::slice::from_ref(c);
        match okta.update_profile(okta_id, &profile_body(one)).await {
            Err(e) if e.code() == Some(okta::REFUSED_MASTERED) => refused.push(i),
            other => {
                if let Ok(user) = &other {
                    last_updated = user.last_updated.clone().or(last_updated);
                    store.clear_okta_refusals(okta_id, &[c.attr.as_str()])?;
                }
                let r = record(
                    action,
                    &rows[i..=i],
                    one,
                    other.map(|_| ()).map_err(WriteError::from),
                    ctx,
                )?;
                report.absorb(r);
            }
        }
    }
    Ok((report, refused, last_updated))
}

/// Journals the refused attributes `failed` with Okta's explanation (and the user's profile
/// source), and remembers each refusal with what it depended on. Answers the explanation.
fn record_refusals(
    action: &PlannedAction,
    okta_id: &OktaId,
    rows: &[i64],
    (refused, last_updated): (&[usize], Option<String>),
    e: &WriteError,
    ctx: &ApplyContext<'_>,
) -> Result<String, crate::store::Error> {
    let (store, targets) = (ctx.store, &ctx.targets);
    let changes = action.changes();
    let user = targets.okta_users.get(okta_id);
    let provider = user.and_then(|u| u.provider.clone());
    let explanation = match &provider {
        Some(p) if p != "OKTA" => format!("{} (this user's profile source: {p})", e.explanation),
        _ => e.explanation.clone(),
    };
    let refused_rows: Vec<i64> = refused.iter().map(|&i| rows[i]).collect();
    store.journal_outcome(
        &refused_rows,
        Outcome::Failed,
        e.code.as_deref(),
        Some(&explanation),
        &[],
    )?;
    let known: Vec<KnownRefusal> = refused
        .iter()
        .map(|&i| KnownRefusal {
            okta_id: okta_id.clone(),
            attr: changes[i].attr.clone(),
            email: action.user.email.clone(),
            last_updated: last_updated.clone(),
            provider: provider.clone(),
            master: targets
                .okta_masters
                .get(&changes[i].attr)
                .cloned()
                .unwrap_or_else(|| "unknown".into()),
            explanation: e.explanation.clone(),
        })
        .collect();
    store.put_okta_refusals(&known, e.code.as_deref().unwrap_or(okta::REFUSED_MASTERED))?;
    for &i in refused {
        tracing::warn!(
            user = %action.user.email,
            attribute = %changes[i].attr,
            code = e.code.as_deref().unwrap_or(""),
            explanation = %explanation,
            "okta refused the attribute for this user; not sent again until the user or the attribute's master changes"
        );
    }
    Ok(explanation)
}

/// Records the outcome of sending `changes` (journal rows `rows`): applied with their
/// baseline, failed with the error's explanation, or left `planned` when no answer came.
fn record(
    action: &PlannedAction,
    rows: &[i64],
    changes: &[AttrChange],
    result: Result<(), WriteError>,
    ctx: &ApplyContext<'_>,
) -> Result<Attempt, crate::store::Error> {
    let store = ctx.store;
    let mut report = Attempt::default();
    match result {
        Ok(()) => {
            let baseline: Vec<Agreed> = match &action.user.okta_id {
                Some(okta_id) => vec![Agreed {
                    okta_id: okta_id.clone(),
                    values: changes
                        .iter()
                        .map(|c| (crate::model::intern(&c.attr), compared(ctx, c)))
                        .collect(),
                }],
                None => Vec::new(),
            };
            store.journal_outcome(rows, Outcome::Applied, None, None, &baseline)?;
            report.applied += changes.len();
            tracing::debug!(changes = changes.len(), "applied");
            Ok(report)
        }
        Err(e) if e.unknown => {
            tracing::warn!(user = %action.user.email, error = %e.message, "no answer: the outcome is settled on the next pass");
            report.failed += changes.len();
            let told = match &e.code {
                Some(_) => format!("{}; checked by a read on the next pass", e.explanation),
                None => "no answer from the server; checked on the next pass".into(),
            };
            report.failed_user = Some((action.user.clone(), (e.code.clone(), told)));
            Ok(report)
        }
        Err(e) => {
            store.journal_outcome(
                rows,
                Outcome::Failed,
                e.code.as_deref(),
                Some(&e.explanation),
                &[],
            )?;
            report.failed += changes.len();
            report.failed_user =
                Some((action.user.clone(), (e.code.clone(), e.explanation.clone())));
            if e.systemic {
                tracing::error!(error = %e.message, "whole-system failure, stopping the apply");
                report.systemic = Some(e.message);
                Ok(report)
            } else {
                tracing::warn!(
                    user = %action.user.email,
                    code = e.code.as_deref().unwrap_or(""),
                    explanation = %e.explanation,
                    "change failed"
                );
                Ok(report)
            }
        }
    }
}

/// The baseline a confirmed change leaves: its value in the form values are compared in (a
/// country name written to TELUS is remembered by its code).
fn compared(ctx: &ApplyContext<'_>, c: &AttrChange) -> Option<String> {
    compared_value(ctx.after_create.policy, &c.attr, c.new.as_deref())
}

/// The same, for an attribute and the value written.
fn compared_value(
    policy: &crate::reconcile::policy::Policy,
    attr: &str,
    written: Option<&str>,
) -> Option<String> {
    let kind = policy
        .rule(attr)
        .map(|r| r.normalize)
        .unwrap_or(crate::reconcile::policy::Normalize::None);
    crate::reconcile::normalize::compared_form(kind, written)
}

fn missing(what: &str) -> WriteError {
    WriteError {
        code: None,
        explanation: format!("{what} is not in this pass's snapshot"),
        message: format!("{what} is not in this pass's snapshot"),
        systemic: false,
        unknown: false,
        invalid: Vec::new(),
    }
}
