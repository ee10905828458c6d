//! Reconciliation (SPEC §5): expected rent against what CasaPay collected and paid out.
//!
//! The store loads one period in three queries; everything here is pure.

pub mod render;
pub mod rules;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::Connection;
use serde::Serialize;

use crate::domain::{Currency, Money, PaymentRequestStatus, PayoutStatus, Period};
use crate::store::{self, StoreError};
use rules::{DisbursementStatus, LineStatus, MatchedRequest};

/// An expected line as stored, with its property's details.
#[derive(Debug, Clone)]
pub struct ExpectedRow {
    pub property_id: String,
    pub landlord_id: String,
    pub amount: Money,
    pub due_date: Date,
    pub commission_bps: u32,
    pub payment_agreement: Option<String>,
    pub property_name: Option<String>,
}

/// A PaymentRequest that may belong to the period.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request: MatchedRequest,
    pub payment_agreement: Option<String>,
    pub property_id: Option<String>,
    pub period: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PayoutRow {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    pub status: PayoutStatus,
    pub landlord_id: String,
}

/// Everything one period's reconciliation reads.
#[derive(Debug, Clone, Default)]
pub struct PeriodData {
    pub expected: Vec<ExpectedRow>,
    pub requests: Vec<RequestRow>,
    pub payouts: Vec<PayoutRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub property_id: String,
    pub landlord_id: String,
    pub period: String,
    pub currency: Currency,
    pub expected: i64,
    pub collected: i64,
    pub outstanding: i64,
    pub status: LineStatus,
    pub payment_requests: Vec<String>,
    pub next_retry_at: Option<i64>,
    pub failure_reason: Option<String>,
    #[serde(skip)]
    pub property_name: Option<String>,
    #[serde(skip)]
    pub due_date: Date,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unmatched {
    pub payment_request: String,
    pub amount: i64,
    pub currency: Currency,
    pub property_id: Option<String>,
    pub period: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayoutLine {
    pub landlord_id: String,
    pub period: String,
    pub currency: Currency,
    pub collected: i64,
    pub due: i64,
    pub paid_out: i64,
    pub in_transit: i64,
    pub failed: i64,
    pub status: DisbursementStatus,
    pub payouts: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Total {
    pub currency: Currency,
    pub expected: i64,
    pub collected: i64,
    pub outstanding: i64,
    pub paid_out: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reconciliation {
    pub object: &'static str,
    pub period: String,
    pub as_of: String,
    pub lines: Vec<Line>,
    pub unmatched: Vec<Unmatched>,
    pub payouts: Vec<PayoutLine>,
    pub totals: Vec<Total>,
}

impl Reconciliation {
    pub fn has_exceptions(&self) -> bool {
        !self.unmatched.is_empty()
            || self.lines.iter().any(|l| l.status.is_exception())
            || self
                .payouts
                .iter()
                .any(|p| p.status == DisbursementStatus::PayoutFailed)
    }
}

#[derive(Default)]
struct PayoutSums {
    collected: i64,
    commission: i64,
    paid_out: i64,
    in_transit: i64,
    failed: i64,
    payouts: Vec<String>,
}

/// Reconciles a stored period as of a date. Requests without `metadata.period`
/// count for the month they were created in, in `timezone`.
pub fn reconcile_stored(
    conn: &Connection,
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    landlord: Option<&str>,
) -> Result<Reconciliation, StoreError> {
    let start = |p: Period| {
        p.day(1)
            .to_zoned(timezone.clone())
            .map_or(i64::MIN, |z| z.timestamp().as_second())
    };
    let data = store::load_period(conn, period, start(period), start(period.next()))?;
    Ok(reconcile(period, as_of, data, landlord))
}

/// Matches, assesses and totals one period. With `landlord`, only that
/// landlord's lines and payouts are kept (unmatched payments have no landlord).
pub fn reconcile(
    period: Period,
    as_of: Date,
    data: PeriodData,
    landlord: Option<&str>,
) -> Reconciliation {
    let period_text = period.to_string();
    let by_property: HashMap<&str, usize> = data
        .expected
        .iter()
        .enumerate()
        .map(|(i, line)| (line.property_id.as_str(), i))
        .collect();
    let by_agreement: HashMap<&str, usize> = data
        .expected
        .iter()
        .enumerate()
        .filter_map(|(i, line)| line.payment_agreement.as_deref().map(|a| (a, i)))
        .collect();

    let mut matched: Vec<Vec<MatchedRequest>> = vec![Vec::new(); data.expected.len()];
    let mut unmatched = Vec::new();
    for row in data.requests {
        let line = (row.period.as_deref() == Some(period_text.as_str()))
            .then(|| {
                row.property_id
                    .as_deref()
                    .and_then(|p| by_property.get(p))
                    .or_else(|| {
                        row.payment_agreement
                            .as_deref()
                            .and_then(|a| by_agreement.get(a))
                    })
            })
            .flatten();
        match line {
            Some(&i) => matched[i].push(row.request),
            None if row.request.status == PaymentRequestStatus::Succeeded => {
                unmatched.push(Unmatched {
                    payment_request: row.request.id,
                    amount: row.request.amount,
                    currency: row.request.currency,
                    property_id: row.property_id,
                    period: row.period,
                })
            }
            None => {}
        }
    }

    let mut sums: BTreeMap<(String, Currency), PayoutSums> = BTreeMap::new();
    let mut lines = Vec::with_capacity(data.expected.len());
    for (expected, mut requests) in data.expected.into_iter().zip(matched) {
        let currency = expected.amount.currency();
        let assessment = rules::assess_line(
            expected.amount.minor(),
            currency,
            expected.due_date,
            as_of,
            &requests,
        );
        let group = sums
            .entry((expected.landlord_id.clone(), currency))
            .or_default();
        group.collected = group.collected.saturating_add(assessment.collected);
        group.commission = group.commission.saturating_add(rules::commission(
            assessment.collected,
            expected.commission_bps,
        ));
        requests.sort_by_key(|r| (r.created, r.event_created));
        lines.push(Line {
            property_id: expected.property_id,
            landlord_id: expected.landlord_id,
            period: period_text.clone(),
            currency,
            expected: expected.amount.minor(),
            collected: assessment.collected,
            outstanding: assessment.outstanding,
            status: assessment.status,
            payment_requests: requests.into_iter().map(|r| r.id).collect(),
            next_retry_at: assessment.next_retry_at,
            failure_reason: assessment.failure_reason,
            property_name: expected.property_name,
            due_date: expected.due_date,
        });
    }
    for payout in data.payouts {
        let group = sums
            .entry((payout.landlord_id, payout.currency))
            .or_default();
        let bucket = match payout.status {
            PayoutStatus::Paid => Some(&mut group.paid_out),
            PayoutStatus::Pending | PayoutStatus::InTransit => Some(&mut group.in_transit),
            PayoutStatus::Failed => Some(&mut group.failed),
            PayoutStatus::Canceled => None, // listed, but moves no money
        };
        if let Some(bucket) = bucket {
            *bucket = bucket.saturating_add(payout.amount);
        }
        group.payouts.push(payout.id);
    }

    let keep = |id: &str| landlord.is_none_or(|wanted| wanted == id);
    lines.retain(|line| keep(&line.landlord_id));
    lines.sort_by(|a, b| (&a.landlord_id, &a.property_id).cmp(&(&b.landlord_id, &b.property_id)));
    if landlord.is_some() {
        unmatched.clear();
    }
    unmatched.sort_by(|a, b| a.payment_request.cmp(&b.payment_request));
    let payouts: Vec<PayoutLine> = sums
        .into_iter()
        .filter(|((landlord_id, _), _)| keep(landlord_id))
        .map(|((landlord_id, currency), mut sums)| {
            let due = sums.collected.saturating_sub(sums.commission);
            sums.payouts.sort();
            PayoutLine {
                landlord_id,
                period: period_text.clone(),
                currency,
                collected: sums.collected,
                due,
                paid_out: sums.paid_out,
                in_transit: sums.in_transit,
                failed: sums.failed,
                status: rules::disbursement_status(
                    due,
                    sums.paid_out,
                    sums.in_transit,
                    sums.failed,
                ),
                payouts: sums.payouts,
            }
        })
        .collect();
    let totals = totals(&lines, &payouts);
    Reconciliation {
        object: "reconciliation",
        period: period_text,
        as_of: as_of.to_string(),
        lines,
        unmatched,
        payouts,
        totals,
    }
}

fn totals(lines: &[Line], payouts: &[PayoutLine]) -> Vec<Total> {
    fn total(totals: &mut BTreeMap<Currency, Total>, currency: Currency) -> &mut Total {
        totals.entry(currency).or_insert(Total {
            currency,
            expected: 0,
            collected: 0,
            outstanding: 0,
            paid_out: 0,
        })
    }
    let mut by_currency = BTreeMap::new();
    for line in lines {
        let t = total(&mut by_currency, line.currency);
        t.expected = t.expected.saturating_add(line.expected);
        t.collected = t.collected.saturating_add(line.collected);
        t.outstanding = t.outstanding.saturating_add(line.outstanding);
    }
    for payout in payouts {
        let t = total(&mut by_currency, payout.currency);
        t.paid_out = t.paid_out.saturating_add(payout.paid_out);
    }
    by_currency.into_values().collect()
}
