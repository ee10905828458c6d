//! The database a test app runs on: SQLite (a file in a temporary directory)
//! by default; with `CASAPAY_TEST_ENGINE=postgres`, a fresh PostgreSQL
//! database on the server at `CASAPAY_TEST_POSTGRES`, dropped afterwards.
//! Queries here read any engine and give every cell as text.

use std::path::{Path, PathBuf};

use casapay_recon::store::{self, Database, Location};

/// Whether this run's apps use PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("CASAPAY_TEST_ENGINE").is_ok_and(|engine| engine == "postgres")
}

/// The server's URL, for a run on PostgreSQL.
pub fn postgres_server() -> String {
    std::env::var("CASAPAY_TEST_POSTGRES")
        .expect("CASAPAY_TEST_POSTGRES names the PostgreSQL server for this run")
}

/// Runs `work` on a thread of its own: the synchronous PostgreSQL driver may
/// not block a thread that drives async tasks.
fn off_async<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("the query thread ends"))
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("the PostgreSQL server answers")
}

/// A database of its own for one test.
pub enum TestDatabase {
    Sqlite {
        path: PathBuf,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        name: String,
    },
}

impl TestDatabase {
    /// A new database on this run's engine.
    pub fn fresh() -> Self {
        if on_postgres() {
            return Self::postgres();
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        TestDatabase::Sqlite {
            path: dir.path().join("casapay-recon.db"),
            _dir: dir,
        }
    }

    /// A new, empty PostgreSQL database on the server at `CASAPAY_TEST_POSTGRES`.
    pub fn postgres() -> Self {
        let server = postgres_server();
        let name = format!("t_{}", hex::encode(rand_bytes()));
        off_async(|| {
            connect(&server)
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("the test database is created")
        });
        TestDatabase::Postgres {
            url: with_database(&server, &name),
            name,
        }
    }

    /// The `database` setting that names it.
    pub fn setting(&self) -> PathBuf {
        match self {
            TestDatabase::Sqlite { path, .. } => path.clone(),
            TestDatabase::Postgres { url, .. } => PathBuf::from(url),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { name, .. } = self {
            let server = postgres_server();
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            off_async(|| {
                // Best effort: a database left behind costs disk, never a result.
                let _ = connect(&server).batch_execute(&sql);
            });
        }
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes
}

/// Every row `sql` returns, each cell as text (`None` for NULL), on the
/// database the `database` setting names.
pub fn query(database: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    match Location::of(database) {
        Location::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).expect("the database opens");
            let mut statement = conn.prepare(sql).expect("the query prepares");
            let width = statement.column_count();
            let mut rows = statement.query([]).expect("the query runs");
            let mut all = Vec::new();
            while let Some(row) = rows.next().expect("a row") {
                all.push(
                    (0..width)
                        .map(|i| sqlite_text(row.get_ref(i).expect("a cell")))
                        .collect(),
                );
            }
            all
        }
        Location::Postgres(url) => off_async(|| {
            connect(&url)
                .simple_query(sql)
                .expect("the query runs")
                .into_iter()
                .filter_map(|message| match message {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        }),
    }
}

fn sqlite_text(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Runs statements that change the database (a test damaging a row, say).
pub fn execute(database: &Path, sql: &str) {
    match Location::of(database) {
        Location::Sqlite(path) => rusqlite::Connection::open(path)
            .expect("the database opens")
            .execute_batch(sql)
            .expect("the statements run"),
        Location::Postgres(url) => off_async(|| {
            connect(&url)
                .batch_execute(sql)
                .expect("the statements run")
        }),
    }
}

/// The database opened as the service opens it, for calling the library directly.
pub fn open(database: &Path) -> Database {
    try_open(database).expect("the database opens")
}

pub fn try_open(database: &Path) -> Result<Database, store::StoreError> {
    Database::open(
        &Location::of(database),
        store::Options {
            wait: std::time::Duration::from_secs(5),
            write_queue: 16,
            write_batch: 16,
        },
    )
}

/// Another connection holding the write lock: the service's writes wait
/// (and time out), its reads go on. Released by [`DatabaseLock::release`].
pub struct DatabaseLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl DatabaseLock {
    /// Takes the lock and returns once it is held.
    pub fn take(database: &Path) -> Self {
        let location = Location::of(database);
        let (locked, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // The connection lives on a thread of its own: a PostgreSQL client may
        // not block, nor be dropped, on a thread that drives async tasks.
        let holder = std::thread::spawn(move || match location {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("the database opens");
                conn.execute_batch("BEGIN EXCLUSIVE")
                    .expect("the lock is taken");
                locked.send(()).expect("the test waits for the lock");
                let _ = released.recv();
                conn.execute_batch("ROLLBACK")
                    .expect("the lock is released");
            }
            Location::Postgres(url) => {
                let mut client = connect(&url);
                let mut tx = client.transaction().expect("a transaction");
                // EXCLUSIVE: every write waits, reads go on.
                tx.batch_execute(
                    "LOCK TABLE events, payment_requests, payouts, outbox, settings, daily_reports
                     IN EXCLUSIVE MODE",
                )
                .expect("the lock is taken");
                locked.send(()).expect("the test waits for the lock");
                let _ = released.recv();
                tx.rollback().expect("the lock is released");
            }
        });
        held.recv().expect("the lock is taken");
        Self { release, holder }
    }

    pub fn release(self) {
        let _ = self.release.send(());
        self.holder.join().expect("the lock holder ends");
    }
}
