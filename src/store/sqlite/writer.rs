//! The single writer: one thread owns the write connection and applies jobs
//! in batches, one durable commit per batch (group commit).
//!
//! A batch is whatever is queued when the writer is free, so a lone request
//! waits for nobody. Each job runs inside its own savepoint: a failing job is
//! rolled back alone and the rest of its batch commits. A job's result is
//! released only after the batch's COMMIT returns, so an acknowledged write is
//! on disk.
//!
//! Checkpoints (copying the WAL back into the database file, with its fsync)
//! run on a thread of their own, so that a commit never waits for one: the
//! writer only checkpoints itself if that thread fell far behind.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::store::{Storage, StoreError};

type Outcome<T> = Result<T, StoreError>;

/// A write job whose result waits for its batch to commit.
trait Job: Send {
    /// Runs inside a savepoint; returns false to roll the savepoint back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result once the batch committed, or the commit's error.
    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>);
}

struct TypedJob<F, T> {
    work: Option<F>,
    result: Option<Outcome<T>>,
    reply: oneshot::Sender<Outcome<T>>,
}

impl<F, T> Job for TypedJob<F, T>
where
    F: FnOnce(&dyn Storage) -> Outcome<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::ShuttingDown));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &rusqlite::Error>) {
        let outcome = match (commit, self.result) {
            (Err(error), _) => Err(StoreError::BatchFailed(error.to_string())),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::ShuttingDown),
        };
        // The requester may have gone (client hung up): the write stands regardless.
        let _ = self.reply.send(outcome);
    }
}

/// A handle to the writer thread; cheap to clone. The thread ends when the
/// last handle is dropped, after finishing what was queued.
#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread. `queue` bounds how many writes may wait;
    /// `max_batch` bounds a batch (1 turns group commit off).
    pub fn start(conn: Connection, queue: usize, max_batch: usize) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = sync_channel(queue);
        let checkpoints = start_checkpointer(&conn);
        let thread = std::thread::Builder::new()
            .name("casapay-writer".into())
            .spawn(move || {
                run_writer(conn, &receiver, max_batch.max(1));
                // The writer is done: the checkpointer finishes the WAL and ends.
                if let Some((stop, thread)) = checkpoints {
                    drop(stop);
                    let _ = thread.join();
                }
            })
            .expect("the writer thread starts");
        (Self { queue: sender }, thread)
    }

    /// Runs `work` in the next batch and returns its result once committed.
    /// Fails at once with [`StoreError::QueueFull`] rather than queue without bound.
    pub async fn write<F, T>(&self, work: F) -> Outcome<T>
    where
        F: FnOnce(&dyn Storage) -> Outcome<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let job = Box::new(TypedJob {
            work: Some(work),
            result: None,
            reply,
        });
        self.queue.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => StoreError::QueueFull,
            TrySendError::Disconnected(_) => StoreError::ShuttingDown,
        })?;
        result.await.map_err(|_| StoreError::ShuttingDown)?
    }
}

fn run_writer(mut conn: Connection, receiver: &Receiver<Box<dyn Job>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        crate::metrics::write_batch(batch.len());
        let commit = commit_batch(&mut conn, &mut batch);
        if let Err(error) = &commit {
            tracing::error!(%error, jobs = batch.len(), "write batch failed; nothing of it was stored");
        }
        for job in batch.drain(..) {
            job.finish(commit.as_ref().map(|_| ()));
        }
    }
}

/// How often the checkpointer copies what the WAL holds into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL pages after which the writer checkpoints itself (SQLite's default is
/// 1,000): only when the checkpointer cannot keep up.
const WRITER_CHECKPOINT_PAGES: i64 = 20_000;

/// Starts the checkpointer on a connection of its own; dropping the returned
/// sender stops it after a last checkpoint. None for a database without a
/// file (a test's in-memory one): the writer checkpoints itself then.
fn start_checkpointer(writer: &Connection) -> Option<(SyncSender<()>, JoinHandle<()>)> {
    let path = PathBuf::from(writer.path().filter(|p| !p.is_empty())?);
    let conn = Connection::open(&path).ok()?;
    conn.busy_timeout(Duration::from_secs(1)).ok()?;
    writer
        .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
        .ok()?;
    let (stop, stopped) = sync_channel::<()>(0);
    let thread = std::thread::Builder::new()
        .name("casapay-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                let last = matches!(
                    stopped.recv_timeout(CHECKPOINT_EVERY),
                    Err(RecvTimeoutError::Disconnected)
                );
                // PASSIVE: copies what no reader still needs, never blocks the writer.
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    // Said once, not five times a second, until it works again.
                    Err(error) if !failing => {
                        tracing::warn!(%error, "WAL checkpoint failed; the writer checkpoints itself meanwhile");
                        failing = true;
                    }
                    Err(_) => {}
                    Ok(()) if failing => {
                        tracing::info!("WAL checkpoints work again");
                        failing = false;
                    }
                    Ok(()) => {}
                }
                if last {
                    break;
                }
            }
        })
        .ok()?;
    Some((stop, thread))
}

fn commit_batch(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> Result<(), rusqlite::Error> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in batch.iter_mut() {
        let savepoint = tx.savepoint()?;
        if job.run(&savepoint) {
            savepoint.commit()?;
        }
        // Dropping an uncommitted savepoint rolls back to it.
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            super::super::open_writer(&dir.path().join("db"), Duration::from_secs(1)).unwrap();
        super::super::migrate(&mut conn).unwrap();
        let (writer, _thread) = Writer::start(conn, 64, 16);
        (dir, writer)
    }

    fn count(dir: &tempfile::TempDir) -> i64 {
        Connection::open(dir.path().join("db"))
            .unwrap()
            .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_job_does_not_fail_its_batch() {
        let (dir, writer) = writer();
        let jobs = (0..10).map(|i| {
            let writer = writer.clone();
            // Job 5 writes a row, then fails: only its own write is undone.
            async move {
                writer
                    .write(move |store| {
                        store.insert_setting(&format!("k{i}"), "v")?;
                        if i == 5 {
                            store.insert_setting(&format!("k{i}"), "again")?;
                        }
                        Ok(i)
                    })
                    .await
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert!(results[5].is_err());
        assert_eq!(count(&dir), 9);
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_apart_from_the_writer() {
        let (dir, writer) = writer();
        let database = dir.path().join("db");
        let before = std::fs::metadata(&database).unwrap().len();
        // 2 MB of rows: far below the writer's own checkpoint threshold.
        for batch in 0..4 {
            writer
                .write(move |store| {
                    for i in 0..64 {
                        store.insert_setting(&format!("k{batch}_{i}"), &"x".repeat(8000))?;
                    }
                    Ok(())
                })
                .await
                .unwrap();
        }
        let grown = || std::fs::metadata(&database).unwrap().len() > before + 2_000_000;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !grown() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            grown(),
            "the checkpointer copied the WAL into the database file"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_writer_lives_on() {
        let (dir, writer) = writer();
        let panicked = writer
            .write(|_store| -> Outcome<()> { panic!("bug") })
            .await;
        assert!(panicked.is_err());
        writer
            .write(|store| store.insert_setting("k", "v"))
            .await
            .unwrap();
        assert_eq!(count(&dir), 1);
    }
}
