//! Safety holds, decided before any write: too many deactivations or creations, too many
//! linked TELUS users gone from the listing, too large a share of linked users changed, or an
//! empty directory where the store knew users. Pure.

use super::plan::{Action, Plan};
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

/// Why a plan is held: nothing is written until `sync --approve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Okta answered no users where the store knew some.
    EmptyOkta { known: usize },
    /// TELUS answered no users where the store knew some.
    EmptyTelus { known: usize },
    /// More creations than `safety.max_creates`.
    Creates { count: usize, max: u32 },
    /// More linked TELUS users gone from the listing than `safety.max_vanished`.
    Vanished { count: usize, max: u32 },
    /// More deactivations than `safety.max_deactivations`.
    Deactivations { count: usize, max: u32 },
    /// A larger share of linked users changed than `safety.max_changed_percent`.
    ChangedShare {
        changed: usize,
        linked: usize,
        max_percent: u32,
    },
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::EmptyOkta { known } => write!(
                f,
                "Okta returned no users where the store knew {known}: check the token's scope and okta.scope"
            ),
            Hold::EmptyTelus { known } => write!(
                f,
                "TELUS returned no users where the store knew {known}: check the account and the app's permissions"
            ),
            Hold::Creates { count, max } => write!(
                f,
                "{count} new TELUS users exceed safety.max_creates = {max}"
            ),
            Hold::Vanished { count, max } => write!(
                f,
                "{count} linked TELUS users are gone from the listing, over safety.max_vanished = {max}: check the account and the app's permissions before creating them again"
            ),
            Hold::Deactivations { count, max } => write!(
                f,
                "{count} deactivations exceed safety.max_deactivations = {max}"
            ),
            Hold::ChangedShare {
                changed,
                linked,
                max_percent,
            } => write!(
                f,
                "{changed} of {linked} linked users ({}%) would change, over safety.max_changed_percent = {max_percent}",
                changed * 100 / (*linked).max(1)
            ),
        }
    }
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
