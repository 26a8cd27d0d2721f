//! TELUS Business Connect (the RingCentral platform API): the only module that knows
//! RingCentral's URLs, headers, JSON and paging.

pub mod auth;
mod client;
pub mod events;
pub mod pacing;
pub mod session;
mod wire;

pub use client::{
    BULK_MAX, BulkRecord, BulkTask, Client, Counters, Error, PER_PAGE, TaskStatus,
    decode_directory_page, decode_extension_page, explain,
};
