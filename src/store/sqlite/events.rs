//! The event log: every event as received, once, with what became of it.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{Event, EventState};
use crate::store::rows;
use crate::store::{
    EventCursor, EventFilter, EventPage, QuarantinedEvent, StoreError, StoredEvent,
};

/// Stores `event` in `state` unless its id is already stored. Returns whether
/// it was new. An event without `created` is filed under its arrival second.
pub(super) fn insert_event(
    conn: &Connection,
    event: &Event,
    state: &EventState,
    received_at_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (id, type, created, livemode, object_id, received_at, body, state, reason, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            event.id,
            event.kind,
            event.created.unwrap_or(received_at_ms.div_euclid(1000)),
            event.is_live(),
            event.object_id,
            received_at_ms,
            event.body,
            state.as_str(),
            state.reason(),
            rows::source_of(event),
        ])?;
    Ok(inserted == 1)
}

/// Records a new state for a stored event (replay).
pub(super) fn set_event_state(
    conn: &Connection,
    id: &str,
    state: &EventState,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE events SET state = ?2, reason = ?3 WHERE id = ?1")?
        .execute(params![id, state.as_str(), state.reason()])?;
    Ok(())
}

pub(super) fn event_cursor(conn: &Connection, id: &str) -> Result<Option<EventCursor>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT created, seq FROM events WHERE id = ?1",
            [id],
            |row| {
                Ok(EventCursor {
                    created: row.get(0)?,
                    seq: row.get(1)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn list_events(
    conn: &Connection,
    filter: EventFilter<'_>,
    limit: usize,
    after: Option<EventCursor>,
) -> Result<EventPage, StoreError> {
    let (created, seq) = after.map_or((i64::MAX, i64::MAX), |c| (c.created, c.seq));
    let mut statement = conn.prepare_cached(
        "SELECT id, body, state, reason FROM events
         WHERE (?1 IS NULL OR type = ?1) AND (?2 IS NULL OR state = ?2) AND (created, seq) < (?3, ?4)
         ORDER BY created DESC, seq DESC
         LIMIT ?5",
    )?;
    let mut events = statement
        .query_map(
            params![filter.kind, filter.state, created, seq, limit as i64 + 1],
            |row| {
                Ok(StoredEvent {
                    id: row.get(0)?,
                    body: row.get(1)?,
                    state: row.get(2)?,
                    reason: row.get(3)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = events.len() > limit;
    events.truncate(limit);
    Ok(EventPage { events, has_more })
}

/// Every stored event's arrival number and body in arrival order, `quarantined_only` or all:
/// what replay walks. Read in pages so a long log is never held at once.
pub(super) fn events_after(
    conn: &Connection,
    after_seq: i64,
    quarantined_only: bool,
    limit: usize,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, body FROM events
         WHERE seq > ?1 AND (?2 = 0 OR state = 'quarantined')
         ORDER BY seq LIMIT ?3",
    )?;
    let rows = statement
        .query_map(params![after_seq, quarantined_only, limit as i64], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Quarantined events, newest first, at most `limit`.
pub(super) fn quarantined_events(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<QuarantinedEvent>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, type, reason, received_at FROM events WHERE state = 'quarantined'
         ORDER BY created DESC, seq DESC LIMIT ?1",
    )?;
    let rows = statement
        .query_map([limit as i64], |row| {
            Ok(QuarantinedEvent {
                id: row.get(0)?,
                kind: row.get(1)?,
                reason: row.get(2)?,
                received_at_ms: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many events wait in quarantine.
pub(super) fn count_quarantined(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM events WHERE state = 'quarantined'")?
        .query_row([], |row| row.get(0))?)
}
