//! What each command does, called by `main` after configuration is loaded.

use std::io::Write as _;

use anyhow::{Context, bail};

use crate::bench;
use crate::casapay::client::{ApiClient, RetryPolicy};
use crate::cli::{
    ArrearsArgs, BenchIngestArgs, DailyReportArgs, OutboxCommand, ReconcileArgs, SimulateMonthArgs,
    SimulateServeArgs, SyncArgs, TriggerArgs,
};
use crate::config::Settings;
use crate::domain::{Currency, Money, Period, Secret};
use crate::format::Format;
use crate::ingest;
use crate::notify::{
    self,
    delivery::{Mailer, Transport},
};
use crate::recon::{self, render};
use crate::rent_roll;
use crate::report::{self, render::report_mail, render::write_report};
use crate::sim;
use crate::startup::{self, Application};
use crate::store::{self, Location};
use crate::trigger::{self, Sample};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(&settings)?;
    for credential in &app.generated {
        // Shown once, on stderr, never through the logger.
        eprintln!(
            "Generated {}: {}\n  (kept in {}; it will not be shown again)",
            credential.name,
            credential.value.expose(),
            Location::of(&settings.database)
        );
    }
    tracing::info!(
        address = %settings.bind,
        port = app.port(),
        database = %Location::of(&settings.database),
        "casapay-recon listening; webhooks at POST /webhooks/casapay"
    );
    app.run_until_stopped().await?;
    Ok(())
}

pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    startup::open_database(settings)?;
    println!(
        "{}: schema version {}",
        Location::of(&settings.database),
        store::SCHEMA_VERSION
    );
    Ok(())
}

pub async fn trigger(settings: &Settings, args: TriggerArgs) -> anyhow::Result<()> {
    let secret = signing_secret(settings, args.secret.clone())?;
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
        livemode: Sample::livemode_for(settings.mode),
    };
    let body = sample.to_json(now.as_second());
    let (status, answer) = trigger::send(
        &crate::casapay::client::http_client(),
        &url,
        &secret,
        body,
        now.as_second(),
    )
    .await
    .with_context(|| format!("sending to {url}"))?;
    println!("{status} {answer}");
    if !(200..300).contains(&status) {
        bail!("the endpoint answered {status}");
    }
    Ok(())
}

/// The secret to sign sample events with: `--secret`, else the first
/// configured one, else the one a previous `serve` generated.
fn signing_secret(settings: &Settings, flag: Option<String>) -> anyhow::Result<Secret> {
    match (flag, &settings.webhook_secrets) {
        (Some(secret), _) => Ok(Secret::new(secret)),
        (None, Some(configured)) => Ok(configured[0].clone()),
        (None, None) => stored_secret(settings),
    }
}

fn stored_secret(settings: &Settings) -> anyhow::Result<Secret> {
    let missing = || {
        anyhow::anyhow!(
            "no signing secret: pass --secret, set CASAPAY_WEBHOOK_SECRETS, or start `casapay-recon serve` once so it generates one in {}",
            Location::of(&settings.database)
        )
    };
    if let Location::Sqlite(path) = Location::of(&settings.database)
        && !path.exists()
    {
        return Err(missing());
    }
    startup::open_database(settings)?
        .reads()
        .read(|store| store::stored_webhook_secret(store))
        .ok()
        .flatten()
        .ok_or_else(missing)
}

/// Exits non-zero with every error listed when the file is rejected.
pub fn import_rent_roll(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rejected = |errors: rent_roll::RentRollErrors| {
        for error in &errors.0 {
            eprintln!("{}: {error}", file.display());
        }
        anyhow::anyhow!("{errors}")
    };
    let roll = rent_roll::parse(&bytes).map_err(rejected)?;
    let summary = startup::open_database(settings)?
        .transaction(|store| store.import_rent_roll(&roll))?
        .map_err(rejected)?;
    println!(
        "imported {} expected lines ({} properties, {} landlords) from {}",
        summary.lines,
        summary.properties,
        summary.landlords,
        file.display()
    );
    Ok(())
}

/// `--as-of`, or today in `CASAPAY_TIMEZONE`.
fn as_of_or_today(as_of: Option<&str>, settings: &Settings) -> anyhow::Result<jiff::civil::Date> {
    Ok(match as_of {
        Some(text) => text
            .parse::<jiff::civil::Date>()
            .with_context(|| format!("--as-of `{text}` is not a date YYYY-MM-DD"))?,
        None => jiff::Zoned::now()
            .with_time_zone(settings.timezone.clone())
            .date(),
    })
}

pub fn reconcile(settings: &Settings, args: &ReconcileArgs) -> anyhow::Result<()> {
    let period: Period = args.period.parse()?;
    let as_of = as_of_or_today(args.as_of.as_deref(), settings)?;
    let export = recon::export::Export {
        period,
        as_of,
        timezone: settings.timezone.clone(),
        landlord: args.landlord.clone(),
        filter: recon::LineFilter::default(),
    };
    use std::io::Write;
    // Written as computed: a large period is never held whole.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    startup::open_database(settings)?
        .reads()
        .read(|store| anyhow::Ok(export.write(store, args.format, &mut out)?))?;
    if args.format == Format::Json {
        writeln!(out)?;
    }
    Ok(out.flush()?)
}

pub async fn bench_ingest(settings: &Settings, args: BenchIngestArgs) -> anyhow::Result<()> {
    if !args.urls.is_empty() && (args.mail || args.stored > 0) {
        bail!("--mail and --stored prepare the in-process service's database: leave out --url");
    }
    let temporary = tempfile::tempdir()?;
    let bench_file = temporary.path().join("bench.db");
    let (urls, secret, server) = match args.urls.is_empty() {
        false => (args.urls, signing_secret(settings, args.secret)?, None),
        true => {
            let secret = Secret::generate("whsec_bench_");
            let database = match Location::of(&settings.database) {
                Location::Postgres(_) => settings.database.clone(),
                Location::Sqlite(_) => bench_file.clone(),
            };
            let local = Settings {
                database: database.clone(),
                bind: "127.0.0.1:0".into(),
                webhook_secrets: Some(vec![secret.clone()]),
                mail_dir: temporary.path().join("mail"),
                ..settings.clone()
            };
            prepare_bench_database(&local, &args)?;
            let app = Application::build(&local)?;
            let url = format!("http://127.0.0.1:{}/webhooks/casapay", app.port());
            (
                vec![url],
                secret,
                Some(actix_web::rt::spawn(app.run_until_stopped())),
            )
        }
    };
    println!(
        "bench ingest: {}, {} connections, {} s, rate {}, write batch {}",
        urls.join(" + "),
        args.connections,
        args.seconds,
        args.rate
            .map_or("unlimited".to_string(), |r| format!("{r}/s")),
        if server.is_some() {
            settings.write_batch.to_string()
        } else {
            "as configured there".into()
        }
    );
    let load = bench::IngestLoad {
        urls,
        secret,
        connections: args.connections.max(1),
        duration: std::time::Duration::from_secs(args.seconds),
        rate: args.rate,
        mail: args.mail,
    };
    // The load runs on its own multi-threaded runtime, beside the service's workers.
    let report = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(bench::run_ingest(load)))
    })
    .await??;
    println!("{report}");
    if let Some(server) = server {
        server.abort();
        print_stored_volume(&bench_file, args.stored + report.ok);
    }
    Ok(())
}

/// On-disk bytes an event of an in-process SQLite run: the database file,
/// and apart the WAL, whose size the writer bounds (pages not yet copied
/// back make the first figure err low by at most a checkpoint's worth).
fn print_stored_volume(database: &std::path::Path, events: usize) {
    let size = |suffix: &str| {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        std::fs::metadata(path).map_or(0, |m| m.len())
    };
    let (bytes, wal) = (size(""), size("-wal"));
    if bytes > 0 && events > 0 {
        println!(
            "stored      {:.1} MB for {events} events, {} bytes an event (WAL {:.1} MB more)",
            bytes as f64 / 1e6,
            bytes / events as u64,
            wal as f64 / 1e6
        );
    }
}

/// `--mail`: a rent roll whose landlords have e-mail; `--stored N`: N events already stored.
fn prepare_bench_database(settings: &Settings, args: &BenchIngestArgs) -> anyhow::Result<()> {
    if !args.mail && args.stored == 0 {
        return Ok(());
    }
    let database = startup::open_database(settings)?;
    if args.mail {
        let roll = bench::mail_roll();
        database
            .transaction(|store| store.import_rent_roll(&roll))?
            .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    }
    if args.stored > 0 {
        let progress = progress_bar("events stored before the load");
        progress.set_length(args.stored as u64);
        bench::prefill(&database, args.stored, &settings.timezone, &progress)?;
        progress.finish_and_clear();
    }
    Ok(())
}

pub async fn daily_report(settings: &Settings, args: &DailyReportArgs) -> anyhow::Result<()> {
    let date = match &args.date {
        Some(text) => text
            .parse::<jiff::civil::Date>()
            .with_context(|| format!("--date `{text}` is not a date YYYY-MM-DD"))?,
        None => report::yesterday(jiff::Timestamp::now(), &settings.timezone),
    };
    let database = startup::open_database(settings)?;
    let mut built = database.reads().read(|store| {
        let detail = report::Detail::for_format(args.format);
        report::build_daily_report(store, date, &settings.timezone, detail)
    })?;
    if let Some(key) = &settings.api_key {
        let client = ApiClient::new(&settings.api_base, key.clone(), RetryPolicy::default())?;
        report::balance::check(&mut built, report::balance::fetch(&client).await);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write_report(&built, args.format, &mut out)?;
    if args.format == Format::Json {
        writeln!(out)?;
    }
    out.flush()?;
    if !args.send {
        return Ok(());
    }
    if settings.report_to.is_empty() {
        bail!("--send needs CASAPAY_REPORT_TO");
    }
    // Sent by hand: its own cause, so it never stands in for the scheduled one.
    let now = jiff::Timestamp::now().as_millisecond();
    let cause = format!("report:{date}:by-hand:{now}");
    database.transaction(|store| {
        for recipient in &settings.report_to {
            store.queue_mail(&cause, &report_mail(&built, recipient), now)?;
        }
        Ok(())
    })?;
    let (writer, writer_thread) = database.start_writer()?;
    let transport = Transport::new(settings.smtp_url.as_ref(), &settings.mail_dir)?;
    let mailer = Mailer::new(transport, settings, writer.clone())?;
    while mailer.deliver_cause(&cause).await? > 0 {}
    let unsent = writer.write(move |conn| conn.unsent_mail(&cause)).await?;
    drop((mailer, writer));
    if let Some(thread) = writer_thread {
        let _ = thread.join();
    }
    if unsent > 0 {
        eprintln!(
            "{unsent} report mail(s) not delivered yet; `serve` retries them (see `casapay-recon outbox list`)"
        );
    } else {
        eprintln!("report sent to {}", settings.report_to.join(", "));
    }
    Ok(())
}

/// Replays in one transaction: a failure changes nothing.
pub fn replay_events(settings: &Settings, quarantined: bool) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    let policy = startup::ingest_policy(settings);
    let summary = startup::open_database(settings)?
        .transaction(|store| ingest::replay(store, quarantined, &policy, now))?;
    println!(
        "replayed {} event(s): {} applied, {} superseded, {} recorded, {} quarantined, {} other mode; {} mail(s) queued{}",
        summary.events,
        summary.applied,
        summary.superseded,
        summary.recorded,
        summary.quarantined,
        summary.other_mode,
        summary.mails_queued,
        if summary.mails_queued > 0 {
            " (`serve` delivers them)"
        } else {
            ""
        }
    );
    Ok(())
}

pub fn outbox(settings: &Settings, command: &OutboxCommand) -> anyhow::Result<()> {
    let database = startup::open_database(settings)?;
    match command {
        OutboxCommand::List { status, limit } => {
            let rows = database
                .reads()
                .read(|store| store.list_outbox(status.as_deref(), *limit))?;
            if rows.is_empty() {
                println!("no mail");
            }
            for row in rows {
                println!(
                    "{:>6}  {:<7}  {} attempt(s)  {:<19}  {}  {}{}",
                    row.id,
                    row.status,
                    row.attempts,
                    row.kind,
                    row.recipient,
                    notify::outbox_subject(&row, &settings.timezone),
                    row.last_error
                        .map(|e| format!("  [{e}]"))
                        .unwrap_or_default()
                );
            }
        }
        OutboxCommand::Retry { ids } => {
            let now = jiff::Timestamp::now().as_millisecond();
            let count = database.transaction(|store| store.requeue_failed_mail(ids, now))?;
            println!("{count} failed mail(s) queued again; `serve` delivers them");
        }
    }
    Ok(())
}

pub fn bench_reconcile(
    properties: usize,
    runs: usize,
    keep: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let temporary = tempfile::tempdir()?;
    let path = keep.unwrap_or_else(|| temporary.path().join("bench.db"));
    if path.exists() {
        bail!("{} exists: --keep wants a new file", path.display());
    }
    println!(
        "bench reconcile: {properties} properties, building {}…",
        path.display()
    );
    let report = bench::run_reconcile(&path, properties, runs)?;
    println!("{report}");
    Ok(())
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{what} [{{bar:40}}] {{pos}}/{{len}} {{elapsed}}"
    )) {
        bar.set_style(style);
    }
    bar
}

#[derive(Debug, thiserror::Error)]
#[error("the service disagrees with the truth on {0} item(s)")]
struct Disagrees(usize);

pub async fn simulate_month(settings: &Settings, args: SimulateMonthArgs) -> anyhow::Result<()> {
    let admin_token = settings.admin_token.clone().context(
        "simulate month calls the admin API: set CASAPAY_ADMIN_TOKEN (or --admin-token)",
    )?;
    let period = match &args.period {
        Some(text) => text.parse::<Period>()?,
        None => Period::of_date(jiff::Zoned::now().date()).previous(),
    };
    let chaos = sim::Chaos::parse(&args.chaos).map_err(anyhow::Error::msg)?;
    let api = match &args.api_bind {
        Some(bind) => Some((
            std::net::TcpListener::bind(bind).with_context(|| format!("--api-bind {bind}"))?,
            args.api_key.clone(),
        )),
        None => None,
    };
    let started = std::time::Instant::now();
    let progress = progress_bar("delivering");
    let report = sim::run_month(
        sim::MonthConfig {
            target: args.target.clone(),
            secret: Secret::new(args.secret.clone()),
            admin_token,
            period,
            properties: args.properties,
            seed: args.seed,
            chaos,
            api,
        },
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    print!(
        "{}",
        sim::render_report(
            &report,
            &format!(
                "simulate month {period}: {} properties, seed {}, chaos {}, {:.1} s",
                args.properties,
                args.seed,
                args.chaos,
                started.elapsed().as_secs_f64()
            )
        )
    );
    match report.differences.len() {
        0 => Ok(()),
        n => Err(Disagrees(n).into()),
    }
}

pub async fn simulate_serve(bind: Option<String>, args: SimulateServeArgs) -> anyhow::Result<()> {
    let bind = bind.unwrap_or_else(|| "127.0.0.1:12111".to_string());
    let listener = std::net::TcpListener::bind(&bind).with_context(|| format!("--bind {bind}"))?;
    let world = std::sync::Arc::new(std::sync::Mutex::new(sim::world::World::tagged("live_")));
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let server = sim::api::serve(
        listener,
        sim::api::ApiState {
            world: std::sync::Arc::clone(&world),
            api_key: args.api_key.clone(),
            changed: std::sync::Arc::clone(&changed),
        },
    )?;
    eprintln!(
        "simulated CasaPay API on http://{bind}/v1 (key: {})",
        args.api_key.as_deref().unwrap_or("any sk_test_…")
    );
    if let (Some(target), Some(secret)) = (args.target, args.secret) {
        eprintln!("delivering webhooks to {target}/webhooks/casapay");
        tokio::spawn(sim::deliver::forward_changes(
            world,
            changed,
            format!("{}/webhooks/casapay", target.trim_end_matches('/')),
            Secret::new(secret),
        ));
    }
    server.await?;
    Ok(())
}

pub async fn sync(settings: &Settings, args: &SyncArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(text) => text
            .parse::<jiff::civil::Date>()
            .with_context(|| format!("--since `{text}` is not a date YYYY-MM-DD"))?
            .to_zoned(settings.timezone.clone())?
            .timestamp()
            .as_second(),
        None => jiff::Timestamp::now().as_second() - crate::sync::DEFAULT_DAYS_BACK * 86_400,
    };
    let (writer, writer_thread) = startup::open_database(settings)?.start_writer()?;
    let syncer = startup::syncer(settings, &writer, crate::domain::Clock::System)?.context(
        "sync needs CASAPAY_API_KEY (and CASAPAY_API_BASE for anything but api.casapay.com)",
    )?;
    let progress = progress_bar("objects read");
    let result = syncer.run(since, args.dry_run, &progress).await;
    progress.finish_and_clear();
    drop((syncer, writer));
    if let Some(thread) = writer_thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    let summary = result?;
    print!("{}", crate::sync::render_summary(&summary));
    if summary.mails_queued > 0 {
        eprintln!(
            "{} mail(s) queued; `serve` delivers them",
            summary.mails_queued
        );
    }
    Ok(())
}

pub fn arrears(settings: &Settings, args: &ArrearsArgs) -> anyhow::Result<()> {
    let as_of = as_of_or_today(args.as_of.as_deref(), settings)?;
    let arrears = startup::open_database(settings)?
        .reads()
        .read(|store| recon::arrears::arrears_stored(store, as_of, &settings.timezone))?;
    print!("{}", render::render_arrears(&arrears, args.format));
    if args.format == Format::Json {
        println!();
    }
    Ok(())
}
