use std::process::ExitCode;

use clap::Parser;

use casapay_recon::cli::{
    BenchCommand, Cli, Command, EventsCommand, RentRollCommand, ReportCommand, SimulateCommand,
};
use casapay_recon::config::Settings;
use casapay_recon::{commands, telemetry};

// mimalloc hands freed memory back to the system, where glibc's per-thread
// arenas kept a large reconciliation's pages: serve's peak RSS after dashboard
// pages and reports at 100,000 properties fell from 903 MB (see README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The simulator listens on --bind only when it is given: by default the
    // service's address stays free for the service.
    let bind_given = cli.config.bind.clone();
    let settings = Settings::load(cli.config)?;
    telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve => commands::serve(settings).await,
        Command::Migrate => commands::migrate(&settings),
        Command::Trigger(args) => commands::trigger(&settings, *args).await,
        Command::RentRoll(RentRollCommand::Import { file }) => {
            commands::import_rent_roll(&settings, &file)
        }
        Command::Reconcile(args) => commands::reconcile(&settings, &args),
        Command::Arrears(args) => commands::arrears(&settings, &args),
        Command::Report(ReportCommand::Daily(args)) => {
            commands::daily_report(&settings, &args).await
        }
        Command::Sync(args) => commands::sync(&settings, &args).await,
        Command::Events(EventsCommand::Replay { quarantined }) => {
            commands::replay_events(&settings, quarantined)
        }
        Command::Outbox(command) => commands::outbox(&settings, &command),
        Command::Simulate(SimulateCommand::Month(args)) => {
            commands::simulate_month(&settings, args).await
        }
        Command::Simulate(SimulateCommand::Serve(args)) => {
            commands::simulate_serve(bind_given, args).await
        }
        Command::Bench(BenchCommand::Ingest(args)) => commands::bench_ingest(&settings, args).await,
        Command::Bench(BenchCommand::Reconcile {
            properties,
            runs,
            keep,
        }) => commands::bench_reconcile(properties, runs, keep),
    }
}
