//! Fuzzes the Okta user-page decoder (plain and app-user shapes).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = okta_telus_sync::okta::decode_users(data, false);
    let _ = okta_telus_sync::okta::decode_users(data, true);
});
