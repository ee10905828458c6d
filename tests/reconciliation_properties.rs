//! Property tests of the reconciliation rules: for random rent rolls and
//! request histories, the amounts add up and the status agrees with them.

use std::collections::HashMap;

use casapay_recon::domain::{Currency, Money, PaymentRequestStatus, Period};
use casapay_recon::recon::rules::{LineStatus, MatchedRequest};
use casapay_recon::recon::{ExpectedRow, PeriodData, RequestRow, reconcile};
use proptest::prelude::*;

const PERIOD: &str = "2025-03";

fn currency(eur: bool) -> Currency {
    Currency::parse(if eur { "eur" } else { "gbp" }).unwrap()
}

fn status(index: u8) -> PaymentRequestStatus {
    use PaymentRequestStatus as S;
    [
        S::Pending,
        S::Processing,
        S::Succeeded,
        S::Failed,
        S::Cancelled,
    ][usize::from(index % 5)]
}

prop_compose! {
    fn expected_line(index: usize)(amount in 1_i64..2_000_000, eur in any::<bool>(), day in 1_i8..29, bps in 0_u32..2_000) -> ExpectedRow {
        ExpectedRow {
            property_id: format!("prop_{index}"),
            landlord_id: format!("ll_{}", index % 3),
            amount: Money::new(amount, currency(eur)).unwrap(),
            due_date: PERIOD.parse::<Period>().unwrap().day(day),
            commission_bps: bps,
            payment_agreement: None,
            property_name: None,
        }
    }
}

prop_compose! {
    fn request(properties: usize)(
        n in 0_usize..1000, property in 0..properties + 2, amount in 1_i64..2_000_000, eur in prop::bool::weighted(0.8),
        state in any::<u8>(), retry in any::<bool>(), created in 0_i64..50, dated in prop::bool::weighted(0.9),
    ) -> RequestRow {
        let status = status(state);
        RequestRow {
            request: MatchedRequest {
                id: format!("preq_{n}_{property}_{created}"),
                amount,
                currency: currency(eur),
                status,
                next_retry_at: (retry && status == PaymentRequestStatus::Processing).then_some(1_000),
                failure_reason: None,
                created,
                event_created: created,
            },
            payment_agreement: None,
            property_id: Some(format!("prop_{property}")),
            period: dated.then(|| PERIOD.to_string()),
        }
    }
}

fn period_data() -> impl Strategy<Value = PeriodData> {
    (1_usize..12)
        .prop_flat_map(|n| {
            let lines: Vec<_> = (0..n).map(expected_line).collect();
            (lines, prop::collection::vec(request(n), 0..40))
        })
        .prop_map(|(expected, requests)| PeriodData {
            expected,
            requests,
            payouts: Vec::new(),
        })
}

proptest! {
    #[test]
    fn amounts_add_up_and_statuses_agree(data in period_data(), day in 1_i8..31) {
        let period: Period = PERIOD.parse().unwrap();
        let as_of = period.day(day);
        let requests = data.requests.clone();
        let r = reconcile(period, as_of, data, None);

        let mut totals: HashMap<String, (i64, i64, i64)> = HashMap::new();
        for line in &r.lines {
            let matched: Vec<&RequestRow> = requests
                .iter()
                .filter(|q| q.period.as_deref() == Some(PERIOD) && q.property_id.as_deref() == Some(line.property_id.as_str()))
                .collect();
            let collected: i64 = matched
                .iter()
                .filter(|q| q.request.status == PaymentRequestStatus::Succeeded && q.request.currency == line.currency)
                .map(|q| q.request.amount)
                .sum();
            prop_assert_eq!(line.collected, collected);
            prop_assert_eq!(line.outstanding, (line.expected - collected).max(0));
            prop_assert_eq!(line.payment_requests.len(), matched.len());
            match line.status {
                LineStatus::Paid => prop_assert_eq!(collected, line.expected),
                LineStatus::Overpaid => prop_assert!(collected > line.expected),
                LineStatus::Partial => prop_assert!(collected > 0 && collected < line.expected),
                LineStatus::Unpaid | LineStatus::Overdue => prop_assert!(matched.is_empty()),
                _ => prop_assert!(collected < line.expected),
            }
            if collected == line.expected {
                prop_assert_eq!(line.status, LineStatus::Paid);
            }
            let t = totals.entry(line.currency.code()).or_default();
            *t = (t.0 + line.expected, t.1 + line.collected, t.2 + line.outstanding);
        }
        prop_assert_eq!(r.totals.len(), totals.len());
        for total in &r.totals {
            let (expected, collected, outstanding) = totals[&total.currency.code()];
            prop_assert_eq!((total.expected, total.collected, total.outstanding), (expected, collected, outstanding));
        }
        let unmatched = requests
            .iter()
            .filter(|q| q.request.status == PaymentRequestStatus::Succeeded)
            .filter(|q| q.period.is_none() || !r.lines.iter().any(|l| Some(l.property_id.as_str()) == q.property_id.as_deref()))
            .count();
        prop_assert_eq!(r.unmatched.len(), unmatched);
    }
}
