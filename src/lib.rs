//! casapay-recon: receives CasaPay webhooks, stores each event exactly once,
//! and reconciles rent against the rent roll.

pub mod api;
pub mod bench;
pub mod casapay;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod error;
pub mod format;
pub mod ingest;
pub mod matching;
pub mod metrics;
pub mod notify;
pub mod recon;
pub mod rent_roll;
pub mod report;
pub mod sim;
pub mod startup;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod trigger;
