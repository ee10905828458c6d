//! Property tests of the reconciliation rules: for random rent rolls, request
//! histories and payouts, the amounts add up and every status agrees with them.
//!
//! Lines are generated with a collection plan (nothing, exact, split, partial,
//! overpaid, another currency, random), so every status occurs often; some
//! requests carry only the property's payment agreement, and landlords get
//! payouts, so matching by agreement, commission and payout groups are covered.

use std::collections::{BTreeMap, HashMap};

use casapay_recon::domain::{Currency, Money, PaymentRequestStatus, PayoutStatus, Period};
use casapay_recon::recon::rules::{self, DisbursementStatus, LineStatus, MatchedRequest};
use casapay_recon::recon::{ExpectedRow, PayoutRow, PeriodData, RequestRow, reconcile};
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

fn payout_status(index: u8) -> PayoutStatus {
    use PayoutStatus as S;
    [S::Pending, S::InTransit, S::Paid, S::Failed, S::Canceled][usize::from(index % 5)]
}

prop_compose! {
    fn expected_line(index: usize)(amount in 2_i64..2_000_000, eur in any::<bool>(), day in 1_i8..29, bps in 0_u32..2_000) -> ExpectedRow {
        ExpectedRow {
            property_id: format!("prop_{index}"),
            landlord_id: format!("ll_{}", index % 3),
            amount: Money::new(amount, currency(eur)).unwrap(),
            due_date: PERIOD.parse::<Period>().unwrap().day(day),
            commission_bps: bps,
            payment_agreement: (index % 2 == 0).then(|| format!("pa_{index}")),
            property_name: None,
        }
    }
}

/// How a line's rent is collected.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Nothing,
    Exact,
    Split,
    Partial,
    Overpaid,
    OtherCurrency,
    Random,
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        Just(Plan::Nothing),
        Just(Plan::Exact),
        Just(Plan::Split),
        Just(Plan::Partial),
        Just(Plan::Overpaid),
        Just(Plan::OtherCurrency),
        Just(Plan::Random),
    ]
}

fn succeeded(id: String, amount: i64, currency: Currency, created: i64) -> MatchedRequest {
    MatchedRequest {
        id,
        amount,
        currency,
        status: PaymentRequestStatus::Succeeded,
        next_retry_at: None,
        failure_reason: None,
        created,
        event_created: created,
    }
}

/// The requests a plan produces for `line`, identified by property or, when
/// `by_agreement` and the line has one, by agreement only.
fn planned_requests(
    line: &ExpectedRow,
    plan: Plan,
    by_agreement: bool,
    random: (u8, bool, i64),
) -> Vec<RequestRow> {
    let amount = line.amount.minor();
    let currency = line.amount.currency();
    let other = if currency.code() == "eur" {
        self::currency(false)
    } else {
        self::currency(true)
    };
    let id = |n: usize| format!("preq_{}_{n}", line.property_id);
    let requests = match plan {
        Plan::Nothing => vec![],
        Plan::Exact => vec![succeeded(id(0), amount, currency, 1)],
        Plan::Split => vec![
            succeeded(id(0), amount / 2, currency, 1),
            succeeded(id(1), amount - amount / 2, currency, 2),
        ],
        Plan::Partial => vec![succeeded(id(0), amount / 2, currency, 1)],
        Plan::Overpaid => vec![
            succeeded(id(0), amount, currency, 1),
            succeeded(id(1), 1, currency, 2),
        ],
        Plan::OtherCurrency => vec![succeeded(id(0), amount, other, 1)],
        Plan::Random => {
            let (state, retry, created) = random;
            let status = status(state);
            vec![MatchedRequest {
                status,
                next_retry_at: (retry && status == PaymentRequestStatus::Processing)
                    .then_some(1_000),
                ..succeeded(id(0), amount, currency, created)
            }]
        }
    };
    let agreement = line.payment_agreement.clone().filter(|_| by_agreement);
    requests
        .into_iter()
        .map(|request| RequestRow {
            request,
            property_id: agreement.is_none().then(|| line.property_id.clone()),
            payment_agreement: agreement.clone(),
            period: Some(PERIOD.to_string()),
        })
        .collect()
}

prop_compose! {
    /// A request that may match nothing: an unknown property or no period.
    fn stray_request()(n in 0_usize..1000, known in any::<bool>(), dated in any::<bool>(), state in any::<u8>(), amount in 1_i64..2_000_000) -> RequestRow {
        RequestRow {
            request: MatchedRequest { status: status(state), ..succeeded(format!("preq_stray_{n}"), amount, currency(true), 3) },
            property_id: Some(if known { "prop_0".to_string() } else { format!("prop_unknown_{n}") }),
            payment_agreement: None,
            period: dated.then(|| "2025-02".to_string()),
        }
    }
}

prop_compose! {
    fn payout(n: usize)(landlord in 0_usize..3, amount in 1_i64..2_000_000, eur in any::<bool>(), state in any::<u8>()) -> PayoutRow {
        PayoutRow {
            id: format!("po_{n}"),
            amount,
            currency: currency(eur),
            status: payout_status(state),
            landlord_id: format!("ll_{landlord}"),
        }
    }
}

fn period_data() -> impl Strategy<Value = PeriodData> {
    (1_usize..12)
        .prop_flat_map(|n| {
            let lines: Vec<_> = (0..n).map(expected_line).collect();
            let plans = prop::collection::vec(
                (
                    plan(),
                    any::<bool>(),
                    (any::<u8>(), any::<bool>(), 0_i64..50),
                ),
                n,
            );
            let strays = prop::collection::vec(stray_request(), 0..4);
            let payouts = (0_usize..6).prop_flat_map(|k| (0..k).map(payout).collect::<Vec<_>>());
            (lines, plans, strays, payouts)
        })
        .prop_map(|(expected, plans, strays, payouts)| {
            let mut requests: Vec<RequestRow> = expected
                .iter()
                .zip(plans)
                .flat_map(|(line, (plan, by_agreement, random))| {
                    planned_requests(line, plan, by_agreement, random)
                })
                .collect();
            requests.extend(strays);
            PeriodData {
                expected,
                requests,
                payouts,
            }
        })
}

/// The matching rule, written independently of the code under test.
fn matches(line: &ExpectedRow, request: &RequestRow, lines: &[ExpectedRow]) -> bool {
    if request.period.as_deref() != Some(PERIOD) {
        return false;
    }
    let known = |id: &str| lines.iter().any(|l| l.property_id == id);
    match request.property_id.as_deref() {
        Some(id) if known(id) => id == line.property_id,
        _ => {
            request.payment_agreement.is_some()
                && request.payment_agreement == line.payment_agreement
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn amounts_add_up_and_statuses_agree(data in period_data(), day in 1_i8..31) {
        let period: Period = PERIOD.parse().unwrap();
        let as_of = period.day(day);
        let input = data.clone();
        let r = reconcile(period, as_of, data, None);

        let mut totals: HashMap<String, (i64, i64, i64)> = HashMap::new();
        let mut groups: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for line in &r.lines {
            let row = input.expected.iter().find(|e| e.property_id == line.property_id).unwrap();
            let matched: Vec<&RequestRow> = input
                .requests
                .iter()
                .filter(|q| matches(row, q, &input.expected))
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
                LineStatus::CurrencyMismatch => prop_assert!(matched.iter().any(|q| q.request.status == PaymentRequestStatus::Succeeded && q.request.currency != line.currency)),
                LineStatus::Unpaid => prop_assert!(matched.is_empty() && as_of <= line.due_date),
                LineStatus::Overdue => prop_assert!(matched.is_empty() && as_of > line.due_date),
                _ => prop_assert!(collected < line.expected && !matched.is_empty()),
            }
            if collected == line.expected {
                prop_assert_eq!(line.status, LineStatus::Paid);
            }
            let t = totals.entry(line.currency.code()).or_default();
            *t = (t.0 + line.expected, t.1 + line.collected, t.2 + line.outstanding);
            let g = groups.entry((line.landlord_id.clone(), line.currency.code())).or_default();
            *g = (g.0 + collected, g.1 + rules::commission(collected, row.commission_bps));
        }
        // A currency only paid out (no expected line in it) still has a total.
        for payout in &r.payouts {
            totals.entry(payout.currency.code()).or_default();
        }
        prop_assert_eq!(r.totals.len(), totals.len());
        for total in &r.totals {
            let (expected, collected, outstanding) = totals[&total.currency.code()];
            prop_assert_eq!((total.expected, total.collected, total.outstanding), (expected, collected, outstanding));
        }

        for payout in &input.payouts {
            groups.entry((payout.landlord_id.clone(), payout.currency.code())).or_default();
        }
        prop_assert_eq!(r.payouts.len(), groups.len());
        for group in &r.payouts {
            let (collected, commission) = groups[&(group.landlord_id.clone(), group.currency.code())];
            let sum = |wanted: &[PayoutStatus]| -> i64 {
                input.payouts.iter()
                    .filter(|p| p.landlord_id == group.landlord_id && p.currency == group.currency && wanted.contains(&p.status))
                    .map(|p| p.amount)
                    .sum()
            };
            prop_assert_eq!(group.collected, collected);
            prop_assert_eq!(group.due, collected - commission);
            prop_assert!(group.due >= 0 && group.due <= group.collected);
            prop_assert_eq!(group.paid_out, sum(&[PayoutStatus::Paid]));
            prop_assert_eq!(group.in_transit, sum(&[PayoutStatus::Pending, PayoutStatus::InTransit]));
            prop_assert_eq!(group.failed, sum(&[PayoutStatus::Failed]));
            match group.status {
                DisbursementStatus::Disbursed => prop_assert_eq!(group.paid_out, group.due),
                DisbursementStatus::OverDisbursed => prop_assert!(group.paid_out > group.due),
                _ => prop_assert!(group.paid_out < group.due),
            }
        }
        let paid_out: i64 = r.payouts.iter().map(|p| p.paid_out).sum();
        prop_assert_eq!(r.totals.iter().map(|t| t.paid_out).sum::<i64>(), paid_out);

        let unmatched = input.requests
            .iter()
            .filter(|q| q.request.status == PaymentRequestStatus::Succeeded)
            .filter(|q| !input.expected.iter().any(|line| matches(line, q, &input.expected)))
            .count();
        prop_assert_eq!(r.unmatched.len(), unmatched);
    }

    /// Every plan reaches the status it is built for.
    #[test]
    fn each_collection_plan_reaches_its_status(line in expected_line(0), by_agreement in any::<bool>(), day in 1_i8..31) {
        let period: Period = PERIOD.parse().unwrap();
        for (plan, status) in [
            (Plan::Exact, LineStatus::Paid),
            (Plan::Split, LineStatus::Paid),
            (Plan::Partial, LineStatus::Partial),
            (Plan::Overpaid, LineStatus::Overpaid),
            (Plan::OtherCurrency, LineStatus::CurrencyMismatch),
        ] {
            let requests = planned_requests(&line, plan, by_agreement, (0, false, 0));
            let data = PeriodData { expected: vec![line.clone()], requests, payouts: vec![] };
            let r = reconcile(period, period.day(day), data, None);
            prop_assert_eq!(r.lines[0].status, status, "{:?}", plan);
        }
    }
}
