//! `/healthz`: the process answers. `/readyz`: the database takes a write.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now().as_millisecond();
    state
        .writer
        .write(move |conn| conn.record_heartbeat(now))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
