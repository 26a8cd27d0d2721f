//! Fuzzes the sync.toml parser and validator: any text gives a Config or key-named problems,
//! and no problem ever echoes a secret the file holds.
#![no_main]
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-secret-5f1c9e";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = okta_telus_sync::config::from_toml_str(
            text,
            Vec::new(),
            std::path::Path::new("/nonexistent"),
        );
        // The same text after a line holding a secret: whatever breaks, the secret is never
        // in a problem's message.
        let with_secret = format!("[telus]\nclient_secret = \"{SECRET}\" {text}");
        if let Err(problems) = okta_telus_sync::config::from_toml_str(
            &with_secret,
            Vec::new(),
            std::path::Path::new("/nonexistent"),
        ) {
            for p in problems {
                assert!(!p.to_string().contains(SECRET), "{p}");
            }
        }
    }
});
