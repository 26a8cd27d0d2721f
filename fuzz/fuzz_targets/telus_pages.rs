//! Fuzzes the RingCentral extension and phone-number page decoders.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = okta_telus_sync::telus::decode_extension_page(data);
    let _ = okta_telus_sync::telus::decode_directory_page(data);
});
