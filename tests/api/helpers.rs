//! `spawn_app()`: the real service on 127.0.0.1:0 with a database of its own
//! (SQLite, or PostgreSQL with `CASAPAY_TEST_ENGINE=postgres`: see `database`).

use std::path::PathBuf;

use crate::database::{self, TestDatabase};
use casapay_recon::casapay::signature;
use casapay_recon::config::Settings;
use casapay_recon::domain::Clock;
use casapay_recon::domain::Secret;
use casapay_recon::startup::Application;
use serde_json::{Value, json};

pub const SECRET: &str = "whsec_test_integration";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

pub struct TestApp {
    pub address: String,
    /// The separate `/metrics` listener, with `metrics_bind`.
    pub metrics_address: Option<String>,
    /// The `database` setting: a file path, or a PostgreSQL URL.
    pub database: PathBuf,
    /// A temporary directory of its own (mail folder, files).
    pub dir: PathBuf,
    pub client: reqwest::Client,
    pub secret: Secret,
    pub clock: Clock,
    _database: TestDatabase,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Clock::System).await
}

/// Starts the service with test settings changed by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings), clock: Clock) -> TestApp {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = TestDatabase::fresh();
    let mut settings = Settings {
        database: database.setting(),
        bind: "127.0.0.1:0".into(),
        webhook_secrets: Some(vec![Secret::new(SECRET)]),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        mail_dir: dir.path().join("mail"),
        ..Settings::default()
    };
    customize(&mut settings);
    let app = Application::build_with_clock(&settings, clock).expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        database: settings.database.clone(),
        dir: dir.path().to_path_buf(),
        client: reqwest::Client::new(),
        secret: settings
            .webhook_secrets
            .and_then(|s| s.into_iter().next())
            .unwrap_or_else(|| Secret::new(SECRET)),
        clock,
        _database: database,
        _dir: dir,
    }
}

impl TestApp {
    /// Posts `body` signed at the app's "now" with its secret.
    pub async fn post_event(&self, body: &str) -> reqwest::Response {
        let header = signature::sign(&self.secret, self.clock.now().as_second(), body.as_bytes());
        self.post_raw(body.as_bytes().to_vec(), Some(header)).await
    }

    pub async fn post_raw(&self, body: Vec<u8>, header: Option<String>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhooks/casapay", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(header) = header {
            request = request.header(signature::HEADER, header);
        }
        request.send().await.expect("the request is sent")
    }

    pub async fn get_admin(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn import_rent_roll(&self, csv: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/rent-roll", self.address))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/csv")
            .body(csv.to_string())
            .send()
            .await
            .expect("the request is sent")
    }

    /// Sends each event and expects 200.
    pub async fn send_all(&self, events: &[String]) {
        for body in events {
            expect_json(self.post_event(body).await, 200).await;
        }
    }

    /// Polls `sql` (a count) for up to 10 s until it reaches `expected`; returns the last count.
    pub async fn wait_for_count(&self, sql: &str, expected: i64) -> i64 {
        for _ in 0..100 {
            if self.count(sql) == expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.count(sql)
    }

    /// Every row `sql` returns, as text: compare before and after to prove nothing changed.
    pub fn rows(&self, sql: &str) -> Vec<String> {
        database::query(&self.database, sql)
            .into_iter()
            .map(|cells| format!("{sql}: {cells:?}"))
            .collect()
    }

    /// The first cell of the first row of `sql`, as text (`None`: NULL or no row).
    pub fn value(&self, sql: &str) -> Option<String> {
        database::query(&self.database, sql)
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
    }

    /// The cells of the first row of `sql` as text; empty when it returns no row.
    pub fn row(&self, sql: &str) -> Vec<String> {
        database::query(&self.database, sql)
            .into_iter()
            .next()
            .map(|cells| cells.into_iter().map(Option::unwrap_or_default).collect())
            .unwrap_or_default()
    }

    /// Runs statements that change the service's database.
    pub fn execute(&self, sql: &str) {
        database::execute(&self.database, sql);
    }

    /// The service's database as the library opens it.
    pub fn open_database(&self) -> casapay_recon::store::Database {
        database::open(&self.database)
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.value(sql)
            .expect("the count query returns a value")
            .parse()
            .expect("a count is a number")
    }

    /// The daily report of `date` (`YYYY-MM-DD`) as JSON.
    pub async fn daily_report(&self, date: &str) -> Value {
        let path = format!("/api/reports/daily?date={date}");
        expect_json(self.get_admin(&path).await, 200).await
    }
}

/// The exceptions of `kind` in a JSON daily report.
pub fn exceptions_of<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["exceptions"]
        .as_array()
        .expect("the report lists exceptions")
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// Asserts status and JSON body, returns the body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A `payment_request.*` event. `status` is the object's status.
pub fn payment_request_event(
    event_id: &str,
    kind: &str,
    preq: &str,
    status: &str,
    created: i64,
) -> String {
    json!({
        "id": event_id, "object": "event", "type": kind, "created": created, "livemode": true,
        "data": {"object": {
            "id": preq, "object": "payment_request", "payment_agreement": "pa_1",
            "amount": 120000, "currency": "eur", "status": status,
            "metadata": {"property_id": "prop_1", "period": "2025-03"},
            "created": 1_700_000_000, "livemode": true
        }}
    })
    .to_string()
}

pub fn payout_event(event_id: &str, kind: &str, po: &str, status: &str, created: i64) -> String {
    json!({
        "id": event_id, "object": "event", "type": kind, "created": created,
        "data": {"object": {
            "id": po, "object": "payout", "amount": 110400, "currency": "eur", "status": status,
            "metadata": {"landlord_id": "ll_1", "period": "2025-03"}, "created": 1_700_000_000
        }}
    })
    .to_string()
}

/// A `payment_request.*` event carrying `object` (which needs at least `id`).
pub fn event_with(event_id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({"id": event_id, "object": "event", "type": kind, "created": created, "data": {"object": object}}).to_string()
}

/// A PaymentRequest for `property` in 2025-03.
pub fn request(preq: &str, property: &str, amount: i64, currency: &str, status: &str) -> Value {
    json!({
        "id": preq, "object": "payment_request", "amount": amount, "currency": currency,
        "status": status, "metadata": {"property_id": property, "period": "2025-03"}, "created": 1_740_000_000
    })
}

/// A Payout for `landlord` in 2025-03.
pub fn payout(po: &str, landlord: &str, amount: i64, status: &str) -> Value {
    json!({
        "id": po, "object": "payout", "amount": amount, "currency": "eur", "status": status,
        "metadata": {"landlord_id": landlord, "period": "2025-03"}, "created": 1_740_000_000
    })
}

/// The reconciliation line of `property`.
pub fn line<'a>(reconciliation: &'a Value, property: &str) -> &'a Value {
    reconciliation["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["property_id"] == property)
        .unwrap_or_else(|| panic!("no line for {property}: {reconciliation}"))
}
