//! A pass's part of the import queue: creates whose answer was lost settled by reading
//! their login, the whole-org lookups of the candidates (reused while fresh), the queue put
//! into the plan (what is confirmed, what holds), and the targeted pass of `import
//! confirm`, which reads only the confirmed TELUS users.

use super::context::{Fetched, Pass};
pub use super::scope::ImportRequest;
use crate::model::{ExtId, Link, OktaId, OktaUser, TelusUser};
use crate::reconcile::import::{self, Candidate, Confirm, Lookups, LostImport};
use crate::reconcile::{Agreed, Plan, ProblemKind, Rule, Settlement};
use crate::store::{Outcome, Store};
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Candidates one pass looks up in the whole org at most (two Okta requests each); the
/// rest stay `unchecked` until a later pass.
pub const MAX_LOOKUPS_PER_PASS: usize = 100;

/// How long a stored lookup stands for a candidate whose email is unchanged.
const LOOKUP_FRESH: chrono::Duration = chrono::Duration::hours(1);

/// Lookups side by side.
const LOOKUP_CONCURRENCY: usize = 4;

/// The extensions with an import not confirmed yet (its answer lost): never proposed, never
/// created again until settled.
pub fn pending(store: &Store) -> anyhow::Result<HashSet<ExtId>> {
    Ok(store
        .unfinished()?
        .into_iter()
        .filter(|r| r.rule == Rule::Import)
        .filter_map(|r| r.ext_id.map(ExtId))
        .collect())
}

/// Imports an earlier run left `planned` (no answer came) are settled by reading their
/// login (`GET /api/v1/users/{login}`, current where a search is not): the same person
/// there → landed, linked, its baseline set; nobody → not created (proposed again); someone
/// else → failed as a conflict. A read that fails leaves them for the next pass. Returns
/// (landed, not landed).
pub async fn settle_lost(pass: &Pass<'_>) -> anyhow::Result<(usize, usize)> {
    if pass.opts.dry_run {
        return Ok((0, 0));
    }
    let mut by_ext: BTreeMap<String, Vec<crate::store::JournalRow>> = BTreeMap::new();
    for r in pass.store.unfinished()? {
        if let (Rule::Import, Some(ext)) = (r.rule, r.ext_id.clone()) {
            by_ext.entry(ext).or_default().push(r);
        }
    }
    let mut settled = (0, 0);
    for (ext, rows) in by_ext {
        let email = rows[0].user_email.clone();
        let login = rows
            .iter()
            .find(|r| r.attribute == "login")
            .and_then(|r| r.new.clone())
            .unwrap_or_else(|| email.clone());
        let holder = match pass.clients.okta.get_user_by_login(&login).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(user = %email, error = %e, "an import whose answer was lost cannot be checked yet");
                continue;
            }
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        match import::settle_lost(&email, holder.as_ref()) {
            LostImport::Landed(okta_id) => {
                let link = Link {
                    okta_id: okta_id.clone(),
                    ext_id: ExtId(ext),
                };
                let values = rows
                    .iter()
                    .map(|r| (crate::model::intern(&r.attribute), compared(pass, r)))
                    .collect();
                let mut s: Vec<Settlement> = ids
                    .iter()
                    .map(|&row_id| Settlement {
                        row_id,
                        landed: true,
                        baseline: None,
                        link: None,
                    })
                    .collect();
                s[0].baseline = Some(Agreed {
                    okta_id: okta_id.clone(),
                    values,
                });
                s[0].link = Some(link);
                pass.store.settle(&s)?;
                pass.store.set_journal_okta_id(&ids, &okta_id)?;
                tracing::warn!(user = %email, okta_id = %okta_id, "an import whose answer was lost had landed: linked");
                settled.0 += ids.len();
            }
            LostImport::NotCreated => {
                pass.store.journal_outcome(
                    &ids,
                    Outcome::Failed,
                    Some("INTERRUPTED"),
                    Some(&format!("no answer came, and Okta holds no user with login {login}: it was not created; it is in the import queue again")),
                    &[],
                )?;
                settled.1 += ids.len();
            }
            LostImport::HeldByAnother { why, .. } => {
                pass.store.journal_outcome(
                    &ids,
                    Outcome::Failed,
                    Some("E0000001"),
                    Some(&why),
                    &[],
                )?;
                settled.1 += ids.len();
            }
        }
    }
    Ok(settled)
}

fn compared(pass: &Pass<'_>, r: &crate::store::JournalRow) -> Option<String> {
    let kind = pass
        .config
        .policy
        .rule(&r.attribute)
        .map(|r| r.normalize)
        .unwrap_or(crate::reconcile::policy::Normalize::None);
    crate::reconcile::normalize::compared_form(kind, r.new.as_deref())
}

/// The whole-org lookup of each candidate: the stored one while it is fresh and for the
/// same email (unless `fresh`), else `GET /api/v1/users/{email}` and a search on the email,
/// up to `MAX_LOOKUPS_PER_PASS` (the rest stay unchecked). New lookups are stored unless
/// `dry_run`. A lookup that fails leaves its candidate unchecked.
pub async fn lookups(
    pass: &Pass<'_>,
    unmatched: &[&TelusUser],
    fresh: bool,
) -> anyhow::Result<Lookups> {
    let stored = pass.store.import_lookups()?;
    let now = chrono::Utc::now();
    let mut out: Lookups = HashMap::new();
    let mut to_look: Vec<(&ExtId, String)> = Vec::new();
    for t in unmatched {
        let Some(email) = t.email().map(|e| e.trim().to_lowercase()) else {
            continue;
        };
        let reuse = stored.get(&t.id).filter(|(e, at, _)| {
            !fresh
                && *e == email
                && chrono::DateTime::parse_from_rfc3339(at)
                    .is_ok_and(|at| now - at.with_timezone(&chrono::Utc) < LOOKUP_FRESH)
        });
        match reuse {
            Some((_, _, holders)) => {
                out.insert(t.id.clone(), holders.clone());
            }
            None => to_look.push((&t.id, email)),
        }
    }
    if to_look.len() > MAX_LOOKUPS_PER_PASS {
        tracing::info!(
            candidates = to_look.len(),
            looked_up = MAX_LOOKUPS_PER_PASS,
            "more import candidates than one pass looks up: the rest stay unchecked"
        );
        to_look.truncate(MAX_LOOKUPS_PER_PASS);
    }
    let okta = &pass.clients.okta;
    let found = futures_util::stream::iter(to_look.into_iter().map(|(ext, email)| async move {
        let (by_login, by_search) =
            tokio::join!(okta.get_user_by_login(&email), okta.search_holders(&email));
        (ext, email, by_login, by_search)
    }))
    .buffer_unordered(LOOKUP_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    let mut made = Vec::new();
    for (ext, email, by_login, by_search) in found {
        match (by_login, by_search) {
            (Ok(login), Ok(search)) => {
                let mut holders: Vec<OktaUser> = login.into_iter().collect();
                for u in search {
                    if !holders.iter().any(|h| h.id == u.id) {
                        holders.push(u);
                    }
                }
                out.insert(ext.clone(), holders.clone());
                made.push((ext.clone(), email, holders));
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(user = %email, error = %e, "import candidate not looked up in Okta: left unchecked");
            }
        }
    }
    if !pass.opts.dry_run && !made.is_empty() {
        pass.store.put_import_lookups(&made)?;
    }
    Ok(out)
}

/// Puts the queue into a planned pass: the candidates (what `plan` and `status` show), the
/// confirmed ones' creates, the problems of those that cannot be, and the hold past
/// `safety.max_imports`. Their "unmatched TELUS user" notes give way to the queue.
pub fn into_plan(
    pass: &Pass<'_>,
    plan: &mut Plan,
    queue: Vec<Candidate>,
    telus: &[TelusUser],
    confirm: &Confirm,
) {
    let confirmed = import::confirm(
        &queue,
        telus,
        &pass.config.policy,
        &pass.config.safety,
        confirm,
    );
    let queued: HashSet<&ExtId> = queue.iter().map(|c| &c.ext_id).collect();
    plan.problems.retain(|p| {
        p.kind != ProblemKind::UnmatchedTelus
            || p.user.ext_id.as_ref().is_none_or(|e| !queued.contains(e))
    });
    // Bulk confirmations back off after a failure like any action; a user the admin names
    // is tried now.
    let (named, mut actions): (Vec<_>, Vec<_>) = confirmed
        .actions
        .into_iter()
        .partition(|a| confirm.named.contains(&a.user.email));
    if !pass.opts.dry_run
        && let Ok(failures) = pass.store.failures()
    {
        let deferred = import::defer_failed(&mut actions, &failures, chrono::Utc::now());
        plan.deferred.extend(deferred);
        plan.deferred.sort();
    }
    plan.actions.extend(named);
    plan.actions.extend(actions);
    plan.actions.sort();
    plan.problems.extend(confirmed.problems);
    plan.problems.sort();
    plan.held.extend(confirmed.hold);
    plan.imports = queue;
}

/// The whole pass's queue: the unmatched TELUS users (after this plan's matches), looked up,
/// with their outcomes; the confirmed ones (`[import] auto_confirm_new`) planned.
pub async fn whole_queue(
    pass: &Pass<'_>,
    fetched: &Fetched,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    let mut links = pass.store.links()?;
    links.extend(plan.new_links.iter().cloned());
    let unmatched = import::unmatched(
        &fetched.okta,
        &fetched.telus,
        &links,
        &pass.config.policy,
        &pending(pass.store)?,
        &pass.store.ignored_imports()?,
    );
    if unmatched.is_empty() {
        plan.imports.clear();
        return Ok(());
    }
    let lookups = lookups(pass, &unmatched, false).await?;
    let linked: HashSet<&OktaId> = links.iter().map(|l| &l.okta_id).collect();
    let queue = import::queue(&unmatched, &fetched.okta, &linked, &lookups);
    let import = &pass.config.policy.import;
    let confirm = Confirm {
        named: Vec::new(),
        all_new: import.auto_confirm_new,
        activate: import.activate,
    };
    into_plan(pass, plan, queue, &fetched.telus, &confirm);
    Ok(())
}

/// The queue of `import confirm`'s targeted pass: the confirmed TELUS users as just read,
/// each looked up afresh, against the stored snapshot of the scope's Okta users.
pub async fn targeted_queue(
    pass: &Pass<'_>,
    fetched: &Fetched,
    plan: &mut Plan,
    request: &ImportRequest,
) -> anyhow::Result<()> {
    let links = pass.store.links()?;
    let unmatched = import::unmatched(
        &fetched.okta,
        &fetched.telus,
        &links,
        &pass.config.policy,
        &pending(pass.store)?,
        &HashSet::new(),
    );
    let lookups = lookups(pass, &unmatched, true).await?;
    let linked: HashSet<&OktaId> = links.iter().map(|l| &l.okta_id).collect();
    let queue = import::queue(&unmatched, &fetched.okta, &linked, &lookups);
    let confirm = Confirm {
        named: request.named.clone(),
        all_new: request.all_new,
        activate: request.activate,
    };
    into_plan(pass, plan, queue, &fetched.telus, &confirm);
    Ok(())
}

/// Reads the TELUS users `import confirm` names, one by one, and the stored snapshot of the
/// scope's Okta users (what a match or a partial match is looked for in). `Err` is a
/// whole-system failure.
pub async fn read(pass: &Pass<'_>, exts: &[ExtId]) -> anyhow::Result<Result<Fetched, String>> {
    let mut telus = Vec::with_capacity(exts.len());
    for ext in exts {
        match pass.clients.telus.fetch_user(ext).await {
            Ok(Some(t)) => telus.push(t),
            Ok(None) => tracing::warn!(ext = %ext, "TELUS extension to import is gone"),
            Err(e) => return Ok(Err(format!("reading TELUS extension {ext}: {e}"))),
        }
    }
    Ok(Ok(Fetched {
        okta: pass.store.load_okta()?,
        telus,
        okta_writes: Default::default(),
    }))
}
