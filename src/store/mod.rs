//! The storage boundary: every operation the rest of the program asks of a
//! database, in domain types ([`Storage`]), and the engine that does them.
//!
//! Only the engines hold SQL: `sqlite/` (the default, one instance; its
//! schema `schema.sql`) and `postgres/` (several instances; `schema.postgres.sql`). Handlers, ingest, reconciliation, reports and mail see `&dyn
//! Storage`, so a second engine implements the trait and nothing else changes.

mod credentials;
mod period;
mod postgres;
mod records;
mod rent_roll;
mod rows;
mod sqlite;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::domain::{
    Event, EventState, LandlordContact, LandlordId, MailDraft, Object, Period, PropertyRent,
    StoredPayout, Version,
};
use crate::rent_roll::{RentRoll, RentRollErrors};

pub use credentials::{Credentials, GeneratedCredential, keep_generated, stored_webhook_secret};
pub use records::{
    ClaimedMail, EventCursor, EventFilter, EventPage, ImportSummary, ObjectState, OutboxRow,
    PeriodItem, PlacedRequest, QuarantinedEvent, RecordedException, SetBy, StoredEvent, SyncRun,
};
pub use sqlite::{SCHEMA_VERSION, migrate, open_writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("database settings: {0}")]
    Config(String),
    #[error(transparent)]
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
            StoreError::Postgres(error) => postgres::is_transient(error),
            StoreError::Corrupt(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Io(_)
            | StoreError::Config(_) => false,
        }
    }
}

/// A stored value this binary cannot read: a bug or a damaged database, never "try again".
fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} `{value}` is not valid"))
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the data lives: `CASAPAY_DATABASE` is a file path (SQLite) or a
/// `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Shown without a password: a URL's `user:password@` and `password=` are masked.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

fn redact(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) if user.contains(':') => {
                let name = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{name}:***@{host}")
            }
            _ => base.to_string(),
        },
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some(("password", _)) => "password=***".to_string(),
                _ => param.to_string(),
            })
            .collect();
        shown = format!("{shown}?{}", params.join("&"));
    }
    shown
}

impl Location {
    pub fn of(setting: &Path) -> Self {
        let text = setting.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.into_owned())
        } else {
            Location::Sqlite(setting.to_path_buf())
        }
    }
}

/// How to open a database.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long a write waits for a lock or a connection.
    pub wait: Duration,
    /// Writes that may wait at once before one is refused (503).
    pub write_queue: usize,
    /// Most writes one SQLite commit takes (group commit).
    pub write_batch: usize,
}

/// An open, migrated database.
pub enum Database {
    Sqlite {
        path: PathBuf,
        options: Options,
        reads: sqlite::ReadPool,
    },
    Postgres {
        pool: postgres::Pool,
        options: Options,
    },
}

impl Database {
    /// Opens the database, creating and migrating it as needed.
    pub fn open(location: &Location, options: Options) -> Result<Self> {
        match location {
            Location::Sqlite(path) => {
                let mut conn = sqlite::open_writer(path, options.wait)?;
                sqlite::migrate(&mut conn)?;
                Ok(Database::Sqlite {
                    path: path.clone(),
                    options,
                    reads: sqlite::open_read_pool(path, options.wait, 8)?,
                })
            }
            Location::Postgres(url) => Ok(Database::Postgres {
                pool: postgres::Pool::open(url, 16, options.wait)?,
                options,
            }),
        }
    }

    /// Whether this process is the database's only user (SQLite): what a
    /// killed process had claimed can be released at start.
    pub fn single_instance(&self) -> bool {
        matches!(self, Database::Sqlite { .. })
    }

    /// Runs `work` in one transaction now, on this thread: for start-up and
    /// commands, apart from the service's writer.
    pub fn transaction<T: Send>(
        &self,
        work: impl FnOnce(&dyn Storage) -> Result<T> + Send,
    ) -> Result<T> {
        match self {
            Database::Sqlite { path, options, .. } => {
                let mut conn = sqlite::open_writer(path, options.wait)?;
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let result = work(&*tx)?;
                tx.commit()?;
                Ok(result)
            }
            Database::Postgres { pool, .. } => pool.transaction(work),
        }
    }

    pub fn reads(&self) -> ReadPool {
        match self {
            Database::Sqlite { reads, .. } => ReadPool::Sqlite(reads.clone()),
            Database::Postgres { pool, .. } => ReadPool::Postgres(pool.clone()),
        }
    }

    /// Starts taking writes: SQLite's single writer thread (returned, to join
    /// at shutdown), or PostgreSQL's pooled transactions.
    pub fn start_writer(&self) -> Result<(Writer, Option<JoinHandle<()>>)> {
        match self {
            Database::Sqlite { path, options, .. } => {
                let conn = sqlite::open_writer(path, options.wait)?;
                let (writer, thread) =
                    sqlite::Writer::start(conn, options.write_queue, options.write_batch);
                Ok((Writer::Sqlite(writer), Some(thread)))
            }
            Database::Postgres { pool, options } => Ok((
                Writer::Postgres(postgres::Writer::new(pool.clone(), options.write_queue)),
                None,
            )),
        }
    }
}

/// Where writes go; cheap to clone. A write's result comes back once committed.
#[derive(Clone)]
pub enum Writer {
    Sqlite(sqlite::Writer),
    Postgres(postgres::Writer),
}

impl Writer {
    /// Runs `work` in a transaction and returns its result once committed.
    /// Fails at once with [`StoreError::QueueFull`] rather than queue without bound.
    pub async fn write<F, T>(&self, work: F) -> Result<T>
    where
        F: FnOnce(&dyn Storage) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Writer::Sqlite(writer) => writer.write(work).await,
            Writer::Postgres(writer) => writer.write(work).await,
        }
    }
}

/// Read connections for the API, reports and reconciliation; cheap to clone.
#[derive(Clone)]
pub enum ReadPool {
    Sqlite(sqlite::ReadPool),
    Postgres(postgres::Pool),
}

impl ReadPool {
    /// Runs `work` on a read connection (blocking: call from a blocking thread).
    pub fn read<T: Send, E: From<StoreError> + Send>(
        &self,
        work: impl FnOnce(&dyn Storage) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        match self {
            ReadPool::Sqlite(pool) => work(&*pool.get()?),
            ReadPool::Postgres(pool) => pool.read(work),
        }
    }
}

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
    fn landlord_by_bank_account(&self, bank_account: &str) -> Result<Option<LandlordId>>;
    fn landlord_contact(&self, landlord_id: &str) -> Result<Option<LandlordContact>>;
    /// Learns a landlord's bank account from CasaPay, unless the rent roll
    /// gave one or another landlord has it; whether it was learned.
    fn learn_bank_account(&self, landlord_id: &str, bank_account: &str) -> Result<bool>;

    // Reconciliation's reads.

    /// The period's lines with their requests, and the requests of the period
    /// placed at none of its lines, handed to `visit` as they are read: lines
    /// in (landlord, property) order, then those requests by id. With `landlord`, only that landlord's
    /// lines (and no unplaced requests: they have no landlord).
    fn visit_period(
        &self,
        period: Period,
        timezone: &TimeZone,
        landlord: Option<&str>,
        visit: &mut dyn FnMut(PeriodItem) -> Result<()>,
    ) -> Result<()>;
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
    /// Mail of `cause` not sent (yet, or for good).
    fn unsent_mail(&self, cause: &str) -> Result<i64>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let shown = |url: &str| Location::of(Path::new(url)).to_string();
        assert_eq!(
            shown("postgres://app:s3cret@db.example.com:5432/recon?sslmode=require"),
            "postgres://app:***@db.example.com:5432/recon?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://app@db/recon?password=s3cret&application_name=x"),
            "postgresql://app@db/recon?password=***&application_name=x"
        );
        assert_eq!(
            shown("postgres://localhost/recon"),
            "postgres://localhost/recon"
        );
        assert_eq!(shown("data/casapay-recon.db"), "data/casapay-recon.db");
    }
}
