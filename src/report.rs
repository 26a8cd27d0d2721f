//! What the CLI prints: plans (text and JSON), pass summaries, history, and `status` (which
//! reads the store). Values appear here because the admin asked to see them, never in logs
//! above DEBUG.

use crate::model::System;
use crate::model::{PassOutcome, printable};
use crate::reconcile::{Action, Plan, ProblemKind};
use crate::summary::PassReport;
use serde_json::{Value, json};
use std::fmt::Write as _;

fn show(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(empty)".to_string(),
    }
}

fn target(system: System) -> &'static str {
    match system {
        System::Okta => "Okta",
        System::Telus => "TELUS",
    }
}

/// The plan as an admin reads it: per user, each attribute old → new and the rule that
/// decided it; then the users that could not be synced, then notes.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let mut section = |title: &str, lines: &[String]| {
        if !lines.is_empty() {
            let _ = writeln!(out, "{title}");
            for r in lines {
                let _ = writeln!(out, "  - {r}");
            }
            let _ = writeln!(out);
        }
    };
    section(
        "HELD by a safety limit: nothing will be written. Review, then run `sync --approve` to proceed once:",
        &plan.held_reasons(),
    );
    section(
        "LEFT OUT of Okta writes: Okta refuses these attributes from this tool, so sending one would fail each user's whole update:",
        &plan.left_out,
    );
    let to_telus = plan
        .actions
        .iter()
        .filter(|a| a.system == System::Telus)
        .count();
    let to_okta = plan.actions.len() - to_telus;
    let _ = writeln!(
        out,
        "Plan: {} change(s) for {} linked user(s): {} to TELUS, {} to Okta ({} create, {} import, {} deactivate, {} reactivate), {} new link(s), {} user(s) not synced",
        plan.change_count(),
        plan.linked,
        to_telus,
        to_okta,
        plan.count("create"),
        plan.count("import"),
        plan.count("deactivate"),
        plan.count("reactivate"),
        plan.new_links.len(),
        plan.failed_users()
    );
    if plan.actions.is_empty() {
        let _ = writeln!(out, "\nNothing to change.");
    }
    for a in &plan.actions {
        let what = match &a.action {
            Action::Deactivate { reason, .. } => {
                format!("deactivate in {} ({reason})", target(a.system))
            }
            other => format!("{} {}", other.as_str(), target(a.system)),
        };
        let _ = writeln!(out, "\n{} → {what}", a.user.email);
        for c in a.changes() {
            let _ = writeln!(
                out,
                "    {:<14} {} → {}   [{}]",
                c.attr,
                show(&c.old),
                show(&c.new),
                c.rule.as_str()
            );
        }
    }
    plan_problems_text(&mut out, plan);
    let queued = still_queued(plan);
    if !queued.is_empty() {
        let _ = writeln!(out);
        out.push_str(&imports_text(&queued, None));
    }
    out
}

/// The users not synced, the known refusals, and the notes.
fn plan_problems_text(out: &mut String, plan: &Plan) {
    let failing: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| p.kind.fails_user())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "\nNot synced:");
        for p in failing {
            let attr = p
                .attr
                .as_deref()
                .map(|a| format!(" {a}:"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} [{}]{} {}",
                p.user.email,
                p.kind.as_str(),
                attr,
                p.shown()
            );
        }
    }
    let refusals: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::KnownRefusal)
        .collect();
    if !refusals.is_empty() {
        let _ = writeln!(
            out,
            "\nKnown refusals (not sent; tried again when the user's Okta record or the attribute's master changes):"
        );
        for p in refusals {
            let _ = writeln!(out, "  {} {}", p.user.email, p.shown());
        }
    }
    let data: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::DataProblem)
        .collect();
    if !data.is_empty() {
        let _ = writeln!(
            out,
            "\nData problems (not sent and not failed while the values are unchanged; fix them at the source):"
        );
        for p in data {
            let attr = p.attr.as_deref().unwrap_or("");
            let _ = writeln!(out, "  {} {attr}: {}", p.user.email, p.shown());
        }
    }
    let notes: Vec<_> = plan
        .problems
        .iter()
        .filter(|p| {
            !p.kind.fails_user()
                && !matches!(p.kind, ProblemKind::KnownRefusal | ProblemKind::DataProblem)
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for p in notes {
            let who = if p.user.email.is_empty() {
                p.user
                    .ext_id
                    .as_ref()
                    .map(|e| format!("extension {e}"))
                    .unwrap_or_default()
            } else {
                p.user.email.clone()
            };
            let _ = writeln!(out, "  {} [{}] {}", who, p.kind.as_str(), p.shown());
        }
    }
}

/// The plan as one JSON document.
pub fn plan_json(plan: &Plan) -> Value {
    json!({
        "held": plan.held_reasons(),
        "left_out": plan.left_out,
        "linked": plan.linked,
        "changes": plan.change_count(),
        "failed_users": plan.failed_users(),
        "actions": plan.actions.iter().map(|a| json!({
            "user": a.user.email,
            "okta_id": a.user.okta_id.as_ref().map(|i| i.0.clone()),
            "extension_id": a.user.ext_id.as_ref().map(|i| i.0.clone()),
            "system": a.system.as_str(),
            "action": a.action.as_str(),
            "changes": a.changes().iter().map(|c| json!({
                "attribute": c.attr,
                "field": c.field,
                "old": c.old,
                "new": c.new,
                "rule": c.rule.as_str(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "imports": imports_json(&plan.imports),
        "new_links": plan.new_links.iter().map(|l| json!({
            "okta_id": l.okta_id.0, "extension_id": l.ext_id.0,
        })).collect::<Vec<_>>(),
        "problems": plan.problems.iter().map(|p| json!({
            "user": p.user.email,
            "okta_id": p.user.okta_id.as_ref().map(|i| i.0.clone()),
            "extension_id": p.user.ext_id.as_ref().map(|i| i.0.clone()),
            "kind": p.kind.as_str(),
            "fails_user": p.kind.fails_user(),
            "attribute": p.attr,
            "message": p.message,
            "values": p.values,
        })).collect::<Vec<_>>(),
    })
}

/// What became of each change of a saved plan (`sync --plan`): applied, already applied,
/// or stale with the value found and why. One line each.
pub fn reviewed_text(reviewed: &[crate::reconcile::saved::Reviewed]) -> String {
    use crate::reconcile::saved::Verdict;
    let mut out = String::new();
    for r in reviewed {
        let what = format!(
            "{} {} {}: {} → {}",
            escaped(&r.user.email),
            r.system.as_str(),
            r.change.attr,
            shown(r.change.old.as_deref()),
            shown(r.change.new.as_deref())
        );
        let _ = match &r.verdict {
            Verdict::Apply => writeln!(out, "  apply    {what}"),
            Verdict::Already => writeln!(out, "  already  {what} (already applied)"),
            Verdict::Stale { found, why } => writeln!(
                out,
                "  stale    {what}: skipped, {why} (the target holds {})",
                shown(found.as_deref())
            ),
        };
    }
    out
}

fn shown(v: Option<&str>) -> String {
    v.map(|v| format!("\"{}\"", escaped(v)))
        .unwrap_or_else(|| "(empty)".to_string())
}

/// A few lines on how a pass went.
pub fn pass_text(r: &PassReport) -> String {
    let mut out = String::new();
    if let Some(err) = &r.system_error {
        let _ = writeln!(out, "Pass ended: a whole system failed: {err}");
    }
    if r.outcome == PassOutcome::Held {
        let _ = writeln!(
            out,
            "Pass held by a safety limit: nothing was written (run `sync --approve` to proceed once)."
        );
    }
    let unmatched_telus = r
        .plan
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::UnmatchedTelus)
        .count();
    let _ = writeln!(
        out,
        "{}: read {} Okta and {} TELUS users; {} change(s) planned, {} applied, {} failed; {} user(s) failed; {} TELUS user(s) unmatched, {} in the import queue.",
        if r.dry_run { "Dry run" } else { "Pass" },
        r.okta_read,
        r.telus_read,
        r.plan.change_count(),
        r.apply.applied,
        r.apply.failed,
        r.failed_users(),
        unmatched_telus,
        still_queued(&r.plan).len()
    );
    for (user, (code, explanation)) in &r.apply.failed_users {
        let _ = writeln!(
            out,
            "  failed: {} [{}] {}",
            user.email,
            code.as_deref().unwrap_or("-"),
            explanation
        );
    }
    out
}

/// Reads `--since`: an RFC 3339 time, a date (midnight UTC), or an age such as `7d`, `12h`,
/// `30m`. Returns the RFC 3339 lower bound the journal is filtered with.
pub fn parse_since(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let s = s.trim();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(fmt(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(fmt(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("{s:?} is not a time, a date (2026-11-01) or an age (7d, 12h, 30m)")
    })?;
    let age = match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => return Err(format!("{s:?}: the unit must be w, d, h or m")),
    };
    age.and_then(|age| now.checked_sub_signed(age))
        .map(fmt)
        .ok_or_else(|| format!("{s:?} reaches back further than dates go"))
}

/// A value as it may reach a terminal: control characters (an end user's `ESC[...`, say,
/// typed into Okta self-service or the TELUS app) escaped, everything else as it is.
fn escaped(s: &str) -> String {
    crate::model::printable(&s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `old → new` with the changed characters highlighted (ANSI) when `color`.
fn inline_diff(old: Option<&str>, new: Option<&str>, color: bool) -> String {
    let quote = |v: Option<&str>| {
        v.map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "(empty)".into())
    };
    let (Some(o), Some(n), true) = (old, new, color) else {
        return format!("{} → {}", quote(old), quote(new));
    };
    let diff = similar::TextDiff::from_chars(o, n);
    let (mut left, mut right) = (String::from("\""), String::from("\""));
    const DEL: &str = "\x1b[31;9m";
    const INS: &str = "\x1b[32;1m";
    const END: &str = "\x1b[0m";
    if diff.ratio() < 0.5 {
        // Mostly different: mark the whole values rather than scattered letters.
        let _ = write!(left, "{DEL}{}{END}", escaped(o));
        let _ = write!(right, "{INS}{}{END}", escaped(n));
    } else {
        // Runs of the same kind share one escape sequence.
        let mut runs: Vec<(similar::ChangeTag, String)> = Vec::new();
        for change in diff.iter_all_changes() {
            match runs.last_mut() {
                Some((tag, text)) if *tag == change.tag() => text.push_str(change.value()),
                _ => runs.push((change.tag(), change.value().to_string())),
            }
        }
        for (tag, text) in runs {
            match tag {
                similar::ChangeTag::Equal => {
                    left.push_str(&escaped(&text));
                    right.push_str(&escaped(&text));
                }
                similar::ChangeTag::Delete => {
                    let _ = write!(left, "{DEL}{}{END}", escaped(&text));
                }
                similar::ChangeTag::Insert => {
                    let _ = write!(right, "{INS}{}{END}", escaped(&text));
                }
            }
        }
    }
    left.push('"');
    right.push('"');
    format!("{left} → {right}")
}

/// The journal as an admin reads it, oldest first.
pub fn history_text(rows: &[crate::store::JournalRow], color: bool) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("No changes recorded for this filter.\n");
    }
    for r in rows {
        let outcome = match (r.outcome.as_str(), color) {
            ("applied", true) => "\x1b[32mapplied\x1b[0m".to_string(),
            ("failed", true) => "\x1b[31mfailed\x1b[0m".to_string(),
            (o, _) => o.to_string(),
        };
        let _ = writeln!(
            out,
            "{}  pass {}  {}  {}  {}: {}  {} [{}]",
            r.time,
            r.pass_id,
            r.direction,
            r.user_email,
            r.attribute,
            inline_diff(r.old.as_deref(), r.new.as_deref(), color),
            outcome,
            r.rule.as_str()
        );
        if r.rule == crate::reconcile::Rule::Import
            && r.attribute == "login"
            && r.outcome == crate::store::Outcome::Applied
            && let Some(id) = &r.okta_id
        {
            let _ = writeln!(out, "    imported as Okta user {id}");
        }
        let noteworthy = r.outcome != crate::store::Outcome::Applied || r.error_code.is_some();
        if noteworthy && let Some(expl) = &r.explanation {
            {
                let code = r
                    .error_code
                    .as_deref()
                    .map(|c| format!("{c}: "))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {code}{expl}");
            }
        }
    }
    out
}

/// One journal row as a JSON object (one per line in `history --json`).
pub fn history_json(r: &crate::store::JournalRow) -> Value {
    json!({
        "time": r.time,
        "pass": r.pass_id,
        "direction": r.direction,
        "system": r.system.as_str(),
        "user": r.user_email,
        "attribute": r.attribute,
        "field": r.field,
        "old": r.old,
        "new": r.new,
        "rule": r.rule.as_str(),
        "outcome": r.outcome.as_str(),
        "error_code": r.error_code,
        "explanation": r.explanation,
        "okta_id": r.okta_id,
        "extension_id": r.ext_id,
    })
}

fn duration(start: &str, end: Option<&str>) -> String {
    match (
        chrono::DateTime::parse_from_rfc3339(start),
        end.map(chrono::DateTime::parse_from_rfc3339),
    ) {
        (Ok(s), Some(Ok(e))) => format!("{:.1}s", (e - s).num_milliseconds() as f64 / 1000.0),
        _ => "unfinished".into(),
    }
}

/// What `status` prints: the store, recent passes, a held pass, failing users, credentials.
/// Each change-event channel: as the running daemon last wrote it, or off by configuration.
fn status_events(
    out: &mut String,
    config: &crate::config::Config,
    store: &crate::store::Store,
) -> Result<(), crate::store::Error> {
    use crate::store::state::Channel;
    let _ = writeln!(out, "\nChange events:");
    let okta = match config.events.okta_poll {
        None => "off (events.okta_poll_seconds = 0)".to_string(),
        Some(every) => format!(
            "System Log polled every {} s: {}",
            every.as_secs(),
            store
                .channel_line(Channel::Okta)?
                .map(|l| printable(&l))
                .unwrap_or_else(|| "not started (the daemon, `run`, polls)".into())
        ),
    };
    let telus = match config.events.telus_websocket {
        false => "off (events.telus = \"off\")".to_string(),
        true => format!(
            "WebSocket notifications: {}",
            store
                .channel_line(Channel::Telus)?
                .map(|l| printable(&l))
                .unwrap_or_else(|| "not started (the daemon, `run`, listens)".into())
        ),
    };
    let _ = writeln!(out, "  Okta:  {okta}\n  TELUS: {telus}");
    Ok(())
}

/// The days a store may go without a backup before `status` and `check-config` say so.
pub const BACKUP_WARNING_DAYS: i64 = 7;

/// Says when the store was never backed up and its first pass is older than a week. The
/// store is opened read-only, and not at all when another user owns it (README step 2 runs
/// `check-config` as root: that is not the service's store to judge). Off with
/// `store.backup_warning = false`.
pub fn backup_warning(
    config: &crate::config::Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    if !config.backup_warning {
        return None;
    }
    let meta = std::fs::metadata(&config.store_path).ok()?;
    if meta.uid() != crate::store::files::effective_uid() {
        return None;
    }
    let state = crate::store::Store::backup_state_read_only(&config.store_path)
        .ok()
        .flatten()?;
    backup_advice(&config.store_path, &state, now)
}

/// The backup warning for a store in `state`, if one is due. Pure.
pub fn backup_advice(
    path: &std::path::Path,
    state: &crate::store::BackupState,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    if state.last_backup.is_some() {
        return None;
    }
    let first = chrono::DateTime::parse_from_rfc3339(state.first_pass.as_deref()?).ok()?;
    let days = now.signed_duration_since(first).num_days();
    (days >= BACKUP_WARNING_DAYS).then(|| {
        format!(
            "the store {} has never been backed up and holds {days} days of links, baselines and journal: `okta-telus-sync backup PATH` copies it safely beside the daemon (README: Backups); `store.backup_warning = false` turns this warning off",
            path.display()
        )
    })
}

pub fn status_text(
    config: &crate::config::Config,
    store: &crate::store::Store,
) -> Result<String, crate::store::Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Store: {} ({} KiB, schema v{})",
        config.store_path.display(),
        store.size_bytes()?.div_ceil(1024),
        store.schema_version()?
    );
    if let Some(w) = backup_warning(config, chrono::Utc::now()) {
        let _ = writeln!(out, "WARNING: {w}");
    }
    status_passes(&mut out, &store.recent_passes(10)?);
    status_events(&mut out, config, store)?;
    status_known(&mut out, store)?;
    status_cutover_and_imports(&mut out, config, store)?;
    let failures = store.failures()?;
    let (quarantined, backing_off): (Vec<_>, Vec<_>) = failures.iter().partition(|f| f.quarantined);
    if !quarantined.is_empty() {
        let _ = writeln!(
            out,
            "\nQuarantined users (release with `sync --retry-quarantined`, or fix their data):"
        );
        for f in quarantined {
            let _ = writeln!(
                out,
                "  {}  {} failed passes, last {}: {} {}",
                printable(&f.email),
                f.consecutive,
                f.last_failed_at,
                printable(f.last_code.as_deref().unwrap_or("")),
                printable(f.last_error.as_deref().unwrap_or(""))
            );
        }
    }
    if !backing_off.is_empty() {
        let _ = writeln!(out, "\nUsers retried with backoff:");
        for f in backing_off {
            let _ = writeln!(
                out,
                "  {}  {} failed pass(es), next retry after {}: {} {}",
                printable(&f.email),
                f.consecutive,
                f.next_retry_at,
                printable(f.last_code.as_deref().unwrap_or("")),
                printable(f.last_error.as_deref().unwrap_or(""))
            );
        }
    }
    let unfinished = store.unfinished_count()?;
    if unfinished > 0 {
        let _ = writeln!(
            out,
            "\n{unfinished} change(s) are not confirmed yet (a stopped run, a lost answer, or a bulk update TELUS is still applying); the next pass settles them, polling their bulk task first or against a fresh read."
        );
    }
    let _ = match crate::apply::bulk_refusal(store) {
        Some(r) => writeln!(
            out,
            "\nTELUS bulk updates: refused by this account ({}); updates go one per user (40 a minute) until {}, when bulk is tried again.",
            printable(&r.reason),
            r.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => writeln!(
            out,
            "\nTELUS bulk updates: in use (500 users a request), unless the account refuses them."
        ),
    };
    status_session(&mut out, config, store.credentials("telus")?);
    Ok(out)
}

/// Where the stored links came from, when any came from elsewhere than a pass's matching
/// (`init --links`, `import link`): one line, for `plan` and `status`.
pub fn link_origins_text(store: &crate::store::Store) -> Result<String, crate::store::Error> {
    let origins = store.link_origins()?;
    if !origins.iter().any(|(o, _)| o.is_some()) {
        return Ok(String::new());
    }
    Ok(format!(
        "\nLinks: {}.\n",
        origins
            .iter()
            .map(|(o, n)| format!(
                "{n} {}",
                o.as_deref()
                    .map(|o| format!("from {o}"))
                    .unwrap_or_else(|| "matched by passes".into())
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The built-in app still pushing, where links came from, the import queue.
fn status_cutover_and_imports(
    out: &mut String,
    config: &crate::config::Config,
    store: &crate::store::Store,
) -> Result<(), crate::store::Error> {
    if let Some((pushing, at)) = store.builtin_app_pushing()?
        && !pushing.is_empty()
    {
        let _ = writeln!(
            out,
            "\nWARNING: Okta's built-in TELUS app ({}) still has {} on (as of {at}): two writers fight over the same users. Turn its provisioning features off.",
            config.okta.app_id.as_deref().unwrap_or("okta.app_id"),
            pushing.join(", ")
        );
    }
    if config.safety.reviewed_only {
        let _ = match store.pending_review()? {
            Some((at, n)) => writeln!(
                out,
                "\nReviewed changes only (safety.reviewed_only): passes plan, only `sync --plan FILE` writes. Pending review: {n} change(s), as the last whole pass planned at {at}; save them with `plan --out FILE`."
            ),
            None => writeln!(
                out,
                "\nReviewed changes only (safety.reviewed_only): passes plan, only `sync --plan FILE` writes. No whole pass has planned yet."
            ),
        };
    }
    out.push_str(&link_origins_text(store)?);
    let (queue, at) = store.import_queue()?;
    if !queue.is_empty() {
        let counts = crate::reconcile::import::counts(&queue);
        let _ = writeln!(
            out,
            "\nImport queue: {} TELUS user(s) with no Okta match ({}), as of {}; see `import list`.",
            queue.len(),
            counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(o, n)| format!("{n} {o}"))
                .collect::<Vec<_>>()
                .join(", "),
            at.as_deref().unwrap_or("never")
        );
    }
    Ok(())
}

/// What is known not to be writable: Okta's per-user refusals and data problems.
fn status_known(out: &mut String, store: &crate::store::Store) -> Result<(), crate::store::Error> {
    let refusals = store.okta_refusals()?;
    if !refusals.is_empty() {
        let _ = writeln!(
            out,
            "\nKnown refusals: Okta refuses these attributes for these users (their profile source masters them); not sent again until the user's Okta record or the attribute's master changes:"
        );
        for k in &refusals {
            let _ = writeln!(
                out,
                "  {}  {} (profile source {}, master {})",
                printable(&k.email),
                k.attr,
                printable(k.provider.as_deref().unwrap_or("unknown")),
                k.master
            );
        }
    }
    if !refusals.is_empty()
        && store
            .builtin_app_pushing()?
            .is_some_and(|(p, _)| p.iter().any(|f| f == "PROFILE_MASTERING"))
    {
        let _ = writeln!(
            out,
            "  The built-in TELUS app is still a profile source (PROFILE_MASTERING on): Okta's docs say that turning its provisioning off makes the users it sources Okta-sourced, after which these attributes take this tool's writes."
        );
    }
    let data = store.data_problems()?;
    if !data.is_empty() {
        let _ = writeln!(
            out,
            "\nData problems: values that cannot be written until fixed at their source; not sent (and not failing passes) while unchanged, tried again when the value changes on either side or with `sync --retry-quarantined`:"
        );
        for d in &data {
            let _ = writeln!(
                out,
                "  {}  {} → {}: {} {} (since {})",
                printable(&d.email),
                d.attr,
                d.system.as_str(),
                printable(&d.code),
                printable(&d.explanation),
                d.since
            );
        }
    }
    Ok(())
}

/// The last passes, and the hold of the last one.
fn status_passes(out: &mut String, passes: &[crate::store::PassRow]) {
    if passes.is_empty() {
        let _ = writeln!(out, "\nNo passes yet: run `sync --dry-run`, then `sync`.");
    } else {
        let _ = writeln!(out, "\nLast passes (newest first):");
        for p in passes {
            let s = &p.summary;
            let _ = writeln!(
                out,
                "  #{:<5} {:<5} {}  {:>9}  {:<13} read {}/{}  planned {} applied {} failed {}  users failed {}",
                p.id,
                p.kind.as_str(),
                p.started_at,
                duration(&p.started_at, p.finished_at.as_deref()),
                s.outcome.map_or("unfinished", PassOutcome::as_str),
                s.okta_read,
                s.telus_read,
                s.planned,
                s.applied,
                s.failed,
                s.failed_users
            );
        }
        if let Some(last) = passes.first()
            && last.summary.outcome == Some(PassOutcome::Held)
        {
            let _ = writeln!(
                out,
                "\nHELD: the last pass wrote nothing: {}\n  Review with `plan`, then run `sync --approve` to proceed once.",
                printable(last.summary.message.as_deref().unwrap_or("a safety limit"))
            );
        }
    }
}

/// The TELUS session: how it renews, and whether it can lapse.
fn status_session(
    out: &mut String,
    config: &crate::config::Config,
    stored: Option<crate::model::TokenPair>,
) {
    let a = session_assessment(config, stored.as_ref());
    let _ = writeln!(out, "\n{}", a.line);
}

/// The TELUS session as of now, against the next scheduled pass.
pub fn session_assessment(
    config: &crate::config::Config,
    stored: Option<&crate::model::TokenPair>,
) -> crate::telus::session::Assessment {
    let now = chrono::Utc::now();
    crate::telus::session::assess(
        now.timestamp(),
        config.telus.jwt.as_ref(),
        stored,
        config.schedule.next_pass_after(now),
    )
}

/// The plan's import queue without the candidates it imports.
fn still_queued(plan: &Plan) -> Vec<crate::reconcile::import::Candidate> {
    let importing: std::collections::HashSet<&crate::model::ExtId> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, Action::Import { .. }))
        .filter_map(|a| a.user.ext_id.as_ref())
        .collect();
    plan.imports
        .iter()
        .filter(|c| !importing.contains(&c.ext_id))
        .cloned()
        .collect()
}

/// The import queue as a table: each candidate's email, outcome, extension, name and what
/// to do; with its counts, and when it was computed when known.
pub fn imports_text(queue: &[crate::reconcile::import::Candidate], at: Option<&str>) -> String {
    let mut out = String::new();
    let counts = crate::reconcile::import::counts(queue);
    let _ = writeln!(
        out,
        "Import queue: {} TELUS user(s) with no Okta match: {}{}",
        queue.len(),
        counts
            .iter()
            .map(|(o, n)| format!("{n} {o}"))
            .collect::<Vec<_>>()
            .join(", "),
        at.map(|a| format!(" (computed {a})")).unwrap_or_default()
    );
    for c in queue {
        let name = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            out,
            "  {:<32} {:<9} extension {:<8} {}\n      {}",
            printable(&c.email),
            c.outcome.as_str(),
            c.ext_id,
            printable(&name),
            printable(&c.outcome.detail())
        );
    }
    if counts[0].1 > 0 {
        let _ = writeln!(
            out,
            "Create the `new` ones in Okta (STAGED: no email is sent) with `import confirm EMAIL...` or `import confirm --all-new`; `import ignore EMAIL...` never proposes one again."
        );
    }
    out
}

/// The import queue as JSON: one object per candidate.
pub fn imports_json(queue: &[crate::reconcile::import::Candidate]) -> Value {
    Value::Array(
        queue
            .iter()
            .map(|c| {
                json!({
                    "email": c.email,
                    "extension_id": c.ext_id.0,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "outcome": c.outcome.as_str(),
                    "okta_id": c.outcome.okta_id().map(|i| i.0.clone()),
                    "detail": c.outcome.detail(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_store_never_backed_up_is_warned_about_after_a_week() {
        use crate::store::BackupState;
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-10T00:00:00Z")
            .unwrap()
            .to_utc();
        let path = std::path::Path::new("/var/lib/okta-telus-sync/state.db");
        let state = |backup: Option<&str>, first: Option<&str>| BackupState {
            last_backup: backup.map(str::to_string),
            first_pass: first.map(str::to_string),
        };
        let warned = super::backup_advice(path, &state(None, Some("2026-12-01T00:00:00Z")), now);
        assert!(warned.is_some_and(|w| w.contains("9 days") && w.contains("backup PATH")));
        for quiet in [
            state(Some("2026-12-02T00:00:00Z"), Some("2026-11-01T00:00:00Z")),
            state(None, Some("2026-12-05T00:00:00Z")),
            state(None, None),
        ] {
            assert_eq!(super::backup_advice(path, &quiet, now), None, "{quiet:?}");
        }
    }

    use super::*;

    /// A value an end user typed with terminal escapes never reaches the terminal raw, in
    /// colour or not.
    #[test]
    fn history_escapes_control_characters_on_a_terminal() {
        let evil = "Sales\u{1b}[2J\u{1b}]0;pwned\u{7}";
        for color in [true, false] {
            for old in [Some("Sales"), Some("x"), None] {
                let text = inline_diff(old, Some(evil), color);
                let raw: Vec<char> = text.chars().filter(|c| c.is_control()).collect();
                // Only our own colour codes (ESC [ ... m) may be there.
                let ours = text.matches("\x1b[").count();
                assert!(
                    raw.iter().filter(|c| **c == '\u{1b}').count() <= ours
                        && !text.contains("\u{1b}[2J")
                        && !text.contains('\u{7}'),
                    "{text:?}"
                );
            }
        }
    }

    /// Server and user text in `status` (a failure's code and message, an email) reaches the
    /// terminal with its control characters escaped.
    #[test]
    fn status_escapes_server_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = crate::store::Store::open(&path).unwrap();
        store
            .put_failure(&crate::reconcile::retry::FailureRow {
                user_key: "00u1".into(),
                email: "ana\u{1b}]0;x\u{7}@example.com".into(),
                consecutive: 1,
                last_code: Some("CMN-\u{1b}[2J".into()),
                last_error: Some("bad\u{1b}[31m".into()),
                last_failed_at: "2026-12-01T00:00:00Z".into(),
                next_retry_at: "2026-12-01T00:05:00Z".into(),
                quarantined: false,
                data_hash: String::new(),
            })
            .unwrap();
        let config = crate::sandbox::config_for(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            crate::sandbox::Sandbox::demo_policy(),
            &path,
        );
        let text = status_text(&config, &store).unwrap();
        assert!(text.contains("CMN-\\u{1b}[2J"), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
    }

    #[test]
    fn an_absurd_since_is_an_error_not_a_panic() {
        let now = chrono::Utc::now();
        assert!(parse_since("99999999999999d", now).is_err());
        assert!(parse_since("9223372036854775807w", now).is_err());
        assert!(parse_since("7d", now).is_ok());
    }
    use crate::store::JournalRow;

    fn row(
        id: i64,
        user: &str,
        attr: &str,
        old: Option<&str>,
        new: Option<&str>,
        outcome: &str,
    ) -> JournalRow {
        JournalRow {
            id,
            pass_id: 3,
            time: format!("2026-11-26T10:00:0{id}.000Z"),
            direction: "okta->telus".into(),
            system: crate::model::System::Telus,
            okta_id: Some("00u1".into()),
            ext_id: Some("62001".into()),
            user_email: user.into(),
            attribute: attr.into(),
            field: format!("contact.{attr}"),
            old: old.map(str::to_string),
            new: new.map(str::to_string),
            rule: crate::reconcile::Rule::Master,
            outcome: crate::store::Outcome::parse(outcome).unwrap(),
            error_code: (outcome == "failed").then(|| "CMN-101".to_string()),
            explanation: (outcome == "failed").then(|| {
                "The [contact.email] is invalid. Please correct the value in Okta/Active Directory."
                    .to_string()
            }),
        }
    }

    fn rows() -> Vec<JournalRow> {
        vec![
            row(
                1,
                "ana.silva@northwind.ca",
                "department",
                Some("Sales"),
                Some("Marketing"),
                "applied",
            ),
            row(
                2,
                "ana.silva@northwind.ca",
                "mobilePhone",
                None,
                Some("+16045550101"),
                "applied",
            ),
            row(
                3,
                "bad@northwind",
                "email",
                Some("bad@northwind.ca"),
                Some("bad@northwind"),
                "failed",
            ),
        ]
    }

    #[test]
    fn history_text_plain() {
        insta::assert_snapshot!(history_text(&rows(), false));
    }

    #[test]
    fn history_text_coloured_marks_changed_characters() {
        let mut close = rows();
        close[1] = row(
            2,
            "ana.silva@northwind.ca",
            "city",
            Some("St John's"),
            Some("St. John's"),
            "applied",
        );
        let text = history_text(&close[..2], true);
        insta::assert_snapshot!(text.replace('\x1b', "<ESC>"));
    }

    #[test]
    fn history_json_lines() {
        let lines: Vec<String> = rows().iter().map(|r| history_json(r).to_string()).collect();
        insta::assert_snapshot!(lines.join("\n"));
        let v = history_json(&rows()[2]);
        for key in [
            "time",
            "pass",
            "direction",
            "system",
            "user",
            "attribute",
            "old",
            "new",
            "outcome",
            "error_code",
            "explanation",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn since_accepts_times_dates_and_ages() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_since("7d", now).unwrap(), "2026-11-19T12:00:00.000Z");
        assert_eq!(parse_since("90m", now).unwrap(), "2026-11-26T10:30:00.000Z");
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            "2026-11-01T00:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-25T08:00:00-05:00", now).unwrap(),
            "2026-11-25T13:00:00.000Z"
        );
        assert!(parse_since("last tuesday", now).is_err());
        assert!(parse_since("7y", now).is_err());
    }
}
