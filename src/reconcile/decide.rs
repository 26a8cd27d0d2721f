//! The one pure call of a pass: every input in (both snapshots, links, baseline, the
//! mastering table, what Okta refuses, the hold context, the users in backoff or quarantine),
//! the final plan out. Nothing edits the plan afterwards; the dependent step of a create (its
//! new extension written back to Okta) is planned here too, from the created user.

use super::diff::{Snapshot, plan_pass};
use super::plan::{Agreed, Baseline, DataProblem, KnownRefusal, Plan, PlannedAction, UserRef};
use super::policy::{Policy, Safety};
use super::retry::{FailureRow, Gate, fingerprint, gate};
use super::safety::{HoldContext, hold_reasons};
use crate::model::{ExtId, Link, OktaUser, System, TelusUser};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What Okta's profile schema says about writes (read once per pass when a row writes to
/// Okta; empty when it could not be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OktaWrites {
    /// Written attributes Okta refuses for every user (read-only, or an OVERRIDE led by an
    /// app) → why, naming the row.
    pub refused: BTreeMap<String, String>,
    /// Attribute → its master label (`PROFILE_MASTER`, `OKTA`, `OVERRIDE:APP`).
    pub masters: BTreeMap<String, String>,
}

/// Everything a pass decides from.
pub struct Inputs<'a> {
    pub okta: &'a [OktaUser],
    pub telus: &'a [TelusUser],
    pub links: &'a [Link],
    pub baseline: &'a Baseline,
    pub policy: &'a Policy,
    pub safety: &'a Safety,
    pub okta_writes: &'a OktaWrites,
    /// Attributes Okta refused for one user before.
    pub known_refusals: &'a [KnownRefusal],
    /// Values that could not be written before (known data problems).
    pub data_problems: &'a [DataProblem],
    pub hold: HoldContext,
    /// Users whose writes failed on recent passes (backoff, quarantine).
    pub failures: &'a [FailureRow],
    pub now: DateTime<Utc>,
    /// `sync --approve`: holds are lifted, vanished users are created again.
    pub approved: bool,
    /// TELUS users with a bulk update TELUS may still be applying: nothing more is sent to
    /// them until its outcome is known (a read taken meanwhile says nothing about it).
    pub in_flight: &'a [ExtId],
}

/// The final plan of a pass.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let mut plan = plan_pass(
        &Snapshot {
            okta: inputs.okta,
            telus: inputs.telus,
            links: inputs.links,
            baseline: inputs.baseline,
            approved: inputs.approved,
        },
        inputs.policy,
    );
    plan.leave_out_okta_writes(&inputs.okta_writes.refused);
    plan.hold_back_known_refusals(
        inputs.known_refusals,
        inputs.okta,
        &inputs.okta_writes.masters,
    );
    super::data::hold_back_data_problems(&mut plan, inputs.data_problems);
    plan.held = hold_reasons(&plan, inputs.safety, &inputs.hold);
    plan.approved = inputs.approved;
    defer_failed_users(&mut plan, inputs.failures, inputs.now);
    defer_in_flight(&mut plan, inputs.in_flight);
    plan
}

/// Takes out the TELUS actions of users whose earlier bulk update may still be running.
fn defer_in_flight(plan: &mut Plan, in_flight: &[ExtId]) {
    if in_flight.is_empty() {
        return;
    }
    let busy: HashSet<&ExtId> = in_flight.iter().collect();
    let mut deferred = Vec::new();
    plan.actions.retain(|a| {
        let out =
            a.system == System::Telus && a.user.ext_id.as_ref().is_some_and(|id| busy.contains(id));
        if out {
            deferred.push((
                a.user.clone(),
                "a bulk update sent earlier may still be running in TELUS: checked on the next pass"
                    .to_string(),
            ));
        }
        !out
    });
    deferred.dedup();
    plan.deferred.extend(deferred);
    plan.deferred.sort();
    plan.deferred.dedup();
}

/// Moves the actions of users still backing off after a failure, or quarantined, out of
/// the plan and into `deferred` with the reason.
fn defer_failed_users(plan: &mut Plan, failures: &[FailureRow], now: DateTime<Utc>) {
    if failures.is_empty() {
        return;
    }
    let records: HashMap<&str, &FailureRow> =
        failures.iter().map(|f| (f.user_key.as_str(), f)).collect();
    let mut by_user: BTreeMap<String, Vec<&PlannedAction>> = BTreeMap::new();
    for a in &plan.actions {
        by_user.entry(a.user.key()).or_default().push(a);
    }
    let mut skip: HashSet<String> = HashSet::new();
    let mut deferred: Vec<(UserRef, String)> = Vec::new();
    for (key, actions) in by_user {
        let why = match gate(
            records.get(key.as_str()).copied(),
            &fingerprint(actions.iter().copied()),
            now,
        ) {
            Gate::Go => continue,
            Gate::Backoff(until) => format!("failed recently; next retry after {until}"),
            Gate::Quarantined => "quarantined after repeated failures; fix the data or run `sync --retry-quarantined`".into(),
        };
        deferred.push((actions[0].user.clone(), why));
        skip.insert(key);
    }
    plan.actions.retain(|a| !skip.contains(&a.user.key()));
    deferred.sort();
    plan.deferred = deferred;
}

/// What a created user's dependent step needs besides the user itself.
pub struct AfterCreate<'a> {
    pub policy: &'a Policy,
    pub okta_writes: &'a OktaWrites,
    pub known_refusals: &'a [KnownRefusal],
}

/// The dependent step of a create, once TELUS has answered with the created user: what now
/// goes back to Okta for that user (its extension number in `primaryPhone`, with the default
/// table), and the values both sides then agree on. `written` are the create's own changes,
/// the user's baseline so far.
pub fn after_create(
    ctx: &AfterCreate<'_>,
    okta: &OktaUser,
    created: &TelusUser,
    written: &Agreed,
) -> (Vec<PlannedAction>, Vec<Agreed>) {
    let mut baseline = Baseline::new();
    for (attr, value) in &written.values {
        if let Some(v) = value {
            baseline.insert((okta.id.clone(), attr.to_string()), v.clone());
        }
    }
    let links = [Link {
        okta_id: okta.id.clone(),
        ext_id: created.id.clone(),
    }];
    let mut plan = plan_pass(
        &Snapshot {
            okta: std::slice::from_ref(okta),
            telus: std::slice::from_ref(created),
            links: &links,
            baseline: &baseline,
            approved: false,
        },
        ctx.policy,
    );
    plan.leave_out_okta_writes(&ctx.okta_writes.refused);
    plan.hold_back_known_refusals(
        ctx.known_refusals,
        std::slice::from_ref(okta),
        &ctx.okta_writes.masters,
    );
    (plan.actions, plan.agreed)
}
