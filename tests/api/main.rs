//! Integration tests: the real server on a loopback port, a real SQLite file,
//! real signed HTTP requests.

mod browser;
mod crash;
mod database;
mod events_api;
mod faithful;
mod helpers;
mod mail;
mod operations;
mod process;
mod reconciliation;
mod rent_roll;
mod report;
mod signature_vectors;
mod simulate;
mod smtp;
mod sync;
mod webhook;
