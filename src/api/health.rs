//! `/healthz`: the process answers. `/readyz`: the database takes a write.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;
use crate::store;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now().as_millisecond();
    state
        .writer
        .write(move |conn| store::record_heartbeat(conn, now))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
