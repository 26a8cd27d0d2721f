//! What a pass did, as the daemon, the CLI and the reports read it: how it ended (and so
//! `sync`'s exit code), what it read, planned and applied. Plain data, shared by the pass
//! that makes it and the code that prints or counts it.

use crate::apply::ApplyReport;
use crate::model::{PassKind, PassOutcome};
use crate::reconcile::Plan;

#[derive(Debug)]
pub struct PassReport {
    pub pass_id: Option<i64>,
    pub kind: PassKind,
    pub dry_run: bool,
    pub okta_read: usize,
    pub telus_read: usize,
    pub plan: Plan,
    pub apply: ApplyReport,
    /// The whole-system failure that ended the pass, if any.
    pub system_error: Option<String>,
    /// Interrupted changes from an earlier run settled at the start: (landed, not landed).
    pub settled: (usize, usize),
    pub outcome: PassOutcome,
    /// Why the pass did not run (`Busy`): the lock's holder.
    pub busy: Option<String>,
    /// A saved plan's pass (`sync --plan`): what became of each reviewed change.
    pub reviewed: Vec<crate::reconcile::saved::Reviewed>,
}

impl PassReport {
    /// A pass that did not run because another holds the store.
    pub(crate) fn busy(message: String) -> PassReport {
        PassReport {
            outcome: PassOutcome::Busy,
            busy: Some(message),
            ..PassReport::empty(None, false)
        }
    }

    /// A pass a whole-system failure ended before it planned anything.
    pub(crate) fn system_failed(
        pass_id: Option<i64>,
        dry_run: bool,
        message: String,
    ) -> PassReport {
        PassReport {
            system_error: Some(message),
            outcome: PassOutcome::SystemFailed,
            ..PassReport::empty(pass_id, dry_run)
        }
    }

    fn empty(pass_id: Option<i64>, dry_run: bool) -> PassReport {
        PassReport {
            pass_id,
            kind: PassKind::Full,
            dry_run,
            okta_read: 0,
            telus_read: 0,
            plan: Plan::default(),
            apply: ApplyReport::default(),
            system_error: None,
            settled: (0, 0),
            outcome: PassOutcome::Clean,
            busy: None,
            reviewed: Vec::new(),
        }
    }

    /// Users that failed: a problem found while planning, a rejected write, or deferred
    /// (backing off, quarantined).
    pub fn failed_users(&self) -> usize {
        self.plan.failed_users() + self.apply.failed_users.len() + self.plan.deferred.len()
    }
}
