//! A targeted pass: the users change events named are read again (O(1) requests each),
//! planned with the same pure plan, and applied under the same lock, journal, holds and
//! pacing as any pass. It owns deciding when a pass of the whole directory must go instead.

use super::pass::{
    Clients, Fetched, Pass, PassOptions, okta_writes, register_mapped_names, summary_of,
    take_store, unfinished,
};
use crate::config::{Config, OktaScope};
use crate::model::{ExtId, Link, OktaId, PassKind, TelusUser};
use crate::reconcile::{HoldContext, Plan};
use crate::store::Store;
use crate::summary::PassReport;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tracing::Instrument as _;

/// Above this many users, one pass of the whole directory costs less than reading each
/// (two Light requests a user against a directory read of Medium pages), and a burst of
/// events (a bulk write of someone else's) becomes one pass instead of thousands of reads.
pub const MAX_TARGETED_USERS: usize = 20;

/// Users read side by side in a targeted pass.
const READ_CONCURRENCY: usize = 4;

/// What change events named, with the kind of event each user last had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    /// Okta users and their event type (`user.lifecycle.activate`, ...).
    pub okta: BTreeMap<OktaId, String>,
    /// TELUS extensions and their event type (`Create`, `Update`, `Delete`).
    pub telus: BTreeMap<ExtId, String>,
}

impl Named {
    pub fn is_empty(&self) -> bool {
        self.okta.is_empty() && self.telus.is_empty()
    }

    pub fn len(&self) -> usize {
        self.okta.len() + self.telus.len()
    }
}

/// How a targeted pass ended.
#[derive(Debug)]
pub enum Targeted {
    /// It ran (or found the store busy: `PassOutcome::Busy`).
    Ran(Box<PassReport>),
    /// The events need a pass that reads a whole directory; why.
    Escalate(String),
    /// Nothing the events named needs a pass (users this tool does not sync).
    Nothing,
}

/// The linked pairs the events name, or why a whole pass is needed instead. Pure.
pub fn resolve(
    named: &Named,
    links: &[Link],
    scope: &OktaScope,
) -> Result<Vec<(OktaId, ExtId)>, String> {
    let by_okta: HashMap<&OktaId, &ExtId> = links.iter().map(|l| (&l.okta_id, &l.ext_id)).collect();
    let by_ext: HashMap<&ExtId, &OktaId> = links.iter().map(|l| (&l.ext_id, &l.okta_id)).collect();
    let mut pairs = BTreeSet::new();
    for (id, event) in &named.okta {
        let membership = event.contains("user_membership");
        match by_okta.get(id) {
            // Membership decides who is in scope: with a group or app scope, a pass that
            // reads the scope whole finds who joined or left.
            Some(_) if membership && *scope != OktaScope::All => {
                return Err(format!(
                    "{event} for Okta user {id} may change who is in scope"
                ));
            }
            Some(ext) => {
                pairs.insert((id.clone(), (*ext).clone()));
            }
            // A new or returning user is matched (or created) by a pass that reads TELUS
            // whole; a profile edit of a user this tool does not link changes nothing here.
            None if event.starts_with("user.lifecycle") || membership => {
                return Err(format!("{event} for Okta user {id}, not linked yet"));
            }
            None => {}
        }
    }
    for (ext, event) in &named.telus {
        match by_ext.get(ext) {
            Some(_) if event == "Delete" => {
                return Err(format!("TELUS extension {ext} was deleted"));
            }
            // Extension ids are never reused: a linked extension was created by this tool's
            // own create, whose answer already told it everything.
            Some(_) if event == "Create" => {}
            Some(okta) => {
                pairs.insert(((*okta).clone(), ext.clone()));
            }
            None if event == "Create" => {
                return Err(format!("TELUS extension {ext} was created"));
            }
            None => {}
        }
    }
    if pairs.len() > MAX_TARGETED_USERS {
        return Err(format!(
            "{} users changed at once (more than {MAX_TARGETED_USERS}): one pass reads them all for less",
            pairs.len()
        ));
    }
    Ok(pairs.into_iter().collect())
}

/// Runs a targeted pass for what `named` names: take the store, read the named linked users
/// on both sides, plan them, apply, record. Escalates when a whole pass is needed.
pub async fn run_targeted_pass(
    config: &Config,
    clients: &Clients,
    store: &Store,
    opts: PassOptions<'_>,
    named: &Named,
) -> anyhow::Result<Targeted> {
    register_mapped_names(config)?;
    let _lock = match take_store(store, &opts).await? {
        Ok(lock) => lock,
        Err(busy) => return Ok(Targeted::Ran(Box::new(PassReport::busy(busy)))),
    };
    let pairs = match resolve(named, &store.links()?, &config.okta.scope) {
        Ok(p) if p.is_empty() => return Ok(Targeted::Nothing),
        Ok(p) => p,
        Err(reason) => return Ok(Targeted::Escalate(reason)),
    };
    // Unconfirmed changes of these users (an answer lost) are settled against the read
    // below; a bulk task or a create is left to a whole pass, which polls tasks and finds
    // created users by reference.
    let rows = unconfirmed_of(store, &pairs)?;
    let tasks: BTreeSet<i64> = store.unfinished_tasks()?.into_iter().map(|t| t.0).collect();
    if let Some(r) = rows
        .iter()
        .find(|r| r.rule == "create" || tasks.contains(&r.id))
    {
        return Ok(Targeted::Escalate(format!(
            "a change to {} sent earlier is not confirmed yet",
            r.user_email
        )));
    }
    clients.restore_pacing(store);
    let fetched = match read_pairs(config, clients, &pairs).await {
        Ok(f) => f,
        Err(reason) => return Ok(Targeted::Escalate(reason)),
    };
    let pass_id = store.begin_pass(PassKind::Targeted)?;
    let pass = Pass {
        config,
        clients,
        store,
        opts,
        pass_id: Some(pass_id),
        targeted: true,
    };
    let span = tracing::info_span!("sync_pass", pass_id, kind = "targeted", users = pairs.len());
    let mut report = async {
        let settled = settle_rows(&pass, &fetched, rows)?;
        let plan = plan_pairs(&pass, &fetched, &pairs)?;
        pass.apply_and_record(fetched, plan, settled).await
    }
    .instrument(span)
    .await?;
    report.kind = PassKind::Targeted;
    clients.save_pacing(store);
    store.finish_pass(pass_id, &summary_of(&report))?;
    Ok(Targeted::Ran(Box::new(report)))
}

/// Changes journalled `planned` for the users of `pairs`.
fn unconfirmed_of(
    store: &Store,
    pairs: &[(OktaId, ExtId)],
) -> anyhow::Result<Vec<crate::store::JournalRow>> {
    let okta: BTreeSet<&str> = pairs.iter().map(|(o, _)| o.0.as_str()).collect();
    let ext: BTreeSet<&str> = pairs.iter().map(|(_, e)| e.0.as_str()).collect();
    Ok(store
        .unfinished()?
        .into_iter()
        .filter(|r| {
            r.okta_id.as_deref().is_some_and(|o| okta.contains(o))
                || r.ext_id.as_deref().is_some_and(|e| ext.contains(e))
        })
        .collect())
}

/// Settles the named users' unconfirmed changes against what was just read (landed, or
/// not, and then planned again). Returns (landed, not landed).
fn settle_rows(
    pass: &Pass<'_>,
    fetched: &Fetched,
    rows: Vec<crate::store::JournalRow>,
) -> anyhow::Result<(usize, usize)> {
    if rows.is_empty() {
        return Ok((0, 0));
    }
    let rows: Vec<crate::reconcile::Unfinished> = rows.into_iter().map(unfinished).collect();
    let settlements =
        crate::reconcile::settle(&rows, &fetched.okta, &fetched.telus, &pass.config.policy);
    let landed = settlements.iter().filter(|s| s.landed).count();
    pass.store.settle(&settlements)?;
    tracing::info!(
        landed,
        not_landed = settlements.len() - landed,
        "unconfirmed changes settled by a targeted read"
    );
    Ok((landed, settlements.len() - landed))
}

/// Reads each pair's Okta user and TELUS user as they are now, a few at a time. `Err` names
/// why a whole pass must go instead (a user gone, a read that failed).
async fn read_pairs(
    config: &Config,
    clients: &Clients,
    pairs: &[(OktaId, ExtId)],
) -> Result<Fetched, String> {
    let reads = futures_util::stream::iter(pairs.iter().map(|(okta_id, ext)| async move {
        let (o, t) = tokio::join!(
            clients.okta.get_user(okta_id),
            clients.telus.fetch_user(ext)
        );
        match (o, t) {
            (Ok(Some(o)), Ok(Some(t))) => Ok((o, t)),
            (Ok(None), _) => Err(format!("Okta user {okta_id} is gone")),
            (_, Ok(None)) => Err(format!("TELUS extension {ext} is gone")),
            (Err(e), _) => Err(format!("reading Okta user {okta_id}: {e}")),
            (_, Err(e)) => Err(format!("reading TELUS extension {ext}: {e}")),
        }
    }))
    .buffer_unordered(READ_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let mut okta = Vec::with_capacity(reads.len());
    let mut telus: Vec<TelusUser> = Vec::with_capacity(reads.len());
    for r in reads {
        let (o, t) = r?;
        okta.push(o);
        telus.push(t);
    }
    okta.sort_by(|a, b| a.id.cmp(&b.id));
    telus.sort_by(|a, b| a.id.cmp(&b.id));
    let okta_writes = okta_writes(config, clients).await;
    Ok(Fetched {
        okta,
        telus,
        okta_writes,
    })
}

/// The pure plan over the named pairs only. The whole-directory holds do not apply to a
/// handful of users read one by one (an empty read, vanished users, the changed share);
/// the limits on deactivations and creations do.
fn plan_pairs(
    pass: &Pass<'_>,
    fetched: &Fetched,
    pairs: &[(OktaId, ExtId)],
) -> anyhow::Result<Plan> {
    let links: Vec<Link> = pairs
        .iter()
        .map(|(o, e)| Link {
            okta_id: o.clone(),
            ext_id: e.clone(),
        })
        .collect();
    let n = pairs.len();
    pass.decide(fetched, &links, &[], |_| HoldContext {
        known_okta: n,
        known_telus: n,
        okta_read: n,
        telus_read: n,
        has_baseline: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(o: &str, e: &str) -> Link {
        Link {
            okta_id: OktaId(o.into()),
            ext_id: ExtId(e.into()),
        }
    }

    fn named(okta: &[(&str, &str)], telus: &[(&str, &str)]) -> Named {
        Named {
            okta: okta
                .iter()
                .map(|(i, e)| (OktaId(i.to_string()), e.to_string()))
                .collect(),
            telus: telus
                .iter()
                .map(|(i, e)| (ExtId(i.to_string()), e.to_string()))
                .collect(),
        }
    }

    #[test]
    fn linked_users_named_on_either_side_become_one_pair_each() {
        let links = [link("00u1", "61"), link("00u2", "62")];
        let n = named(
            &[("00u1", "user.account.update_profile")],
            &[("61", "Update"), ("62", "Update")],
        );
        let pairs = resolve(&n, &links, &OktaScope::All).unwrap();
        assert_eq!(pairs.len(), 2, "00u1/61 named twice is read once");
    }

    #[test]
    fn what_only_a_whole_pass_can_decide_escalates() {
        let links = [link("00u1", "61")];
        let all = OktaScope::All;
        // A new Okta user, a created or deleted extension.
        assert!(
            resolve(
                &named(&[("00u9", "user.lifecycle.activate")], &[]),
                &links,
                &all
            )
            .is_err()
        );
        assert!(resolve(&named(&[], &[("70", "Create")]), &links, &all).is_err());
        assert!(resolve(&named(&[], &[("61", "Delete")]), &links, &all).is_err());
        // Membership of a linked user matters only when a group or app is the scope.
        let m = named(&[("00u1", "group.user_membership.remove")], &[]);
        assert!(resolve(&m, &links, &all).is_ok());
        assert!(resolve(&m, &links, &OktaScope::Group("00g1".into())).is_err());
        // A burst.
        let many: Vec<Link> = (0..30)
            .map(|i| link(&format!("00u{i}"), &format!("{i}")))
            .collect();
        let burst = Named {
            okta: BTreeMap::new(),
            telus: (0..30)
                .map(|i| (ExtId(i.to_string()), "Update".to_string()))
                .collect(),
        };
        assert!(
            resolve(&burst, &many, &all)
                .unwrap_err()
                .contains("30 users")
        );
    }

    #[test]
    fn the_creation_of_an_extension_this_tool_linked_is_its_own_echo() {
        let links = [link("00u1", "61")];
        let n = named(&[], &[("61", "Create")]);
        assert_eq!(resolve(&n, &links, &OktaScope::All), Ok(Vec::new()));
    }

    #[test]
    fn users_this_tool_does_not_link_are_left_to_scheduled_passes() {
        let links = [link("00u1", "61")];
        let n = named(
            &[("00u9", "user.account.update_profile")],
            &[("70", "Update")],
        );
        assert_eq!(resolve(&n, &links, &OktaScope::All), Ok(Vec::new()));
    }
}
