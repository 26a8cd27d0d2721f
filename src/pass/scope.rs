//! What a pass covers: the whole directory (incremental or full), or the users change events
//! named. It owns deciding, purely, which linked pairs a targeted pass reads, and when a pass
//! of the whole directory must go instead.

use crate::config::OktaScope;
use crate::model::{ExtId, Link, OktaId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What one pass covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Both directories: Okta read whole when `full` (or when no incremental read will do),
    /// else only the users changed since the last good pass.
    Whole { full: bool },
    /// Only the linked users change events named, each read by id.
    Named(Named),
    /// `import confirm`: the TELUS users of the import queue it confirms.
    Imports(ImportRequest),
    /// `sync --plan FILE`: the users a reviewed plan touches; only its changes are applied.
    Saved(Box<crate::reconcile::saved::SavedPlan>),
}

/// What `import confirm` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRequest {
    /// Emails named one by one (normalized).
    pub named: Vec<String>,
    /// Every candidate proposed `new`.
    pub all_new: bool,
    pub activate: bool,
}

/// Above this many users, one pass of the whole directory costs less than reading each
/// (two Light requests a user against a directory read of Medium pages), and a burst of
/// events (a bulk write of someone else's) becomes one pass instead of thousands of reads.
pub const MAX_TARGETED_USERS: usize = 20;

/// What change events named, with the kind of event each user last had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named {
    /// Okta users and their event type (`user.lifecycle.activate`, ...).
    pub okta: BTreeMap<OktaId, String>,
    /// TELUS extensions and their event type (`Create`, `Update`, `Delete`).
    pub telus: BTreeMap<ExtId, String>,
}

impl Named {
    /// Whether a journal row of `okta_id` / `ext_id` is about one of these users.
    pub fn names_row(&self, okta_id: Option<&str>, ext_id: Option<&str>) -> bool {
        okta_id.is_some_and(|o| self.okta.keys().any(|k| k.0 == o))
            || ext_id.is_some_and(|e| self.telus.keys().any(|k| k.0 == e))
    }

    pub fn is_empty(&self) -> bool {
        self.okta.is_empty() && self.telus.is_empty()
    }

    pub fn len(&self) -> usize {
        self.okta.len() + self.telus.len()
    }
}

/// What a targeted pass reads: the linked pairs the events name, and the Okta users not
/// linked yet whose lifecycle changed (read first: only one that can be created, or
/// matched, needs a whole pass).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub pairs: Vec<(OktaId, ExtId)>,
    pub unlinked: Vec<(OktaId, String)>,
}

/// The linked pairs the events name and the unlinked users to look at, or why a whole pass
/// is needed instead. Pure.
pub fn resolve(named: &Named, links: &[Link], scope: &OktaScope) -> Result<Resolved, String> {
    let by_okta: HashMap<&OktaId, &ExtId> = links.iter().map(|l| (&l.okta_id, &l.ext_id)).collect();
    let by_ext: HashMap<&ExtId, &OktaId> = links.iter().map(|l| (&l.ext_id, &l.okta_id)).collect();
    let mut pairs = BTreeSet::new();
    let mut unlinked = Vec::new();
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
            // With a group or app scope, whether the user is in it takes a whole read.
            None if (event.starts_with("user.lifecycle") || membership)
                && *scope != OktaScope::All =>
            {
                return Err(format!("{event} for Okta user {id}, not linked yet"));
            }
            // A new or returning user is matched (or created) by a pass that reads TELUS
            // whole, once a read of the user shows they can be; a profile edit (or, for the
            // whole org, a membership change) of a user this tool does not link changes
            // nothing here.
            None if event.starts_with("user.lifecycle") => {
                unlinked.push((id.clone(), event.clone()));
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
    if pairs.len() + unlinked.len() > MAX_TARGETED_USERS {
        return Err(format!(
            "{} users changed at once (more than {MAX_TARGETED_USERS}): one pass reads them all for less",
            pairs.len() + unlinked.len()
        ));
    }
    Ok(Resolved {
        pairs: pairs.into_iter().collect(),
        unlinked,
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
        let pairs = resolve(&n, &links, &OktaScope::All).unwrap().pairs;
        assert_eq!(pairs.len(), 2, "00u1/61 named twice is read once");
    }

    #[test]
    fn what_only_a_whole_pass_can_decide_escalates() {
        let links = [link("00u1", "61")];
        let all = OktaScope::All;
        // A new Okta user under a group scope, a created or deleted extension.
        assert!(
            resolve(
                &named(&[("00u9", "user.lifecycle.activate")], &[]),
                &links,
                &OktaScope::Group("00g1".into())
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
        assert_eq!(
            resolve(&n, &links, &OktaScope::All),
            Ok(Resolved::default())
        );
    }

    /// For the whole org, a lifecycle event of an unlinked user is read first (it may be a
    /// user that can never be created), not a whole pass at once.
    #[test]
    fn an_unlinked_users_lifecycle_is_looked_at_before_a_whole_pass() {
        let n = named(&[("00u9", "user.lifecycle.create")], &[]);
        let r = resolve(&n, &[], &OktaScope::All).unwrap();
        assert_eq!(
            r.unlinked,
            vec![(OktaId("00u9".into()), "user.lifecycle.create".into())]
        );
        assert!(r.pairs.is_empty());
    }

    #[test]
    fn users_this_tool_does_not_link_are_left_to_scheduled_passes() {
        let links = [link("00u1", "61")];
        let n = named(
            &[("00u9", "user.account.update_profile")],
            &[("70", "Update")],
        );
        assert_eq!(
            resolve(&n, &links, &OktaScope::All),
            Ok(Resolved::default())
        );
    }
}
