//! Sending email: SMTP through `lettre` (STARTTLS, implicit TLS on port 465 or with
//! `AUTHARA_EMAIL_SMTP_TLS_MODE=implicit`, or plain when `AUTHARA_EMAIL_SMTP_TLS=false`), or
//! `noop`, which only logs. The server's certificate is checked against the public roots and
//! the certificates of `AUTHARA_EMAIL_SMTP_CA_FILE`; TLS never falls back to plain.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::config::{EmailProvider, SmtpConfig, SmtpTls};

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a send failed: permanent failures (SMTP 5xx, unusable address) are not retried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

#[derive(Clone)]
pub enum Mailer {
    /// Logs recipient and subject; in dev also the body, so codes can be used locally.
    Noop {
        log_body: bool,
    },
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        timeout: Duration,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Noop { .. } => f.write_str("Mailer::Noop"),
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
        }
    }
}

impl Mailer {
    pub fn new(provider: &EmailProvider, dev: bool) -> Result<Self, String> {
        match provider {
            EmailProvider::Noop => Ok(Mailer::Noop { log_body: dev }),
            EmailProvider::Smtp(cfg) => Self::smtp(cfg),
        }
    }

    fn smtp(cfg: &SmtpConfig) -> Result<Self, String> {
        let from: Mailbox = cfg.from.parse().map_err(|e| format!("AUTHARA_EMAIL_FROM: {e}"))?;
        let tls = match cfg.tls_mode {
            None => Tls::None,
            Some(mode) => {
                let mut params = TlsParameters::builder(cfg.host.clone());
                if let Some(pem) = &cfg.ca_pem {
                    let roots = Certificate::from_pem(pem).map_err(|e| format!("AUTHARA_EMAIL_SMTP_CA_FILE: {e}"))?;
                    params = params.add_root_certificate(roots);
                }
                let params = params.build().map_err(|e| format!("TLS setup: {e}"))?;
                match mode {
                    SmtpTls::Implicit => Tls::Wrapper(params),
                    SmtpTls::StartTls => Tls::Required(params),
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose_secret().to_owned()));
        }
        Ok(Mailer::Smtp { transport: Box::new(builder.build()), from, timeout: cfg.timeout })
    }

    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        match self {
            Mailer::Noop { log_body } => {
                if *log_body {
                    tracing::info!(to = %email.to, subject = %email.subject, body = %email.text, "email (noop provider, dev)");
                } else {
                    tracing::info!(to = %email.to, subject = %email.subject, "email (noop provider)");
                }
                Ok(())
            }
            Mailer::Smtp { transport, from, timeout } => {
                let to: Mailbox = email
                    .to
                    .parse()
                    .map_err(|e| SendError { permanent: true, message: format!("bad recipient: {e}") })?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(email.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
                    .map_err(|e| SendError { permanent: true, message: format!("building the message: {e}") })?;
                // lettre's timeout covers each command; this bounds the whole conversation.
                match tokio::time::timeout(*timeout * 3, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(SendError { permanent: e.is_permanent(), message: e.to_string() }),
                    Err(_) => Err(SendError { permanent: false, message: "SMTP conversation timed out".to_owned() }),
                }
            }
        }
    }
}
