//! Fuzzes the Link header parser, as one header and as several (one per line).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = okta_telus_sync::okta::next_link([text]);
        let _ = okta_telus_sync::okta::next_link(text.lines());
    }
});
