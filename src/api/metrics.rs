//! `GET /metrics`: Prometheus text, O(1) per scrape whatever the data size.
//! Counters and histograms are recorded where things happen; the gauges that
//! describe the database are refreshed in the background, not per request.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::HttpResponse;
use tokio::sync::watch;

use crate::domain::{Clock, ExceptionKind, Period};
use crate::store::{ReadPool, StoreError};
use crate::{metrics, recon};

pub async fn get_metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::handle().render())
}

/// Recomputes the database gauges: outbox depth, quarantined events, the last
/// daily report, and the current period's exceptions by kind.
pub struct MetricsRefresh {
    pub reads: ReadPool,
    pub clock: Clock,
    pub timezone: jiff::tz::TimeZone,
    pub every: Duration,
}

impl MetricsRefresh {
    fn refresh(&self) -> Result<(), StoreError> {
        let today = self.clock.now().to_zoned(self.timezone.clone()).date();
        // Every kind, so a kind that went back to zero reads 0, not its last value.
        let mut counts: BTreeMap<ExceptionKind, usize> =
            ExceptionKind::ALL.iter().map(|k| (*k, 0)).collect();
        let period = Period::of_date(today);
        let month = period.to_string();
        let (depth, quarantined, last, summary) = self.reads.read(|store| {
            let summary = recon::reconcile_pieces(
                store,
                period,
                today,
                &self.timezone,
                None,
                &mut |piece| {
                    if let Some(exception) = recon::exceptions::of_piece(&month, &piece) {
                        *counts.entry(exception.kind).or_default() += 1;
                    }
                    Ok(())
                },
            )?;
            Ok::<_, StoreError>((
                store.outbox_depth()?,
                store.count_quarantined()?,
                store.last_daily_report()?.and_then(|d| d.parse().ok()),
                summary,
            ))
        })?;
        let rest = recon::Reconciliation::new(period, today, Vec::new(), summary);
        for exception in recon::exceptions::of_payouts(&rest) {
            *counts.entry(exception.kind).or_default() += 1;
        }
        let counts: Vec<_> = counts.into_iter().map(|(k, n)| (k.as_str(), n)).collect();
        metrics::set_state(depth, quarantined, last, &counts);
        Ok(())
    }

    /// Refreshes now and every `every` until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let every = self.every;
        let this = std::sync::Arc::new(self);
        while !*stop.borrow() {
            let job = std::sync::Arc::clone(&this);
            match tokio::task::spawn_blocking(move || job.refresh()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "metrics gauges not refreshed"),
                Err(error) => tracing::warn!(%error, "metrics refresh stopped"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
