//! `POST /webhooks/casapay`: read at most `max_body` bytes, verify, parse, store.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use crate::error::ApiError;
use crate::ingest::{self, Outcome};
use crate::metrics;
use crate::startup::AppState;
use crate::webhook::{event, signature};

#[derive(Debug, Serialize)]
struct Receipt {
    received: bool,
    id: String,
    duplicate: bool,
}

pub async fn receive_webhook(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let result = receive(&request, payload, &state).await;
    let elapsed = started.elapsed();
    let micros = elapsed.as_micros() as u64;
    match &result {
        Ok((receipt, kind)) => {
            let outcome = if receipt.duplicate {
                "duplicate"
            } else {
                "stored"
            };
            metrics::webhook(kind, outcome, elapsed);
            tracing::info!(event_id = %receipt.id, event_type = %kind, outcome, latency_us = micros, "webhook");
        }
        Err(error) => {
            let outcome = match error {
                ApiError::PayloadTooLarge { .. } => "too_large",
                ApiError::Unavailable(_) => "unavailable",
                other => other.kind(),
            };
            metrics::webhook("", outcome, elapsed);
            tracing::warn!(outcome, %error, latency_us = micros, "webhook rejected");
        }
    }
    result.map(|(receipt, _)| HttpResponse::Ok().json(receipt))
}

async fn receive(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Receipt, String), ApiError> {
    // A slow-drip client must not hold a worker: the whole body has a deadline.
    let body = tokio::time::timeout(
        state.body_timeout,
        read_body(request, payload, state.max_body),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout {
        seconds: state.body_timeout.as_secs_f64(),
    })??;
    let header = request
        .headers()
        .get(signature::HEADER)
        .and_then(|value| value.to_str().ok());
    let now = state.clock.now();
    signature::verify(
        header,
        &body,
        &state.credentials.webhook_secrets,
        now.as_second(),
        state.signature_tolerance,
    )?;
    let event = event::parse(&body)?;
    let id = event.id.clone();
    let kind = event.kind.clone();
    let received_at = now.as_millisecond();
    let policy = Arc::clone(&state.mail_policy);
    let outcome = state
        .writer
        .write(move |conn| ingest::apply_event(conn, &event, received_at, &policy))
        .await?;
    if let Outcome::Stored {
        mails: mails @ 1.., ..
    } = outcome
    {
        metrics::mail("queued", mails);
        state.mail_wake.notify_one();
    }
    let receipt = Receipt {
        received: true,
        id,
        duplicate: outcome == Outcome::Duplicate,
    };
    Ok((receipt, kind))
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`:
/// from Content-Length before reading, or while streaming when it is absent or wrong.
async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
