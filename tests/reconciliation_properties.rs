//! Property tests of the reconciliation rules: for random rent rolls, request
//! histories and payouts, the amounts add up and every status agrees with them.
//!
//! Each case is written to a real (in-memory) SQLite database and reconciled
//! as the service does it: the store's ordered reads, then the rules.
//!
//! Lines are generated with a collection plan (nothing, exact, split, partial,
//! overpaid, another currency, random), so every status occurs often; some
//! requests carry only the property's payment agreement, and landlords get
//! payouts, so matching by agreement, commission and payout groups are covered.

use std::collections::{BTreeMap, HashMap, HashSet};

use casapay_recon::domain::{
    Currency, DisbursementStatus, ExpectedRent, LandlordId, LineStatus, Money, Object,
    PaymentRequest, PaymentRequestStatus, Payout, PayoutStatus, Period, PropertyId,
    RETRYING_EVENT_TYPE, StoredPayout, StoredRequest, Version,
};
use casapay_recon::recon::{Reconciliation, reconcile_stored, rules};
use casapay_recon::rent_roll::{ExpectedLine, Landlord, Property, RentRoll};
use casapay_recon::store::{SetBy, Storage, migrate};
use jiff::tz::TimeZone;
use proptest::prelude::*;

const PERIOD: &str = "2025-03";
/// 2025-03-01T00:00:00Z: requests are created in the period's month.
const MARCH: i64 = 1_740_787_200;

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
    fn expected_line(index: usize)(amount in 2_i64..2_000_000, eur in any::<bool>(), day in 1_i8..29, bps in 0_u32..2_000) -> ExpectedRent {
        ExpectedRent {
            property_id: PropertyId::parse(format!("prop_{index}")).unwrap(),
            landlord_id: LandlordId::parse(format!("ll_{}", index % 3)).unwrap(),
            period: PERIOD.parse().unwrap(),
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

fn request(
    id: String,
    amount: i64,
    currency: Currency,
    status: PaymentRequestStatus,
    created: i64,
) -> StoredRequest {
    StoredRequest {
        request: PaymentRequest {
            id,
            payment_agreement: None,
            amount: Money::new(amount, currency).unwrap(),
            status,
            failure_reason: None,
            attempts: None,
            next_retry_at: None,
            payment_method_used: None,
            property_id: None,
            period: Some(PERIOD.to_string()),
            description: None,
            created: MARCH + created,
        },
        version: Version {
            created: MARCH + created,
            rank: status.rank(),
        },
        set_by_retrying_event: false,
    }
}

fn succeeded(id: String, amount: i64, currency: Currency, created: i64) -> StoredRequest {
    request(
        id,
        amount,
        currency,
        PaymentRequestStatus::Succeeded,
        created,
    )
}

/// The requests a plan produces for `line`, identified by property or, when
/// `by_agreement` and the line has one, by agreement only.
fn planned_requests(
    line: &ExpectedRent,
    plan: Plan,
    by_agreement: bool,
    random: (u8, bool, i64),
) -> Vec<StoredRequest> {
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
            let mut random = request(id(0), amount, currency, status, created);
            random.set_by_retrying_event = retry;
            vec![random]
        }
    };
    let agreement = line.payment_agreement.clone().filter(|_| by_agreement);
    requests
        .into_iter()
        .map(|mut stored| {
            stored.request.property_id = agreement.is_none().then(|| line.property_id.clone());
            stored.request.payment_agreement = agreement.clone();
            stored
        })
        .collect()
}

prop_compose! {
    /// A request that may match nothing: an unknown property, another period,
    /// or no period at all (bulk-created), found by its creation date.
    fn stray_request()(n in 0_usize..1000, known in any::<bool>(), dating in 0_u8..3, state in any::<u8>(), amount in 1_i64..2_000_000, day in 0_i64..28) -> StoredRequest {
        let mut stray = request(format!("preq_stray_{n}"), amount, currency(true), status(state), day * 86_400);
        stray.request.property_id = Some(PropertyId::parse(if known { "prop_0".to_string() } else { format!("prop_unknown_{n}") }).unwrap());
        stray.request.period = match dating {
            0 => Some("2025-02".to_string()),
            1 => Some(PERIOD.to_string()),
            _ => None,
        };
        stray
    }
}

/// How a payout names its landlord and period.
#[derive(Debug, Clone, Copy)]
enum PayoutShape {
    Complete,
    NoPeriod,
    ByBankAccount,
    Unknown,
}

prop_compose! {
    fn payout(n: usize)(landlord in 0_usize..3, amount in 1_i64..2_000_000, eur in any::<bool>(), state in any::<u8>(), shape in 0_u8..4) -> StoredPayout {
        let shape = [PayoutShape::Complete, PayoutShape::NoPeriod, PayoutShape::ByBankAccount, PayoutShape::Unknown][usize::from(shape)];
        let status = payout_status(state);
        StoredPayout {
            payout: Payout {
                id: format!("po_{n}"),
                amount: Money::new(amount, currency(eur)).unwrap(),
                status,
                destination: match shape {
                    PayoutShape::ByBankAccount => Some(format!("ba_{landlord}")),
                    PayoutShape::Unknown => Some("ba_nobody".to_string()),
                    _ => None,
                },
                arrival_date: None,
                failure_reason: None,
                failure_code: None,
                failure_message: None,
                landlord_id: matches!(shape, PayoutShape::Complete | PayoutShape::NoPeriod).then(|| LandlordId::parse(format!("ll_{landlord}")).unwrap()),
                period: (!matches!(shape, PayoutShape::NoPeriod)).then(|| PERIOD.to_string()),
                description: None,
                created: MARCH + 86_400,
            },
            version: Version { created: MARCH + 86_400, rank: status.rank() },
        }
    }
}

/// The landlord a payout belongs to, by the rule written out again here.
fn payout_landlord(payout: &Payout) -> Option<String> {
    payout
        .landlord_id
        .as_deref()
        .map(str::to_string)
        .or_else(|| {
            payout
                .destination
                .as_deref()
                .and_then(|d| d.strip_prefix("ba_"))
                .filter(|n| *n != "nobody")
                .map(|n| format!("ll_{n}"))
        })
}

/// One generated case: the period's lines, requests and payouts. Landlord
/// `ll_n` has bank account `ba_n`.
#[derive(Debug, Clone)]
struct Books {
    expected: Vec<ExpectedRent>,
    requests: Vec<StoredRequest>,
    payouts: Vec<StoredPayout>,
}

fn books() -> impl Strategy<Value = Books> {
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
            let mut requests: Vec<StoredRequest> = expected
                .iter()
                .zip(plans)
                .flat_map(|(line, (plan, by_agreement, random))| {
                    planned_requests(line, plan, by_agreement, random)
                })
                .collect();
            // A database keeps one state per request id.
            let mut ids = HashSet::new();
            requests.extend(
                strays
                    .into_iter()
                    .filter(|s| ids.insert(s.request.id.clone())),
            );
            Books {
                expected,
                requests,
                payouts,
            }
        })
}

/// `books` in a new database, through the storage boundary.
fn stored(books: &Books) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    let roll = RentRoll {
        landlords: (0..3)
            .map(|n| Landlord {
                id: LandlordId::parse(format!("ll_{n}")).unwrap(),
                name: None,
                email: None,
                notify: None,
                bank_account: Some(format!("ba_{n}")),
                line: n + 2,
            })
            .collect(),
        properties: books
            .expected
            .iter()
            .map(|line| Property {
                id: line.property_id.clone(),
                landlord_id: line.landlord_id.clone(),
                name: None,
                payment_agreement: line.payment_agreement.clone(),
                line: 2,
            })
            .collect(),
        lines: books
            .expected
            .iter()
            .map(|line| ExpectedLine {
                property_id: line.property_id.clone(),
                landlord_id: line.landlord_id.clone(),
                period: line.period,
                amount: line.amount,
                due_date: line.due_date,
                commission_bps: line.commission_bps,
                line: 2,
            })
            .collect(),
    };
    conn.import_rent_roll(&roll).unwrap().unwrap();
    for stored in &books.requests {
        let set_by = SetBy {
            event_id: "evt_test",
            event_type: if stored.set_by_retrying_event {
                RETRYING_EVENT_TYPE
            } else {
                "payment_request.updated"
            },
            version: stored.version,
        };
        conn.save_object(&Object::PaymentRequest(stored.request.clone()), set_by)
            .unwrap();
    }
    for stored in &books.payouts {
        let set_by = SetBy {
            event_id: "evt_test",
            event_type: "payout.updated",
            version: stored.version,
        };
        conn.save_object(&Object::Payout(stored.payout.clone()), set_by)
            .unwrap();
    }
    conn
}

fn reconciled(books: &Books, as_of: jiff::civil::Date) -> Reconciliation {
    let period: Period = PERIOD.parse().unwrap();
    reconcile_stored(&stored(books), period, as_of, &TimeZone::UTC, None).unwrap()
}

/// The matching rule, written independently of the code under test. Every
/// request here is created in March, within 45 days of every March due date,
/// so an undated request with a known property matches its March line.
fn matches(line: &ExpectedRent, stored: &StoredRequest, lines: &[ExpectedRent]) -> bool {
    let request = &stored.request;
    if request.period.as_deref().is_some_and(|p| p != PERIOD) {
        return false;
    }
    let known = |id: &str| lines.iter().any(|l| l.property_id == id);
    match request.property_id.as_deref() {
        Some(id) if known(id) => line.property_id == id,
        _ => {
            request.payment_agreement.is_some()
                && request.payment_agreement == line.payment_agreement
        }
    }
}

fn is_succeeded(stored: &StoredRequest) -> bool {
    stored.request.status == PaymentRequestStatus::Succeeded
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn amounts_add_up_and_statuses_agree(input in books(), day in 1_i8..31) {
        let period: Period = PERIOD.parse().unwrap();
        let as_of = period.day(day);
        let r = reconciled(&input, as_of);
        let mut order: Vec<_> = r.lines.iter().map(|l| (l.landlord_id.clone(), l.property_id.clone())).collect();
        order.sort();
        prop_assert_eq!(order, r.lines.iter().map(|l| (l.landlord_id.clone(), l.property_id.clone())).collect::<Vec<_>>());
        prop_assert_eq!(r.lines.len(), input.expected.len());

        let mut totals: HashMap<String, (i64, i64, i64)> = HashMap::new();
        let mut groups: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for line in &r.lines {
            let row = input.expected.iter().find(|e| e.property_id == line.property_id).unwrap();
            let matched: Vec<&StoredRequest> = input
                .requests
                .iter()
                .filter(|q| matches(row, q, &input.expected))
                .collect();
            let collected: i64 = matched
                .iter()
                .filter(|q| is_succeeded(q) && q.request.amount.currency() == line.currency)
                .map(|q| q.request.amount.minor())
                .sum();
            prop_assert_eq!(line.collected, collected);
            prop_assert_eq!(line.outstanding, (line.expected - collected).max(0));
            prop_assert_eq!(line.payment_requests.len(), matched.len());
            match line.status {
                LineStatus::Paid => prop_assert_eq!(collected, line.expected),
                LineStatus::Overpaid => prop_assert!(collected > line.expected),
                LineStatus::Partial => prop_assert!(collected > 0 && collected < line.expected),
                LineStatus::CurrencyMismatch => prop_assert!(matched.iter().any(|q| is_succeeded(q) && q.request.amount.currency() != line.currency)),
                LineStatus::Unpaid => prop_assert!(matched.is_empty() && as_of <= line.due_date),
                LineStatus::Overdue => prop_assert!(matched.is_empty() && as_of > line.due_date),
                _ => prop_assert!(collected < line.expected && !matched.is_empty()),
            }
            if collected == line.expected {
                prop_assert_eq!(line.status, LineStatus::Paid);
            }
            let t = totals.entry(line.currency.code()).or_default();
            *t = (t.0 + line.expected, t.1 + line.collected, t.2 + line.outstanding);
            let g = groups.entry((line.landlord_id.to_string(), line.currency.code())).or_default();
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

        let grouped: Vec<(String, &Payout)> = input
            .payouts
            .iter()
            .filter(|p| p.payout.period.is_some())
            .filter_map(|p| Some((payout_landlord(&p.payout)?, &p.payout)))
            .collect();
        for (landlord, payout) in &grouped {
            groups.entry((landlord.clone(), payout.amount.currency().code())).or_default();
        }
        prop_assert_eq!(r.payouts.len(), groups.len());
        for group in &r.payouts {
            let (collected, commission) = groups[&(group.landlord_id.to_string(), group.currency.code())];
            let sum = |wanted: &[PayoutStatus]| -> i64 {
                grouped.iter()
                    .filter(|(landlord, p)| group.landlord_id == *landlord && p.amount.currency() == group.currency && wanted.contains(&p.status))
                    .map(|(_, p)| p.amount.minor())
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

        let listed_here = |q: &&StoredRequest| q.request.period.as_deref().is_none_or(|p| p == PERIOD);
        let unmatched = input.requests
            .iter()
            .filter(listed_here)
            .filter(|q| !input.expected.iter().any(|line| matches(line, q, &input.expected)))
            .count();
        prop_assert_eq!(r.unmatched.len(), unmatched);
        let unallocated = input.payouts.iter().filter(|p| p.payout.period.is_none() && payout_landlord(&p.payout).is_some()).count();
        prop_assert_eq!(r.unallocated_payouts.len(), unallocated);
        let no_landlord = input.payouts.iter().filter(|p| payout_landlord(&p.payout).is_none()).count();
        prop_assert_eq!(r.unmatched_payouts.len(), no_landlord);
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
            let books = Books {
                requests: planned_requests(&line, plan, by_agreement, (0, false, 0)),
                expected: vec![line.clone()],
                payouts: Vec::new(),
            };
            let r = reconciled(&books, period.day(day));
            prop_assert_eq!(r.lines[0].status, status, "{:?}", plan);
        }
    }
}
