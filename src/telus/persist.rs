//! What the TELUS client persists through its owner (the store, in practice): the trait it
//! calls, and the state it resumes from.

use crate::model::TokenPair;

/// Where the client keeps what must survive a restart: the rotated token pair (written
/// before the new access token is used, since the old refresh token is spent) and rate-limit
/// penalties still running. Implemented over the store by the daemon.
pub trait Persist: Send + Sync {
    fn save_tokens(&self, tokens: &TokenPair) -> Result<(), String>;
    fn save_penalty(&self, group: &str, until_epoch_ms: i64) -> Result<(), String>;
    /// The pair as stored now: another process (the daemon, an admin's command) may have
    /// rotated it since this one loaded it.
    fn load_tokens(&self) -> Result<Option<TokenPair>, String>;
    /// Takes the lock that serializes token refreshes across processes, if it is free. The
    /// lock is held until the returned guard is dropped.
    fn try_lock_refresh(&self) -> Result<Option<Box<dyn Send>>, String>;
    /// A penalty another process on the store met (its end, ms since the epoch).
    fn load_penalty(&self, group: &str) -> Result<Option<i64>, String>;
}

/// State restored at start-up.
#[derive(Debug, Default, Clone)]
pub struct Restored {
    pub tokens: Option<TokenPair>,
    /// Rate-limit group → penalty end (ms since the epoch).
    pub penalties: Vec<(String, i64)>,
}
