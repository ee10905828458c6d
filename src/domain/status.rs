//! Statuses of CasaPay objects, and the order SPEC §3 uses to break ties.

use serde::{Deserialize, Serialize};

/// pending < processing < in_transit < any final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
