//! One pass's fixed parts, shared by its phases: the options it runs with, what it covers
//! once resolved, and both directories as it read them.

use crate::clients::Clients;
use crate::config::Config;
use crate::model::{ExtId, OktaId, OktaUser, PassKind, TelusUser};
use crate::reconcile::decide::OktaWrites;
use crate::store::Store;

#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions<'a> {
    /// Compute the plan, write nothing to either API or to the store.
    pub dry_run: bool,
    /// Lift a safety hold for this pass.
    pub approve: bool,
    /// Release quarantined users before the pass.
    pub retry_quarantined: bool,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress_bar: bool,
    /// Set by a shutdown: the change in flight finishes, no further change starts.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// How long a pass that writes waits for another process's pass to finish before it
    /// gives up (`Busy`): `sync` waits a while; the daemon waits for its turn in its own
    /// queue. Dry runs take no lock.
    pub lock_wait: std::time::Duration,
}

/// A pass's scope as resolved against the store: what it reads.
#[derive(Debug)]
pub enum Target {
    /// Both directories; Okta only since `since` (an incremental read) when set.
    Whole { since: Option<String> },
    /// These linked pairs, each read by id.
    Pairs(Vec<(OktaId, ExtId)>),
    /// `import confirm`: these TELUS users from the import queue, each read by id.
    Imports {
        exts: Vec<ExtId>,
        request: super::scope::ImportRequest,
    },
}

impl Target {
    pub fn kind(&self) -> PassKind {
        match self {
            Target::Whole { since: Some(_) } => PassKind::Incremental,
            Target::Whole { since: None } => PassKind::Full,
            Target::Pairs(_) | Target::Imports { .. } => PassKind::Targeted,
        }
    }

    pub fn is_whole(&self) -> bool {
        matches!(self, Target::Whole { .. })
    }
}

/// Both directories as this pass read them, and what Okta's schema says about writes.
pub struct Fetched {
    pub okta: Vec<OktaUser>,
    pub telus: Vec<TelusUser>,
    pub okta_writes: OktaWrites,
}

/// One pass's fixed parts.
pub struct Pass<'a> {
    pub config: &'a Config,
    pub clients: &'a Clients,
    pub store: &'a Store,
    pub opts: PassOptions<'a>,
    pub target: &'a Target,
    /// `None` for a dry run (nothing recorded).
    pub pass_id: Option<i64>,
    /// `sync --plan`: the reviewed plan this pass applies, and nothing else.
    pub saved: Option<&'a crate::reconcile::saved::SavedPlan>,
}

/// The mapped names first, so that no flood of other names from a server can crowd them out.
pub fn register_mapped_names(config: &Config) -> anyhow::Result<()> {
    let unmapped = crate::model::register_mapped_names(config.policy.field_names());
    if !unmapped.is_empty() {
        anyhow::bail!(
            "the field-name table cannot hold the mapped names {}",
            unmapped.join(", ")
        );
    }
    Ok(())
}
