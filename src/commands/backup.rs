//! `backup PATH`: a consistent copy of the store (SQLite's online backup API), safe beside a
//! running daemon, written 0600.

use super::{load_config, open_store};
use crate::Exit;

pub fn run(path: &std::path::Path, dest: &std::path::Path) -> anyhow::Result<Exit> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = open_store(&config)?;
    match store.backup_to(dest) {
        Ok(()) => {
            let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
            println!(
                "Backed up {} to {} ({} KiB, mode 0600, integrity check ok).",
                config.store_path.display(),
                dest.display(),
                size.div_ceil(1024)
            );
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: backup to {}: {e}", dest.display());
            Ok(Exit::Config)
        }
    }
}
