//! `GET /api/events?type=&limit=&starting_after=`: stored events, newest first.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Admin;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{self, StoreError};

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

/// A page size from 1 to [`MAX_LIMIT`]; the error names the parameter.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct Limit(usize);

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

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<Limit>,
    starting_after: Option<String>,
}

#[derive(Serialize)]
struct EventList {
    object: &'static str,
    data: Vec<Box<RawValue>>,
    has_more: bool,
}

pub async fn list_events(
    _admin: Admin,
    query: web::Query<EventsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let EventsQuery {
        kind,
        limit,
        starting_after,
    } = query.into_inner();
    let limit = limit.map_or(DEFAULT_LIMIT, |Limit(limit)| limit);
    let pool = state.reads.clone();
    let page = web::block(move || -> Result<_, ApiError> {
        let conn = pool.get().map_err(StoreError::from)?;
        let after = match starting_after {
            Some(id) => Some(store::event_cursor(&conn, &id)?.ok_or_else(|| {
                ApiError::InvalidRequest(format!("starting_after: no event `{id}`"))
            })?),
            None => None,
        };
        Ok(store::list_events(&conn, kind.as_deref(), limit, after)?)
    })
    .await??;
    let data = page
        .bodies
        .into_iter()
        .map(RawValue::from_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::InvalidRequest(format!("stored event is not JSON: {e}")))?;
    Ok(HttpResponse::Ok().json(EventList {
        object: "list",
        data,
        has_more: page.has_more,
    }))
}
