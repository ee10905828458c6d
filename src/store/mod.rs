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

pub use credentials::{Credentials, GeneratedCredential, keep_generated, stored_webhook_secret};
pub use events::{
    EventCursor, EventFilter, EventPage, QuarantinedEvent, StoredEvent, count_quarantined,
    event_cursor, events_after, insert_event, list_events, quarantined_events, set_event_state,
};
pub use objects::{ObjectState, SetBy, clear_objects, object_state, object_version, save_object};
pub use outbox::{
    ClaimedMail, OutboxRow, claim_due_mail, list_outbox, mark_mail_failed, mark_mail_sent,
    outbox_depth, queue_mail, release_claims, requeue_failed_mail,
};
pub use reconciliation::{PeriodData, UNDATED_MARGIN_DAYS, load_period};
pub use rent_roll::{
    ImportSummary, due_dates, import_rent_roll, landlord_by_bank_account, landlord_contact,
    learn_bank_account, property_candidates,
};
pub use reports::{
    RecordedException, SyncRun, count_events_received, last_daily_report, last_sync_run,
    periods_before, previous_report_exceptions, record_daily_report, record_sync_run,
};
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
        use rusqlite::ErrorCode::{
            CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure,
        };
        match self {
            StoreError::QueueFull
            | StoreError::ShuttingDown
            | StoreError::BatchFailed(_)
            | StoreError::Pool(_) => true,
            StoreError::Sqlite(error) => matches!(
                error.sqlite_error_code(),
                Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen)
            ),
            StoreError::Corrupt(_) | StoreError::SchemaTooNew { .. } | StoreError::Io(_) => false,
        }
    }
}

/// A stored value this binary cannot read: a bug or a damaged database, never "try again".
fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("stored {what} `{value}` is not valid"))
}

/// Creates the database file readable by its owner only: it holds the
/// generated webhook secret and landlords' personal data. SQLite gives its
/// -wal and -shm files the database file's permissions.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Io(e)),
    }
}

/// Opens the one write connection: WAL, and `synchronous=FULL` so that a
/// commit survives power loss, not only a process crash.
pub fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    create_private(path)?;
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

    /// Column names and types of every table, and every index's definition
    /// columns: what must be equal between a migrated and a new database.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        let objects: Vec<(String, String, String)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut shape = Vec::new();
        for (kind, name, table) in objects {
            let pragma = if kind == "table" {
                format!(
                    "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || pk FROM pragma_table_info('{name}')"
                )
            } else {
                format!("SELECT name FROM pragma_index_info('{name}')")
            };
            let columns: Vec<String> = conn
                .prepare(&pragma)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            shape.push(format!("{kind} {name} on {table}: {}", columns.join(", ")));
        }
        shape
    }

    #[test]
    fn a_version_1_database_migrates_without_loss_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = open_writer(&dir.path().join("old.db"), Duration::from_secs(1)).unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            r#"INSERT INTO events (id, type, created, livemode, object_id, applied, received_at, body) VALUES
                 ('evt_a', 'payment_request.retrying', 5, 1, 'preq_1', 1, 1000,
                  '{"data":{"object":{"id":"preq_1","attempts":2,"payment_method_used":"direct_debit"}}}'),
                 ('evt_b', 'payment_request.created', 4, 1, 'preq_1', 0, 1001, '{}'),
                 ('evt_c', 'customer.updated', 6, 1, 'cus_1', 0, 1002, '{}'),
                 ('evt_d', 'payout.failed', 7, 1, 'po_1', 1, 1003,
                  '{"data":{"object":{"id":"po_1","failure_reason":"account_closed"}}}');
               INSERT INTO payment_requests (id, amount, currency, status, created, event_created, status_rank, last_event_id)
                 VALUES ('preq_1', 100, 'eur', 'processing', 1, 5, 1, 'evt_a');
               INSERT INTO payouts (id, amount, currency, status, created, event_created, status_rank, last_event_id)
                 VALUES ('po_1', 100, 'eur', 'failed', 1, 7, 3, 'evt_d');
               INSERT INTO outbox (cause, kind, recipient, subject, text_body, html_body, status, next_attempt_at, created_at) VALUES
                 ('evt_a', 'collection_retrying', 'a@example.com', 's', 't', 'h', 'sent', 0, 0),
                 ('evt_d', 'payout_failed', 'a@example.com', 's', 't', 'h', 'queued', 0, 0),
                 ('report:2025-03-01', 'daily_report', 'ops@example.com', 's', 't', 'h', 'sent', 0, 0);"#,
        )
        .unwrap();
        assert_eq!(migrate(&mut old).unwrap(), SCHEMA_VERSION);

        let states: Vec<(String, String)> = old
            .prepare("SELECT id, state FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            ("evt_a", "applied"),
            ("evt_b", "superseded"),
            ("evt_c", "recorded"),
            ("evt_d", "applied"),
        ];
        assert_eq!(
            states,
            expected.map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let causes: Vec<String> = old
            .prepare("SELECT cause FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            causes,
            ["preq_1:retrying:2", "po_1:failed", "report:2025-03-01"]
        );
        let kept: (String, String) = old
            .query_row(
                "SELECT payment_method_used, last_event_type FROM payment_requests WHERE id = 'preq_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            kept,
            ("direct_debit".into(), "payment_request.retrying".into())
        );
        let reason: String = old
            .query_row("SELECT failure_reason FROM payouts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reason, "account_closed");

        let mut new = open_writer(&dir.path().join("new.db"), Duration::from_secs(1)).unwrap();
        migrate(&mut new).unwrap();
        assert_eq!(
            shape(&old),
            shape(&new),
            "schema.sql is the migrations' result"
        );
    }

    #[test]
    fn the_database_and_its_wal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.db");
        let mut conn = open_writer(&path, Duration::from_secs(1)).unwrap();
        migrate(&mut conn).unwrap();
        record_heartbeat(&conn, 1).unwrap();
        for file in ["private.db", "private.db-wal", "private.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
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
