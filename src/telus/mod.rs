//! TELUS Business Connect (the RingCentral platform API): the only module that knows
//! RingCentral's URLs, headers, JSON and paging.

pub mod auth;
mod bulk;
mod client;
mod directory;
mod error;
pub mod events;
pub mod pacing;
mod persist;
mod request;
pub mod session;
mod transport;
mod wire;
mod writes;

pub use bulk::{BULK_MAX, BulkRecord, BulkTask, TaskStatus};
pub use client::{Client, Counters};
pub use directory::{PER_PAGE, decode_directory_page, decode_extension_page};
pub use error::{Error, explain};
