//! `explain EMAIL [--json]`: why the tool does what it does for one user, from the store and
//! a fresh read of that user (no lock, no write): the link and how it was made, each row
//! decided, the holds, refusals, data problems and backoff that apply, the last changes.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::clients::Clients;
use okta_telus_sync::http::HttpSettings;
use okta_telus_sync::model::{OktaId, printable};
use okta_telus_sync::reconcile::explain::{RowExplained, rows};
use okta_telus_sync::store::{HistoryFilter, Store};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// How many journal rows `explain` shows.
const LAST_CHANGES: usize = 10;

pub async fn run(path: &std::path::Path, email: &str, json: bool) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    let named = match super::named_by_email(&store, &[email.to_string()])? {
        Ok(named) => named,
        Err(_) => return not_linked(&store, email, json),
    };
    let Some(okta_id) = named.okta.keys().next().cloned() else {
        return not_linked(&store, email, json);
    };
    let Some((ext_id, linked_at, origin)) = store.link_of(&okta_id)? else {
        return not_linked(&store, email, json);
    };
    let clients = Clients::from_store(&config, HttpSettings::default(), &store)?;
    let read = match okta_telus_sync::pass::read_pair(
        &config,
        &clients,
        &store,
        (okta_id.clone(), ext_id.clone()),
    )
    .await?
    {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: reading {email} now failed: {message}");
            return Ok(Exit::System);
        }
    };
    let (Some(okta), Some(telus)) = (&read.okta, &read.telus) else {
        eprintln!(
            "error: {email} is linked (Okta {okta_id}, TELUS {ext_id}) but a side is gone from the read: a whole `sync` settles it"
        );
        return Ok(Exit::UsersFailed);
    };
    let table = rows(
        okta,
        telus,
        &store.baseline()?,
        &config.policy,
        &read.okta_masters,
        &read.okta_refused,
        &read.plan,
    );
    let how = link_made(
        &store,
        &okta_id,
        origin.as_deref(),
        telus.directory_ref.as_ref(),
    )?;
    let applies = what_applies(&store, &okta_id, &read.plan)?;
    let last = last_changes(&store, email)?;
    let doc = json!({
        "user": email,
        "okta_id": okta_id.0,
        "extension_id": ext_id.0,
        "okta_status": okta.status.as_str(),
        "telus_status": telus.status.as_str(),
        "link": {"linked_at": linked_at, "how": how},
        "rows": table,
        "applies": applies,
        "last_changes": last.iter().map(okta_telus_sync::report::history_json).collect::<Vec<_>>(),
    });
    match json {
        true => println!("{}", serde_json::to_string_pretty(&doc)?),
        false => print!("{}", text(&doc, &table, &applies)),
    }
    Ok(Exit::Ok)
}

/// How the link was made: by hand or `init --links` (its origin), by a create of this tool
/// (a `create` row in the journal), or matched by a pass (by reference when the TELUS user
/// carries the Okta id, else by email).
fn link_made(
    store: &Store,
    okta_id: &OktaId,
    origin: Option<&str>,
    directory_ref: Option<&OktaId>,
) -> anyhow::Result<String> {
    if let Some(o) = origin {
        return Ok(format!("made by {o}"));
    }
    let created = store
        .history(&HistoryFilter::default())?
        .iter()
        .any(|r| r.okta_id.as_deref() == Some(&okta_id.0) && r.rule.as_str() == "create");
    Ok(match (created, directory_ref == Some(okta_id)) {
        (true, _) => "this tool created the TELUS user for the Okta user".into(),
        (false, true) => {
            "matched by a pass: the TELUS user carries the Okta id in its references".into()
        }
        (false, false) => "matched by a pass by email".into(),
    })
}

/// The holds, backoff or quarantine, known refusals and data problems that apply to the user.
fn what_applies(
    store: &Store,
    okta_id: &OktaId,
    plan: &okta_telus_sync::reconcile::Plan,
) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = plan.held.iter().map(|h| format!("hold: {h}")).collect();
    for f in store.failures()?.iter().filter(|f| f.user_key == okta_id.0) {
        out.push(match f.quarantined {
            true => format!(
                "quarantined after {} failed passes ({}): `sync --retry-quarantined` releases it",
                f.consecutive,
                f.last_error.as_deref().unwrap_or("-")
            ),
            false => format!(
                "backing off after {} failure(s) until {} ({})",
                f.consecutive,
                f.next_retry_at,
                f.last_error.as_deref().unwrap_or("-")
            ),
        });
    }
    for k in store
        .okta_refusals()?
        .iter()
        .filter(|k| &k.okta_id == okta_id)
    {
        out.push(format!(
            "known refusal: Okta refuses {} for this user ({}); not sent again until the user's record or the attribute's master changes",
            k.attr, k.explanation
        ));
    }
    for d in store
        .data_problems()?
        .iter()
        .filter(|d| d.okta_id.as_ref() == Some(okta_id))
    {
        out.push(format!(
            "data problem: {} → {}: {} {} (since {})",
            d.attr,
            d.system.as_str(),
            d.code,
            d.explanation,
            d.since
        ));
    }
    Ok(out)
}

fn last_changes(
    store: &Store,
    email: &str,
) -> anyhow::Result<Vec<okta_telus_sync::store::JournalRow>> {
    let mut rows = store.history(&HistoryFilter {
        user_email: Some(email.to_string()),
        ..HistoryFilter::default()
    })?;
    let skip = rows.len().saturating_sub(LAST_CHANGES);
    Ok(rows.split_off(skip))
}

/// A user no link holds: what the store knows of them.
fn not_linked(store: &Store, email: &str, json: bool) -> anyhow::Result<Exit> {
    let key = email.trim().to_lowercase();
    let (queue, _) = store.import_queue()?;
    let queued = queue.iter().find(|c| c.email.to_lowercase() == key);
    let okta = store
        .load_okta()?
        .into_iter()
        .find(|o| o.email().is_some_and(|e| e.trim().to_lowercase() == key));
    let why = match (okta, queued) {
        (_, Some(c)) => format!(
            "a TELUS user (extension {}) with no Okta match, in the import queue as {}: see `import list`",
            c.ext_id,
            c.outcome.as_str()
        ),
        (Some(o), None) => format!(
            "Okta user {} is not linked yet: the next whole pass matches it (by reference, then email) or creates its TELUS user; `plan` shows which",
            o.id
        ),
        (None, None) => "no user with this email in the last pass's read of either side".into(),
    };
    match json {
        true => println!("{}", json!({"user": email, "linked": false, "why": why})),
        false => println!("{}: not linked. {why}.", printable(email)),
    }
    Ok(Exit::Ok)
}

fn text(doc: &Value, table: &[RowExplained], applies: &[String]) -> String {
    let s = |v: &Value| printable(v.as_str().unwrap_or("-"));
    let shown = |v: &Option<String>| match v {
        Some(v) => format!("{:?}", printable(v)),
        None => "(empty)".into(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: Okta {} ({}) ↔ TELUS {} ({})\nLink: {}, since {}.",
        s(&doc["user"]),
        s(&doc["okta_id"]),
        s(&doc["okta_status"]),
        s(&doc["extension_id"]),
        s(&doc["telus_status"]),
        s(&doc["link"]["how"]),
        s(&doc["link"]["linked_at"])
    );
    for r in table {
        let _ = writeln!(
            out,
            "\n{} ↔ {}: {} — {}\n  Okta   {} (normalized {})\n  TELUS  {} (normalized {})\n  baseline {}; master {}{}\n  rule: {}",
            r.attribute,
            r.telus_field,
            r.result,
            printable(&r.why),
            shown(&r.okta),
            shown(&r.okta_normalized),
            shown(&r.telus),
            shown(&r.telus_normalized),
            shown(&r.baseline),
            r.master,
            r.okta_schema_master
                .as_deref()
                .map(|m| format!(" (Okta's schema: {m})"))
                .unwrap_or_default(),
            r.rule
        );
    }
    let _ = writeln!(out, "\nApplies to this user:");
    if applies.is_empty() {
        let _ = writeln!(
            out,
            "  nothing: no hold, backoff, quarantine, known refusal or data problem"
        );
    }
    for a in applies {
        let _ = writeln!(out, "  {}", printable(a));
    }
    let _ = writeln!(out, "\nLast changes (see `history --user`):");
    let last = doc["last_changes"].as_array().cloned().unwrap_or_default();
    if last.is_empty() {
        let _ = writeln!(out, "  none journalled");
    }
    for r in &last {
        let _ = writeln!(
            out,
            "  {} {} {} {}: {} → {} ({})",
            s(&r["time"]),
            s(&r["system"]),
            s(&r["attribute"]),
            s(&r["outcome"]),
            s(&r["old"]),
            s(&r["new"]),
            s(&r["rule"])
        );
    }
    out
}
