//! SPEC §8: metrics, the dashboard and its auth, and a catalogue of bad input.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use casapay_recon::startup::Clock;
use casapay_recon::webhook::signature;

use crate::helpers::{
    ADMIN_TOKEN, TestApp, event_with, expect_json, payment_request_event, request, spawn_app,
    spawn_app_with,
};

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name_and_labels))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_webhooks_batches_mail_and_exceptions() {
    let now = "2025-03-20T10:00:00Z".parse().unwrap();
    let app = spawn_app_with(|_| {}, Clock::Fixed(now)).await;
    expect_json(app.import_rent_roll("property_id,landlord_id,period,amount,currency,landlord_email\nprop_1,ll_1,2025-03,1000,eur,a@example.com\nprop_2,ll_1,2025-03,1000,eur,\n").await, 200).await;
    app.send_all(&[event_with(
        "evt_m1",
        "payment_request.succeeded",
        10,
        request("preq_m", "prop_1", 1000, "eur", "succeeded"),
    )])
    .await;
    app.post_raw(b"{}".to_vec(), Some("t=1,v1=00".into())).await;

    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(
            &text,
            "casapay_webhook_events_total{type=\"payment_request.succeeded\",outcome=\"stored\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "casapay_webhook_events_total{type=\"\",outcome=\"invalid_signature\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("casapay_webhook_duration_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
    assert!(text.contains("casapay_write_batch_size_bucket"), "{text}");
    assert!(
        metric(&text, "casapay_mail_total{outcome=\"queued\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(text.contains("casapay_outbox_depth "), "{text}");
    // prop_2 is due 2025-03-01 and unpaid on 2025-03-20: one overdue line in the current period.
    assert_eq!(
        metric(&text, "casapay_reconciliation_exceptions{kind=\"overdue\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "casapay_reconciliation_exceptions{kind=\"failed\"}"),
        Some(0.0),
        "{text}"
    );
}

async fn dashboard(app: &TestApp, authorization: Option<String>) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/dashboard?period=2025-03", app.address));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_dashboard_takes_the_token_as_bearer_or_basic_password() {
    let app = spawn_app().await;
    expect_json(app.import_rent_roll("property_id,landlord_id,period,amount,currency,property_name\nprop_1,ll_1,2025-03,120000,eur,<b>Oak</b>\n").await, 200).await;
    app.send_all(&[event_with(
        "evt_d",
        "payment_request.succeeded",
        10,
        request("preq_d", "prop_1", 60000, "eur", "succeeded"),
    )])
    .await;

    let none = dashboard(&app, None).await;
    assert_eq!(none.status().as_u16(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let basic = |password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
        )
    };
    assert_eq!(
        dashboard(&app, Some(basic("wrong")))
            .await
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        dashboard(&app, Some(format!("Bearer {ADMIN_TOKEN}")))
            .await
            .status()
            .as_u16(),
        200
    );
    let page = dashboard(&app, Some(basic(ADMIN_TOKEN))).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg id=\"chart\""), "{html}");
    assert!(
        html.contains("collected €600.00") && html.contains("expected €1,200.00"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"status partial\">partial</span>"),
        "{html}"
    );
    assert!(
        html.contains("&#60;b&#62;Oak&#60;/b&#62;"),
        "names are escaped: {html}"
    );

    // The API itself does not take Basic.
    let api = app
        .client
        .get(format!("{}/api/events", app.address))
        .header("authorization", basic(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
}

/// Sends raw bytes over a fresh connection and returns the whole answer.
async fn raw_http(app: &TestApp, parts: Vec<(Vec<u8>, Duration)>) -> String {
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        for (bytes, pause) in parts {
            if stream.write_all(&bytes).is_err() {
                break;
            }
            std::thread::sleep(pause);
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_slow_drip_body_is_cut_off_and_the_service_keeps_answering() {
    let app = spawn_app_with(
        |s| s.body_timeout = Duration::from_millis(500),
        Clock::System,
    )
    .await;
    let head = b"POST /webhooks/casapay HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_vec();
    let drip: Vec<(Vec<u8>, Duration)> = std::iter::once((head, Duration::ZERO))
        .chain((0..20).map(|_| (b"{".to_vec(), Duration::from_millis(100))))
        .collect();
    let answer = raw_http(&app, drip).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    let body = payment_request_event(
        "evt_after",
        "payment_request.succeeded",
        "preq_a",
        "succeeded",
        1,
    );
    expect_json(app.post_event(&body).await, 200).await;
}

#[tokio::test]
async fn hostile_webhook_bodies_are_clear_400s_and_store_nothing() {
    let app = spawn_app().await;
    let nested = format!(
        r#"{{"id":"evt_n","type":"x","created":1,"data":{{"object":{{"a":{}1{}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let huge = payment_request_event(
        "evt_h",
        "payment_request.succeeded",
        "preq_h",
        "succeeded",
        1,
    )
    .replace("120000", "99999999999999999999");
    let too_big = payment_request_event(
        "evt_b",
        "payment_request.succeeded",
        "preq_b",
        "succeeded",
        1,
    )
    .replace("120000", "1000000000000001");
    let negative = payment_request_event(
        "evt_g",
        "payment_request.succeeded",
        "preq_g",
        "succeeded",
        1,
    )
    .replace("120000", "-1");
    let currency = payment_request_event(
        "evt_c",
        "payment_request.succeeded",
        "preq_c",
        "succeeded",
        1,
    )
    .replace("\"eur\"", "\"xxx\"");
    let mut invalid_utf8 =
        br#"{"id":"evt_u","type":"x","created":1,"data":{"object":{"name":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(br#""}}}"#);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deeply nested JSON", nested.into_bytes()),
        ("amount beyond i64", huge.into_bytes()),
        ("amount beyond 10^15", too_big.into_bytes()),
        ("negative amount", negative.into_bytes()),
        ("unknown currency", currency.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
    ];
    for (name, body) in cases {
        let header = signature::sign(&app.secret, jiff::Timestamp::now().as_second(), &body);
        let error = expect_json(app.post_raw(body, Some(header)).await, 400).await;
        assert_eq!(error["error"]["type"], "invalid_event", "{name}: {error}");
    }
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
}

#[tokio::test]
async fn a_header_with_ten_thousand_signatures_is_refused_cheaply() {
    let app = spawn_app().await;
    let body = payment_request_event(
        "evt_v",
        "payment_request.succeeded",
        "preq_v",
        "succeeded",
        1,
    );
    let now = jiff::Timestamp::now().as_second();
    let many = format!(
        "t={now},{}",
        vec![format!("v1={}", "ab".repeat(32)); 10_000].join(",")
    );
    let response = app.post_raw(body.clone().into_bytes(), Some(many)).await;
    let status = response.status().as_u16();
    assert_eq!(status, 431, "actix refuses a request head over its limit");
    // Within the head limit, hundreds of wrong tags cost one HMAC each per secret.
    let some = format!(
        "t={now},{}",
        vec![format!("v1={}", "ab".repeat(32)); 400].join(",")
    );
    let error = expect_json(app.post_raw(body.into_bytes(), Some(some)).await, 400).await;
    assert_eq!(error["error"]["type"], "invalid_signature");
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
}

#[tokio::test]
async fn formula_cells_in_a_rent_roll_are_neutralised_in_csv_output() {
    let app = spawn_app().await;
    let roll = "property_id,landlord_id,period,amount,currency,property_name\n=HYPERLINK(\"x\"),@ll,2025-03,1000,eur,+cmd\n";
    expect_json(app.import_rent_roll(roll).await, 200).await;
    let csv = app
        .get_admin("/api/reconciliation?period=2025-03&as_of=2025-03-20&format=csv")
        .await
        .text()
        .await
        .unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with("\"'=HYPERLINK(\"\"x\"\")\",'+cmd,'@ll,"),
        "{row}"
    );
}
