//! The CasaPay-Signature header parser and verifier: the first line of the
//! input is the header, the rest the body. It must never panic, and a header
//! it accepts must carry a real signature of that body.
#![no_main]

use casapay_recon::domain::Secret;
use casapay_recon::casapay::signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, body) = data.split_at(split);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let secrets = [Secret::new("whsec_fuzz"), Secret::new("whsec_other")];
    if signature::verify(Some(header), body, &secrets, 1_709_251_260, 300).is_ok() {
        // Only a header with a correct v1 for one of the secrets can pass.
        let t: i64 = header
            .split(',')
            .find_map(|p| p.trim().strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .expect("an accepted header has a timestamp");
        let expected: Vec<String> = secrets.iter().map(|s| signature::sign(s, t, body)).collect();
        assert!(expected.iter().any(|e| header.contains(e.split(",v1=").nth(1).unwrap())));
    }
});
