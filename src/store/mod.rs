//! The only place with SQL. `schema.sql` is the schema's single source of truth.
//!
//! One write connection, owned by the [`Writer`] thread; any number of
//! read-only connections from a pool, which WAL keeps from blocking the writer.

mod credentials;
mod events;
mod objects;
mod outbox;
mod reconciliation;
mod rent_roll;
mod reports;
mod writer;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

pub use credentials::{Credentials, GeneratedCredential, stored_webhook_secret};
pub use events::{
    EventCursor, EventFilter, EventPage, QuarantinedEvent, StoredEvent, count_quarantined,
    event_cursor, events_after, insert_event, list_events, quarantined_events, set_event_state,
};
pub use objects::{SetBy, clear_objects, object_version, save_object};
pub use outbox::{
    ClaimedMail, OutboxRow, claim_due_mail, list_outbox, mark_mail_failed, mark_mail_sent,
    outbox_depth, queue_mail, requeue_failed_mail,
};
pub use reconciliation::{PeriodData, UNDATED_MARGIN_DAYS, load_period};
pub use rent_roll::{
    ImportSummary, due_dates, import_rent_roll, landlord_by_bank_account, landlord_contact,
    property_rent,
};
pub use reports::{count_events_received, last_daily_report, periods_before, record_daily_report};
pub use writer::Writer;

const SCHEMA: &str = include_str!("../../schema.sql");

/// Migrations after the first schema: `MIGRATIONS[i]` takes version `i + 1` to `i + 2`.
/// `schema.sql` is always the result of applying all of them.
const MIGRATIONS: &[&str] = &[include_str!("migrations/2-event-states.sql")];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

pub type ReadPool = r2d2::Pool<SqliteConnectionManager>;

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
    #[error("the write queue is full")]
    QueueFull,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error(
        "database schema version {found} is newer than this binary's {supported}: upgrade casapay-recon"
    )]
    SchemaTooNew { found: i64, supported: i64 },
}

/// A stored value this binary cannot read: a bug or a damaged database, never "try again".
fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} `{value}` is not valid"))
}

/// Opens the one write connection: WAL, and `synchronous=FULL` so that a
/// commit survives power loss, not only a process crash.
pub fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A pool of read-only connections for the API, reports and reconciliation.
pub fn open_read_pool(
    path: &Path,
    busy_timeout: Duration,
    size: u32,
) -> Result<ReadPool, StoreError> {
    let manager = SqliteConnectionManager::file(path)
        .with_flags(
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .with_init(move |conn| conn.busy_timeout(busy_timeout));
    Ok(r2d2::Pool::builder().max_size(size).build(manager)?)
}

/// Brings the database to [`SCHEMA_VERSION`]: the whole schema on a new file,
/// the missing migrations on an older one, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        return Ok(SCHEMA_VERSION);
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip((found - 1) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index as i64 + 2)?;
        tx.commit()?;
    }
    Ok(SCHEMA_VERSION)
}

/// Proves the database takes writes, for `/readyz`.
pub fn record_heartbeat(conn: &Connection, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ('heartbeat', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [now_ms.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_creates_the_schema_once_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("db.sqlite"), Duration::from_secs(1)).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'payment_requests', 'payouts', 'settings')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_database_is_refused_not_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("db.sqlite"), Duration::from_secs(1)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
