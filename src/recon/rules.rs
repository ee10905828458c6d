//! SPEC §5's rules, as pure functions: no database, no clock.

use jiff::civil::Date;

use crate::domain::{
    Currency, DisbursementStatus, LineStatus, PaymentRequestStatus, StoredRequest,
};

/// CasaPay tries again 24 h after a first failed attempt and 72 h after a second.
const RETRY_AFTER_FIRST_FAILURE: i64 = 24 * 3600;
const RETRY_AFTER_SECOND_FAILURE: i64 = 72 * 3600;
/// A retry this late is stalled: CasaPay should have tried by then.
const STALLED_AFTER: i64 = 24 * 3600;

/// SPEC §5: a request not final that has failed an attempt — CasaPay says
/// when it retries, or its newest applied event was `payment_request.retrying`.
pub fn is_retrying(stored: &StoredRequest) -> bool {
    let request = &stored.request;
    matches!(
        request.status,
        PaymentRequestStatus::Pending | PaymentRequestStatus::Processing
    ) && (request.next_retry_at.is_some() || stored.set_by_retrying_event)
}

/// When CasaPay tries a retrying request again, and whether that is estimated:
/// its `next_retry_at`, else CasaPay's schedule counted from the retrying
/// event's `created` (+24 h after the first failure, +72 h after the second).
pub fn next_retry(stored: &StoredRequest) -> Option<(i64, bool)> {
    if !is_retrying(stored) {
        return None;
    }
    if let Some(at) = stored.request.next_retry_at {
        return Some((at, false));
    }
    let delay = if stored.request.attempts.unwrap_or(1) >= 2 {
        RETRY_AFTER_SECOND_FAILURE
    } else {
        RETRY_AFTER_FIRST_FAILURE
    };
    Some((stored.version.created.saturating_add(delay), true))
}

/// A line's figures and status, with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAssessment {
    pub collected: i64,
    pub outstanding: i64,
    pub status: LineStatus,
    pub next_retry_at: Option<i64>,
    pub next_retry_estimated: bool,
    pub retry_stalled: bool,
    pub failure_reason: Option<String>,
    /// Of the newest matched request.
    pub attempts: Option<i64>,
    pub payment_method_used: Option<String>,
}

/// The instant that decides lateness: `as_of` and the unix second its day starts.
#[derive(Debug, Clone, Copy)]
pub struct AsOf {
    pub date: Date,
    pub start: i64,
}

/// Collected, outstanding and status of one expected line: the first status that holds.
pub fn assess_line(
    expected: i64,
    currency: Currency,
    due_date: Date,
    as_of: AsOf,
    matched: &[StoredRequest],
) -> LineAssessment {
    use PaymentRequestStatus as S;
    let succeeded = || matched.iter().filter(|r| r.request.status == S::Succeeded);
    let collected = succeeded()
        .filter(|r| r.request.amount.currency() == currency)
        .fold(0_i64, |sum, r| sum.saturating_add(r.request.amount.minor()));
    let retrying = matched.iter().find(|r| is_retrying(r));
    let newest = matched
        .iter()
        .max_by_key(|r| (r.request.created, r.version, r.request.id.as_str()));
    let newest_is = |status: S| newest.is_some_and(|r| r.request.status == status);
    let status = if collected == expected {
        LineStatus::Paid
    } else if collected > expected {
        LineStatus::Overpaid
    } else if succeeded().any(|r| r.request.amount.currency() != currency) {
        LineStatus::CurrencyMismatch
    } else if retrying.is_some() {
        LineStatus::Retrying
    } else if matched
        .iter()
        .any(|r| matches!(r.request.status, S::Pending | S::Processing))
    {
        LineStatus::Pending
    } else if collected > 0 {
        LineStatus::Partial
    } else if newest_is(S::Failed) {
        LineStatus::Failed
    } else if newest_is(S::Cancelled) {
        LineStatus::Cancelled
    } else if as_of.date > due_date {
        LineStatus::Overdue
    } else {
        LineStatus::Unpaid
    };
    let (next_retry_at, next_retry_estimated) = match (status, retrying.and_then(next_retry)) {
        (LineStatus::Retrying, Some((at, estimated))) => (Some(at), estimated),
        _ => (None, false),
    };
    let failure_reason = match status {
        LineStatus::Retrying => retrying.and_then(|r| r.request.failure_reason.clone()),
        LineStatus::Failed => newest.and_then(|r| r.request.failure_reason.clone()),
        _ => None,
    };
    LineAssessment {
        collected,
        outstanding: expected.saturating_sub(collected).max(0),
        status,
        next_retry_at,
        next_retry_estimated,
        retry_stalled: next_retry_at
            .is_some_and(|at| at.saturating_add(STALLED_AFTER) < as_of.start),
        failure_reason,
        attempts: newest.and_then(|r| r.request.attempts),
        payment_method_used: newest.and_then(|r| r.request.payment_method_used.clone()),
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
    use crate::domain::{Money, PaymentRequest, StatusRank, Version};

    fn eur() -> Currency {
        Currency::parse("eur").unwrap()
    }

    fn request(id: &str, amount: i64, status: PaymentRequestStatus, created: i64) -> StoredRequest {
        StoredRequest {
            request: PaymentRequest {
                id: id.into(),
                payment_agreement: None,
                amount: Money::new(amount, eur()).unwrap(),
                status,
                failure_reason: None,
                attempts: None,
                next_retry_at: None,
                payment_method_used: None,
                property_id: None,
                period: None,
                description: None,
                created,
            },
            version: Version {
                created,
                rank: status.rank(),
            },
            set_by_retrying_event: false,
        }
    }

    fn as_of(date: &str) -> AsOf {
        let date: Date = date.parse().unwrap();
        AsOf {
            date,
            start: date
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second(),
        }
    }

    fn assess(matched: &[StoredRequest], date: &str) -> LineAssessment {
        let due: Date = "2025-03-01".parse().unwrap();
        assess_line(120000, eur(), due, as_of(date), matched)
    }

    fn status(matched: &[StoredRequest], date: &str) -> LineStatus {
        assess(matched, date).status
    }

    use PaymentRequestStatus as S;

    #[test]
    fn each_status_in_precedence_order() {
        let paid = request("a", 120000, S::Succeeded, 1);
        let half = request("b", 60000, S::Succeeded, 2);
        let mut retrying = request("c", 120000, S::Processing, 3);
        retrying.request.next_retry_at = Some(99);
        retrying.request.failure_reason = Some("insufficient_funds".into());
        let mut gbp = request("d", 120000, S::Succeeded, 4);
        gbp.request.amount = Money::new(120000, Currency::parse("gbp").unwrap()).unwrap();
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
    fn retrying_is_a_failed_attempt_pending_or_processing() {
        let mut back_to_pending = request("p", 120000, S::Pending, 10);
        back_to_pending.request.next_retry_at = Some(1_000);
        assert_eq!(
            status(&[back_to_pending], "2025-03-20"),
            LineStatus::Retrying
        );
        let mut told_by_event = request("q", 120000, S::Processing, 10);
        told_by_event.set_by_retrying_event = true;
        assert_eq!(status(&[told_by_event], "2025-03-20"), LineStatus::Retrying);
        assert_eq!(
            status(&[request("r", 120000, S::Processing, 10)], "2025-03-20"),
            LineStatus::Pending,
            "processing without a failed attempt is pending"
        );
    }

    #[test]
    fn retry_dates_are_estimated_from_casapays_schedule_when_absent() {
        let mut first = request("q", 120000, S::Processing, 1_000);
        first.set_by_retrying_event = true;
        assert_eq!(next_retry(&first), Some((1_000 + 24 * 3600, true)));
        first.request.attempts = Some(2);
        assert_eq!(next_retry(&first), Some((1_000 + 72 * 3600, true)));
        first.request.next_retry_at = Some(5);
        assert_eq!(next_retry(&first), Some((5, false)));
        assert_eq!(next_retry(&request("s", 1, S::Succeeded, 1)), None);
    }

    #[test]
    fn a_retry_more_than_a_day_late_is_stalled() {
        let retry_at = as_of("2025-03-10").start;
        let mut retrying = request("c", 120000, S::Processing, 3);
        retrying.request.next_retry_at = Some(retry_at);
        let on_time = assess(std::slice::from_ref(&retrying), "2025-03-11");
        assert_eq!(on_time.status, LineStatus::Retrying);
        assert!(
            !on_time.retry_stalled,
            "exactly 24 h late is not yet stalled"
        );
        assert!(assess(&[retrying], "2025-03-12").retry_stalled);
    }

    #[test]
    fn amounts_and_details() {
        let mut retrying = request("c", 120000, S::Processing, 3);
        retrying.request.next_retry_at = Some(99);
        retrying.request.failure_reason = Some("insufficient_funds".into());
        retrying.request.attempts = Some(1);
        retrying.request.payment_method_used = Some("direct_debit".into());
        let half = request("b", 60000, S::Succeeded, 2);
        let line = assess(&[half, retrying], "2025-03-01");
        assert_eq!((line.collected, line.outstanding), (60000, 60000));
        assert_eq!(line.next_retry_at, Some(99));
        assert!(!line.next_retry_estimated);
        assert_eq!(line.failure_reason.as_deref(), Some("insufficient_funds"));
        assert_eq!(line.attempts, Some(1));
        assert_eq!(line.payment_method_used.as_deref(), Some("direct_debit"));
        let due: Date = "2025-03-01".parse().unwrap();
        let over = request("x", 150, S::Succeeded, 1);
        let over = assess_line(100, eur(), due, as_of("2025-03-01"), &[over]);
        assert_eq!((over.collected, over.outstanding), (150, 0));
        assert_eq!(StatusRank(3), S::Succeeded.rank());
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
