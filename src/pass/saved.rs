//! A saved plan's pass (`sync --plan`): what it reads (the users the plan touches, or both
//! directories when it creates), the fresh values its reviewed changes are checked against,
//! and the journal of the changes it skipped.

use super::context::{Fetched, Pass, Target};
use super::scope::MAX_TARGETED_USERS;
use crate::config::Config;
use crate::model::{ExtId, Link, OktaId, System};
use crate::reconcile::plan::STATUS_ATTR;
use crate::reconcile::saved::{Reviewed, SavedPlan, Verdict};
use crate::reconcile::{Plan, UserRef, telus_value};
use crate::store::{JournalEntry, Store};
use std::collections::{BTreeSet, HashMap};

/// What the pass reads: each linked pair the plan touches by id (a targeted read), or both
/// directories when the plan creates users (a create is found again by reference, never
/// made twice), names more users than a targeted read is for, or names a user not linked.
pub fn target(config: &Config, store: &Store, saved: &SavedPlan) -> anyhow::Result<Target> {
    let links = store.links()?;
    let by_okta: HashMap<&OktaId, &ExtId> = links.iter().map(|l| (&l.okta_id, &l.ext_id)).collect();
    let mut pairs = BTreeSet::new();
    let mut whole = saved.needs_whole_read();
    for a in &saved.actions {
        match a
            .user
            .okta_id
            .as_ref()
            .and_then(|o| Some((o, by_okta.get(o)?)))
        {
            Some((o, e)) => {
                pairs.insert((o.clone(), (*e).clone()));
            }
            None => whole = true,
        }
    }
    if whole || pairs.len() > MAX_TARGETED_USERS {
        let since = super::fetch::incremental_since(config, store, false)?;
        return Ok(Target::Whole { since });
    }
    Ok(Target::Pairs(pairs.into_iter().collect()))
}

/// Cuts the fresh plan down to the reviewed changes that still hold (`reconcile::saved`).
pub fn select(
    pass: &Pass<'_>,
    saved: &SavedPlan,
    fetched: &Fetched,
    plan: &mut Plan,
) -> anyhow::Result<Vec<Reviewed>> {
    let mut links = pass.store.links()?;
    links.extend(plan.new_links.iter().cloned());
    let policy = &pass.config.policy;
    let current = current_values(fetched, &links, policy);
    Ok(crate::reconcile::saved::select(
        saved, plan, policy, &current,
    ))
}

/// The value each target holds in the fresh read: an Okta user's profile attribute (or
/// status), a TELUS user's row value (or status); `None` when the user is not in the read.
fn current_values<'a>(
    fetched: &'a Fetched,
    links: &'a [Link],
    policy: &'a crate::reconcile::policy::Policy,
) -> impl Fn(&UserRef, System, &str) -> Option<Option<String>> + 'a {
    move |user: &UserRef, system: System, attr: &str| match system {
        System::Okta => {
            let id = user.okta_id.clone().or_else(|| {
                let ext = user.ext_id.as_ref()?;
                links
                    .iter()
                    .find(|l| &l.ext_id == ext)
                    .map(|l| l.okta_id.clone())
            })?;
            let u = fetched.okta.iter().find(|u| u.id == id)?;
            Some(match attr {
                STATUS_ATTR => Some(u.status.as_str().to_string()),
                _ => u.profile.get(attr).map(str::to_string),
            })
        }
        System::Telus => {
            let ext = user.ext_id.clone().or_else(|| {
                let okta = user.okta_id.as_ref()?;
                links
                    .iter()
                    .find(|l| &l.okta_id == okta)
                    .map(|l| l.ext_id.clone())
            })?;
            let u = fetched.telus.iter().find(|u| u.id == ext)?;
            Some(match (attr, policy.rule(attr)) {
                (STATUS_ATTR, _) => Some(u.status.as_str().to_string()),
                (_, Some(rule)) => telus_value(u, &rule.telus),
                (_, None) => None,
            })
        }
    }
}

/// Marks the pass as the plan's and journals each stale change as `skipped`, naming the
/// value found (applied changes are journalled by the apply, under this pass).
pub fn record(pass: &Pass<'_>, saved: &SavedPlan, reviewed: &[Reviewed]) -> anyhow::Result<()> {
    let Some(pass_id) = pass.pass_id else {
        return Ok(());
    };
    let store = pass.store;
    store.set_pass_plan(pass_id, &saved.id)?;
    for r in reviewed {
        let Verdict::Stale { found, why } = &r.verdict else {
            continue;
        };
        let explanation = format!(
            "stale (plan {}): {why}; the target holds {}",
            saved.id,
            found
                .as_deref()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "nothing".into())
        );
        let entry = JournalEntry {
            pass_id,
            system: r.system,
            okta_id: r.user.okta_id.as_ref(),
            ext_id: r.user.ext_id.as_ref(),
            user_email: &r.user.email,
            attribute: &r.change.attr,
            field: &r.change.field,
            old: r.change.old.as_deref(),
            new: r.change.new.as_deref(),
            rule: r.change.rule,
        };
        store.journal_skipped(&[entry], "stale", &explanation)?;
    }
    Ok(())
}
