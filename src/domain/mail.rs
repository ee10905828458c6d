//! Mail: which message, to whom, and the values it is worded from.

use serde::{Deserialize, Serialize};

use super::{Money, Period};

/// Every message the service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    RentReceived,
    CollectionRetrying,
    CollectionFailed,
    PayoutPaid,
    PayoutFailed,
    DailyReport,
}

impl MailKind {
    pub const ALL: [MailKind; 6] = [
        MailKind::RentReceived,
        MailKind::CollectionRetrying,
        MailKind::CollectionFailed,
        MailKind::PayoutPaid,
        MailKind::PayoutFailed,
        MailKind::DailyReport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::RentReceived => "rent_received",
            MailKind::CollectionRetrying => "collection_retrying",
            MailKind::CollectionFailed => "collection_failed",
            MailKind::PayoutPaid => "payout_paid",
            MailKind::PayoutFailed => "payout_failed",
            MailKind::DailyReport => "daily_report",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Failures are copied to operations.
    pub fn copies_operations(self) -> bool {
        matches!(self, MailKind::CollectionFailed | MailKind::PayoutFailed)
    }
}

/// What a PaymentRequest's mail is worded from: the values of the state it
/// announces, kept when the mail is queued, so that the message sent later
/// says what was true then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFacts {
    pub request_id: String,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_used: Option<String>,
    /// (property shown, period) of the matched line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<(String, Period)>,
    /// When CasaPay retries (unix seconds), and whether that is estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<(i64, bool)>,
}

/// What a Payout's mail is worded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutFacts {
    pub payout_id: String,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival_date: Option<i64>,
    /// SPEC §5's failure reason (`failure_reason`, else message, else code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// A queued mail's message: the values a landlord mail is worded from when
/// it is sent (a few dozen bytes, not the rendered text and HTML), or a
/// message rendered when queued (the daily report is a snapshot of its day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailMessage {
    Request {
        #[serde(flatten)]
        facts: RequestFacts,
        /// Whom the greeting names; none for operations.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        greet: Option<String>,
    },
    Payout {
        #[serde(flatten)]
        facts: PayoutFacts,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        greet: Option<String>,
    },
    Rendered {
        subject: String,
        text: String,
        html: String,
    },
}

/// One mail to queue: for one recipient, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDraft {
    pub kind: MailKind,
    pub recipient: String,
    pub message: MailMessage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn kinds_parse_back_from_their_names() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("rent"), None);
    }

    #[test]
    fn a_message_keeps_its_values_through_json_and_stays_small() {
        let message = MailMessage::Request {
            facts: RequestFacts {
                request_id: "preq_1".into(),
                amount: Money::new(120000, Currency::parse("eur").unwrap()).unwrap(),
                failure_reason: Some("insufficient_funds".into()),
                attempts: Some(2),
                payment_method_used: None,
                line: Some(("12 Oak St".into(), "2025-03".parse().unwrap())),
                next_retry: Some((1_742_859_000, true)),
            },
            greet: Some("Ana".into()),
        };
        let json = serde_json::to_string(&message).unwrap();
        assert_eq!(
            json,
            r#"{"request":{"request_id":"preq_1","amount":[120000,"eur"],"failure_reason":"insufficient_funds","attempts":2,"line":["12 Oak St","2025-03"],"next_retry":[1742859000,true],"greet":"Ana"}}"#
        );
        assert_eq!(serde_json::from_str::<MailMessage>(&json).unwrap(), message);
    }
}
