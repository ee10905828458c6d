//! SPEC §7 through the real endpoint and a real SMTP server on loopback.

use std::time::Duration;

use casapay_recon::domain::Clock;
use casapay_recon::domain::Secret;
use serde_json::json;

use crate::helpers::{
    TestApp, event_with, exceptions_of, expect_json, payout, request, spawn_app_with,
};
use crate::smtp::{ReceivedMail, SmtpServer};

const ROLL: &str = "property_id,landlord_id,period,amount,currency,landlord_email,landlord_name,property_name,notify
prop_1,ll_1,2025-03,120000,eur,ana@example.com,Ana,<script>alert('oak')</script> 12 Oak St,true
prop_2,ll_2,2025-03,1150000,gbp,ben@example.com,Ben,Flat 2,true
prop_3,ll_3,2025-03,1200,jpy,quiet@example.com,Quiet,Flat 3,false
prop_4,ll_4,2025-03,1500,bhd,dina@example.com,Dina,Villa 4,true
";

async fn mail_app(smtp_url: String) -> TestApp {
    let app = spawn_app_with(
        move |s| {
            s.smtp_url = Some(Secret::new(smtp_url));
            s.report_to = vec!["ops@example.com".into()];
            s.mail_retry_base = Duration::from_millis(300);
        },
        // Before 06:00 on a new database: no daily report joins these mails.
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    app
}

fn to(mail: &ReceivedMail) -> String {
    mail.to.join(",")
}

/// Waits until the outbox holds exactly `count` mails, all marked sent, and
/// returns what the SMTP server received. A mail is marked sent only after the
/// server accepted it, and nothing is left to send, so nothing more can arrive.
async fn delivered(app: &TestApp, smtp: &SmtpServer, count: i64) -> Vec<ReceivedMail> {
    let sent = app
        .wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", count)
        .await;
    assert_eq!(sent, count, "mails marked sent");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status != 'sent'"),
        0,
        "nothing else is waiting to be sent"
    );
    let mails = smtp.received();
    assert_eq!(mails.len() as i64, count, "each mail received exactly once");
    mails
}

#[tokio::test]
async fn each_event_type_mails_the_right_people_with_the_right_amounts() {
    let smtp = SmtpServer::start();
    let app = mail_app(smtp.url()).await;
    let mut retrying = request("preq_r", "prop_2", 1150000, "gbp", "processing");
    retrying["next_retry_at"] = json!(1_742_860_800);
    retrying["failure_reason"] = json!("insufficient_funds");
    let mut failed = request("preq_f", "prop_4", 1500, "bhd", "failed");
    failed["failure_reason"] = json!("account_closed");
    let mut payout_failed = payout("po_f", "ll_2", 1_000_000, "failed");
    payout_failed["failure_message"] = json!("The bank account has been closed.");
    app.send_all(&[
        event_with(
            "evt_s",
            "payment_request.succeeded",
            10,
            request("preq_s", "prop_1", 120000, "eur", "succeeded"),
        ),
        event_with("evt_r", "payment_request.retrying", 10, retrying),
        event_with("evt_f", "payment_request.failed", 10, failed),
        event_with(
            "evt_pp",
            "payout.paid",
            10,
            payout("po_p", "ll_1", 110400, "paid"),
        ),
        event_with("evt_pf", "payout.failed", 10, payout_failed),
        event_with(
            "evt_c",
            "payment_request.created",
            10,
            request("preq_c", "prop_1", 120000, "eur", "pending"),
        ),
    ])
    .await;
    let mails = delivered(&app, &smtp, 7).await;
    let mut seen: Vec<(String, String)> = mails.iter().map(|m| (to(m), m.subject())).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "ana@example.com".to_string(),
                "Payout paid: €1,104.00 for March 2025".to_string()
            ),
            (
                "ana@example.com".into(),
                "Rent received for <script>alert('oak')</script> 12 Oak St — March 2025: €1,200.00"
                    .into()
            ),
            (
                "ben@example.com".into(),
                "Payout failed: €10,000.00 for March 2025".into()
            ),
            (
                "ben@example.com".into(),
                "Rent collection for Flat 2 — March 2025 failed; retrying 25 March 2025".into()
            ),
            (
                "dina@example.com".into(),
                "Rent collection failed for Villa 4 — March 2025: .د.ب1.500".into()
            ),
            (
                "ops@example.com".into(),
                "Payout failed: €10,000.00 for March 2025".into()
            ),
            (
                "ops@example.com".into(),
                "Rent collection failed for Villa 4 — March 2025: .د.ب1.500".into()
            ),
        ]
    );
    for mail in &mails {
        let parsed = mail.parsed();
        let text = parsed.body_text(0).expect("a text part").to_string();
        let html = parsed.body_html(0).expect("an HTML part").to_string();
        assert!(html.contains("<table"), "a real HTML part: {html}");
        assert!(!text.contains("<table"), "a real text part: {text}");
        assert!(
            !html.contains("<script>"),
            "values are escaped in HTML: {html}"
        );
    }
    let received = mails
        .iter()
        .find(|m| m.subject().starts_with("Rent received"))
        .unwrap();
    assert!(
        received
            .parsed()
            .body_html(0)
            .unwrap()
            .contains("&#60;script&#62;")
    );
    assert!(
        received
            .parsed()
            .body_text(0)
            .unwrap()
            .contains("Hello Ana,")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        7
    );
}

#[tokio::test]
async fn twenty_concurrent_redeliveries_send_one_mail() {
    let smtp = SmtpServer::start();
    let app = mail_app(smtp.url()).await;
    let body = event_with(
        "evt_dup",
        "payment_request.succeeded",
        10,
        request("preq_d", "prop_1", 120000, "eur", "succeeded"),
    );
    let sends = (0..20).map(|_| app.post_event(&body));
    for response in futures_util::future::join_all(sends).await {
        expect_json(response, 200).await;
    }
    delivered(&app, &smtp, 1).await;
}

#[tokio::test]
async fn opted_out_landlords_and_late_events_mail_nobody() {
    let smtp = SmtpServer::start();
    let app = mail_app(smtp.url()).await;
    app.send_all(&[
        event_with(
            "evt_q",
            "payment_request.succeeded",
            10,
            request("preq_q", "prop_3", 1200, "jpy", "succeeded"),
        ),
        event_with(
            "evt_new",
            "payment_request.succeeded",
            200,
            request("preq_l", "prop_1", 120000, "eur", "succeeded"),
        ),
    ])
    .await;
    // Older than what is stored: stored, but nobody hears "retrying" after "received".
    let mut late = request("preq_l", "prop_1", 120000, "eur", "processing");
    late["next_retry_at"] = json!(1_742_860_800);
    app.send_all(&[event_with("evt_old", "payment_request.retrying", 100, late)])
        .await;
    let subjects: Vec<String> = delivered(&app, &smtp, 1)
        .await
        .iter()
        .map(ReceivedMail::subject)
        .collect();
    assert!(
        subjects[0].starts_with("Rent received for <script>"),
        "{subjects:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE cause IN ('evt_q', 'evt_old')"),
        0
    );
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_and_never_loses_or_doubles_it() {
    // A port held but not listening yet: connections are refused, and no other
    // process can take it before the server starts on it.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let app = mail_app(format!("smtp://127.0.0.1:{port}")).await;
    let events: Vec<String> = (0..3)
        .map(|i| {
            event_with(
                &format!("evt_o{i}"),
                "payment_request.succeeded",
                10,
                request(&format!("preq_o{i}"), "prop_1", 120000, "eur", "succeeded"),
            )
        })
        .collect();
    app.send_all(&events).await;
    app.wait_for_count(
        "SELECT count(*) FROM outbox WHERE attempts > 0 AND last_error IS NOT NULL",
        3,
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'queued' AND attempts > 0"),
        3,
        "kept for retry"
    );

    socket.listen(16).unwrap();
    let smtp = SmtpServer::start_on(socket.into());
    let mails = delivered(&app, &smtp, 3).await;
    // Same subject for all three: the reference in the body tells them apart.
    let mut references: Vec<String> = mails
        .iter()
        .map(|m| {
            let text = m.parsed().body_text(0).unwrap().to_string();
            let reference = text.split("preq_o").nth(1).expect("a reference");
            format!("preq_o{}", &reference[..1])
        })
        .collect();
    references.sort();
    assert_eq!(references, ["preq_o0", "preq_o1", "preq_o2"]);
}

#[tokio::test]
async fn without_smtp_mail_is_written_as_eml_files_that_parse() {
    let app = spawn_app_with(|_| {}, Clock::System).await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    app.send_all(&[event_with(
        "evt_e",
        "payment_request.succeeded",
        10,
        request("preq_e", "prop_2", 1150000, "gbp", "succeeded"),
    )])
    .await;
    // Marked sent only once the file is completely written.
    assert_eq!(
        app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
            .await,
        1
    );
    let folder = app.dir.join("mail");
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let bytes = std::fs::read(&files[0]).unwrap();
    let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.subject(),
        Some("Rent received for Flat 2 — March 2025: £11,500.00")
    );
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("ben@example.com")
    );
    assert!(message.body_html(0).unwrap().contains("<table"));
    assert!(message.body_text(0).unwrap().contains("£11,500.00"));
}

async fn scripted_app(smtp: &crate::smtp::ScriptedSmtp) -> TestApp {
    let url = smtp.url();
    let app = spawn_app_with(
        move |s| {
            s.smtp_url = Some(Secret::new(url));
            s.mail_retry_base = Duration::from_millis(50);
        },
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    app
}

fn rent_received(event: &str, request_id: &str) -> String {
    event_with(
        event,
        "payment_request.succeeded",
        10,
        request(request_id, "prop_1", 120000, "eur", "succeeded"),
    )
}

#[tokio::test]
async fn a_dropped_connection_and_a_4xx_are_retried_into_exactly_one_mail() {
    use crate::smtp::{Answer, ScriptedSmtp};
    let smtp = ScriptedSmtp::start(vec![Answer::Drop, Answer::Code(451), Answer::Accept]);
    let app = scripted_app(&smtp).await;
    app.send_all(&[rent_received("evt_r", "preq_r")]).await;
    assert_eq!(
        app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
            .await,
        1
    );
    assert_eq!(
        *smtp.delivered_attempts.lock().unwrap(),
        3,
        "dropped, deferred, accepted"
    );
    assert_eq!(smtp.accepted().len(), 1, "accepted once");
    assert_eq!(app.count("SELECT attempts FROM outbox"), 3);
}

#[tokio::test]
async fn a_5xx_fails_the_mail_at_once_and_the_report_says_so() {
    use crate::smtp::{Answer, ScriptedSmtp};
    let smtp = ScriptedSmtp::start(vec![Answer::Code(550)]);
    let app = scripted_app(&smtp).await;
    app.send_all(&[rent_received("evt_f", "preq_f")]).await;
    assert_eq!(
        app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'failed'", 1)
            .await,
        1
    );
    assert_eq!(app.count("SELECT attempts FROM outbox"), 1, "never retried");
    assert!(smtp.accepted().is_empty());
    let report = app.daily_report("2025-03-20").await;
    let undeliverable = exceptions_of(&report, "undeliverable_mail");
    assert!(
        undeliverable.iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("(Rent received for ")),
        "the exception names the mail by its subject, worded from its stored values: {report}"
    );
}

#[tokio::test]
async fn a_stalled_smtp_server_never_blocks_webhooks() {
    use crate::smtp::{Answer, ScriptedSmtp};
    let smtp = ScriptedSmtp::start(vec![Answer::Stall]);
    let app = scripted_app(&smtp).await;
    app.send_all(&[rent_received("evt_s1", "preq_s1")]).await;
    // The worker is now waiting on a server that never answers ...
    let stalled = tokio::time::timeout(Duration::from_secs(20), async {
        while *smtp.delivered_attempts.lock().unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(stalled.is_ok(), "the mail reached the stalled server");
    // ... and webhooks are stored and answered all the same.
    for i in 0..20 {
        let receipt = expect_json(
            app.post_event(&rent_received(
                &format!("evt_more_{i}"),
                &format!("preq_more_{i}"),
            ))
            .await,
            200,
        )
        .await;
        assert_eq!(receipt["state"], "applied");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE status = 'sending'"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox"),
        21,
        "every mail queued"
    );
}
