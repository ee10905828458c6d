//! Prometheus metrics: counters and histograms recorded where things happen,
//! gauges read from the database when `/metrics` is scraped.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const WEBHOOK_EVENTS: &str = "casapay_webhook_events_total";
pub const WEBHOOK_DURATION: &str = "casapay_webhook_duration_seconds";
pub const WRITE_BATCH_SIZE: &str = "casapay_write_batch_size";
pub const MAIL: &str = "casapay_mail_total";
pub const OUTBOX_DEPTH: &str = "casapay_outbox_depth";
pub const LAST_DAILY_REPORT: &str = "casapay_daily_report_last_date_seconds";
pub const EXCEPTIONS: &str = "casapay_reconciliation_exceptions";
pub const TYPE_MISMATCH: &str = "casapay_event_type_mismatch_total";
pub const QUARANTINED: &str = "casapay_quarantined_events";

/// The process-wide recorder, installed on first use (once, however many
/// services a test process starts).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(WEBHOOK_DURATION.into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(WRITE_BATCH_SIZE.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be global (an embedding program's): keep ours local then.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub fn webhook(kind: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(WEBHOOK_EVENTS, "type" => kind.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(WEBHOOK_DURATION).record(elapsed.as_secs_f64());
}

/// An event whose type disagrees with its object's status.
pub fn type_mismatch(kind: &str) {
    metrics::counter!(TYPE_MISMATCH, "type" => kind.to_string()).increment(1);
}

pub fn write_batch(size: usize) {
    metrics::histogram!(WRITE_BATCH_SIZE).record(size as f64);
}

/// `outcome`: queued, sent, retrying or failed.
pub fn mail(outcome: &'static str, count: usize) {
    metrics::counter!(MAIL, "outcome" => outcome).increment(count as u64);
}

/// Gauges that describe the database, set just before a scrape is rendered.
pub fn set_state(
    outbox_depth: i64,
    quarantined: i64,
    last_report: Option<jiff::civil::Date>,
    exceptions: &[(&'static str, usize)],
) {
    metrics::gauge!(OUTBOX_DEPTH).set(outbox_depth as f64);
    metrics::gauge!(QUARANTINED).set(quarantined as f64);
    if let Some(date) = last_report.and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok()) {
        metrics::gauge!(LAST_DAILY_REPORT).set(date.timestamp().as_second() as f64);
    }
    for (kind, count) in exceptions {
        metrics::gauge!(EXCEPTIONS, "kind" => *kind).set(*count as f64);
    }
}
