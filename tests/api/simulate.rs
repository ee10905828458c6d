//! The CasaPay simulator (SPEC §10): its API over real HTTP, and a month of
//! chaos played against the real service, checked against the truth.

use std::sync::{Arc, Mutex};

use casapay_recon::domain::{Clock, Period, Secret};
use casapay_recon::sim::{self, Chaos, MonthConfig, api, month, world::World};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, SECRET, TestApp, expect_json, spawn_app_with};
use crate::smtp::SmtpServer;

const KEY: &str = "sk_test_simulator";

fn simulated_api() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = api::serve(
        listener,
        api::ApiState {
            world: Arc::new(Mutex::new(World::tagged("t_"))),
            api_key: None,
            changed: Arc::new(tokio::sync::Notify::new()),
        },
    )
    .unwrap();
    tokio::spawn(server);
    address
}

async fn call(
    method: reqwest::Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_simulated_api_answers_like_the_seed_documents() {
    let base = simulated_api();
    let post = |path: &str, body: Value| {
        call(
            reqwest::Method::POST,
            format!("{base}{path}"),
            Some(KEY),
            Some(body),
        )
    };
    let get = |path: &str| {
        call(
            reqwest::Method::GET,
            format!("{base}{path}"),
            Some(KEY),
            None,
        )
    };

    let (status, created) = post(
        "/v1/payment_requests",
        json!({"payment_agreement": "pa_1", "amount": 120000, "currency": "eur", "description": "March rent",
               "metadata": {"property_id": "prop_1", "period": "2025-03"}}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["object"], "payment_request");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["metadata"]["property_id"], "prop_1");
    for field in [
        "id",
        "payment_agreement",
        "amount",
        "currency",
        "attempts",
        "created",
        "livemode",
        "payment_method_used",
    ] {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }
    let (_, bulk) = post(
        "/v1/payment_requests/bulk",
        json!({"payment_requests": [
            {"payment_agreement": "pa_2", "amount": 95000, "currency": "eur"},
            {"payment_agreement": "pa_3", "amount": 80000, "currency": "eur"}]}),
    )
    .await;
    assert_eq!(bulk["data"].as_array().unwrap().len(), 2);
    assert!(
        bulk["data"][0].get("metadata").is_none(),
        "bulk requests carry no metadata"
    );

    // Newest first, paged.
    let (_, first) = get("/v1/payment_requests?limit=2").await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&first),
        [
            bulk["data"][1]["id"].as_str().unwrap(),
            bulk["data"][0]["id"].as_str().unwrap()
        ]
    );
    assert_eq!(first["has_more"], true);
    let (_, second) = get(&format!(
        "/v1/payment_requests?limit=2&starting_after={}",
        ids(&first)[1]
    ))
    .await;
    assert_eq!(ids(&second), [created["id"].as_str().unwrap()]);
    assert_eq!(second["has_more"], false);
    let id = created["id"].as_str().unwrap();
    assert_eq!(get(&format!("/v1/payment_requests/{id}")).await.1["id"], id);

    // Cancel rules: a pending request can be cancelled, a cancelled one not again.
    let (status, cancelled) = post(&format!("/v1/payment_requests/{id}/cancel"), json!({})).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (status, refused) = post(&format!("/v1/payment_requests/{id}/cancel"), json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["type"], "invalid_request_error");
    let (status, missing) = get("/v1/payment_requests/preq_nope").await;
    assert_eq!(
        (status, missing["error"]["type"].as_str()),
        (404, Some("invalid_request_error"))
    );
    let (status, bad) = post(
        "/v1/payment_requests",
        json!({"payment_agreement": "pa", "amount": -5, "currency": "eur"}),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("amount"));

    // Bearer-key auth.
    for key in [None, Some("sk_live_x"), Some("nope")] {
        let (status, body) = call(
            reqwest::Method::GET,
            format!("{base}/v1/payment_requests"),
            key,
            None,
        )
        .await;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (401, Some("authentication_error")),
            "{key:?}"
        );
    }

    let (_, account) = post(
        "/v1/bank_accounts",
        json!({"metadata": {"landlord_id": "ll_1"}}),
    )
    .await;
    assert!(account["id"].as_str().unwrap().starts_with("ba_"));
    let (_, payout) = post(
        "/v1/payouts",
        json!({"amount": 100000, "currency": "eur", "destination": account["id"]}),
    )
    .await;
    assert_eq!(
        (payout["object"].as_str(), payout["status"].as_str()),
        (Some("payout"), Some("pending"))
    );
    assert!(payout.get("metadata").is_none());
    assert_eq!(get("/v1/payouts").await.1["data"][0]["id"], payout["id"]);
    let (_, balance) = get("/v1/balance").await;
    assert_eq!(balance["object"], "balance");
    assert!(balance["available"].is_array() && balance["pending"].is_array());
}

async fn simulated_service(smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    spawn_app_with(
        move |s| {
            s.smtp_url = Some(Secret::new(url));
            s.report_to = vec!["ops@example.com".into()];
        },
        // The simulator signs with the wall clock, as CasaPay does.
        Clock::System,
    )
    .await
}

fn config(app: &TestApp, seed: u64, chaos: Chaos) -> MonthConfig {
    MonthConfig {
        target: app.address.clone(),
        secret: Secret::new(SECRET),
        admin_token: Secret::new(ADMIN_TOKEN),
        period: "2025-03".parse().unwrap(),
        properties: 30,
        seed,
        chaos,
        api: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_chaos_reconciles_to_the_truth_and_every_mail_goes_once() {
    let smtp = SmtpServer::start();
    let app = simulated_service(&smtp).await;
    let chaos = Chaos::parse("all").unwrap();
    let report = sim::run_month(config(&app, 7, chaos), &indicatif::ProgressBar::hidden())
        .await
        .unwrap();
    assert_eq!(
        report.differences,
        [],
        "{}",
        sim::render_report(&report, "")
    );
    assert!(
        report.delivery.deliveries > report.delivery.events,
        "duplicates were sent"
    );
    assert!(report.delivery.retried > 0, "the outage made CasaPay retry");
    assert_eq!(report.delivery.given_up, 0);
    assert!(app.count("SELECT count(*) FROM events WHERE state = 'quarantined'") > 0);
    assert!(app.count("SELECT count(*) FROM events WHERE state = 'other_mode'") > 0);
    // Every mail the month caused reaches the SMTP server, once.
    let queued = app.count("SELECT count(*) FROM outbox");
    assert!(queued > 0);
    assert_eq!(
        app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", queued)
            .await,
        queued
    );
    assert_eq!(smtp.received().len() as i64, queued);
}

#[tokio::test]
async fn the_comparison_catches_a_wrong_line() {
    let smtp = SmtpServer::start();
    let app = simulated_service(&smtp).await;
    let period: Period = "2025-03".parse().unwrap();
    let report = sim::run_month(
        config(&app, 9, Chaos::default()),
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(report.differences, []);
    // Corrupt one stored request behind the service's back.
    let corrupted = app
        .value(
            "UPDATE payment_requests SET status = 'failed'
             WHERE id = (SELECT id FROM payment_requests WHERE status = 'succeeded' AND property_id IS NOT NULL LIMIT 1)
             RETURNING property_id",
        )
        .expect("a succeeded request to corrupt");
    let played = month::play(period, 30, 9, Chaos::default());
    let reconciliation = expect_json(
        app.get_admin(&format!(
            "/api/reconciliation?period=2025-03&as_of={}",
            played.as_of
        ))
        .await,
        200,
    )
    .await;
    let differences = sim::compare(&played.truth, &reconciliation, "s9_");
    assert!(
        differences
            .iter()
            .any(|d| d.what == format!("line {corrupted}") && d.field == "status"),
        "{differences:?}"
    );
}
