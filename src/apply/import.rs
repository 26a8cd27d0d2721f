//! Applies an import: the Okta user created from a TELUS user (`STAGED` unless activated,
//! into the scope's group, assigned to the scope's app), then linked to that TELUS user with
//! its baseline, so nothing is created in TELUS. A login Okta says is taken links to its
//! holder when that is the same person; a lost answer stays `planned` for the next read.

use super::{ApplyContext, Attempt, WriteError, record};
use crate::model::Link;
use crate::reconcile::import::{LostImport, settle_lost};
use crate::reconcile::{PlannedAction, UserRef};
use std::collections::BTreeMap;

/// Okta's answer when a login is taken: 400 `E0000001` with the cause "login: An object
/// with this field already exists" (management spec, createUser; the causes name the
/// attribute first, as all of Okta's validation answers do).
fn login_taken(e: &crate::okta::Error) -> bool {
    e.code() == Some("E0000001") && e.invalid_attributes().contains(&"login")
}

/// Creates, links and records one imported user.
pub(super) async fn apply_import(
    action: &PlannedAction,
    activate: bool,
    rows: &[i64],
    ctx: &ApplyContext<'_>,
) -> Result<Attempt, crate::store::Error> {
    let changes = action.changes();
    let profile: BTreeMap<String, String> = changes
        .iter()
        .filter_map(|c| Some((c.attr.clone(), c.new.clone()?)))
        .collect();
    let Some(ext_id) = action.user.ext_id.clone() else {
        return record(
            action,
            rows,
            changes,
            Err(super::missing("the TELUS extension")),
            ctx,
        );
    };
    let (created, note) = create_or_find(action, &profile, activate, ctx).await;
    let okta_id = match created {
        Ok(id) => id,
        Err(e) => {
            // Refused: the stored lookup that proposed it is stale; the next pass looks
            // again (and finds, say, who holds the login now).
            if !e.unknown {
                ctx.store.forget_import_lookup(&ext_id)?;
            }
            return record(action, rows, changes, Err(e), ctx);
        }
    };
    ctx.store.set_journal_okta_id(rows, &okta_id)?;
    let mut note = note.map(str::to_string);
    if let Some(app) = &ctx.import_into.app
        && let Err(e) = ctx.okta.assign_to_app(app, &okta_id).await
    {
        // Not linked: a linked user outside the scope would have its TELUS user disabled.
        // The next pass finds the new user outside the scope and says so.
        tracing::error!(user = %action.user.email, okta_id = %okta_id, app = %app, error = %e, "imported user created but not assigned to the app: not linked");
        let explanation = format!(
            "Okta user {okta_id} was created but not assigned to app {app} ({}): assign it in Okta; the next pass links it",
            e.explanation()
        );
        ctx.store.journal_outcome(
            rows,
            crate::store::Outcome::Applied,
            e.code(),
            Some(&explanation),
            &[],
        )?;
        let mut attempt = Attempt {
            applied: changes.len(),
            ..Attempt::default()
        };
        attempt.failed_user = Some((
            action.user.clone(),
            (e.code().map(str::to_string), explanation),
        ));
        return Ok(attempt);
    }
    ctx.store.add_links(&[Link {
        okta_id: okta_id.clone(),
        ext_id,
    }])?;
    let linked = PlannedAction {
        user: UserRef {
            okta_id: Some(okta_id.clone()),
            ..action.user.clone()
        },
        ..action.clone()
    };
    let attempt = record(&linked, rows, changes, Ok(()), ctx)?;
    if let Some(n) = note.take() {
        ctx.store.note_applied(rows, &n)?;
    }
    tracing::info!(user = %action.user.email, okta_id = %okta_id, activated = activate, "imported into Okta and linked");
    Ok(attempt)
}

/// Sends the create; a login Okta says is taken is looked up and answered by its holder
/// when that is the same person. Answers the Okta id, and a note when it is an existing
/// user's.
async fn create_or_find(
    action: &PlannedAction,
    profile: &BTreeMap<String, String>,
    activate: bool,
    ctx: &ApplyContext<'_>,
) -> (
    Result<crate::model::OktaId, WriteError>,
    Option<&'static str>,
) {
    let login = profile.get("login").cloned().unwrap_or_default();
    match ctx
        .okta
        .create_user(profile, activate, &ctx.import_into)
        .await
    {
        Ok(user) => (Ok(user.id), None),
        Err(e) if login_taken(&e) => match ctx.okta.get_user_by_login(&login).await {
            Ok(holder) => match settle_lost(&action.user.email, holder.as_ref()) {
                LostImport::Landed(id) => (
                    Ok(id),
                    Some(
                        "Okta already had this person (login taken, same email): linked, not created",
                    ),
                ),
                LostImport::HeldByAnother { why, .. } => (
                    Err(WriteError {
                        explanation: why,
                        ..WriteError::from(&e)
                    }),
                    None,
                ),
                LostImport::NotCreated => (Err(WriteError::from(&e)), None),
            },
            Err(_) => (Err(WriteError::from(&e)), None),
        },
        // A 5xx may follow the work (a gateway that lost Okta's answer): like a timeout,
        // its outcome is settled by reading the login on the next pass, never sent again.
        Err(e) if matches!(e, crate::okta::Error::Api { status, .. } if status >= 500) => {
            (Err(WriteError::from(&e).unconfirmed()), None)
        }
        Err(e) => (Err(WriteError::from(&e)), None),
    }
}
