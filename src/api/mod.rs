//! The HTTP handlers: the webhook endpoint, the admin API (`/api/*`, bearer
//! token), the dashboard, metrics and health. Each parses, calls, maps errors.

mod arrears;
mod auth;
mod dashboard;
mod events;
mod health;
mod logging;
mod metrics;
mod query;
mod reconciliation;
mod rent_roll;
mod reports;
mod stream;
mod sync;
mod webhook;

pub use arrears::get_arrears;
pub use auth::Admin;
pub use dashboard::dashboard;
pub use events::list_events;
pub use health::{healthz, readyz};
pub use logging::log_request;
pub use metrics::{MetricsRefresh, get_metrics};
pub use query::DateParam;
pub use reconciliation::get_reconciliation;
pub use rent_roll::import_rent_roll;
pub use reports::get_daily_report;
pub use sync::run_sync;
pub use webhook::receive_webhook;

/// Every route of the service. `/metrics` is left out when it has a listener
/// of its own (`CASAPAY_METRICS_BIND`).
pub fn routes(routes: &mut actix_web::web::ServiceConfig, with_metrics: bool) {
    use actix_web::web;
    routes
        .route("/webhooks/casapay", web::post().to(receive_webhook))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/api/events", web::get().to(list_events))
        .route("/api/rent-roll", web::post().to(import_rent_roll))
        .route("/api/reconciliation", web::get().to(get_reconciliation))
        .route("/api/arrears", web::get().to(get_arrears))
        .route("/api/reports/daily", web::get().to(get_daily_report))
        .route("/api/sync", web::post().to(run_sync))
        .route("/dashboard", web::get().to(dashboard));
    if with_metrics {
        routes.route("/metrics", web::get().to(get_metrics));
    }
    routes.default_service(web::to(|| async {
        Err::<String, _>(crate::error::ApiError::NotFound)
    }));
}
