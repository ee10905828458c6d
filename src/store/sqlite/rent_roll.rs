//! The rent roll as stored: landlords, properties and expected lines.

use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{LandlordContact, LandlordId, Period, PropertyRent};
use crate::rent_roll::RentRoll;
use crate::store::StoreError;
use crate::store::rows;

/// Upserts the roll's landlords, properties and lines.
pub(super) fn write_rent_roll(conn: &Connection, roll: &RentRoll) -> Result<(), StoreError> {
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
    Ok(())
}

/// The properties other than `except_property` that keep `agreement`.
pub(super) fn agreement_holders(
    conn: &Connection,
    agreement: &str,
    except_property: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM properties WHERE payment_agreement = ?1 AND id != ?2")?
        .query_map(params![agreement, except_property], |row| row.get(0))?
        .collect::<Result<Vec<_>, _>>()?)
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
        dates.push((rows::period(&period)?, rows::date(&due)?));
    }
    Ok(dates)
}

/// The landlord whose CasaPay bank account is `bank_account`.
pub(super) fn landlord_by_bank_account(
    conn: &Connection,
    bank_account: &str,
) -> Result<Option<LandlordId>, StoreError> {
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
