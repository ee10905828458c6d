//! Event JSON → domain types: never panics; an accepted event keeps its body.
#![no_main]

use casapay_recon::casapay::event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = event::parse(data) {
        assert_eq!(event.body.as_bytes(), data);
        assert!(!event.id.is_empty());
    }
});
