//! `GET /api/arrears[?as_of=YYYY-MM-DD][&format=json|csv|html|text]`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Admin, DateParam};
use crate::error::ApiError;
use crate::format::Format;
use crate::recon::{arrears, render};
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
pub struct ArrearsQuery {
    as_of: Option<DateParam>,
    format: Option<Format>,
}

pub async fn get_arrears(
    _admin: Admin,
    query: web::Query<ArrearsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let as_of = query.as_of.map_or_else(
        || state.clock.now().to_zoned(state.timezone.clone()).date(),
        |DateParam(date)| date,
    );
    let format = query.format.unwrap_or(Format::Json);
    let (pool, timezone) = (state.reads.clone(), state.timezone.clone());
    let body = web::block(move || -> Result<String, ApiError> {
        let arrears = pool.read(|store| arrears::arrears_stored(store, as_of, &timezone))?;
        Ok(render::render_arrears(&arrears, format))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body))
}
