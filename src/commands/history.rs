//! `history`: the journal of changes, old → new, as text with a diff or as JSON lines.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::{report, store};

/// `history`'s filters.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Only changes since WHEN: an RFC 3339 time, a date (2026-11-01), or an age (7d, 12h, 30m).
    #[arg(long)]
    since: Option<String>,
    /// Only this user's changes (email, case-insensitive).
    #[arg(long)]
    user: Option<String>,
    /// Only this attribute (the Okta attribute name, or `status`).
    #[arg(long)]
    attribute: Option<String>,
    /// Only the changes a saved plan applied or skipped (`sync --plan`): its plan id.
    #[arg(long, value_name = "PLAN_ID")]
    plan: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(path: &std::path::Path, args: HistoryArgs) -> anyhow::Result<Exit> {
    let HistoryArgs {
        since,
        user,
        attribute,
        plan,
        json,
    } = args;
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let since = match since.map(|s| report::parse_since(&s, chrono::Utc::now())) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("error: --since: {e}");
            return Ok(Exit::Config);
        }
    };
    let store = open_store(&config)?;
    let rows = store.history(&store::HistoryFilter {
        since,
        user_email: user,
        attribute,
        plan_id: plan,
    })?;
    use std::io::{IsTerminal as _, Write as _};
    let mut out = std::io::stdout().lock();
    if json {
        for r in &rows {
            writeln!(out, "{}", report::history_json(r))?;
        }
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        write!(out, "{}", report::history_text(&rows, color))?;
    }
    Ok(Exit::Ok)
}
