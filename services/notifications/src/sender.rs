//! The sender: sends the mails written to the `mails` table, one at a time,
//! through SMTP or into a directory of `.eml` files. Each mail is sent while
//! its row is locked (`FOR UPDATE SKIP LOCKED`), so two replicas never send
//! the same one, and marked in the same transaction:
//!
//! - accepted: `sent`, never sent again;
//! - refused for good (an SMTP 5xx, or an address that cannot be written):
//!   `failed`, with the reason, never retried;
//! - anything else (server down, timeout, 4xx): tried again after a backoff
//!   that doubles per attempt, for as long as it takes.
//!
//! Should the process die after the server took a mail but before the mark
//! committed, the row is still `pending` and the mail goes again, with the
//! same `Message-ID` (made from the row's id), by which mail clients show
//! the two copies as one.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
};
use secrecy::ExposeSecret as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::{RetrySettings, SmtpSettings, SmtpTls, TransportSettings};
use crate::store::{self, PendingMail};

/// Where mails are handed over.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server, through a pool of connections.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A directory: one `<uuid>.eml` file per mail.
    Directory(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport the settings describe. Fails when the directory cannot
    /// be created or the TLS parameters cannot be built.
    pub fn new(settings: &TransportSettings) -> anyhow::Result<Transport> {
        match settings {
            TransportSettings::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the mail directory {}", dir.display()))?;
                Ok(Transport::Directory(AsyncFileTransport::new(dir)))
            }
            TransportSettings::Smtp(smtp) => Ok(Transport::Smtp(smtp_transport(smtp)?)),
        }
    }

    async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Transient(e.to_string())),
            },
            Transport::Directory(dir) => dir
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Transient(e.to_string())),
        }
    }
}

fn smtp_transport(smtp: &SmtpSettings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let builder = match smtp.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .context("setting up STARTTLS")?,
        SmtpTls::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).context("setting up TLS")?
        }
    };
    let builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
    let builder = match &smtp.credentials {
        Some((user, password)) => builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        )),
        None => builder,
    };
    Ok(builder.build())
}

/// Why a mail was not handed over.
#[derive(Debug)]
enum SendError {
    /// Refused for good: recorded as failed.
    Permanent(String),
    /// Worth another try later.
    Transient(String),
}

/// The sender of one database's mails.
#[derive(Clone)]
pub struct Sender {
    pool: PgPool,
    transport: Transport,
    from: Mailbox,
    retry: RetrySettings,
    poll_interval: Duration,
}

impl Sender {
    /// A sender of the mails in `pool`, from `from` (a mailbox such as
    /// `buytickets <no-reply@buytickets.dev>`).
    pub fn new(
        pool: PgPool,
        transport: Transport,
        from: &str,
        retry: RetrySettings,
        poll_interval: Duration,
    ) -> anyhow::Result<Sender> {
        Ok(Sender {
            pool,
            transport,
            from: from.parse().context("parsing the sender's address")?,
            retry,
            poll_interval,
        })
    }

    /// Sends due mails until `shutdown`; a mail being sent when it comes is
    /// finished and marked first.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let idle = match self.send_next().await {
                Ok(sent) => !sent,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "mail sender failed; retrying");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }
        tracing::info!("mail sender stopped");
    }

    /// Sends the next mail due, if any; `true` when there was one (whatever
    /// became of it).
    pub async fn send_next(&self) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let Some(mail) = store::next_due_mail(&mut tx).await? else {
            return Ok(false);
        };
        let outcome = match self.message(&mail) {
            Ok(message) => self.transport.send(message).await,
            Err(e) => Err(SendError::Permanent(format!("{e:#}"))),
        };
        match outcome {
            Ok(()) => {
                store::mark_sent(&mut tx, mail.id).await?;
                tracing::info!(mail_id = %mail.id, subject = %mail.subject, "mail sent");
            }
            Err(SendError::Permanent(error)) => {
                store::mark_attempt_failed(&mut tx, mail.id, &error, None).await?;
                tracing::error!(mail_id = %mail.id, subject = %mail.subject, %error, "mail refused for good; not retrying");
            }
            Err(SendError::Transient(error)) => {
                let retry_in = self.retry.backoff(mail.attempts + 1);
                store::mark_attempt_failed(&mut tx, mail.id, &error, Some(retry_in)).await?;
                tracing::warn!(mail_id = %mail.id, attempt = mail.attempts + 1, ?retry_in, %error, "mail not sent; will retry");
            }
        }
        tx.commit().await.context("committing a mail's state")?;
        Ok(true)
    }

    fn message(&self, mail: &PendingMail) -> anyhow::Result<Message> {
        let to: Mailbox = mail.recipient.parse().context("parsing the recipient")?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(format!("<{}@{}>", mail.id, self.from.email.domain())))
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .context("building a mail")
    }
}
