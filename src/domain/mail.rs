//! Mail: which message, to whom, and the key that makes it go once.

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

    /// Failures are copied to operations.
    pub fn copies_operations(self) -> bool {
        matches!(self, MailKind::CollectionFailed | MailKind::PayoutFailed)
    }
}

/// A rendered mail for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDraft {
    pub kind: MailKind,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}
