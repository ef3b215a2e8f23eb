//! Outgoing email: the provider (SMTP or none), the delivery workers and retention.

use std::time::Duration;

use super::challenge;
use super::reader::Reader;
use super::server::APP_ENV;
use super::{SecretString, declare_vars};

declare_vars! {
    /// `noop` (only logs each email, its body in dev) or `smtp`; not noop in prod with challenges enabled.
    PROVIDER = contract("AUTHARA_EMAIL_PROVIDER", "noop");
    /// Sender address (required with `smtp`).
    FROM = contract("AUTHARA_EMAIL_FROM", "");
    /// SMTP host (required with `smtp`).
    SMTP_HOST = contract("AUTHARA_EMAIL_SMTP_HOST", "");
    /// SMTP port.
    SMTP_PORT = contract("AUTHARA_EMAIL_SMTP_PORT", "587");
    /// SMTP user.
    SMTP_USERNAME = contract("AUTHARA_EMAIL_SMTP_USERNAME", "");
    /// SMTP password (or `_FILE`).
    SMTP_PASSWORD = contract("AUTHARA_EMAIL_SMTP_PASSWORD", "");
    /// Require TLS (must be true in prod).
    SMTP_TLS = contract("AUTHARA_EMAIL_SMTP_TLS", "true");
    /// SMTP timeout.
    SMTP_TIMEOUT = contract("AUTHARA_EMAIL_SMTP_TIMEOUT", "10s");
    /// How TLS starts when it is on: `auto` (implicit TLS on port 465, STARTTLS on any other), `starttls`, or `implicit` (for relays with implicit TLS on another port, such as 2465).
    SMTP_TLS_MODE = extra("AUTHARA_EMAIL_SMTP_TLS_MODE", "auto");
    /// PEM file of certificate authorities to trust for the SMTP server, in addition to the public roots (a relay with a private CA).
    SMTP_CA_FILE = extra("AUTHARA_EMAIL_SMTP_CA_FILE", "");
    /// Email delivery workers.
    WORKER_COUNT = contract("AUTHARA_EMAIL_WORKER_COUNT", "2");
    /// Idle poll period of the email workers.
    WORKER_POLL_INTERVAL = contract("AUTHARA_EMAIL_WORKER_POLL_INTERVAL", "2s");
    /// Delivery attempts per email.
    JOB_MAX_ATTEMPTS = contract("AUTHARA_EMAIL_JOB_MAX_ATTEMPTS", "10");
    /// Delete sent emails after this long.
    CLEANUP_SENT_AFTER = contract("AUTHARA_EMAIL_CLEANUP_SENT_AFTER", "720h");
    /// Delete failed emails after this long.
    CLEANUP_FAILED_AFTER = contract("AUTHARA_EMAIL_CLEANUP_FAILED_AFTER", "2160h");
}

/// `AUTHARA_EMAIL_PROVIDER`.
#[derive(Debug, Clone)]
pub enum EmailProvider {
    /// No delivery.
    Noop,
    /// Delivery through an SMTP server.
    Smtp(SmtpConfig),
}

/// `AUTHARA_EMAIL_FROM` and `AUTHARA_EMAIL_SMTP_*`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `AUTHARA_EMAIL_FROM`.
    pub from: String,
    /// `AUTHARA_EMAIL_SMTP_HOST`.
    pub host: String,
    /// `AUTHARA_EMAIL_SMTP_PORT`.
    pub port: u16,
    /// `AUTHARA_EMAIL_SMTP_USERNAME`.
    pub username: Option<String>,
    /// `AUTHARA_EMAIL_SMTP_PASSWORD`.
    pub password: Option<SecretString>,
    /// `AUTHARA_EMAIL_SMTP_TLS`.
    pub tls: bool,
    /// `AUTHARA_EMAIL_SMTP_TIMEOUT`.
    pub timeout: Duration,
    /// `AUTHARA_EMAIL_SMTP_TLS_MODE` resolved against the port; `None` when TLS is off.
    pub tls_mode: Option<SmtpTls>,
    /// The content of `AUTHARA_EMAIL_SMTP_CA_FILE`: extra trusted roots, PEM.
    pub ca_pem: Option<Vec<u8>>,
}

/// How the SMTP connection becomes encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection, then `STARTTLS`, which is required: a server that does not offer it
    /// gets no message.
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// `AUTHARA_EMAIL_*`.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// `AUTHARA_EMAIL_PROVIDER` and its settings.
    pub provider: EmailProvider,
    /// `AUTHARA_EMAIL_WORKER_COUNT`.
    pub worker_count: u32,
    /// `AUTHARA_EMAIL_WORKER_POLL_INTERVAL`.
    pub poll_interval: Duration,
    /// `AUTHARA_EMAIL_JOB_MAX_ATTEMPTS`.
    pub job_max_attempts: u32,
    /// `AUTHARA_EMAIL_CLEANUP_SENT_AFTER`.
    pub cleanup_sent_after: Duration,
    /// `AUTHARA_EMAIL_CLEANUP_FAILED_AFTER`.
    pub cleanup_failed_after: Duration,
}

/// Reads this area; in prod, enabled challenges need a real provider.
pub(super) fn build(r: &mut Reader<'_>, prod: bool, challenge_enabled: bool) -> EmailConfig {
    let provider = match r.string(&PROVIDER).to_ascii_lowercase().as_str() {
        "noop" => EmailProvider::Noop,
        "smtp" => EmailProvider::Smtp(build_smtp(r, prod)),
        other => {
            r.invalid(&PROVIDER, format!("expected noop or smtp, got {other:?}"));
            EmailProvider::Noop
        }
    };
    if prod && challenge_enabled && matches!(provider, EmailProvider::Noop) {
        r.invalid(
            &PROVIDER,
            format!("must not be noop when {}=prod and {}=true", APP_ENV.name, challenge::ENABLED.name),
        );
    }
    EmailConfig {
        provider,
        worker_count: r.positive(&WORKER_COUNT),
        poll_interval: r.duration(&WORKER_POLL_INTERVAL),
        job_max_attempts: r.positive(&JOB_MAX_ATTEMPTS),
        cleanup_sent_after: r.duration(&CLEANUP_SENT_AFTER),
        cleanup_failed_after: r.duration(&CLEANUP_FAILED_AFTER),
    }
}

fn build_smtp(r: &mut Reader<'_>, prod: bool) -> SmtpConfig {
    let why = format!(" when {}=smtp", PROVIDER.name);
    let from = r.required(&FROM, &why);
    if !from.is_empty() && (from.contains(['\r', '\n']) || !from.contains('@')) {
        r.invalid(&FROM, format!("{from:?} is not an email address"));
    }
    let tls = r.bool(&SMTP_TLS);
    r.ensure(!prod || tls, &SMTP_TLS, format!("must be true when {}=prod", APP_ENV.name));
    let port = r.port(&SMTP_PORT);
    let mode = r.string(&SMTP_TLS_MODE).to_ascii_lowercase();
    let named = match mode.as_str() {
        "auto" => None,
        "starttls" => Some(SmtpTls::StartTls),
        "implicit" => Some(SmtpTls::Implicit),
        other => {
            r.invalid(&SMTP_TLS_MODE, format!("expected auto, starttls or implicit, got {other:?}"));
            None
        }
    };
    let tls_mode = match (tls, named) {
        (false, None) => None,
        (false, Some(_)) => {
            r.invalid(&SMTP_TLS_MODE, format!("{mode:?} needs {}=true", SMTP_TLS.name));
            None
        }
        (true, Some(named)) => Some(named),
        (true, None) => Some(if port == 465 { SmtpTls::Implicit } else { SmtpTls::StartTls }),
    };
    let ca_pem = r.raw(&SMTP_CA_FILE).and_then(|path| match std::fs::read(&path) {
        Ok(pem)
            if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----")
                && lettre::transport::smtp::client::Certificate::from_pem(&pem).is_ok() =>
        {
            Some(pem)
        }
        Ok(_) => {
            r.invalid(&SMTP_CA_FILE, format!("{path} holds no readable PEM certificate"));
            None
        }
        Err(e) => {
            r.invalid(&SMTP_CA_FILE, format!("cannot read {path}: {e}"));
            None
        }
    });
    if ca_pem.is_some() && !tls {
        r.invalid(&SMTP_CA_FILE, format!("is only used with {}=true", SMTP_TLS.name));
    }
    SmtpConfig {
        from,
        host: r.required(&SMTP_HOST, &why),
        port,
        username: r.raw(&SMTP_USERNAME),
        password: r.secret(&SMTP_PASSWORD),
        tls,
        timeout: r.duration(&SMTP_TIMEOUT),
        tls_mode,
        ca_pem,
    }
}
