//! Settings, layered: flag > `CASAPAY_*` environment > TOML file > default.
//!
//! clap resolves flag and environment; the file fills what both left unset;
//! defaults fill the rest. Everything is validated here, once, into types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::domain::{Mode, Secret};

pub const DEFAULT_CONFIG_FILE: &str = "casapay-recon.toml";
/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting, declared once: as a flag (global: before or after the
/// command) with its environment variable, and as a key of the TOML file
/// (the same name in snake_case; unknown keys are an error). `None` means
/// "not given in this layer".
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// TOML file with settings [default: casapay-recon.toml if present]
    #[arg(long, global = true, env = "CASAPAY_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// SQLite database file, or a postgres:// URL for several instances [default: casapay-recon.db]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_DATABASE",
        value_name = "FILE|URL",
        hide_env_values = true
    )]
    pub database: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "CASAPAY_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Comma-separated signing secrets (several during rotation) [default: generated once]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_WEBHOOK_SECRETS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "SECRETS"
    )]
    #[serde(default, deserialize_with = "one_or_many")]
    pub webhook_secrets: Option<Vec<String>>,
    /// Seconds a signature timestamp may differ from now [default: 300]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_SIGNATURE_TOLERANCE",
        value_name = "SECONDS"
    )]
    pub signature_tolerance: Option<u64>,
    /// Bearer token for /api/* and /dashboard [default: generated once]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// SMTP URL (smtps://user:pass@host:465, smtp://host:25) [default: .eml files]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_SMTP_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub smtp_url: Option<String>,
    /// Folder for .eml files when no SMTP URL is set [default: mail/]
    #[arg(long, global = true, env = "CASAPAY_MAIL_DIR", value_name = "DIR")]
    pub mail_dir: Option<PathBuf>,
    /// From address [default: casapay-recon <noreply@localhost>]
    #[arg(long, global = true, env = "CASAPAY_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Delivery attempts per mail before it is marked failed [default: 10]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_MAIL_MAX_ATTEMPTS",
        value_name = "N"
    )]
    pub mail_max_attempts: Option<u32>,
    /// First retry delay of an undelivered mail in ms, doubling per attempt up to an hour [default: 10000]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_MAIL_RETRY_BASE_MS",
        value_name = "MS"
    )]
    pub mail_retry_base_ms: Option<u64>,
    /// Comma-separated recipients of the daily report [default: none]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_REPORT_TO",
        value_delimiter = ',',
        value_name = "ADDRESSES"
    )]
    #[serde(default, deserialize_with = "one_or_many")]
    pub report_to: Option<Vec<String>>,
    /// Local time of the daily report, HH:MM [default: 06:00]
    #[arg(long, global = true, env = "CASAPAY_REPORT_AT", value_name = "HH:MM")]
    pub report_at: Option<String>,
    /// IANA time zone for dates, periods and due dates [default: UTC]
    #[arg(long, global = true, env = "CASAPAY_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Largest webhook body accepted, bytes [default: 1048576]
    #[arg(long, global = true, env = "CASAPAY_MAX_BODY", value_name = "BYTES")]
    pub max_body: Option<usize>,
    /// How long a client may take to send a webhook body, ms [default: 10000]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_BODY_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub body_timeout_ms: Option<u64>,
    /// CasaPay secret key (sk_…) for sync and the balance check [default: none: no sync]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// CasaPay API base URL [default: https://api.casapay.com]
    #[arg(long, global = true, env = "CASAPAY_API_BASE", value_name = "URL")]
    pub api_base: Option<String>,
    /// How often serve syncs from the API: 30s, 15m, 1h; 0 turns it off [default: 1h with a key]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_SYNC_EVERY",
        value_name = "DURATION"
    )]
    pub sync_every: Option<String>,
    /// A second listen address that serves only /metrics [default: /metrics on --bind]
    #[arg(long, global = true, env = "CASAPAY_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// How often /metrics' database gauges are recomputed, ms [default: 15000]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_METRICS_REFRESH_MS",
        value_name = "MS"
    )]
    pub metrics_refresh_ms: Option<u64>,
    /// Which CasaPay mode to reconcile: live, test or any [default: live]
    #[arg(long, global = true, env = "CASAPAY_MODE", value_name = "MODE")]
    pub mode: Option<Mode>,
    /// Log format [default: text]
    #[arg(long, global = true, env = "CASAPAY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Most writes committed together (1 turns group commit off) [default: 512]
    #[arg(long, global = true, env = "CASAPAY_WRITE_BATCH", value_name = "N")]
    pub write_batch: Option<usize>,
    /// Most writes waiting for the writer before webhooks get 503 [default: 4096]
    #[arg(long, global = true, env = "CASAPAY_WRITE_QUEUE", value_name = "N")]
    pub write_queue: Option<usize>,
    /// How long a write waits for a database locked by another process [default: 5000]
    #[arg(
        long,
        global = true,
        env = "CASAPAY_BUSY_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub busy_timeout_ms: Option<u64>,
}

/// A list in the file: `"a,b"` or `["a", "b"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        Option::<OneOrMany>::deserialize(deserializer)?.map(|list| match list {
            OneOrMany::One(text) => text.split(',').map(str::to_string).collect(),
            OneOrMany::Many(list) => list,
        }),
    )
}

/// The layers, merged: a flag (or its environment variable) wins over the file.
fn merge(flags: ConfigArgs, file: ConfigArgs) -> Result<ConfigArgs, ConfigError> {
    let to_map = |layer: &ConfigArgs| match serde_json::to_value(layer) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let mut merged = to_map(&file);
    for (key, value) in to_map(&flags) {
        if !value.is_null() {
            merged.insert(key, value);
        }
    }
    let mut layer: ConfigArgs = serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| invalid("config", e.to_string()))?;
    layer.config = flags.config;
    Ok(layer)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: PathBuf,
    pub bind: String,
    /// `None`: use the secret stored in the database, generating it on first start.
    pub webhook_secrets: Option<Vec<Secret>>,
    pub signature_tolerance: u64,
    pub admin_token: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub mail_max_attempts: u32,
    pub mail_retry_base: Duration,
    pub report_to: Vec<String>,
    pub report_at: Time,
    pub timezone: TimeZone,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub api_key: Option<Secret>,
    pub api_base: String,
    /// `None`: serve does not sync by itself.
    pub sync_every: Option<Duration>,
    /// Where `/metrics` is served apart from the webhook listener.
    pub metrics_bind: Option<String>,
    pub metrics_refresh: Duration,
    pub mode: Mode,
    pub log_format: LogFormat,
    pub write_batch: usize,
    pub write_queue: usize,
    pub busy_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database: PathBuf::from("casapay-recon.db"),
            bind: "127.0.0.1:8080".into(),
            webhook_secrets: None,
            signature_tolerance: 300,
            admin_token: None,
            smtp_url: None,
            mail_dir: PathBuf::from("mail"),
            mail_from: "casapay-recon <noreply@localhost>".into(),
            mail_max_attempts: 10,
            mail_retry_base: Duration::from_secs(10),
            report_to: Vec::new(),
            report_at: Time::constant(6, 0, 0, 0),
            timezone: TimeZone::UTC,
            max_body: 1_048_576,
            body_timeout: Duration::from_secs(10),
            api_key: None,
            api_base: "https://api.casapay.com".into(),
            sync_every: None,
            metrics_bind: None,
            metrics_refresh: Duration::from_secs(15),
            mode: Mode::Live,
            log_format: LogFormat::Text,
            write_batch: 512,
            write_queue: 4096,
            busy_timeout: Duration::from_millis(5000),
        }
    }
}

fn secret_list(key: &'static str, values: Vec<String>) -> Result<Vec<Secret>, ConfigError> {
    let secrets: Vec<Secret> = values
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect();
    if secrets.is_empty() {
        return Err(invalid(key, "is set but holds no secret"));
    }
    Ok(secrets)
}

fn address_list(values: Vec<String>) -> Vec<String> {
    values
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Settings {
    /// Resolves the layers. The file is `--config`, or `casapay-recon.toml` if it exists.
    pub fn load(args: ConfigArgs) -> Result<Self, ConfigError> {
        Self::load_with_default_file(args, Path::new(DEFAULT_CONFIG_FILE))
    }

    /// As [`Settings::load`], with the file read when `--config` is absent
    /// given, so tests do not depend on the working directory.
    fn load_with_default_file(args: ConfigArgs, default_file: &Path) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None if default_file.exists() => read_file(default_file)?,
            None => ConfigArgs::default(),
        };
        let layer = merge(args, file)?;
        let defaults = Settings::default();
        let mut settings = Settings {
            database: layer.database.unwrap_or(defaults.database),
            bind: layer.bind.unwrap_or(defaults.bind),
            webhook_secrets: match layer.webhook_secrets {
                Some(list) => Some(secret_list("webhook_secrets", list)?),
                None => None,
            },
            signature_tolerance: layer
                .signature_tolerance
                .unwrap_or(defaults.signature_tolerance),
            admin_token: layer.admin_token.map(Secret::new),
            smtp_url: layer.smtp_url.map(Secret::new),
            mail_dir: layer.mail_dir.unwrap_or(defaults.mail_dir),
            mail_from: layer.mail_from.unwrap_or(defaults.mail_from),
            mail_max_attempts: layer
                .mail_max_attempts
                .unwrap_or(defaults.mail_max_attempts),
            mail_retry_base: layer
                .mail_retry_base_ms
                .map_or(defaults.mail_retry_base, Duration::from_millis),
            report_to: address_list(layer.report_to.unwrap_or_default()),
            report_at: defaults.report_at,
            timezone: defaults.timezone,
            max_body: layer.max_body.unwrap_or(defaults.max_body),
            body_timeout: layer
                .body_timeout_ms
                .map_or(defaults.body_timeout, Duration::from_millis),
            api_key: layer.api_key.map(Secret::new),
            api_base: layer.api_base.unwrap_or(defaults.api_base),
            sync_every: None,
            metrics_bind: layer.metrics_bind,
            metrics_refresh: layer
                .metrics_refresh_ms
                .map_or(defaults.metrics_refresh, Duration::from_millis),
            mode: layer.mode.unwrap_or(defaults.mode),
            log_format: layer.log_format.unwrap_or(defaults.log_format),
            write_batch: layer.write_batch.unwrap_or(defaults.write_batch),
            write_queue: layer.write_queue.unwrap_or(defaults.write_queue),
            busy_timeout: layer
                .busy_timeout_ms
                .map_or(defaults.busy_timeout, Duration::from_millis),
        };
        if let Some(text) = layer.report_at {
            settings.report_at = parse_report_at(&text)?;
        }
        if let Some(name) = layer.timezone {
            settings.timezone = TimeZone::get(&name).map_err(|e| {
                invalid(
                    "timezone",
                    format!("`{name}` is not an IANA time zone: {e}"),
                )
            })?;
        }
        settings.sync_every = match layer.sync_every {
            Some(text) => parse_every(&text)?,
            None => settings.api_key.as_ref().map(|_| Duration::from_secs(3600)),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, address) in [
            ("bind", Some(&self.bind)),
            ("metrics_bind", self.metrics_bind.as_ref()),
        ] {
            if let Some(address) = address
                && address.parse::<std::net::SocketAddr>().is_err()
            {
                return Err(invalid(
                    key,
                    format!("`{address}` is not an address like 127.0.0.1:8080"),
                ));
            }
        }
        // An empty token (docker-compose passes an unset `${VAR}` as "") would
        // open the dashboard to anyone.
        if let Some(token) = &self.admin_token
            && token.expose().chars().count() < MIN_ADMIN_TOKEN
        {
            return Err(invalid(
                "admin_token",
                format!(
                    "must be at least {MIN_ADMIN_TOKEN} characters (it is the key to every admin endpoint)"
                ),
            ));
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                format!(
                    "`{}` is not a mailbox like `casapay-recon <noreply@example.com>`",
                    self.mail_from
                ),
            ));
        }
        if let Some(bad) = self
            .report_to
            .iter()
            .find(|a| a.parse::<lettre::Address>().is_err())
        {
            return Err(invalid(
                "report_to",
                format!("`{bad}` is not an e-mail address"),
            ));
        }
        if self.max_body == 0 {
            return Err(invalid("max_body", "must be at least 1 byte"));
        }
        if self.write_batch == 0 || self.write_queue == 0 {
            return Err(invalid(
                "write_batch",
                "write_batch and write_queue must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `30s`, `15m`, `1h`, `2d`; `0` (off) is `None`.
fn parse_every(text: &str) -> Result<Option<Duration>, ConfigError> {
    let bad = || {
        invalid(
            "sync_every",
            format!("`{text}` is not a duration like 30s, 15m or 1h (0 turns sync off)"),
        )
    };
    let text = text.trim();
    if text == "0" {
        return Ok(None);
    }
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return Err(bad()),
    };
    if seconds == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs(seconds)))
}

fn parse_report_at(text: &str) -> Result<Time, ConfigError> {
    let bad = || invalid("report_at", format!("`{text}` is not a time like 06:00"));
    let (hour, minute) = text.split_once(':').ok_or_else(bad)?;
    let hour: i8 = hour.parse().map_err(|_| bad())?;
    let minute: i8 = minute.parse().map_err(|_| bad())?;
    Time::new(hour, minute, 0, 0).map_err(|_| bad())
}

fn read_file(path: &Path) -> Result<ConfigArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let (_dir, path) = file(
            "bind = \"127.0.0.1:9000\"\nmax_body = 10\nwebhook_secrets = [\"whsec_a\", \"whsec_b\"]\ntimezone = \"Europe/Paris\"\nreport_at = \"07:30\"\n",
        );
        let args = ConfigArgs {
            config: Some(path),
            max_body: Some(20),
            ..ConfigArgs::default()
        };
        let settings = Settings::load(args).unwrap();
        assert_eq!(settings.bind, "127.0.0.1:9000");
        assert_eq!(settings.max_body, 20);
        assert_eq!(settings.webhook_secrets.as_ref().map(Vec::len), Some(2));
        assert_eq!(settings.timezone.iana_name(), Some("Europe/Paris"));
        assert_eq!(settings.report_at, Time::constant(7, 30, 0, 0));
        assert_eq!(settings.signature_tolerance, 300);
    }

    #[test]
    fn unknown_keys_are_an_error_that_names_the_key() {
        let (_dir, path) = file("bind = \"127.0.0.1:9000\"\nmax_bdy = 10\n");
        let error = Settings::load(ConfigArgs {
            config: Some(path),
            ..ConfigArgs::default()
        })
        .unwrap_err();
        assert!(error.to_string().contains("max_bdy"), "{error}");
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let cases = [
            (
                ConfigArgs {
                    timezone: Some("Mars/Olympus".into()),
                    ..Default::default()
                },
                "timezone",
            ),
            (
                ConfigArgs {
                    report_at: Some("25:00".into()),
                    ..Default::default()
                },
                "report_at",
            ),
            (
                ConfigArgs {
                    bind: Some("localhost".into()),
                    ..Default::default()
                },
                "bind",
            ),
            (
                ConfigArgs {
                    webhook_secrets: Some(vec![" ".into()]),
                    ..Default::default()
                },
                "webhook_secrets",
            ),
            (
                ConfigArgs {
                    admin_token: Some(String::new()),
                    ..Default::default()
                },
                "admin_token",
            ),
            (
                ConfigArgs {
                    admin_token: Some("short".into()),
                    ..Default::default()
                },
                "admin_token",
            ),
            (
                ConfigArgs {
                    metrics_bind: Some("metrics".into()),
                    ..Default::default()
                },
                "metrics_bind",
            ),
        ];
        let no_file = Path::new("/nonexistent/casapay-recon.toml");
        for (args, key) in cases {
            let error = Settings::load_with_default_file(args, no_file)
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{error}");
        }
    }

    #[test]
    fn sync_every_reads_durations_and_zero_turns_it_off() {
        assert_eq!(parse_every("15m").unwrap(), Some(Duration::from_secs(900)));
        assert_eq!(parse_every("1h").unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(parse_every("0").unwrap(), None);
        assert!(
            parse_every("soon")
                .unwrap_err()
                .to_string()
                .contains("sync_every")
        );
        let no_file = Path::new("/nonexistent/casapay-recon.toml");
        let keyed = Settings::load_with_default_file(
            ConfigArgs {
                api_key: Some("sk_test_1".into()),
                ..ConfigArgs::default()
            },
            no_file,
        )
        .unwrap();
        assert_eq!(
            keyed.sync_every,
            Some(Duration::from_secs(3600)),
            "hourly with a key"
        );
        let keyless = Settings::load_with_default_file(ConfigArgs::default(), no_file).unwrap();
        assert_eq!(keyless.sync_every, None);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let settings = Settings {
            webhook_secrets: Some(vec![Secret::new("whsec_hidden")]),
            admin_token: Some(Secret::new("token_hidden")),
            api_key: Some(Secret::new("sk_live_hidden")),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hidden"), "{shown}");
    }
}
