//! CasaPay as it really behaves (SPEC §3 Quarantine, Mode, Type and object;
//! §5 matching fallbacks and retries; §7; §8 replay), through the real endpoint.

use casapay_recon::casapay::event;
use casapay_recon::domain::MailKind;
use casapay_recon::domain::{Clock, Mode};
use casapay_recon::ingest::{self, IngestPolicy};
use casapay_recon::notify::{self, MailPolicy, RenderedMail};
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::helpers::{TestApp, event_with, exceptions_of, expect_json, line, spawn_app_with};

/// The service's "now" in these tests: before `CASAPAY_REPORT_AT` (06:00) on
/// a new database, so no daily report joins the mails asserted here.
const NOW: &str = "2025-03-20T05:00:00Z";
/// 2025-03-04T00:00:00Z, and a day.
const MARCH_4: i64 = 1_741_046_400;
const DAY: i64 = 86_400;

const ROLL: &str = "property_id,landlord_id,period,amount,currency,payment_agreement,landlord_email,landlord_name,property_name,bank_account
prop_456,ll_789,2025-03,120000,eur,pa_abc123,ana@example.com,Ana,12 Oak St,ba_123
prop_457,ll_789,2025-03,95000,eur,pa_457,ana@example.com,Ana,14 Oak St,ba_123
prop_500,ll_500,2025-03,120000,eur,pa_500,ben@example.com,Ben,Flat 5,
";

async fn app_in(mode: Mode) -> TestApp {
    let app = spawn_app_with(
        move |s| {
            s.mode = mode;
            s.report_to = vec!["ops@example.com".into()];
        },
        Clock::Fixed(NOW.parse().unwrap()),
    )
    .await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    app
}

async fn app() -> TestApp {
    app_in(Mode::Live).await
}

/// The PaymentRequest of CasaPay's API reference, created in bulk: no metadata.
fn seed_request(id: &str, agreement: &str, status: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "payment_request", "payment_agreement": agreement,
        "amount": 120000, "currency": "eur", "description": "March rent",
        "status": status, "payment_method_used": "direct_debit", "failure_reason": null,
        "attempts": 1, "next_retry_at": null, "created": created, "livemode": true
    })
}

/// The payout of CasaPay's payouts quickstart: no metadata.
fn seed_payout(id: &str, status: &str, destination: &str) -> Value {
    json!({
        "id": id, "object": "payout", "amount": 250000, "currency": "eur", "status": status,
        "destination": destination, "arrival_date": MARCH_4 + 10 * DAY,
        "description": "Payout for March", "created": MARCH_4 + 9 * DAY, "livemode": true
    })
}

fn live_event(id: &str, kind: &str, created: i64, object: Value) -> String {
    let mut event: Value = serde_json::from_str(&event_with(id, kind, created, object)).unwrap();
    event["livemode"] = json!(true);
    event.to_string()
}

async fn reconciliation(app: &TestApp, query: &str) -> Value {
    expect_json(
        app.get_admin(&format!("/api/reconciliation?period=2025-03{query}"))
            .await,
        200,
    )
    .await
}

/// A queued mail as the worker will send it (the app's zone is UTC).
fn rendered(kind: &str, message: &str) -> RenderedMail {
    let kind = MailKind::parse(kind).expect("a mail kind");
    let message = serde_json::from_str(message).expect("a stored message");
    notify::render(kind, &message, &TimeZone::UTC)
}

/// (cause, recipient, subject) of every queued mail, sorted.
fn mails(app: &TestApp) -> Vec<(String, String, String)> {
    crate::database::query(
        &app.database,
        "SELECT cause, recipient, kind, message FROM outbox ORDER BY cause, recipient",
    )
    .into_iter()
    .map(|row| match &row[..] {
        [Some(cause), Some(to), Some(kind), Some(message)] => {
            (cause.clone(), to.clone(), rendered(kind, message).subject)
        }
        other => panic!("an outbox row without cause, recipient, kind or message: {other:?}"),
    })
    .collect()
}

fn mail(cause: &str, to: &str, subject: &str) -> (String, String, String) {
    (cause.into(), to.into(), subject.into())
}

fn state_of(app: &TestApp, event: &str) -> String {
    app.value(&format!("SELECT state FROM events WHERE id = '{event}'"))
        .expect("the event is stored")
}

#[tokio::test]
async fn the_seed_documents_objects_reconcile_and_mail_without_metadata() {
    let app = app().await;
    app.send_all(&[
        live_event(
            "evt_s",
            "payment_request.succeeded",
            MARCH_4,
            seed_request("preq_abc123", "pa_abc123", "succeeded", MARCH_4),
        ),
        live_event(
            "evt_p",
            "payment_request.created",
            MARCH_4,
            seed_request("preq_457", "pa_457", "pending", MARCH_4 - 2 * DAY),
        ),
        live_event(
            "evt_po",
            "payout.paid",
            MARCH_4 + 9 * DAY,
            seed_payout("po_xyz789", "paid", "ba_123"),
        ),
        live_event(
            "evt_pf",
            "payout.failed",
            MARCH_4 + 9 * DAY,
            with(
                seed_payout("po_lost", "failed", "ba_unknown"),
                json!({"failure_reason": "account_closed"}),
            ),
        ),
    ])
    .await;

    let r = reconciliation(&app, "&as_of=2025-03-20").await;
    let paid = line(&r, "prop_456");
    assert_eq!(paid["status"], "paid", "matched by agreement and due date");
    assert_eq!(paid["payment_requests"], json!(["preq_abc123"]));
    assert_eq!(paid["payment_method_used"], "direct_debit");
    assert_eq!(paid["attempts"], 1);
    assert_eq!(
        line(&r, "prop_457")["status"],
        "pending",
        "a pending bulk request makes its line pending"
    );
    assert_eq!(line(&r, "prop_500")["status"], "overdue");
    assert_eq!(r["unmatched"], json!([]));
    assert_eq!(
        r["unallocated_payouts"],
        json!([{"payout": "po_xyz789", "landlord_id": "ll_789", "amount": 250000, "currency": "eur", "status": "paid", "created": MARCH_4 + 9 * DAY}]),
        "found by its bank account, but it names no period"
    );
    assert_eq!(r["unmatched_payouts"][0]["payout"], "po_lost");

    assert_eq!(
        mails(&app),
        [
            mail(
                "po_lost:failed",
                "ops@example.com",
                "Payout failed: €2,500.00"
            ),
            mail(
                "po_xyz789:paid",
                "ana@example.com",
                "Payout paid: €2,500.00"
            ),
            mail(
                "preq_abc123:succeeded",
                "ana@example.com",
                "Rent received for 12 Oak St — March 2025: €1,200.00"
            ),
        ]
    );
    let failed_text = rendered(
        "payout_failed",
        &app.value("SELECT message FROM outbox WHERE cause = 'po_lost:failed'")
            .expect("the payout's failure is mailed"),
    )
    .text;
    assert!(
        failed_text.contains("could not be paid: account_closed."),
        "{failed_text}"
    );

    let report = app.daily_report("2025-03-20").await;
    assert!(
        !exceptions_of(&report, "unallocated_payout").is_empty(),
        "{report}"
    );
    assert!(
        !exceptions_of(&report, "unmatched_payout").is_empty(),
        "{report}"
    );
}

fn with(mut object: Value, patch: Value) -> Value {
    for (key, value) in patch.as_object().unwrap() {
        object[key] = value.clone();
    }
    object
}

fn dated(object: Value, property: &str) -> Value {
    with(
        object,
        json!({"metadata": {"property_id": property, "period": "2025-03"}}),
    )
}

#[tokio::test]
async fn unappliable_events_are_quarantined_listed_reported_and_applied_by_a_replay_that_knows_them()
 {
    let app = app().await;
    let request = |id: &str| dated(seed_request(id, "pa_500", "succeeded", MARCH_4), "prop_500");
    let mut missing_created: Value = serde_json::from_str(&live_event(
        "evt_q4",
        "payment_request.succeeded",
        MARCH_4,
        request("preq_q4"),
    ))
    .unwrap();
    missing_created.as_object_mut().unwrap().remove("created");
    let bad = [
        (
            live_event(
                "evt_q1",
                "payment_request.succeeded",
                MARCH_4,
                with(request("preq_q1"), json!({"status": "refunded"})),
            ),
            "data.object.status",
        ),
        (
            live_event(
                "evt_q2",
                "payment_request.succeeded",
                MARCH_4,
                with(request("preq_q2"), json!({"amount": "120000"})),
            ),
            "data.object.amount",
        ),
        (
            live_event(
                "evt_q3",
                "payment_request.succeeded",
                MARCH_4,
                with(request("preq_q3"), json!({"currency": "EUR"})),
            ),
            "data.object.currency",
        ),
        (missing_created.to_string(), "created"),
    ];
    for (body, _) in &bad {
        let receipt = expect_json(app.post_event(body).await, 200).await;
        assert_eq!(receipt["state"], "quarantined", "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox"), 0);

    let listed = expect_json(app.get_admin("/api/events?state=quarantined").await, 200).await;
    let states = listed["states"].as_array().unwrap();
    assert_eq!(states.len(), 4);
    for (body, field) in &bad {
        let id = serde_json::from_str::<Value>(body).unwrap()["id"].clone();
        let entry = states.iter().find(|s| s["id"] == id).unwrap();
        assert_eq!(entry["state"], "quarantined");
        assert!(
            entry["reason"].as_str().unwrap().contains(field),
            "{entry} does not name {field}"
        );
    }
    let report = app.daily_report("2025-03-20").await;
    let quarantined = |report: &Value| exceptions_of(report, "quarantined_event").len();
    assert_eq!(quarantined(&report), 4);

    // An upgrade teaches the service `refunded` (here: read as succeeded).
    let upgraded = |body: &[u8]| {
        let text = String::from_utf8_lossy(body).replace("\"refunded\"", "\"succeeded\"");
        event::parse(text.as_bytes())
    };
    let policy = IngestPolicy {
        mode: Mode::Live,
        mail: MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: jiff::tz::TimeZone::UTC,
        },
    };
    for expected_mails in [1, 0] {
        let summary = app
            .open_database()
            .transaction(|store| ingest::replay_with(store, true, &policy, 0, upgraded))
            .unwrap();
        assert_eq!(
            (summary.events, summary.applied, summary.mails_queued),
            (4 - (1 - expected_mails), expected_mails, expected_mails),
            "{summary:?}"
        );
    }
    assert_eq!(state_of(&app, "evt_q1"), "applied");
    assert_eq!(
        mails(&app),
        [mail(
            "preq_q1:succeeded",
            "ben@example.com",
            "Rent received for Flat 5 — March 2025: €1,200.00"
        )],
        "applied once, mailed once"
    );
    let report = app.daily_report("2025-03-20").await;
    assert_eq!(quarantined(&report), 3);
}

#[tokio::test]
async fn events_of_the_other_mode_are_stored_and_change_nothing() {
    let test_event = |id: &str| {
        let mut event: Value = serde_json::from_str(&live_event(
            id,
            "payment_request.succeeded",
            MARCH_4,
            dated(
                seed_request("preq_m", "pa_500", "succeeded", MARCH_4),
                "prop_500",
            ),
        ))
        .unwrap();
        event["livemode"] = json!(false);
        event.to_string()
    };
    for (mode, expected) in [
        (Mode::Live, "other_mode"),
        (Mode::Test, "applied"),
        (Mode::Any, "applied"),
    ] {
        let app = app_in(mode).await;
        let receipt = expect_json(app.post_event(&test_event("evt_m")).await, 200).await;
        assert_eq!(receipt["state"], expected, "{mode:?}");
        let applied = i64::from(expected == "applied");
        assert_eq!(app.count("SELECT count(*) FROM payment_requests"), applied);
        assert_eq!(app.count("SELECT count(*) FROM outbox"), applied);
        let r = reconciliation(&app, "&as_of=2025-03-20").await;
        assert_eq!(
            line(&r, "prop_500")["status"],
            if applied == 1 { "paid" } else { "overdue" },
            "test traffic never reconciles against real rent ({mode:?})"
        );
    }
}

#[tokio::test]
async fn the_object_decides_the_state_never_the_event_type() {
    let app = app().await;
    let receipt = expect_json(
        app.post_event(&live_event(
            "evt_t",
            "payment_request.retrying",
            MARCH_4,
            dated(
                seed_request("preq_t", "pa_500", "succeeded", MARCH_4),
                "prop_500",
            ),
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(receipt["state"], "applied");
    let r = reconciliation(&app, "&as_of=2025-03-20").await;
    assert_eq!(line(&r, "prop_500")["status"], "paid");
    assert_eq!(
        mails(&app),
        [mail(
            "preq_t:succeeded",
            "ben@example.com",
            "Rent received for Flat 5 — March 2025: €1,200.00"
        )],
        "the mail says what reconciliation shows, never \"retrying\""
    );
}

#[tokio::test]
async fn retries_as_casapay_runs_them_estimated_once_per_attempt_and_stalled_when_late() {
    let app = app().await;
    let retrying = |attempts: i64, status: &str, next: Option<i64>| {
        dated(
            with(
                seed_request("preq_r", "pa_500", status, MARCH_4),
                json!({"attempts": attempts, "failure_reason": "insufficient_funds", "next_retry_at": next}),
            ),
            "prop_500",
        )
    };
    // Attempt 1 failed; CasaPay sent no date: +24 h from the event, estimated.
    app.send_all(&[live_event(
        "evt_r1",
        "payment_request.retrying",
        MARCH_4 + DAY,
        retrying(1, "processing", None),
    )])
    .await;
    let r = reconciliation(&app, "&as_of=2025-03-05").await;
    let l = line(&r, "prop_500");
    assert_eq!(l["status"], "retrying");
    assert_eq!(l["next_retry_at"], MARCH_4 + 2 * DAY);
    assert_eq!(l["next_retry_estimated"], true);
    assert_eq!(l["attempts"], 1);
    assert_eq!(l["retry_stalled"], false);
    // Far later, CasaPay is more than a day late: stalled.
    let late = reconciliation(&app, "&as_of=2025-03-20").await;
    assert_eq!(line(&late, "prop_500")["retry_stalled"], true);
    let report = app.daily_report("2025-03-20").await;
    assert!(
        exceptions_of(&report, "retry_stalled")
            .iter()
            .any(|e| e["property_id"] == "prop_500"),
        "{report}"
    );

    // Attempt 2 failed; back to pending with a date: retrying, not plain pending.
    app.send_all(&[
        live_event(
            "evt_r2",
            "payment_request.retrying",
            MARCH_4 + 2 * DAY,
            retrying(2, "pending", Some(MARCH_4 + 5 * DAY)),
        ),
        // The same attempt reported again by another event: no second mail.
        live_event(
            "evt_r2b",
            "payment_request.processing",
            MARCH_4 + 2 * DAY + 60,
            retrying(2, "processing", Some(MARCH_4 + 5 * DAY)),
        ),
    ])
    .await;
    let r = reconciliation(&app, "&as_of=2025-03-07").await;
    let l = line(&r, "prop_500");
    assert_eq!(l["status"], "retrying");
    assert_eq!(l["next_retry_at"], MARCH_4 + 5 * DAY);
    assert_eq!(l["next_retry_estimated"], false);
    let causes: Vec<String> = mails(&app).into_iter().map(|m| m.0).collect();
    assert_eq!(causes, ["preq_r:retrying:1", "preq_r:retrying:2"]);
}

/// Everything replay rebuilds, as text rows.
fn derived_tables(app: &TestApp) -> Vec<String> {
    [
        "SELECT * FROM payment_requests ORDER BY id",
        "SELECT * FROM payouts ORDER BY id",
        "SELECT id, state, reason FROM events ORDER BY seq",
        "SELECT cause, recipient FROM outbox ORDER BY id",
    ]
    .into_iter()
    .flat_map(|sql| app.rows(sql))
    .collect()
}

#[tokio::test]
async fn a_full_replay_rebuilds_exactly_what_ingest_built_and_mails_nothing_twice() {
    let app = app().await;
    app.send_all(&[
        live_event(
            "evt_1",
            "payment_request.succeeded",
            MARCH_4 + 3 * DAY,
            seed_request("preq_1", "pa_abc123", "succeeded", MARCH_4),
        ),
        live_event(
            "evt_0",
            "payment_request.created",
            MARCH_4,
            seed_request("preq_1", "pa_abc123", "pending", MARCH_4),
        ),
        live_event(
            "evt_2",
            "payout.failed",
            MARCH_4 + 9 * DAY,
            seed_payout("po_1", "failed", "ba_123"),
        ),
        live_event(
            "evt_3",
            "payment_request.succeeded",
            MARCH_4,
            with(
                seed_request("preq_2", "pa_500", "succeeded", MARCH_4),
                json!({"status": "refunded"}),
            ),
        ),
        live_event("evt_4", "customer.updated", MARCH_4, json!({"id": "cus_1"})),
    ])
    .await;
    assert_eq!(state_of(&app, "evt_0"), "superseded");
    let before = derived_tables(&app);
    let policy = IngestPolicy {
        mode: Mode::Live,
        mail: MailPolicy {
            report_to: vec!["ops@example.com".into()],
            timezone: jiff::tz::TimeZone::UTC,
        },
    };
    let summary = app
        .open_database()
        .transaction(|store| ingest::replay(store, false, &policy, 0))
        .unwrap();
    assert_eq!(summary.events, 5);
    assert_eq!(summary.mails_queued, 0, "{summary:?}");
    assert_eq!(derived_tables(&app), before);
}
