//! SPEC §6: the daily report's content, and the scheduler's once-per-date mail.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use casapay_recon::config::Settings;
use casapay_recon::domain::Clock;
use casapay_recon::domain::Secret;
use casapay_recon::format::Format;
use casapay_recon::report::render::write_report;
use casapay_recon::report::scheduler::Scheduler;
use casapay_recon::report::{Detail, build_daily_report};
use casapay_recon::store;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, event_with, exceptions_of, expect_json, payout, request, spawn_app_with,
};
use crate::smtp::{ReceivedMail, SmtpServer};

const ROLL: &str = "property_id,landlord_id,period,amount,currency,landlord_email,due_date
prop_1,ll_1,2025-02..2025-03,120000,eur,ana@example.com,1
prop_2,ll_2,2025-03,95000,eur,,1
prop_3,ll_2,2025-03,50000,eur,,25
";

fn kinds(report: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = report["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

#[tokio::test]
async fn the_report_for_a_known_day_of_events() {
    let now = "2025-03-20T10:00:00Z".parse().unwrap();
    // Ana's two mails (rent received, payout failed) cannot be delivered:
    // the port is held but nothing listens; one attempt only.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let dead_smtp = format!(
        "smtp://127.0.0.1:{}",
        socket.local_addr().unwrap().as_socket().unwrap().port()
    );
    let app = spawn_app_with(
        move |s| {
            s.smtp_url = Some(Secret::new(dead_smtp));
            s.mail_max_attempts = 1;
        },
        Clock::Fixed(now),
    )
    .await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    let mut retrying = request("preq_2", "prop_2", 95000, "eur", "processing");
    retrying["next_retry_at"] = json!(1_742_860_800);
    retrying["failure_reason"] = json!("insufficient_funds");
    app.send_all(&[
        event_with(
            "e1",
            "payment_request.succeeded",
            10,
            request("preq_1", "prop_1", 120000, "eur", "succeeded"),
        ),
        event_with("e2", "payment_request.retrying", 10, retrying),
        event_with(
            "e3",
            "payment_request.succeeded",
            10,
            request("preq_x", "prop_zzz", 5000, "eur", "succeeded"),
        ),
        event_with(
            "e4",
            "payout.failed",
            10,
            payout("po_1", "ll_1", 110000, "failed"),
        ),
        event_with("e5", "customer.updated", 10, json!({"id": "cus_1"})),
    ])
    .await;
    app.wait_for_count("SELECT count(*) FROM outbox WHERE status = 'failed'", 2)
        .await;

    let report = app.daily_report("2025-03-20").await;
    assert_eq!(report["object"], "daily_report");
    assert_eq!(report["date"], "2025-03-20");
    assert_eq!(report["events"]["received"], 5);
    assert_eq!(report["events"]["by_type"]["payment_request.succeeded"], 2);
    assert_eq!(report["events"]["by_type"]["customer.updated"], 1);
    let periods: Vec<&str> = report["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(
        periods,
        ["2025-02", "2025-03"],
        "February still has an overdue line"
    );
    assert_eq!(
        kinds(&report),
        [
            "overdue",
            "payout_failed",
            "retrying",
            "undeliverable_mail",
            "undeliverable_mail",
            "unmatched"
        ],
        "{:#}",
        report["exceptions"]
    );
    let overdue = exceptions_of(&report, "overdue")[0];
    assert_eq!(overdue["property_id"], "prop_1");
    assert_eq!(overdue["period"], "2025-02");
    assert_eq!(overdue["amount"], 120000);
    assert_eq!(report["totals"][0]["expected"], 120000 * 2 + 95000 + 50000);
    assert_eq!(report["totals"][0]["collected"], 120000);

    let yesterday = expect_json(app.get_admin("/api/reports/daily").await, 200).await;
    assert_eq!(yesterday["date"], "2025-03-19");
    assert_eq!(yesterday["events"]["received"], 0);

    let html = app
        .get_admin("/api/reports/daily?date=2025-03-20&format=html")
        .await
        .text()
        .await
        .unwrap();
    let at = |heading: &str| {
        html.find(heading)
            .unwrap_or_else(|| panic!("no {heading} in {html}"))
    };
    assert!(
        at("What changed") < at("Arrears") && at("Arrears") < at("Exceptions (6)"),
        "what changed, then arrears, then exceptions"
    );
    assert!(at("Exceptions (6)") < at("<h2>Periods</h2>"));
    // February's line is 47 days past due; the retrying one is still being collected.
    assert_eq!(
        report["arrears"]["totals"]["eur"]["31-60"]["outstanding"],
        120000
    );
    assert_eq!(
        report["arrears"]["totals"]["eur"]["in_collection"]["outstanding"],
        95000
    );
    let csv = app
        .get_admin("/api/reports/daily?date=2025-03-20&format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 7);
    assert!(
        csv.starts_with(
            "kind,property_id,landlord_id,period,amount,amount_display,currency,detail"
        )
    );
}

async fn scheduled_app(database: PathBuf, smtp: &SmtpServer, now: &str) -> TestApp {
    let url = smtp.url();
    spawn_app_with(
        move |s| {
            s.database = database;
            s.smtp_url = Some(Secret::new(url));
            s.report_to = vec!["ops@example.com".into()];
            s.report_at = jiff::civil::Time::constant(6, 0, 0, 0);
        },
        Clock::Fixed(now.parse().unwrap()),
    )
    .await
}

fn report_subjects(mails: &[ReceivedMail]) -> Vec<String> {
    let mut subjects: Vec<String> = mails.iter().map(ReceivedMail::subject).collect();
    subjects.sort();
    subjects
}

#[tokio::test]
async fn the_scheduler_mails_once_per_date_across_restarts_and_catches_up() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shared.db");

    let first = scheduled_app(database.clone(), &smtp, "2025-03-17T07:00:00Z").await;
    assert_eq!(
        first
            .wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 1)
            .await,
        1
    );
    assert_eq!(
        report_subjects(&smtp.received()),
        ["Daily reconciliation report 2025-03-16: 0 exceptions"]
    );

    // Down for three days: the next start sends every date missed.
    let second = scheduled_app(database.clone(), &smtp, "2025-03-20T07:00:00Z").await;
    assert_eq!(
        second
            .wait_for_count("SELECT count(*) FROM outbox WHERE status = 'sent'", 4)
            .await,
        4
    );
    // And a restart on the same day finds nothing due: its scheduler, run
    // directly on the same database, records no report and queues no mail.
    let opened = store::Database::open(
        &store::Location::Sqlite(database.clone()),
        store::Options {
            wait: Duration::from_secs(5),
            write_queue: 16,
            write_batch: 16,
        },
    )
    .unwrap();
    let restarted = Scheduler {
        clock: Clock::Fixed("2025-03-20T08:00:00Z".parse().unwrap()),
        reads: opened.reads(),
        writer: opened.start_writer().unwrap().0,
        settings: Arc::new(Settings {
            database: database.clone(),
            report_to: vec!["ops@example.com".into()],
            ..Settings::default()
        }),
        mail_wake: Arc::new(tokio::sync::Notify::new()),
        sync: None,
    };
    assert_eq!(restarted.run_due().await.unwrap(), []);
    assert_eq!(second.count("SELECT count(*) FROM outbox"), 4);
    assert_eq!(second.count("SELECT count(*) FROM daily_reports"), 4);
    assert_eq!(
        report_subjects(&smtp.received()),
        [
            "Daily reconciliation report 2025-03-16: 0 exceptions",
            "Daily reconciliation report 2025-03-17: 0 exceptions",
            "Daily reconciliation report 2025-03-18: 0 exceptions",
            "Daily reconciliation report 2025-03-19: 0 exceptions",
        ]
    );
    let mail = &smtp.received()[0];
    assert!(
        mail.parsed()
            .body_html(0)
            .unwrap()
            .contains("<h1>Daily reconciliation report")
    );
    assert!(mail.to.iter().all(|to| to == "ops@example.com"));
}

#[tokio::test]
async fn report_send_delivers_only_its_own_mail_never_the_services_outbox() {
    // The service's SMTP server is down: a landlord mail waits in the outbox.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let app = spawn_app_with(
        move |s| s.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}"))),
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    expect_json(app.import_rent_roll(ROLL).await, 200).await;
    app.send_all(&[event_with(
        "evt_w",
        "payment_request.succeeded",
        10,
        request("preq_w", "prop_1", 120000, "eur", "succeeded"),
    )])
    .await;
    let waiting = "SELECT count(*) FROM outbox WHERE cause = 'preq_w:succeeded' AND status = 'queued' AND attempts > 0";
    assert_eq!(app.wait_for_count(waiting, 1).await, 1);

    let mail_dir = tempfile::tempdir().unwrap();
    let mail_dir_text = mail_dir.path().to_string_lossy().to_string();
    let stderr = send_report_by_hand(&app, ("CASAPAY_MAIL_DIR", &mail_dir_text)).await;
    assert_eq!(
        app.count(waiting),
        1,
        "the landlord's mail still waits for the service's SMTP"
    );
    let files: Vec<_> = std::fs::read_dir(mail_dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "only the report was written");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE kind = 'daily_report' AND status = 'sent'"),
        1
    );
    assert!(
        stderr.contains("report sent to ops@example.com"),
        "{stderr}"
    );

    // Sent by hand again while SMTP is down: this send's one mail is counted
    // as waiting, not the landlord's or the first report's.
    let smtp = format!("smtp://127.0.0.1:{port}");
    let stderr = send_report_by_hand(&app, ("CASAPAY_SMTP_URL", &smtp)).await;
    assert!(
        stderr.contains("1 report mail(s) not delivered yet"),
        "{stderr}"
    );
    drop(socket);
}

/// `report daily --date 2025-03-20 --send` to ops@example.com on the app's
/// database with one setting more (and no SMTP URL unless that is it); its
/// standard error, once it succeeded.
async fn send_report_by_hand(app: &TestApp, (name, value): (&str, &str)) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casapay-recon"))
        .args(["report", "daily", "--date", "2025-03-20", "--send"])
        .env("CASAPAY_DATABASE", &app.database)
        .env("CASAPAY_REPORT_TO", "ops@example.com")
        .env_remove("CASAPAY_SMTP_URL")
        .env(name, value)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// Builds the report for `date` and records it, as the scheduler does.
fn record_report(app: &TestApp, date: &str) -> Value {
    let built = app
        .open_database()
        .transaction(|store| {
            let built = casapay_recon::report::build_daily_report(
                store,
                date.parse().unwrap(),
                &jiff::tz::TimeZone::UTC,
                Detail::Full,
            )?;
            let recorded = casapay_recon::report::recorded_exceptions(&built);
            assert!(store.record_daily_report(date, &recorded, &[], 0)?);
            Ok(built)
        })
        .unwrap();
    serde_json::to_value(&built).unwrap()
}

fn keys(list: &Value) -> Vec<String> {
    let mut keys: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["property_id"]
                    .as_str()
                    .or(e["subject"].as_str())
                    .unwrap_or("")
            )
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn what_changed_across_three_consecutive_reports() {
    let app = spawn_app_with(
        |_| {},
        Clock::Fixed("2025-03-02T03:00:00Z".parse().unwrap()),
    )
    .await;
    expect_json(
        app.import_rent_roll("property_id,landlord_id,period,amount,currency\nprop_a,ll_1,2025-03,1000,eur\nprop_b,ll_1,2025-03,1000,eur\n")
            .await,
        200,
    )
    .await;

    let first = record_report(&app, "2025-03-02");
    assert_eq!(
        keys(&first["changes"]["new"]),
        ["overdue prop_a", "overdue prop_b"]
    );
    assert_eq!(first["changes"]["unchanged"], 0);
    assert!(
        first["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["since"] == "2025-03-02")
    );

    app.send_all(&[event_with(
        "evt_a",
        "payment_request.succeeded",
        10,
        request("preq_a", "prop_a", 1000, "eur", "succeeded"),
    )])
    .await;
    let second = record_report(&app, "2025-03-03");
    assert_eq!(second["changes"]["compared_with"], "2025-03-02");
    assert_eq!(keys(&second["changes"]["new"]), Vec::<String>::new());
    assert_eq!(second["changes"]["unchanged"], 1);
    assert_eq!(second["changes"]["resolved"][0]["kind"], "overdue");
    assert!(
        second["changes"]["resolved"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("prop_a")
    );
    assert_eq!(
        second["exceptions"][0]["since"], "2025-03-02",
        "prop_b since the first report"
    );

    app.send_all(&[event_with(
        "evt_x",
        "payment_request.succeeded",
        10,
        request("preq_x", "prop_zzz", 500, "eur", "succeeded"),
    )])
    .await;
    let third = record_report(&app, "2025-03-04");
    assert_eq!(keys(&third["changes"]["new"]), ["unmatched prop_zzz"]);
    assert_eq!(third["changes"]["unchanged"], 1);
    assert_eq!(third["changes"]["resolved"], json!([]));
    let exceptions = third["exceptions"].as_array().unwrap();
    assert_eq!(exceptions[0]["kind"], "unmatched", "new ones first");
    assert_eq!(exceptions[0]["since"], "2025-03-04");
    assert_eq!(exceptions[1]["since"], "2025-03-02");
}

#[tokio::test]
async fn a_report_over_ten_thousand_exceptions_stays_small_and_says_how_many_more() {
    let app = spawn_app_with(
        |_| {},
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    let mut roll = String::from("property_id,landlord_id,period,amount,currency\n");
    for p in 0..10_000 {
        roll.push_str(&format!(
            "prop_{p},ll_{},2025-02..2025-03,1000,eur\n",
            p % 500
        ));
    }
    expect_json(app.import_rent_roll(&roll).await, 200).await;
    for format in ["text", "html"] {
        let body = app
            .get_admin(&format!(
                "/api/reports/daily?date=2025-03-20&format={format}"
            ))
            .await
            .text()
            .await
            .unwrap();
        assert!(body.len() < 120_000, "{format}: {} bytes", body.len());
        assert!(
            body.contains(
                "19800 more — see `casapay-recon report daily --date 2025-03-20 --format csv`"
            ),
            "{format}"
        );
    }
    let csv = app
        .get_admin("/api/reports/daily?date=2025-03-20&format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 20_001, "CSV lists every exception");
}

fn render_report(report: &casapay_recon::report::DailyReport, format: Format) -> String {
    let mut out = Vec::new();
    write_report(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_summarised_report_reads_as_the_full_one_in_text_html_and_csv() {
    let app = spawn_app_with(
        |_| {},
        Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
    )
    .await;
    expect_json(
        app.import_rent_roll(
            "property_id,landlord_id,period,amount,currency\n\
             prop_a,ll_1,2025-01..2025-03,1000,eur\n\
             prop_b,ll_2,2025-02..2025-03,2000,gbp\n",
        )
        .await,
        200,
    )
    .await;
    app.send_all(&[
        event_with(
            "evt_a",
            "payment_request.succeeded",
            10,
            request("preq_a", "prop_a", 400, "eur", "succeeded"),
        ),
        event_with(
            "evt_x",
            "payment_request.succeeded",
            10,
            request("preq_x", "prop_zzz", 500, "eur", "succeeded"),
        ),
    ])
    .await;
    let database = app.open_database();
    let built = |detail| {
        database
            .reads()
            .read(|store| {
                build_daily_report(
                    store,
                    "2025-03-19".parse().unwrap(),
                    &jiff::tz::TimeZone::UTC,
                    detail,
                )
            })
            .unwrap()
    };
    let (full, summary) = (built(Detail::Full), built(Detail::Summary));
    assert_eq!(full.periods.len(), 3, "every period with an exception");
    assert!(
        summary.periods.iter().all(|p| p.lines.is_empty()),
        "no lines kept"
    );
    for format in [Format::Text, Format::Html, Format::Csv] {
        assert_eq!(
            render_report(&summary, format),
            render_report(&full, format),
            "{format:?}"
        );
    }
    let text = render_report(&summary, Format::Text);
    assert!(text.contains("2025-01"), "{text}");
    assert_eq!(
        serde_json::to_value(&summary.arrears).unwrap(),
        serde_json::to_value(&full.arrears).unwrap()
    );
}
