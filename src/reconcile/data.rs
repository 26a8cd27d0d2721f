//! Known data problems: values that cannot be written until someone fixes them at their
//! source. Fingerprints of the values on both sides, and the plan step that holds back
//! what failed before while those values are unchanged. Pure.

use super::plan::{Action, AttrChange, DataProblem, Plan, Problem, ProblemKind};
use crate::model::System;
use sha2::Digest as _;
use std::collections::HashMap;

/// The code a value refused before any write carries (not normalizable: not a phone
/// number, an unknown country).
pub const INVALID_VALUE: &str = "invalid-value";

/// A short digest of some values, so a data problem is matched without keeping the values.
fn digest(parts: &[Option<&str>]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        match p {
            Some(v) => {
                h.update(b"v");
                h.update(v.as_bytes());
            }
            None => h.update(b"n"),
        }
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of a change a target refused: the value sent and the value the target
/// held. A change on either side is a new fingerprint, so it is tried again.
pub fn change_fingerprint(c: &AttrChange) -> String {
    digest(&[Some("write"), c.new.as_deref(), c.old.as_deref()])
}

/// The fingerprint of a source value found invalid before any write, with the target's
/// value beside it.
pub fn invalid_fingerprint(source: &str, target: Option<&str>) -> String {
    digest(&[Some("invalid"), Some(source), target])
}

/// Holds back what `known` says cannot be written while nothing changed: each planned
/// change with a known fingerprint leaves the plan (a `DataProblem` note instead), and each
/// value found invalid again with the same fingerprint stops counting as the user's failure.
/// `plan.data_problems` ends as the known problems still holding plus the new ones.
pub fn hold_back_data_problems(plan: &mut Plan, known: &[DataProblem]) {
    // Nothing known: every problem found is new, and no change is held back.
    if known.is_empty() {
        return;
    }
    let by_key: HashMap<(String, String, System), &DataProblem> = known
        .iter()
        .map(|d| ((d.user_key(), d.attr.clone(), d.system), d))
        .collect();
    let mut holding: Vec<DataProblem> = Vec::new();
    let mut notes = Vec::new();
    for a in &mut plan.actions {
        let Action::Update { changes } = &mut a.action else {
            continue;
        };
        let (user, system) = (&a.user, a.system);
        let who = user.key();
        changes.retain(|c| {
            let k = (who.clone(), c.attr.clone(), system);
            match by_key.get(&k) {
                Some(d) if d.fingerprint == change_fingerprint(c) => {
                    notes.push(note(user.clone(), d));
                    holding.push((*d).clone());
                    false
                }
                _ => true,
            }
        });
    }
    plan.actions.retain(|a| !a.changes().is_empty());
    // Values found invalid again: known ones stop failing the user.
    let mut new = Vec::new();
    for d in std::mem::take(&mut plan.data_problems) {
        match by_key.get(&(d.user_key(), d.attr.clone(), d.system)) {
            Some(k) if k.fingerprint == d.fingerprint => {
                for p in plan.problems.iter_mut().filter(|p| {
                    p.kind == ProblemKind::InvalidValue
                        && p.attr.as_deref() == Some(d.attr.as_str())
                        && p.user.okta_id == d.okta_id
                }) {
                    p.kind = ProblemKind::DataProblem;
                    let what = p.message.split(": ").next().unwrap_or_default().to_string();
                    p.message = format!(
                        "{what}; not written (known since {}; tried again when the value changes on either side, or with `sync --retry-quarantined`)",
                        k.since
                    );
                }
                holding.push((*k).clone());
            }
            _ => new.push(d),
        }
    }
    plan.problems.extend(notes);
    plan.problems.sort();
    holding.extend(new);
    holding.sort();
    holding.dedup();
    plan.data_problems = holding;
}

fn note(user: super::plan::UserRef, d: &DataProblem) -> Problem {
    Problem {
        values: None,
        user,
        kind: ProblemKind::DataProblem,
        attr: Some(d.attr.clone()),
        message: format!(
            "{} not sent to {}: {} (known since {}; tried again when the value changes on either side, or with `sync --retry-quarantined`)",
            d.attr, d.system, d.explanation, d.since
        ),
    }
}
