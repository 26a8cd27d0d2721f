//! okta-telus-sync: keeps Okta and TELUS Business Connect in agreement, attribute by attribute.
//! The modules, declared in reading order: model, reconcile (the pure core), config, http and
//! the two API clients (okta, telus), store, apply, summary (what a pass did), clients, pass
//! (the one pass driver), plan_file (saved plans), daemon (a queue of pass requests), report, schema, init (the
//! config from Okta's built-in TELUS app), sandbox,
//! telemetry.

pub mod apply;
pub mod clients;
pub mod config;
pub mod daemon;
pub mod http;
pub mod init;
pub mod model;
pub mod okta;
pub mod pass;
pub mod plan_file;
pub mod reconcile;
pub mod report;
pub mod sandbox;
pub mod schema;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod telus;
