//! `explain`'s read: one linked pair read by id on both sides and planned as a dry run
//! (the one `decide::plan`), with no lock taken and nothing recorded.

use super::context::{Fetched, Pass, PassOptions, Target};
use super::fetch::{self, Fetch};
use crate::clients::Clients;
use crate::config::Config;
use crate::model::{ExtId, OktaId, OktaUser, TelusUser};
use crate::reconcile::Plan;
use crate::store::Store;
use std::collections::BTreeMap;

/// One pair as read now, and what a pass would do for it.
pub struct PairRead {
    pub okta: Option<OktaUser>,
    pub telus: Option<TelusUser>,
    /// Attribute → its master label in Okta's schema.
    pub okta_masters: BTreeMap<String, String>,
    /// Written attributes Okta refuses for every user → why.
    pub okta_refused: BTreeMap<String, String>,
    pub plan: Plan,
}

/// Reads the pair `(okta, ext)` and plans it, as `plan --user` would, without a lock or a
/// write; `Err` when a whole system failed (its message).
pub async fn read_pair(
    config: &Config,
    clients: &Clients,
    store: &Store,
    pair: (OktaId, ExtId),
) -> anyhow::Result<Result<PairRead, String>> {
    super::context::register_mapped_names(config)?;
    let target = Target::Pairs(vec![pair]);
    let pass = Pass {
        config,
        clients,
        store,
        opts: PassOptions {
            dry_run: true,
            ..PassOptions::default()
        },
        target: &target,
        pass_id: None,
        saved: None,
    };
    let fetched: Fetched = match fetch::read(&pass).await? {
        Fetch::Read(f) => f,
        Fetch::Failed(message) | Fetch::Escalate(message) => return Ok(Err(message)),
    };
    let plan = pass.plan(&fetched, &[])?;
    Ok(Ok(PairRead {
        okta: fetched.okta.first().cloned(),
        telus: fetched.telus.first().cloned(),
        okta_masters: fetched.okta_writes.masters.clone(),
        okta_refused: fetched.okta_writes.refused.clone(),
        plan,
    }))
}
