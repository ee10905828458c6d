//! What in a reconciliation needs a person: the exceptions the daily report,
//! the dashboard and `/metrics` list and count.

use serde::Serialize;

use super::{Line, Piece, Reconciliation, Unmatched};
use crate::domain::{
    Currency, DisbursementStatus, ExceptionKind, LandlordId, LineStatus, PaymentRequestStatus,
    PropertyId,
};
use crate::format::{money, timestamp};

/// Something that needs a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    pub kind: ExceptionKind,
    pub property_id: Option<PropertyId>,
    pub landlord_id: Option<LandlordId>,
    pub period: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<Currency>,
    pub detail: String,
    /// What else tells this exception apart (a payment, payout, event or mail id).
    #[serde(skip)]
    pub reference: Option<String>,
    /// The first report date it appeared in (set by the daily report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Exception {
    /// An exception about the service itself, with no property, landlord or amount.
    pub fn about(kind: ExceptionKind, detail: String, reference: Option<String>) -> Self {
        Self {
            kind,
            property_id: None,
            landlord_id: None,
            period: None,
            amount: None,
            currency: None,
            detail,
            reference,
            since: None,
        }
    }

    /// What identifies it from one report to the next.
    pub fn key(&self) -> String {
        [
            Some(self.kind.as_str()),
            self.property_id.as_deref(),
            self.landlord_id.as_deref(),
            self.period.as_deref(),
            self.reference.as_deref(),
        ]
        .map(|part| part.unwrap_or(""))
        .join("|")
    }

    /// Property, landlord and period, those that apply, joined by `separator`.
    pub fn subject(&self, separator: &str) -> String {
        [
            self.property_id.as_deref(),
            self.landlord_id.as_deref(),
            self.period.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(separator)
    }

    /// The amount with its currency's symbol, or nothing.
    pub fn amount_display(&self) -> String {
        match (self.amount, self.currency) {
            (Some(amount), Some(currency)) => money(amount, currency),
            _ => String::new(),
        }
    }
}

fn retry_detail(line: &Line) -> String {
    let reason = line
        .failure_reason
        .as_deref()
        .unwrap_or("an attempt failed");
    match line.next_retry_at {
        Some(at) if line.next_retry_estimated => {
            format!("{reason}; retry expected at {} (estimated)", timestamp(at))
        }
        Some(at) => format!("{reason}; retry at {}", timestamp(at)),
        None => reason.to_string(),
    }
}

/// A line's exception, if its status is one.
pub fn of_line(line: &Line) -> Option<Exception> {
    let mut kind = line.status.exception()?;
    let (amount, detail) = match line.status {
        LineStatus::Overpaid => (
            line.collected - line.expected,
            format!(
                "collected {} more than expected",
                money(line.collected - line.expected, line.currency)
            ),
        ),
        LineStatus::Retrying => {
            if line.retry_stalled {
                kind = ExceptionKind::RetryStalled;
            }
            (line.outstanding, retry_detail(line))
        }
        LineStatus::Failed => (
            line.outstanding,
            line.failure_reason
                .clone()
                .unwrap_or_else(|| "collection failed".into()),
        ),
        LineStatus::Overdue => (
            line.outstanding,
            format!("nothing collected; due {}", line.due_date),
        ),
        LineStatus::CurrencyMismatch => (
            line.outstanding,
            "a payment arrived in another currency".into(),
        ),
        _ => (
            line.outstanding,
            format!(
                "{} of {} collected",
                money(line.collected, line.currency),
                money(line.expected, line.currency)
            ),
        ),
    };
    Some(Exception {
        kind,
        property_id: Some(line.property_id.clone()),
        landlord_id: Some(line.landlord_id.clone()),
        period: Some(line.period.clone()),
        amount: Some(amount),
        currency: Some(line.currency),
        detail: if line.payment_requests.is_empty() {
            detail
        } else {
            format!("{detail} ({})", line.payment_requests.join(", "))
        },
        reference: None,
        since: None,
    })
}

/// The exceptions of one period's reconciliation, lines first.
pub fn exceptions_of(r: &Reconciliation) -> Vec<Exception> {
    let mut exceptions: Vec<Exception> = r.lines.iter().filter_map(of_line).collect();
    exceptions.extend(
        r.unmatched
            .iter()
            .filter_map(|u| of_unmatched(&r.period, u)),
    );
    exceptions.extend(of_payouts(r));
    exceptions
}

/// A line's or an unmatched request's exception, as a period is read.
pub fn of_piece(period: &str, piece: &Piece) -> Option<Exception> {
    match piece {
        Piece::Line(line) => of_line(line),
        Piece::Unmatched(unmatched) => of_unmatched(period, unmatched),
    }
}

/// An unmatched request's exception, if it is one: only money in suspense
/// needs a person; other unmatched requests are listed, not raised.
pub fn of_unmatched(period: &str, unmatched: &Unmatched) -> Option<Exception> {
    (unmatched.status == PaymentRequestStatus::Succeeded).then(|| Exception {
        kind: ExceptionKind::Unmatched,
        property_id: unmatched.property_id.clone(),
        landlord_id: None,
        period: unmatched
            .period
            .clone()
            .or_else(|| Some(period.to_string())),
        amount: Some(unmatched.amount),
        currency: Some(unmatched.currency),
        detail: format!(
            "payment {} matches no expected rent",
            unmatched.payment_request
        ),
        reference: Some(unmatched.payment_request.clone()),
        since: None,
    })
}

/// The exceptions of a reconciliation's payouts (its lines and unmatched
/// requests are not looked at): failed, unallocated and unmatched payouts.
pub fn of_payouts(r: &Reconciliation) -> Vec<Exception> {
    let mut exceptions = Vec::new();
    for payout in r
        .payouts
        .iter()
        .filter(|p| p.status == DisbursementStatus::PayoutFailed)
    {
        let reason = payout
            .failure_reason
            .as_deref()
            .map(|reason| format!("{reason}; "))
            .unwrap_or_default();
        exceptions.push(Exception {
            kind: ExceptionKind::PayoutFailed,
            property_id: None,
            landlord_id: Some(payout.landlord_id.clone()),
            period: Some(payout.period.clone()),
            amount: Some(payout.failed),
            currency: Some(payout.currency),
            detail: format!("{reason}payouts {}", payout.payouts.join(", ")),
            reference: Some(payout.currency.code()),
            since: None,
        });
    }
    for payout in &r.unallocated_payouts {
        exceptions.push(Exception {
            kind: ExceptionKind::UnallocatedPayout,
            property_id: None,
            landlord_id: Some(payout.landlord_id.clone()),
            period: Some(r.period.clone()),
            amount: Some(payout.amount),
            currency: Some(payout.currency),
            detail: format!(
                "payout {} ({}) has no period; created {}",
                payout.payout,
                payout.status.as_str(),
                timestamp(payout.created)
            ),
            reference: Some(payout.payout.clone()),
            since: None,
        });
    }
    for payout in &r.unmatched_payouts {
        exceptions.push(Exception {
            kind: ExceptionKind::UnmatchedPayout,
            property_id: None,
            landlord_id: None,
            period: Some(r.period.clone()),
            amount: Some(payout.amount),
            currency: Some(payout.currency),
            detail: match &payout.destination {
                Some(account) => format!(
                    "payout {} ({}) to {account}: no landlord has this bank account",
                    payout.payout,
                    payout.status.as_str()
                ),
                None => format!(
                    "payout {} ({}) names no landlord and no bank account",
                    payout.payout,
                    payout.status.as_str()
                ),
            },
            reference: Some(payout.payout.clone()),
            since: None,
        });
    }
    exceptions
}
