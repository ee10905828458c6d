//! `casapay-recon simulate`: CasaPay in a box. Its API over HTTP, webhooks
//! delivered as CasaPay delivers them, and a month of rent played with chaos,
//! then checked line by line against the truth. The product never uses it.

pub mod api;
pub mod deliver;
pub mod month;
pub mod rng;
pub mod world;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use serde_json::Value;

use crate::domain::{Period, Secret};
pub use deliver::DeliveryStats;
pub use month::{Chaos, Truth};

/// What `simulate month` needs to reach the service under test.
#[derive(Debug)]
pub struct MonthConfig {
    /// The service's base URL, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    pub secret: Secret,
    pub admin_token: Secret,
    pub period: Period,
    pub properties: usize,
    pub seed: u64,
    pub chaos: Chaos,
    /// Where to serve the simulated API while the month plays (for sync).
    pub api: Option<(TcpListener, Option<String>)>,
}

/// One disagreement between the service and the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub what: String,
    pub field: &'static str,
    pub expected: String,
    pub found: String,
}

pub struct MonthReport {
    pub events: usize,
    pub delivery: DeliveryStats,
    pub synced: Option<Value>,
    pub differences: Vec<Difference>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0}: {1}")]
    Http(String, reqwest::Error),
    #[error("{0} answered {1}: {2}")]
    Refused(String, u16, String),
    #[error("serving the simulated API: {0}")]
    Serve(#[from] std::io::Error),
}

async fn call(request: reqwest::RequestBuilder, what: &str) -> Result<Value, SimError> {
    let response = request
        .send()
        .await
        .map_err(|e| SimError::Http(what.to_string(), e))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| SimError::Http(what.to_string(), e))?;
    if !(200..300).contains(&status) {
        return Err(SimError::Refused(what.to_string(), status, text));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Plays a month against the service and compares its reconciliation with the truth.
pub async fn run_month(
    config: MonthConfig,
    progress: &ProgressBar,
) -> Result<MonthReport, SimError> {
    let month = month::play(config.period, config.properties, config.seed, config.chaos);
    let client = crate::casapay::client::http_client();
    let target = config.target.trim_end_matches('/').to_string();
    let token = config.admin_token.expose().to_string();
    call(
        client
            .post(format!("{target}/api/rent-roll"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(month.rent_roll.clone()),
        "importing the rent roll",
    )
    .await?;
    let mut events = month.world.events.clone();
    events.extend(month.extra_events.iter().cloned());
    let world = Arc::new(Mutex::new(month.world));
    let server = match config.api {
        Some((listener, api_key)) => {
            let server = api::serve(
                listener,
                api::ApiState {
                    world: Arc::clone(&world),
                    api_key,
                    changed: Arc::new(tokio::sync::Notify::new()),
                },
            )?;
            let handle = server.handle();
            tokio::spawn(server);
            Some(handle)
        }
        None => None,
    };
    let total = events.len();
    let delivery = deliver::deliver(
        &client,
        &format!("{target}/webhooks/casapay"),
        &config.secret,
        events,
        config.chaos,
        config.seed,
        progress,
    )
    .await;
    // Only sync can recover dropped events; a service without it is told so in the report.
    let synced = if config.chaos.drop {
        // Back to a little before the month: every object it created.
        let since = config.period.previous().day(20);
        match call(
            client
                .post(format!("{target}/api/sync?since={since}"))
                .bearer_auth(&token),
            "asking the service to sync",
        )
        .await
        {
            Ok(summary) => Some(summary),
            Err(SimError::Refused(_, 404, _)) => None,
            Err(error) => return Err(error),
        }
    } else {
        None
    };
    let reconciliation = call(
        client
            .get(format!(
                "{target}/api/reconciliation?period={}&as_of={}",
                config.period, month.as_of
            ))
            .bearer_auth(&token),
        "fetching the reconciliation",
    )
    .await?;
    if let Some(handle) = server {
        handle.stop(true).await;
    }
    Ok(MonthReport {
        events: total,
        delivery,
        synced,
        differences: compare(&month.truth, &reconciliation, &format!("s{}_", config.seed)),
    })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "(missing)".into(),
        other => other.to_string(),
    }
}

/// Every line, payout group and unmatched item of the truth against the
/// service's reconciliation (only this run's ids, tagged `tag`).
pub fn compare(truth: &Truth, reconciliation: &Value, tag: &str) -> Vec<Difference> {
    let mut differences = Vec::new();
    let mut check = |what: String, field: &'static str, expected: String, found: String| {
        if expected != found {
            differences.push(Difference {
                what,
                field,
                expected,
                found,
            });
        }
    };
    let find = |list: &str, key: &str, id: &str| -> Value {
        reconciliation[list]
            .as_array()
            .and_then(|items| items.iter().find(|item| item[key] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    for (property, (status, collected, outstanding)) in &truth.lines {
        let line = find("lines", "property_id", property);
        let what = format!("line {property}");
        check(
            what.clone(),
            "status",
            status.clone(),
            text(&line["status"]),
        );
        check(
            what.clone(),
            "collected",
            collected.to_string(),
            text(&line["collected"]),
        );
        check(
            what,
            "outstanding",
            outstanding.to_string(),
            text(&line["outstanding"]),
        );
    }
    for (landlord, (collected, due, paid_out, status)) in &truth.payouts {
        let group = find("payouts", "landlord_id", landlord);
        let what = format!("payouts {landlord}");
        check(
            what.clone(),
            "collected",
            collected.to_string(),
            text(&group["collected"]),
        );
        check(what.clone(), "due", due.to_string(), text(&group["due"]));
        check(
            what.clone(),
            "paid_out",
            paid_out.to_string(),
            text(&group["paid_out"]),
        );
        check(what, "status", status.clone(), text(&group["status"]));
    }
    let ids = |list: &str, key: &str| -> BTreeSet<String> {
        reconciliation[list]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[key].as_str())
                    .filter(|id| id.contains(tag))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let sets = [
        ("unmatched", "payment_request", &truth.unmatched),
        ("unallocated_payouts", "payout", &truth.unallocated_payouts),
    ];
    for (list, key, expected) in sets {
        let expected: BTreeSet<String> = expected.iter().cloned().collect();
        let found = ids(list, key);
        for missing in expected.difference(&found) {
            check(
                format!("{list} {missing}"),
                "listed",
                "yes".into(),
                "no".into(),
            );
        }
        for extra in found.difference(&expected) {
            check(
                format!("{list} {extra}"),
                "listed",
                "no".into(),
                "yes".into(),
            );
        }
    }
    differences
}

/// The difference table, and the one-line summary that ends every run.
pub fn render_report(report: &MonthReport, config_line: &str) -> String {
    let mut out = String::new();
    let d = &report.delivery;
    out.push_str(&format!(
        "{config_line}\nevents: {} generated, {} deliveries ({} attempts, {} retried, {} given up), {} dropped\n",
        report.events,
        d.deliveries,
        d.attempts,
        d.retried,
        d.given_up,
        d.dropped.len()
    ));
    match &report.synced {
        Some(synced) => out.push_str(&format!(
            "sync: {} object(s) read, {} changed ({} new), {} mail(s) queued\n",
            synced["read"], synced["changed"], synced["added"], synced["mails_queued"]
        )),
        None if !d.dropped.is_empty() => out.push_str(&format!(
            "dropped, and no sync to recover them: {}\n",
            d.dropped.join(", ")
        )),
        None => {}
    }
    if !report.differences.is_empty() {
        let rows: Vec<Vec<String>> = report
            .differences
            .iter()
            .map(|d| {
                vec![
                    d.what.clone(),
                    d.field.to_string(),
                    d.expected.clone(),
                    d.found.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&crate::format::table(
            &["WHAT", "FIELD", "EXPECTED", "SERVICE"],
            &[],
            &rows,
        ));
        out.push('\n');
    }
    out.push_str(&format!("{} differences\n", report.differences.len()));
    out
}
