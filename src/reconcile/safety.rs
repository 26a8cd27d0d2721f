//! Safety holds, decided before any write: too many deactivations or creations, too many
//! linked TELUS users gone from the listing, too large a share of linked users changed, or an
//! empty directory where the store knew users. Pure.

use super::plan::{Action, Hold, Plan};
use super::policy::Safety;
use std::collections::HashSet;

/// What the planner cannot see in the plan itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct HoldContext {
    /// Users in the previous stored snapshot of each side.
    pub known_okta: usize,
    pub known_telus: usize,
    /// Users read this pass.
    pub okta_read: usize,
    pub telus_read: usize,
    /// Whether any baseline exists yet (the change share applies only after the first pass).
    pub has_baseline: bool,
}

/// The reasons to hold this plan; empty when it may proceed.
pub fn hold_reasons(plan: &Plan, safety: &Safety, ctx: &HoldContext) -> Vec<Hold> {
    let mut reasons = Vec::new();
    if ctx.okta_read == 0 && ctx.known_okta > 0 {
        reasons.push(Hold::EmptyOkta {
            known: ctx.known_okta,
        });
    }
    if ctx.telus_read == 0 && ctx.known_telus > 0 {
        reasons.push(Hold::EmptyTelus {
            known: ctx.known_telus,
        });
    }
    let creates = plan.count("create");
    if creates > safety.max_creates as usize {
        reasons.push(Hold::Creates {
            count: creates,
            max: safety.max_creates,
        });
    }
    if plan.vanished > safety.max_vanished as usize {
        reasons.push(Hold::Vanished {
            count: plan.vanished,
            max: safety.max_vanished,
        });
    }
    let deactivations = plan.count("deactivate");
    if deactivations > safety.max_deactivations as usize {
        reasons.push(Hold::Deactivations {
            count: deactivations,
            max: safety.max_deactivations,
        });
    }
    if ctx.has_baseline && plan.linked > 0 {
        let changed: HashSet<_> = plan
            .actions
            .iter()
            .filter(|a| !matches!(a.action, Action::Create { .. }))
            .map(|a| &a.user)
            .collect();
        if changed.len() * 100 > safety.max_changed_percent as usize * plan.linked {
            reasons.push(Hold::ChangedShare {
                changed: changed.len(),
                linked: plan.linked,
                max_percent: safety.max_changed_percent,
            });
        }
    }
    reasons
}
