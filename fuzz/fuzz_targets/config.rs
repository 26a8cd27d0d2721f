//! Fuzzes the sync.toml parser and validator: any text gives a Config or key-named problems.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = okta_telus_sync::config::from_toml_str(
            text,
            Vec::new(),
            std::path::Path::new("/nonexistent"),
        );
    }
});
