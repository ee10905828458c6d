//! Rows as an engine reads them, before they are domain values: decoding
//! checks every stored text (currency, status, date) once, for every engine.
//! A value that does not decode is a bug or a damaged database (500), never
//! "try again".

use std::str::FromStr;

use jiff::civil::Date;

use super::period::PlacedRow;
use super::{PlacedRequest, StoreError, corrupt};
use crate::domain::{
    Currency, Event, ExpectedRent, LandlordId, MailKind, MailMessage, Money, PaymentRequest,
    PaymentRequestStatus, Payout, PayoutStatus, Period, PropertyId, RETRYING_EVENT_TYPE,
    StatusRank, StoredPayout, StoredRequest, Version,
};

/// Where an event came from: a sync writes snapshots as `*.synced` events.
pub(super) fn source_of(event: &Event) -> &'static str {
    if event.kind.ends_with(".synced") {
        "sync"
    } else {
        "webhook"
    }
}

pub(super) fn money(amount: i64, code: &str) -> Result<Money, StoreError> {
    let currency = Currency::parse(code).map_err(|_| corrupt("currency", code))?;
    Money::new(amount, currency).map_err(|_| corrupt("amount", &amount.to_string()))
}

pub(super) fn period(text: &str) -> Result<Period, StoreError> {
    text.parse().map_err(|_| corrupt("period", text))
}

pub(super) fn date(text: &str) -> Result<Date, StoreError> {
    Date::from_str(text).map_err(|_| corrupt("due date", text))
}

/// An expected line joined with its property.
pub(super) struct ExpectedRow {
    pub property_id: PropertyId,
    pub landlord_id: LandlordId,
    pub amount: i64,
    pub currency: String,
    pub due_date: String,
    pub commission_bps: i64,
    pub payment_agreement: Option<String>,
    pub property_name: Option<String>,
}

impl ExpectedRow {
    pub fn decode(self, period: Period) -> Result<ExpectedRent, StoreError> {
        Ok(ExpectedRent {
            amount: money(self.amount, &self.currency)?,
            due_date: date(&self.due_date)?,
            commission_bps: u32::try_from(self.commission_bps)
                .map_err(|_| corrupt("commission", &self.commission_bps.to_string()))?,
            property_id: self.property_id,
            landlord_id: self.landlord_id,
            period,
            payment_agreement: self.payment_agreement,
            property_name: self.property_name,
        })
    }
}

/// A stored PaymentRequest with the version that set it.
pub(super) struct RequestRow {
    pub id: String,
    pub payment_agreement: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub attempts: Option<i64>,
    pub next_retry_at: Option<i64>,
    pub payment_method_used: Option<String>,
    pub property_id: Option<String>,
    pub period: Option<String>,
    pub created: i64,
    pub event_created: i64,
    pub status_rank: i64,
    pub last_event_type: Option<String>,
}

fn rank(value: i64) -> Result<StatusRank, StoreError> {
    u8::try_from(value)
        .map(StatusRank)
        .map_err(|_| corrupt("status rank", &value.to_string()))
}

impl RequestRow {
    pub fn decode(self) -> Result<StoredRequest, StoreError> {
        let status = PaymentRequestStatus::parse(&self.status)
            .ok_or_else(|| corrupt("status", &self.status))?;
        Ok(StoredRequest {
            version: Version {
                created: self.event_created,
                rank: rank(self.status_rank)?,
            },
            set_by_retrying_event: self.last_event_type.as_deref() == Some(RETRYING_EVENT_TYPE),
            request: PaymentRequest {
                amount: money(self.amount, &self.currency)?,
                status,
                id: self.id,
                payment_agreement: self.payment_agreement,
                failure_reason: self.failure_reason,
                attempts: self.attempts,
                next_retry_at: self.next_retry_at,
                payment_method_used: self.payment_method_used,
                // Stored before ids were checked: a metadata id that is not one never matched.
                property_id: self.property_id.and_then(|id| PropertyId::parse(id).ok()),
                period: self.period,
                description: None,
                created: self.created,
            },
        })
    }
}

/// A request of a period's read: its row, the property it is for and that
/// property's line in the period (its landlord), and for an undated request
/// the property's nearby due dates as `YYYY-MM YYYY-MM-DD` joined by commas.
pub(super) struct PlacedRequestRow {
    pub request: RequestRow,
    pub property: Option<PropertyId>,
    pub line_landlord: Option<LandlordId>,
    pub due_dates: Option<String>,
}

impl PlacedRequestRow {
    pub fn decode(self) -> Result<PlacedRow, StoreError> {
        let stored = self.request.decode()?;
        let due_dates = match (&self.property, self.due_dates) {
            (None, _) => None,
            (Some(_), None) => Some(Vec::new()),
            (Some(_), Some(text)) => Some(
                text.split(',')
                    .map(|pair| {
                        let (month, due) = pair
                            .split_once(' ')
                            .ok_or_else(|| corrupt("due date", pair))?;
                        Ok((period(month)?, date(due)?))
                    })
                    .collect::<Result<_, StoreError>>()?,
            ),
        };
        Ok(PlacedRow {
            line: self.line_landlord.zip(self.property),
            request: PlacedRequest { stored, due_dates },
        })
    }
}

/// A stored Payout with the version that set it.
pub(super) struct PayoutRow {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub destination: Option<String>,
    pub arrival_date: Option<i64>,
    pub failure_reason: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub landlord_id: Option<String>,
    pub period: Option<String>,
    pub created: i64,
    pub event_created: i64,
    pub status_rank: i64,
}

impl PayoutRow {
    pub fn decode(self) -> Result<StoredPayout, StoreError> {
        let status = PayoutStatus::parse(&self.status)
            .ok_or_else(|| corrupt("payout status", &self.status))?;
        Ok(StoredPayout {
            version: Version {
                created: self.event_created,
                rank: rank(self.status_rank)?,
            },
            payout: Payout {
                amount: money(self.amount, &self.currency)?,
                status,
                id: self.id,
                destination: self.destination,
                arrival_date: self.arrival_date,
                failure_reason: self.failure_reason,
                failure_code: self.failure_code,
                failure_message: self.failure_message,
                landlord_id: self.landlord_id.and_then(|id| LandlordId::parse(id).ok()),
                period: self.period,
                description: None,
                created: self.created,
            },
        })
    }
}

/// A queued mail's message as it is stored: JSON.
pub(super) fn message_json(message: &MailMessage) -> String {
    serde_json::to_string(message).expect("a mail message serialises")
}

/// A stored mail's kind and message; a row that does not decode is named,
/// and fails its mail alone.
pub(super) fn mail(kind: &str, json: &str) -> Result<(MailKind, MailMessage), String> {
    let kind = MailKind::parse(kind)
        .ok_or_else(|| format!("the stored kind `{kind}` is not a mail kind"))?;
    let message = serde_json::from_str(json)
        .map_err(|e| format!("the stored message does not decode: {e}"))?;
    Ok((kind, message))
}
