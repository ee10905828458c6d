//! The queries one period's reconciliation is assembled from (`store::period`).

use rusqlite::{Connection, Row, params};

use crate::domain::{ExpectedRent, Period, StoredPayout, StoredRequest};
use crate::store::StoreError;
use crate::store::rows::{ExpectedRow, PayoutRow, RequestRow};

pub(super) fn expected_rent(
    conn: &Connection,
    period: Period,
) -> Result<Vec<ExpectedRent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT e.property_id, e.landlord_id, e.amount, e.currency, e.due_date, e.commission_bps,
                p.payment_agreement, p.name
         FROM expected_rent e JOIN properties p ON p.id = e.property_id
         WHERE e.period = ?1",
    )?;
    let rows = statement.query_map([period.to_string()], |row: &Row<'_>| {
        Ok(ExpectedRow {
            property_id: row.get(0)?,
            landlord_id: row.get(1)?,
            amount: row.get(2)?,
            currency: row.get(3)?,
            due_date: row.get(4)?,
            commission_bps: row.get(5)?,
            payment_agreement: row.get(6)?,
            property_name: row.get(7)?,
        })
    })?;
    rows.map(|row| row?.decode(period)).collect()
}

const REQUEST_COLUMNS: &str =
    "id, payment_agreement, amount, currency, status, failure_reason, attempts,
    next_retry_at, payment_method_used, property_id, period, created, event_created, status_rank,
    last_event_type";

fn request_row(row: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get(0)?,
        payment_agreement: row.get(1)?,
        amount: row.get(2)?,
        currency: row.get(3)?,
        status: row.get(4)?,
        failure_reason: row.get(5)?,
        attempts: row.get(6)?,
        next_retry_at: row.get(7)?,
        payment_method_used: row.get(8)?,
        property_id: row.get(9)?,
        period: row.get(10)?,
        created: row.get(11)?,
        event_created: row.get(12)?,
        status_rank: row.get(13)?,
        last_event_type: row.get(14)?,
    })
}

pub(super) fn requests_of_period(
    conn: &Connection,
    period: Period,
    (undated_from, undated_until): (i64, i64),
) -> Result<Vec<StoredRequest>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM payment_requests WHERE period = ?1
         UNION ALL
         SELECT {REQUEST_COLUMNS} FROM payment_requests
         WHERE period IS NULL AND created >= ?2 AND created < ?3"
    ))?;
    let rows = statement.query_map(
        params![period.to_string(), undated_from, undated_until],
        request_row,
    )?;
    rows.map(|row| row?.decode()).collect()
}

pub(super) fn payouts_of_period(
    conn: &Connection,
    period: Period,
    (undated_from, undated_until): (i64, i64),
) -> Result<Vec<StoredPayout>, StoreError> {
    const COLUMNS: &str = "id, amount, currency, status, destination, arrival_date, failure_reason,
        failure_code, failure_message, landlord_id, period, created, event_created, status_rank";
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM payouts WHERE period = ?1
         UNION ALL
         SELECT {COLUMNS} FROM payouts WHERE period IS NULL AND created >= ?2 AND created < ?3"
    ))?;
    let rows = statement.query_map(
        params![period.to_string(), undated_from, undated_until],
        |row| {
            Ok(PayoutRow {
                id: row.get(0)?,
                amount: row.get(1)?,
                currency: row.get(2)?,
                status: row.get(3)?,
                destination: row.get(4)?,
                arrival_date: row.get(5)?,
                failure_reason: row.get(6)?,
                failure_code: row.get(7)?,
                failure_message: row.get(8)?,
                landlord_id: row.get(9)?,
                period: row.get(10)?,
                created: row.get(11)?,
                event_created: row.get(12)?,
                status_rank: row.get(13)?,
            })
        },
    )?;
    rows.map(|row| row?.decode()).collect()
}
