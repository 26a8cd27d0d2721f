//! `check-config` without `--connect`: validates sync.toml and says what it found.

use super::load_config;
use crate::Exit;

pub fn run(path: &std::path::Path) -> anyhow::Result<Exit> {
    match load_config(path) {
        Ok(c) => {
            for w in &c.warnings {
                println!("warning: {w}");
            }
            if let Some(w) = okta_telus_sync::report::backup_warning(&c, chrono::Utc::now()) {
                println!("warning: {w}");
            }
            println!(
                "{}: ok ({} attribute rows, store {}, okta {}, telus {})",
                path.display(),
                c.policy.rules.len(),
                c.store_path.display(),
                c.okta.url,
                c.telus.url
            );
            Ok(Exit::Ok)
        }
        Err(code) => Ok(code),
    }
}
