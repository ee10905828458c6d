//! Writing an imported rent roll: all of it in the caller's transaction, or nothing.

use std::collections::HashMap;

use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{LandlordContact, Period, PropertyKey, PropertyRent};
use crate::rent_roll::{RentRoll, RentRollErrors, RowError};
use crate::store::{ImportSummary, StoreError, corrupt};

/// Checks what only the database can tell (a payment agreement already used by
/// another stored property), then upserts. Writes nothing if that check fails.
pub(super) fn import_rent_roll(
    conn: &Connection,
    roll: &RentRoll,
) -> Result<Result<ImportSummary, RentRollErrors>, StoreError> {
    let mut conflicts = agreement_conflicts(conn, roll)?;
    conflicts.extend(bank_account_conflicts(conn, roll)?);
    if !conflicts.is_empty() {
        return Ok(Err(RentRollErrors(conflicts)));
    }
    let mut landlord = conn.prepare_cached(
        "INSERT INTO landlords (id, name, email, notify, bank_account) VALUES (?1, ?2, ?3, coalesce(?4, 1), ?5)
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, landlords.name),
             email = coalesce(excluded.email, landlords.email),
             notify = coalesce(?4, landlords.notify),
             bank_account = coalesce(excluded.bank_account, landlords.bank_account)",
    )?;
    for l in &roll.landlords {
        landlord.execute(params![l.id, l.name, l.email, l.notify, l.bank_account])?;
    }
    let mut property = conn.prepare_cached(
        "INSERT INTO properties (id, landlord_id, name, payment_agreement) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET
             landlord_id = excluded.landlord_id,
             name = coalesce(excluded.name, properties.name),
             payment_agreement = coalesce(excluded.payment_agreement, properties.payment_agreement)",
    )?;
    for p in &roll.properties {
        property.execute(params![p.id, p.landlord_id, p.name, p.payment_agreement])?;
    }
    let mut line = conn.prepare_cached(
        "INSERT INTO expected_rent (property_id, period, landlord_id, amount, currency, due_date, commission_bps)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (property_id, period) DO UPDATE SET
             landlord_id = excluded.landlord_id, amount = excluded.amount, currency = excluded.currency,
             due_date = excluded.due_date, commission_bps = excluded.commission_bps",
    )?;
    for l in &roll.lines {
        line.execute(params![
            l.property_id,
            l.period.to_string(),
            l.landlord_id,
            l.amount.minor(),
            l.amount.currency().code(),
            l.due_date.to_string(),
            l.commission_bps,
        ])?;
    }
    Ok(Ok(ImportSummary {
        lines: roll.lines.len(),
        properties: roll.properties.len(),
        landlords: roll.landlords.len(),
    }))
}

/// A bank account must name one landlord, or a payout without metadata could
/// go to either: a stored landlord keeping account A conflicts with a file row
/// giving A to another landlord, unless the same file moves the stored one.
fn bank_account_conflicts(conn: &Connection, roll: &RentRoll) -> Result<Vec<RowError>, StoreError> {
    let in_file: HashMap<&str, Option<&str>> = roll
        .landlords
        .iter()
        .map(|l| (l.id.as_str(), l.bank_account.as_deref()))
        .collect();
    let mut conflicts = Vec::new();
    for landlord in &roll.landlords {
        let Some(account) = &landlord.bank_account else {
            continue;
        };
        let Some(other) = landlord_by_bank_account(conn, account)? else {
            continue;
        };
        let moved_away = matches!(in_file.get(other.as_str()), Some(Some(new)) if new != account);
        if other != landlord.id && !moved_away {
            conflicts.push(RowError {
                line: landlord.line,
                column: Some("bank_account".into()),
                message: format!("bank account {account} is already stored for landlord {other}"),
            });
        }
    }
    Ok(conflicts)
}

/// A payment agreement must name one property, or the fallback match is ambiguous.
/// A stored property keeping agreement A conflicts with a file row giving A to
/// another property, unless the same file moves the stored one to another agreement.
fn agreement_conflicts(conn: &Connection, roll: &RentRoll) -> Result<Vec<RowError>, StoreError> {
    let in_file: HashMap<&str, Option<&str>> = roll
        .properties
        .iter()
        .map(|p| (p.id.as_str(), p.payment_agreement.as_deref()))
        .collect();
    let mut holder =
        conn.prepare_cached("SELECT id FROM properties WHERE payment_agreement = ?1 AND id != ?2")?;
    let mut conflicts = Vec::new();
    for property in &roll.properties {
        let Some(agreement) = &property.payment_agreement else {
            continue;
        };
        let holders = holder
            .query_map(params![agreement, property.id], |row| {
                row.get::<_, String>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for other in holders {
            let moved_away =
                matches!(in_file.get(other.as_str()), Some(Some(new)) if new != agreement);
            if !moved_away {
                conflicts.push(RowError {
                    line: property.line,
                    column: Some("payment_agreement".into()),
                    message: format!(
                        "payment agreement {agreement} is already stored for property {other}"
                    ),
                });
            }
        }
    }
    Ok(conflicts)
}

/// A property with the due dates of its expected lines (all, or those in
/// `within`), found by id or by payment agreement.
pub(super) fn property_rent(
    conn: &Connection,
    key: PropertyKey<'_>,
    within: Option<(Period, Period)>,
) -> Result<Option<PropertyRent>, StoreError> {
    let sql = match key {
        PropertyKey::Id(_) => "SELECT id, landlord_id, name FROM properties WHERE id = ?1",
        PropertyKey::Agreement(_) => {
            "SELECT id, landlord_id, name FROM properties WHERE payment_agreement = ?1"
        }
    };
    let (PropertyKey::Id(value) | PropertyKey::Agreement(value)) = key;
    let Some((property_id, landlord_id, property_name)) = conn
        .prepare_cached(sql)?
        .query_row([value], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let due_dates = due_dates(conn, &property_id, within)?;
    Ok(Some(PropertyRent {
        property_id,
        landlord_id,
        property_name,
        due_dates,
    }))
}

/// The properties a request can name, in one query: the one whose id is
/// `property_id`, and the one whose agreement is `agreement` (either may be
/// missing). Without due dates: the caller loads those of the one it picks.
pub(super) fn property_candidates(
    conn: &Connection,
    property_id: Option<&str>,
    agreement: Option<&str>,
) -> Result<(Option<PropertyRent>, Option<PropertyRent>), StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT 0, id, landlord_id, name FROM properties WHERE id = ?1
         UNION ALL
         SELECT 1, id, landlord_id, name FROM properties WHERE payment_agreement = ?2",
    )?;
    let rows = statement.query_map(params![property_id, agreement], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            PropertyRent {
                property_id: row.get(1)?,
                landlord_id: row.get(2)?,
                property_name: row.get(3)?,
                due_dates: Vec::new(),
            },
        ))
    })?;
    let (mut by_id, mut by_agreement) = (None, None);
    for row in rows {
        match row? {
            (0, property) => by_id = Some(property),
            (_, property) => by_agreement = Some(property),
        }
    }
    Ok((by_id, by_agreement))
}

/// (period, due date) of a property's lines, all of them or those in `within` (inclusive).
pub(super) fn due_dates(
    conn: &Connection,
    property_id: &str,
    within: Option<(Period, Period)>,
) -> Result<Vec<(Period, Date)>, StoreError> {
    let (from, until) = within.map_or((String::new(), "9999-99".to_string()), |(a, b)| {
        (a.to_string(), b.to_string())
    });
    let mut statement = conn.prepare_cached(
        "SELECT period, due_date FROM expected_rent
         WHERE property_id = ?1 AND period >= ?2 AND period <= ?3 ORDER BY period",
    )?;
    let rows = statement.query_map(params![property_id, from, until], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut dates = Vec::new();
    for row in rows {
        let (period, due) = row?;
        dates.push((
            period.parse().map_err(|_| corrupt("period", &period))?,
            due.parse().map_err(|_| corrupt("due date", &due))?,
        ));
    }
    Ok(dates)
}

/// The landlord whose CasaPay bank account is `bank_account`.
pub(super) fn landlord_by_bank_account(
    conn: &Connection,
    bank_account: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM landlords WHERE bank_account = ?1")?
        .query_row([bank_account], |row| row.get(0))
        .optional()?)
}

/// How to reach a landlord.
pub(super) fn landlord_contact(
    conn: &Connection,
    landlord_id: &str,
) -> Result<Option<LandlordContact>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, name, email, notify FROM landlords WHERE id = ?1")?
        .query_row([landlord_id], |row| {
            Ok(LandlordContact {
                landlord_id: row.get(0)?,
                name: row.get(1)?,
                email: row.get(2)?,
                notify: row.get(3)?,
            })
        })
        .optional()?)
}

/// Learns a landlord's bank account from CasaPay (its `metadata.landlord_id`),
/// unless the rent roll gave the landlord one or another landlord has it.
pub(super) fn learn_bank_account(
    conn: &Connection,
    landlord_id: &str,
    bank_account: &str,
) -> Result<bool, StoreError> {
    let learned = conn
        .prepare_cached(
            "UPDATE landlords SET bank_account = ?2
             WHERE id = ?1 AND bank_account IS NULL
               AND NOT EXISTS (SELECT 1 FROM landlords WHERE bank_account = ?2)",
        )?
        .execute(params![landlord_id, bank_account])?;
    Ok(learned == 1)
}
