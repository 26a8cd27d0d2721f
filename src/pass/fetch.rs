//! A pass's reads: both directories whole or incrementally (with the linked users a plain
//! Okta listing leaves out), or the named pairs one by one; and Okta's profile schema.

use super::context::{Fetched, Pass, Target};
use crate::clients::Clients;
use crate::config::Config;
use crate::model::{ExtId, OktaId, PassOutcome, TelusUser};
use crate::reconcile::decide::OktaWrites;
use crate::store::Store;
use futures_util::StreamExt as _;
use std::collections::HashMap;

/// What a pass's reads gave.
pub enum Fetch {
    Read(Fetched),
    /// A whole-system failure: the pass ends, nothing is planned.
    Failed(String),
    /// A named pair cannot be read one by one (a user gone, a read that failed): a pass of
    /// the whole directory decides instead.
    Escalate(String),
}

/// Users read side by side in a targeted pass.
const READ_CONCURRENCY: usize = 4;

/// How far back an incremental read reaches before the last good pass's start, so that
/// clock skew and Okta's indexing delay lose nothing.
const INCREMENTAL_MARGIN_MINUTES: i64 = 5;

/// How many linked Okta users missing from a full listing a pass reads by id.
const MAX_MISSING_READS: usize = 200;

/// The `lastUpdated` bound for an incremental Okta read, or `None` for a full read: the
/// first pass, `--full`, a scope Okta cannot filter, or a previous pass that failed.
pub fn incremental_since(
    config: &Config,
    store: &Store,
    full: bool,
) -> anyhow::Result<Option<String>> {
    if full || config.okta.scope != crate::config::OktaScope::All {
        return Ok(None);
    }
    if store.snapshot_counts()?.0 == 0 {
        return Ok(None);
    }
    let Some(last) = store.last_whole_pass()? else {
        return Ok(None);
    };
    if !matches!(
        last.summary.outcome,
        Some(PassOutcome::Clean | PassOutcome::UsersFailed)
    ) {
        return Ok(None);
    }
    let start = chrono::DateTime::parse_from_rfc3339(&last.started_at)?;
    let since =
        start.with_timezone(&chrono::Utc) - chrono::Duration::minutes(INCREMENTAL_MARGIN_MINUTES);
    Ok(Some(
        since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}

/// Of the unlinked Okta users whose lifecycle changed, the first one a whole pass must see
/// (it can be created, or matched to a TELUS user), as the reason for that pass; `None`
/// when each is gone, not live (a staged, suspended or deactivated user is never created),
/// or has a create this tool sent that is not confirmed yet (the next whole pass settles
/// it). A read that fails asks for the whole pass too (the harsher reading).
pub async fn unlinked_needing_a_pass(
    clients: &Clients,
    store: &Store,
    unlinked: &[(OktaId, String)],
) -> anyhow::Result<Option<String>> {
    let creating: std::collections::HashSet<String> = store
        .unfinished()?
        .into_iter()
        .filter(|r| r.rule == crate::reconcile::Rule::Create)
        .filter_map(|r| r.okta_id)
        .collect();
    let reads = futures_util::stream::iter(
        unlinked
            .iter()
            .map(|(id, event)| async move { (id, event, clients.okta.get_user(id).await) }),
    )
    .buffer_unordered(READ_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    for (id, event, read) in reads {
        match read {
            Err(e) => {
                return Ok(Some(format!(
                    "{event} for Okta user {id}, not linked yet (reading it: {e})"
                )));
            }
            Ok(None) => {
                tracing::debug!(user = %id, event = %event, "event of an unlinked user Okta no longer has: nothing to do")
            }
            Ok(Some(u)) if !u.status.is_live() => {
                tracing::debug!(user = %id, event = %event, status = u.status.as_str(), "event of an unlinked user who is not live: never created, nothing to do")
            }
            Ok(Some(_)) if creating.contains(&id.0) => {
                tracing::debug!(user = %id, "a create for this user is not confirmed yet: the next whole pass settles it")
            }
            Ok(Some(_)) => {
                return Ok(Some(format!(
                    "{event} for Okta user {id}, not linked yet: a whole pass matches or creates them"
                )));
            }
        }
    }
    Ok(None)
}

/// Reads what `pass.target` covers.
pub async fn read(pass: &Pass<'_>) -> anyhow::Result<Fetch> {
    Ok(match pass.target {
        Target::Whole { since } => match fetch_whole(pass, since.as_deref()).await? {
            Ok(f) => Fetch::Read(f),
            Err(message) => Fetch::Failed(message),
        },
        Target::Pairs(pairs) => match read_pairs(pass.config, pass.clients, pairs).await {
            Ok(f) => Fetch::Read(f),
            Err(reason) => Fetch::Escalate(reason),
        },
        Target::Imports { exts, .. } => match super::imports::read(pass, exts).await? {
            Ok(f) => Fetch::Read(f),
            Err(message) => Fetch::Failed(message),
        },
    })
}

/// Both directories (Okta incrementally when `since` is set: the changed users replace
/// their stored copies) and Okta's schema. `Err` is a whole-system failure.
async fn fetch_whole(
    pass: &Pass<'_>,
    since: Option<&str>,
) -> anyhow::Result<Result<Fetched, String>> {
    let (okta, telus, okta_writes) = tokio::join!(
        pass.clients.okta.fetch_users(since),
        pass.clients
            .telus
            .fetch_users_with(pass.config.policy.names_custom_fields()),
        okta_writes(pass.config, pass.clients)
    );
    let (okta, telus) = match (okta, telus) {
        (Ok(o), Ok(t)) => (o, t),
        (o, t) => {
            let errors: Vec<String> = [
                o.err().map(|e| e.to_string()),
                t.err().map(|e| e.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let message = errors.join("; ");
            tracing::error!(error = %message, "fetch failed, pass ended");
            return Ok(Err(message));
        }
    };
    let okta = match since {
        Some(_) => merge_changed(pass.store.load_okta()?, okta),
        None if pass.config.okta.scope == crate::config::OktaScope::All => {
            match with_deprovisioned(pass, okta).await? {
                Ok(okta) => okta,
                Err(message) => return Ok(Err(message)),
            }
        }
        None => okta,
    };
    tracing::info!(okta = okta.len(), telus = telus.len(), "directories read");
    check_builtin_app(pass).await?;
    Ok(Ok(Fetched {
        okta,
        telus,
        okta_writes,
    }))
}

/// The built-in TELUS app this tool replaced (`okta.app_id`): while it still has a push
/// feature on, two writers fight over the same users. Said in the log at each whole pass and
/// kept for `status` and the gauge. A read that fails says so and changes nothing.
async fn check_builtin_app(pass: &Pass<'_>) -> anyhow::Result<()> {
    let Some(app) = &pass.config.okta.app_id else {
        return Ok(());
    };
    match pass.clients.okta.get_app(app).await {
        Ok(a) => {
            let pushing: Vec<String> = a
                .features
                .into_iter()
                .filter(|f| crate::init::PUSHING_FEATURES.contains(&f.as_str()))
                .collect();
            if !pushing.is_empty() {
                tracing::warn!(app = %app, features = %pushing.join(", "), "Okta's built-in TELUS app still pushes: two writers fight over the same users; turn its provisioning features off");
            }
            if !pass.opts.dry_run {
                pass.store.save_builtin_app_pushing(&pushing)?;
            }
        }
        Err(e) => {
            tracing::warn!(app = %app, error = %e, "the built-in TELUS app (okta.app_id) could not be read; an OAuth app needs okta.apps.read")
        }
    }
    Ok(())
}

/// Okta's plain user listing leaves DEPROVISIONED users out (management spec,
/// `listUsers`: "omits users that have a status of DEPROVISIONED"), so a linked user
/// missing from a full listing is read by id: a deactivated user is then disabled as
/// such, a deleted one (404) has left. A stored copy already DEPROVISIONED is kept
/// without a read. Past `MAX_MISSING_READS` the rest stay missing (the deactivation
/// limit holds such a pass). `Err` is a whole-system failure.
async fn with_deprovisioned(
    pass: &Pass<'_>,
    mut okta: Vec<crate::model::OktaUser>,
) -> anyhow::Result<Result<Vec<crate::model::OktaUser>, String>> {
    let listed: std::collections::HashSet<&OktaId> = okta.iter().map(|u| &u.id).collect();
    let links = pass.store.links()?;
    let missing: Vec<&OktaId> = links
        .iter()
        .map(|l| &l.okta_id)
        .filter(|id| !listed.contains(id))
        .collect();
    if missing.is_empty() {
        return Ok(Ok(okta));
    }
    let stored = pass.store.load_okta_ids(&missing)?;
    let mut found = Vec::new();
    let mut to_read = Vec::new();
    for id in missing {
        match stored.iter().find(|u| &u.id == id) {
            Some(u) if u.status == crate::model::OktaStatus::Deprovisioned => found.push(u.clone()),
            _ => to_read.push(id.clone()),
        }
    }
    if to_read.len() > MAX_MISSING_READS {
        tracing::warn!(
            missing = to_read.len(),
            read = MAX_MISSING_READS,
            "many linked Okta users are missing from the listing; only some are read by id"
        );
        to_read.truncate(MAX_MISSING_READS);
    }
    for id in &to_read {
        match pass.clients.okta.get_user(id).await {
            Ok(Some(u)) => found.push(u),
            Ok(None) => {}
            Err(e) => {
                let message = format!("reading Okta user {id}, missing from the listing: {e}");
                tracing::error!(error = %message, "fetch failed, pass ended");
                return Ok(Err(message));
            }
        }
    }
    if !found.is_empty() {
        tracing::info!(
            kept = found.len(),
            read = to_read.len(),
            "linked okta users missing from the listing (deactivated) kept"
        );
        okta.extend(found);
        okta.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(Ok(okta))
}

/// The Okta users changed since the last pass replace their stored copies in place (the
/// stored list is not copied into a map); new ones are added.
fn merge_changed(
    mut stored: Vec<crate::model::OktaUser>,
    changed: Vec<crate::model::OktaUser>,
) -> Vec<crate::model::OktaUser> {
    let okta_changed = changed.len();
    let mut changed: HashMap<OktaId, crate::model::OktaUser> =
        changed.into_iter().map(|u| (u.id.clone(), u)).collect();
    for u in stored.iter_mut() {
        if let Some(newer) = changed.remove(&u.id) {
            *u = newer;
        }
    }
    stored.extend(changed.into_values());
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    tracing::info!(okta_changed, "incremental okta read merged");
    stored
}

/// From Okta's profile schema (read once per pass when a row writes to Okta): the written
/// attributes Okta refuses for every user (read-only, or an OVERRIDE led by an app), and each
/// attribute's master (what a per-user refusal depends on). A schema that cannot be read (an
/// OAuth app without `okta.schemas.read`, say) leaves out nothing: Okta then refuses such
/// updates user by user, as the journal shows.
async fn okta_writes(config: &Config, clients: &Clients) -> OktaWrites {
    if !crate::schema::policy_writes_okta(&config.policy) {
        return OktaWrites::default();
    }
    match clients.okta.fetch_schema().await {
        Ok(schema) => OktaWrites {
            refused: crate::schema::okta_refused_writes(&config.policy, &schema),
            masters: schema
                .iter()
                .map(|a| (a.name.clone(), a.master_label()))
                .collect(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "okta profile schema unreadable: attributes mastered elsewhere cannot be left out of Okta writes");
            OktaWrites::default()
        }
    }
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
