//! The rent-roll CSV parser: never panics; an accepted file has lines, and
//! every rejected one names at least one error.
#![no_main]

use casapay_recon::rent_roll;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| match rent_roll::parse(data) {
    Ok(roll) => assert!(!roll.lines.is_empty()),
    Err(errors) => assert!(!errors.0.is_empty()),
});
