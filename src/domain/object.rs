//! CasaPay's objects as the service keeps them: PaymentRequests and Payouts,
//! and the version that decides which of two states is newer (SPEC §3 Order).

use super::{LandlordId, Money, PaymentRequestStatus, PayoutStatus, PropertyId, StatusRank};

/// `created` of the event (or sync fetch) that set a state, then its status
/// rank: the greater version is the newer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub created: i64,
    pub rank: StatusRank,
}

impl Version {
    /// SPEC §3 "Order": a strictly greater version wins; an equal one is the
    /// same state again and changes nothing.
    pub fn supersedes(self, stored: Option<Version>) -> bool {
        stored.is_none_or(|stored| self > stored)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub id: String,
    pub payment_agreement: Option<String>,
    pub amount: Money,
    pub status: PaymentRequestStatus,
    pub failure_reason: Option<String>,
    /// Attempts CasaPay has made (of 3).
    pub attempts: Option<i64>,
    pub next_retry_at: Option<i64>,
    pub payment_method_used: Option<String>,
    /// `metadata.property_id` (ignored unless it is an id), `metadata.period`
    /// (as sent); bulk requests have neither.
    pub property_id: Option<PropertyId>,
    pub period: Option<String>,
    pub description: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payout {
    pub id: String,
    pub amount: Money,
    pub status: PayoutStatus,
    /// The bank account (`ba_…`) it goes to.
    pub destination: Option<String>,
    pub arrival_date: Option<i64>,
    pub failure_reason: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// `metadata.landlord_id` (ignored unless it is an id), `metadata.period`
    /// (the quickstart's payout has neither).
    pub landlord_id: Option<LandlordId>,
    pub period: Option<String>,
    pub description: Option<String>,
    pub created: i64,
}

impl Payout {
    /// SPEC §5: `failure_reason`, else `failure_message`, else `failure_code`.
    pub fn failure(&self) -> Option<&str> {
        self.failure_reason
            .as_deref()
            .or(self.failure_message.as_deref())
            .or(self.failure_code.as_deref())
    }
}

/// One of CasaPay's objects in a given state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    PaymentRequest(PaymentRequest),
    Payout(Payout),
}

impl Object {
    pub fn id(&self) -> &str {
        match self {
            Object::PaymentRequest(pr) => &pr.id,
            Object::Payout(po) => &po.id,
        }
    }

    pub fn status_rank(&self) -> StatusRank {
        match self {
            Object::PaymentRequest(pr) => pr.status.rank(),
            Object::Payout(po) => po.status.rank(),
        }
    }
}

/// The event type by which CasaPay says an attempt failed and another comes.
pub const RETRYING_EVENT_TYPE: &str = "payment_request.retrying";

/// A PaymentRequest as stored: its newest state and what set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub request: PaymentRequest,
    pub version: Version,
    /// The event that set this state was `payment_request.retrying`: CasaPay
    /// said an attempt failed and another comes.
    pub set_by_retrying_event: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayout {
    pub payout: Payout,
    pub version: Version,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(created: i64, rank: u8) -> Version {
        Version {
            created,
            rank: StatusRank(rank),
        }
    }

    #[test]
    fn newer_versions_win_and_ties_go_to_the_later_status() {
        assert!(version(5, 0).supersedes(None));
        assert!(
            version(6, 0).supersedes(Some(version(5, 3))),
            "newer created wins even with a lower status"
        );
        assert!(
            !version(5, 3).supersedes(Some(version(6, 0))),
            "older created never wins"
        );
        assert!(
            version(5, 3).supersedes(Some(version(5, 1))),
            "tie: later status wins"
        );
        assert!(
            !version(5, 1).supersedes(Some(version(5, 3))),
            "tie: earlier status loses"
        );
        assert!(
            !version(5, 3).supersedes(Some(version(5, 3))),
            "same version changes nothing"
        );
    }
}
