//! One log line per request, every route: method, path, status, latency.
//! Error bodies are logged once, where they are mapped (see `error.rs`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Nothing is prepared when INFO is filtered out (RUST_LOG=warn under load).
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.call(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    // The path only: query strings may carry ids, never secrets, but stay out of logs anyway.
    let path = request.path().to_string();
    let response = next.call(request).await?;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}
