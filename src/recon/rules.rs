//! SPEC §5's rules, as pure functions: no database, no clock.

use jiff::civil::Date;
use serde::Serialize;

use crate::domain::{Currency, PaymentRequestStatus};

/// A PaymentRequest matched to an expected line, in its newest known state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRequest {
    pub id: String,
    pub amount: i64,
    pub currency: Currency,
    pub status: PaymentRequestStatus,
    pub next_retry_at: Option<i64>,
    pub failure_reason: Option<String>,
    /// CasaPay's `created` of the request, then of its last event: "newest" order.
    pub created: i64,
    pub event_created: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    Paid,
    Overpaid,
    CurrencyMismatch,
    Retrying,
    Pending,
    Partial,
    Failed,
    Cancelled,
    Overdue,
    Unpaid,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Paid => "paid",
            LineStatus::Overpaid => "overpaid",
            LineStatus::CurrencyMismatch => "currency_mismatch",
            LineStatus::Retrying => "retrying",
            LineStatus::Pending => "pending",
            LineStatus::Partial => "partial",
            LineStatus::Failed => "failed",
            LineStatus::Cancelled => "cancelled",
            LineStatus::Overdue => "overdue",
            LineStatus::Unpaid => "unpaid",
        }
    }

    /// Statuses that need a person (they go to the daily report's exceptions).
    pub fn is_exception(self) -> bool {
        matches!(
            self,
            LineStatus::Failed
                | LineStatus::Retrying
                | LineStatus::Partial
                | LineStatus::Overpaid
                | LineStatus::CurrencyMismatch
                | LineStatus::Overdue
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAssessment {
    pub collected: i64,
    pub outstanding: i64,
    pub status: LineStatus,
    pub next_retry_at: Option<i64>,
    pub failure_reason: Option<String>,
}

/// Collected, outstanding and status of one expected line: the first status that holds.
pub fn assess_line(
    expected: i64,
    currency: Currency,
    due_date: Date,
    as_of: Date,
    matched: &[MatchedRequest],
) -> LineAssessment {
    use PaymentRequestStatus as S;
    let succeeded = || matched.iter().filter(|r| r.status == S::Succeeded);
    let collected = succeeded()
        .filter(|r| r.currency == currency)
        .fold(0_i64, |sum, r| sum.saturating_add(r.amount));
    let retrying = matched
        .iter()
        .find(|r| r.status == S::Processing && r.next_retry_at.is_some());
    let newest = matched
        .iter()
        .max_by_key(|r| (r.created, r.event_created, r.id.as_str()));
    let status = if collected == expected {
        LineStatus::Paid
    } else if collected > expected {
        LineStatus::Overpaid
    } else if succeeded().any(|r| r.currency != currency) {
        LineStatus::CurrencyMismatch
    } else if retrying.is_some() {
        LineStatus::Retrying
    } else if matched
        .iter()
        .any(|r| matches!(r.status, S::Pending | S::Processing))
    {
        LineStatus::Pending
    } else if collected > 0 {
        LineStatus::Partial
    } else if newest.is_some_and(|r| r.status == S::Failed) {
        LineStatus::Failed
    } else if newest.is_some_and(|r| r.status == S::Cancelled) {
        LineStatus::Cancelled
    } else if as_of > due_date {
        LineStatus::Overdue
    } else {
        LineStatus::Unpaid
    };
    let failure_reason = match status {
        LineStatus::Retrying => retrying.and_then(|r| r.failure_reason.clone()),
        LineStatus::Failed => newest.and_then(|r| r.failure_reason.clone()),
        _ => None,
    };
    LineAssessment {
        collected,
        outstanding: expected.saturating_sub(collected).max(0),
        status,
        next_retry_at: if status == LineStatus::Retrying {
            retrying.and_then(|r| r.next_retry_at)
        } else {
            None
        },
        failure_reason,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisbursementStatus {
    Disbursed,
    OverDisbursed,
    InTransit,
    PayoutFailed,
    PartiallyDisbursed,
    NotDisbursed,
}

impl DisbursementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DisbursementStatus::Disbursed => "disbursed",
            DisbursementStatus::OverDisbursed => "over_disbursed",
            DisbursementStatus::InTransit => "in_transit",
            DisbursementStatus::PayoutFailed => "payout_failed",
            DisbursementStatus::PartiallyDisbursed => "partially_disbursed",
            DisbursementStatus::NotDisbursed => "not_disbursed",
        }
    }
}

/// The manager's commission on `collected`: `collected × bps / 10000`, rounded
/// half up to the minor unit, in integers.
pub fn commission(collected: i64, bps: u32) -> i64 {
    let exact = i128::from(collected) * i128::from(bps);
    i64::try_from((exact + 5_000) / 10_000).unwrap_or(i64::MAX)
}

/// Payout status of a (landlord, period, currency): the first that holds.
pub fn disbursement_status(
    due: i64,
    paid_out: i64,
    in_transit: i64,
    failed: i64,
) -> DisbursementStatus {
    if paid_out == due {
        DisbursementStatus::Disbursed
    } else if paid_out > due {
        DisbursementStatus::OverDisbursed
    } else if in_transit > 0 {
        DisbursementStatus::InTransit
    } else if failed > 0 {
        DisbursementStatus::PayoutFailed
    } else if paid_out > 0 {
        DisbursementStatus::PartiallyDisbursed
    } else {
        DisbursementStatus::NotDisbursed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("eur").unwrap()
    }

    fn request(
        id: &str,
        amount: i64,
        status: PaymentRequestStatus,
        created: i64,
    ) -> MatchedRequest {
        MatchedRequest {
            id: id.into(),
            amount,
            currency: eur(),
            status,
            next_retry_at: None,
            failure_reason: None,
            created,
            event_created: created,
        }
    }

    fn status(matched: &[MatchedRequest], as_of: &str) -> LineStatus {
        let due: Date = "2025-03-01".parse().unwrap();
        assess_line(120000, eur(), due, as_of.parse().unwrap(), matched).status
    }

    use PaymentRequestStatus as S;

    #[test]
    fn each_status_in_precedence_order() {
        let paid = request("a", 120000, S::Succeeded, 1);
        let half = request("b", 60000, S::Succeeded, 2);
        let mut retrying = request("c", 120000, S::Processing, 3);
        retrying.next_retry_at = Some(99);
        retrying.failure_reason = Some("insufficient_funds".into());
        let mut gbp = request("d", 120000, S::Succeeded, 4);
        gbp.currency = Currency::parse("gbp").unwrap();
        let failed = request("e", 120000, S::Failed, 5);
        let cancelled = request("f", 120000, S::Cancelled, 6);
        let failed_again = request("h", 120000, S::Failed, 7);

        assert_eq!(
            status(std::slice::from_ref(&paid), "2025-03-20"),
            LineStatus::Paid
        );
        assert_eq!(
            status(&[paid.clone(), half.clone()], "2025-03-20"),
            LineStatus::Overpaid
        );
        assert_eq!(
            status(&[gbp.clone()], "2025-03-20"),
            LineStatus::CurrencyMismatch
        );
        assert_eq!(
            status(&[gbp, half.clone()], "2025-03-20"),
            LineStatus::CurrencyMismatch,
            "a foreign payment beats partial"
        );
        assert_eq!(
            status(&[half.clone(), retrying.clone()], "2025-03-20"),
            LineStatus::Retrying,
            "retrying beats partial"
        );
        assert_eq!(
            status(&[request("g", 1, S::Pending, 1)], "2025-03-20"),
            LineStatus::Pending
        );
        assert_eq!(
            status(&[half.clone(), failed.clone()], "2025-03-20"),
            LineStatus::Partial
        );
        assert_eq!(
            status(&[cancelled.clone(), failed_again], "2025-03-20"),
            LineStatus::Failed,
            "the newest decides"
        );
        assert_eq!(
            status(&[failed, cancelled], "2025-03-20"),
            LineStatus::Cancelled,
            "cancelled after failed"
        );
        assert_eq!(status(&[], "2025-03-02"), LineStatus::Overdue);
        assert_eq!(
            status(&[], "2025-03-01"),
            LineStatus::Unpaid,
            "due today is not yet overdue"
        );
    }

    #[test]
    fn amounts_and_details() {
        let mut retrying = request("c", 120000, S::Processing, 3);
        retrying.next_retry_at = Some(99);
        retrying.failure_reason = Some("insufficient_funds".into());
        let half = request("b", 60000, S::Succeeded, 2);
        let due: Date = "2025-03-01".parse().unwrap();
        let line = assess_line(120000, eur(), due, due, &[half, retrying]);
        assert_eq!((line.collected, line.outstanding), (60000, 60000));
        assert_eq!(line.next_retry_at, Some(99));
        assert_eq!(line.failure_reason.as_deref(), Some("insufficient_funds"));
        let over = assess_line(100, eur(), due, due, &[request("x", 150, S::Succeeded, 1)]);
        assert_eq!((over.collected, over.outstanding), (150, 0));
    }

    #[test]
    fn commission_rounds_half_up_in_integers() {
        assert_eq!(commission(120000, 800), 9600);
        assert_eq!(commission(12345, 800), 988); // 987.6
        assert_eq!(commission(1250, 100), 13); // 12.5 rounds up
        assert_eq!(commission(1249, 100), 12); // 12.49
        assert_eq!(commission(0, 800), 0);
        assert_eq!(commission(i64::MAX, 10_000), i64::MAX);
    }

    #[test]
    fn disbursement_statuses_in_order() {
        use DisbursementStatus as D;
        assert_eq!(disbursement_status(100, 100, 0, 0), D::Disbursed);
        assert_eq!(disbursement_status(100, 150, 0, 0), D::OverDisbursed);
        assert_eq!(disbursement_status(100, 50, 50, 100), D::InTransit);
        assert_eq!(disbursement_status(100, 50, 0, 100), D::PayoutFailed);
        assert_eq!(disbursement_status(100, 50, 0, 0), D::PartiallyDisbursed);
        assert_eq!(disbursement_status(100, 0, 0, 0), D::NotDisbursed);
    }
}
