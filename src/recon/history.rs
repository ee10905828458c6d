//! Collected against expected month by month, for the dashboard's chart of
//! the last twelve months. The page's own month is always reconciled fresh;
//! earlier months seldom change, and reconciling eleven of them on every
//! page view would cost seconds at 100,000 properties, so their totals are
//! kept for a few minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::{Total, reconcile_each};
use crate::domain::Period;
use crate::store::{Storage, StoreError};

/// Months in the chart, the page's month last.
pub const MONTHS: usize = 12;

/// A month's totals as of a date, and when they were reconciled.
type Kept = HashMap<(Period, Date), (Instant, Vec<Total>)>;

/// Earlier months' totals, each kept for `ttl` after it was reconciled.
pub struct MonthlyTotals {
    ttl: Duration,
    kept: Mutex<Kept>,
}

impl MonthlyTotals {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            kept: Mutex::new(HashMap::new()),
        }
    }

    /// The [`MONTHS`] months ending with `period`, oldest first, with their
    /// totals as of `as_of`; `current` is `period`'s own, just reconciled.
    pub fn last_months(
        &self,
        store: &dyn Storage,
        period: Period,
        current: &[Total],
        as_of: Date,
        timezone: &TimeZone,
    ) -> Result<Vec<(Period, Vec<Total>)>, StoreError> {
        let mut months = Vec::with_capacity(MONTHS);
        for back in (1..MONTHS as i32).rev() {
            let month = period.shifted(-back);
            months.push((month, self.totals_of(store, month, as_of, timezone)?));
        }
        months.push((period, current.to_vec()));
        Ok(months)
    }

    fn totals_of(
        &self,
        store: &dyn Storage,
        month: Period,
        as_of: Date,
        timezone: &TimeZone,
    ) -> Result<Vec<Total>, StoreError> {
        let key = (month, as_of);
        if let Some((at, totals)) = self.kept().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(totals.clone());
        }
        let totals = reconcile_each(store, month, as_of, timezone, None, &mut |_| Ok(()))?.totals;
        let mut kept = self.kept();
        kept.retain(|_, (at, _)| at.elapsed() < self.ttl);
        kept.insert(key, (Instant::now(), totals.clone()));
        Ok(totals)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding it leaves only cached totals behind: keep using them.
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
