//! The command line: every command and flag.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ConfigArgs;
use crate::format::Format;

#[derive(Debug, Parser)]
#[command(
    name = "casapay-recon",
    version,
    about = "CasaPay webhook receiver and rent reconciliation"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhook endpoint, admin API, mail and report workers.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Send a correctly signed sample event to a webhook endpoint.
    Trigger(Box<TriggerArgs>),
    /// Manage the rent roll (expected rent per property and period).
    #[command(subcommand)]
    RentRoll(RentRollCommand),
    /// Reconcile one period: expected rent against collections and payouts.
    Reconcile(ReconcileArgs),
    /// Rent outstanding past its due date, by age (0-30, 31-60, 61-90, 90+ days).
    Arrears(ArrearsArgs),
    /// The daily reconciliation report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Read CasaPay's API and apply what webhooks missed (needs CASAPAY_API_KEY).
    Sync(SyncArgs),
    /// The stored event log.
    #[command(subcommand)]
    Events(EventsCommand),
    /// See and re-queue mail waiting in the outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// CasaPay in a box: its API, its webhooks, and a month of chaos checked against the truth.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// Measure the service: rerunnable load and timing benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Build the report for a date: events received, periods with exceptions, exceptions, totals.
    Daily(DailyReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct DailyReportArgs {
    /// The date, YYYY-MM-DD [default: yesterday in CASAPAY_TIMEZONE].
    #[arg(long)]
    pub date: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also mail it to CASAPAY_REPORT_TO now.
    #[arg(long)]
    pub send: bool,
}

#[derive(Debug, clap::Args)]
pub struct ArrearsArgs {
    /// The date that decides what is past due, YYYY-MM-DD [default: today].
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Read objects created since this date, YYYY-MM-DD [default: 35 days ago].
    #[arg(long)]
    pub since: Option<String>,
    /// Change nothing; print what would change.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Play a month of rent against a running service, then compare its
    /// reconciliation with the truth; exit 1 on any difference.
    Month(SimulateMonthArgs),
    /// Serve CasaPay's API on --bind [default: 127.0.0.1:12111] (and deliver
    /// the webhooks its changes cause to --target).
    Serve(SimulateServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct SimulateMonthArgs {
    /// The service's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub target: String,
    /// The webhook signing secret the service accepts.
    #[arg(long, hide_env_values = true)]
    pub secret: String,
    /// The month, YYYY-MM [default: last month].
    #[arg(long)]
    pub period: Option<String>,
    /// Properties in the generated rent roll.
    #[arg(long, default_value_t = 100)]
    pub properties: usize,
    /// Seed: the same seed plays the same month.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Comma-separated: duplicates, reorder, delay, outage, drop, test-mode,
    /// unknown, late-failure; `all` (everything but drop) or `none`.
    #[arg(long, default_value = "none")]
    pub chaos: String,
    /// Serve the simulated API here while the month plays (the service syncs from it).
    #[arg(long)]
    pub api_bind: Option<String>,
    /// The API key the simulated API accepts [default: any sk_test_… key].
    #[arg(long, hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SimulateServeArgs {
    /// The service's base URL: webhooks go to <target>/webhooks/casapay.
    #[arg(long)]
    pub target: Option<String>,
    /// Signing secret for the webhooks.
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// The API key the simulated API accepts [default: any sk_test_… key].
    #[arg(long, hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Re-apply stored events with this version's rules. Without
    /// --quarantined, rebuild PaymentRequests, Payouts and event states from
    /// the log. Mails only states no mail has announced yet.
    Replay {
        /// Only retry quarantined events (after an upgrade taught their shape).
        #[arg(long)]
        quarantined: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Mail not yet sent (or with --status: queued, sending, sent, failed).
    List {
        #[arg(long)]
        status: Option<String>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put failed mail back in the queue: all of it, or the given ids.
    Retry {
        /// Outbox ids [default: every failed mail].
        ids: Vec<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Send unique signed events; report events/s, p50/p99/max latency and non-200 answers.
    Ingest(BenchIngestArgs),
    /// Build a rent roll and three events per property, then time one period's reconciliation.
    Reconcile {
        /// Properties in the rent roll (each expected for three months).
        #[arg(long, default_value_t = 100_000)]
        properties: usize,
        /// Timed runs.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Keep the generated database here (a new file) to measure reports
        /// and the dashboard on it [default: a temporary one, deleted].
        #[arg(long = "keep", value_name = "FILE")]
        keep: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct BenchIngestArgs {
    /// A running endpoint; repeat for several instances, which the connections take in turn
    /// [default: start the service in-process, on a temporary SQLite file, or on
    /// CASAPAY_DATABASE when that is a postgres:// URL].
    #[arg(long = "url")]
    pub urls: Vec<String>,
    /// Signing secret for --url [default: the configured one].
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// Concurrent connections, one request in flight each.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Total events per second [default: as fast as the service answers].
    #[arg(long)]
    pub rate: Option<u32>,
    /// In-process only: every event matches one of 1,000 properties whose
    /// landlord has an e-mail address, so every event queues a mail.
    #[arg(long)]
    pub mail: bool,
    /// In-process only: events stored before the load starts.
    #[arg(long, default_value_t = 0)]
    pub stored: usize,
}

#[derive(Debug, Subcommand)]
pub enum RentRollCommand {
    /// Validate a CSV file whole, then upsert it by (property_id, period).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The period, YYYY-MM.
    #[arg(long)]
    pub period: String,
    /// Only this landlord's lines and payouts.
    #[arg(long)]
    pub landlord: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The date that decides what is overdue, YYYY-MM-DD [default: today].
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// Event type, e.g. payment_request.succeeded or payout.paid.
    #[arg(value_name = "TYPE")]
    pub event_type: String,
    /// Endpoint [default: http://<bind>/webhooks/casapay from the configuration].
    #[arg(long)]
    pub url: Option<String>,
    /// Signing secret [default: the configured or stored one].
    #[arg(long, hide_env_values = true)]
    pub secret: Option<String>,
    /// metadata.property_id of a PaymentRequest.
    #[arg(long, default_value = "prop_demo")]
    pub property: String,
    /// metadata.landlord_id of a Payout.
    #[arg(long, default_value = "ll_demo")]
    pub landlord: String,
    /// metadata.period, YYYY-MM [default: this month].
    #[arg(long)]
    pub period: Option<String>,
    /// Amount in minor units.
    #[arg(long, default_value_t = 120000)]
    pub amount: i64,
    /// Lower-case ISO 4217 currency.
    #[arg(long, default_value = "eur")]
    pub currency: String,
    /// Id of the PaymentRequest or Payout [default: a new random one].
    #[arg(long)]
    pub object: Option<String>,
    /// payment_agreement of a PaymentRequest [default: pa_<property>].
    #[arg(long)]
    pub payment_agreement: Option<String>,
}
