//! Every vector of shared/vectors/signatures.json, through the verifier and through HTTP.

use base64::Engine;
use casapay_recon::casapay::signature;
use casapay_recon::domain::Clock;
use casapay_recon::domain::Secret;
use serde::Deserialize;

use crate::helpers::{expect_json, spawn_app_with};

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    secrets: Vec<String>,
    now: i64,
    tolerance: u64,
    header: String,
    body_base64: String,
    valid: bool,
}

fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/signatures.json");
    let text = std::fs::read_to_string(path).expect("the vectors file");
    let vectors: Vectors = serde_json::from_str(&text).expect("vectors parse");
    assert!(
        vectors.vectors.len() >= 20,
        "the vector file lost its vectors"
    );
    vectors.vectors
}

fn body(vector: &Vector) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(&vector.body_base64)
        .expect("base64 body")
}

#[test]
fn every_vector_through_the_verifier() {
    for vector in vectors() {
        let secrets: Vec<Secret> = vector.secrets.iter().cloned().map(Secret::new).collect();
        let result = signature::verify(
            Some(&vector.header),
            &body(&vector),
            &secrets,
            vector.now,
            vector.tolerance,
        );
        assert_eq!(result.is_ok(), vector.valid, "{}: {result:?}", vector.name);
    }
}

#[tokio::test]
async fn every_vector_through_http() {
    for vector in vectors() {
        let secrets: Vec<Secret> = vector.secrets.iter().cloned().map(Secret::new).collect();
        let tolerance = vector.tolerance;
        let now = jiff::Timestamp::from_second(vector.now).unwrap();
        let app = spawn_app_with(
            move |s| {
                s.webhook_secrets = Some(secrets);
                s.signature_tolerance = tolerance;
            },
            Clock::Fixed(now),
        )
        .await;
        let response = app
            .post_raw(body(&vector), Some(vector.header.clone()))
            .await;
        if vector.valid {
            let receipt = expect_json(response, 200).await;
            assert_eq!(receipt["received"], true, "{}", vector.name);
        } else {
            let error = expect_json(response, 400).await;
            assert_eq!(
                error["error"]["type"], "invalid_signature",
                "{}",
                vector.name
            );
            assert_eq!(
                app.count("SELECT count(*) FROM events"),
                0,
                "{}",
                vector.name
            );
        }
    }
}
