//! One module per command. Each loads the config itself (exit 2 naming the bad keys), does
//! its work through the library, prints, and answers the exit code.

pub mod auth;
pub mod check_config;
pub mod history;
pub mod run;
pub mod sandbox;
pub mod schema;
pub mod serve_fakes;
pub mod status;
pub mod sync;

use crate::Exit;
use anyhow::Context as _;
use okta_telus_sync::{config, store};

/// The config at `path`, or exit 2 after printing each problem with its key.
pub fn load_config(path: &std::path::Path) -> Result<config::Config, Exit> {
    let loaded = config::load(path);
    if let Ok(c) = &loaded {
        for w in &c.warnings {
            tracing::warn!(warning = %w, "configuration");
        }
    }
    loaded.map_err(|e| {
        match e {
            config::Error::Load { .. } => eprintln!("error: {e}"),
            config::Error::Invalid { path, problems } => {
                eprintln!("error: {} is invalid:", path.display());
                for p in problems {
                    eprintln!("  {p}");
                }
            }
        }
        Exit::Config
    })
}

pub fn open_store(config: &config::Config) -> anyhow::Result<store::Store> {
    store::Store::open(&config.store_path)
        .with_context(|| format!("opening store {}", config.store_path.display()))
}
