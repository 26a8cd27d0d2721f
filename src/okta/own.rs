//! The request ids of a client's own writes (`X-Okta-Request-Id`), so that the System Log
//! poller can tell this tool's writes (its echoes) from anyone else's.

use std::collections::{HashSet, VecDeque};

/// How many of its own writes' request ids a client remembers (a bulk onboarding's worth).
const KEPT: usize = 200_000;

/// Request ids of a client's own writes, oldest first, with a set to look them up.
#[derive(Debug, Default)]
pub struct OwnRequests {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl OwnRequests {
    /// Remembers one id, forgetting the oldest past `KEPT`.
    pub fn remember(&mut self, id: &str) {
        if self.order.len() >= KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}
