//! A reviewed plan applied exactly: which of a saved plan's changes still hold against a
//! fresh read (apply), hold already (already applied) or went stale (skipped, with the value
//! found); everything else the fresh plan would do is dropped, unreviewed. Pure.

use super::normalize::normalize;
use super::plan::{Action, AttrChange, Plan, PlannedAction, STATUS_ATTR, UserRef};
use super::policy::{Normalize, Policy};
use crate::model::{Link, System};
use std::collections::{BTreeSet, HashMap};

/// A plan as `plan --out` saved it and an admin reviewed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedPlan {
    pub id: String,
    pub actions: Vec<PlannedAction>,
    pub new_links: Vec<Link>,
    /// The holds the plan had when it was written, as the admin read them.
    pub held: Vec<String>,
    /// Written by `plan --out --approve`: the reviewer lifted the holds.
    pub approved: bool,
}

impl SavedPlan {
    /// Whether applying the file needs a whole read: a create or an import is checked by
    /// reference and by email against the whole TELUS directory (exactly once).
    pub fn needs_whole_read(&self) -> bool {
        self.actions
            .iter()
            .any(|a| matches!(a.action, Action::Create { .. } | Action::Import { .. }))
    }

    pub fn change_count(&self) -> usize {
        self.actions.iter().map(|a| a.changes().len()).sum()
    }
}

/// What became of one reviewed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The target still holds `old` and the master still says `new`: applied now.
    Apply,
    /// The target holds `new` already.
    Already,
    /// Not applied: the target holds `found` (normalized comparison), or the change is no
    /// longer what a pass would do; `why` says which.
    Stale { found: Option<String>, why: String },
}

/// One reviewed change and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    pub user: UserRef,
    pub system: System,
    pub action: &'static str,
    pub change: AttrChange,
    pub verdict: Verdict,
}

/// The value a target holds now, from the fresh read: `None` when the target user is not
/// in it (for a create: no TELUS user yet).
pub type Current<'a> = dyn Fn(&UserRef, System, &str) -> Option<Option<String>> + 'a;

/// Keeps in `fresh` only the saved plan's changes that still hold, and says what became of
/// each. A create or an import goes whole or not at all; an update goes change by change.
/// The fresh plan's holds give way to the file's (checked before the pass); its problems
/// and deferrals are kept for the plan's users alone.
pub fn select(
    saved: &SavedPlan,
    fresh: &mut Plan,
    policy: &Policy,
    current: &Current<'_>,
) -> Vec<Reviewed> {
    let key = |a: &PlannedAction| (a.user.key(), a.system, a.action.as_str());
    let fresh_by: HashMap<_, &PlannedAction> = fresh.actions.iter().map(|a| (key(a), a)).collect();
    let mut reviewed = Vec::new();
    let mut keep: BTreeSet<(String, System, &'static str, String)> = BTreeSet::new();
    for s in &saved.actions {
        let f = fresh_by.get(&key(s)).copied();
        let whole = matches!(s.action, Action::Create { .. } | Action::Import { .. });
        let verdicts: Vec<Verdict> = match whole {
            true => {
                let v = whole_verdict(s, f, policy, current);
                vec![v; s.changes().len()]
            }
            false => s
                .changes()
                .iter()
                .map(|c| change_verdict(s, c, f, fresh, policy, current))
                .collect(),
        };
        for (c, verdict) in s.changes().iter().zip(verdicts) {
            if verdict == Verdict::Apply {
                keep.insert((s.user.key(), s.system, s.action.as_str(), c.attr.clone()));
            }
            reviewed.push(Reviewed {
                user: s.user.clone(),
                system: s.system,
                action: s.action.as_str(),
                change: c.clone(),
                verdict,
            });
        }
    }
    narrow(saved, fresh, &keep);
    reviewed
}

/// The fresh plan cut down to the kept changes and the plan's users.
fn narrow(
    saved: &SavedPlan,
    fresh: &mut Plan,
    keep: &BTreeSet<(String, System, &'static str, String)>,
) {
    fresh.actions.retain_mut(|a| {
        let (user, system, kind) = (a.user.key(), a.system, a.action.as_str());
        let kept = |attr: &str| keep.contains(&(user.clone(), system, kind, attr.to_string()));
        match &mut a.action {
            Action::Update { changes } => {
                changes.retain(|c| kept(&c.attr));
                !changes.is_empty()
            }
            // A create, an import or a lifecycle change goes whole or not at all.
            _ => a.changes().iter().any(|c| kept(&c.attr)),
        }
    });
    fresh.new_links.retain(|l| saved.new_links.contains(l));
    let users: BTreeSet<String> = saved.actions.iter().map(|a| a.user.key()).collect();
    fresh.problems.retain(|p| users.contains(&p.user.key()));
    fresh.deferred.retain(|(u, _)| users.contains(&u.key()));
    fresh.held.clear();
    fresh.approved = saved.approved;
}

/// The compared form of a value of `attr`: the row's normalization (a lifecycle status and
/// an attribute no row maps compare trimmed).
pub fn compared(policy: &Policy, attr: &str, value: Option<&str>) -> Option<String> {
    let kind = match attr {
        STATUS_ATTR => Normalize::None,
        _ => policy
            .rule(attr)
            .map(|r| r.normalize)
            .unwrap_or(Normalize::None),
    };
    normalize(kind, value).key().map(str::to_string)
}

fn change_verdict(
    s: &PlannedAction,
    c: &AttrChange,
    f: Option<&PlannedAction>,
    fresh: &Plan,
    policy: &Policy,
    current: &Current<'_>,
) -> Verdict {
    let eq = |a: Option<&str>, b: Option<&str>| {
        compared(policy, &c.attr, a) == compared(policy, &c.attr, b)
    };
    if let Some(fc) = f.and_then(|f| f.changes().iter().find(|fc| fc.attr == c.attr)) {
        return match (
            eq(fc.old.as_deref(), c.old.as_deref()),
            eq(fc.new.as_deref(), c.new.as_deref()),
        ) {
            (true, true) => Verdict::Apply,
            (false, _) => stale(fc.old.clone(), "the target's value moved since the plan"),
            (true, false) => Verdict::Stale {
                found: fc.old.clone(),
                why: format!(
                    "the master's value moved since the plan: a pass would now write {}",
                    shown(fc.new.as_deref())
                ),
            },
        };
    }
    let Some(now) = current(&s.user, s.system, &c.attr) else {
        return stale(None, "the user is not in the fresh read");
    };
    if eq(now.as_deref(), c.new.as_deref()) {
        return Verdict::Already;
    }
    if !eq(now.as_deref(), c.old.as_deref()) {
        return stale(now, "the target's value moved since the plan");
    }
    let why = fresh
        .deferred
        .iter()
        .find(|(u, _)| u.key() == s.user.key())
        .map(|(_, why)| format!("no longer planned: {why}"))
        .or_else(|| {
            fresh
                .problems
                .iter()
                .find(|p| p.user.key() == s.user.key() && p.attr.as_deref() == Some(&c.attr))
                .map(|p| format!("no longer planned: {}", p.message))
        })
        .unwrap_or_else(|| "no longer planned: the master's value moved".to_string());
    Verdict::Stale { found: now, why }
}

fn whole_verdict(
    s: &PlannedAction,
    f: Option<&PlannedAction>,
    policy: &Policy,
    current: &Current<'_>,
) -> Verdict {
    let Some(f) = f else {
        let probe = s.changes().first().map(|c| c.attr.as_str()).unwrap_or("");
        return match current(&s.user, s.system, probe) {
            Some(_) => stale(None, "already created: the user exists now"),
            None => stale(None, "no longer planned"),
        };
    };
    let moved: Vec<&str> = s
        .changes()
        .iter()
        .filter(|c| {
            f.changes()
                .iter()
                .find(|fc| fc.attr == c.attr)
                .is_none_or(|fc| {
                    compared(policy, &c.attr, fc.new.as_deref())
                        != compared(policy, &c.attr, c.new.as_deref())
                })
        })
        .map(|c| c.attr.as_str())
        .collect();
    match moved.is_empty() && f.changes().len() == s.changes().len() {
        true => Verdict::Apply,
        false => stale(
            None,
            &format!(
                "what would be created changed since the plan ({})",
                match moved.is_empty() {
                    true => "other attributes".to_string(),
                    false => moved.join(", "),
                }
            ),
        ),
    }
}

fn stale(found: Option<String>, why: &str) -> Verdict {
    Verdict::Stale {
        found,
        why: why.to_string(),
    }
}

fn shown(v: Option<&str>) -> String {
    v.map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "(empty)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtId, OktaId};
    use crate::reconcile::Rule;

    fn user(n: &str) -> UserRef {
        UserRef {
            email: format!("{n}@x.ca"),
            okta_id: Some(OktaId(format!("00u{n}"))),
            ext_id: Some(ExtId(format!("6{n}"))),
        }
    }

    fn update(n: &str, attr: &str, old: &str, new: &str) -> PlannedAction {
        PlannedAction {
            user: user(n),
            system: System::Telus,
            action: Action::Update {
                changes: vec![AttrChange {
                    attr: attr.into(),
                    field: format!("contact.{attr}"),
                    old: Some(old.into()),
                    new: Some(new.into()),
                    rule: Rule::Master,
                }],
            },
        }
    }

    /// Each case: the saved change, what the fresh plan would do for it (if anything), the
    /// value the target holds now, and the verdict.
    #[test]
    fn each_reviewed_change_is_applied_already_there_or_stale() {
        let policy = Policy::builtin();
        let saved_change = update("a", "department", "Sales", "Legal");
        let cases: [(Option<PlannedAction>, Option<&str>, &str); 6] = [
            (
                Some(update("a", "department", "Sales", "Legal")),
                Some("Sales"),
                "apply",
            ),
            // Normalized comparison: whitespace around the same value.
            (
                Some(update("a", "department", " Sales ", "Legal")),
                Some(" Sales "),
                "apply",
            ),
            (None, Some("Legal"), "already"),
            (
                Some(update("a", "department", "Audit", "Legal")),
                Some("Audit"),
                "stale",
            ),
            (
                Some(update("a", "department", "Sales", "Finance")),
                Some("Sales"),
                "stale",
            ),
            (None, Some("Audit"), "stale"),
        ];
        for (fresh_action, now, want) in cases {
            let saved = SavedPlan {
                id: "p".into(),
                actions: vec![saved_change.clone()],
                ..SavedPlan::default()
            };
            let mut fresh = Plan {
                actions: fresh_action
                    .clone()
                    .into_iter()
                    .chain([update("b", "department", "X", "Y")])
                    .collect(),
                ..Plan::default()
            };
            let now = now.map(str::to_string);
            let current = move |_: &UserRef, _: System, _: &str| Some(now.clone());
            let r = select(&saved, &mut fresh, &policy, &current);
            let got = match &r[0].verdict {
                Verdict::Apply => "apply",
                Verdict::Already => "already",
                Verdict::Stale { .. } => "stale",
            };
            assert_eq!(got, want, "{fresh_action:?}");
            assert!(
                fresh.actions.iter().all(|a| a.user == user("a")),
                "the unreviewed change of b is dropped"
            );
            assert_eq!(fresh.actions.len(), usize::from(want == "apply"));
        }
    }

    #[test]
    fn a_create_already_done_is_stale_never_a_second_user() {
        let policy = Policy::builtin();
        let mut create = update("c", "department", "", "Legal");
        create.user.ext_id = None;
        if let Action::Update { changes } = create.action.clone() {
            create.action = Action::Create {
                changes,
                then_sync: true,
            };
        }
        let saved = SavedPlan {
            id: "p".into(),
            actions: vec![create.clone()],
            ..SavedPlan::default()
        };
        // The fresh plan still creates it: applied whole.
        let mut fresh = Plan {
            actions: vec![create.clone()],
            ..Plan::default()
        };
        let none = |_: &UserRef, _: System, _: &str| None;
        assert_eq!(
            select(&saved, &mut fresh, &policy, &none)[0].verdict,
            Verdict::Apply
        );
        assert_eq!(fresh.actions.len(), 1);
        // Created meanwhile: the TELUS user exists, the fresh plan has no create.
        let mut fresh = Plan::default();
        let exists = |_: &UserRef, _: System, _: &str| Some(Some("Legal".to_string()));
        let r = select(&saved, &mut fresh, &policy, &exists);
        assert!(
            matches!(&r[0].verdict, Verdict::Stale { why, .. } if why.contains("already created"))
        );
        assert!(fresh.actions.is_empty());
    }
}
