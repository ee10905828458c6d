//! The values that cross the storage boundary: what the operations of
//! [`super::Storage`] take and give back, whatever the engine.

use jiff::civil::Date;
use serde::Serialize;

use crate::domain::{ExpectedRent, MailKind, MailMessage, Object, Period, StoredRequest, Version};

/// Where an event sits in the newest-first order, for `starting_after`.
#[derive(Debug, Clone, Copy)]
pub struct EventCursor {
    pub(in crate::store) created: i64,
    pub(in crate::store) seq: i64,
}

/// A stored event as the API lists it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub body: String,
    pub state: String,
    pub reason: Option<String>,
}

/// Stored events, newest first (by CasaPay's `created`, then by arrival).
#[derive(Debug)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub has_more: bool,
}

/// Filters of an event listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    pub kind: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// An event waiting in quarantine.
#[derive(Debug, Clone)]
pub struct QuarantinedEvent {
    pub id: String,
    pub kind: String,
    pub reason: Option<String>,
    pub received_at_ms: i64,
}

/// What set a stored state: the event (or sync snapshot) and its type.
#[derive(Debug, Clone, Copy)]
pub struct SetBy<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub version: Version,
}

/// The part of an object's state sync compares: its status, and for a
/// request its attempts and retry date (a failed attempt keeps the status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub status: String,
    pub attempts: Option<i64>,
    pub next_retry_at: Option<i64>,
}

impl ObjectState {
    pub fn of(object: &Object) -> Self {
        match object {
            Object::PaymentRequest(pr) => Self {
                status: pr.status.as_str().to_string(),
                attempts: pr.attempts,
                next_retry_at: pr.next_retry_at,
            },
            Object::Payout(po) => Self {
                status: po.status.as_str().to_string(),
                attempts: None,
                next_retry_at: None,
            },
        }
    }
}

/// A mail claimed for sending.
#[derive(Debug, Clone)]
pub struct ClaimedMail {
    pub id: i64,
    pub recipient: String,
    /// Its kind and message, or why the stored row cannot be read.
    pub mail: Result<(MailKind, MailMessage), String>,
    pub attempts: u32,
}

/// A row of `outbox list`.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub status: String,
    pub kind: String,
    pub recipient: String,
    /// Its kind and message, or why the stored row cannot be read.
    pub mail: Result<(MailKind, MailMessage), String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub cause: String,
}

/// One step of a period's reconciliation read ([`super::Storage::visit_period`]).
#[derive(Debug, Clone)]
pub enum PeriodItem {
    /// One of the period's lines, in (landlord, property) order, with the
    /// requests whose property ([`crate::matching::property_of`]) is the line's.
    Line(ExpectedRent, Vec<PlacedRequest>),
    /// A request of the period whose property has no line in it, or that is
    /// for no property of the rent roll: after every line, by id.
    Unplaced(PlacedRequest),
}

/// A request of the period (its `metadata.period`, or undated and created
/// within [`UNDATED_MARGIN_DAYS`] of it), and what matching reads of its property.
#[derive(Debug, Clone)]
pub struct PlacedRequest {
    pub stored: StoredRequest,
    /// `None`: the request is for no property. Otherwise, for an undated
    /// request, its property's due dates within three months of the period.
    pub due_dates: Option<Vec<(Period, Date)>>,
}

/// How far outside its month an undated request may be created and still match
/// one of its lines (the matching window, plus a day for time zones).
pub(in crate::store) const UNDATED_MARGIN_DAYS: i64 = crate::matching::PERIOD_WINDOW_DAYS + 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Expected lines written (one per property and month).
    pub lines: usize,
    pub properties: usize,
    pub landlords: usize,
}

/// An exception as a recorded report kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedException {
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub since: String,
}

/// A finished sync run, as the daily report reads it.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub id: String,
    pub finished_at_ms: i64,
    pub read: i64,
    pub changed: i64,
    pub error: Option<String>,
}
