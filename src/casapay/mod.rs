//! CasaPay's side: how it signs webhooks and how its events read (pure), and
//! a client of its API (for sync and the balance check).

pub mod client;
pub mod event;
pub mod signature;
