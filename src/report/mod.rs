//! The daily reconciliation report (SPEC §6): what arrived on a date, every
//! period that still needs a person, and the list of exceptions.

pub mod render;
pub mod scheduler;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::Connection;
use serde::Serialize;

use crate::domain::{Currency, Period};
use crate::recon::render::money;
use crate::recon::rules::{DisbursementStatus, LineStatus};
use crate::recon::{self, Reconciliation, Total};
use crate::store::{self, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct EventCounts {
    pub received: i64,
    pub by_type: BTreeMap<String, i64>,
}

/// Something that needs a person.
#[derive(Debug, Clone, Serialize)]
pub struct Exception {
    pub kind: String,
    pub property_id: Option<String>,
    pub landlord_id: Option<String>,
    pub period: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<Currency>,
    pub detail: String,
}

impl Exception {
    /// Property, landlord and period, those that apply, joined by `separator`.
    pub fn subject(&self, separator: &str) -> String {
        [
            self.property_id.as_deref(),
            self.landlord_id.as_deref(),
            self.period.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(separator)
    }

    /// The amount with its currency's symbol, or nothing.
    pub fn amount_display(&self) -> String {
        match (self.amount, self.currency) {
            (Some(amount), Some(currency)) => money(amount, currency),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    pub object: &'static str,
    pub date: String,
    pub events: EventCounts,
    pub periods: Vec<Reconciliation>,
    pub exceptions: Vec<Exception>,
    pub totals: Vec<Total>,
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
    for mail in store::list_outbox(conn, Some("failed"), 1000)? {
        exceptions.push(Exception {
            kind: "undeliverable_mail".into(),
            property_id: None,
            landlord_id: None,
            period: None,
            amount: None,
            currency: None,
            detail: format!(
                "mail {} to {} ({}): {}",
                mail.id,
                mail.recipient,
                mail.subject,
                mail.last_error.unwrap_or_default()
            ),
        });
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
    })
}

/// The exceptions of one period's reconciliation.
pub fn exceptions_of(r: &Reconciliation) -> Vec<Exception> {
    let mut exceptions = Vec::new();
    for line in r.lines.iter().filter(|l| l.status.is_exception()) {
        let (amount, detail) = match line.status {
            LineStatus::Overpaid => (
                line.collected - line.expected,
                format!(
                    "collected {} more than expected",
                    money(line.collected - line.expected, line.currency)
                ),
            ),
            LineStatus::Retrying => (
                line.outstanding,
                format!(
                    "{}; retry at {}",
                    line.failure_reason
                        .as_deref()
                        .unwrap_or("collection failed"),
                    line.next_retry_at
                        .and_then(|t| jiff::Timestamp::from_second(t).ok())
                        .map_or_else(|| "an unknown time".to_string(), |t| t.to_string())
                ),
            ),
            LineStatus::Failed => (
                line.outstanding,
                line.failure_reason
                    .clone()
                    .unwrap_or_else(|| "collection failed".into()),
            ),
            LineStatus::Overdue => (
                line.outstanding,
                format!("nothing collected; due {}", line.due_date),
            ),
            LineStatus::CurrencyMismatch => (
                line.outstanding,
                "a payment arrived in another currency".into(),
            ),
            _ => (
                line.outstanding,
                format!(
                    "{} of {} collected",
                    money(line.collected, line.currency),
                    money(line.expected, line.currency)
                ),
            ),
        };
        exceptions.push(Exception {
            kind: line.status.as_str().into(),
            property_id: Some(line.property_id.clone()),
            landlord_id: Some(line.landlord_id.clone()),
            period: Some(line.period.clone()),
            amount: Some(amount),
            currency: Some(line.currency),
            detail: if line.payment_requests.is_empty() {
                detail
            } else {
                format!("{detail} ({})", line.payment_requests.join(", "))
            },
        });
    }
    for unmatched in &r.unmatched {
        exceptions.push(Exception {
            kind: "unmatched".into(),
            property_id: unmatched.property_id.clone(),
            landlord_id: None,
            period: unmatched.period.clone().or_else(|| Some(r.period.clone())),
            amount: Some(unmatched.amount),
            currency: Some(unmatched.currency),
            detail: format!(
                "payment {} matches no expected rent",
                unmatched.payment_request
            ),
        });
    }
    for payout in r
        .payouts
        .iter()
        .filter(|p| p.status == DisbursementStatus::PayoutFailed)
    {
        exceptions.push(Exception {
            kind: "payout_failed".into(),
            property_id: None,
            landlord_id: Some(payout.landlord_id.clone()),
            period: Some(payout.period.clone()),
            amount: Some(payout.failed),
            currency: Some(payout.currency),
            detail: format!("payouts {}", payout.payouts.join(", ")),
        });
    }
    exceptions
}
