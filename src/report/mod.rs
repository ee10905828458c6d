//! The daily reconciliation report (SPEC §6): what changed since the last
//! one, aged arrears, what arrived on the date, the exceptions (new first),
//! and the periods that still need a person.

pub mod balance;
pub mod render;
pub mod scheduler;

use std::collections::{BTreeMap, HashSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::domain::{Currency, ExceptionKind, Period};
use crate::format::{Format, timestamp};
use crate::notify;
use crate::recon::{self, Exception, Piece, Reconciliation, Total, arrears};
use crate::store::{RecordedException, Storage, StoreError};

/// Quarantined events listed in a report at most; the API lists them all.
const QUARANTINED_LISTED: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct EventCounts {
    pub received: i64,
    pub by_type: BTreeMap<String, i64>,
}

/// How much of each period a report keeps. The JSON report carries every
/// period's reconciliation (SPEC §6); text, HTML, CSV and the mail show a row
/// per period, so they need not hold a period's lines once it is summed up:
/// one period's lines are in memory at a time, not every period's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    Summary,
}

impl Detail {
    pub fn for_format(format: Format) -> Self {
        match format {
            Format::Json => Detail::Full,
            _ => Detail::Summary,
        }
    }
}

/// A period of the report as its row shows it.
#[derive(Debug, Clone)]
pub struct PeriodRow {
    pub period: String,
    pub lines: usize,
    pub exceptions: usize,
    pub totals: Vec<Total>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    pub object: &'static str,
    pub date: String,
    pub events: EventCounts,
    /// What changed since the previous recorded report.
    pub changes: Changes,
    /// Aged arrears of every period up to the report's date.
    pub arrears: ArrearsSummary,
    /// With [`Detail::Summary`], without their lines and unmatched requests.
    pub periods: Vec<Reconciliation>,
    #[serde(skip)]
    pub period_rows: Vec<PeriodRow>,
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

/// An exception of the previous report that is gone now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Resolved {
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub since: String,
}

/// What changed since the previous recorded report (SPEC §6 What changed).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Changes {
    /// The date of the report compared with, if any.
    pub compared_with: Option<String>,
    /// The new exceptions themselves only with [`Detail::Full`] (the JSON
    /// report); the other renderings show how many.
    pub new: Vec<Exception>,
    #[serde(skip)]
    pub new_count: usize,
    pub resolved: Vec<Resolved>,
    pub unchanged: usize,
}

/// The report's aged arrears: totals only, whatever the history.
#[derive(Debug, Clone, Serialize)]
pub struct ArrearsSummary {
    pub as_of: String,
    pub totals: arrears::ArrearsTotals,
}

fn events_received(
    store: &dyn Storage,
    date: Date,
    timezone: &TimeZone,
) -> Result<EventCounts, StoreError> {
    let (from, until) = day_bounds_ms(date, timezone);
    let by_type: BTreeMap<String, i64> = store
        .count_events_received(from, until)?
        .into_iter()
        .collect();
    Ok(EventCounts {
        received: by_type.values().sum(),
        by_type,
    })
}

/// Exceptions of the service itself: quarantined events, a failed sync, mail
/// that could not be delivered.
fn service_exceptions(
    store: &dyn Storage,
    timezone: &TimeZone,
) -> Result<Vec<Exception>, StoreError> {
    let mut exceptions = Vec::new();
    for event in store.quarantined_events(QUARANTINED_LISTED)? {
        exceptions.push(Exception::about(
            ExceptionKind::QuarantinedEvent,
            format!(
                "event {} ({}) received {} cannot be applied: {}; `casapay-recon events replay --quarantined` once it can",
                event.id,
                event.kind,
                timestamp(event.received_at_ms.div_euclid(1000)),
                event.reason.unwrap_or_default()
            ),
            Some(event.id),
        ));
    }
    if let Some(run) = store.last_sync_run()?
        && let Some(error) = run.error
    {
        exceptions.push(Exception::about(
            ExceptionKind::SyncFailed,
            format!(
                "the last sync from CasaPay's API ({}) failed: {error}; what webhooks missed since is not repaired",
                timestamp(run.finished_at_ms.div_euclid(1000))
            ),
            None,
        ));
    }
    for mail in store.list_outbox(Some("failed"), 1000)? {
        exceptions.push(Exception::about(
            ExceptionKind::UndeliverableMail,
            format!(
                "mail {} to {} ({}): {}",
                mail.id,
                mail.recipient,
                notify::outbox_subject(&mail, timezone),
                mail.last_error.unwrap_or_default()
            ),
            Some(mail.id.to_string()),
        ));
    }
    Ok(exceptions)
}

/// Compares with the previous recorded report: sets each exception's
/// `since`, puts new ones first, and lists what was resolved.
fn what_changed(
    store: &dyn Storage,
    date: Date,
    detail: Detail,
    exceptions: &mut [Exception],
) -> Result<Changes, StoreError> {
    let previous = store.previous_report_exceptions(&date.to_string())?;
    let known: BTreeMap<&str, &RecordedException> = previous
        .as_ref()
        .map(|(_, rows)| rows.iter().map(|r| (r.key.as_str(), r)).collect())
        .unwrap_or_default();
    let today = date.to_string();
    // The previous report's keys still open: what is not among them was resolved.
    let mut still_open: HashSet<&str> = HashSet::new();
    for exception in exceptions.iter_mut() {
        exception.since = Some(match known.get_key_value(exception.key().as_str()) {
            Some((key, row)) => {
                still_open.insert(key);
                row.since.clone()
            }
            None => today.clone(),
        });
    }
    exceptions.sort_by_key(|e| e.since.as_deref() != Some(today.as_str()));
    let is_new = |e: &&Exception| e.since.as_deref() == Some(today.as_str());
    let resolved: Vec<Resolved> = known
        .iter()
        .filter(|(key, _)| !still_open.contains(*key))
        .map(|(_, row)| Resolved {
            kind: row.kind.clone(),
            subject: row.subject.clone(),
            detail: row.detail.clone(),
            since: row.since.clone(),
        })
        .collect();
    Ok(Changes {
        compared_with: previous.as_ref().map(|(d, _)| d.clone()),
        new: match detail {
            Detail::Full => exceptions.iter().filter(is_new).cloned().collect(),
            Detail::Summary => Vec::new(),
        },
        new_count: exceptions.iter().filter(is_new).count(),
        resolved,
        unchanged: still_open.len(),
    })
}

/// The report's exceptions as the next report compares with them.
pub fn recorded_exceptions(report: &DailyReport) -> Vec<RecordedException> {
    report
        .exceptions
        .iter()
        .map(|e| RecordedException {
            key: e.key(),
            kind: e.kind.as_str().to_string(),
            subject: e.subject(" · "),
            detail: e.detail.clone(),
            since: e.since.clone().unwrap_or_else(|| report.date.clone()),
        })
        .collect()
}

/// The periods a report shows, summed up as they are reconciled.
struct Periods {
    detail: Detail,
    date: Date,
    kept: Vec<Reconciliation>,
    rows: Vec<PeriodRow>,
    exceptions: Vec<Exception>,
    arrears: arrears::ArrearsTotals,
}

impl Periods {
    /// Reconciles a period a line at a time, counting each line in the
    /// arrears and noting its exception; keeps its lines only with
    /// `Detail::Full`. Also how many lines it has, and its exceptions.
    fn reconcile(
        &mut self,
        store: &dyn Storage,
        period: Period,
        timezone: &TimeZone,
    ) -> Result<(Reconciliation, usize, Vec<Exception>), StoreError> {
        let (detail, date) = (self.detail, self.date);
        let (mut count, mut found) = (0, Vec::new());
        let (mut kept, mut unmatched) = (Vec::new(), Vec::new());
        let month = period.to_string();
        let summary = recon::reconcile_pieces(store, period, date, timezone, None, &mut |piece| {
            found.extend(recon::exceptions::of_piece(&month, &piece));
            match piece {
                Piece::Line(line) => {
                    count += 1;
                    arrears::count_in(&mut self.arrears, &line, date);
                    if detail == Detail::Full {
                        kept.push(line);
                    }
                }
                Piece::Unmatched(request) if detail == Detail::Full => unmatched.push(request),
                Piece::Unmatched(_) => {}
            }
            Ok(())
        })?;
        let mut reconciliation = Reconciliation::new(period, date, kept, summary);
        reconciliation.unmatched = unmatched;
        found.extend(recon::exceptions::of_payouts(&reconciliation));
        Ok((reconciliation, count, found))
    }

    /// Adds a period: its exceptions and row, and its reconciliation (whose
    /// lines and unmatched requests [`Periods::reconcile`] kept only with `Detail::Full`).
    fn add(&mut self, reconciliation: Reconciliation, lines: usize, found: Vec<Exception>) {
        self.rows.push(PeriodRow {
            period: reconciliation.period.clone(),
            lines,
            exceptions: found.len(),
            totals: reconciliation.totals.clone(),
        });
        self.exceptions.extend(found);
        self.kept.push(reconciliation);
    }
}

pub fn build_daily_report(
    store: &dyn Storage,
    date: Date,
    timezone: &TimeZone,
    detail: Detail,
) -> Result<DailyReport, StoreError> {
    let events = events_received(store, date, timezone)?;
    let current = Period::of_date(date);
    let mut periods = Periods {
        detail,
        date,
        kept: Vec::new(),
        rows: Vec::new(),
        exceptions: Vec::new(),
        arrears: arrears::ArrearsTotals::new(),
    };
    // Earlier periods appear only while they still have an exception; each
    // period's exceptions are found once.
    for text in store.periods_before(&current.to_string())? {
        let Ok(period) = text.parse::<Period>() else {
            continue; // a malformed metadata.period never matches a line
        };
        let (reconciliation, lines, found) = periods.reconcile(store, period, timezone)?;
        if !found.is_empty() {
            periods.add(reconciliation, lines, found);
        }
    }
    let (reconciliation, lines, found) = periods.reconcile(store, current, timezone)?;
    periods.add(reconciliation, lines, found);
    let Periods {
        kept: periods,
        rows: period_rows,
        mut exceptions,
        arrears,
        ..
    } = periods;

    exceptions.extend(service_exceptions(store, timezone)?);
    let changes = what_changed(store, date, detail, &mut exceptions)?;

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
        changes,
        arrears: ArrearsSummary {
            as_of: date.to_string(),
            totals: arrears,
        },
        periods,
        period_rows,
        exceptions,
        totals: totals.into_values().collect(),
        balance: None,
    })
}
