//! Loads what one period's reconciliation reads: a handful of queries for the
//! period, and one more per property only for requests that carry no period.

use std::collections::HashSet;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::{Connection, Row, params};

use super::rent_roll::{due_dates, landlord_by_bank_account, property_rent};
use crate::domain::{
    Currency, ExpectedRent, Money, PaymentRequest, PaymentRequestStatus, Payout, PayoutStatus,
    Period, PropertyKey, PropertyRent, StatusRank, StoredPayout, StoredRequest, Version,
};
use crate::store::records::UNDATED_MARGIN_DAYS;
use crate::store::{PeriodData, StoreError, corrupt};

fn currency(text: &str) -> Result<Currency, StoreError> {
    Currency::parse(text).map_err(|_| corrupt("currency", text))
}

fn money(amount: i64, code: &str) -> Result<Money, StoreError> {
    Money::new(amount, currency(code)?).map_err(|_| corrupt("amount", &amount.to_string()))
}

pub(super) fn load_period(
    conn: &Connection,
    period: Period,
    timezone: &TimeZone,
) -> Result<PeriodData, StoreError> {
    let mut data = PeriodData {
        expected: expected_rent(conn, period)?,
        ..PeriodData::default()
    };
    for line in &data.expected {
        if let Some(agreement) = &line.payment_agreement {
            data.agreements
                .insert(agreement.clone(), line.property_id.clone());
        }
        data.properties.insert(
            line.property_id.clone(),
            PropertyRent {
                property_id: line.property_id.clone(),
                landlord_id: line.landlord_id.clone(),
                property_name: line.property_name.clone(),
                due_dates: vec![(line.period, line.due_date)],
            },
        );
    }
    let margin = UNDATED_MARGIN_DAYS * 86_400;
    let (start, end) = (period.start_in(timezone), period.next().start_in(timezone));
    data.requests = payment_requests(conn, period, start - margin, end + margin)?;
    load_named_properties(conn, &mut data, (period.shifted(-3), period.shifted(3)))?;
    data.payouts = payouts(conn, period, start, end)?;
    for payout in &data.payouts {
        if let (None, Some(account)) = (&payout.payout.landlord_id, &payout.payout.destination)
            && !data.bank_accounts.contains_key(account)
            && let Some(landlord) = landlord_by_bank_account(conn, account)?
        {
            data.bank_accounts.insert(account.clone(), landlord);
        }
    }
    Ok(data)
}

/// Adds the properties loaded requests name but the period's lines do not,
/// and the nearby due dates of every property an undated request names.
fn load_named_properties(
    conn: &Connection,
    data: &mut PeriodData,
    window: (Period, Period),
) -> Result<(), StoreError> {
    let mut looked_up: HashSet<String> = HashSet::new();
    let mut widened: HashSet<String> = HashSet::new();
    let requests = std::mem::take(&mut data.requests);
    for request in &requests {
        let pr = &request.request;
        let keys = [
            pr.property_id.as_deref().map(PropertyKey::Id),
            pr.payment_agreement.as_deref().map(PropertyKey::Agreement),
        ];
        for key in keys.into_iter().flatten() {
            let known = match key {
                PropertyKey::Id(id) => data.properties.contains_key(id).then(|| id.to_string()),
                PropertyKey::Agreement(a) => data.agreements.get(a).cloned(),
            };
            let property_id = match known {
                Some(id) => id,
                None => {
                    if !looked_up.insert(format!("{key:?}")) {
                        continue;
                    }
                    let Some(found) = property_rent(conn, key, Some(window))? else {
                        continue;
                    };
                    if let PropertyKey::Agreement(agreement) = key {
                        data.agreements
                            .insert(agreement.to_string(), found.property_id.clone());
                    }
                    widened.insert(found.property_id.clone());
                    let id = found.property_id.clone();
                    data.properties.entry(id.clone()).or_insert(found);
                    id
                }
            };
            if pr.period.is_none()
                && widened.insert(property_id.clone())
                && let Some(property) = data.properties.get_mut(&property_id)
            {
                property.due_dates = due_dates(conn, &property_id, Some(window))?;
            }
        }
    }
    data.requests = requests;
    Ok(())
}

fn expected_rent(conn: &Connection, period: Period) -> Result<Vec<ExpectedRent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT e.property_id, e.landlord_id, e.amount, e.currency, e.due_date, e.commission_bps,
                p.payment_agreement, p.name
         FROM expected_rent e JOIN properties p ON p.id = e.property_id
         WHERE e.period = ?1",
    )?;
    let rows = statement.query_map([period.to_string()], |row: &Row<'_>| {
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
    for row in rows {
        let (property_id, landlord_id, amount, code, due, commission_bps, agreement, name) = row?;
        expected.push(ExpectedRent {
            property_id,
            landlord_id,
            period,
            amount: money(amount, &code)?,
            due_date: Date::from_str(&due).map_err(|_| corrupt("due date", &due))?,
            commission_bps,
            payment_agreement: agreement,
            property_name: name,
        });
    }
    Ok(expected)
}

const REQUEST_COLUMNS: &str =
    "id, payment_agreement, amount, currency, status, failure_reason, attempts,
    next_retry_at, payment_method_used, property_id, period, created, event_created, status_rank,
    last_event_type";

fn stored_request(row: &Row<'_>) -> rusqlite::Result<Result<StoredRequest, StoreError>> {
    let code: String = row.get(3)?;
    let status: String = row.get(4)?;
    let amount: i64 = row.get(2)?;
    let last_type: Option<String> = row.get(14)?;
    let rank: u8 = row.get(13)?;
    let build = |amount: Money, status: PaymentRequestStatus| -> rusqlite::Result<StoredRequest> {
        Ok(StoredRequest {
            request: PaymentRequest {
                id: row.get(0)?,
                payment_agreement: row.get(1)?,
                amount,
                status,
                failure_reason: row.get(5)?,
                attempts: row.get(6)?,
                next_retry_at: row.get(7)?,
                payment_method_used: row.get(8)?,
                property_id: row.get(9)?,
                period: row.get(10)?,
                description: None,
                created: row.get(11)?,
            },
            version: Version {
                created: row.get(12)?,
                rank: StatusRank(rank),
            },
            set_by_retrying_event: last_type.as_deref() == Some("payment_request.retrying"),
        })
    };
    let amount = match money(amount, &code) {
        Ok(amount) => amount,
        Err(error) => return Ok(Err(error)),
    };
    match PaymentRequestStatus::parse(&status) {
        Some(status) => build(amount, status).map(Ok),
        None => Ok(Err(corrupt("status", &status))),
    }
}

fn payment_requests(
    conn: &Connection,
    period: Period,
    undated_from: i64,
    undated_until: i64,
) -> Result<Vec<StoredRequest>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM payment_requests WHERE period = ?1
         UNION ALL
         SELECT {REQUEST_COLUMNS} FROM payment_requests
         WHERE period IS NULL AND created >= ?2 AND created < ?3"
    ))?;
    let rows = statement.query_map(
        params![period.to_string(), undated_from, undated_until],
        stored_request,
    )?;
    let mut requests = Vec::new();
    for row in rows {
        requests.push(row??);
    }
    Ok(requests)
}

fn payouts(
    conn: &Connection,
    period: Period,
    created_from: i64,
    created_until: i64,
) -> Result<Vec<StoredPayout>, StoreError> {
    const COLUMNS: &str = "id, amount, currency, status, destination, arrival_date, failure_reason,
        failure_code, failure_message, landlord_id, period, created, event_created, status_rank";
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM payouts WHERE period = ?1
         UNION ALL
         SELECT {COLUMNS} FROM payouts WHERE period IS NULL AND created >= ?2 AND created < ?3"
    ))?;
    let rows = statement.query_map(
        params![period.to_string(), created_from, created_until],
        |row| {
            Ok((
                (
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ),
                (
                    row.get::<_, Option<String>>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, i64>(11)?,
                    row.get::<_, i64>(12)?,
                    row.get::<_, u8>(13)?,
                ),
            ))
        },
    )?;
    let mut payouts = Vec::new();
    for row in rows {
        let (
            (id, amount, code, status, destination, arrival_date, failure_reason),
            (failure_code, failure_message, landlord_id, period, created, event_created, rank),
        ) = row?;
        payouts.push(StoredPayout {
            payout: Payout {
                id,
                amount: money(amount, &code)?,
                status: PayoutStatus::parse(&status)
                    .ok_or_else(|| corrupt("payout status", &status))?,
                destination,
                arrival_date,
                failure_reason,
                failure_code,
                failure_message,
                landlord_id,
                period,
                description: None,
                created,
            },
            version: Version {
                created: event_created,
                rank: StatusRank(rank),
            },
        });
    }
    Ok(payouts)
}
