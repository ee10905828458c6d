//! The admin API (`/api/*`, bearer token) and the health endpoints.

mod auth;
mod events;
mod health;

pub use auth::Admin;
pub use events::list_events;
pub use health::{healthz, readyz};
