//! Builds the service: database, writer, HTTP routes; runs it until stopped.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::api::{self, MetricsRefresh};
use crate::casapay::client::{ApiClient, ClientError, RetryPolicy};
use crate::config::Settings;
use crate::domain::Clock;
use crate::error::ApiError;
use crate::ingest::IngestPolicy;
use crate::notify::MailPolicy;
use crate::notify::delivery::{MailError, Mailer, Transport};
use crate::recon::history::MonthlyTotals;
use crate::report::scheduler::Scheduler;
use crate::store::{
    self, Credentials, Database, GeneratedCredential, Location, ReadPool, StoreError, Writer,
};
use crate::sync::{self, Syncer};

/// Largest rent roll accepted over HTTP: ample for 100,000 properties × 12 months.
const RENT_ROLL_LIMIT: usize = 64 * 1024 * 1024;
/// How long the dashboard's chart keeps an earlier month's totals.
const MONTHLY_TOTALS_KEPT: std::time::Duration = std::time::Duration::from_secs(300);

/// What handlers share.
pub struct AppState {
    pub clock: Clock,
    pub credentials: Credentials,
    pub signature_tolerance: u64,
    pub max_body: usize,
    pub body_timeout: std::time::Duration,
    pub timezone: jiff::tz::TimeZone,
    /// The mode events must be of, and who hears of what they change.
    pub ingest: Arc<IngestPolicy>,
    /// Wakes the mail worker when an event queued mail.
    pub mail_wake: Arc<tokio::sync::Notify>,
    pub writer: Writer,
    pub reads: ReadPool,
    /// With `CASAPAY_API_KEY`: sync from CasaPay's API.
    pub sync: Option<Arc<Syncer>>,
    /// Earlier months' totals for the dashboard's twelve-month chart.
    pub monthly: Arc<MonthlyTotals>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    // The cause follows as the error's source (`{:#}` shows the chain once).
    #[error("database {path}")]
    Database { path: String, source: StoreError },
    #[error("cannot listen on {bind}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("server: {0}")]
    Server(#[from] std::io::Error),
}

pub struct Application {
    port: u16,
    server: Server,
    mailer: Mailer,
    scheduler: Scheduler,
    mail_wake: Arc<tokio::sync::Notify>,
    /// SQLite's writer thread, joined once every write is done.
    writer_thread: Option<JoinHandle<()>>,
    /// Syncs every `CASAPAY_SYNC_EVERY`, when set.
    periodic_sync: Option<(Arc<Syncer>, std::time::Duration)>,
    /// `/metrics` on `CASAPAY_METRICS_BIND`, apart from the webhook listener.
    metrics_server: Option<Server>,
    metrics_port: Option<u16>,
    metrics_refresh: MetricsRefresh,
    /// Credentials generated on this start: the binary shows them once.
    pub generated: Vec<GeneratedCredential>,
}

fn database_error(settings: &Settings) -> impl Fn(StoreError) -> StartupError + Copy + '_ {
    |source| StartupError::Database {
        path: Location::of(&settings.database).to_string(),
        source,
    }
}

/// Opens and migrates the database; used by every command that touches it.
pub fn open_database(settings: &Settings) -> Result<Database, StartupError> {
    let options = store::Options {
        wait: settings.busy_timeout,
        write_queue: settings.write_queue,
        write_batch: settings.write_batch,
    };
    Database::open(&Location::of(&settings.database), options).map_err(database_error(settings))
}

/// A syncer for these settings, when an API key is set.
pub fn syncer(
    settings: &Settings,
    writer: &Writer,
    clock: Clock,
) -> Result<Option<Syncer>, ClientError> {
    let Some(key) = &settings.api_key else {
        return Ok(None);
    };
    Ok(Some(Syncer {
        client: ApiClient::new(&settings.api_base, key.clone(), RetryPolicy::default())?,
        writer: writer.clone(),
        policy: Arc::new(ingest_policy(settings)),
        clock,
    }))
}

/// How events are applied under these settings.
pub fn ingest_policy(settings: &Settings) -> IngestPolicy {
    IngestPolicy {
        mode: settings.mode,
        mail: MailPolicy {
            report_to: settings.report_to.clone(),
            timezone: settings.timezone.clone(),
        },
    }
}

impl Application {
    pub fn build(settings: &Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Clock::System)
    }

    pub fn build_with_clock(settings: &Settings, clock: Clock) -> Result<Self, StartupError> {
        crate::metrics::handle();
        let database = open_database(settings)?;
        let database_error = database_error(settings);
        let (credentials, generated) = database
            .transaction(|store| {
                Credentials::load_or_generate(
                    store,
                    settings.webhook_secrets.as_deref(),
                    settings.admin_token.as_ref(),
                )
            })
            .map_err(database_error)?;
        let reads = database.reads();
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartupError::Bind {
            bind: settings.bind.clone(),
            source,
        })?;
        let port = listener.local_addr()?.port();
        if database.single_instance() {
            // This process is the database's one mail worker: what a killed one
            // had claimed is due now, not when its lease lapses.
            let now = jiff::Timestamp::now().as_millisecond();
            let released = database
                .transaction(|store| store.release_claims(now))
                .map_err(database_error)?;
            if released > 0 {
                tracing::info!(released, "mail claimed by a stopped process is due again");
            }
        }
        let (writer, writer_thread) = database.start_writer().map_err(database_error)?;
        let transport = Transport::new(settings.smtp_url.as_ref(), &settings.mail_dir)?;
        let mailer = Mailer::new(transport, settings, writer.clone())?;
        let mail_wake = Arc::new(tokio::sync::Notify::new());
        let sync = syncer(settings, &writer, clock)?.map(Arc::new);
        let periodic_sync = sync.clone().zip(settings.sync_every);
        let scheduler = Scheduler {
            clock,
            reads: reads.clone(),
            writer: writer.clone(),
            settings: Arc::new(settings.clone()),
            mail_wake: Arc::clone(&mail_wake),
            sync: sync.clone(),
        };
        let state = web::Data::new(AppState {
            clock,
            credentials,
            signature_tolerance: settings.signature_tolerance,
            max_body: settings.max_body,
            body_timeout: settings.body_timeout,
            timezone: settings.timezone.clone(),
            ingest: Arc::new(ingest_policy(settings)),
            mail_wake: Arc::clone(&mail_wake),
            writer,
            reads,
            sync,
            monthly: Arc::new(MonthlyTotals::new(MONTHLY_TOTALS_KEPT)),
        });
        let metrics_listener = match &settings.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind).map_err(|source| StartupError::Bind {
                    bind: bind.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let metrics_refresh = MetricsRefresh {
            reads: state.reads.clone(),
            clock,
            timezone: settings.timezone.clone(),
            every: settings.metrics_refresh,
        };
        let with_metrics = metrics_listener.is_none();
        let server =
            HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(web::QueryConfig::default().error_handler(|error, _| {
                        ApiError::InvalidRequest(error.to_string()).into()
                    }))
                    .app_data(web::PayloadConfig::new(RENT_ROLL_LIMIT))
                    .wrap(actix_web::middleware::from_fn(api::log_request))
                    .configure(|routes| api::routes(routes, with_metrics))
            })
            .listen(listener)?
            // Signals are handled in `run_until_stopped`, so SIGINT is as graceful as SIGTERM.
            .disable_signals()
            .shutdown_timeout(30)
            .run();
        let metrics_port = match &metrics_listener {
            Some(listener) => Some(listener.local_addr()?.port()),
            None => None,
        };
        let metrics_server = match metrics_listener {
            Some(listener) => Some(
                HttpServer::new(|| App::new().route("/metrics", web::get().to(api::get_metrics)))
                    .listen(listener)?
                    .disable_signals()
                    .workers(1)
                    .run(),
            ),
            None => None,
        };
        // Started: only now are generated credentials kept (and then shown).
        database
            .transaction(|store| store::keep_generated(store, &generated))
            .map_err(database_error)?;
        Ok(Self {
            port,
            server,
            mailer,
            scheduler,
            mail_wake,
            writer_thread,
            periodic_sync,
            metrics_server,
            metrics_port,
            metrics_refresh,
            generated,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGTERM or SIGINT, then stops taking connections, lets
    /// requests in flight and the mail in hand finish, and waits for the
    /// writer to commit what it holds.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let handle = self.server.handle();
        let metrics_handle = self.metrics_server.as_ref().map(Server::handle);
        if let Some(metrics_server) = self.metrics_server {
            tokio::spawn(metrics_server);
        }
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            if let Some(metrics) = metrics_handle {
                metrics.stop(true).await;
            }
            handle.stop(true).await;
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mailer = tokio::spawn(self.mailer.run(self.mail_wake, stopped.clone()));
        let scheduler = tokio::spawn(self.scheduler.run(stopped.clone()));
        let refresher = tokio::spawn(self.metrics_refresh.run(stopped.clone()));
        let syncing = self
            .periodic_sync
            .map(|(syncer, every)| tokio::spawn(sync_periodically(syncer, every, stopped)));
        self.server.await?;
        let _ = stop.send(true);
        if let Some(syncing) = syncing {
            syncing.await.map_err(std::io::Error::other)?;
        }
        mailer.await.map_err(std::io::Error::other)?;
        scheduler.await.map_err(std::io::Error::other)?;
        refresher.await.map_err(std::io::Error::other)?;
        if let Some(writer_thread) = self.writer_thread {
            tokio::task::spawn_blocking(move || writer_thread.join())
                .await
                .map_err(std::io::Error::other)?
                .map_err(|_| std::io::Error::other("the writer thread panicked"))?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Syncs every `every` until `stop` turns true; a failure is recorded by the
/// run (the daily report shows it) and tried again next time.
async fn sync_periodically(
    syncer: Arc<Syncer>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let since = jiff::Timestamp::now().as_second() - sync::DEFAULT_DAYS_BACK * 86_400;
        match syncer
            .run(since, false, &indicatif::ProgressBar::hidden())
            .await
        {
            Ok(summary) => {
                tracing::info!(read = summary.read, changed = summary.changed, "sync done")
            }
            Err(error) => tracing::warn!(%error, "sync failed; trying again next time"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
