//! TELUS Business Connect (the RingCentral platform API): the only module that knows
//! RingCentral's URLs, headers, JSON and paging.

pub mod auth;
mod client;
pub mod events;
pub mod pacing;
mod wire;

pub use client::{
    BULK_MAX, BulkRecord, BulkTask, Client, Counters, Error, PER_PAGE, REFRESH_WARN, TaskStatus,
    decode_directory_page, decode_extension_page, explain,
};
