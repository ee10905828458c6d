//! `POST /webhooks/casapay`: read at most `max_body` bytes, verify, parse, store.
//! Every signed event is answered 200 once stored, whatever its state.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use crate::casapay::{event, signature};
use crate::error::ApiError;
use crate::ingest::{self, Outcome};
use crate::metrics;
use crate::startup::AppState;

#[derive(Debug, Serialize)]
struct Receipt {
    received: bool,
    id: String,
    duplicate: bool,
    /// What became of a new event (`applied`, `quarantined`, …); absent on a duplicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
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
            let outcome = match (receipt.duplicate, receipt.state) {
                (true, _) => "duplicate",
                (false, Some("quarantined")) => "quarantined",
                (false, Some("other_mode")) => "other_mode",
                _ => "stored",
            };
            metrics::webhook(kind, outcome, elapsed);
            tracing::info!(event_id = %receipt.id, event_type = %kind, outcome, state = receipt.state.unwrap_or("duplicate"), latency_us = micros, "webhook");
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
    if event::type_disagrees(&event) {
        metrics::type_mismatch(&kind);
        tracing::warn!(event_id = %id, event_type = %kind, "event type disagrees with its object's status; applied by the object");
    }
    let received_at = now.as_millisecond();
    let policy = Arc::clone(&state.ingest);
    let outcome = state
        .writer
        .write(move |conn| ingest::apply_event(conn, &event, received_at, &policy))
        .await?;
    let receipt = match outcome {
        Outcome::Duplicate => Receipt {
            received: true,
            id,
            duplicate: true,
            state: None,
        },
        Outcome::Stored {
            state: reached,
            mails,
        } => {
            if mails > 0 {
                metrics::mail("queued", mails);
                state.mail_wake.notify_one();
            }
            Receipt {
                received: true,
                id,
                duplicate: false,
                state: Some(reached.as_str()),
            }
        }
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
