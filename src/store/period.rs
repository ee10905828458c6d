//! What one period's reconciliation reads, assembled from a handful of
//! queries for the period and one more per property only for requests that
//! carry no period. The same for every engine.

use std::collections::HashSet;

use jiff::tz::TimeZone;

use super::records::UNDATED_MARGIN_DAYS;
use super::{PeriodData, Storage, StoreError};
use crate::domain::{Period, PropertyId, PropertyKey, PropertyRent};

pub(super) fn load<S: Storage + ?Sized>(
    store: &S,
    period: Period,
    timezone: &TimeZone,
) -> Result<PeriodData, StoreError> {
    let mut data = PeriodData {
        expected: store.expected_rent(period)?,
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
    data.requests = store.requests_of_period(period, (start - margin, end + margin))?;
    load_named_properties(store, &mut data, (period.shifted(-3), period.shifted(3)))?;
    data.payouts = store.payouts_of_period(period, (start, end))?;
    for payout in &data.payouts {
        if let (None, Some(account)) = (&payout.payout.landlord_id, &payout.payout.destination)
            && !data.bank_accounts.contains_key(account)
            && let Some(landlord) = store.landlord_by_bank_account(account)?
        {
            data.bank_accounts.insert(account.clone(), landlord);
        }
    }
    Ok(data)
}

/// Adds the properties loaded requests name but the period's lines do not,
/// and the nearby due dates of every property an undated request names.
fn load_named_properties<S: Storage + ?Sized>(
    store: &S,
    data: &mut PeriodData,
    window: (Period, Period),
) -> Result<(), StoreError> {
    let mut looked_up: HashSet<PropertyKey<'_>> = HashSet::new();
    let mut widened: HashSet<PropertyId> = HashSet::new();
    let requests = std::mem::take(&mut data.requests);
    for request in &requests {
        let pr = &request.request;
        let keys = [
            pr.property_id.as_deref().map(PropertyKey::Id),
            pr.payment_agreement.as_deref().map(PropertyKey::Agreement),
        ];
        for key in keys.into_iter().flatten() {
            let known = match key {
                PropertyKey::Id(id) => data.properties.get(id).map(|p| p.property_id.clone()),
                PropertyKey::Agreement(a) => data.agreements.get(a).cloned(),
            };
            let property_id = match known {
                Some(id) => id,
                None => {
                    if !looked_up.insert(key) {
                        continue;
                    }
                    let Some(found) = property_rent(store, key, window)? else {
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
                property.due_dates = store.due_dates(&property_id, Some(window))?;
            }
        }
    }
    data.requests = requests;
    Ok(())
}

/// A property found by id or by payment agreement, with its due dates in `within`.
fn property_rent<S: Storage + ?Sized>(
    store: &S,
    key: PropertyKey<'_>,
    within: (Period, Period),
) -> Result<Option<PropertyRent>, StoreError> {
    let (by_id, by_agreement) = match key {
        PropertyKey::Id(id) => (Some(id), None),
        PropertyKey::Agreement(agreement) => (None, Some(agreement)),
    };
    let (found_by_id, found_by_agreement) = store.property_candidates(by_id, by_agreement)?;
    let Some(property) = found_by_id.or(found_by_agreement) else {
        return Ok(None);
    };
    Ok(Some(PropertyRent {
        due_dates: store.due_dates(&property.property_id, Some(within))?,
        ..property
    }))
}
