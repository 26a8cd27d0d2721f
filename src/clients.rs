//! Both API clients built from the config and the store: the TELUS session and rate-limit
//! penalties a run left, and the pacing (budgets, buckets) saved and restored between
//! processes through the store's typed state.

use crate::config::Config;
use crate::http::HttpSettings;
use crate::store::Store;
use crate::store::state::SavedBucket;
use crate::{okta, telus};

/// Both API clients, kept across passes so tokens and rate-limit state carry over.
pub struct Clients {
    /// Shared with the event channels: the Okta poller recognises this client's own writes;
    /// the WebSocket listener shares the TELUS token and pacing.
    pub okta: std::sync::Arc<okta::Client>,
    pub telus: std::sync::Arc<telus::Client>,
}

impl Clients {
    /// Clients that keep nothing across runs (tests, the sandbox's first look).
    pub fn new(config: &Config, settings: HttpSettings) -> Clients {
        Clients {
            okta: std::sync::Arc::new(okta::Client::new(&config.okta, settings)),
            telus: std::sync::Arc::new(telus::Client::new(&config.telus, settings)),
        }
    }

    /// Clients resuming from the store: the TELUS session from `auth telus` and rate-limit
    /// penalties still running; rotated tokens and new penalties are written back to it.
    pub fn from_store(
        config: &Config,
        settings: HttpSettings,
        store: &Store,
    ) -> anyhow::Result<Clients> {
        let mut restored = telus::auth::Restored {
            tokens: store.credentials("telus")?,
            penalties: Vec::new(),
        };
        for group in telus::pacing::RateGroup::ALL.map(|g| g.as_str()) {
            if let Some(until) = store.telus_penalty(group)? {
                restored.penalties.push((group.to_string(), until));
            }
        }
        Ok(Clients {
            okta: std::sync::Arc::new(okta::Client::new(&config.okta, settings)),
            telus: std::sync::Arc::new(telus::Client::with_persistence(
                &config.telus,
                settings,
                restored,
                Box::new(StorePersist {
                    path: config.store_path.clone(),
                }),
            )),
        })
    }
}

impl Clients {
    /// Takes up the TELUS rate-limit budgets and penalties, and the Okta buckets (what is
    /// left until the reset), that another process left in the store, where they are
    /// stricter than what this process knows.
    pub fn restore_pacing(&self, store: &Store) {
        let mut saved = Vec::new();
        for group in telus::pacing::RateGroup::ALL.map(|g| g.as_str()) {
            let budget = store.telus_budget(group).ok().flatten();
            let penalty = store
                .telus_penalty(group)
                .ok()
                .flatten()
                .map(|until| (0u64, until));
            saved.extend(
                budget
                    .into_iter()
                    .chain(penalty)
                    .map(|(r, u)| (group, r, u)),
            );
        }
        self.telus.merge_pacing(&saved);
        let mut saved = Vec::new();
        for bucket in okta::BUCKETS {
            if let Some(b) = store.okta_bucket(bucket).ok().flatten() {
                saved.push((bucket, b.remaining, b.limit, b.reset));
            }
        }
        self.okta.merge_pacing(&saved);
    }

    /// Leaves this process's TELUS budgets and Okta buckets (what is left, and when each
    /// window ends) in the store, so that the next process, or an admin's command beside the daemon, paces from
    /// them instead of from a full budget.
    pub fn save_pacing(&self, store: &Store) {
        for (group, remaining, until_ms) in self.telus.pacing() {
            if let Err(e) = store.save_telus_budget(group, remaining, until_ms) {
                tracing::warn!(group, error = %e, "cannot save the rate-limit budget");
            }
        }
        for (bucket, remaining, limit, reset) in self.okta.pacing() {
            let saved = SavedBucket {
                remaining,
                limit,
                reset,
            };
            if let Err(e) = store.save_okta_bucket(bucket, saved) {
                tracing::warn!(bucket, error = %e, "cannot save the rate-limit budget");
            }
        }
    }
}

/// Persists TELUS client state through its own connection to the store file.
struct StorePersist {
    path: std::path::PathBuf,
}

impl telus::auth::Persist for StorePersist {
    fn save_tokens(&self, tokens: &crate::model::TokenPair) -> Result<(), String> {
        Store::open(&self.path)
            .and_then(|s| s.save_credentials("telus", tokens))
            .map_err(|e| e.to_string())
    }

    fn load_tokens(&self) -> Result<Option<crate::model::TokenPair>, String> {
        Store::open(&self.path)
            .and_then(|s| s.credentials("telus"))
            .map_err(|e| e.to_string())
    }

    fn try_lock_refresh(&self) -> Result<Option<Box<dyn Send>>, String> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".token");
        match crate::store::lock::PassLock::try_acquire(std::path::Path::new(&name)) {
            Ok(Ok(lock)) => Ok(Some(Box::new(lock))),
            Ok(Err(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn load_penalty(&self, group: &str) -> Result<Option<i64>, String> {
        Store::open(&self.path)
            .and_then(|s| s.telus_penalty(group))
            .map_err(|e| e.to_string())
    }

    fn save_penalty(&self, group: &str, until_epoch_ms: i64) -> Result<(), String> {
        Store::open(&self.path)
            .and_then(|s| s.save_telus_penalty(group, until_epoch_ms))
            .map_err(|e| e.to_string())
    }
}
