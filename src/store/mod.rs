//! The storage boundary: every operation the rest of the program asks of a
//! database, in domain types ([`Storage`]), and the engine that does them.
//!
//! Only `sqlite/` holds SQL; `schema.sql` is the schema's single source of
//! truth. Handlers, ingest, reconciliation, reports and mail see `&dyn
//! Storage`, so a second engine implements the trait and nothing else changes.

mod credentials;
mod period;
mod records;
mod rent_roll;
mod rows;
mod sqlite;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::domain::{
    Event, EventState, ExpectedRent, LandlordContact, MailDraft, Object, Period, PropertyRent,
    StoredPayout, StoredRequest, Version,
};
use crate::rent_roll::{RentRoll, RentRollErrors};

pub use credentials::{Credentials, GeneratedCredential, keep_generated, stored_webhook_secret};
pub use records::{
    ClaimedMail, EventCursor, EventFilter, EventPage, ImportSummary, ObjectState, OutboxRow,
    PeriodData, QuarantinedEvent, RecordedException, SetBy, StoredEvent, SyncRun,
};
pub use sqlite::{ReadPool, SCHEMA_VERSION, Writer, migrate, open_read_pool, open_writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("the batch this write was in could not be committed: {0}")]
    BatchFailed(String),
    #[error("database content is not valid: {0}")]
    Corrupt(String),
    #[error("database file: {0}")]
    Io(std::io::Error),
    #[error("the write queue is full")]
    QueueFull,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error(
        "database schema version {found} is newer than this binary's {supported}: upgrade casapay-recon"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}

impl StoreError {
    /// Whether trying again later can succeed (503), as opposed to a bug or a
    /// damaged database (500).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::QueueFull
            | StoreError::ShuttingDown
            | StoreError::BatchFailed(_)
            | StoreError::Pool(_) => true,
            StoreError::Sqlite(error) => sqlite::is_transient(error),
            StoreError::Corrupt(_) | StoreError::SchemaTooNew { .. } | StoreError::Io(_) => false,
        }
    }
}

/// A stored value this binary cannot read: a bug or a damaged database, never "try again".
fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} `{value}` is not valid"))
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What the program asks of a database. Writes run inside the writer's
/// transaction (one event, its effect and its mails commit together); reads
/// on a read connection.
pub trait Storage {
    // The event log: every event as received, once, with what became of it.

    /// Stores `event` in `state` unless its id is already stored; whether it was new.
    /// An event without `created` is filed under its arrival second.
    fn insert_event(&self, event: &Event, state: &EventState, received_at_ms: i64) -> Result<bool>;
    /// Records a new state for a stored event (replay).
    fn set_event_state(&self, id: &str, state: &EventState) -> Result<()>;
    /// Where an event sits in the newest-first order, for `starting_after`.
    fn event_cursor(&self, id: &str) -> Result<Option<EventCursor>>;
    /// Stored events, newest first (by CasaPay's `created`, then by arrival).
    fn list_events(
        &self,
        filter: EventFilter<'_>,
        limit: usize,
        after: Option<EventCursor>,
    ) -> Result<EventPage>;
    /// Arrival number and body of stored events after `after_seq`, in arrival
    /// order (quarantined ones only, or all): what replay walks, a page at a time.
    fn events_after(
        &self,
        after_seq: i64,
        quarantined_only: bool,
        limit: usize,
    ) -> Result<Vec<(i64, String)>>;
    /// Quarantined events, newest first, at most `limit`.
    fn quarantined_events(&self, limit: usize) -> Result<Vec<QuarantinedEvent>>;
    fn count_quarantined(&self) -> Result<i64>;
    /// Events received in [from, until) (unix ms), counted by type.
    fn count_events_received(&self, from_ms: i64, until_ms: i64) -> Result<Vec<(String, i64)>>;

    // The newest known state of each PaymentRequest and Payout.

    /// The version of the stored state of `object`'s id, if any.
    fn object_version(&self, object: &Object) -> Result<Option<Version>>;
    /// Stores `object` as the newest state of its id.
    fn save_object(&self, object: &Object, set_by: SetBy<'_>) -> Result<()>;
    /// The stored state of `object`'s id, and its version (sync compares them).
    fn object_state(&self, object: &Object) -> Result<Option<(ObjectState, Version)>>;
    /// Empties the object tables, for a replay that rebuilds them from the log.
    fn clear_objects(&self) -> Result<()>;

    // The rent roll.

    /// Writes an imported rent roll, or nothing if the database refuses part of
    /// it (a payment agreement or bank account another property or landlord has).
    fn import_rent_roll(&self, roll: &RentRoll) -> Result<Result<ImportSummary, RentRollErrors>> {
        rent_roll::import(self, roll)
    }
    /// Upserts landlords, properties and lines (checked by `import_rent_roll`).
    fn write_rent_roll(&self, roll: &RentRoll) -> Result<()>;
    /// The properties other than `except_property` that keep `agreement`.
    fn agreement_holders(&self, agreement: &str, except_property: &str) -> Result<Vec<String>>;
    /// The properties a request can name: by `property_id`, and by `agreement`
    /// (without due dates: the caller loads those of the one it picks).
    fn property_candidates(
        &self,
        property_id: Option<&str>,
        agreement: Option<&str>,
    ) -> Result<(Option<PropertyRent>, Option<PropertyRent>)>;
    /// (period, due date) of a property's lines, all or those in `within` (inclusive).
    fn due_dates(
        &self,
        property_id: &str,
        within: Option<(Period, Period)>,
    ) -> Result<Vec<(Period, Date)>>;
    /// The landlord whose CasaPay bank account is `bank_account`.
    fn landlord_by_bank_account(&self, bank_account: &str) -> Result<Option<String>>;
    fn landlord_contact(&self, landlord_id: &str) -> Result<Option<LandlordContact>>;
    /// Learns a landlord's bank account from CasaPay, unless the rent roll
    /// gave one or another landlord has it; whether it was learned.
    fn learn_bank_account(&self, landlord_id: &str, bank_account: &str) -> Result<bool>;

    // Reconciliation's reads.

    /// Everything one period's reconciliation reads.
    fn load_period(&self, period: Period, timezone: &TimeZone) -> Result<PeriodData> {
        period::load(self, period, timezone)
    }
    /// The period's expected lines, with their properties.
    fn expected_rent(&self, period: Period) -> Result<Vec<ExpectedRent>>;
    /// Requests with `metadata.period` = `period`, and those without a period
    /// created in `undated_created` ([from, until), unix seconds).
    fn requests_of_period(
        &self,
        period: Period,
        undated_created: (i64, i64),
    ) -> Result<Vec<StoredRequest>>;
    /// Payouts with `metadata.period` = `period`, and those without a period
    /// created in `undated_created` ([from, until), unix seconds).
    fn payouts_of_period(
        &self,
        period: Period,
        undated_created: (i64, i64),
    ) -> Result<Vec<StoredPayout>>;
    /// Every period before `period` with expected rent, requests or payouts.
    fn periods_before(&self, period: &str) -> Result<Vec<String>>;

    // The mail outbox: queued with its cause, claimed by a worker, marked once sent.

    /// Queues one mail; a second for the same (cause, recipient) is ignored.
    fn queue_mail(&self, cause: &str, draft: &MailDraft, now_ms: i64) -> Result<bool>;
    /// Claims up to `limit` due mails until `lease_until_ms` (only those of
    /// `cause`, when given). A lapsed claim (its worker died) is due again.
    fn claim_due_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
        cause: Option<&str>,
    ) -> Result<Vec<ClaimedMail>>;
    /// Makes every claimed mail due at once: only for the database's one worker, starting.
    fn release_claims(&self, now_ms: i64) -> Result<usize>;
    fn mark_mail_sent(&self, id: i64, now_ms: i64) -> Result<()>;
    /// Records a failed attempt: due again at `retry_at_ms`, or `failed` for good.
    fn mark_mail_failed(&self, id: i64, error: &str, retry_at_ms: Option<i64>) -> Result<()>;
    /// Puts failed mail back in the queue (all of it, or `ids`); how many.
    fn requeue_failed_mail(&self, ids: &[i64], now_ms: i64) -> Result<usize>;
    /// Mail in a status (or not yet sent, with `None`), oldest first.
    fn list_outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>>;
    /// Mail waiting to be sent: queued, or claimed and not yet marked.
    fn outbox_depth(&self) -> Result<i64>;

    // Daily reports and sync runs.

    /// The newest date a report was recorded for.
    fn last_daily_report(&self) -> Result<Option<String>>;
    /// The exceptions of the newest recorded report before `date`, with its date.
    fn previous_report_exceptions(
        &self,
        date: &str,
    ) -> Result<Option<(String, Vec<RecordedException>)>>;
    /// Records the report for `date`, its exceptions and its mails, once:
    /// false (queuing nothing) if that date was already recorded.
    fn record_daily_report(
        &self,
        date: &str,
        exceptions: &[RecordedException],
        drafts: &[MailDraft],
        now_ms: i64,
    ) -> Result<bool>;
    fn record_sync_run(&self, run: &SyncRun, started_at_ms: i64) -> Result<()>;
    fn last_sync_run(&self) -> Result<Option<SyncRun>>;

    // Settings kept by the service itself.

    fn read_setting(&self, key: &str) -> Result<Option<String>>;
    /// Keeps a setting once; an existing value is an error, never overwritten.
    fn insert_setting(&self, key: &str, value: &str) -> Result<()>;
    /// Proves the database takes writes, for `/readyz`.
    fn record_heartbeat(&self, now_ms: i64) -> Result<()>;
}
