//! `GET /api/events?type=&state=&limit=&starting_after=`: stored events, newest first.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Admin;
use crate::domain::EventState;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{EventFilter, StoreError};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

/// A page size from 1 to [`MAX_LIMIT`]; the error names the parameter.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct Limit(pub usize);

impl TryFrom<String> for Limit {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(Limit(limit)),
            _ => Err(format!(
                "limit: `{text}` is not an integer from 1 to {MAX_LIMIT}"
            )),
        }
    }
}

/// An event state to filter on.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct StateFilter(String);

impl TryFrom<String> for StateFilter {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if EventState::NAMES.contains(&text.as_str()) {
            Ok(StateFilter(text))
        } else {
            Err(format!(
                "state: `{text}` is not one of {}",
                EventState::NAMES.join(", ")
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<StateFilter>,
    limit: Option<Limit>,
    starting_after: Option<String>,
}

/// Each listed event's state, beside `data` (which holds the events exactly as received).
#[derive(Serialize)]
struct EventStateEntry {
    id: String,
    state: String,
    reason: Option<String>,
}

#[derive(Serialize)]
struct EventList {
    object: &'static str,
    data: Vec<Box<RawValue>>,
    states: Vec<EventStateEntry>,
    has_more: bool,
}

pub async fn list_events(
    _admin: Admin,
    query: web::Query<EventsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let EventsQuery {
        kind,
        state: wanted,
        limit,
        starting_after,
    } = query.into_inner();
    let limit = limit.map_or(DEFAULT_LIMIT, |Limit(limit)| limit);
    let pool = state.reads.clone();
    let page = web::block(move || -> Result<_, ApiError> {
        pool.read(|store| {
            let after = match starting_after {
                Some(id) => Some(store.event_cursor(&id)?.ok_or_else(|| {
                    ApiError::InvalidRequest(format!("starting_after: no event `{id}`"))
                })?),
                None => None,
            };
            let filter = EventFilter {
                kind: kind.as_deref(),
                state: wanted.as_ref().map(|StateFilter(s)| s.as_str()),
            };
            Ok(store.list_events(filter, limit, after)?)
        })
    })
    .await??;
    let mut data = Vec::with_capacity(page.events.len());
    let mut states = Vec::with_capacity(page.events.len());
    for event in page.events {
        data.push(RawValue::from_string(event.body).map_err(|e| {
            StoreError::Corrupt(format!("stored event {} is not JSON: {e}", event.id))
        })?);
        states.push(EventStateEntry {
            id: event.id,
            state: event.state,
            reason: event.reason,
        });
    }
    Ok(HttpResponse::Ok().json(EventList {
        object: "list",
        data,
        states,
        has_more: page.has_more,
    }))
}
