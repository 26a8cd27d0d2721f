//! TELUS updates and status changes sent as bulk updates (`extension-bulk-update`, up to 500
//! records a request), each task polled to its end and each record journalled like a single
//! write; the fall-back to one PUT per user while the account refuses bulk; and, before a
//! pass reads anything, the settling of tasks an earlier run left unfinished.

use super::{Attempt, Run, WriteError, journal_entries, record};
use crate::model::{ExtId, OktaId, System, TelusStatus};
use crate::reconcile::{Action, Agreed, PlannedAction, Settlement};
use crate::store::{Outcome, Store};
use crate::telus::{self, BULK_MAX, BulkRecord, BulkTask};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The task id journalled just before a bulk request goes: its answer, which names the task,
/// may be lost after TELUS accepted it.
pub const PENDING_TASK: &str = "pending";

/// A bulk request whose answer was lost is settled by a read only this long after it was
/// sent: a task still running would make the read say nothing. RingCentral does not say how
/// long tasks take; ten minutes is far beyond what they are seen to take.
const PENDING_GRACE: chrono::Duration = chrono::Duration::minutes(10);

const POLL_FIRST: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(5);

/// How long the account's refusal of bulk updates is remembered.
const REFUSAL_TTL_S: i64 = 24 * 3600;

/// The account refused bulk updates: until when per-user writes are used, and TELUS's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRefusal {
    pub until: chrono::DateTime<chrono::Utc>,
    pub reason: String,
}

/// The remembered refusal of bulk updates, while it lasts.
pub fn bulk_refusal(store: &Store) -> Option<BulkRefusal> {
    let stored = store.bulk_refusal().ok().flatten()?;
    let until = chrono::DateTime::from_timestamp(stored.until_epoch_s, 0)?;
    (until > chrono::Utc::now()).then_some(BulkRefusal {
        until,
        reason: stored.reason,
    })
}

fn remember_refusal(store: &Store, e: &telus::Error) {
    let until = chrono::Utc::now().timestamp() + REFUSAL_TTL_S;
    let reason = format!("{} {}", e.code().unwrap_or(""), e.explanation());
    tracing::warn!(
        code = e.code().unwrap_or(""),
        explanation = %e.explanation(),
        retry_after_h = REFUSAL_TTL_S / 3600,
        "this TELUS account refuses bulk updates (extension-bulk-update): sending one update per user, which is slower; bulk is tried again in a day"
    );
    let stored = crate::store::state::StoredBulkRefusal {
        until_epoch_s: until,
        reason,
    };
    if let Err(err) = store.save_bulk_refusal(&stored) {
        tracing::warn!(error = %err, "cannot remember the refusal of bulk updates");
    }
}

/// Whether a user's actions can go in one bulk record: TELUS updates and status changes.
pub(super) fn bulk_eligible(actions: &[&PlannedAction]) -> bool {
    actions.iter().all(|a| {
        a.system == System::Telus
            && matches!(
                a.action,
                Action::Update { .. } | Action::Deactivate { .. } | Action::Reactivate { .. }
            )
    })
}

/// One user's part of a bulk request: the actions, their journal rows, the record.
struct Item<'p> {
    actions: Vec<&'p PlannedAction>,
    rows: Vec<Vec<i64>>,
    record: BulkRecord,
}

impl Item<'_> {
    fn all_rows(&self) -> Vec<i64> {
        self.rows.iter().flatten().copied().collect()
    }
}

/// Every journal row of these items.
fn rows_of(items: &[Item<'_>]) -> Vec<i64> {
    items.iter().flat_map(Item::all_rows).collect()
}

/// How a bulk request ended.
enum Sent<'p> {
    Done,
    /// The account refuses bulk updates: these items go one by one.
    Refused(Vec<Item<'p>>),
    /// TELUS names one bad record per refusal: these items go one by one, later chunks
    /// still in bulk.
    OneByOne(Vec<Item<'p>>),
}

impl<'p> Run<'_, '_> {
    /// Sends these users' TELUS changes in bulk requests of up to 500 records, each task
    /// polled to its end. Answers the users for the one-by-one way (their rows for the
    /// refused request are discarded: it did nothing): after a refusal of bulk, every user
    /// not yet sent; after two refusals in a row that each named one bad record, the rest
    /// of that chunk.
    pub(super) async fn bulk(
        &self,
        users: Vec<Vec<&'p PlannedAction>>,
    ) -> Result<Vec<Vec<&'p PlannedAction>>, crate::store::Error> {
        let mut users = users.into_iter();
        let mut singles = Vec::new();
        loop {
            let chunk: Vec<_> = users.by_ref().take(BULK_MAX).collect();
            if chunk.is_empty() || !self.go_on() {
                return Ok(singles);
            }
            let items = self.prepare(chunk).await?;
            if items.is_empty() {
                continue;
            }
            match self.send_bulk(items).await? {
                Sent::Done => {}
                Sent::OneByOne(items) => singles.extend(items.into_iter().map(|i| i.actions)),
                Sent::Refused(items) => {
                    singles.extend(items.into_iter().map(|i| i.actions));
                    singles.extend(users);
                    return Ok(singles);
                }
            }
        }
    }

    /// Builds each user's record and journals its changes `planned` (in one transaction,
    /// marked as going in a task not yet named). A user whose record cannot be built, or
    /// who is not in the snapshot, goes the single way, which records why.
    async fn prepare(
        &self,
        chunk: Vec<Vec<&'p PlannedAction>>,
    ) -> Result<Vec<Item<'p>>, crate::store::Error> {
        let ctx = self.ctx;
        let mut items = Vec::new();
        for actions in chunk {
            let user = &actions[0].user;
            let current = user
                .ext_id
                .as_ref()
                .and_then(|id| ctx.targets.telus_users.get(id).copied());
            let built = current.map(|current| {
                let (changes, status) = record_parts(&actions);
                ctx.telus
                    .bulk_record(current, &changes, status.as_ref(), user.okta_id.as_ref())
            });
            match built {
                Some(Ok(record)) => items.push(Item {
                    actions,
                    rows: Vec::new(),
                    record,
                }),
                _ => {
                    for action in actions {
                        self.one(action, None).await?;
                    }
                }
            }
        }
        let entries: Vec<_> = items
            .iter()
            .flat_map(|i| i.actions.iter())
            .flat_map(|a| journal_entries(a, ctx.pass_id))
            .collect();
        let mut ids = ctx
            .store
            .journal_planned_in(&entries, Some(PENDING_TASK))?
            .into_iter();
        for item in &mut items {
            for a in &item.actions {
                item.rows
                    .push(ids.by_ref().take(a.changes().len()).collect());
            }
        }
        Ok(items)
    }

    /// Sends one bulk request and records its outcome. A 400 naming one record fails that
    /// record and sends the rest again; a refusal of bulk hands the items back; a lost answer
    /// leaves them `planned` under a pending task, for the next pass to settle.
    async fn send_bulk(&self, mut items: Vec<Item<'p>>) -> Result<Sent<'p>, crate::store::Error> {
        let (store, telus) = (self.ctx.store, self.ctx.telus);
        // Refusals in a row that each named a single record.
        let mut one_at_a_time = 0u32;
        loop {
            let records: Vec<&BulkRecord> = items.iter().map(|i| &i.record).collect();
            let e = match telus.bulk_update(&records).await {
                Ok(task) => {
                    store.set_task(&rows_of(&items), Some(&task.id))?;
                    tracing::info!(task = %task.id, records = items.len(), "bulk update accepted");
                    let id = task.id.clone();
                    let finished = self.poll(task, self.ctx.bulk_task_timeout).await;
                    let stopping = self
                        .ctx
                        .stop
                        .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
                    if finished.is_none() && !stopping {
                        // A stuck task would hold the store lock (and the events behind
                        // it) for hours at 500 records a chunk: this pass ends here.
                        tracing::warn!(
                            task = %id,
                            timeout_s = self.ctx.bulk_task_timeout.as_secs(),
                            "a bulk task outlived telus.bulk_task_timeout_seconds: no further chunk is sent; the next pass polls it and sends the rest"
                        );
                        self.report.borrow_mut().stuck_task = Some(id);
                    }
                    self.record_task(items, finished)?;
                    return Ok(Sent::Done);
                }
                Err(e) => e,
            };
            if e.refuses_bulk() {
                remember_refusal(store, &e);
                store.discard_unsent(&rows_of(&items))?;
                return Ok(Sent::Refused(items));
            }
            let named: BTreeMap<usize, telus::Error> = e
                .bulk_record_errors()
                .into_iter()
                .filter(|(i, _)| *i < items.len())
                .collect();
            if !named.is_empty() {
                // Every record the refusal names is taken out at once (the request did
                // nothing), each failed with its own error; the rest go again once.
                for (i, err) in named.iter().rev() {
                    let item = items.remove(*i);
                    store.set_task(&item.all_rows(), None)?;
                    self.record_item(&item, Err(WriteError::from(err)))?;
                }
                if items.is_empty() {
                    return Ok(Sent::Done);
                }
                one_at_a_time = if named.len() == 1 {
                    one_at_a_time + 1
                } else {
                    0
                };
                if one_at_a_time >= 2 {
                    // TELUS names one bad record per refusal: a Heavy request per bad record
                    // would cost minutes each at the published limit; the rest of the chunk
                    // goes one request per user instead.
                    store.discard_unsent(&rows_of(&items))?;
                    tracing::info!(
                        records = items.len(),
                        "telus names one refused record per bulk request: the rest of this chunk goes one request per user"
                    );
                    return Ok(Sent::OneByOne(items));
                }
                continue;
            }
            let failure = WriteError::from(&e);
            let server_error = matches!(e, telus::Error::Api { status, .. } if status >= 500);
            if failure.unknown || server_error {
                // An update sets the same values however often it lands, so it is not held
                // while a task might still run: the next read settles each user by its values
                // (landed: applied; not: sent again), and a late task writes what a second
                // request would. The error's code stays on the rows for `history`.
                let rows = rows_of(&items);
                store.set_task(&rows, None)?;
                store.note_unconfirmed(&rows, failure.code.as_deref(), &failure.explanation)?;
                tracing::warn!(
                    records = items.len(),
                    code = failure.code.as_deref().unwrap_or(""),
                    error = %failure.message,
                    "telus answered a bulk update with a server error or not at all: its users are settled by their values on the next read"
                );
                let failure = failure.unconfirmed();
                for item in &items {
                    self.record_item(item, Err(failure.clone()))?;
                }
                return Ok(Sent::Done);
            }
            store.set_task(&rows_of(&items), None)?;
            for item in &items {
                self.record_item(item, Err(failure.clone()))?;
            }
            return Ok(Sent::Done);
        }
    }

    /// Polls a task until it has run, within `limit` and until a stop; `None` when it has
    /// not finished by then (or could not be polled).
    async fn poll(&self, task: BulkTask, limit: Duration) -> Option<BulkTask> {
        poll_task(self.ctx.telus, task, limit, self.ctx.stop).await
    }

    /// Journals each record's outcome from the finished task: `Success` applied (with its
    /// baseline), `Fail` failed with TELUS's explanation. A record the task does not
    /// mention, or a task not finished, stays `planned` for the next pass to settle.
    fn record_task(
        &self,
        items: Vec<Item<'p>>,
        task: Option<BulkTask>,
    ) -> Result<(), crate::store::Error> {
        let Some(task) = task else {
            for item in &items {
                self.record_item(item, Err(still_running()))?;
            }
            return Ok(());
        };
        let results: HashMap<&ExtId, &Result<(), telus::Error>> =
            task.results.iter().map(|(id, r)| (id, r)).collect();
        for item in &items {
            let outcome = match results.get(&item.record.ext_id) {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => Err(WriteError::from(e)),
                None => match task.errors.first() {
                    Some(e) if task.status == telus::TaskStatus::Failed => Err(WriteError::from(e)),
                    _ => Err(still_running()),
                },
            };
            self.record_item(item, outcome)?;
        }
        Ok(())
    }

    /// Records one item's outcome for each of its actions.
    fn record_item(
        &self,
        item: &Item<'_>,
        outcome: Result<(), WriteError>,
    ) -> Result<(), crate::store::Error> {
        if let Err(e) = &outcome
            && self.split_invalid(item, e)?
        {
            return Ok(());
        }
        let mut attempt = Attempt::default();
        for (action, rows) in item.actions.iter().zip(&item.rows) {
            attempt.absorb(record(
                action,
                rows,
                action.changes(),
                outcome.clone(),
                self.ctx,
            )?);
        }
        self.absorb(attempt);
        Ok(())
    }
}

impl Run<'_, '_> {
    /// A record TELUS failed for a value it names as invalid: that value is a data problem
    /// (journalled `failed`, remembered); the record did nothing, so the user's other
    /// changes lose their rows and are sent again one request at a time in this pass.
    /// Answers false when the failure names no value of the record.
    fn split_invalid(&self, item: &Item<'_>, e: &WriteError) -> Result<bool, crate::store::Error> {
        let named: Vec<Vec<usize>> = item.actions.iter().map(|a| e.named(a.changes())).collect();
        if named.iter().all(Vec::is_empty) {
            return Ok(false);
        }
        let mut attempt = Attempt::default();
        let (mut again, mut unsent) = (Vec::new(), Vec::new());
        for ((action, rows), bad) in item.actions.iter().zip(&item.rows).zip(&named) {
            if !bad.is_empty() {
                attempt.absorb(super::record_data_problems(action, bad, rows, e, self.ctx)?);
            }
            let rest: Vec<crate::reconcile::AttrChange> = action
                .changes()
                .iter()
                .enumerate()
                .filter(|(i, _)| !bad.contains(i))
                .map(|(_, c)| c.clone())
                .collect();
            unsent.extend(
                rows.iter()
                    .enumerate()
                    .filter(|(i, _)| !bad.contains(i))
                    .map(|(_, r)| *r),
            );
            if rest.is_empty() {
                continue;
            }
            let mut action = (*action).clone();
            if let Action::Update { changes } = &mut action.action {
                *changes = rest;
            }
            again.push(action);
        }
        self.ctx.store.discard_unsent(&unsent)?;
        self.absorb(attempt);
        self.resend.borrow_mut().extend(again);
        Ok(true)
    }
}

/// A user's TELUS changes as one record: every update's fields, and the last status change.
fn record_parts(
    actions: &[&PlannedAction],
) -> (Vec<(String, Option<String>)>, Option<TelusStatus>) {
    let mut changes = Vec::new();
    let mut status = None;
    for a in actions {
        match a.action {
            Action::Update { .. } => {
                changes.extend(a.changes().iter().map(|c| (c.field.clone(), c.new.clone())));
            }
            Action::Deactivate { .. } => status = Some(TelusStatus::Disabled),
            Action::Reactivate { .. } => status = Some(TelusStatus::Enabled),
            Action::Create { .. } | Action::Import { .. } => {}
        }
    }
    (changes, status)
}

/// A record whose outcome is not known yet: left `planned`, never sent again blindly.
fn still_running() -> WriteError {
    WriteError {
        code: None,
        explanation:
            "TELUS had not finished the bulk update; its outcome is settled on the next pass".into(),
        message: "bulk update task not finished".into(),
        systemic: false,
        unknown: true,
        invalid: Vec::new(),
    }
}

async fn poll_task(
    telus: &telus::Client,
    mut task: BulkTask,
    limit: Duration,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Option<BulkTask> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut delay = POLL_FIRST;
    while !task.status.finished() {
        let stopping = stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst));
        if stopping || tokio::time::Instant::now() + delay > deadline {
            tracing::warn!(task = %task.id, "bulk update still running: its outcome is settled on the next pass");
            return None;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
        task = match telus.bulk_task(&task.id).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "cannot poll the bulk update: its outcome is settled on the next pass");
                return None;
            }
        };
    }
    Some(task)
}

/// What settling an earlier run's bulk tasks did.
#[derive(Debug, Default)]
pub struct TaskSettling {
    /// Changes whose outcome a finished task gave (landed, not landed).
    pub settled: (usize, usize),
    /// TELUS users whose task may still be running: left out of this pass.
    pub in_flight: Vec<ExtId>,
}

/// Before a pass reads anything: the bulk tasks an earlier run sent but did not record are
/// polled until they finish, and their records' outcomes journalled. A change the task does
/// not mention, or whose task is gone, is left to the usual settling by a fresh read, which
/// now comes after the task ran. A task still running, or a request whose answer was lost
/// less than ten minutes ago, keeps its users out of this pass.
pub async fn settle_tasks(
    store: &Store,
    telus: &telus::Client,
    policy: &crate::reconcile::policy::Policy,
    limit: Duration,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<TaskSettling, crate::store::Error> {
    let mut out = TaskSettling::default();
    let rows = store.unfinished_tasks()?;
    if rows.is_empty() {
        return Ok(out);
    }
    let journal: HashMap<i64, crate::store::JournalRow> =
        store.unfinished()?.into_iter().map(|r| (r.id, r)).collect();
    let mut by_task: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (row, task, time) in rows {
        by_task.entry(task).or_default().push((row, time));
    }
    let ext_of = |row: &i64| journal.get(row).and_then(|r| r.ext_id.clone()).map(ExtId);
    let mut tasks = Vec::new();
    for (task, rows) in by_task {
        let ids: Vec<i64> = rows.iter().map(|(r, _)| *r).collect();
        if task == PENDING_TASK {
            if pending_is_young(&rows, chrono::Utc::now()) {
                out.in_flight.extend(ids.iter().filter_map(ext_of));
            } else {
                store.set_task(&ids, None)?;
            }
            continue;
        }
        tasks.push((task, ids));
    }
    let polled = poll_side_by_side(telus, &tasks, limit, stop).await;
    for ((_, ids), polled) in tasks.iter().zip(polled) {
        let done = match polled {
            Polled::Done(done) => done,
            // The task is gone (expired): it ran long ago; a read settles its records.
            Polled::Gone => {
                store.set_task(ids, None)?;
                continue;
            }
            Polled::Unfinished => {
                out.in_flight.extend(ids.iter().filter_map(ext_of));
                continue;
            }
        };

        let (landed, failed) = record_settled(store, &journal, ids, &done, policy)?;
        out.settled.0 += landed;
        out.settled.1 += failed;
    }
    out.in_flight.sort();
    out.in_flight.dedup();
    if out.settled != (0, 0) || !out.in_flight.is_empty() {
        tracing::warn!(
            landed = out.settled.0,
            not_landed = out.settled.1,
            in_flight = out.in_flight.len(),
            "settled bulk updates an earlier run sent"
        );
    }
    Ok(out)
}

/// What polling a task an earlier run left gave.
enum Polled {
    Done(BulkTask),
    /// TELUS no longer knows it (`CMN-102`).
    Gone,
    /// Still running at the deadline, or it could not be read.
    Unfinished,
}

/// Polls the tasks side by side, all under the one `limit` (a pass waits for the slowest,
/// not for their sum).
async fn poll_side_by_side(
    telus: &telus::Client,
    tasks: &[(String, Vec<i64>)],
    limit: Duration,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Vec<Polled> {
    let one = |task: &str| {
        let task = task.to_string();
        async move {
            match telus.bulk_task(&task).await {
                Ok(t) => match poll_task(telus, t, limit, stop).await {
                    Some(done) => Polled::Done(done),
                    None => Polled::Unfinished,
                },
                Err(e) if e.code() == Some("CMN-102") => Polled::Gone,
                Err(_) => Polled::Unfinished,
            }
        }
    };
    futures_util::future::join_all(tasks.iter().map(|(t, _)| one(t))).await
}

/// Whether a request whose answer was lost is too recent for a read to settle it (a time
/// that cannot be read counts as old: such rows are never held back for good).
fn pending_is_young(rows: &[(i64, String)], now: chrono::DateTime<chrono::Utc>) -> bool {
    rows.iter()
        .filter_map(|(_, t)| chrono::DateTime::parse_from_rfc3339(t).ok())
        .max()
        .is_some_and(|t| now - t.with_timezone(&chrono::Utc) < PENDING_GRACE)
}

/// Journals the outcome a finished task gives each of these rows; rows it does not mention
/// lose their task mark and are settled by the fresh read. Answers (landed, not landed).
fn record_settled(
    store: &Store,
    journal: &HashMap<i64, crate::store::JournalRow>,
    ids: &[i64],
    task: &BulkTask,
    policy: &crate::reconcile::policy::Policy,
) -> Result<(usize, usize), crate::store::Error> {
    let results: HashMap<&str, &Result<(), telus::Error>> = task
        .results
        .iter()
        .map(|(id, r)| (id.0.as_str(), r))
        .collect();
    let (mut landed, mut failed, mut unread) = (Vec::new(), 0, Vec::new());
    for id in ids {
        let Some(row) = journal.get(id) else { continue };
        match row.ext_id.as_deref().and_then(|e| results.get(e)) {
            Some(Ok(())) => landed.push(Settlement {
                row_id: *id,
                landed: true,
                baseline: row.okta_id.as_ref().map(|o| {
                    Agreed::one(
                        OktaId(o.clone()),
                        &row.attribute,
                        super::compared_value(policy, &row.attribute, row.new.as_deref()),
                    )
                }),
                link: None,
            }),
            Some(Err(e)) => {
                let e = WriteError::from(e);
                store.journal_outcome(
                    &[*id],
                    Outcome::Failed,
                    e.code.as_deref(),
                    Some(&e.explanation),
                    &[],
                )?;
                failed += 1;
            }
            None => unread.push(*id),
        }
    }
    store.settle(&landed)?;
    store.set_task(&unread, None)?;
    Ok((landed.len(), failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_bulk_answer_holds_its_users_for_ten_minutes_only() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let at = |t: &str| vec![(1, t.to_string())];
        assert!(pending_is_young(&at("2026-12-01T11:55:00.000Z"), now));
        assert!(!pending_is_young(&at("2026-12-01T11:49:59.000Z"), now));
        assert!(!pending_is_young(&at("not a time"), now));
        // The newest row of the request decides.
        let rows = vec![
            (1, "2026-12-01T11:00:00.000Z".to_string()),
            (2, "2026-12-01T11:59:00.000Z".to_string()),
        ];
        assert!(pending_is_young(&rows, now));
    }

    fn update(ext: &str) -> PlannedAction {
        PlannedAction {
            user: crate::reconcile::UserRef {
                email: format!("{ext}@x"),
                okta_id: None,
                ext_id: Some(ExtId(ext.into())),
            },
            system: System::Telus,
            action: Action::Update {
                changes: Vec::new(),
            },
        }
    }

    #[test]
    fn only_updates_and_status_changes_go_in_bulk() {
        let u = update("1");
        assert!(bulk_eligible(&[&u]));
        let mut okta = update("1");
        okta.system = System::Okta;
        assert!(!bulk_eligible(&[&u, &okta]));
    }
}
