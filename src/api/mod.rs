//! The admin API (`/api/*`, bearer token) and the health endpoints.

mod auth;
mod dashboard;
mod events;
mod health;
mod metrics;
mod reconciliation;
mod rent_roll;
mod reports;

pub use auth::Admin;
pub use dashboard::dashboard;
pub use events::list_events;
pub use health::{healthz, readyz};
pub use metrics::get_metrics;
pub use reconciliation::get_reconciliation;
pub use rent_roll::import_rent_roll;
pub use reports::get_daily_report;
