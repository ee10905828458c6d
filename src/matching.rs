//! The one matching rule (SPEC §5), used by reconciliation, mail and the
//! report alike, so a mail never names a property or period reconciliation
//! does not show. Pure: the caller looks properties up.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::domain::{LandlordId, PaymentRequest, Payout, Period, PropertyKey, PropertyRent};

/// How far from a request's creation a due date may be and still match it.
pub const PERIOD_WINDOW_DAYS: i64 = 45;

/// The property a request is for: `metadata.property_id` if the rent roll has
/// it; failing that, the property whose payment agreement is the request's.
pub fn property_of<P>(
    request: &PaymentRequest,
    mut find: impl FnMut(PropertyKey<'_>) -> Option<P>,
) -> Option<P> {
    request
        .property_id
        .as_deref()
        .and_then(|id| find(PropertyKey::Id(id)))
        .or_else(|| {
            request
                .payment_agreement
                .as_deref()
                .and_then(|agreement| find(PropertyKey::Agreement(agreement)))
        })
}

/// The period a request is for: `metadata.period` if present (a malformed one
/// matches nothing); failing that, the period of the property's line whose due
/// date is nearest to the request's `created` (in `timezone`), within 45 days,
/// the earlier line on a tie.
pub fn period_of(
    request: &PaymentRequest,
    due_dates: &[(Period, Date)],
    timezone: &TimeZone,
) -> Option<Period> {
    if let Some(text) = &request.period {
        return text.parse().ok();
    }
    let created = jiff::Timestamp::from_second(request.created)
        .ok()?
        .to_zoned(timezone.clone())
        .date();
    due_dates
        .iter()
        .filter_map(|&(period, due)| {
            let days = days_between(created, due)?;
            (days <= PERIOD_WINDOW_DAYS).then_some((days, due, period))
        })
        .min()
        .map(|(_, _, period)| period)
}

fn days_between(a: Date, b: Date) -> Option<i64> {
    let span = a.until(b).ok()?;
    Some(i64::from(span.get_days()).abs())
}

/// A request's expected line: its property and period, or `None` (unmatched).
pub fn match_request<P: std::borrow::Borrow<PropertyRent>>(
    request: &PaymentRequest,
    find: impl FnMut(PropertyKey<'_>) -> Option<P>,
    timezone: &TimeZone,
) -> Option<(P, Period)> {
    let property = property_of(request, find)?;
    let period = period_of(request, &property.borrow().due_dates, timezone)?;
    Some((property, period))
}

/// A payout's landlord: `metadata.landlord_id`, failing that the landlord
/// whose bank account is the payout's destination.
pub fn landlord_of(
    payout: &Payout,
    by_bank_account: impl FnOnce(&str) -> Option<LandlordId>,
) -> Option<LandlordId> {
    payout
        .landlord_id
        .clone()
        .or_else(|| payout.destination.as_deref().and_then(by_bank_account))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::{Currency, Money, PaymentRequestStatus, PayoutStatus, PropertyId};

    fn request(
        property: Option<&str>,
        agreement: Option<&str>,
        period: Option<&str>,
        created: &str,
    ) -> PaymentRequest {
        PaymentRequest {
            id: "preq_1".into(),
            payment_agreement: agreement.map(str::to_string),
            amount: Money::new(1000, Currency::parse("eur").unwrap()).unwrap(),
            status: PaymentRequestStatus::Succeeded,
            failure_reason: None,
            attempts: None,
            next_retry_at: None,
            payment_method_used: None,
            property_id: property.map(|p| PropertyId::parse(p).unwrap()),
            period: period.map(str::to_string),
            description: None,
            created: created.parse::<jiff::Timestamp>().unwrap().as_second(),
        }
    }

    fn property(id: &str, due: &[&str]) -> PropertyRent {
        PropertyRent {
            property_id: PropertyId::parse(id).unwrap(),
            landlord_id: LandlordId::parse("ll_1").unwrap(),
            property_name: None,
            due_dates: due
                .iter()
                .map(|d| {
                    let date: Date = d.parse().unwrap();
                    (Period::of_date(date), date)
                })
                .collect(),
        }
    }

    fn roll() -> (
        HashMap<&'static str, PropertyRent>,
        HashMap<&'static str, &'static str>,
    ) {
        let properties = HashMap::from([
            (
                "prop_1",
                property("prop_1", &["2025-02-01", "2025-03-01", "2025-04-01"]),
            ),
            ("prop_2", property("prop_2", &["2025-03-15"])),
        ]);
        (properties, HashMap::from([("pa_2", "prop_2")]))
    }

    fn matched(request: &PaymentRequest) -> Option<(String, String)> {
        let (properties, agreements) = roll();
        match_request(
            request,
            |key| match key {
                PropertyKey::Id(id) => properties.get(id).cloned(),
                PropertyKey::Agreement(a) => {
                    agreements.get(a).and_then(|id| properties.get(id)).cloned()
                }
            },
            &TimeZone::UTC,
        )
        .map(|(p, period)| (p.property_id.to_string(), period.to_string()))
    }

    fn pair(property: &str, period: &str) -> Option<(String, String)> {
        Some((property.into(), period.into()))
    }

    #[test]
    fn metadata_first_then_the_agreement() {
        let t = "2025-03-02T00:00:00Z";
        assert_eq!(
            matched(&request(Some("prop_1"), Some("pa_2"), Some("2025-03"), t)),
            pair("prop_1", "2025-03")
        );
        assert_eq!(
            matched(&request(
                Some("prop_unknown"),
                Some("pa_2"),
                Some("2025-03"),
                t
            )),
            pair("prop_2", "2025-03")
        );
        assert_eq!(
            matched(&request(None, Some("pa_2"), Some("2025-03"), t)),
            pair("prop_2", "2025-03")
        );
        assert_eq!(
            matched(&request(None, Some("pa_unknown"), Some("2025-03"), t)),
            None
        );
        assert_eq!(
            matched(&request(Some("prop_1"), None, Some("2025-3"), t)),
            None,
            "a malformed period matches nothing"
        );
    }

    #[test]
    fn without_a_period_the_nearest_due_date_within_45_days() {
        assert_eq!(
            matched(&request(Some("prop_1"), None, None, "2025-03-10T12:00:00Z")),
            pair("prop_1", "2025-03")
        );
        assert_eq!(
            matched(&request(Some("prop_1"), None, None, "2025-02-20T00:00:00Z")),
            pair("prop_1", "2025-03")
        );
        // 2025-02-15 is 14 days after Feb 1st and 14 days before Mar 1st: the earlier line.
        assert_eq!(
            matched(&request(Some("prop_1"), None, None, "2025-02-15T00:00:00Z")),
            pair("prop_1", "2025-02")
        );
        assert_eq!(
            matched(&request(None, Some("pa_2"), None, "2025-04-29T00:00:00Z")),
            pair("prop_2", "2025-03"),
            "45 days after"
        );
        assert_eq!(
            matched(&request(None, Some("pa_2"), None, "2025-04-30T00:00:00Z")),
            None,
            "46 days after"
        );
        assert_eq!(
            matched(&request(Some("prop_1"), None, None, "2025-07-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn a_payouts_landlord_by_metadata_then_bank_account() {
        let mut payout = Payout {
            id: "po_1".into(),
            amount: Money::new(1000, Currency::parse("eur").unwrap()).unwrap(),
            status: PayoutStatus::Paid,
            destination: Some("ba_1".into()),
            arrival_date: None,
            failure_reason: None,
            failure_code: None,
            failure_message: None,
            landlord_id: Some(LandlordId::parse("ll_meta").unwrap()),
            period: None,
            description: None,
            created: 0,
        };
        let accounts = |ba: &str| (ba == "ba_1").then(|| LandlordId::parse("ll_bank").unwrap());
        assert_eq!(landlord_of(&payout, accounts).as_deref(), Some("ll_meta"));
        payout.landlord_id = None;
        assert_eq!(landlord_of(&payout, accounts).as_deref(), Some("ll_bank"));
        payout.destination = Some("ba_2".into());
        assert_eq!(landlord_of(&payout, accounts), None);
    }
}
