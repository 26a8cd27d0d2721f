//! okta-telus-sync: keeps Okta and TELUS Business Connect in agreement, attribute by attribute.
//! Modules in reading order: model, reconcile (pure core), config, the two API clients, store,
//! apply, daemon, sandbox.

pub mod model;
pub mod reconcile;
pub mod config;
pub mod http;
pub mod okta;
pub mod telus;
pub mod store;
