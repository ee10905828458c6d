use clap::Parser;

use casapay_recon::cli::{Cli, Command};
use casapay_recon::config::Settings;
use casapay_recon::{commands, telemetry};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config)?;
    telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve => commands::serve(settings).await,
        Command::Migrate => commands::migrate(&settings),
        Command::Trigger(args) => commands::trigger(&settings, *args).await,
    }
}
