//! Delivery: a worker claims due mail from the outbox and hands it to SMTP (or
//! writes `.eml` files), marking each mail sent only after it was accepted.
//!
//! An SMTP outage delays mail: each failure is retried with exponential backoff
//! and jitter, up to a number of attempts, then the mail is marked failed (it
//! shows in the daily report, and `outbox retry` re-queues it). The one window
//! left: a crash after the server accepted a mail and before it is marked sent
//! resends that one mail when its claim lapses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Notify, watch};

use crate::config::Settings;
use crate::domain::Secret;
use crate::store::{ClaimedMail, StoreError, Writer};

/// Mails claimed at a time.
const CLAIM: usize = 20;
/// How long a claim holds before another worker may take the mail.
const LEASE: Duration = Duration::from_secs(300);
/// How often the worker looks for due mail when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("CASAPAY_SMTP_URL is not a valid SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("CASAPAY_MAIL_FROM `{0}` is not a mailbox like `casapay-recon <noreply@example.com>`")]
    From(String),
    #[error("mail folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
}

/// Where mail goes: an SMTP server, or `.eml` files in a folder.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    pub fn new(smtp_url: Option<&Secret>, mail_dir: &Path) -> Result<Self, MailError> {
        crate::casapay::client::install_tls_provider();
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    // lettre's message may quote the URL; it never reaches a log from here.
                    .map_err(|e| MailError::SmtpUrl(e.to_string().replace(url.expose(), "…")))?
                    .timeout(Some(Duration::from_secs(30)))
                    .build();
                Ok(Transport::Smtp(transport))
            }
            None => {
                use std::os::unix::fs::PermissionsExt;
                let folder_error = |source| MailError::Folder {
                    path: mail_dir.display().to_string(),
                    source,
                };
                std::fs::create_dir_all(mail_dir).map_err(folder_error)?;
                // Mails hold landlords' personal data: the folder is its owner's only.
                std::fs::set_permissions(mail_dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(folder_error)?;
                Ok(Transport::Files(AsyncFileTransport::new(mail_dir)))
            }
        }
    }

    /// Sends; on failure says whether trying again can help.
    async fn send(&self, message: Message) -> Result<(), (String, bool)> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (e.to_string(), !e.is_permanent())),
            Transport::Files(files) => files
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (e.to_string(), true)),
        }
    }
}

/// Delay before retry number `attempt` (1-based): `base` doubling, at most an
/// hour, plus up to 20 % jitter (`jitter` in 0..1) so a recovering server is
/// not hit by every mail at once.
pub fn retry_delay(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let delay = base.saturating_mul(1_u32 << attempt.saturating_sub(1).min(16));
    delay
        .min(Duration::from_secs(3600))
        .mul_f64(1.0 + 0.2 * jitter.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    let mut byte = [0_u8; 1];
    getrandom::fill(&mut byte).map_or(0.5, |()| f64::from(byte[0]) / 255.0)
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    writer: Writer,
    max_attempts: u32,
    retry_base: Duration,
    /// Dates in landlord mail are shown in it.
    timezone: TimeZone,
}

impl Mailer {
    pub fn new(
        transport: Transport,
        settings: &Settings,
        writer: Writer,
    ) -> Result<Self, MailError> {
        let from = &settings.mail_from;
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| MailError::From(from.to_string()))?;
        Ok(Self {
            transport,
            from,
            writer,
            max_attempts: settings.mail_max_attempts.max(1),
            retry_base: settings.mail_retry_base,
            timezone: settings.timezone.clone(),
        })
    }

    /// The message to send, rendered now from what was queued, with its subject.
    fn message(&self, mail: &ClaimedMail) -> Result<(Message, String), String> {
        let to = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient `{}`: {e}", mail.recipient))?;
        let (kind, message) = mail.mail.as_ref().map_err(Clone::clone)?;
        let rendered = super::render(*kind, message, &self.timezone);
        let message = Message::builder()
            // Stable per outbox row: a mail sent again after a crash (between the
            // server's acceptance and marking it sent) is recognisably the same.
            .message_id(Some(format!("<{}.outbox@casapay-recon>", mail.id)))
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| e.to_string())?;
        Ok((message, rendered.subject))
    }

    /// Sends what is due now; returns how many mails were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        self.deliver(None).await
    }

    /// Sends the due mails of one cause only: a CLI command delivers the mail
    /// it made, never the service's outbox with its own settings.
    pub async fn deliver_cause(&self, cause: &str) -> Result<usize, StoreError> {
        self.deliver(Some(cause.to_string())).await
    }

    async fn deliver(&self, cause: Option<String>) -> Result<usize, StoreError> {
        let now = jiff::Timestamp::now().as_millisecond();
        let lease_until = now + LEASE.as_millis() as i64;
        let claimed = self
            .writer
            .write(move |conn| conn.claim_due_mail(now, lease_until, CLAIM, cause.as_deref()))
            .await?;
        let count = claimed.len();
        for mail in claimed {
            let outcome = match self.message(&mail) {
                Ok((message, subject)) => self.transport.send(message).await.map(|()| subject),
                Err(error) => Err((error, false)),
            };
            let id = mail.id;
            match outcome {
                Ok(subject) => {
                    let sent_at = jiff::Timestamp::now().as_millisecond();
                    // Names in a subject come from the rent roll: no line breaks in the log.
                    let subject = crate::format::printable(&subject);
                    tracing::info!(mail_id = id, recipient = %mail.recipient, subject, "mail sent");
                    crate::metrics::mail("sent", 1);
                    self.writer
                        .write(move |conn| conn.mark_mail_sent(id, sent_at))
                        .await?;
                }
                Err((error, retryable)) => {
                    let attempt = mail.attempts + 1;
                    let retry_at = (retryable && attempt < self.max_attempts).then(|| {
                        jiff::Timestamp::now().as_millisecond()
                            + retry_delay(self.retry_base, attempt, jitter()).as_millis() as i64
                    });
                    tracing::warn!(mail_id = id, attempt, %error, will_retry = retry_at.is_some(), "mail not delivered");
                    crate::metrics::mail(
                        if retry_at.is_some() {
                            "retrying"
                        } else {
                            "failed"
                        },
                        1,
                    );
                    self.writer
                        .write(move |conn| conn.mark_mail_failed(id, &error, retry_at))
                        .await?;
                }
            }
        }
        Ok(count)
    }

    /// Delivers until `stop` turns true, finishing the mail in hand first.
    /// Wakes on `wake` (new mail queued) or every second.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            match self.deliver_due().await {
                Ok(count) if count > 0 => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "mail delivery paused: the outbox is not reachable")
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_with_bounded_jitter() {
        let base = Duration::from_secs(10);
        assert_eq!(retry_delay(base, 1, 0.0), Duration::from_secs(10));
        assert_eq!(retry_delay(base, 2, 0.0), Duration::from_secs(20));
        assert_eq!(retry_delay(base, 4, 0.0), Duration::from_secs(80));
        assert_eq!(
            retry_delay(base, 1, 1.0),
            Duration::from_secs(12),
            "first retry well within 30 s"
        );
        assert_eq!(
            retry_delay(base, 30, 0.0),
            Duration::from_secs(3600),
            "capped at an hour"
        );
        assert_eq!(retry_delay(base, u32::MAX, 1.0), Duration::from_secs(4320));
    }
}
