//! The newest known state of each PaymentRequest and Payout.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::domain::StatusRank;
use crate::webhook::event::{PaymentRequest, Payout};

/// What decides whether an incoming event is newer: the `created` of the event
/// that set the stored state, then its status rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredVersion {
    pub event_created: i64,
    pub rank: StatusRank,
}

fn version(conn: &Connection, sql: &str, id: &str) -> Result<Option<StoredVersion>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |row| {
            Ok(StoredVersion {
                event_created: row.get(0)?,
                rank: StatusRank(row.get(1)?),
            })
        })
        .optional()?)
}

pub fn payment_request_version(
    conn: &Connection,
    id: &str,
) -> Result<Option<StoredVersion>, StoreError> {
    version(
        conn,
        "SELECT event_created, status_rank FROM payment_requests WHERE id = ?1",
        id,
    )
}

pub fn payout_version(conn: &Connection, id: &str) -> Result<Option<StoredVersion>, StoreError> {
    version(
        conn,
        "SELECT event_created, status_rank FROM payouts WHERE id = ?1",
        id,
    )
}

pub fn save_payment_request(
    conn: &Connection,
    pr: &PaymentRequest,
    event_id: &str,
    event_created: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payment_requests (id, payment_agreement, amount, currency, status, failure_reason,
             attempts, next_retry_at, property_id, period, created, event_created, status_rank, last_event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (id) DO UPDATE SET
             payment_agreement = excluded.payment_agreement, amount = excluded.amount,
             currency = excluded.currency, status = excluded.status,
             failure_reason = excluded.failure_reason, attempts = excluded.attempts,
             next_retry_at = excluded.next_retry_at, property_id = excluded.property_id,
             period = excluded.period, created = excluded.created,
             event_created = excluded.event_created, status_rank = excluded.status_rank,
             last_event_id = excluded.last_event_id",
    )?
    .execute(params![
        pr.id,
        pr.payment_agreement,
        pr.amount.minor(),
        pr.amount.currency().code(),
        pr.status.as_str(),
        pr.failure_reason,
        pr.attempts,
        pr.next_retry_at,
        pr.property_id,
        pr.period,
        pr.created,
        event_created,
        pr.status.rank().0,
        event_id,
    ])?;
    Ok(())
}

pub fn save_payout(
    conn: &Connection,
    po: &Payout,
    event_id: &str,
    event_created: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payouts (id, amount, currency, status, destination, arrival_date, failure_code,
             failure_message, landlord_id, period, created, event_created, status_rank, last_event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (id) DO UPDATE SET
             amount = excluded.amount, currency = excluded.currency, status = excluded.status,
             destination = excluded.destination, arrival_date = excluded.arrival_date,
             failure_code = excluded.failure_code, failure_message = excluded.failure_message,
             landlord_id = excluded.landlord_id, period = excluded.period, created = excluded.created,
             event_created = excluded.event_created, status_rank = excluded.status_rank,
             last_event_id = excluded.last_event_id",
    )?
    .execute(params![
        po.id,
        po.amount.minor(),
        po.amount.currency().code(),
        po.status.as_str(),
        po.destination,
        po.arrival_date,
        po.failure_code,
        po.failure_message,
        po.landlord_id,
        po.period,
        po.created,
        event_created,
        po.status.rank().0,
        event_id,
    ])?;
    Ok(())
}
