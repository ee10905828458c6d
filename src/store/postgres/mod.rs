//! The PostgreSQL engine, for several instances on one database: each write
//! job is its own transaction on a pooled connection (PostgreSQL orders
//! concurrent writers; no single writer thread), reads run in read-only
//! snapshots. Durable before the 200: `synchronous_commit = on`.

mod ids;
mod queries;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{IsolationLevel, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{SCHEMA_VERSION, Storage, StoreError};

const SCHEMA: &str = include_str!("../../../schema.postgres.sql");

/// The first PostgreSQL schema's version; `schema.postgres.sql` is always the
/// result of applying every migration after it.
const FIRST_VERSION: i64 = 2;
/// `MIGRATIONS[i]` takes version `FIRST_VERSION + i` to the next.
const MIGRATIONS: &[&str] = &[include_str!("migrations/3-mail-intents.sql")];
// Both engines write the same version.
const _: () = assert!(FIRST_VERSION + MIGRATIONS.len() as i64 == SCHEMA_VERSION);

/// Any fixed number: the advisory lock instances take to migrate one at a time.
const MIGRATION_LOCK: i64 = 0x0063_6173_6170_6179; // "casapay"

/// A connection with the statements it has prepared: each statement is
/// parsed once per connection, then every use is one round trip.
pub(super) struct Session {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

struct Manager(PostgresConnectionManager<MakeRustlsConnect>);

impl r2d2::ManageConnection for Manager {
    type Connection = Session;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Session, postgres::Error> {
        Ok(Session {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut session.client)
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.client.is_closed()
    }
}

/// Connections to one PostgreSQL database.
///
/// The driver runs each connection on its own small runtime, which must never
/// block or be dropped on a thread that drives async tasks: every entry point
/// runs its work on a thread of its own ([`off_async`]), the writer on tokio's
/// blocking threads, and the last handle drops the pool on a plain thread.
#[derive(Clone)]
pub struct Pool(Arc<Connections>);

struct Connections(Option<r2d2::Pool<Manager>>);

impl Drop for Connections {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

/// Runs `work` on a thread of its own, where the driver may block.
fn off_async<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A transaction seen through the storage boundary. The driver wants `&mut`
/// for every statement; the boundary's operations take `&self`, and a job
/// runs on one thread, so `RefCell`s bridge them.
pub(super) struct PgStore<'a> {
    tx: RefCell<Transaction<'a>>,
    statements: RefCell<&'a mut HashMap<String, Statement>>,
}

impl<'a> PgStore<'a> {
    fn new(tx: Transaction<'a>, statements: &'a mut HashMap<String, Statement>) -> Self {
        Self {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
        }
    }
}

impl Pool {
    /// Connects and migrates. Unless the URL sets `sslmode`, TLS (verified
    /// against the system's roots) is required for a host that is not this
    /// machine, and not used on loopback, where it protects nothing.
    pub fn open(url: &str, size: u32, wait: Duration) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Config(format!("the PostgreSQL URL: {e}")))?;
        if !url.contains("sslmode=") {
            config.ssl_mode(if is_local(&config) {
                SslMode::Disable
            } else {
                SslMode::Require
            });
        }
        // A write waits for a lock as long as SQLite's busy timeout, then is
        // refused (503) instead of holding a request without end.
        config.options(&format!(
            "-c synchronous_commit=on -c lock_timeout={}",
            wait.as_millis()
        ));
        config.application_name("casapay-recon");
        let manager = Manager(PostgresConnectionManager::new(config, tls()?));
        off_async(|| {
            // Connections open as needed; a failure is reported once, as the error.
            let pool = r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .connection_timeout(wait)
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build(manager)?;
            let pool = Self(Arc::new(Connections(Some(pool))));
            pool.migrate()?;
            Ok(pool)
        })
    }

    fn get(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        let pool = self.0.0.as_ref().expect("the pool lives until dropped");
        Ok(pool.get()?)
    }

    /// Creates the schema, or brings it up to date, once however many
    /// instances start together.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut session = self.get()?;
        let mut tx = session.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
            .try_get(0)?;
        let found: Option<i64> = if exists {
            tx.query_one("SELECT max(version) FROM schema_version", &[])?
                .try_get(0)?
        } else {
            None
        };
        match found {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) => {
                let done = (found - FIRST_VERSION) as usize;
                for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
                    let version = FIRST_VERSION + index as i64 + 1;
                    tx.batch_execute(migration)?;
                    tx.execute(
                        "INSERT INTO schema_version (version) VALUES ($1)",
                        &[&version],
                    )?;
                    tracing::info!(version, "migrated the PostgreSQL schema");
                }
            }
            None => {
                tx.batch_execute(SCHEMA)?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )?;
                tracing::info!(version = SCHEMA_VERSION, "created the PostgreSQL schema");
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `work` in a transaction, committed if it succeeds.
    pub fn transaction<T: Send>(
        &self,
        work: impl FnOnce(&dyn Storage) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_async(|| self.transaction_here(work))
    }

    /// [`Self::transaction`] on this thread, which must be free to block.
    fn transaction_here<T>(
        &self,
        work: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut session = self.get()?;
        let Session { client, statements } = &mut *session;
        let store = PgStore::new(client.transaction()?, statements);
        let result = work(&store)?;
        store.tx.into_inner().commit()?;
        Ok(result)
    }

    /// Runs `work` on a read-only snapshot: a report or a reconciliation sees
    /// one instant, whatever commits meanwhile.
    pub fn read<T: Send, E: From<StoreError> + Send>(
        &self,
        work: impl FnOnce(&dyn Storage) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        off_async(|| {
            let mut session = self.get()?;
            let Session { client, statements } = &mut *session;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(StoreError::from)?;
            work(&PgStore::new(tx, statements))
        })
    }
}

fn is_local(config: &postgres::Config) -> bool {
    use postgres::config::Host;
    config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    })
}

/// TLS with ring named here, not the process default, so opening a database
/// needs nothing installed first.
fn tls() -> Result<MakeRustlsConnect, StoreError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Whether a PostgreSQL error can pass if tried again (connection lost,
/// server restarting, too many connections, a deadlock or serialisation failure).
pub(super) fn is_transient(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        None => error.as_db_error().is_none(),
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::DISK_FULL,
        ]
        .contains(code),
    }
}

/// Write jobs, each in its own transaction on a blocking thread; at most
/// `queue` wait at once, beyond which a write is refused (503), as SQLite's queue.
#[derive(Clone)]
pub struct Writer {
    pool: Pool,
    waiting: Arc<tokio::sync::Semaphore>,
}

impl Writer {
    pub fn new(pool: Pool, queue: usize) -> Self {
        Self {
            pool,
            waiting: Arc::new(tokio::sync::Semaphore::new(queue.max(1))),
        }
    }

    pub async fn write<F, T>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&dyn Storage) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.waiting)
            .try_acquire_owned()
            .map_err(|_| StoreError::QueueFull)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // One job, one commit: PostgreSQL orders concurrent writers itself.
            crate::metrics::write_batch(1);
            pool.transaction_here(work)
        })
        .await
        .map_err(|_| StoreError::ShuttingDown)?
    }
}
