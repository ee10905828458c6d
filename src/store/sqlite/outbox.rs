//! The mail outbox: queued with its cause, claimed by a worker, marked once sent.

use rusqlite::{Connection, params};

use crate::domain::MailDraft;
use crate::store::{ClaimedMail, OutboxRow, StoreError, rows};

/// Queues one mail. A second mail for the same (cause, recipient) is ignored.
pub(super) fn queue_mail(
    conn: &Connection,
    cause: &str,
    draft: &MailDraft,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO outbox (cause, kind, recipient, message, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (cause, recipient) DO NOTHING",
        )?
        .execute(params![
            cause,
            draft.kind.as_str(),
            draft.recipient,
            rows::message_json(&draft.message),
            now_ms
        ])?;
    Ok(inserted == 1)
}

/// Claims up to `limit` due mails until `lease_until_ms` (only those of
/// `cause`, when given). A claim that lapses (its worker died) makes the mail
/// due again.
pub(super) fn claim_due_mail(
    conn: &Connection,
    now_ms: i64,
    lease_until_ms: i64,
    limit: usize,
    cause: Option<&str>,
) -> Result<Vec<ClaimedMail>, StoreError> {
    let mut statement = conn.prepare_cached(
        "UPDATE outbox SET status = 'sending', next_attempt_at = ?2
         WHERE id IN (SELECT id FROM outbox
                      WHERE status IN ('queued', 'sending') AND next_attempt_at <= ?1
                        AND (?4 IS NULL OR cause = ?4)
                      ORDER BY next_attempt_at, id LIMIT ?3)
         RETURNING id, recipient, kind, message, attempts",
    )?;
    let rows = statement.query_map(
        params![now_ms, lease_until_ms, limit as i64, cause],
        |row| {
            Ok(ClaimedMail {
                id: row.get(0)?,
                recipient: row.get(1)?,
                mail: rows::mail(row.get_ref(2)?.as_str()?, row.get_ref(3)?.as_str()?),
                attempts: row.get(4)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Makes mail claimed by a process that died due again at once. Only for a
/// starting service that is the database's one worker (SQLite): claims held
/// elsewhere would otherwise wait for their lease to lapse.
pub(super) fn release_claims(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET status = 'queued', next_attempt_at = ?1 WHERE status = 'sending'",
        [now_ms],
    )?)
}

pub(super) fn mark_mail_sent(conn: &Connection, id: i64, now_ms: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
    )?
    .execute(params![id, now_ms])?;
    Ok(())
}

/// Records a failed attempt: due again at `retry_at_ms`, or `failed` for good.
pub(super) fn mark_mail_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    retry_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
             status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'queued' END,
             next_attempt_at = coalesce(?3, next_attempt_at)
         WHERE id = ?1",
    )?
    .execute(params![id, error, retry_at_ms])?;
    Ok(())
}

/// Puts failed mail back in the queue (all of it, or the given ids). Returns how many.
pub(super) fn requeue_failed_mail(
    conn: &Connection,
    ids: &[i64],
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut statement = conn.prepare_cached(
        "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = ?1
         WHERE status = 'failed' AND (?2 IS NULL OR id = ?2)",
    )?;
    if ids.is_empty() {
        return Ok(statement.execute(params![now_ms, Option::<i64>::None])?);
    }
    let mut count = 0;
    for id in ids {
        count += statement.execute(params![now_ms, id])?;
    }
    Ok(count)
}

/// Mail in a status (or not yet sent, with `None`), oldest first.
pub(super) fn list_outbox(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, status, kind, recipient, message, attempts, last_error, cause FROM outbox
         WHERE (?1 IS NULL AND status != 'sent') OR status = ?1
         ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![status, limit as i64], |row| {
        Ok(OutboxRow {
            id: row.get(0)?,
            status: row.get(1)?,
            kind: row.get(2)?,
            recipient: row.get(3)?,
            mail: rows::mail(row.get_ref(2)?.as_str()?, row.get_ref(4)?.as_str()?),
            attempts: row.get(5)?,
            last_error: row.get(6)?,
            cause: row.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn unsent_mail(conn: &Connection, cause: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbox WHERE cause = ?1 AND status != 'sent'",
        [cause],
        |row| row.get(0),
    )?)
}

/// Mail waiting to be sent: queued, or claimed and not yet marked.
pub(super) fn outbox_depth(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')",
        [],
        |row| row.get(0),
    )?)
}
