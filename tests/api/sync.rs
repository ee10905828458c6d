//! Sync (SPEC §9) against the simulator's real HTTP API on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casapay_recon::casapay::client::{ApiClient, ClientError, RetryPolicy};
use casapay_recon::domain::{Clock, Secret};
use casapay_recon::sim::world::{Metadata, Request, World};
use casapay_recon::sim::{self, Chaos, MonthConfig, api};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, SECRET, TestApp, exceptions_of, expect_json, spawn_app_with};

const KEY: &str = "sk_test_sync";

/// A simulated CasaPay API serving `world`, and its base URL.
fn casapay(world: Arc<Mutex<World>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = api::serve(
        listener,
        api::ApiState {
            world,
            api_key: Some(KEY.into()),
            changed: Arc::new(tokio::sync::Notify::new()),
        },
    )
    .unwrap();
    tokio::spawn(server);
    base
}

/// The service syncing from `base`. `clock`: before 06:00 on a new database
/// no daily report (and no sync before it) runs on its own.
async fn synced_app_at(base: String, clock: Clock) -> TestApp {
    spawn_app_with(
        move |s| {
            s.api_key = Some(Secret::new(KEY));
            s.api_base = base;
        },
        clock,
    )
    .await
}

/// Today at 05:00 UTC: only syncs the test asks for run.
fn early_today() -> Clock {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    Clock::Fixed(
        today
            .at(5, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp(),
    )
}

/// A CasaPay that refuses every key, at once: its base URL.
fn refusing_casapay() -> String {
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", refusing.local_addr().unwrap());
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(|| async {
            actix_web::HttpResponse::Unauthorized().finish()
        }))
    })
    .listen(refusing)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);
    base
}

async fn synced_app(base: String) -> TestApp {
    synced_app_at(base, early_today()).await
}

async fn sync(app: &TestApp, query: &str) -> serde_json::Value {
    let response = app
        .client
        .post(format!("{}/api/sync{query}", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await
}

#[tokio::test]
async fn a_casapay_without_a_bank_account_list_still_syncs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new()
            .route(
                "/v1/bank_accounts",
                actix_web::web::get().to(|| async { actix_web::HttpResponse::NotFound().finish() }),
            )
            .default_service(actix_web::web::to(|| async {
                actix_web::HttpResponse::Ok().json(json!({"data": [], "has_more": false}))
            }))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);
    let app = synced_app(base).await;
    let summary = sync(&app, "").await;
    assert_eq!(summary["bank_accounts_learned"], 0, "{summary}");
    assert_eq!(
        app.count("SELECT count(*) FROM sync_runs WHERE error IS NULL"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_webhooks_are_recovered_by_sync_and_the_month_reconciles() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The simulator signs with the wall clock, as CasaPay does.
    let app = synced_app_at(base, Clock::System).await;
    let chaos = Chaos::parse("all,drop").unwrap();
    let config = MonthConfig {
        target: app.address.clone(),
        secret: Secret::new(SECRET),
        admin_token: Secret::new(ADMIN_TOKEN),
        period: "2025-03".parse().unwrap(),
        properties: 30,
        seed: 21,
        chaos,
        api: Some((listener, Some(KEY.into()))),
    };
    let report = sim::run_month(config, &indicatif::ProgressBar::hidden())
        .await
        .unwrap();
    assert!(
        !report.delivery.dropped.is_empty(),
        "the month dropped events"
    );
    let synced = report.synced.clone().expect("the service synced");
    assert!(synced["changed"].as_u64().unwrap() > 0, "{synced}");
    assert_eq!(
        report.differences,
        [],
        "{}",
        sim::render_report(&report, "")
    );
    assert!(app.count("SELECT count(*) FROM events WHERE source = 'sync'") > 0);
}

fn request(id: &str, status: &str, created: i64) -> Request {
    Request {
        id: id.into(),
        object: "payment_request",
        payment_agreement: "pa_1".into(),
        amount: 120000,
        currency: "eur".into(),
        description: "March rent".into(),
        status: status.into(),
        payment_method_used: "direct_debit".into(),
        failure_reason: None,
        attempts: 1,
        next_retry_at: None,
        metadata: Some(Metadata {
            property_id: Some("prop_1".into()),
            landlord_id: None,
            period: Some("2025-03".into()),
        }),
        created,
        livemode: true,
    }
}

#[tokio::test]
async fn sync_applies_what_differs_once_mails_once_and_an_event_after_the_fetch_wins() {
    let world = Arc::new(Mutex::new(World::tagged("y_")));
    let app = synced_app(casapay(Arc::clone(&world))).await;
    expect_json(
        app.import_rent_roll("property_id,landlord_id,period,amount,currency,landlord_email\nprop_1,ll_1,2025-03,120000,eur,a@example.com\n")
            .await,
        200,
    )
    .await;
    let created = app.clock.now().as_second() - 3_600;
    {
        let mut world = world.lock().unwrap();
        world.create_request(request("preq_s", "pending", created), created);
        world
            .update_request("preq_s", "payment_request.succeeded", created + 60, |r| {
                r.status = "succeeded".into()
            })
            .unwrap();
    }
    // The webhook arrived and was applied: sync then finds nothing to change.
    let webhook = world.lock().unwrap().events[1].to_string();
    expect_json(app.post_event(&webhook).await, 200).await;
    let first = sync(&app, "").await;
    assert_eq!(
        (first["read"].as_u64(), first["changed"].as_u64()),
        (Some(1), Some(0)),
        "{first}"
    );

    // CasaPay changed the object after the last event, and that event was lost.
    world
        .lock()
        .unwrap()
        .update_request("preq_s", "payment_request.failed", created + 120, |r| {
            r.status = "failed".into();
            r.failure_reason = Some("debit_returned".into());
        })
        .unwrap();
    let second = sync(&app, "").await;
    assert_eq!(second["changed"], 1, "{second}");
    assert_eq!(
        second["changes"][0],
        json!({"object": "preq_s", "from": "succeeded", "to": "failed"})
    );
    let status = |app: &TestApp| -> String {
        app.value("SELECT status FROM payment_requests WHERE id = 'preq_s'")
            .expect("the request is stored")
    };
    assert_eq!(status(&app), "failed");
    let third = sync(&app, "").await;
    assert_eq!(
        third["changed"], 0,
        "a second sync changes nothing: {third}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE cause = 'preq_s:failed'"),
        1,
        "the failure is mailed once"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE cause = 'preq_s:succeeded'"),
        1
    );

    // A late webhook of the success, created before the fetch, changes nothing ...
    let late = world.lock().unwrap().events[1]
        .to_string()
        .replace("evt_y_", "evt_late_y_");
    let receipt = expect_json(app.post_event(&late).await, 200).await;
    assert_eq!(receipt["state"], "superseded");
    // ... but an event created after the fetch wins.
    let now = app.clock.now().as_second() + 5;
    let newer = json!({"id": "evt_after_fetch", "type": "payment_request.succeeded", "created": now, "livemode": true,
        "data": {"object": request("preq_s", "succeeded", created)}});
    let receipt = expect_json(app.post_event(&newer.to_string()).await, 200).await;
    assert_eq!(receipt["state"], "applied");
    assert_eq!(status(&app), "succeeded");
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let world = Arc::new(Mutex::new(World::tagged("d_")));
    let base = casapay(Arc::clone(&world));
    let app = synced_app(base.clone()).await;
    let created = app.clock.now().as_second() - 3600;
    world
        .lock()
        .unwrap()
        .create_request(request("preq_d", "pending", created), created);
    let tables = |app: &TestApp| -> Vec<String> {
        ["events", "payment_requests", "outbox", "sync_runs"]
            .into_iter()
            .flat_map(|t| app.rows(&format!("SELECT * FROM {t}")))
            .collect()
    };
    let before = tables(&app);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casapay-recon"))
        .args(["sync", "--dry-run"])
        .env("CASAPAY_DATABASE", &app.database)
        .env("CASAPAY_API_KEY", KEY)
        .env("CASAPAY_API_BASE", &base)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(
        stdout.contains("preq_d"),
        "what would change is shown: {stdout}"
    );
    assert_eq!(tables(&app), before);
}

#[tokio::test]
async fn api_failures_are_retried_within_bounds_then_recorded_as_sync_failed() {
    // A CasaPay that answers 429 with Retry-After, 500, garbage, or too late, for ever.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let server = actix_web::HttpServer::new(move || {
        let counter = Arc::clone(&counter);
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match n % 4 {
                    0 => actix_web::HttpResponse::TooManyRequests()
                        .insert_header(("Retry-After", "0"))
                        .finish(),
                    1 => actix_web::HttpResponse::InternalServerError().finish(),
                    2 => actix_web::HttpResponse::Ok().body("{\"not\":\"a page\"}"),
                    _ => {
                        // Slower than the client's timeout (and garbage even then).
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        actix_web::HttpResponse::Ok().body("[]")
                    }
                }
            }
        }))
    })
    .listen(listener)
    .unwrap()
    .workers(1)
    .run();
    tokio::spawn(server);
    let client = ApiClient::new(
        &base,
        Secret::new(KEY),
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_millis(300),
        },
    )
    .unwrap();
    let failed = client.page("payment_requests", None).await.unwrap_err();
    assert!(matches!(failed, ClientError::Failed { .. }), "{failed}");
    let made = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!((4..=16).contains(&made), "bounded retries: {made} calls");

    // Through the service (against a CasaPay that refuses the key, so it
    // fails at once): the run is recorded, and the daily report says so.
    let refusing_base = refusing_casapay();
    let app = synced_app(refusing_base).await;
    let response = app
        .client
        .post(format!("{}/api/sync", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let error = expect_json(response, 502).await;
    assert_eq!(error["error"]["type"], "sync_failed");
    assert!(
        !error["error"]["message"].as_str().unwrap().contains(KEY),
        "the key is never shown"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sync_runs WHERE error IS NOT NULL"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM payment_requests"),
        0,
        "nothing half-read is applied"
    );
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let report = app.daily_report(&today.to_string()).await;
    assert!(
        !exceptions_of(&report, "sync_failed").is_empty(),
        "{report}"
    );
}

#[tokio::test]
async fn the_daily_report_checks_casapays_balance_against_what_is_due() {
    let world = Arc::new(Mutex::new(World::tagged("b_")));
    let app = synced_app(casapay(Arc::clone(&world))).await;
    expect_json(
        app.import_rent_roll(
            "property_id,landlord_id,period,amount,currency\nprop_1,ll_1,2025-03,120000,eur\n",
        )
        .await,
        200,
    )
    .await;
    let created = app.clock.now().as_second() - 3_600;
    {
        let mut world = world.lock().unwrap();
        world.create_request(request("preq_b", "pending", created), created);
        world
            .update_request("preq_b", "payment_request.succeeded", created + 60, |r| {
                r.status = "succeeded".into()
            })
            .unwrap();
        // CasaPay already sent most of it elsewhere: 200.00 is left of the 1,200.00 due.
        let payout = casapay_recon::sim::world::Payout {
            id: "po_elsewhere".into(),
            object: "payout",
            amount: 100_000,
            currency: "eur".into(),
            status: "pending".into(),
            destination: "ba_other".into(),
            arrival_date: created,
            description: String::new(),
            failure_code: None,
            failure_message: None,
            metadata: None,
            created,
            livemode: true,
        };
        world.create_payout(payout, created);
    }
    let webhook = world.lock().unwrap().events[1].to_string();
    expect_json(app.post_event(&webhook).await, 200).await;
    let report = app.daily_report("2025-03-20").await;
    assert_eq!(
        report["balance"]["lines"],
        json!([{"currency": "eur", "available": 20000, "pending": 0, "due_to_landlords": 120000, "short": true}]),
        "{report}"
    );
    let short = *exceptions_of(&report, "balance_short")
        .first()
        .expect("a balance_short exception");
    assert_eq!(short["amount"], 100000);

    // A failed balance call says so; it is never read as a zero balance.
    let refusing_base = refusing_casapay();
    let unknown = synced_app(refusing_base).await;
    let report = unknown.daily_report("2025-03-20").await;
    assert!(
        report["balance"]["error"].as_str().unwrap().contains("401"),
        "{report}"
    );
    assert!(report["balance"].get("lines").is_none());
}
