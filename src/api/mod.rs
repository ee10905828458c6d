//! The HTTP handlers: the webhook endpoint, the admin API (`/api/*`, bearer
//! token), the dashboard, metrics and health. Each parses, calls, maps errors.

mod auth;
mod dashboard;
mod events;
mod health;
mod logging;
mod metrics;
mod reconciliation;
mod rent_roll;
mod reports;
mod sync;
mod webhook;

pub use auth::Admin;
pub use dashboard::dashboard;
pub use events::list_events;
pub use health::{healthz, readyz};
pub use logging::log_request;
pub use metrics::get_metrics;
pub use reconciliation::get_reconciliation;
pub use rent_roll::import_rent_roll;
pub use reports::get_daily_report;
pub use sync::run_sync;
pub use webhook::receive_webhook;
