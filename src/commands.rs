//! What each command does, called by `main` after configuration is loaded.

use anyhow::{Context, bail};

use crate::cli::TriggerArgs;
use crate::config::Settings;
use crate::domain::{Currency, Money, Period, Secret};
use crate::startup::{self, Application};
use crate::store;
use crate::trigger::{self, Sample};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(&settings)?;
    for credential in &app.generated {
        // Shown once, on stderr, never through the logger.
        eprintln!(
            "Generated {}: {}\n  (stored in {}; it will not be shown again)",
            credential.name,
            credential.value.expose(),
            settings.database.display()
        );
    }
    tracing::info!(
        address = %settings.bind,
        port = app.port(),
        database = %settings.database.display(),
        "casapay-recon listening; webhooks at POST /webhooks/casapay"
    );
    app.run_until_stopped().await?;
    Ok(())
}

pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    startup::open_database(settings)?;
    println!(
        "{}: schema version {}",
        settings.database.display(),
        store::SCHEMA_VERSION
    );
    Ok(())
}

pub async fn trigger(settings: &Settings, args: TriggerArgs) -> anyhow::Result<()> {
    let secret = match (&args.secret, &settings.webhook_secrets) {
        (Some(secret), _) => Secret::new(secret.clone()),
        (None, Some(configured)) => configured[0].clone(),
        (None, None) => stored_secret(settings)?,
    };
    let url = args.url.clone().unwrap_or_else(|| {
        let bind = settings.bind.replace("0.0.0.0", "127.0.0.1");
        format!("http://{bind}/webhooks/casapay")
    });
    let now = jiff::Timestamp::now();
    let period = match &args.period {
        Some(text) => text.parse::<Period>()?,
        None => Period::of_date(now.to_zoned(settings.timezone.clone()).date()),
    };
    let currency = Currency::parse(&args.currency)?;
    let sample = Sample {
        event_type: args.event_type,
        property_id: args.property,
        landlord_id: args.landlord,
        period,
        amount: Money::new(args.amount, currency)?,
        object_id: args.object,
        payment_agreement: args.payment_agreement,
    };
    let body = sample.to_json(now.as_second());
    let (status, answer) = trigger::send(&url, &secret, body, now.as_second())
        .await
        .with_context(|| format!("sending to {url}"))?;
    println!("{status} {answer}");
    if !(200..300).contains(&status) {
        bail!("the endpoint answered {status}");
    }
    Ok(())
}

fn stored_secret(settings: &Settings) -> anyhow::Result<Secret> {
    let missing = || {
        anyhow::anyhow!(
            "no signing secret: pass --secret, set CASAPAY_WEBHOOK_SECRETS, or start `casapay-recon serve` once so it generates one in {}",
            settings.database.display()
        )
    };
    if !settings.database.exists() {
        return Err(missing());
    }
    let conn = rusqlite::Connection::open_with_flags(
        &settings.database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    store::stored_webhook_secret(&conn)
        .ok()
        .flatten()
        .ok_or_else(missing)
}
