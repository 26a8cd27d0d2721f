//! Okta: the only module that knows Okta's URLs, headers, JSON and paging.

mod client;
mod wire;

pub use client::{BUCKETS, Client, Counters, Error, PAGE_LIMIT, REFUSED_MASTERED, decode_users};
pub use wire::next_link;
