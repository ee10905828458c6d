//! The SQLite engine: one write connection, owned by the [`Writer`] thread;
//! any number of read-only connections from a pool, which WAL keeps from
//! blocking the writer.

mod events;
mod ids;
mod objects;
mod outbox;
mod reconciliation;
mod rent_roll;
mod reports;
mod writer;

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::records::{
    ClaimedMail, EventCursor, EventFilter, EventPage, ObjectState, OutboxRow, PeriodItem,
    QuarantinedEvent, RecordedException, SetBy, SyncRun,
};
use super::{Result, Storage, StoreError};
use crate::domain::{
    Event, EventState, LandlordContact, LandlordId, MailDraft, Object, Period, PropertyRent,
    StoredPayout, Version,
};
use crate::rent_roll::RentRoll;

pub use writer::Writer;

const SCHEMA: &str = include_str!("../../../schema.sql");

/// Migrations after the first schema: `MIGRATIONS[i]` takes version `i + 1` to `i + 2`.
/// `schema.sql` is always the result of applying all of them.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/2-event-states.sql"),
    include_str!("migrations/3-mail-intents.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

/// Read-only connections for the API, reports and reconciliation.
#[derive(Clone)]
pub struct ReadPool(r2d2::Pool<SqliteConnectionManager>);

/// A read connection, seen through the storage boundary.
pub struct ReadConnection(r2d2::PooledConnection<SqliteConnectionManager>);

impl Deref for ReadConnection {
    type Target = dyn Storage;
    fn deref(&self) -> &(dyn Storage + 'static) {
        &*self.0
    }
}

impl ReadPool {
    pub fn get(&self) -> Result<ReadConnection> {
        Ok(ReadConnection(self.0.get()?))
    }
}

/// Whether an SQLite error can pass if tried again (busy, disk full, …).
pub(super) fn is_transient(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure,
    };
    matches!(
        error.sqlite_error_code(),
        Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen)
    )
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
    // Each job's savepoint journals the pages it changes; in memory that costs
    // no file writes (a profile showed 20 % of ingest in that sub-journal).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
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
    Ok(ReadPool(
        r2d2::Pool::builder().max_size(size).build(manager)?,
    ))
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

impl Storage for Connection {
    fn insert_event(&self, event: &Event, state: &EventState, received_at_ms: i64) -> Result<bool> {
        events::insert_event(self, event, state, received_at_ms)
    }
    fn set_event_state(&self, id: &str, state: &EventState) -> Result<()> {
        events::set_event_state(self, id, state)
    }
    fn event_cursor(&self, id: &str) -> Result<Option<EventCursor>> {
        events::event_cursor(self, id)
    }
    fn list_events(
        &self,
        filter: EventFilter<'_>,
        limit: usize,
        after: Option<EventCursor>,
    ) -> Result<EventPage> {
        events::list_events(self, filter, limit, after)
    }
    fn events_after(
        &self,
        after_seq: i64,
        quarantined_only: bool,
        limit: usize,
    ) -> Result<Vec<(i64, String)>> {
        events::events_after(self, after_seq, quarantined_only, limit)
    }
    fn quarantined_events(&self, limit: usize) -> Result<Vec<QuarantinedEvent>> {
        events::quarantined_events(self, limit)
    }
    fn count_quarantined(&self) -> Result<i64> {
        events::count_quarantined(self)
    }
    fn count_events_received(&self, from_ms: i64, until_ms: i64) -> Result<Vec<(String, i64)>> {
        reports::count_events_received(self, from_ms, until_ms)
    }

    fn object_version(&self, object: &Object) -> Result<Option<Version>> {
        objects::object_version(self, object)
    }
    fn save_object(&self, object: &Object, set_by: SetBy<'_>) -> Result<()> {
        objects::save_object(self, object, set_by)
    }
    fn object_state(&self, object: &Object) -> Result<Option<(ObjectState, Version)>> {
        objects::object_state(self, object)
    }
    fn clear_objects(&self) -> Result<()> {
        objects::clear_objects(self)
    }

    fn write_rent_roll(&self, roll: &RentRoll) -> Result<()> {
        rent_roll::write_rent_roll(self, roll)
    }
    fn agreement_holders(&self, agreement: &str, except_property: &str) -> Result<Vec<String>> {
        rent_roll::agreement_holders(self, agreement, except_property)
    }
    fn property_candidates(
        &self,
        property_id: Option<&str>,
        agreement: Option<&str>,
    ) -> Result<(Option<PropertyRent>, Option<PropertyRent>)> {
        rent_roll::property_candidates(self, property_id, agreement)
    }
    fn due_dates(
        &self,
        property_id: &str,
        within: Option<(Period, Period)>,
    ) -> Result<Vec<(Period, Date)>> {
        rent_roll::due_dates(self, property_id, within)
    }
    fn landlord_by_bank_account(&self, bank_account: &str) -> Result<Option<LandlordId>> {
        rent_roll::landlord_by_bank_account(self, bank_account)
    }
    fn landlord_contact(&self, landlord_id: &str) -> Result<Option<LandlordContact>> {
        rent_roll::landlord_contact(self, landlord_id)
    }
    fn learn_bank_account(&self, landlord_id: &str, bank_account: &str) -> Result<bool> {
        rent_roll::learn_bank_account(self, landlord_id, bank_account)
    }

    fn visit_period(
        &self,
        period: Period,
        timezone: &TimeZone,
        landlord: Option<&str>,
        visit: &mut dyn FnMut(PeriodItem) -> Result<()>,
    ) -> Result<()> {
        let window = super::period::PeriodWindow::new(period, timezone);
        reconciliation::visit_period(self, &window, landlord, visit)
    }
    fn payouts_of_period(
        &self,
        period: Period,
        undated_created: (i64, i64),
    ) -> Result<Vec<StoredPayout>> {
        reconciliation::payouts_of_period(self, period, undated_created)
    }
    fn periods_before(&self, period: &str) -> Result<Vec<String>> {
        reports::periods_before(self, period)
    }

    fn queue_mail(&self, cause: &str, draft: &MailDraft, now_ms: i64) -> Result<bool> {
        outbox::queue_mail(self, cause, draft, now_ms)
    }
    fn claim_due_mail(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: usize,
        cause: Option<&str>,
    ) -> Result<Vec<ClaimedMail>> {
        outbox::claim_due_mail(self, now_ms, lease_until_ms, limit, cause)
    }
    fn release_claims(&self, now_ms: i64) -> Result<usize> {
        outbox::release_claims(self, now_ms)
    }
    fn mark_mail_sent(&self, id: i64, now_ms: i64) -> Result<()> {
        outbox::mark_mail_sent(self, id, now_ms)
    }
    fn mark_mail_failed(&self, id: i64, error: &str, retry_at_ms: Option<i64>) -> Result<()> {
        outbox::mark_mail_failed(self, id, error, retry_at_ms)
    }
    fn requeue_failed_mail(&self, ids: &[i64], now_ms: i64) -> Result<usize> {
        outbox::requeue_failed_mail(self, ids, now_ms)
    }
    fn list_outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxRow>> {
        outbox::list_outbox(self, status, limit)
    }
    fn outbox_depth(&self) -> Result<i64> {
        outbox::outbox_depth(self)
    }
    fn unsent_mail(&self, cause: &str) -> Result<i64> {
        outbox::unsent_mail(self, cause)
    }

    fn last_daily_report(&self) -> Result<Option<String>> {
        reports::last_daily_report(self)
    }
    fn previous_report_exceptions(
        &self,
        date: &str,
    ) -> Result<Option<(String, Vec<RecordedException>)>> {
        reports::previous_report_exceptions(self, date)
    }
    fn record_daily_report(
        &self,
        date: &str,
        exceptions: &[RecordedException],
        drafts: &[MailDraft],
        now_ms: i64,
    ) -> Result<bool> {
        reports::record_daily_report(self, date, exceptions, drafts, now_ms)
    }
    fn record_sync_run(&self, run: &SyncRun, started_at_ms: i64) -> Result<()> {
        reports::record_sync_run(self, run, started_at_ms)
    }
    fn last_sync_run(&self) -> Result<Option<SyncRun>> {
        reports::last_sync_run(self)
    }

    fn read_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }
    fn insert_setting(&self, key: &str, value: &str) -> Result<()> {
        self.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(())
    }
    fn record_heartbeat(&self, now_ms: i64) -> Result<()> {
        self.execute(
            "INSERT INTO settings (key, value) VALUES ('heartbeat', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [now_ms.to_string()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MailKind, MailMessage};

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
        old.execute_batch(include_str!("../../../tests/fixtures/schema-v1.sql"))
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
        let queued = old.claim_due_mail(0, 1, 10, None).unwrap();
        assert_eq!(
            queued.into_iter().map(|m| m.mail).collect::<Vec<_>>(),
            [Ok((
                MailKind::PayoutFailed,
                MailMessage::Rendered {
                    subject: "s".into(),
                    text: "t".into(),
                    html: "h".into()
                }
            ))],
            "mail queued before version 3 is sent as it was rendered"
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
        conn.record_heartbeat(1).unwrap();
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
