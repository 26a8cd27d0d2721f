//! What the CLI prints: plans (text and JSON) and pass summaries. Pure formatting; values
//! appear here because the admin asked to see them, never in logs above DEBUG.

use crate::daemon::pass::PassReport;
use crate::model::System;
use crate::reconcile::{Action, Plan, ProblemKind};
use serde_json::{Value, json};
use std::fmt::Write as _;

fn show(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(empty)".to_string(),
    }
}

fn target(system: System) -> &'static str {
    match system {
        System::Okta => "Okta",
        System::Telus => "TELUS",
    }
}

/// The plan as an admin reads it: per user, each attribute old → new and the rule that
/// decided it; then the users that could not be synced, then notes.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.held.is_empty() {
        let _ = writeln!(
            out,
            "HELD by a safety limit: nothing will be written. Review, then run `sync --approve` to proceed once:"
        );
        for r in &plan.held {
            let _ = writeln!(out, "  - {r}");
        }
        let _ = writeln!(out);
    }
    let to_telus = plan
        .actions
        .iter()
        .filter(|a| a.system == System::Telus)
        .count();
    let to_okta = plan.actions.len() - to_telus;
    let _ = writeln!(
        out,
        "Plan: {} change(s) for {} linked user(s): {} to TELUS, {} to Okta ({} create, {} deactivate, {} reactivate), {} new link(s), {} user(s) not synced",
        plan.change_count(),
        plan.linked,
        to_telus,
        to_okta,
        plan.count("create"),
        plan.count("deactivate"),
        plan.count("reactivate"),
        plan.new_links.len(),
        plan.failed_users()
    );
    if plan.actions.is_empty() {
        let _ = writeln!(out, "\nNothing to change.");
    }
    for a in &plan.actions {
        let what = match &a.action {
            Action::Deactivate { reason, .. } => {
                format!("deactivate in {} ({reason})", target(a.system))
            }
            other => format!("{} {}", other.as_str(), target(a.system)),
        };
        let _ = writeln!(out, "\n{} → {what}", a.user.email);
        for c in a.changes() {
            let _ = writeln!(
                out,
                "    {:<14} {} → {}   [{}]",
                c.attr,
                show(&c.old),
                show(&c.new),
                c.rule.as_str()
            );
        }
    }
    let failing: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| p.kind.fails_user())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\nNot synced:");
        for p in failing {
            let attr = p
                .attr
                .as_deref()
                .map(|a| format!(" {a}:"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} [{}]{} {}",
                p.user.email,
                p.kind.as_str(),
                attr,
                p.message
            );
        }
    }
    let notes: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| !p.kind.fails_user())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for p in notes {
            let who = if p.user.email.is_empty() {
                p.user
                    .ext_id
                    .as_ref()
                    .map(|e| format!("extension {e}"))
                    .unwrap_or_default()
            } else {
                p.user.email.clone()
            };
            let _ = writeln!(out, "  {} [{}] {}", who, p.kind.as_str(), p.message);
        }
    }
    out
}

/// The plan as one JSON document.
pub fn plan_json(plan: &Plan) -> Value {
    json!({
        "held": plan.held,
        "linked": plan.linked,
        "changes": plan.change_count(),
        "failed_users": plan.failed_users(),
        "actions": plan.actions.iter().map(|a| json!({
            "user": a.user.email,
            "okta_id": a.user.okta_id.as_ref().map(|i| i.0.clone()),
            "extension_id": a.user.ext_id.as_ref().map(|i| i.0.clone()),
            "system": a.system.as_str(),
            "action": a.action.as_str(),
            "changes": a.changes().iter().map(|c| json!({
                "attribute": c.attr,
                "field": c.field,
                "old": c.old,
                "new": c.new,
                "rule": c.rule.as_str(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "new_links": plan.new_links.iter().map(|l| json!({
            "okta_id": l.okta_id.0, "extension_id": l.ext_id.0,
        })).collect::<Vec<_>>(),
        "problems": plan.problems.iter().map(|p| json!({
            "user": p.user.email,
            "okta_id": p.user.okta_id.as_ref().map(|i| i.0.clone()),
            "extension_id": p.user.ext_id.as_ref().map(|i| i.0.clone()),
            "kind": p.kind.as_str(),
            "fails_user": p.kind.fails_user(),
            "attribute": p.attr,
            "message": p.message,
        })).collect::<Vec<_>>(),
    })
}

/// A few lines on how a pass went.
pub fn pass_text(r: &PassReport) -> String {
    let mut out = String::new();
    if let Some(err) = &r.system_error {
        let _ = writeln!(out, "Pass ended: a whole system failed: {err}");
    }
    if r.outcome == crate::daemon::pass::PassOutcome::Held {
        let _ = writeln!(
            out,
            "Pass held by a safety limit: nothing was written (run `sync --approve` to proceed once)."
        );
    }
    let unmatched_telus = r
        .plan
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::UnmatchedTelus)
        .count();
    let _ = writeln!(
        out,
        "{}: read {} Okta and {} TELUS users; {} change(s) planned, {} applied, {} failed; {} user(s) failed; {} TELUS user(s) unmatched.",
        if r.dry_run { "Dry run" } else { "Pass" },
        r.okta_read,
        r.telus_read,
        r.plan.change_count(),
        r.apply.applied,
        r.apply.failed,
        r.failed_users(),
        unmatched_telus
    );
    out
}
