//! Sync (SPEC §9): CasaPay's API is the source of truth, webhooks the fast
//! path. A run walks PaymentRequests and Payouts newest first back to a date
//! and applies every object whose state differs from the stored one as a
//! snapshot event (`sync_<run>_<object>`, `<object>.synced`), versioned by
//! the time it was fetched — so replay reproduces it, mail goes as for events
//! (once per object and state), and an event created after the fetch wins.

use std::sync::Arc;

use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::{Value, json};

use crate::casapay::client::{ApiClient, ClientError};
use crate::casapay::event::{self, SYNCED_PAYOUT, SYNCED_REQUEST};
use crate::domain::{Clock, Content, Event, EventState};
use crate::ingest::{self, IngestPolicy, Outcome};
use crate::store::{ObjectState, StoreError, SyncRun, Writer};

/// Days back a run reads when not told (`--since`).
pub const DEFAULT_DAYS_BACK: i64 = 35;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One object a run changed (or, dry, would change).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SyncChange {
    pub object: String,
    pub from: Option<String>,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub object: &'static str,
    pub run: String,
    pub dry_run: bool,
    /// Objects read from the API.
    pub read: usize,
    /// Objects whose state differed and was applied (new ones included).
    pub changed: usize,
    /// Of those, objects the service did not know at all.
    pub added: usize,
    /// Objects the service cannot read yet (an unknown status): left as they are.
    pub unreadable: usize,
    pub mails_queued: usize,
    pub bank_accounts_learned: usize,
    pub changes: Vec<SyncChange>,
}

/// Runs syncs against one API for one database.
pub struct Syncer {
    pub client: ApiClient,
    pub writer: Writer,
    pub policy: Arc<IngestPolicy>,
    /// What "now" is for a snapshot's version (the fetch time).
    pub clock: Clock,
}

/// A snapshot of `object` fetched at `fetched` (unix seconds), as an event.
fn snapshot(run: &str, kind: &str, object: &Value, fetched: i64) -> Option<Event> {
    let id = object["id"].as_str()?;
    let body = json!({
        "id": format!("sync_{run}_{id}"), "object": "event", "type": kind, "created": fetched,
        "livemode": object["livemode"].as_bool().unwrap_or(true), "data": {"object": object},
    });
    event::parse(body.to_string().as_bytes()).ok()
}

impl Syncer {
    /// Reads back to `since` (unix seconds) and applies what differs; with
    /// `dry_run`, writes nothing and says what would change. The run is
    /// recorded, failed or not, so a failure shows in the daily report.
    pub async fn run(
        &self,
        since: i64,
        dry_run: bool,
        progress: &ProgressBar,
    ) -> Result<SyncSummary, SyncError> {
        let started = jiff::Timestamp::now();
        let run = started.as_millisecond().to_string();
        let mut summary = SyncSummary {
            object: "sync",
            run: run.clone(),
            dry_run,
            ..SyncSummary::default()
        };
        let walked = self
            .walk(&run, since, dry_run, &mut summary, progress)
            .await;
        if !dry_run {
            let record = SyncRun {
                id: run,
                finished_at_ms: jiff::Timestamp::now().as_millisecond(),
                read: summary.read as i64,
                changed: summary.changed as i64,
                error: walked.as_ref().err().map(ToString::to_string),
            };
            let started_ms = started.as_millisecond();
            self.writer
                .write(move |conn| conn.record_sync_run(&record, started_ms))
                .await?;
        }
        walked.map(|()| summary)
    }

    async fn walk(
        &self,
        run: &str,
        since: i64,
        dry_run: bool,
        summary: &mut SyncSummary,
        progress: &ProgressBar,
    ) -> Result<(), SyncError> {
        if !dry_run {
            summary.bank_accounts_learned = self.learn_bank_accounts().await?;
        }
        for (kind, synced) in [
            ("payment_requests", SYNCED_REQUEST),
            ("payouts", SYNCED_PAYOUT),
        ] {
            let mut after: Option<String> = None;
            loop {
                let page = self.client.page(kind, after.as_deref()).await?;
                let fetched = self.clock.now().as_second();
                let recent: Vec<&Value> = page
                    .data
                    .iter()
                    .filter(|o| o["created"].as_i64().unwrap_or(i64::MAX) >= since)
                    .collect();
                summary.read += recent.len();
                progress.inc(recent.len() as u64);
                let mut events = Vec::new();
                for object in &recent {
                    match snapshot(run, synced, object, fetched) {
                        Some(event) if matches!(event.content, Content::Object(_)) => {
                            events.push(event)
                        }
                        _ => summary.unreadable += 1,
                    }
                }
                self.apply(events, dry_run, summary).await?;
                let reached_since = recent.len() < page.data.len();
                after = page
                    .data
                    .last()
                    .and_then(|o| o["id"].as_str())
                    .map(str::to_string);
                if !page.has_more || reached_since || after.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Applies (or, dry, only compares) one page's snapshots in one write.
    async fn apply(
        &self,
        events: Vec<Event>,
        dry_run: bool,
        summary: &mut SyncSummary,
    ) -> Result<(), SyncError> {
        let policy = Arc::clone(&self.policy);
        let now = jiff::Timestamp::now().as_millisecond();
        let results = self
            .writer
            .write(move |conn| {
                let mut results = Vec::new();
                for event in &events {
                    let Content::Object(object) = &event.content else {
                        continue;
                    };
                    let stored = conn.object_state(object)?;
                    let fetched = ObjectState::of(object);
                    if stored.as_ref().is_some_and(|(state, _)| *state == fetched) {
                        continue;
                    }
                    let version = stored.as_ref().map(|(_, version)| *version);
                    let decided = ingest::decide(event, version, policy.mode);
                    if decided != EventState::Applied {
                        continue; // other mode, or an event newer than the fetch already won
                    }
                    let mails = if dry_run {
                        0
                    } else {
                        match ingest::store_decided(conn, event, decided, now, &policy)? {
                            Outcome::Stored { mails, .. } => mails,
                            Outcome::Duplicate => continue,
                        }
                    };
                    results.push((
                        SyncChange {
                            object: object.id().to_string(),
                            from: stored.map(|(state, _)| state.status),
                            to: fetched.status,
                        },
                        mails,
                    ));
                }
                Ok(results)
            })
            .await?;
        for (change, mails) in results {
            summary.changed += 1;
            summary.added += usize::from(change.from.is_none());
            summary.mails_queued += mails;
            summary.changes.push(change);
        }
        Ok(())
    }

    /// Learns `ba_… → landlord` from bank accounts whose metadata names a
    /// landlord, where the API lists them (the simulator does; a 404 is fine).
    async fn learn_bank_accounts(&self) -> Result<usize, SyncError> {
        let page = match self.client.page("bank_accounts", None).await {
            Ok(page) => page,
            Err(ClientError::Failed {
                status: Some(404), ..
            }) => return Ok(0),
            Err(error) => return Err(error.into()),
        };
        let pairs: Vec<(String, String)> = page
            .data
            .iter()
            .filter_map(|a| {
                Some((
                    a["metadata"]["landlord_id"].as_str()?.to_string(),
                    a["id"].as_str()?.to_string(),
                ))
            })
            .collect();
        Ok(self
            .writer
            .write(move |conn| {
                let mut learned = 0;
                for (landlord, account) in &pairs {
                    learned += usize::from(conn.learn_bank_account(landlord, account)?);
                }
                Ok(learned)
            })
            .await?)
    }
}

/// The summary as a person reads it.
pub fn render_summary(summary: &SyncSummary) -> String {
    let mut out = format!(
        "sync {}{}: {} object(s) read, {} changed ({} new), {} unreadable, {} mail(s) queued, {} bank account(s) learned\n",
        summary.run,
        if summary.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
        summary.read,
        summary.changed,
        summary.added,
        summary.unreadable,
        summary.mails_queued,
        summary.bank_accounts_learned,
    );
    for change in &summary.changes {
        out.push_str(&format!(
            "  {:<28} {} → {}\n",
            change.object,
            change.from.as_deref().unwrap_or("(new)"),
            change.to
        ));
    }
    out
}
