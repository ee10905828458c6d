//! The one place that maps errors to HTTP status codes and JSON bodies:
//! `{"error":{"type":"…","message":"…"}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::casapay::event::InvalidEvent;
use crate::casapay::signature::SignatureError;
use crate::rent_roll::RentRollErrors;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidSignature(#[from] SignatureError),
    #[error("{0}")]
    InvalidEvent(#[from] InvalidEvent),
    #[error("body is larger than the {limit} byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("the body did not arrive within {seconds} s")]
    BodyTimeout { seconds: f64 },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidRentRoll(RentRollErrors),
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("missing or wrong admin token (give it as the password)")]
    DashboardUnauthorized,
    #[error("no such endpoint")]
    NotFound,
    /// Try again: the database is busy or full, the write queue is full, or
    /// the service is stopping. The cause is logged, not shown.
    #[error("storage unavailable, nothing was stored; try again")]
    Unavailable(StoreError),
    /// CasaPay's API failed (after retries): the run is recorded as failed.
    #[error("sync failed: {0}")]
    SyncFailed(String),
    /// A bug or a damaged database: the cause is logged, not shown.
    #[error("internal error; the cause is in the service's log")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            ApiError::Unavailable(error)
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

/// The blocking pool refuses work only while the service shuts down.
impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::Unavailable(StoreError::ShuttingDown)
    }
}

impl ApiError {
    /// The `type` of the JSON error, also the `outcome` in logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::InvalidEvent(_) => "invalid_event",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyTimeout { .. } => "request_timeout",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidRentRoll(_) => "invalid_rent_roll",
            ApiError::Unauthorized | ApiError::DashboardUnauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::Unavailable(_) => "storage_unavailable",
            ApiError::Internal(_) => "internal_error",
            ApiError::SyncFailed(_) => "sync_failed",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidSignature(_)
            | ApiError::InvalidEvent(_)
            | ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidRentRoll(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized | ApiError::DashboardUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::SyncFailed(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Logged here, once per response: the body never carries the cause.
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "storage unavailable"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"casapay-recon\""),
                ));
            }
            ApiError::DashboardUnauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"casapay-recon\", charset=\"UTF-8\""),
                ));
            }
            ApiError::Unavailable(StoreError::QueueFull) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            _ => {}
        }
        let mut error = json!({"type": self.kind(), "message": self.to_string()});
        if let ApiError::InvalidRentRoll(RentRollErrors(errors)) = self {
            error["errors"] = json!(errors);
        }
        response.json(json!({ "error": error }))
    }
}
