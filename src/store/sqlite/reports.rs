//! What the daily report reads beyond reconciliation, and its once-per-date record.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::MailDraft;
use crate::store::{RecordedException, StoreError, SyncRun};

/// Events received in [from, until) (unix ms), counted by type.
pub(super) fn count_events_received(
    conn: &Connection,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT type, count(*) FROM events WHERE received_at >= ?1 AND received_at < ?2 GROUP BY type ORDER BY type",
    )?;
    let rows = statement.query_map(params![from_ms, until_ms], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Every well-formed period before `period` that has expected rent, requests or payouts.
pub(super) fn periods_before(conn: &Connection, period: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT period FROM expected_rent WHERE period < ?1
         UNION SELECT period FROM payment_requests WHERE period < ?1
         UNION SELECT period FROM payouts WHERE period < ?1
         ORDER BY 1",
    )?;
    let rows = statement.query_map([period], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The newest date the scheduler built a report for.
pub(super) fn last_daily_report(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT max(date) FROM daily_reports", [], |row| row.get(0))
        .optional()?
        .flatten())
}

/// The exceptions of the newest recorded report before `date`, with its date.
pub(super) fn previous_report_exceptions(
    conn: &Connection,
    date: &str,
) -> Result<Option<(String, Vec<RecordedException>)>, StoreError> {
    let Some(previous): Option<String> = conn
        .query_row(
            "SELECT max(date) FROM daily_reports WHERE date < ?1",
            [date],
            |row| row.get(0),
        )
        .optional()?
        .flatten()
    else {
        return Ok(None);
    };
    let mut statement = conn.prepare_cached(
        "SELECT key, kind, subject, detail, since FROM report_exceptions WHERE date = ?1",
    )?;
    let rows = statement
        .query_map([&previous], |row| {
            Ok(RecordedException {
                key: row.get(0)?,
                kind: row.get(1)?,
                subject: row.get(2)?,
                detail: row.get(3)?,
                since: row.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((previous, rows)))
}

/// Records the report for `date`, its exceptions and its mails, once:
/// returns false (queuing nothing) if that date was already recorded.
pub(super) fn record_daily_report(
    conn: &Connection,
    date: &str,
    exceptions: &[RecordedException],
    drafts: &[MailDraft],
    now_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO daily_reports (date, created_at, recipients) VALUES (?1, ?2, ?3) ON CONFLICT (date) DO NOTHING",
        params![date, now_ms, drafts.len() as i64],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    let mut keep = conn.prepare_cached(
        "INSERT INTO report_exceptions (date, key, kind, subject, detail, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (date, key) DO NOTHING",
    )?;
    for e in exceptions {
        keep.execute(params![date, e.key, e.kind, e.subject, e.detail, e.since])?;
    }
    let cause = format!("report:{date}");
    for draft in drafts {
        super::outbox::queue_mail(conn, &cause, draft, now_ms)?;
    }
    Ok(true)
}

pub(super) fn record_sync_run(
    conn: &Connection,
    run: &SyncRun,
    started_at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sync_runs (id, started_at, finished_at, read, changed, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO NOTHING",
        params![run.id, started_at_ms, run.finished_at_ms, run.read, run.changed, run.error],
    )?;
    Ok(())
}

/// The newest sync run, if any.
pub(super) fn last_sync_run(conn: &Connection) -> Result<Option<SyncRun>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, finished_at, read, changed, error FROM sync_runs ORDER BY finished_at DESC LIMIT 1",
            [],
            |row| {
                Ok(SyncRun {
                    id: row.get(0)?,
                    finished_at_ms: row.get(1)?,
                    read: row.get(2)?,
                    changed: row.get(3)?,
                    error: row.get(4)?,
                })
            },
        )
        .optional()?)
}
