//! CasaPay's API as the seed documents describe it, served from a [`World`]:
//! bearer-key auth, Stripe-style lists (`limit`, `starting_after`, newest
//! first, `has_more`) and errors (`{"error":{"type","message"}}`).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::world::{Metadata, Payout, Request, World, WorldError};
use crate::domain::{Currency, Money};

/// What the API serves and who may call it.
pub struct ApiState {
    pub world: Arc<Mutex<World>>,
    /// The key callers must present; `None`: any key starting with `sk_test_`.
    pub api_key: Option<String>,
    /// Woken after every change, so new events can be delivered.
    pub changed: Arc<Notify>,
}

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"type": kind, "message": message.into()}}))
}

fn invalid(message: impl Into<String>) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn from_world(e: WorldError) -> HttpResponse {
    match e {
        WorldError::NotFound(..) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            e.to_string(),
        ),
        WorldError::Invalid(message) => invalid(message),
    }
}

/// Proof that the caller presented an accepted API key; take it as a handler argument.
pub struct Key;

impl actix_web::FromRequest for Key {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let accepted = request
            .app_data::<web::Data<ApiState>>()
            .is_some_and(|state| authorized(request, state));
        std::future::ready(if accepted {
            Ok(Key)
        } else {
            Err(
                actix_web::error::InternalError::from_response("unauthorized", unauthorized())
                    .into(),
            )
        })
    }
}

fn authorized(request: &HttpRequest, state: &ApiState) -> bool {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (presented, &state.api_key) {
        (Some(key), Some(expected)) => key == expected,
        (Some(key), None) => key.starts_with("sk_test_"),
        (None, _) => false,
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    starting_after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NewRequest {
    payment_agreement: String,
    amount: i64,
    currency: String,
    description: Option<String>,
    metadata: Option<Value>,
}

fn metadata(value: Option<&Value>, key: &str) -> Option<String> {
    value?.get(key)?.as_str().map(str::to_string)
}

/// An amount and currency as the service reads them: a known lower-case ISO
/// 4217 code, an integer amount in its minor units, more than 0.
fn check_money(amount: i64, currency: &str) -> Result<(), HttpResponse> {
    let currency = Currency::parse(currency).map_err(|e| invalid(format!("currency: {e}")))?;
    match Money::new(amount, currency) {
        Ok(_) if amount > 0 => Ok(()),
        _ => Err(invalid(
            "amount: must be a positive integer in the smallest currency unit",
        )),
    }
}

fn request_from(new: NewRequest) -> Result<Request, HttpResponse> {
    check_money(new.amount, &new.currency)?;
    let meta = new.metadata.as_ref();
    Ok(Request {
        id: String::new(),
        object: "payment_request",
        payment_agreement: new.payment_agreement,
        amount: new.amount,
        currency: new.currency,
        description: new.description.unwrap_or_default(),
        status: "pending".into(),
        payment_method_used: "direct_debit".into(),
        failure_reason: None,
        attempts: 0,
        next_retry_at: None,
        metadata: new.metadata.as_ref().map(|_| Metadata {
            property_id: metadata(meta, "property_id"),
            landlord_id: None,
            period: metadata(meta, "period"),
        }),
        created: 0,
        livemode: false,
    })
}

fn list<T: serde::Serialize>(items: Vec<&T>, has_more: bool) -> HttpResponse {
    HttpResponse::Ok().json(json!({"object": "list", "data": items, "has_more": has_more}))
}

fn limit(query: &ListQuery) -> Result<usize, HttpResponse> {
    match query.limit.unwrap_or(10) {
        limit @ 1..=100 => Ok(limit),
        other => Err(invalid(format!("limit: {other} is not from 1 to 100"))),
    }
}

async fn create_request(
    state: web::Data<ApiState>,
    _key: Key,
    body: web::Json<NewRequest>,
) -> HttpResponse {
    let request = match request_from(body.into_inner()) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let created = state
        .world
        .lock()
        .expect("world lock")
        .create_request(request, now());
    state.changed.notify_one();
    HttpResponse::Ok().json(created)
}

#[derive(Debug, Deserialize)]
pub struct Bulk {
    payment_requests: Vec<NewRequest>,
}

async fn create_bulk(state: web::Data<ApiState>, _key: Key, body: web::Json<Bulk>) -> HttpResponse {
    let mut requests = Vec::new();
    for (i, new) in body.into_inner().payment_requests.into_iter().enumerate() {
        match request_from(new) {
            Ok(request) => requests.push(request),
            Err(_) => return invalid(format!("payment_requests[{i}] is not valid")),
        }
    }
    let mut world = state.world.lock().expect("world lock");
    let created: Vec<Request> = requests
        .into_iter()
        .map(|r| world.create_request(r, now()))
        .collect();
    drop(world);
    state.changed.notify_one();
    HttpResponse::Ok().json(json!({"object": "list", "data": created, "has_more": false}))
}

async fn get_request(state: web::Data<ApiState>, _key: Key, id: web::Path<String>) -> HttpResponse {
    match state
        .world
        .lock()
        .expect("world lock")
        .requests
        .get(id.as_str())
    {
        Some(request) => HttpResponse::Ok().json(request),
        None => from_world(WorldError::NotFound("payment_request", id.into_inner())),
    }
}

/// A page of a list, newest first, as `pick` reads it from the world.
fn listed<T: serde::Serialize>(
    state: &ApiState,
    query: &ListQuery,
    pick: impl for<'w> Fn(&'w World, usize, Option<&str>) -> Result<(Vec<&'w T>, bool), WorldError>,
) -> HttpResponse {
    let limit = match limit(query) {
        Ok(limit) => limit,
        Err(response) => return response,
    };
    let world = state.world.lock().expect("world lock");
    match pick(&world, limit, query.starting_after.as_deref()) {
        Ok((items, more)) => list(items, more),
        Err(e) => from_world(e),
    }
}

async fn list_requests(
    state: web::Data<ApiState>,
    _key: Key,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    listed(&state, &query, |world, limit, after| {
        world.list_requests(limit, after)
    })
}

async fn cancel_request(
    state: web::Data<ApiState>,
    _key: Key,
    id: web::Path<String>,
) -> HttpResponse {
    let cancelled = state
        .world
        .lock()
        .expect("world lock")
        .cancel_request(&id, now());
    state.changed.notify_one();
    match cancelled {
        Ok(request) => HttpResponse::Ok().json(request),
        Err(e) => from_world(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct NewPayout {
    amount: i64,
    currency: String,
    destination: String,
    description: Option<String>,
    metadata: Option<Value>,
}

async fn create_payout(
    state: web::Data<ApiState>,
    _key: Key,
    body: web::Json<NewPayout>,
) -> HttpResponse {
    let new = body.into_inner();
    if let Err(response) = check_money(new.amount, &new.currency) {
        return response;
    }
    let meta = new.metadata.as_ref();
    let payout = Payout {
        id: String::new(),
        object: "payout",
        amount: new.amount,
        currency: new.currency,
        status: "pending".into(),
        destination: new.destination,
        arrival_date: now() + 2 * 86_400,
        description: new.description.unwrap_or_default(),
        failure_code: None,
        failure_message: None,
        metadata: meta.map(|_| Metadata {
            property_id: None,
            landlord_id: metadata(meta, "landlord_id"),
            period: metadata(meta, "period"),
        }),
        created: 0,
        livemode: false,
    };
    let created = state
        .world
        .lock()
        .expect("world lock")
        .create_payout(payout, now());
    state.changed.notify_one();
    HttpResponse::Ok().json(created)
}

async fn list_payouts(
    state: web::Data<ApiState>,
    _key: Key,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    listed(&state, &query, |world, limit, after| {
        world.list_payouts(limit, after)
    })
}

async fn balance(state: web::Data<ApiState>, _key: Key) -> HttpResponse {
    let balance = state.world.lock().expect("world lock").balance();
    let side = |pick: fn(&(i64, i64)) -> i64| -> Vec<Value> {
        balance
            .iter()
            .map(|(currency, amounts)| json!({"amount": pick(amounts), "currency": currency}))
            .collect()
    };
    HttpResponse::Ok().json(json!({
        "object": "balance", "available": side(|a| a.0), "pending": side(|a| a.1), "livemode": true,
    }))
}

async fn create_bank_account(
    state: web::Data<ApiState>,
    _key: Key,
    body: web::Json<Value>,
) -> HttpResponse {
    let metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let account = state
        .world
        .lock()
        .expect("world lock")
        .create_bank_account(metadata, now());
    HttpResponse::Ok().json(account)
}

async fn list_bank_accounts(state: web::Data<ApiState>, _key: Key) -> HttpResponse {
    let world = state.world.lock().expect("world lock");
    list(world.bank_accounts.values().collect(), false)
}

fn unauthorized() -> HttpResponse {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "Invalid API key provided",
    )
}

/// Serves the API on `listener` until the returned server is stopped.
pub fn serve(listener: TcpListener, state: ApiState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    Ok(actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .route("/v1/payment_requests", web::post().to(create_request))
            .route("/v1/payment_requests", web::get().to(list_requests))
            .route("/v1/payment_requests/bulk", web::post().to(create_bulk))
            .route("/v1/payment_requests/{id}", web::get().to(get_request))
            .route(
                "/v1/payment_requests/{id}/cancel",
                web::post().to(cancel_request),
            )
            .route("/v1/payouts", web::post().to(create_payout))
            .route("/v1/payouts", web::get().to(list_payouts))
            .route("/v1/balance", web::get().to(balance))
            .route("/v1/bank_accounts", web::post().to(create_bank_account))
            .route("/v1/bank_accounts", web::get().to(list_bank_accounts))
            .default_service(web::to(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "Unrecognized request URL",
                )
            }))
    })
    .listen(listener)?
    .disable_signals()
    .workers(2)
    .run())
}
