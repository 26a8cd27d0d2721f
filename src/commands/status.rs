//! `status`: last passes, holds, quarantined users, known refusals, the TELUS session.

use super::{load_config, open_store};
use crate::Exit;
use okta_telus_sync::report;

pub fn run(path: &std::path::Path) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    print!("{}", report::status_text(&config, &store)?);
    Ok(Exit::Ok)
}
