//! `Authorization: Bearer <admin token>`, compared in constant time; the
//! dashboard also takes the token as the HTTP Basic password.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;

use crate::error::ApiError;
use crate::startup::AppState;

/// Proof that the request carried the admin token; take it as a handler argument.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(if authorized(request, false) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        })
    }
}

/// Like [`Admin`], also accepting `Authorization: Basic` with the token as password.
#[derive(Debug)]
pub struct DashboardAdmin;

impl FromRequest for DashboardAdmin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(if authorized(request, true) {
            Ok(DashboardAdmin)
        } else {
            Err(ApiError::DashboardUnauthorized)
        })
    }
}

fn authorized(request: &HttpRequest, allow_basic: bool) -> bool {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return false;
    };
    presented_token(request, allow_basic)
        .is_some_and(|token| state.credentials.admin_token_matches(&token))
}

fn presented_token(request: &HttpRequest, allow_basic: bool) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ").filter(|_| allow_basic)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let credentials = String::from_utf8(decoded).ok()?;
    credentials
        .split_once(':')
        .map(|(_, password)| password.to_string())
}
