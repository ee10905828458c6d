//! SPEC §3: each row of the response table, exactly-once, and order.

use std::io::{Read, Write};
use std::time::Duration;

use casapay_recon::casapay::signature;
use casapay_recon::domain::Clock;
use casapay_recon::domain::Secret;
use futures_util::StreamExt;
use serde_json::json;

use crate::database::DatabaseLock;
use crate::helpers::{expect_json, payment_request_event, payout_event, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_new_event_is_stored_and_a_redelivery_is_a_duplicate() {
    let app = spawn_app().await;
    let body = payment_request_event(
        "evt_1",
        "payment_request.succeeded",
        "preq_1",
        "succeeded",
        100,
    );
    let first = expect_json(app.post_event(&body).await, 200).await;
    assert_eq!(
        first,
        json!({"received": true, "id": "evt_1", "duplicate": false, "state": "applied"})
    );
    let again = expect_json(app.post_event(&body).await, 200).await;
    assert_eq!(
        again,
        json!({"received": true, "id": "evt_1", "duplicate": true})
    );
    assert_eq!(app.count("SELECT count(*) FROM events"), 1);
    let stored = app.value("SELECT body FROM events WHERE id = 'evt_1'");
    assert_eq!(stored, Some(body), "the body is kept byte for byte");
    assert_eq!(
        app.row("SELECT status, amount FROM payment_requests WHERE id = 'preq_1'"),
        ["succeeded", "120000"]
    );
}

#[tokio::test]
async fn twenty_five_concurrent_redeliveries_have_one_effect() {
    let app = spawn_app().await;
    let body = payment_request_event(
        "evt_c",
        "payment_request.succeeded",
        "preq_c",
        "succeeded",
        100,
    );
    let sends = (0..25).map(|_| app.post_event(&body));
    let responses = futures_util::future::join_all(sends).await;
    let mut fresh = 0;
    for response in responses {
        let receipt = expect_json(response, 200).await;
        if receipt["duplicate"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one delivery is not a duplicate");
    assert_eq!(app.count("SELECT count(*) FROM events"), 1);
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 1);
}

#[tokio::test]
async fn bad_signatures_are_rejected_and_nothing_is_stored() {
    // A fixed clock: one second past the tolerance is outside it, whatever the wall clock does.
    let app = spawn_app_with(
        |_| {},
        Clock::Fixed("2026-01-01T12:00:00Z".parse().unwrap()),
    )
    .await;
    let body = payment_request_event(
        "evt_s",
        "payment_request.succeeded",
        "preq_s",
        "succeeded",
        100,
    );
    let now = app.clock.now().as_second();
    let wrong_secret = signature::sign(&Secret::new("whsec_other"), now, body.as_bytes());
    let stale = signature::sign(&app.secret, now - 301, body.as_bytes());
    let future = signature::sign(&app.secret, now + 301, body.as_bytes());
    let tampered = signature::sign(&app.secret, now, b"{}");
    for header in [
        None,
        Some(wrong_secret),
        Some(stale),
        Some(future),
        Some(tampered),
        Some("garbage".into()),
    ] {
        let error = expect_json(
            app.post_raw(body.clone().into_bytes(), header.clone())
                .await,
            400,
        )
        .await;
        assert_eq!(error["error"]["type"], "invalid_signature", "{header:?}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
}

#[tokio::test]
async fn signed_bodies_that_are_not_events_are_invalid_events() {
    let app = spawn_app().await;
    let cases = [
        ("not json", "not a CasaPay event"),
        ("[1,2]", "not a CasaPay event"),
        (r#"{"type":"x","created":1,"data":{"object":{}}}"#, "`id`"),
        (
            r#"{"id":"evt_x","created":1,"data":{"object":{}}}"#,
            "`type`",
        ),
        (r#"{"id":5,"type":"x"}"#, "not a CasaPay event"),
    ];
    for (body, expected) in cases {
        let error = expect_json(app.post_event(body).await, 400).await;
        assert_eq!(error["error"]["type"], "invalid_event", "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message} lacks {expected}");
    }
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
}

#[tokio::test]
async fn an_unknown_type_is_stored_with_no_effect() {
    let app = spawn_app().await;
    let body = r#"{"id":"evt_u","type":"payment_agreement.updated","created":5,"data":{"object":{"id":"pa_1","new":true}}}"#;
    let receipt = expect_json(app.post_event(body).await, 200).await;
    assert_eq!(receipt["duplicate"], false);
    assert_eq!(receipt["state"], "recorded");
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE id = 'evt_u' AND object_id = 'pa_1' AND state = 'recorded'"),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_before_it_is_read() {
    let app = spawn_app_with(|s| s.max_body = 1024, Clock::System).await;
    let big = format!(
        r#"{{"id":"evt_big","type":"x","created":1,"data":{{"object":{{"pad":"{}"}}}}}}"#,
        "a".repeat(2000)
    );
    let error = expect_json(app.post_event(&big).await, 413).await;
    assert_eq!(error["error"]["type"], "payload_too_large");

    // Chunked, with no Content-Length: refused while streaming.
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = "POST /webhooks/casapay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        for _ in 0..4 {
            let chunk = "b".repeat(512);
            if stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
}

#[tokio::test]
async fn a_late_older_event_is_stored_but_does_not_overwrite_newer_state() {
    let app = spawn_app().await;
    let newer = payment_request_event(
        "evt_new",
        "payment_request.succeeded",
        "preq_o",
        "succeeded",
        200,
    );
    let older = payment_request_event(
        "evt_old",
        "payment_request.retrying",
        "preq_o",
        "processing",
        100,
    );
    expect_json(app.post_event(&newer).await, 200).await;
    let receipt = expect_json(app.post_event(&older).await, 200).await;
    assert_eq!(
        receipt["duplicate"], false,
        "the late event is stored, not a duplicate"
    );
    assert_eq!(receipt["state"], "superseded");
    assert_eq!(
        app.row("SELECT status, last_event_id FROM payment_requests WHERE id = 'preq_o'"),
        ["succeeded", "evt_new"]
    );
    assert_eq!(app.count("SELECT count(*) FROM events"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE id = 'evt_old' AND state = 'superseded'"),
        1
    );
}

#[tokio::test]
async fn equal_timestamps_resolve_to_the_later_status_in_either_order() {
    for order in [["processing", "succeeded"], ["succeeded", "processing"]] {
        let app = spawn_app().await;
        for (i, status) in order.iter().enumerate() {
            let kind = format!("payment_request.{status}");
            let body = payment_request_event(&format!("evt_{i}"), &kind, "preq_t", status, 300);
            expect_json(app.post_event(&body).await, 200).await;
        }
        let status = app.value("SELECT status FROM payment_requests WHERE id = 'preq_t'");
        assert_eq!(status.as_deref(), Some("succeeded"), "order {order:?}");
    }
}

#[tokio::test]
async fn payouts_follow_the_newest_event_including_paid_then_failed() {
    let app = spawn_app().await;
    let sequence = [
        ("evt_p2", "payout.paid", "paid", 200),
        ("evt_p1", "payout.created", "pending", 100), // late
        ("evt_p3", "payout.failed", "failed", 300),   // a real later transition
        ("evt_p0", "payout.paid", "paid", 150),       // late
    ];
    for (id, kind, status, created) in sequence {
        expect_json(
            app.post_event(&payout_event(id, kind, "po_1", status, created))
                .await,
            200,
        )
        .await;
    }
    assert_eq!(
        app.row("SELECT status, last_event_id FROM payouts WHERE id = 'po_1'"),
        ["failed", "evt_p3"]
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE state = 'applied'"),
        2
    );
}

#[tokio::test]
async fn a_locked_database_gives_503_and_nothing_half_written() {
    let app = spawn_app_with(
        |s| s.busy_timeout = Duration::from_millis(200),
        Clock::System,
    )
    .await;
    let body = payment_request_event(
        "evt_l",
        "payment_request.succeeded",
        "preq_l",
        "succeeded",
        100,
    );
    let blocker = DatabaseLock::take(&app.database);
    let response = app.post_event(&body).await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("5".into())
    );
    let error = expect_json(response, 503).await;
    assert_eq!(error["error"]["type"], "storage_unavailable");
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status().as_u16(),
        503,
        "not ready while the database cannot be written"
    );
    blocker.release();
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 0);
    let retried = expect_json(app.post_event(&body).await, 200).await;
    assert_eq!(
        retried["duplicate"], false,
        "CasaPay's retry is stored as new"
    );
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 1);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let missing = app
        .client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    let error = expect_json(missing, 404).await;
    assert_eq!(error["error"]["type"], "not_found");
}

#[tokio::test]
async fn a_full_write_queue_answers_503_with_retry_after_instead_of_growing() {
    // One queue slot, and a writer that waits (far longer than this test) for a
    // database another connection holds: every request that finds the slot
    // taken must get 503 at once.
    let app = spawn_app_with(
        |s| {
            s.write_queue = 1;
            s.busy_timeout = Duration::from_secs(120);
        },
        Clock::System,
    )
    .await;
    let blocker = DatabaseLock::take(&app.database);
    let body = |i: usize| {
        payment_request_event(
            &format!("evt_q{i}"),
            "payment_request.succeeded",
            &format!("preq_q{i}"),
            "succeeded",
            1,
        )
    };
    let send = |i: usize| {
        let (address, body) = (app.address.clone(), body(i));
        let header = signature::sign(
            &app.secret,
            jiff::Timestamp::now().as_second(),
            body.as_bytes(),
        );
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{address}/webhooks/casapay"))
                .header(signature::HEADER, header)
                .body(body)
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (i, response.status().as_u16(), retry_after)
        })
    };
    // Add one request at a time until one is refused. Nothing can commit while
    // the lock is held, so every answer before the release is a refusal.
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut refused = Vec::new();
    let mut next = 0;
    while refused.is_empty() {
        assert!(next < 50, "50 requests queued and none refused");
        in_flight.push(send(next));
        next += 1;
        // A request still in flight after this pause is held by the writer or
        // the queue; the pause only paces the probe, it decides nothing.
        if let Ok(Some(done)) =
            tokio::time::timeout(Duration::from_millis(100), in_flight.next()).await
        {
            let (i, status, retry_after) = done.unwrap();
            assert_eq!(
                (status, retry_after.as_deref()),
                (503, Some("1")),
                "request {i} answered while the database was locked"
            );
            refused.push(i);
        }
    }
    // The writer holds one job and the queue one more; background work (the
    // mail worker's claim, the report scheduler) may hold those places too.
    let waiting = in_flight.len();
    assert!(waiting <= 2, "at most two requests waiting, got {waiting}");
    assert_eq!(app.count("SELECT count(*) FROM events"), 0);
    blocker.release();
    let mut accepted = Vec::new();
    while let Some(done) = in_flight.next().await {
        let (i, status, _) = done.unwrap();
        assert_eq!(status, 200, "request {i} waited and was stored");
        accepted.push(i);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM events"),
        accepted.len() as i64
    );
    // What got 503 was not stored; CasaPay's retry stores it. With one queue
    // slot shared with background work, a retry may be refused again: retry
    // as CasaPay does, until it is taken.
    for i in &refused {
        let mut attempts = 0;
        loop {
            let response = app.post_event(&body(*i)).await;
            if response.status().as_u16() != 503 {
                expect_json(response, 200).await;
                break;
            }
            attempts += 1;
            assert!(attempts < 1000, "evt_q{i} refused 1000 times");
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        app.count("SELECT count(*) FROM events"),
        (accepted.len() + refused.len()) as i64
    );
}
