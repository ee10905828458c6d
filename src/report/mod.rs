//! The daily reconciliation report (SPEC §6): what arrived on a date, every
//! period that still needs a person, and the list of exceptions.

pub mod balance;
pub mod render;
pub mod scheduler;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::Connection;
use serde::Serialize;

use crate::domain::{Currency, ExceptionKind, Period};
use crate::format::timestamp;
use crate::recon::{self, Exception, Reconciliation, Total, exceptions_of};
use crate::store::{self, StoreError};

/// Quarantined events listed in a report at most; the API lists them all.
const QUARANTINED_LISTED: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct EventCounts {
    pub received: i64,
    pub by_type: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    pub object: &'static str,
    pub date: String,
    pub events: EventCounts,
    pub periods: Vec<Reconciliation>,
    pub exceptions: Vec<Exception>,
    pub totals: Vec<Total>,
    /// With an API key: CasaPay's balance against what is due (see [`balance`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<balance::Balance>,
}

/// Yesterday in `timezone`: the default report date.
pub fn yesterday(now: jiff::Timestamp, timezone: &TimeZone) -> Date {
    now.to_zoned(timezone.clone())
        .date()
        .yesterday()
        .unwrap_or(Date::MIN)
}

fn day_bounds_ms(date: Date, timezone: &TimeZone) -> (i64, i64) {
    let start = |d: Date| {
        d.to_zoned(timezone.clone())
            .map_or(i64::MIN, |z| z.timestamp().as_millisecond())
    };
    (start(date), start(date.tomorrow().unwrap_or(Date::MAX)))
}

pub fn build_daily_report(
    conn: &Connection,
    date: Date,
    timezone: &TimeZone,
) -> Result<DailyReport, StoreError> {
    let (from, until) = day_bounds_ms(date, timezone);
    let by_type: BTreeMap<String, i64> = store::count_events_received(conn, from, until)?
        .into_iter()
        .collect();
    let events = EventCounts {
        received: by_type.values().sum(),
        by_type,
    };

    let current = Period::of_date(date);
    let mut periods = Vec::new();
    for text in store::periods_before(conn, &current.to_string())? {
        let Ok(period) = text.parse::<Period>() else {
            continue; // a malformed metadata.period never matches a line
        };
        let reconciliation = recon::reconcile_stored(conn, period, date, timezone, None)?;
        if reconciliation.has_exceptions() {
            periods.push(reconciliation);
        }
    }
    periods.push(recon::reconcile_stored(
        conn, current, date, timezone, None,
    )?);

    let mut exceptions: Vec<Exception> = periods.iter().flat_map(exceptions_of).collect();
    for event in store::quarantined_events(conn, QUARANTINED_LISTED)? {
        exceptions.push(Exception::about(
            ExceptionKind::QuarantinedEvent,
            format!(
                "event {} ({}) received {} cannot be applied: {}; `casapay-recon events replay --quarantined` once it can",
                event.id,
                event.kind,
                timestamp(event.received_at_ms.div_euclid(1000)),
                event.reason.unwrap_or_default()
            ),
        ));
    }
    if let Some(run) = store::last_sync_run(conn)?
        && let Some(error) = run.error
    {
        exceptions.push(Exception::about(
            ExceptionKind::SyncFailed,
            format!(
                "the last sync from CasaPay's API ({}) failed: {error}; what webhooks missed since is not repaired",
                timestamp(run.finished_at_ms.div_euclid(1000))
            ),
        ));
    }
    for mail in store::list_outbox(conn, Some("failed"), 1000)? {
        exceptions.push(Exception::about(
            ExceptionKind::UndeliverableMail,
            format!(
                "mail {} to {} ({}): {}",
                mail.id,
                mail.recipient,
                mail.subject,
                mail.last_error.unwrap_or_default()
            ),
        ));
    }

    let mut totals: BTreeMap<Currency, Total> = BTreeMap::new();
    for total in periods.iter().flat_map(|p| &p.totals) {
        let sum = totals.entry(total.currency).or_insert(Total {
            currency: total.currency,
            expected: 0,
            collected: 0,
            outstanding: 0,
            paid_out: 0,
        });
        sum.expected = sum.expected.saturating_add(total.expected);
        sum.collected = sum.collected.saturating_add(total.collected);
        sum.outstanding = sum.outstanding.saturating_add(total.outstanding);
        sum.paid_out = sum.paid_out.saturating_add(total.paid_out);
    }

    Ok(DailyReport {
        object: "daily_report",
        date: date.to_string(),
        events,
        periods,
        exceptions,
        totals: totals.into_values().collect(),
        balance: None,
    })
}
