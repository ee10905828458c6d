//! Writing an imported rent roll: all of it in the caller's transaction, or nothing.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;
use crate::rent_roll::{RentRoll, RentRollErrors, RowError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Expected lines written (one per property and month).
    pub lines: usize,
    pub properties: usize,
    pub landlords: usize,
}

/// Checks what only the database can tell (a payment agreement already used by
/// another stored property), then upserts. Writes nothing if that check fails.
pub fn import_rent_roll(
    conn: &Connection,
    roll: &RentRoll,
) -> Result<Result<ImportSummary, RentRollErrors>, StoreError> {
    let conflicts = agreement_conflicts(conn, roll)?;
    if !conflicts.is_empty() {
        return Ok(Err(RentRollErrors(conflicts)));
    }
    let mut landlord = conn.prepare_cached(
        "INSERT INTO landlords (id, name, email, notify) VALUES (?1, ?2, ?3, coalesce(?4, 1))
         ON CONFLICT (id) DO UPDATE SET
             name = coalesce(excluded.name, landlords.name),
             email = coalesce(excluded.email, landlords.email),
             notify = coalesce(?4, landlords.notify)",
    )?;
    for l in &roll.landlords {
        landlord.execute(params![l.id, l.name, l.email, l.notify])?;
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
