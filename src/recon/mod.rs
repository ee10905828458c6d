//! Reconciliation (SPEC §5): expected rent against what CasaPay collected and paid out.
//!
//! The store loads one period; matching, statuses and sums here are pure.

pub mod arrears;
pub mod exceptions;
pub mod export;
pub mod history;
pub mod render;
pub mod rules;

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::domain::{
    Currency, DisbursementStatus, ExpectedRent, LandlordId, LineStatus, PaymentRequestStatus,
    PayoutStatus, Period, PropertyId, StoredPayout, StoredRequest,
};
use crate::matching;
use crate::store::{PeriodItem, PlacedRequest, Storage, StoreError};
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

/// What follows a reconciliation's lines, known once every line is assessed
/// (its fields in [`Reconciliation`]'s order).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub unmatched: Vec<Unmatched>,
    pub payouts: Vec<PayoutLine>,
    pub unallocated_payouts: Vec<UnallocatedPayout>,
    pub unmatched_payouts: Vec<UnmatchedPayout>,
    pub totals: Vec<Total>,
}

impl Reconciliation {
    pub fn new(period: Period, as_of: Date, lines: Vec<Line>, summary: Summary) -> Self {
        Self {
            object: "reconciliation",
            period: period.to_string(),
            as_of: as_of.to_string(),
            lines,
            unmatched: summary.unmatched,
            payouts: summary.payouts,
            unallocated_payouts: summary.unallocated_payouts,
            unmatched_payouts: summary.unmatched_payouts,
            totals: summary.totals,
        }
    }
}

/// Loads and reconciles a stored period as of a date, every line in memory.
pub fn reconcile_stored(
    store: &dyn Storage,
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    landlord: Option<&str>,
) -> Result<Reconciliation, StoreError> {
    let mut lines = Vec::new();
    let summary = reconcile_each(store, period, as_of, timezone, landlord, &mut |line| {
        lines.push(line);
        Ok(())
    })?;
    Ok(Reconciliation::new(period, as_of, lines, summary))
}

/// Reconciles a stored period a line at a time: each line goes to `on_line`
/// as it is assessed, in (landlord, property) order; the unmatched requests
/// are gathered into the summary. With `landlord`, only that landlord's lines
/// and payouts (unmatched items have no landlord).
pub fn reconcile_each(
    store: &dyn Storage,
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    landlord: Option<&str>,
    on_line: &mut dyn FnMut(Line) -> Result<(), StoreError>,
) -> Result<Summary, StoreError> {
    let mut unmatched = Vec::new();
    let mut summary =
        reconcile_pieces(
            store,
            period,
            as_of,
            timezone,
            landlord,
            &mut |piece| match piece {
                Piece::Line(line) => on_line(line),
                Piece::Unmatched(request) => {
                    unmatched.push(request);
                    Ok(())
                }
            },
        )?;
    summary.unmatched = unmatched;
    Ok(summary)
}

/// What a period's reconciliation hands on as it goes, in the order of its
/// document: every line, then every unmatched request (by id).
pub enum Piece {
    Line(Line),
    Unmatched(Unmatched),
}

/// Reconciles a stored period handing on each line and then each unmatched
/// request as it is known; the summary it returns has no unmatched requests.
/// Memory holds one line's requests, the landlords' payout groups and the
/// few unmatched requests found among a line's, whatever the size of the period.
pub fn reconcile_pieces(
    store: &dyn Storage,
    period: Period,
    as_of: Date,
    timezone: &TimeZone,
    landlord: Option<&str>,
    on_piece: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
) -> Result<Summary, StoreError> {
    let mut reconciler = Reconciler::new(period, as_of, timezone, landlord);
    store.visit_period(period, timezone, landlord, &mut |item| {
        reconciler.item(item, on_piece)
    })?;
    let payouts = PeriodPayouts::load(store, period, timezone)?;
    reconciler.finish(&payouts, on_piece)
}

/// The period's payouts, and the landlords of the bank accounts those
/// without a landlord were paid to.
struct PeriodPayouts {
    payouts: Vec<StoredPayout>,
    bank_accounts: HashMap<String, LandlordId>,
}

impl PeriodPayouts {
    fn load(store: &dyn Storage, period: Period, timezone: &TimeZone) -> Result<Self, StoreError> {
        let month = (period.start_in(timezone), period.next().start_in(timezone));
        let payouts = store.payouts_of_period(period, month)?;
        let mut bank_accounts = HashMap::new();
        for stored in &payouts {
            if let (None, Some(account)) = (&stored.payout.landlord_id, &stored.payout.destination)
                && !bank_accounts.contains_key(account)
                && let Some(landlord) = store.landlord_by_bank_account(account)?
            {
                bank_accounts.insert(account.clone(), landlord);
            }
        }
        Ok(Self {
            payouts,
            bank_accounts,
        })
    }
}

/// Matches, assesses and totals one period, fed a line (or an unplaced
/// request) at a time: pure, the store reads.
struct Reconciler<'t> {
    period: Period,
    as_of: AsOf,
    timezone: &'t TimeZone,
    landlord: Option<&'t str>,
    sums: BTreeMap<(LandlordId, Currency), PayoutSums>,
    totals: BTreeMap<Currency, Total>,
    /// Unmatched requests found among a line's, by id, the greatest first:
    /// handed on in turn with those that come after the lines.
    held: Vec<Unmatched>,
}

/// Where a request of the period belongs.
enum Placement {
    /// To its property's line of the period.
    Line,
    /// To no line: listed as unmatched in this period.
    Unmatched,
    /// To another period's line, or listed in another period.
    Elsewhere,
}

impl<'t> Reconciler<'t> {
    /// With `landlord`, no unmatched requests are handed on (they have no landlord).
    fn new(period: Period, as_of: Date, timezone: &'t TimeZone, landlord: Option<&'t str>) -> Self {
        let as_of = AsOf {
            date: as_of,
            start: as_of
                .to_zoned(timezone.clone())
                .map_or(i64::MIN, |z| z.timestamp().as_second()),
        };
        Self {
            period,
            as_of,
            timezone,
            landlord,
            sums: BTreeMap::new(),
            totals: BTreeMap::new(),
            held: Vec::new(),
        }
    }

    /// Takes one item of the period's read (the lines, then the requests
    /// placed at none, by id) and hands on what it yields.
    fn item(
        &mut self,
        item: PeriodItem,
        out: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match item {
            PeriodItem::Line(expected, placed) => {
                let line = self.line(&expected, placed);
                out(Piece::Line(line))
            }
            PeriodItem::Unplaced(request) => {
                if matches!(self.placement(&request, false), Placement::Elsewhere)
                    || self.landlord.is_some()
                {
                    return Ok(());
                }
                let unmatched = unmatched_request(&request.stored);
                self.release_held(Some(&unmatched.payment_request), out)?;
                out(Piece::Unmatched(unmatched))
            }
        }
    }

    /// Hands on the held unmatched requests whose id sorts before `before`
    /// (all of them with `None`).
    fn release_held(
        &mut self,
        before: Option<&str>,
        out: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        while let Some(next) = self.held.last()
            && before.is_none_or(|id| next.payment_request.as_str() < id)
        {
            let next = self.held.pop().expect("a last one was seen");
            out(Piece::Unmatched(next))?;
        }
        Ok(())
    }

    fn line(&mut self, expected: &ExpectedRent, placed: Vec<PlacedRequest>) -> Line {
        let mut matched = Vec::with_capacity(placed.len());
        for request in placed {
            match self.placement(&request, true) {
                Placement::Line => matched.push(request.stored),
                Placement::Unmatched if self.landlord.is_none() => {
                    let unmatched = unmatched_request(&request.stored);
                    let at = self
                        .held
                        .partition_point(|held| held.payment_request > unmatched.payment_request);
                    self.held.insert(at, unmatched);
                }
                Placement::Unmatched => {}
                Placement::Elsewhere => {}
            }
        }
        let line = assess(expected, matched, self.as_of);
        let group = self
            .sums
            .entry((line.landlord_id.clone(), line.currency))
            .or_default();
        group.collected = group.collected.saturating_add(line.collected);
        group.commission = group
            .commission
            .saturating_add(rules::commission(line.collected, expected.commission_bps));
        let total = total(&mut self.totals, line.currency);
        total.expected = total.expected.saturating_add(line.expected);
        total.collected = total.collected.saturating_add(line.collected);
        total.outstanding = total.outstanding.saturating_add(line.outstanding);
        line
    }

    /// The matching rule's period for a request whose property the store
    /// found (`matching::property_of`), and whether that property has a line
    /// in this period.
    fn placement(&self, placed: &PlacedRequest, has_line: bool) -> Placement {
        let request = &placed.stored.request;
        let period = placed
            .due_dates
            .as_deref()
            .and_then(|due_dates| matching::period_of(request, due_dates, self.timezone));
        match period {
            Some(p) if p == self.period && has_line => Placement::Line,
            Some(p) if p == self.period => Placement::Unmatched,
            Some(_) => Placement::Elsewhere,
            None if listed_in(
                request.period.as_deref(),
                request.created,
                self.period,
                self.timezone,
            ) =>
            {
                Placement::Unmatched
            }
            None => Placement::Elsewhere,
        }
    }

    /// Hands on the last unmatched requests, adds the period's payouts and
    /// returns what follows the lines (without unmatched requests).
    fn finish(
        mut self,
        payouts: &PeriodPayouts,
        out: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
    ) -> Result<Summary, StoreError> {
        self.release_held(None, out)?;
        let landlord = self.landlord;
        let keep = |id: &str| landlord.is_none_or(|wanted| wanted == id);
        let (unallocated, unmatched_payouts) =
            allocate_payouts(self.period, self.timezone, payouts, &mut self.sums);
        let payouts: Vec<PayoutLine> = std::mem::take(&mut self.sums)
            .into_iter()
            .filter(|((landlord_id, _), _)| keep(landlord_id))
            .map(|((landlord_id, currency), sums)| {
                sums.into_line(landlord_id, self.period, currency)
            })
            .collect();
        for payout in &payouts {
            let t = total(&mut self.totals, payout.currency);
            t.paid_out = t.paid_out.saturating_add(payout.paid_out);
        }
        let everyone = landlord.is_none();
        Ok(Summary {
            unmatched: Vec::new(),
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
            totals: self.totals.into_values().collect(),
        })
    }
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

fn assess(expected: &ExpectedRent, mut requests: Vec<StoredRequest>, as_of: AsOf) -> Line {
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
    data: &PeriodPayouts,
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

fn total(totals: &mut BTreeMap<Currency, Total>, currency: Currency) -> &mut Total {
    totals.entry(currency).or_insert(Total {
        currency,
        expected: 0,
        collected: 0,
        outstanding: 0,
        paid_out: 0,
    })
}
