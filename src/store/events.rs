//! The event log: every event as received, once.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::webhook::event::Event;

/// Stores `event` unless its id is already stored. Returns whether it was new.
pub fn insert_event(
    conn: &Connection,
    event: &Event,
    applied: bool,
    received_at_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events (id, type, created, livemode, object_id, applied, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            event.id,
            event.kind,
            event.created,
            event.livemode,
            event.object_id,
            applied,
            received_at_ms,
            event.body,
        ])?;
    Ok(inserted == 1)
}

/// Where an event sits in the newest-first order, for `starting_after`.
#[derive(Debug, Clone, Copy)]
pub struct EventCursor {
    created: i64,
    seq: i64,
}

pub fn event_cursor(conn: &Connection, id: &str) -> Result<Option<EventCursor>, StoreError> {
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

/// Raw bodies, newest first (by CasaPay's `created`, then by arrival).
#[derive(Debug)]
pub struct EventPage {
    pub bodies: Vec<String>,
    pub has_more: bool,
}

pub fn list_events(
    conn: &Connection,
    kind: Option<&str>,
    limit: usize,
    after: Option<EventCursor>,
) -> Result<EventPage, StoreError> {
    let (created, seq) = after.map_or((i64::MAX, i64::MAX), |c| (c.created, c.seq));
    let mut statement = conn.prepare_cached(
        "SELECT body FROM events
         WHERE (?1 IS NULL OR type = ?1) AND (created, seq) < (?2, ?3)
         ORDER BY created DESC, seq DESC
         LIMIT ?4",
    )?;
    let mut bodies = statement
        .query_map(params![kind, created, seq, limit as i64 + 1], |row| {
            row.get(0)
        })?
        .collect::<Result<Vec<String>, _>>()?;
    let has_more = bodies.len() > limit;
    bodies.truncate(limit);
    Ok(EventPage { bodies, has_more })
}
