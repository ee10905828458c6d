//! Inside `serve`: builds and mails the daily report at `CASAPAY_REPORT_AT`,
//! once per date even across restarts, catching up dates missed while down.

use std::sync::Arc;
use std::time::Duration;

use jiff::Zoned;
use jiff::civil::{Date, Time};
use tokio::sync::{Notify, watch};

use super::render::report_mail;
use super::{DailyReport, Detail, balance, build_daily_report};
use crate::config::Settings;
use crate::domain::Clock;
use crate::store::{ReadPool, StoreError, Writer};
use crate::sync::{self, Syncer};

/// Dates missed while down further back than this are not sent.
const CATCH_UP_DAYS: i32 = 7;

/// Report dates due at `now`: each day's report (for the day before) is due
/// from `report_at`; dates after `last_done` up to the latest due one.
pub fn dates_due(now: &Zoned, report_at: Time, last_done: Option<Date>) -> Vec<Date> {
    let back = if now.time() >= report_at { 1 } else { 2 };
    let Ok(latest) = now.date().checked_sub(jiff::Span::new().days(back)) else {
        return Vec::new();
    };
    let earliest = latest
        .checked_sub(jiff::Span::new().days(CATCH_UP_DAYS - 1))
        .unwrap_or(latest);
    let mut date = match last_done.and_then(|d| d.tomorrow().ok()) {
        Some(next) => next.max(earliest),
        // A new database: yesterday's report if its time has come, and no older ones.
        None if back == 1 => latest,
        None => return Vec::new(),
    };
    let mut dates = Vec::new();
    while date <= latest {
        dates.push(date);
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    dates
}

pub struct Scheduler {
    pub clock: Clock,
    pub reads: ReadPool,
    pub writer: Writer,
    pub settings: Arc<Settings>,
    pub mail_wake: Arc<Notify>,
    /// With an API key: synced before each report, so it reports CasaPay's truth.
    pub sync: Option<Arc<Syncer>>,
}

impl Scheduler {
    /// Builds, records and queues the reports due now. Returns the dates done.
    pub async fn run_due(&self) -> Result<Vec<Date>, StoreError> {
        let pool = self.reads.clone();
        let settings = Arc::clone(&self.settings);
        let clock = self.clock;
        let dates = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let now = clock.now().to_zoned(settings.timezone.clone());
            let last = pool
                .read(|store| store.last_daily_report())?
                .and_then(|d| d.parse::<Date>().ok());
            Ok(dates_due(&now, settings.report_at, last))
        })
        .await
        .map_err(|_| StoreError::ShuttingDown)??;
        if dates.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(syncer) = &self.sync {
            let since = clock.now().as_second() - sync::DEFAULT_DAYS_BACK * 86_400;
            // A failure is recorded and reported as `sync_failed`; the report still goes.
            if let Err(error) = syncer
                .run(since, false, &indicatif::ProgressBar::hidden())
                .await
            {
                tracing::warn!(%error, "sync before the daily report failed");
            }
        }
        let fetched = match &self.sync {
            Some(syncer) => Some(balance::fetch(&syncer.client).await),
            None => None,
        };
        // One date at a time, built then recorded: catching up a week holds
        // one report in memory, not seven.
        let mut done = Vec::new();
        for date in dates {
            let report = self.build(date, fetched.clone()).await?;
            if self.record(date, &report).await? {
                self.mail_wake.notify_one();
                done.push(date);
            }
        }
        Ok(done)
    }

    /// Builds the report for `date` (as it is mailed: text and HTML, a row per period).
    async fn build(
        &self,
        date: Date,
        fetched: Option<balance::Fetched>,
    ) -> Result<DailyReport, StoreError> {
        let pool = self.reads.clone();
        let settings = Arc::clone(&self.settings);
        tokio::task::spawn_blocking(move || {
            let mut report = pool.read(|store| {
                build_daily_report(store, date, &settings.timezone, Detail::Summary)
            })?;
            if let Some(fetched) = fetched {
                balance::check(&mut report, fetched);
            }
            Ok(report)
        })
        .await
        .map_err(|_| StoreError::ShuttingDown)?
    }

    /// Records the report and queues its mails, once; whether this call did.
    async fn record(&self, date: Date, report: &DailyReport) -> Result<bool, StoreError> {
        let drafts: Vec<_> = self
            .settings
            .report_to
            .iter()
            .map(|to| report_mail(report, to))
            .collect();
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let key = date.to_string();
        let recorded = super::recorded_exceptions(report);
        let recorded = self
            .writer
            .write(move |conn| conn.record_daily_report(&key, &recorded, &drafts, now_ms))
            .await?;
        if recorded {
            tracing::info!(date = %date, recipients = self.settings.report_to.len(), exceptions = report.exceptions.len(), "daily report queued");
        }
        Ok(recorded)
    }

    /// Checks every 30 seconds until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.run_due().await {
                tracing::warn!(%error, "daily report not built; trying again shortly");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Zoned {
        format!("{text}[Europe/Paris]").parse().unwrap()
    }

    fn dates(list: &[Date]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_days_report_is_due_from_report_at_the_next_morning() {
        let six = Time::constant(6, 0, 0, 0);
        let day = |text: &str| text.parse::<Date>().unwrap();
        assert_eq!(
            dates(&dates_due(&at("2025-03-20T06:00"), six, None)),
            ["2025-03-19"]
        );
        assert!(
            dates_due(&at("2025-03-20T05:59"), six, None).is_empty(),
            "a new database waits for the next report"
        );
        assert_eq!(
            dates(&dates_due(
                &at("2025-03-20T05:59"),
                six,
                Some(day("2025-03-17"))
            )),
            ["2025-03-18"]
        );
        assert!(dates_due(&at("2025-03-20T05:59"), six, Some(day("2025-03-18"))).is_empty());
        assert!(
            dates_due(&at("2025-03-20T23:00"), six, Some(day("2025-03-19"))).is_empty(),
            "once per date"
        );
    }

    #[test]
    fn dates_missed_while_down_are_caught_up_within_a_week() {
        let six = Time::constant(6, 0, 0, 0);
        let last: Date = "2025-03-16".parse().unwrap();
        assert_eq!(
            dates(&dates_due(&at("2025-03-20T07:00"), six, Some(last))),
            ["2025-03-17", "2025-03-18", "2025-03-19"]
        );
        let long_ago: Date = "2025-01-01".parse().unwrap();
        assert_eq!(
            dates_due(&at("2025-03-20T07:00"), six, Some(long_ago)).len(),
            7
        );
    }
}
