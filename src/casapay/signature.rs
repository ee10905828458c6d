//! `CasaPay-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, verified over the raw body.
//!
//! Pure: no clock, no I/O, so every test vector runs without a server.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::Secret;

pub const HEADER: &str = "CasaPay-Signature";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // The key is the whole secret string as UTF-8, `whsec_` prefix included.
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header CasaPay would send for `body` at `timestamp`.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing CasaPay-Signature header")]
    Missing,
    #[error("CasaPay-Signature header has no valid t= timestamp")]
    NoTimestamp,
    #[error("CasaPay-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("signature timestamp is {age} s from now, more than the {tolerance} s tolerance")]
    OutsideTolerance { age: i64, tolerance: u64 },
    #[error("no v1 signature matches a configured secret")]
    NoMatch,
}

/// The parts of a header that matter: its timestamp and the well-formed v1 tags.
#[derive(Debug)]
struct ParsedHeader {
    timestamp: i64,
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => {
                saw_v1 = true;
                // A tag that is not 64 hex digits can never match: drop it here.
                let mut tag = [0_u8; 32];
                if hex::decode_to_slice(value, &mut tag).is_ok() {
                    v1.push(tag);
                }
            }
            _ => {} // v0 and future schemes are ignored
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::NoTimestamp)?;
    if !saw_v1 {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(ParsedHeader { timestamp, v1 })
}

/// Checks `header` against `body` for any of `secrets`, at time `now` (unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Secret],
    now: i64,
    tolerance: u64,
) -> Result<(), SignatureError> {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;
    let age = now.saturating_sub(parsed.timestamp);
    if age.unsigned_abs() > tolerance {
        return Err(SignatureError::OutsideTolerance { age, tolerance });
    }
    // One HMAC per secret, then a constant-time compare against every tag:
    // the cost stays linear in the header size however many v1 entries it holds.
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret, parsed.timestamp, body).finalize().into_bytes();
        for tag in &parsed.v1 {
            matched |= expected.as_slice().ct_eq(tag);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn the_fuzz_seeds_reach_the_accept_branch() {
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/signature");
        let mut accepted = 0;
        for entry in std::fs::read_dir(seeds).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("accepted")
            {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let split = data.iter().position(|&b| b == b'\n').unwrap();
            let header = std::str::from_utf8(&data[..split]).unwrap();
            // The fuzz target's secret and clock.
            let secrets = [Secret::new("whsec_fuzz")];
            assert!(
                verify(
                    Some(header),
                    &data[split + 1..],
                    &secrets,
                    1_709_251_260,
                    300
                )
                .is_ok(),
                "{path:?}"
            );
            accepted += 1;
        }
        assert!(accepted >= 1);
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not() {
        let secret = Secret::new(SECRET);
        let header = sign(&secret, 1000, b"{}");
        assert_eq!(
            verify(
                Some(&header),
                b"{}",
                std::slice::from_ref(&secret),
                1000,
                300
            ),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), b"{ }", &[secret], 1000, 300),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn tolerance_is_two_sided() {
        let secret = Secret::new(SECRET);
        let header = sign(&secret, 1000, b"x");
        let secrets = [secret];
        assert!(verify(Some(&header), b"x", &secrets, 1300, 300).is_ok());
        assert!(verify(Some(&header), b"x", &secrets, 700, 300).is_ok());
        assert!(matches!(
            verify(Some(&header), b"x", &secrets, 1301, 300),
            Err(SignatureError::OutsideTolerance { age: 301, .. })
        ));
        assert!(matches!(
            verify(Some(&header), b"x", &secrets, 699, 300),
            Err(SignatureError::OutsideTolerance { age: -301, .. })
        ));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let secrets = [Secret::new(SECRET)];
        let header = format!("t={},v1={}", i64::MIN, "00".repeat(32));
        assert!(matches!(
            verify(Some(&header), b"x", &secrets, i64::MAX, 300),
            Err(SignatureError::OutsideTolerance { .. })
        ));
    }
}
