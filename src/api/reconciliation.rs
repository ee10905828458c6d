//! `GET /api/reconciliation?period=YYYY-MM[&landlord_id=…][&format=json|csv][&as_of=YYYY-MM-DD]`.

use actix_web::{HttpResponse, web};
use jiff::civil::Date;
use serde::Deserialize;

use super::Admin;
use crate::domain::Period;
use crate::error::ApiError;
use crate::format::Format;
use crate::recon::{self, render};
use crate::startup::AppState;
use crate::store::StoreError;

#[derive(Debug, Deserialize)]
pub struct ReconciliationQuery {
    period: String,
    landlord_id: Option<String>,
    format: Option<Format>,
    as_of: Option<String>,
}

pub async fn get_reconciliation(
    _admin: Admin,
    query: web::Query<ReconciliationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let period: Period = query
        .period
        .parse()
        .map_err(|e| ApiError::InvalidRequest(format!("period: {e}")))?;
    let as_of = match &query.as_of {
        Some(text) => text.parse::<Date>().map_err(|_| {
            ApiError::InvalidRequest(format!("as_of: `{text}` is not a date YYYY-MM-DD"))
        })?,
        None => state.clock.now().to_zoned(state.timezone.clone()).date(),
    };
    let format = query.format.unwrap_or(Format::Json);
    let (pool, timezone) = (state.reads.clone(), state.timezone.clone());
    let landlord = query.landlord_id;
    let body = web::block(move || -> Result<String, ApiError> {
        let conn = pool.get().map_err(StoreError::from)?;
        let reconciliation =
            recon::reconcile_stored(&conn, period, as_of, &timezone, landlord.as_deref())?;
        Ok(render::render(&reconciliation, format))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body))
}
