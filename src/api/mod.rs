//! The admin API (`/api/*`, bearer token) and the health endpoints.

mod auth;
mod events;
mod health;
mod reconciliation;
mod rent_roll;
mod reports;

pub use auth::Admin;
pub use events::list_events;
pub use health::{healthz, readyz};
pub use reconciliation::get_reconciliation;
pub use rent_roll::import_rent_roll;
pub use reports::get_daily_report;
