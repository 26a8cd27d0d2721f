//! TELUS Business Connect (the RingCentral platform API): the only module that knows
//! RingCentral's URLs, headers, JSON and paging.

pub mod auth;
mod client;
pub mod pacing;
mod wire;

pub use client::{
    Client, Counters, Error, PER_PAGE, REFRESH_WARN, decode_extension_page, decode_number_page,
    explain,
};
