//! `Authorization: Bearer <admin token>`, compared in constant time.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::startup::AppState;

/// Proof that the request carried the admin token; take it as a handler argument.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let allowed = match (token, request.app_data::<web::Data<AppState>>()) {
            (Some(token), Some(state)) => state.credentials.admin_token_matches(token.trim()),
            _ => false,
        };
        ready(if allowed {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        })
    }
}
