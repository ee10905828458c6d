//! CasaPay's formats: how it signs webhooks and how its events read. Pure.

pub mod event;
pub mod signature;
