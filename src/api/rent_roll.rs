//! `POST /api/rent-roll` (text/csv): validate the whole file, then upsert it in one transaction.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::Admin;
use crate::error::ApiError;
use crate::rent_roll;
use crate::startup::AppState;

pub async fn import_rent_roll(
    _admin: Admin,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let roll = web::block(move || rent_roll::parse(&body))
        .await?
        .map_err(ApiError::InvalidRentRoll)?;
    let summary = state
        .writer
        .write(move |conn| conn.import_rent_roll(&roll))
        .await?
        .map_err(ApiError::InvalidRentRoll)?;
    Ok(HttpResponse::Ok().json(json!({
        "object": "rent_roll_import",
        "lines": summary.lines,
        "properties": summary.properties,
        "landlords": summary.landlords,
    })))
}
