//! Importing a rent roll: what only the database can refuse is checked
//! first, then all of it is written in the caller's transaction, or nothing.

use std::collections::HashMap;

use super::{ImportSummary, Storage, StoreError};
use crate::rent_roll::{RentRoll, RentRollErrors, RowError};

pub(super) fn import<S: Storage + ?Sized>(
    store: &S,
    roll: &RentRoll,
) -> Result<Result<ImportSummary, RentRollErrors>, StoreError> {
    let mut conflicts = agreement_conflicts(store, roll)?;
    conflicts.extend(bank_account_conflicts(store, roll)?);
    if !conflicts.is_empty() {
        return Ok(Err(RentRollErrors(conflicts)));
    }
    store.write_rent_roll(roll)?;
    Ok(Ok(ImportSummary {
        lines: roll.lines.len(),
        properties: roll.properties.len(),
        landlords: roll.landlords.len(),
    }))
}

/// A bank account must name one landlord, or a payout without metadata could
/// go to either: a stored landlord keeping account A conflicts with a file row
/// giving A to another landlord, unless the same file moves the stored one.
fn bank_account_conflicts<S: Storage + ?Sized>(
    store: &S,
    roll: &RentRoll,
) -> Result<Vec<RowError>, StoreError> {
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
        let Some(other) = store.landlord_by_bank_account(account)? else {
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
fn agreement_conflicts<S: Storage + ?Sized>(
    store: &S,
    roll: &RentRoll,
) -> Result<Vec<RowError>, StoreError> {
    let in_file: HashMap<&str, Option<&str>> = roll
        .properties
        .iter()
        .map(|p| (p.id.as_str(), p.payment_agreement.as_deref()))
        .collect();
    let mut conflicts = Vec::new();
    for property in &roll.properties {
        let Some(agreement) = &property.payment_agreement else {
            continue;
        };
        for other in store.agreement_holders(agreement, &property.id)? {
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
