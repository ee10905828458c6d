//! Statuses of CasaPay objects, and the order SPEC §3 uses to break ties.

use serde::{Deserialize, Serialize};

/// pending < processing < in_transit < any final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusRank(pub u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRequestStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Cancelled,
}

impl PaymentRequestStatus {
    pub fn rank(self) -> StatusRank {
        StatusRank(match self {
            Self::Pending => 0,
            Self::Processing => 1,
            Self::Succeeded | Self::Failed | Self::Cancelled => 3,
        })
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Pending,
    InTransit,
    Paid,
    Failed,
    Canceled,
}

impl PayoutStatus {
    pub fn rank(self) -> StatusRank {
        StatusRank(match self {
            Self::Pending => 0,
            Self::InTransit => 2,
            Self::Paid | Self::Failed | Self::Canceled => 3,
        })
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "in_transit" => Self::InTransit,
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InTransit => "in_transit",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// A reconciliation line's status (SPEC §5): the first that holds, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub const ALL: [LineStatus; 10] = [
        LineStatus::Paid,
        LineStatus::Overpaid,
        LineStatus::CurrencyMismatch,
        LineStatus::Retrying,
        LineStatus::Pending,
        LineStatus::Partial,
        LineStatus::Failed,
        LineStatus::Cancelled,
        LineStatus::Overdue,
        LineStatus::Unpaid,
    ];

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

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The exception a line in this status raises, if it needs a person.
    /// A stalled retry is told apart by the caller (it needs the date).
    pub fn exception(self) -> Option<ExceptionKind> {
        Some(match self {
            LineStatus::Failed => ExceptionKind::Failed,
            LineStatus::Retrying => ExceptionKind::Retrying,
            LineStatus::Partial => ExceptionKind::Partial,
            LineStatus::Overpaid => ExceptionKind::Overpaid,
            LineStatus::CurrencyMismatch => ExceptionKind::CurrencyMismatch,
            LineStatus::Overdue => ExceptionKind::Overdue,
            _ => return None,
        })
    }
}

/// A landlord's payout status for a period and currency (SPEC §5).
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

/// What the daily report lists as needing a person (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    Failed,
    Retrying,
    RetryStalled,
    Partial,
    Overpaid,
    CurrencyMismatch,
    Overdue,
    Unmatched,
    PayoutFailed,
    UnallocatedPayout,
    UnmatchedPayout,
    QuarantinedEvent,
    UndeliverableMail,
    SyncFailed,
    BalanceShort,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 15] = [
        ExceptionKind::Failed,
        ExceptionKind::Retrying,
        ExceptionKind::RetryStalled,
        ExceptionKind::Partial,
        ExceptionKind::Overpaid,
        ExceptionKind::CurrencyMismatch,
        ExceptionKind::Overdue,
        ExceptionKind::Unmatched,
        ExceptionKind::PayoutFailed,
        ExceptionKind::UnallocatedPayout,
        ExceptionKind::UnmatchedPayout,
        ExceptionKind::QuarantinedEvent,
        ExceptionKind::UndeliverableMail,
        ExceptionKind::SyncFailed,
        ExceptionKind::BalanceShort,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Failed => "failed",
            ExceptionKind::Retrying => "retrying",
            ExceptionKind::RetryStalled => "retry_stalled",
            ExceptionKind::Partial => "partial",
            ExceptionKind::Overpaid => "overpaid",
            ExceptionKind::CurrencyMismatch => "currency_mismatch",
            ExceptionKind::Overdue => "overdue",
            ExceptionKind::Unmatched => "unmatched",
            ExceptionKind::PayoutFailed => "payout_failed",
            ExceptionKind::UnallocatedPayout => "unallocated_payout",
            ExceptionKind::UnmatchedPayout => "unmatched_payout",
            ExceptionKind::QuarantinedEvent => "quarantined_event",
            ExceptionKind::UndeliverableMail => "undeliverable_mail",
            ExceptionKind::SyncFailed => "sync_failed",
            ExceptionKind::BalanceShort => "balance_short",
        }
    }
}
