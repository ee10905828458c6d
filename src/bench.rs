//! `casapay-recon bench ingest`: a load of unique, correctly signed events,
//! reporting throughput, latency percentiles and every non-200 answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::{Currency, Money, Period, Secret};
use crate::trigger::{Sample, send};

#[derive(Debug, Clone)]
pub struct IngestLoad {
    /// Endpoints, taken in turn by the connections (several instances behind no balancer).
    pub urls: Vec<String>,
    pub secret: Secret,
    pub connections: usize,
    pub duration: Duration,
    /// Events per second in total; `None` sends as fast as answers come back.
    pub rate: Option<u32>,
    /// With mail: events name the properties of [`mail_roll`], taken in turn.
    pub mail: bool,
}

/// Properties whose landlords have e-mail, for `bench ingest --mail`.
const MAILED_PROPERTIES: usize = 1000;

/// A rent roll of [`MAILED_PROPERTIES`] properties in 2025-03, each landlord with an address.
pub fn mail_roll() -> crate::rent_roll::RentRoll {
    let mut csv = String::from("property_id,landlord_id,period,amount,currency,landlord_email\n");
    for p in 0..MAILED_PROPERTIES {
        csv.push_str(&format!(
            "prop_m{p},ll_m{p},2025-03,120000,eur,landlord{p}@example.com\n"
        ));
    }
    crate::rent_roll::parse(csv.as_bytes()).expect("the generated rent roll is valid")
}

/// The property of the `n`th event of `connection`.
fn property_of(load: &IngestLoad, connection: usize, n: u64) -> String {
    if load.mail {
        let turn = n as usize * load.connections + connection;
        format!("prop_m{}", turn % MAILED_PROPERTIES)
    } else {
        format!("prop_{connection}_{n}")
    }
}

/// Stores `count` unique applied events, as a database that has run for a
/// while holds them (`bench ingest --stored`), in transactions of 10,000.
pub fn prefill(
    database: &crate::store::Database,
    count: usize,
    timezone: &jiff::tz::TimeZone,
    progress: &indicatif::ProgressBar,
) -> Result<(), crate::store::StoreError> {
    use crate::domain::Mode;
    use crate::ingest::IngestPolicy;
    use crate::notify::MailPolicy;
    let policy = IngestPolicy {
        mode: Mode::Any,
        mail: MailPolicy {
            report_to: Vec::new(),
            timezone: jiff::tz::TimeZone::UTC,
        },
    };
    let eur = Currency::parse("eur").expect("eur is a currency");
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(10_000);
        database.transaction(|store| {
            for n in done..done + batch {
                let sample = Sample {
                    event_type: "payment_request.succeeded".into(),
                    property_id: format!("prop_stored_{n}"),
                    landlord_id: "ll_bench".into(),
                    period: Period::new(2025, 2).expect("a valid period"),
                    amount: Money::new(120_000, eur).expect("a valid amount"),
                    object_id: Some(format!("preq_stored_{n}")),
                    payment_agreement: None,
                    livemode: true,
                };
                let body = sample.to_json(1_738_000_000);
                let event = crate::casapay::event::parse(body.as_bytes())
                    .expect("generated events are valid");
                crate::ingest::apply_event(store, &event, 0, &policy)?;
            }
            Ok(())
        })?;
        done += batch;
        progress.set_position(done as u64);
    }
    // A database that has run a while has sent yesterday's report: the
    // service does not build one over the stored events during the load.
    let yesterday = crate::report::yesterday(jiff::Timestamp::now(), timezone);
    database.transaction(|store| {
        store
            .record_daily_report(&yesterday.to_string(), &[], &[], 0)
            .map(drop)
    })
}

#[derive(Debug, Clone)]
pub struct IngestReport {
    pub sent: usize,
    pub ok: usize,
    pub non_200: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted latencies of every request.
    latencies: Vec<Duration>,
}

impl IngestReport {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }

    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(f, "sent        {}", self.sent)?;
        writeln!(f, "200         {}", self.ok)?;
        writeln!(f, "non-200     {}", self.non_200)?;
        writeln!(f, "errors      {}", self.errors)?;
        writeln!(f, "elapsed     {:.2} s", self.elapsed.as_secs_f64())?;
        writeln!(f, "events/s    {:.0}", self.per_second())?;
        writeln!(f, "p50         {:.2} ms", ms(self.percentile(50.0)))?;
        writeln!(f, "p99         {:.2} ms", ms(self.percentile(99.0)))?;
        write!(
            f,
            "max         {:.2} ms",
            ms(self.latencies.last().copied().unwrap_or_default())
        )
    }
}

/// Runs the load; each connection sends one request at a time.
pub async fn run_ingest(load: IngestLoad) -> IngestReport {
    let load = Arc::new(load);
    let started = Instant::now();
    let deadline = started + load.duration;
    crate::casapay::client::install_tls_provider();
    let tasks: Vec<_> = (0..load.connections)
        .map(|connection| {
            let load = Arc::clone(&load);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("an HTTP client");
                let eur = Currency::parse("eur").expect("eur is a currency");
                let mut interval = load.rate.map(|rate| {
                    let every =
                        Duration::from_secs_f64(load.connections as f64 / f64::from(rate.max(1)));
                    let mut interval = tokio::time::interval(every);
                    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    interval
                });
                let mut result = (Vec::new(), 0_usize, 0_usize, 0_usize);
                let mut n = 0_u64;
                while Instant::now() < deadline {
                    if let Some(interval) = interval.as_mut() {
                        interval.tick().await;
                    }
                    n += 1;
                    let sample = Sample {
                        event_type: "payment_request.succeeded".into(),
                        property_id: property_of(&load, connection, n),
                        landlord_id: "ll_bench".into(),
                        period: Period::new(2025, 3).expect("a valid period"),
                        amount: Money::new(120_000, eur).expect("a valid amount"),
                        object_id: None,
                        payment_agreement: None,
                        livemode: true,
                    };
                    let now = jiff::Timestamp::now().as_second();
                    let sent = Instant::now();
                    let url = &load.urls[connection % load.urls.len()];
                    let answer =
                        send_with(&client, url, &load.secret, sample.to_json(now), now).await;
                    result.0.push(sent.elapsed());
                    match answer {
                        Some(200) => result.1 += 1,
                        Some(_) => result.2 += 1,
                        None => result.3 += 1,
                    }
                }
                result
            })
        })
        .collect();
    let mut report = IngestReport {
        sent: 0,
        ok: 0,
        non_200: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        if let Ok((latencies, ok, non_200, errors)) = task.await {
            report.sent += latencies.len();
            report.latencies.extend(latencies);
            report.ok += ok;
            report.non_200 += non_200;
            report.errors += errors;
        }
    }
    report.elapsed = started.elapsed();
    report.latencies.sort_unstable();
    report
}

async fn send_with(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    body: String,
    now: i64,
) -> Option<u16> {
    send(client, url, secret, body, now)
        .await
        .ok()
        .map(|(status, _)| status)
}

/// What `bench reconcile` measured.
#[derive(Debug, Clone)]
pub struct ReconcileReport {
    pub properties: usize,
    pub events: usize,
    pub setup: Duration,
    /// Each run: load and reconcile one period, then render it as JSON.
    pub runs: Vec<(Duration, Duration)>,
    pub lines: usize,
}

impl std::fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(f, "properties  {}", self.properties)?;
        writeln!(
            f,
            "events      {} (built in {:.1} s)",
            self.events,
            self.setup.as_secs_f64()
        )?;
        writeln!(f, "lines       {} in period 2025-03", self.lines)?;
        for (i, (reconcile, json)) in self.runs.iter().enumerate() {
            writeln!(
                f,
                "run {}       reconcile {:.0} ms, JSON {:.0} ms",
                i + 1,
                ms(*reconcile),
                ms(*json)
            )?;
        }
        let best = self.runs.iter().map(|r| r.0).min().unwrap_or_default();
        write!(
            f,
            "best        {:.0} ms to load and reconcile one period",
            ms(best)
        )
    }
}

/// Builds a database with `properties` properties expected for three months
/// and three events per property (created, then succeeded or failed or
/// retrying), then times the reconciliation of the last month.
pub fn run_reconcile(
    path: &std::path::Path,
    properties: usize,
    runs: usize,
) -> Result<ReconcileReport, crate::store::StoreError> {
    use crate::casapay::event;
    use crate::domain::{Mode, Period};
    use crate::ingest::IngestPolicy;
    use crate::notify::MailPolicy;

    let started = Instant::now();
    let mut conn = crate::store::open_writer(path, Duration::from_secs(5))?;
    crate::store::migrate(&mut conn)?;
    let policy = IngestPolicy {
        mode: Mode::Any,
        mail: MailPolicy {
            report_to: Vec::new(),
            timezone: jiff::tz::TimeZone::UTC,
        },
    };
    let tx = conn.transaction()?;
    let mut roll = String::from(
        "property_id,landlord_id,period,amount,currency,payment_agreement,commission_bps\n",
    );
    for p in 0..properties {
        roll.push_str(&format!(
            "prop_{p},ll_{},2025-01..2025-03,{},eur,pa_{p},800\n",
            p % 5000,
            100_000 + p % 900
        ));
    }
    let parsed =
        crate::rent_roll::parse(roll.as_bytes()).expect("the generated rent roll is valid");
    crate::store::Storage::import_rent_roll(&*tx, &parsed)?
        .expect("a new database holds no conflicting agreement");
    let mut events = 0;
    for p in 0..properties {
        let amount = 100_000 + p % 900;
        let (kind, status, extra) = match p % 10 {
            0 => (
                "payment_request.failed",
                "failed",
                r#","failure_reason":"insufficient_funds""#,
            ),
            1 => (
                "payment_request.retrying",
                "processing",
                r#","next_retry_at":1742860800"#,
            ),
            _ => ("payment_request.succeeded", "succeeded", ""),
        };
        let period = Period::new(2025, 1 + (p % 3) as i8).expect("a valid period");
        let steps = [
            ("payment_request.created", "pending", "", 1),
            ("payment_request.processing", "processing", "", 2),
            (kind, status, extra, 3),
        ];
        for (step, (kind, status, extra, created)) in steps.into_iter().enumerate() {
            let body = format!(
                r#"{{"id":"evt_{p}_{step}","type":"{kind}","created":{created},"data":{{"object":{{"id":"preq_{p}","amount":{amount},"currency":"eur","status":"{status}","payment_agreement":"pa_{p}","metadata":{{"property_id":"prop_{p}","period":"{period}"}}{extra}}}}}}}"#
            );
            let event = event::parse(body.as_bytes()).expect("generated events are valid");
            crate::ingest::apply_event(&*tx, &event, 0, &policy)?;
            events += 1;
        }
    }
    tx.commit()?;
    let setup = started.elapsed();

    let period = Period::new(2025, 3).expect("a valid period");
    let as_of = period.day(20);
    let mut report = ReconcileReport {
        properties,
        events,
        setup,
        runs: Vec::new(),
        lines: 0,
    };
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let reconciliation =
            crate::recon::reconcile_stored(&conn, period, as_of, &jiff::tz::TimeZone::UTC, None)?;
        let reconciled = start.elapsed();
        let json = crate::recon::render::render(&reconciliation, crate::format::Format::Json);
        report.runs.push((reconciled, start.elapsed() - reconciled));
        report.lines = reconciliation.lines.len();
        std::hint::black_box(json);
    }
    Ok(report)
}
