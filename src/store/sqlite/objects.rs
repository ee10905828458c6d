//! The newest known state of each PaymentRequest and Payout.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{Object, PaymentRequest, Payout, StatusRank, Version};
use crate::store::{ObjectState, SetBy, StoreError};

/// The version of the stored state of `object`'s id, if any.
pub(super) fn object_version(
    conn: &Connection,
    object: &Object,
) -> Result<Option<Version>, StoreError> {
    let sql = match object {
        Object::PaymentRequest(_) => {
            "SELECT event_created, status_rank FROM payment_requests WHERE id = ?1"
        }
        Object::Payout(_) => "SELECT event_created, status_rank FROM payouts WHERE id = ?1",
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([object.id()], |row| {
            Ok(Version {
                created: row.get(0)?,
                rank: StatusRank(row.get(1)?),
            })
        })
        .optional()?)
}

/// Stores `object` as the newest state of its id.
pub(super) fn save_object(
    conn: &Connection,
    object: &Object,
    set_by: SetBy<'_>,
) -> Result<(), StoreError> {
    match object {
        Object::PaymentRequest(pr) => save_payment_request(conn, pr, set_by),
        Object::Payout(po) => save_payout(conn, po, set_by),
    }
}

fn save_payment_request(
    conn: &Connection,
    pr: &PaymentRequest,
    set_by: SetBy<'_>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payment_requests (id, payment_agreement, amount, currency, status, failure_reason,
             attempts, next_retry_at, property_id, period, created, event_created, status_rank,
             last_event_id, payment_method_used, last_event_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (id) DO UPDATE SET
             payment_agreement = excluded.payment_agreement, amount = excluded.amount,
             currency = excluded.currency, status = excluded.status,
             failure_reason = excluded.failure_reason, attempts = excluded.attempts,
             next_retry_at = excluded.next_retry_at, property_id = excluded.property_id,
             period = excluded.period, created = excluded.created,
             event_created = excluded.event_created, status_rank = excluded.status_rank,
             last_event_id = excluded.last_event_id,
             payment_method_used = excluded.payment_method_used,
             last_event_type = excluded.last_event_type",
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
        set_by.version.created,
        set_by.version.rank.0,
        set_by.event_id,
        pr.payment_method_used,
        set_by.event_type,
    ])?;
    Ok(())
}

fn save_payout(conn: &Connection, po: &Payout, set_by: SetBy<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO payouts (id, amount, currency, status, destination, arrival_date, failure_code,
             failure_message, landlord_id, period, created, event_created, status_rank, last_event_id,
             failure_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (id) DO UPDATE SET
             amount = excluded.amount, currency = excluded.currency, status = excluded.status,
             destination = excluded.destination, arrival_date = excluded.arrival_date,
             failure_code = excluded.failure_code, failure_message = excluded.failure_message,
             landlord_id = excluded.landlord_id, period = excluded.period, created = excluded.created,
             event_created = excluded.event_created, status_rank = excluded.status_rank,
             last_event_id = excluded.last_event_id, failure_reason = excluded.failure_reason",
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
        set_by.version.created,
        set_by.version.rank.0,
        set_by.event_id,
        po.failure_reason,
    ])?;
    Ok(())
}

/// Empties the derived object tables, for a replay that rebuilds them from the log.
pub(super) fn clear_objects(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("DELETE FROM payment_requests; DELETE FROM payouts;")?;
    Ok(())
}

/// The stored state of `object`'s id, and its version.
pub(super) fn object_state(
    conn: &Connection,
    object: &Object,
) -> Result<Option<(ObjectState, Version)>, StoreError> {
    let sql = match object {
        Object::PaymentRequest(_) => {
            "SELECT status, attempts, next_retry_at, event_created, status_rank FROM payment_requests WHERE id = ?1"
        }
        Object::Payout(_) => {
            "SELECT status, NULL, NULL, event_created, status_rank FROM payouts WHERE id = ?1"
        }
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([object.id()], |row| {
            Ok((
                ObjectState {
                    status: row.get(0)?,
                    attempts: row.get(1)?,
                    next_retry_at: row.get(2)?,
                },
                Version {
                    created: row.get(3)?,
                    rank: StatusRank(row.get(4)?),
                },
            ))
        })
        .optional()?)
}
