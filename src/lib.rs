//! okta-telus-sync: keeps Okta and TELUS Business Connect in agreement, attribute by attribute.
//! Modules in reading order: model, reconcile (pure core), config, the two API clients, store,
//! apply, summary (what a pass did), daemon, report, schema, sandbox, telemetry.

pub mod apply;
pub mod config;
pub mod daemon;
pub mod http;
pub mod model;
pub mod okta;
pub mod reconcile;
pub mod report;
pub mod sandbox;
pub mod schema;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod telus;
