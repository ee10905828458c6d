//! `/metrics` in a test process of its own: the Prometheus recorder is
//! process-wide, so only here can counts be asserted exactly.

#[allow(dead_code)]
#[path = "api/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use casapay_recon::domain::Clock;
use helpers::{event_with, expect_json, request, spawn_app_with};

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name_and_labels))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_count_webhooks_batches_mail_and_exceptions() {
    let now = "2025-03-20T10:00:00Z".parse().unwrap();
    let app = spawn_app_with(
        |s| s.metrics_refresh = std::time::Duration::from_millis(50),
        Clock::Fixed(now),
    )
    .await;
    expect_json(app.import_rent_roll("property_id,landlord_id,period,amount,currency,landlord_email\nprop_1,ll_1,2025-03,1000,eur,a@example.com\nprop_2,ll_1,2025-03,1000,eur,\n").await, 200).await;
    let event = event_with(
        "evt_m1",
        "payment_request.succeeded",
        10,
        request("preq_m", "prop_1", 1000, "eur", "succeeded"),
    );
    app.send_all(&[event.clone(), event]).await;
    // A retrying event that carries a succeeded object, and an unappliable payout.
    app.send_all(&[
        event_with(
            "evt_m2",
            "payment_request.retrying",
            11,
            request("preq_m2", "prop_9", 1000, "eur", "succeeded"),
        ),
        event_with(
            "evt_m3",
            "payout.paid",
            12,
            serde_json::json!({"id": "po_m", "amount": 5, "currency": "eur", "status": "returned"}),
        ),
    ])
    .await;
    app.post_raw(b"{}".to_vec(), Some("t=1,v1=00".into())).await;
    // The mail is written to a folder; wait until it is marked sent.
    assert_eq!(
        app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
            .await,
        1
    );

    // The database gauges are refreshed in the background: wait for the
    // refresh that sees the delivered mail and the overdue line.
    let mut text = String::new();
    for _ in 0..200 {
        text = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ready = metric(&text, "casapay_outbox_depth") == Some(0.0)
            && metric(&text, "casapay_quarantined_events") == Some(1.0)
            && metric(&text, "casapay_reconciliation_exceptions{kind=\"overdue\"}") == Some(1.0);
        if ready {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let value = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"));
    assert_eq!(
        value(
            "casapay_webhook_events_total{type=\"payment_request.succeeded\",outcome=\"stored\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            "casapay_webhook_events_total{type=\"payment_request.succeeded\",outcome=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(
        value("casapay_webhook_events_total{type=\"\",outcome=\"invalid_signature\"}"),
        1.0
    );
    assert_eq!(value("casapay_webhook_duration_seconds_count"), 5.0);
    assert_eq!(
        value("casapay_webhook_duration_seconds_bucket{le=\"+Inf\"}"),
        5.0
    );
    assert_eq!(
        value("casapay_event_type_mismatch_total{type=\"payment_request.retrying\"}"),
        1.0
    );
    assert_eq!(
        value("casapay_webhook_events_total{type=\"payout.paid\",outcome=\"quarantined\"}"),
        1.0
    );
    assert_eq!(value("casapay_quarantined_events"), 1.0);
    // Four webhooks, the import, the mail claim and its mark: at least seven committed writes.
    assert!(value("casapay_write_batch_size_sum") >= 7.0, "{text}");
    assert_eq!(value("casapay_mail_total{outcome=\"queued\"}"), 1.0);
    assert_eq!(value("casapay_mail_total{outcome=\"sent\"}"), 1.0);
    assert_eq!(value("casapay_outbox_depth"), 0.0);
    // prop_2 is due 2025-03-01 and unpaid on 2025-03-20: one overdue line in the current period.
    assert_eq!(
        value("casapay_reconciliation_exceptions{kind=\"overdue\"}"),
        1.0
    );
    assert_eq!(
        value("casapay_reconciliation_exceptions{kind=\"failed\"}"),
        0.0
    );
}
