//! Several instances on one PostgreSQL database (SPEC §11): exactly once
//! across them. Each test needs a real server, named by
//! `CASAPAY_TEST_POSTGRES` (`.ci/run` sets it and runs these with
//! `--ignored`); without one they are reported as ignored, never as passed.

#[allow(dead_code)]
#[path = "api/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "api/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "api/smtp.rs"]
mod smtp;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use casapay_recon::casapay::signature;
use casapay_recon::config::Settings;
use casapay_recon::domain::{Clock, MailKind, MailMessage, Secret};
use casapay_recon::report::scheduler::Scheduler;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::Value;

use database::TestDatabase;
use helpers::{TestApp, expect_json, payment_request_event, spawn_app_with};
use smtp::SmtpServer;

const ROLL: &str = "property_id,landlord_id,period,amount,currency,landlord_email\n\
                    prop_1,ll_1,2025-03,120000,eur,ana@example.com\n";

/// Two services on one database, as behind a load balancer.
struct TwoInstances {
    apps: [TestApp; 2],
    _database: TestDatabase,
}

async fn two_instances(customize: impl Fn(&mut Settings) + Clone) -> TwoInstances {
    let database = TestDatabase::postgres();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (setting, customize) = (database.setting(), customize.clone());
        let app = spawn_app_with(
            move |s| {
                s.database = setting;
                customize(s);
            },
            // Before 06:00: no daily report joins the mail these tests count.
            Clock::Fixed("2025-03-20T03:00:00Z".parse().unwrap()),
        )
        .await;
        apps.push(app);
    }
    let apps: [TestApp; 2] = apps.try_into().unwrap_or_else(|_| unreachable!());
    TwoInstances {
        apps,
        _database: database,
    }
}

/// Waits (up to a minute) until `sql` counts `expected`; returns the last count.
async fn wait_for(app: &TestApp, sql: &str, expected: i64) -> i64 {
    for _ in 0..600 {
        if app.count(sql) == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.count(sql)
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn redeliveries_spread_over_two_instances_apply_and_mail_once() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let pair = two_instances(move |s| s.smtp_url = Some(Secret::new(url.clone()))).await;
    expect_json(pair.apps[0].import_rent_roll(ROLL).await, 200).await;
    let body = payment_request_event(
        "evt_same",
        "payment_request.succeeded",
        "preq_1",
        "succeeded",
        1_740_000_000,
    );
    let receipts: Vec<Value> = join_all((0..24).map(|i| {
        let (app, body) = (&pair.apps[i % 2], body.clone());
        async move { expect_json(app.post_event(&body).await, 200).await }
    }))
    .await;
    let new = receipts.iter().filter(|r| r["duplicate"] == false).count();
    assert_eq!(
        new, 1,
        "one delivery is new, 23 are duplicates: {receipts:?}"
    );
    let app = &pair.apps[1];
    assert_eq!(app.count("SELECT count(*) FROM events"), 1);
    assert_eq!(app.count("SELECT count(*) FROM payment_requests"), 1);
    assert_eq!(
        wait_for(app, "SELECT count(*) FROM outbox WHERE status = 'sent'", 1).await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox"),
        1,
        "one mail queued"
    );
    assert_eq!(smtp.received().len(), 1, "one mail received");
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn out_of_order_events_split_across_instances_keep_the_newest_state() {
    let pair = two_instances(|_| {}).await;
    // Each object's events arrive at once, newest and oldest interleaved over both instances.
    let statuses = ["processing", "failed", "processing", "succeeded"];
    let mut sends = Vec::new();
    for object in 0..8 {
        for (step, status) in statuses.iter().enumerate().rev() {
            let body = payment_request_event(
                &format!("evt_{object}_{step}"),
                &format!("payment_request.{status}"),
                &format!("preq_{object}"),
                status,
                1_740_000_000 + step as i64 * 60,
            );
            sends.push((sends.len() % 2, body));
        }
    }
    let answers =
        join_all(sends.iter().map(|(which, body)| async {
            pair.apps[*which].post_event(body).await.status().as_u16()
        }))
        .await;
    assert!(answers.iter().all(|status| *status == 200), "{answers:?}");
    let rows =
        pair.apps[0].rows("SELECT id, status, last_event_id FROM payment_requests ORDER BY id");
    let expected: Vec<String> = (0..8)
        .map(|o| {
            let cells = [
                Some(format!("preq_{o}")),
                Some("succeeded".into()),
                Some(format!("evt_{o}_3")),
            ];
            format!("SELECT id, status, last_event_id FROM payment_requests ORDER BY id: {cells:?}")
        })
        .collect();
    assert_eq!(rows, expected);
    // Which events were superseded depends on arrival order; none is lost or left unapplied.
    assert_eq!(
        pair.apps[0].count("SELECT count(*) FROM events WHERE state IN ('applied', 'superseded')"),
        32
    );
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn a_thousand_mails_queued_while_two_instances_run_are_each_sent_once() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let pair = two_instances(move |s| s.smtp_url = Some(Secret::new(url.clone()))).await;
    pair.apps[0].execute(
        "INSERT INTO outbox (cause, kind, recipient, message, next_attempt_at, created_at)
         SELECT 'load:' || g, 'daily_report', 'ops' || g || '@example.com',
                json_build_object('rendered', json_build_object('subject', 'mail ' || g, 'text', 'text', 'html', '<p>html</p>'))::text,
                0, 0
         FROM generate_series(1, 1000) AS g",
    );
    let sent = wait_for(
        &pair.apps[1],
        "SELECT count(*) FROM outbox WHERE status = 'sent'",
        1000,
    )
    .await;
    assert_eq!(sent, 1000);
    let received = smtp.received();
    let recipients: BTreeSet<String> = received.iter().map(|m| m.to.join(",")).collect();
    assert_eq!(received.len(), 1000, "no mail sent twice");
    assert_eq!(recipients.len(), 1000, "every mail sent");
}

fn scheduler(database: &TestDatabase) -> Scheduler {
    let opened = database::open(&database.setting());
    Scheduler {
        clock: Clock::Fixed("2025-03-20T07:00:00Z".parse().unwrap()),
        reads: opened.reads(),
        writer: opened.start_writer().unwrap().0,
        settings: Arc::new(Settings {
            database: database.setting(),
            report_to: vec!["ops@example.com".into()],
            ..Settings::default()
        }),
        mail_wake: Arc::new(tokio::sync::Notify::new()),
        sync: None,
    }
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn both_instances_schedulers_record_one_report_per_date() {
    let database = TestDatabase::postgres();
    let (first, second) = (scheduler(&database), scheduler(&database));
    let (a, b) = tokio::join!(first.run_due(), second.run_due());
    let mut dates = a.unwrap();
    dates.extend(b.unwrap());
    assert_eq!(
        dates.len(),
        1,
        "one of the two recorded the date: {dates:?}"
    );
    let rows = database::query(&database.setting(), "SELECT date FROM daily_reports");
    assert_eq!(rows, [[Some("2025-03-19".to_string())]]);
    let mails = database::query(&database.setting(), "SELECT count(*) FROM outbox");
    assert_eq!(mails, [[Some("1".to_string())]], "one report mail queued");
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn instances_starting_together_on_an_empty_database_migrate_once() {
    let database = TestDatabase::postgres();
    let setting = database.setting();
    let opened: Vec<bool> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| database::try_open(&setting).is_ok()))
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert_eq!(opened, [true; 4], "every instance starts");
    let versions = database::query(&setting, "SELECT version FROM schema_version");
    assert_eq!(versions.len(), 1, "one migration: {versions:?}");
    drop(database);
}

/// Posts event `n` to `port`; whether the service acknowledged it (200).
async fn deliver(client: &reqwest::Client, port: u16, n: usize) -> bool {
    let body = payment_request_event(
        &format!("evt_{n}"),
        "payment_request.succeeded",
        &format!("preq_{n}"),
        "succeeded",
        100,
    );
    let header = signature::sign(
        &Secret::new(helpers::SECRET),
        jiff::Timestamp::now().as_second(),
        body.as_bytes(),
    );
    let sent = client
        .post(format!("http://127.0.0.1:{port}/webhooks/casapay"))
        .header(signature::HEADER, header)
        .body(body)
        .send()
        .await;
    matches!(sent, Ok(response) if response.status().as_u16() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn kill_9_of_one_instance_under_load_loses_no_acknowledged_event() {
    let database = TestDatabase::postgres();
    let setting = database.setting();
    let env = [
        ("CASAPAY_DATABASE", setting.to_str().unwrap()),
        ("CASAPAY_WEBHOOK_SECRETS", helpers::SECRET),
        ("CASAPAY_ADMIN_TOKEN", helpers::ADMIN_TOKEN),
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let victim = process::start_service_with(dirs[0].path(), &env).await;
    let survivor = process::start_service_with(dirs[1].path(), &env).await;
    let ports = [victim.port, survivor.port];
    let client = reqwest::Client::new();
    // 600 events over both instances, 16 at a time; the first is killed once 150 are in.
    let mut deliveries = futures_util::stream::iter(0..600)
        .map(|n| {
            let client = client.clone();
            async move { (n, deliver(&client, ports[n % 2], n).await) }
        })
        .buffer_unordered(16);
    let mut acknowledged = Vec::new();
    let mut victim = Some(victim);
    while let Some((n, acked)) = deliveries.next().await {
        if acked {
            acknowledged.push(n);
        }
        if acknowledged.len() == 150
            && let Some(victim) = victim.take()
        {
            victim.kill().await;
        }
    }
    assert!(victim.is_none(), "the first instance was killed under load");
    let ids: Vec<String> = acknowledged.iter().map(|n| format!("'evt_{n}'")).collect();
    let stored = database::query(
        &setting,
        &format!(
            "SELECT count(*) FROM events WHERE id IN ({})",
            ids.join(",")
        ),
    );
    assert_eq!(
        stored,
        [[Some(acknowledged.len().to_string())]],
        "every acknowledged event is stored"
    );
    // The survivor keeps serving: what the killed one did not acknowledge goes to it.
    let lost: Vec<usize> = (0..600).filter(|n| !acknowledged.contains(n)).collect();
    assert!(!lost.is_empty(), "the kill refused some deliveries");
    for n in &lost {
        assert!(
            deliver(&client, survivor.port, *n).await,
            "evt_{n} taken by the survivor"
        );
    }
    let stored = database::query(&setting, "SELECT count(*) FROM events");
    assert_eq!(
        stored,
        [[Some("600".to_string())]],
        "every acknowledged event is stored"
    );
    survivor.kill().await;
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn a_database_password_never_shows_in_logs_errors_or_help() {
    const PASSWORD: &str = "pw_never_shown_4711";
    let database = TestDatabase::postgres();
    // The server trusts loopback, so any password connects: the URL carries one all the same.
    let url = database.setting().to_str().unwrap().replacen(
        "://postgres@",
        &format!("://postgres:{PASSWORD}@"),
        1,
    );
    assert!(url.contains(PASSWORD), "the test URL names a user: {url}");
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CASAPAY_DATABASE", url.as_str()),
        ("CASAPAY_WEBHOOK_SECRETS", helpers::SECRET),
        ("CASAPAY_ADMIN_TOKEN", helpers::ADMIN_TOKEN),
    ];
    let service = process::start_service_with(dir.path(), &env).await;
    let lines = service.kill().await;
    assert!(
        lines.iter().any(|l| l.contains(":***@")),
        "the database is named, masked: {lines:?}"
    );
    let unreachable = url.replacen("127.0.0.1:5432", "127.0.0.1:9", 1);
    for (args, env_url) in [
        (vec!["migrate"], unreachable.as_str()),
        (vec!["serve", "--help"], url.as_str()),
    ] {
        let output = tokio::process::Command::new(process::BIN)
            .args(&args)
            .env("CASAPAY_DATABASE", env_url)
            .env("CASAPAY_BUSY_TIMEOUT_MS", "500")
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!shown.is_empty(), "{args:?} says something");
        assert!(
            !shown.contains(PASSWORD),
            "{args:?} shows the password: {shown}"
        );
    }
    for line in &lines {
        assert!(
            !line.contains(PASSWORD),
            "a log line shows the password: {line}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: set CASAPAY_TEST_POSTGRES (.ci/run does)"]
async fn a_version_2_database_migrates_and_sends_its_queued_mail_as_rendered() {
    let database = TestDatabase::postgres();
    let setting = database.setting();
    database::execute(
        &setting,
        &format!(
            "{}
             INSERT INTO schema_version (version) VALUES (2);
             INSERT INTO outbox (cause, kind, recipient, subject, text_body, html_body, next_attempt_at, created_at)
               VALUES ('po_1:failed', 'payout_failed', 'a@example.com', 's', 't', 'h', 0, 0);",
            include_str!("fixtures/schema-postgres-v2.sql")
        ),
    );
    let opened = database::open(&setting);
    let versions = database::query(
        &setting,
        "SELECT version FROM schema_version ORDER BY version",
    );
    assert_eq!(
        versions,
        [[Some("2".to_string())], [Some("3".to_string())]],
        "migrated once, to version 3"
    );
    let queued = opened
        .transaction(|store| store.claim_due_mail(0, 1, 10, None))
        .unwrap();
    assert_eq!(
        queued.into_iter().map(|m| m.mail).collect::<Vec<_>>(),
        [Ok((
            MailKind::PayoutFailed,
            MailMessage::Rendered {
                subject: "s".into(),
                text: "t".into(),
                html: "h".into()
            }
        ))],
    );
    drop(opened);
    let fresh = TestDatabase::postgres();
    drop(database::open(&fresh.setting()));
    let columns = |setting: &std::path::Path| {
        database::query(
            setting,
            "SELECT table_name, column_name, data_type, is_nullable, column_default
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, column_name",
        )
    };
    assert_eq!(
        columns(&setting),
        columns(&fresh.setting()),
        "schema.postgres.sql is the migrations' result"
    );
}
