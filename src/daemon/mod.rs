//! The daemon shell around passes. For now: one pass at a time on demand (`pass`).

pub mod pass;
pub mod retry;
