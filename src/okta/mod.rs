//! Okta: the only module that knows Okta's URLs, headers, JSON and paging.

mod apps;
mod client;
mod import;
mod logs;
mod own;
mod wire;

pub use client::{BUCKETS, Client, Counters, Error, PAGE_LIMIT, REFUSED_MASTERED, decode_users};
pub use import::CreateInto;
pub use logs::{LOG_FILTER, LogCursor, LogEvent, LogPoll};
pub use wire::next_link;
