//! SPEC §8: metrics, the dashboard and its auth, and a catalogue of bad input.

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use casapay_recon::casapay::signature;
use casapay_recon::domain::Clock;
use serde_json::json;

use crate::helpers::{
    ADMIN_TOKEN, TestApp, event_with, expect_json, payment_request_event, request, spawn_app,
    spawn_app_with,
};

#[tokio::test]
async fn with_a_metrics_listener_metrics_leave_the_webhook_listener() {
    let app = spawn_app_with(
        |s| s.metrics_bind = Some("127.0.0.1:0".into()),
        Clock::System,
    )
    .await;
    let on_main = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(on_main.status().as_u16(), 404);
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let scraped = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status().as_u16(), 200);
    assert!(scraped.text().await.unwrap().contains("casapay_"));
    let elsewhere = app
        .client
        .get(format!("{metrics}/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 404, "only /metrics there");
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
async fn hostile_webhook_bodies_are_refused_or_quarantined_never_applied() {
    let app = spawn_app().await;
    let nested = format!(
        r#"{{"id":"evt_n","type":"x","created":1,"data":{{"object":{{"a":{}1{}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut invalid_utf8 =
        br#"{"id":"evt_u","type":"x","created":1,"data":{"object":{"name":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(br#""}}}"#);
    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "deeply nested JSON",
            nested.into_bytes(),
            "nested deeper than 64",
        ),
        ("invalid UTF-8", invalid_utf8, "not UTF-8"),
    ];
    for (name, body, field) in refused {
        let header = signature::sign(&app.secret, jiff::Timestamp::now().as_second(), &body);
        let error = expect_json(app.post_raw(body, Some(header)).await, 400).await;
        assert_eq!(error["error"]["type"], "invalid_event", "{name}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{name}: `{message}` does not name {field}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);

    // Signed events whose object cannot be applied are kept, never applied.
    let event = |id: &str, from: &str, to: &str| {
        payment_request_event(
            id,
            "payment_request.succeeded",
            &format!("preq_{id}"),
            "succeeded",
            1,
        )
        .replace(from, to)
    };
    let quarantined = [
        (
            "amount beyond i64",
            event("evt_h", "120000", "99999999999999999999"),
            "data.object.amount",
        ),
        (
            "amount beyond 10^15",
            event("evt_b", "120000", "1000000000000001"),
            "data.object.amount",
        ),
        (
            "negative amount",
            event("evt_g", "120000", "-1"),
            "data.object.amount",
        ),
        (
            "unknown currency",
            event("evt_c", "\"eur\"", "\"xxx\""),
            "data.object.currency",
        ),
    ];
    for (name, body, field) in &quarantined {
        let receipt = expect_json(app.post_event(body).await, 200).await;
        assert_eq!(receipt["state"], "quarantined", "{name}");
        let id = receipt["id"].as_str().unwrap();
        let reason = app
            .value(&format!("SELECT reason FROM events WHERE id = '{id}'"))
            .expect("a quarantined event keeps its reason");
        assert!(
            reason.contains(field),
            "{name}: `{reason}` does not name {field}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE state = 'quarantined'"),
        quarantined.len() as i64
    );
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox"), 0);
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
    // actix answers 431 and closes; when it closes before the client has
    // finished writing the 680 KB head, the client sees the reset instead.
    let refused = app
        .client
        .post(format!("{}/webhooks/casapay", app.address))
        .header(signature::HEADER, many)
        .body(body.clone())
        .send()
        .await;
    match refused {
        Ok(response) => assert_eq!(
            response.status().as_u16(),
            431,
            "actix refuses a request head over its limit"
        ),
        Err(error) => assert!(
            error.is_request() && !error.is_timeout(),
            "the connection is refused, not left hanging: {error}"
        ),
    }
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

#[tokio::test]
async fn the_dashboard_pages_and_filters_lines_and_stays_small() {
    let app = spawn_app_with(
        |_| {},
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for p in 0..250 {
        roll.push_str(&format!("prop_{p:03},ll_{},2025-03,1000,eur\n", p % 2));
    }
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    app.send_all(&[event_with(
        "evt_paid",
        "payment_request.succeeded",
        10,
        request("preq_paid", "prop_001", 1000, "eur", "succeeded"),
    )])
    .await;
    let get = |query: &str| {
        let url = format!("{}/dashboard?period=2025-03{query}", app.address);
        let client = app.client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let rows = |html: &str| html.matches("<td><span class=\"status").count();
    let first = get("").await;
    assert!(first.contains("Lines (250)"));
    assert!(
        first.contains("overdue 249") && first.contains("paid 1"),
        "counts per status first"
    );
    assert!(first.contains("Page 1 of 3") && first.contains("id=\"next-lines\""));
    assert!(first.len() < 200_000, "{} bytes", first.len());
    let third = get("&page=3").await;
    assert!(third.contains("Page 3 of 3") && !third.contains("id=\"next-lines\""));
    let paid = get("&status=paid").await;
    assert!(
        paid.contains("Lines (1)") && paid.contains("prop_001"),
        "filtered by status"
    );
    let landlord = get("&landlord_id=ll_1&status=overdue").await;
    assert!(
        landlord.contains("Lines (124)"),
        "filtered by landlord and status"
    );
    let overdue = get("&kind=overdue").await;
    assert!(overdue.contains("Exceptions (249)"), "exceptions by kind");
    let next = overdue
        .split(" id=\"next-exceptions\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .unwrap_or_default();
    assert!(
        next.contains("kind=overdue"),
        "the next page keeps the kind: {next}"
    );
    assert!(get("&kind=failed").await.contains("Exceptions (0)"));
    assert!(rows(&first) > 0);
}

#[tokio::test]
async fn a_damaged_database_is_a_500_that_shows_no_database_text() {
    let app = spawn_app().await;
    expect_json(
        app.import_rent_roll(
            "property_id,landlord_id,period,amount,currency\nprop_1,ll_1,2025-03,1000,eur\n",
        )
        .await,
        200,
    )
    .await;
    app.send_all(&[event_with(
        "evt_broken",
        "payment_request.succeeded",
        10,
        request("preq_broken", "prop_1", 1000, "eur", "succeeded"),
    )])
    .await;
    // Damage two stored values behind the service's back.
    app.execute(
        "UPDATE events SET body = 'not json' WHERE id = 'evt_broken';
         UPDATE payment_requests SET currency = 'zzz' WHERE id = 'preq_broken';",
    );
    for path in ["/api/events", "/api/reconciliation?period=2025-03"] {
        let error = expect_json(app.get_admin(path).await, 500).await;
        assert_eq!(error["error"]["type"], "internal_error", "{path}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("zzz") && !message.contains("evt_broken"),
            "{path}: {message}"
        );
    }
}

#[tokio::test]
async fn a_reconciliation_that_fails_part_way_is_cut_off_not_shortened() {
    let app = spawn_app().await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for n in 0..2_000 {
        roll.push_str(&format!("prop_{n:04},ll_a,2025-03,1000,eur\n"));
    }
    roll.push_str("prop_last,ll_z,2025-03,1000,eur\n");
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    // Well past the first chunk of the document: ll_z's line comes last.
    app.execute("UPDATE expected_rent SET currency = 'zzz' WHERE property_id = 'prop_last';");
    for format in ["json", "csv"] {
        let response = app
            .get_admin(&format!(
                "/api/reconciliation?period=2025-03&format={format}"
            ))
            .await;
        assert_eq!(response.status(), 200, "{format}: the first chunk was sent");
        assert!(
            response.bytes().await.is_err(),
            "{format}: the body ends in an error, never as a whole document"
        );
    }
}

#[tokio::test]
async fn the_mail_folder_is_its_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let folder = app.dir.join("mail");
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // An SQLite file holds the secrets too; PostgreSQL's files are the server's.
    if let casapay_recon::store::Location::Sqlite(path) =
        casapay_recon::store::Location::of(&app.database)
    {
        let database = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(database & 0o777, 0o600);
    }
}

#[tokio::test]
async fn the_dashboard_charts_the_last_twelve_months_each_linking_to_its_month() {
    let app = spawn_app().await;
    let roll = "property_id,landlord_id,period,amount,currency\n\
                prop_1,ll_1,2024-05..2025-03,100000,eur\n\
                prop_2,ll_1,2025-01,5000,gbp\n";
    expect_json(app.import_rent_roll(roll).await, 200).await;
    let mut events = Vec::new();
    for (month, amount) in [("2025-01", 100000), ("2025-02", 40000)] {
        let mut object = request(
            &format!("preq_{month}"),
            "prop_1",
            amount,
            "eur",
            "succeeded",
        );
        object["metadata"]["period"] = json!(month);
        events.push(event_with(
            &format!("evt_{month}"),
            "payment_request.succeeded",
            10,
            object,
        ));
    }
    app.send_all(&events).await;

    let html = app
        .get_admin("/dashboard?period=2025-03")
        .await
        .text()
        .await
        .unwrap();
    let eur = html
        .split("<svg class=\"history\" id=\"history-EUR\"")
        .nth(1)
        .and_then(|rest| rest.split("</svg>").next())
        .unwrap_or_else(|| panic!("a EUR history chart: {html}"));
    let months: Vec<&str> = eur.matches("<a href=\"/dashboard?period=").collect();
    assert_eq!(months.len(), 12, "{eur}");
    assert!(
        eur.contains("href=\"/dashboard?period=2024-04\""),
        "oldest month first"
    );
    assert!(
        eur.contains("href=\"/dashboard?period=2025-03\""),
        "the page's month last"
    );
    assert!(
        eur.contains("2025-01: collected €1,000.00 of €1,000.00 expected"),
        "{eur}"
    );
    assert!(
        eur.contains("2025-02: collected €400.00 of €1,000.00 expected"),
        "{eur}"
    );
    assert!(
        eur.contains("2024-04: collected €0.00 of €0.00 expected"),
        "a month without rent is an empty pair: {eur}"
    );
    assert!(
        html.contains("id=\"history-GBP\"")
            && html.contains("2025-01: collected £0.00 of £50.00 expected"),
        "a chart per currency"
    );
}
