//! Loads what one period's reconciliation reads: three queries, however many properties.

use std::str::FromStr;

use jiff::civil::Date;
use rusqlite::{Connection, Row, params};

use super::StoreError;
use crate::domain::{Currency, Money, PaymentRequestStatus, PayoutStatus, Period};
use crate::recon::rules::MatchedRequest;
use crate::recon::{ExpectedRow, PayoutRow, PeriodData, RequestRow};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} `{value}` is not valid"))
}

fn currency(text: &str) -> Result<Currency, StoreError> {
    Currency::parse(text).map_err(|_| corrupt("currency", text))
}

/// The period's expected lines, its PaymentRequests (by `metadata.period`, or
/// with no period but created within the month), and its payouts.
pub fn load_period(
    conn: &Connection,
    period: Period,
    created_from: i64,
    created_until: i64,
) -> Result<PeriodData, StoreError> {
    let period_text = period.to_string();

    let mut statement = conn.prepare_cached(
        "SELECT e.property_id, e.landlord_id, e.amount, e.currency, e.due_date, e.commission_bps,
                p.payment_agreement, p.name
         FROM expected_rent e JOIN properties p ON p.id = e.property_id
         WHERE e.period = ?1",
    )?;
    let raw = statement.query_map([&period_text], |row: &Row<'_>| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, u32>(5)?,
            row.get::<_, Option<String>>(6)?,
            row.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut expected = Vec::new();
    for row in raw {
        let (
            property_id,
            landlord_id,
            amount,
            code,
            due,
            commission_bps,
            payment_agreement,
            property_name,
        ) = row?;
        let amount = Money::new(amount, currency(&code)?)
            .map_err(|_| corrupt("amount", &amount.to_string()))?;
        let due_date = Date::from_str(&due).map_err(|_| corrupt("due date", &due))?;
        expected.push(ExpectedRow {
            property_id,
            landlord_id,
            amount,
            due_date,
            commission_bps,
            payment_agreement,
            property_name,
        });
    }

    let mut statement = conn.prepare_cached(
        "SELECT id, amount, currency, status, next_retry_at, failure_reason, created, event_created,
                payment_agreement, property_id, period
         FROM payment_requests
         WHERE period = ?1 OR (period IS NULL AND created >= ?2 AND created < ?3)",
    )?;
    let raw = statement.query_map(params![period_text, created_from, created_until], |row| {
        Ok((
            (
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, i64>(7)?,
            ),
            row.get::<_, Option<String>>(8)?,
            row.get::<_, Option<String>>(9)?,
            row.get::<_, Option<String>>(10)?,
        ))
    })?;
    let mut requests = Vec::new();
    for row in raw {
        let (
            (id, amount, code, status, next_retry_at, failure_reason, created, event_created),
            agreement,
            property,
            period,
        ) = row?;
        let status =
            PaymentRequestStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?;
        requests.push(RequestRow {
            request: MatchedRequest {
                id,
                amount,
                currency: currency(&code)?,
                status,
                next_retry_at,
                failure_reason,
                created,
                event_created,
            },
            payment_agreement: agreement,
            property_id: property,
            period,
        });
    }

    let mut statement = conn.prepare_cached(
        "SELECT id, amount, currency, status, landlord_id FROM payouts
         WHERE period = ?1 AND landlord_id IS NOT NULL",
    )?;
    let raw = statement.query_map([&period_text], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut payouts = Vec::new();
    for row in raw {
        let (id, amount, code, status, landlord_id) = row?;
        payouts.push(PayoutRow {
            id,
            amount,
            currency: currency(&code)?,
            status: PayoutStatus::parse(&status)
                .ok_or_else(|| corrupt("payout status", &status))?,
            landlord_id,
        });
    }
    Ok(PeriodData {
        expected,
        requests,
        payouts,
    })
}
