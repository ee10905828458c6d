//! A client of CasaPay's API: list pages and the balance, with the key as a
//! bearer token (never logged), a timeout per call, and bounded retries of
//! 429 and 5xx (honouring `Retry-After`), timeouts and unreadable pages.
//! TLS is required except on loopback, where the simulator runs.

use std::time::Duration;

use serde_json::Value;

use crate::domain::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("CASAPAY_API_BASE `{0}` is not an http(s) URL")]
    BadBase(String),
    #[error("CASAPAY_API_BASE must use https (only loopback hosts may use http): {0}")]
    NeedsTls(String),
    #[error("CasaPay API GET {path}: {message} (after {attempts} attempt(s))")]
    Failed {
        path: String,
        message: String,
        attempts: u32,
        /// The HTTP status of the last answer, when there was one.
        status: Option<u16>,
    },
    #[error("the HTTP client cannot start: {0}")]
    Setup(String),
}

/// How hard to try before a call counts as failed.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        }
    }
}

/// One page of a list, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub data: Vec<Value>,
    pub has_more: bool,
}

#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    retry: RetryPolicy,
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks the base URL: https, or http to a loopback host.
pub fn check_base(base: &str) -> Result<String, ClientError> {
    let base = base.trim_end_matches('/').to_string();
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| ClientError::BadBase(base.clone()))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    };
    match scheme {
        "https" => Ok(base),
        "http" if is_loopback(host) => Ok(base),
        "http" => Err(ClientError::NeedsTls(base)),
        _ => Err(ClientError::BadBase(base)),
    }
}

/// The delay `Retry-After` asks for, in seconds, bounded.
fn retry_after(response: &reqwest::Response, max: Duration) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(max))
}

/// Installs rustls's crypto provider (ring), process-wide, for the clients
/// that use the default one (reqwest, lettre's SMTP); each calls it before it
/// is built. Installing twice is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client (the simulator's, `trigger`'s), its TLS set up.
pub fn http_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::new()
}

impl ApiClient {
    pub fn new(base: &str, key: Secret, retry: RetryPolicy) -> Result<Self, ClientError> {
        install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(retry.timeout))
            .timeout(retry.timeout)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            base: check_base(base)?,
            key,
            retry,
        })
    }

    /// GETs `path` as JSON, retrying what can succeed later.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let mut delay = self.retry.first_delay;
        let mut message = String::new();
        let mut last_status = None;
        for attempt in 1..=self.retry.attempts {
            let answer = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(self.key.expose())
                .send()
                .await;
            let mut wait = delay;
            match answer {
                Ok(response) if response.status().is_success() => {
                    match response.json::<Value>().await {
                        Ok(value) => return Ok(value),
                        Err(e) => message = format!("unreadable answer: {e}"),
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    if let Some(asked) = retry_after(&response, self.retry.max_delay) {
                        wait = asked;
                    }
                    message = format!("HTTP {status}");
                    last_status = Some(status.as_u16());
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable {
                        return Err(ClientError::Failed {
                            path: path.to_string(),
                            message,
                            attempts: attempt,
                            status: last_status,
                        });
                    }
                }
                // The key never reaches a message: reqwest's errors name the URL, not headers.
                Err(e) => {
                    message = e.without_url().to_string();
                    last_status = None;
                }
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(self.retry.max_delay);
            }
        }
        Err(ClientError::Failed {
            path: path.to_string(),
            message,
            attempts: self.retry.attempts,
            status: last_status,
        })
    }

    /// A page of `kind` (`payment_requests`, `payouts`), newest first.
    pub async fn page(
        &self,
        kind: &str,
        starting_after: Option<&str>,
    ) -> Result<Page, ClientError> {
        let mut path = format!("/v1/{kind}?limit=100");
        if let Some(after) = starting_after {
            path.push_str(&format!("&starting_after={after}"));
        }
        // A page that is not a list is retried like a failed call, then fails:
        // half a page is never read as "these are all the objects".
        let mut last = String::new();
        for _ in 0..self.retry.attempts.max(1) {
            let value = self.get(&path).await?;
            match (value["data"].as_array(), value["has_more"].as_bool()) {
                (Some(data), Some(has_more)) => {
                    return Ok(Page {
                        data: data.clone(),
                        has_more,
                    });
                }
                _ => last = "the answer is not a list page (data, has_more)".to_string(),
            }
            tokio::time::sleep(self.retry.first_delay).await;
        }
        Err(ClientError::Failed {
            path,
            message: last,
            attempts: self.retry.attempts,
            status: None,
        })
    }

    /// `GET /v1/balance`: (currency, available, pending).
    pub async fn balance(&self) -> Result<Vec<(String, i64, i64)>, ClientError> {
        let value = self.get("/v1/balance").await?;
        let side = |name: &str| -> Vec<(String, i64)> {
            value[name]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| {
                            Some((i["currency"].as_str()?.to_string(), i["amount"].as_i64()?))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (available, pending) = (side("available"), side("pending"));
        if value["available"].as_array().is_none() {
            return Err(ClientError::Failed {
                path: "/v1/balance".into(),
                message: "the answer has no `available` list".into(),
                attempts: 1,
                status: None,
            });
        }
        let mut balance: Vec<(String, i64, i64)> = available
            .into_iter()
            .map(|(currency, amount)| {
                let pending = pending
                    .iter()
                    .find(|(c, _)| *c == currency)
                    .map_or(0, |(_, a)| *a);
                (currency, amount, pending)
            })
            .collect();
        balance.sort();
        Ok(balance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_except_on_loopback() {
        assert!(check_base("https://api.casapay.com").is_ok());
        assert!(check_base("http://127.0.0.1:12111/").is_ok());
        assert!(check_base("http://localhost:12111").is_ok());
        assert!(check_base("http://[::1]:12111").is_ok());
        assert!(matches!(
            check_base("http://api.casapay.com"),
            Err(ClientError::NeedsTls(_))
        ));
        assert!(matches!(
            check_base("api.casapay.com"),
            Err(ClientError::BadBase(_))
        ));
    }
}
