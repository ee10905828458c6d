//! The webhook endpoint: signature verification, event parsing, the HTTP handler.

pub mod event;
pub mod routes;
pub mod signature;
