//! The queries one period's reconciliation is assembled from (`store::period`).

use rusqlite::{Connection, Row, params};

use crate::domain::{Period, StoredPayout};
use crate::store::period::{self, PeriodWindow};
use crate::store::rows::{ExpectedRow, PayoutRow, PlacedRequestRow, RequestRow};
use crate::store::{PeriodItem, StoreError};

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

pub(super) fn visit_period(
    conn: &Connection,
    window: &PeriodWindow,
    landlord: Option<&str>,
    visit: &mut dyn FnMut(PeriodItem) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let period = window.period;
    let mut lines = conn.prepare_cached(LINES)?;
    let lines = lines
        .query_map(params![period.to_string(), landlord], expected_row)?
        .map(|row| row?.decode(period));
    let mut requests = conn.prepare_cached(&placed_requests_sql())?;
    let (from, until) = window.undated_created;
    let (first_month, last_month) = window.due_months;
    let requests = requests
        .query_map(
            params![
                period.to_string(),
                from,
                until,
                first_month.to_string(),
                last_month.to_string(),
                landlord
            ],
            |row| {
                Ok(PlacedRequestRow {
                    request: request_row(row)?,
                    property: row.get(15)?,
                    line_landlord: row.get(16)?,
                    due_dates: row.get(17)?,
                })
            },
        )?
        .map(|row| row?.decode());
    period::merge(lines, requests, visit)
}

/// The period's lines (?1), a landlord's only if ?2 is set.
const LINES: &str =
    "SELECT e.property_id, e.landlord_id, e.amount, e.currency, e.due_date, e.commission_bps,
        p.payment_agreement, p.name
    FROM expected_rent e JOIN properties p ON p.id = e.property_id
    WHERE e.period = ?1 AND (?2 IS NULL OR e.landlord_id = ?2)
    ORDER BY e.landlord_id, e.property_id";

fn expected_row(row: &Row<'_>) -> rusqlite::Result<ExpectedRow> {
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
}

/// The period's requests (?1; undated ones created in [?2, ?3)), each with
/// the property it is for (`matching::property_of`: its metadata property if
/// the rent roll has it, else its agreement's), the landlord of that
/// property's line in the period, and for an undated one the property's due
/// dates in months ?4..?5; a landlord's only if ?6 is set. Sorted as the
/// lines are, then those without a line, by id.
fn placed_requests_sql() -> String {
    format!(
        "WITH wanted AS (
            SELECT {REQUEST_COLUMNS} FROM payment_requests WHERE period = ?1
            UNION ALL
            SELECT {REQUEST_COLUMNS} FROM payment_requests
            WHERE period IS NULL AND created >= ?2 AND created < ?3
        ), placed AS MATERIALIZED (
            SELECT wanted.*, COALESCE(
                (SELECT p.id FROM properties p WHERE p.id = wanted.property_id),
                (SELECT p.id FROM properties p WHERE p.payment_agreement = wanted.payment_agreement)
            ) AS placed_at
            FROM wanted
        )
        SELECT {placed}, placed_at, e.landlord_id,
            CASE WHEN placed.period IS NULL AND placed_at IS NOT NULL THEN
                (SELECT group_concat(d.period || ' ' || d.due_date) FROM expected_rent d
                 WHERE d.property_id = placed.placed_at AND d.period BETWEEN ?4 AND ?5)
            END
        FROM placed LEFT JOIN expected_rent e ON e.property_id = placed.placed_at AND e.period = ?1
        WHERE ?6 IS NULL OR e.landlord_id = ?6
        ORDER BY e.landlord_id IS NULL, e.landlord_id,
            CASE WHEN e.landlord_id IS NULL THEN placed.id ELSE placed_at END",
        placed = period::qualified("placed", REQUEST_COLUMNS)
    )
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
