//! `explain`'s reasoning for one linked pair, row by row: both sides' values and their
//! normalized forms, the baseline, the master and the rule that decides, and the result
//! (equal, a write to one side, a conflict, left out and why), read off the one plan. Pure.

use super::normalize::normalize;
use super::plan::{Baseline, Plan, ProblemKind};
use super::policy::{AttrRule, Master, OnConflict, Policy};
use crate::model::{OktaUser, System, TelusUser};
use std::collections::BTreeMap;

/// One row of the mastering table, explained for one user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowExplained {
    pub attribute: String,
    pub telus_field: String,
    pub okta: Option<String>,
    pub telus: Option<String>,
    pub okta_normalized: Option<String>,
    pub telus_normalized: Option<String>,
    pub baseline: Option<String>,
    /// The row's master as configured (`okta`, `telus, okta`, `latest`).
    pub master: String,
    /// Okta's schema master label for the attribute (`PROFILE_MASTER`, `OKTA`, ...).
    pub okta_schema_master: Option<String>,
    /// The rule that decides, in words.
    pub rule: String,
    /// `equal`, `write to telus`, `write to okta`, `conflict`, `known refusal`,
    /// `data problem`, `left out`.
    pub result: String,
    /// Why, in words (the old → new of a write, a problem's message, why it is left out).
    pub why: String,
}

/// The pair's rows, from the fresh read and the plan `decide::plan` made of it.
pub fn rows(
    okta: &OktaUser,
    telus: &TelusUser,
    baseline: &Baseline,
    policy: &Policy,
    okta_masters: &BTreeMap<String, String>,
    okta_refused: &BTreeMap<String, String>,
    plan: &Plan,
) -> Vec<RowExplained> {
    policy
        .rules
        .iter()
        .map(|rule| {
            let o = okta.profile.get(&rule.okta_attr).map(str::to_string);
            let t = super::telus_value(telus, &rule.telus);
            let on = normalize(rule.normalize, o.as_deref())
                .key()
                .map(str::to_string);
            let tn = normalize(rule.normalize, t.as_deref())
                .key()
                .map(str::to_string);
            let base = baseline.get(&okta.id, &rule.okta_attr).map(str::to_string);
            let (result, why) =
                result_of(rule, policy, plan, okta_refused, on == tn, base.is_some());
            RowExplained {
                attribute: rule.okta_attr.clone(),
                telus_field: rule.telus.fields().join(" + "),
                rule: decides(rule, &on, &tn, base.as_deref()),
                master: master_text(&rule.master),
                okta_schema_master: okta_masters.get(&rule.okta_attr).cloned(),
                okta: o,
                telus: t,
                okta_normalized: on,
                telus_normalized: tn,
                baseline: base,
                result,
                why,
            }
        })
        .collect()
}

fn master_text(m: &Master) -> String {
    match m {
        Master::Priority(order) => order
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Master::Latest { .. } => "latest".to_string(),
    }
}

/// The rule that decides the row, in words: who masters it, or which side changed since
/// the baseline for a `latest` row.
fn decides(
    rule: &AttrRule,
    on: &Option<String>,
    tn: &Option<String>,
    base: Option<&str>,
) -> String {
    match &rule.master {
        Master::Priority(order) => {
            let first = order.first().map(|s| s.as_str()).unwrap_or("none");
            let mut s = format!("master: {first} supplies the value");
            if rule.create_only {
                s.push_str(" (apply = \"create\": only when the TELUS user is created)");
            }
            s
        }
        Master::Latest { on_conflict } => {
            let changed = |side: &Option<String>| side.as_deref() != base;
            let settle = match on_conflict {
                OnConflict::Prefer(s) => format!("on_conflict prefers {}", s.as_str()),
                OnConflict::Skip => "on_conflict = skip".to_string(),
            };
            let which = match (base, changed(on), changed(tn)) {
                (None, _, _) => "no baseline yet: the master's order settles it".to_string(),
                (_, false, false) => "neither side changed since the baseline".to_string(),
                (_, true, false) => {
                    "Okta changed since the baseline: Okta's value wins".to_string()
                }
                (_, false, true) => {
                    "TELUS changed since the baseline: TELUS's value wins".to_string()
                }
                (_, true, true) => format!("both sides changed since the baseline: {settle}"),
            };
            format!("latest: {which}")
        }
    }
}

/// What the plan does with the row, and why.
fn result_of(
    rule: &AttrRule,
    policy: &Policy,
    plan: &Plan,
    okta_refused: &BTreeMap<String, String>,
    equal: bool,
    has_baseline: bool,
) -> (String, String) {
    let attr = rule.okta_attr.as_str();
    for a in &plan.actions {
        if let Some(c) = a.changes().iter().find(|c| c.attr == attr) {
            return (
                format!("write to {}", a.system.as_str()),
                format!(
                    "{} → {} (rule {})",
                    shown(c.old.as_deref()),
                    shown(c.new.as_deref()),
                    c.rule.as_str()
                ),
            );
        }
    }
    if let Some(p) = plan
        .problems
        .iter()
        .find(|p| p.attr.as_deref() == Some(attr))
    {
        let result = match p.kind {
            ProblemKind::KnownRefusal => "known refusal",
            ProblemKind::ConflictSkipped | ProblemKind::ConflictSettled => "conflict",
            ProblemKind::DataProblem | ProblemKind::InvalidValue => "data problem",
            _ => "problem",
        };
        return (result.to_string(), p.message.clone());
    }
    if let Some(d) = plan.data_problems.iter().find(|d| d.attr == attr) {
        return (
            "data problem".to_string(),
            format!(
                "{} value {} cannot be written: {} {}",
                d.system.as_str(),
                shown(d.value.as_deref()),
                d.code,
                d.explanation
            ),
        );
    }
    if equal {
        let why = match has_baseline {
            true => "both sides hold the same value",
            false => "both sides hold the same value (no baseline kept yet)",
        };
        return ("equal".to_string(), why.to_string());
    }
    let why = if let Some(why) = okta_refused.get(attr) {
        why.clone()
    } else if rule.create_only {
        "apply = \"create\": written only when the TELUS user is created".to_string()
    } else if let Master::Priority(order) = &rule.master
        && let Some(first) = order.first()
        && !policy.can_write(rule, target_of(*first))
    {
        format!(
            "{} is not written: its feature is off or the field is read-only",
            target_of(*first).as_str()
        )
    } else {
        "the values differ and no write is planned: see the user's holds and problems".to_string()
    };
    ("left out".to_string(), why)
}

fn target_of(master: System) -> System {
    match master {
        System::Okta => System::Telus,
        System::Telus => System::Okta,
    }
}

fn shown(v: Option<&str>) -> String {
    v.map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "(empty)".to_string())
}
