//! Outgoing webhooks: endpoint, signing secret, events, delivery workers and retention.
//!
//! The webhook delivery workers read [`WebhookConfig`].

use std::time::Duration;

use super::reader::{Reader, validate_http_url};
use super::server::APP_ENV;
use super::{SecretString, declare_vars};

declare_vars! {
    /// Webhook endpoint, an http(s) URL (https when `APP_ENV=prod`, unless `AUTHARA_WEBHOOK_ALLOW_HTTP`); set together with `AUTHARA_WEBHOOK_SECRET` (neither = no webhooks).
    URL = contract("AUTHARA_WEBHOOK_URL", "");
    /// Webhook signing secret (or `_FILE`), at least 32 characters in prod.
    SECRET = contract("AUTHARA_WEBHOOK_SECRET", "");
    /// Comma-separated events to send; empty sends every event.
    ENABLED_EVENTS = contract("AUTHARA_WEBHOOK_ENABLED_EVENTS", "");
    /// Webhook request timeout; shorter than `AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER`.
    TIMEOUT = contract("AUTHARA_WEBHOOK_TIMEOUT", "5s");
    /// Delivery workers.
    WORKER_COUNT = contract("AUTHARA_WEBHOOK_WORKER_COUNT", "2");
    /// Delivery attempts per event.
    MAX_DELIVERY_ATTEMPTS = contract("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", "3");
    /// A delivery still processing after this is reclaimed.
    PROCESSING_STALE_AFTER = contract("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER", "2m");
    /// Period of the stuck-delivery sweep.
    STALE_REAPER_INTERVAL = contract("AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL", "1m");
    /// Keep delivered events this long.
    DELIVERED_RETENTION = contract("AUTHARA_WEBHOOK_DELIVERED_RETENTION", "24h");
    /// Keep failed events this long.
    FAILED_RETENTION = contract("AUTHARA_WEBHOOK_FAILED_RETENTION", "720h");
    /// Period of the webhook cleanup.
    CLEANUP_INTERVAL = contract("AUTHARA_WEBHOOK_CLEANUP_INTERVAL", "1h");
    /// Rows per cleanup batch.
    MAINTENANCE_BATCH_SIZE = contract("AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE", "1000");
    /// Delays before the 2nd, 3rd, ... attempt (comma-separated durations; the last repeats).
    RETRY_DELAYS = extra("AUTHARA_WEBHOOK_RETRY_DELAYS", "30s,2m");
    /// `true` allows a plain `http://` webhook URL when `APP_ENV=prod` (a receiver on a private network; logged at start). Deliveries, signatures and user ids then cross the network in clear text.
    ALLOW_HTTP = extra("AUTHARA_WEBHOOK_ALLOW_HTTP", "false");
}

/// The events `AUTHARA_WEBHOOK_ENABLED_EVENTS` accepts (`contract/config.yaml`).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "organization.membership.created",
    "organization.membership.updated",
    "organization.membership.deleted",
    "organization.invitation.created",
    "organization.invitation.accepted",
    "organization.invitation.revoked",
];

/// `AUTHARA_WEBHOOK_*`, present when the URL and secret are set; read by the webhook delivery
/// workers.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `AUTHARA_WEBHOOK_URL`.
    pub url: String,
    /// `AUTHARA_WEBHOOK_SECRET`.
    pub secret: SecretString,
    /// `AUTHARA_WEBHOOK_ENABLED_EVENTS`; empty means every event.
    pub enabled_events: Vec<String>,
    /// `AUTHARA_WEBHOOK_TIMEOUT`.
    pub timeout: Duration,
    /// `AUTHARA_WEBHOOK_WORKER_COUNT`.
    pub worker_count: u32,
    /// `AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS`.
    pub max_delivery_attempts: u32,
    /// `AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER`.
    pub processing_stale_after: Duration,
    /// `AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL`.
    pub stale_reaper_interval: Duration,
    /// `AUTHARA_WEBHOOK_DELIVERED_RETENTION`.
    pub delivered_retention: Duration,
    /// `AUTHARA_WEBHOOK_FAILED_RETENTION`.
    pub failed_retention: Duration,
    /// `AUTHARA_WEBHOOK_CLEANUP_INTERVAL`.
    pub cleanup_interval: Duration,
    /// `AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE`.
    pub maintenance_batch_size: u32,
    /// `AUTHARA_WEBHOOK_RETRY_DELAYS`: never empty.
    pub retry_delays: Vec<Duration>,
    /// `AUTHARA_WEBHOOK_ALLOW_HTTP` in prod with a plain `http://` URL (the start logs it).
    pub insecure_http_in_prod: bool,
}

fn retry_delays(r: &mut Reader<'_>) -> Vec<Duration> {
    let positive = |item: &str| super::duration::parse(item).ok().filter(|d| !d.negative && !d.magnitude.is_zero());
    let raw = r.string(&RETRY_DELAYS);
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match positive(item) {
            Some(d) => out.push(d.magnitude),
            None => r.invalid(&RETRY_DELAYS, format!("{item:?} is not a positive duration")),
        }
    }
    if out.is_empty() {
        // The declared default, so the fallback cannot drift from the documentation.
        out = RETRY_DELAYS.default.split(',').filter_map(|i| positive(i.trim())).map(|d| d.magnitude).collect();
    }
    out
}

/// Reads this area; every setting is validated even when webhooks are off.
pub(super) fn build(r: &mut Reader<'_>, prod: bool) -> Option<WebhookConfig> {
    let url = r.raw(&URL);
    let secret = r.secret(&SECRET);
    let allow_http = r.bool(&ALLOW_HTTP);
    let plain_http = url.as_deref().is_some_and(|u| u.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")));
    let enabled_events = r.csv(&ENABLED_EVENTS, WEBHOOK_EVENTS);
    let cfg = WebhookConfig {
        url: url.clone().unwrap_or_default(),
        secret: secret.clone().unwrap_or_default(),
        enabled_events,
        timeout: r.duration(&TIMEOUT),
        worker_count: r.positive(&WORKER_COUNT),
        max_delivery_attempts: r.positive(&MAX_DELIVERY_ATTEMPTS),
        processing_stale_after: r.duration(&PROCESSING_STALE_AFTER),
        stale_reaper_interval: r.duration(&STALE_REAPER_INTERVAL),
        delivered_retention: r.duration(&DELIVERED_RETENTION),
        failed_retention: r.duration(&FAILED_RETENTION),
        cleanup_interval: r.duration(&CLEANUP_INTERVAL),
        maintenance_batch_size: r.positive(&MAINTENANCE_BATCH_SIZE),
        retry_delays: retry_delays(r),
        insecure_http_in_prod: prod && plain_http && allow_http,
    };
    r.ensure(
        cfg.timeout < cfg.processing_stale_after,
        &TIMEOUT,
        format!("must be shorter than {}", PROCESSING_STALE_AFTER.name),
    );
    match (url, secret) {
        (None, None) => None,
        (Some(u), Some(s)) => {
            if let Err(e) = validate_http_url(&u) {
                r.invalid(&URL, e);
            } else if prod && plain_http && !allow_http {
                // why: the body (user ids, emails of invitations) and its signature would cross the
                // network in clear text, as provider URLs may not either.
                r.invalid(
                    &URL,
                    format!(
                        "must use https when {}=prod (set {}=true for a receiver on a private network)",
                        APP_ENV.name, ALLOW_HTTP.name
                    ),
                );
            }
            if prod && s.expose_secret().chars().count() < 32 {
                r.invalid(&SECRET, format!("must be at least 32 characters when {}=prod", APP_ENV.name));
            }
            Some(cfg)
        }
        _ => {
            r.error(format!("{} and {} must be set together", URL.name, SECRET.name));
            None
        }
    }
}
