//! Reconciliation (SPEC §5): expected rent against what CasaPay collected and paid out.
//!
//! The store loads one period; matching, statuses and sums here are pure.

pub mod arrears;
pub mod exceptions;
pub mod history;
pub mod render;
pub mod rules;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::domain::{
    Currency, DisbursementStatus, ExpectedRent, LandlordId, LineStatus, PaymentRequestStatus,
    PayoutStatus, Period, PropertyId, PropertyKey, StoredPayout, StoredRequest,
};
use crate::matching;
use crate::store::{PeriodData, Storage, StoreError};
pub use exceptions::{Exception, exceptions_of};
use rules::AsOf;

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub period: String,
    pub currency: Currency,
    pub expected: i64,
    pub collected: i64,
    pub outstanding: i64,
    pub status: LineStatus,
    pub payment_requests: Vec<String>,
    pub next_retry_at: Option<i64>,
    /// `next_retry_at` was not sent by CasaPay but estimated from its schedule.
    pub next_retry_estimated: bool,
    /// CasaPay is more than a day late with the retry.
    pub retry_stalled: bool,
    pub failure_reason: Option<String>,
    /// Attempts CasaPay made for the newest request (of 3).
    pub attempts: Option<i64>,
    pub payment_method_used: Option<String>,
    pub due_date: Date,
    #[serde(skip)]
    pub property_name: Option<String>,
}

/// A PaymentRequest that matches no expected line.
#[derive(Debug, Clone, Serialize)]
pub struct Unmatched {
    pub payment_request: String,
    pub amount: i64,
    pub currency: Currency,
    pub status: PaymentRequestStatus,
    pub property_id: Option<PropertyId>,
    pub period: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayoutLine {
    pub landlord_id: LandlordId,
    pub period: String,
    pub currency: Currency,
    pub collected: i64,
    pub due: i64,
    pub paid_out: i64,
    pub in_transit: i64,
    pub failed: i64,
    pub status: DisbursementStatus,
    pub payouts: Vec<String>,
    /// Why the newest failed payout failed.
    pub failure_reason: Option<String>,
}

/// A payout whose landlord is known but whose period is not.
#[derive(Debug, Clone, Serialize)]
pub struct UnallocatedPayout {
    pub payout: String,
    pub landlord_id: LandlordId,
    pub amount: i64,
    pub currency: Currency,
    pub status: PayoutStatus,
    pub created: i64,
}

/// A payout whose landlord cannot be found.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedPayout {
    pub payout: String,
    pub amount: i64,
    pub currency: Currency,
    pub status: PayoutStatus,
    pub destination: Option<String>,
    pub period: Option<String>,
    pub created: i64,
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
    pub unallocated_payouts: Vec<UnallocatedPayout>,
    pub unmatched_payouts: Vec<UnmatchedPayout>,
    pub totals: Vec<Total>,
}

impl Reconciliation {
    /// Keeps the lines that pass `filter`.
    pub fn retain_lines(&mut self, filter: &LineFilter) {
        self.lines.retain(|line| filter.keeps(line));
    }
}

/// Which lines a reader wants: by status, landlord, property.
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    pub status: Option<LineStatus>,
    pub landlord_id: Option<String>,
    pub property_id: Option<String>,
}

impl LineFilter {
    pub fn keeps(&self, line: &Line) -> bool {
        self.status.is_none_or(|s| s == line.status)
            && self
                .landlord_id
                .as_ref()
                .is_none_or(|l| **l == *line.landlord_id)
            && self
                .property_id
                .as_ref()
                .is_none_or(|p| **p == *line.property_id)
    }
}

/// A page of lines in their order (landlord, property), after the line of
/// `starting_after` (a property id), and whether more follow.
pub fn page_of_lines<'a>(
    lines: &'a [Line],
    limit: usize,
    starting_after: Option<&str>,
) -> Option<(&'a [Line], bool)> {
    let start = match starting_after {
        Some(property) => lines.iter().position(|l| l.property_id == property)? + 1,
        None => 0,
    };
    let rest = &lines[start.min(lines.len())..];
    Some((&rest[..limit.min(rest.len())], rest.len() > limit))
}

/// Loads and reconciles a stored period as of a date.
pub fn reconcile_stored(
    store: &dyn Storage,
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    landlord: Option<&str>,
) -> Result<Reconciliation, StoreError> {
    let data = store.load_period(period, timezone)?;
    Ok(reconcile(period, as_of, timezone, &data, landlord))
}

/// Matches, assesses and totals one period. With `landlord`, only that
/// landlord's lines and payouts are kept (unmatched items have no landlord).
pub fn reconcile(
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    data: &PeriodData,
    landlord: Option<&str>,
) -> Reconciliation {
    let as_of = AsOf {
        date: as_of,
        start: as_of
            .to_zoned(timezone.clone())
            .map_or(i64::MIN, |z| z.timestamp().as_second()),
    };
    let (matched, unmatched) = match_requests(period, timezone, data);
    let keep = |id: &str| landlord.is_none_or(|wanted| wanted == id);
    let mut sums: BTreeMap<(LandlordId, Currency), PayoutSums> = BTreeMap::new();
    let mut lines = Vec::with_capacity(data.expected.len());
    for (expected, requests) in data.expected.iter().zip(matched) {
        let line = assess(expected, requests, as_of);
        let group = sums
            .entry((line.landlord_id.clone(), line.currency))
            .or_default();
        group.collected = group.collected.saturating_add(line.collected);
        group.commission = group
            .commission
            .saturating_add(rules::commission(line.collected, expected.commission_bps));
        if keep(&line.landlord_id) {
            lines.push(line);
        }
    }
    lines.sort_by(|a, b| (&a.landlord_id, &a.property_id).cmp(&(&b.landlord_id, &b.property_id)));
    let (unallocated, unmatched_payouts) = allocate_payouts(period, timezone, data, &mut sums);
    let payouts: Vec<PayoutLine> = sums
        .into_iter()
        .filter(|((landlord_id, _), _)| keep(landlord_id))
        .map(|((landlord_id, currency), sums)| sums.into_line(landlord_id, period, currency))
        .collect();
    let totals = totals(&lines, &payouts);
    let everyone = landlord.is_none();
    Reconciliation {
        object: "reconciliation",
        period: period.to_string(),
        as_of: as_of.date.to_string(),
        lines,
        unmatched: if everyone { unmatched } else { Vec::new() },
        payouts,
        unallocated_payouts: unallocated
            .into_iter()
            .filter(|u| keep(&u.landlord_id))
            .collect(),
        unmatched_payouts: if everyone {
            unmatched_payouts
        } else {
            Vec::new()
        },
        totals,
    }
}

/// Each expected line's matched requests (in `data.expected` order), and the
/// requests of this period that match no line.
fn match_requests<'a>(
    period: Period,
    timezone: &TimeZone,
    data: &'a PeriodData,
) -> (Vec<Vec<&'a StoredRequest>>, Vec<Unmatched>) {
    let line_of: std::collections::HashMap<&str, usize> = data
        .expected
        .iter()
        .enumerate()
        .map(|(i, line)| (line.property_id.as_str(), i))
        .collect();
    let mut matched = vec![Vec::new(); data.expected.len()];
    let mut unmatched = Vec::new();
    for stored in &data.requests {
        let request = &stored.request;
        let found = matching::match_request(
            request,
            |key| match key {
                PropertyKey::Id(id) => data.properties.get(id),
                PropertyKey::Agreement(agreement) => data
                    .agreements
                    .get(agreement)
                    .and_then(|id| data.properties.get(id)),
            },
            timezone,
        );
        match found {
            Some((property, p)) if p == period => {
                match line_of.get(property.property_id.as_str()) {
                    Some(&i) => matched[i].push(stored),
                    None => unmatched.push(unmatched_request(stored)),
                }
            }
            Some(_) => {} // another period's line
            None if listed_in(request.period.as_deref(), request.created, period, timezone) => {
                unmatched.push(unmatched_request(stored))
            }
            None => {}
        }
    }
    unmatched.sort_by(|a, b| a.payment_request.cmp(&b.payment_request));
    (matched, unmatched)
}

/// Where an unmatched item is listed: its `metadata.period`, or with none (or
/// a malformed one) the month it was created in.
fn listed_in(
    metadata_period: Option<&str>,
    created: i64,
    period: Period,
    timezone: &TimeZone,
) -> bool {
    match metadata_period.and_then(|p| p.parse::<Period>().ok()) {
        Some(p) => p == period,
        None => Period::of_instant(created, timezone) == Some(period),
    }
}

fn unmatched_request(stored: &StoredRequest) -> Unmatched {
    let request = &stored.request;
    Unmatched {
        payment_request: request.id.clone(),
        amount: request.amount.minor(),
        currency: request.amount.currency(),
        status: request.status,
        property_id: request.property_id.clone(),
        period: request.period.clone(),
    }
}

fn assess(expected: &ExpectedRent, mut requests: Vec<&StoredRequest>, as_of: AsOf) -> Line {
    let currency = expected.amount.currency();
    let a = rules::assess_line(
        expected.amount.minor(),
        currency,
        expected.due_date,
        as_of,
        &requests,
    );
    requests.sort_by_key(|r| (r.request.created, r.version));
    Line {
        property_id: expected.property_id.clone(),
        landlord_id: expected.landlord_id.clone(),
        period: expected.period.to_string(),
        currency,
        expected: expected.amount.minor(),
        collected: a.collected,
        outstanding: a.outstanding,
        status: a.status,
        payment_requests: requests.iter().map(|r| r.request.id.clone()).collect(),
        next_retry_at: a.next_retry_at,
        next_retry_estimated: a.next_retry_estimated,
        retry_stalled: a.retry_stalled,
        failure_reason: a.failure_reason,
        attempts: a.attempts,
        payment_method_used: a.payment_method_used,
        due_date: expected.due_date,
        property_name: expected.property_name.clone(),
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
    /// (created, reason) of the newest failed payout.
    failure: Option<(i64, String)>,
}

impl PayoutSums {
    fn add(&mut self, stored: &StoredPayout) {
        let payout = &stored.payout;
        let amount = payout.amount.minor();
        let bucket = match payout.status {
            PayoutStatus::Paid => Some(&mut self.paid_out),
            PayoutStatus::Pending | PayoutStatus::InTransit => Some(&mut self.in_transit),
            PayoutStatus::Failed => Some(&mut self.failed),
            PayoutStatus::Canceled => None, // listed, but moves no money
        };
        if let Some(bucket) = bucket {
            *bucket = bucket.saturating_add(amount);
        }
        if payout.status == PayoutStatus::Failed
            && let Some(reason) = payout.failure()
            && self
                .failure
                .as_ref()
                .is_none_or(|(at, _)| payout.created >= *at)
        {
            self.failure = Some((payout.created, reason.to_string()));
        }
        self.payouts.push(payout.id.clone());
    }

    fn into_line(
        mut self,
        landlord_id: LandlordId,
        period: Period,
        currency: Currency,
    ) -> PayoutLine {
        let due = self.collected.saturating_sub(self.commission);
        self.payouts.sort();
        PayoutLine {
            landlord_id,
            period: period.to_string(),
            currency,
            collected: self.collected,
            due,
            paid_out: self.paid_out,
            in_transit: self.in_transit,
            failed: self.failed,
            status: rules::disbursement_status(due, self.paid_out, self.in_transit, self.failed),
            payouts: self.payouts,
            failure_reason: self.failure.map(|(_, reason)| reason),
        }
    }
}

/// Adds each payout of the period to its landlord's group; returns those with a
/// landlord but no period, and those with no landlord.
fn allocate_payouts(
    period: Period,
    timezone: &TimeZone,
    data: &PeriodData,
    sums: &mut BTreeMap<(LandlordId, Currency), PayoutSums>,
) -> (Vec<UnallocatedPayout>, Vec<UnmatchedPayout>) {
    let (mut unallocated, mut unmatched) = (Vec::new(), Vec::new());
    for stored in &data.payouts {
        let payout = &stored.payout;
        let landlord =
            matching::landlord_of(payout, |account| data.bank_accounts.get(account).cloned());
        let dated = payout
            .period
            .as_deref()
            .and_then(|p| p.parse::<Period>().ok());
        match (landlord, dated) {
            (Some(landlord), Some(p)) if p == period => sums
                .entry((landlord, payout.amount.currency()))
                .or_default()
                .add(stored),
            (Some(landlord_id), None) if listed_in(None, payout.created, period, timezone) => {
                unallocated.push(UnallocatedPayout {
                    payout: payout.id.clone(),
                    landlord_id,
                    amount: payout.amount.minor(),
                    currency: payout.amount.currency(),
                    status: payout.status,
                    created: payout.created,
                })
            }
            (None, _) if listed_in(payout.period.as_deref(), payout.created, period, timezone) => {
                unmatched.push(UnmatchedPayout {
                    payout: payout.id.clone(),
                    amount: payout.amount.minor(),
                    currency: payout.amount.currency(),
                    status: payout.status,
                    destination: payout.destination.clone(),
                    period: payout.period.clone(),
                    created: payout.created,
                })
            }
            _ => {}
        }
    }
    unallocated.sort_by(|a, b| a.payout.cmp(&b.payout));
    unmatched.sort_by(|a, b| a.payout.cmp(&b.payout));
    (unallocated, unmatched)
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
