//! Aged arrears (SPEC §5 Arrears): every expected line with rent outstanding
//! whose due date has passed, by days past due; lines CasaPay is still
//! collecting (`retrying`, `pending`) apart, as `in_collection`.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::{Line, reconcile_each};
use crate::domain::{Currency, LandlordId, LineStatus, Period, PropertyId};
use crate::store::{Storage, StoreError};

/// The age buckets, by days past due.
pub const BUCKETS: [&str; 4] = ["0-30", "31-60", "61-90", "90+"];

/// The bucket of a line `days` past due (1 or more).
pub fn bucket(days: i64) -> &'static str {
    match days {
        ..=30 => BUCKETS[0],
        31..=60 => BUCKETS[1],
        61..=90 => BUCKETS[2],
        _ => BUCKETS[3],
    }
}

/// Days from `due` to `as_of`.
fn days_past(due: Date, as_of: Date) -> i64 {
    due.until(as_of)
        .map(|span| i64::from(span.get_days()))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArrearsLine {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub period: String,
    pub currency: Currency,
    pub outstanding: i64,
    pub due_date: Date,
    pub days_past_due: i64,
    /// An age bucket, or `in_collection`.
    pub bucket: &'static str,
    pub status: LineStatus,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct BucketTotal {
    pub lines: usize,
    pub outstanding: i64,
}

/// Per currency, per bucket (the four ages, then `in_collection`).
pub type ArrearsTotals = BTreeMap<Currency, BTreeMap<&'static str, BucketTotal>>;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Arrears {
    pub object: &'static str,
    pub as_of: String,
    pub totals: ArrearsTotals,
    pub lines: Vec<ArrearsLine>,
}

/// The arrears of reconciled lines as of `as_of` (pure).
pub fn arrears_of<'a>(lines: impl IntoIterator<Item = &'a Line>, as_of: Date) -> Arrears {
    let mut arrears = Arrears {
        object: "arrears",
        as_of: as_of.to_string(),
        totals: BTreeMap::new(),
        lines: Vec::new(),
    };
    for line in lines {
        let Some((days, bucket)) = count_in(&mut arrears.totals, line, as_of) else {
            continue;
        };
        arrears.lines.push(ArrearsLine {
            property_id: line.property_id.clone(),
            landlord_id: line.landlord_id.clone(),
            period: line.period.clone(),
            currency: line.currency,
            outstanding: line.outstanding,
            due_date: line.due_date,
            days_past_due: days,
            bucket,
            status: line.status,
        });
    }
    arrears.lines.sort_by(|a, b| {
        (&a.landlord_id, &a.property_id, &a.period).cmp(&(
            &b.landlord_id,
            &b.property_id,
            &b.period,
        ))
    });
    arrears
}

/// Counts `line` in `totals` if it is in arrears (or in collection) as of
/// `as_of`; its days past due and bucket when it is.
pub fn count_in(
    totals: &mut ArrearsTotals,
    line: &Line,
    as_of: Date,
) -> Option<(i64, &'static str)> {
    if line.outstanding <= 0 || line.due_date >= as_of {
        return None;
    }
    let days = days_past(line.due_date, as_of);
    let bucket = if matches!(line.status, LineStatus::Retrying | LineStatus::Pending) {
        "in_collection"
    } else {
        bucket(days)
    };
    let total = totals
        .entry(line.currency)
        .or_default()
        .entry(bucket)
        .or_default();
    total.lines += 1;
    total.outstanding = total.outstanding.saturating_add(line.outstanding);
    Some((days, bucket))
}

/// Reconciles every period up to `as_of`'s and gathers its arrears.
pub fn arrears_stored(
    store: &dyn Storage,
    as_of: Date,
    timezone: &TimeZone,
) -> Result<Arrears, StoreError> {
    let current = Period::of_date(as_of);
    let mut periods: Vec<Period> = store
        .periods_before(&current.to_string())?
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    periods.push(current);
    // Only lines with money outstanding can be in arrears.
    let mut lines = Vec::new();
    for period in periods {
        reconcile_each(store, period, as_of, timezone, None, &mut |line| {
            if line.outstanding > 0 {
                lines.push(line);
            }
            Ok(())
        })?;
    }
    Ok(arrears_of(&lines, as_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_at_their_boundaries() {
        assert_eq!(bucket(1), "0-30");
        assert_eq!(bucket(30), "0-30");
        assert_eq!(bucket(31), "31-60");
        assert_eq!(bucket(60), "31-60");
        assert_eq!(bucket(61), "61-90");
        assert_eq!(bucket(90), "61-90");
        assert_eq!(bucket(91), "90+");
        assert_eq!(
            days_past("2025-03-01".parse().unwrap(), "2025-03-31".parse().unwrap()),
            30
        );
    }
}
