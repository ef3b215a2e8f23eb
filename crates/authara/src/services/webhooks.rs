//! Webhooks: deliver the public domain events to `AUTHARA_WEBHOOK_URL`, signed, retried,
//! observable (behavior.md §11, better).
//!
//! Deliveries are written with their event in the change's own transaction (see
//! `services::events`), so a rolled-back change never produces one and a committed one always
//! does, even if the process dies right after the commit. A delivery keeps its id across
//! retries (receivers deduplicate on `X-Authara-Delivery`). Each request carries the contract's
//! `X-Authara-Signature: sha256=<hex HMAC of the body>`, and, so that receivers can refuse
//! replays, `X-Authara-Timestamp` (unix seconds) with `X-Authara-Signature-V2: sha256=<hex HMAC of
//! "<timestamp>.<body>">`.
//!
//! Outcomes: 2xx delivered; network errors, timeouts, 429 and 5xx are retried after
//! `AUTHARA_WEBHOOK_RETRY_DELAYS` until `AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS`; any other status
//! (a redirect to another host included) fails at once. Responses are read only up to 1 KiB.

use std::time::{Duration, Instant};

use ring::hmac;
use uuid::Uuid;

use super::Core;
use crate::clock::ms;
use crate::config::WebhookConfig;
use crate::store::StoreError;
use crate::store::webhooks::{Attempt, DeliveryRow};

/// What one dispatch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Webhooks are off, or nothing was due.
    Idle,
    Delivered,
    /// Failed for now; the delivery waits for its next attempt.
    Retrying,
    /// Failed for good (a non-retryable status or attempts exhausted).
    Failed,
}

/// At most this much of a receiver's answer is read (for the error message).
const MAX_RESPONSE_BYTES: usize = 1024;

/// The webhook dispatcher.
#[derive(Clone)]
pub struct Webhooks {
    core: Core,
    http: reqwest::Client,
}

impl Webhooks {
    pub(crate) fn new(core: Core) -> Result<Self, String> {
        let timeout = core.config.webhooks.as_ref().map_or(Duration::from_secs(5), |w| w.timeout);
        // why (SSRF): only redirects that stay on the configured host are followed, at most 3.
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt.previous().first().map(|first| first.host_str()) == Some(attempt.url().host_str());
            if attempt.previous().len() >= 3 || !same_host { attempt.stop() } else { attempt.follow() }
        });
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .user_agent(concat!("authara/", env!("CARGO_PKG_VERSION"), " webhooks"))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self { core, http })
    }

    fn config(&self) -> Option<&WebhookConfig> {
        self.core.config.webhooks.as_ref()
    }

    /// Waits until a commit on this instance queued a delivery, or `at_most` passed.
    pub async fn wait_for_work(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.core.webhook_kick.notified()).await;
    }

    /// Claims the next due delivery and sends it.
    pub async fn deliver_next(&self) -> Result<Outcome, StoreError> {
        let Some(cfg) = self.config() else { return Ok(Outcome::Idle) };
        let store = &self.core.store;
        let Some(d) = store.claim_delivery(self.core.now_ms()).await? else { return Ok(Outcome::Idle) };
        let timestamp = self.core.now_ms().div_euclid(1000);
        let key = hmac::Key::new(hmac::HMAC_SHA256, cfg.secret.expose_secret().as_bytes());
        let v1 = hex(hmac::sign(&key, d.payload.as_bytes()).as_ref());
        let v2 = hex(hmac::sign(&key, format!("{timestamp}.{}", d.payload).as_bytes()).as_ref());
        let started = Instant::now();
        let sent = self
            .http
            .post(&cfg.url)
            .header("content-type", "application/json")
            .header("x-authara-event", &d.event_type)
            .header("x-authara-delivery", d.id.to_string())
            .header("x-authara-signature", format!("sha256={v1}"))
            .header("x-authara-timestamp", timestamp.to_string())
            .header("x-authara-signature-v2", format!("sha256={v2}"))
            .body(d.payload.clone())
            .send()
            .await;
        let (status, error) = match sent {
            Ok(mut res) => {
                let status = res.status();
                let mut body = Vec::new();
                while body.len() < MAX_RESPONSE_BYTES {
                    match res.chunk().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE_BYTES - body.len())])
                        }
                        _ => break,
                    }
                }
                let error = (!status.is_success())
                    .then(|| format!("HTTP {}: {}", status.as_u16(), String::from_utf8_lossy(&body).trim()));
                (Some(status), error)
            }
            Err(e) => {
                (None, Some(if e.is_timeout() { "timed out".to_owned() } else { format!("request failed: {e}") }))
            }
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let code = status.map(|s| i32::from(s.as_u16()));
        let retryable = status.is_none_or(|s| s.as_u16() == 429 || s.is_server_error());
        let max = i32::try_from(cfg.max_delivery_attempts).unwrap_or(i32::MAX);
        let now = self.core.now_ms();
        let (attempt, outcome) = match &error {
            None => (Attempt::Delivered { status: code.unwrap_or(200), latency_ms }, Outcome::Delivered),
            Some(e) if retryable && d.attempt_count < max => {
                let index = usize::try_from(d.attempt_count - 1).unwrap_or(0).min(cfg.retry_delays.len() - 1);
                let next_at_ms = now.saturating_add(ms(cfg.retry_delays[index]));
                (Attempt::Retry { next_at_ms, error: e, status: code, latency_ms }, Outcome::Retrying)
            }
            Some(e) => (Attempt::Failed { error: e, status: code, latency_ms }, Outcome::Failed),
        };
        if !store.finish_delivery(d.id, d.processing_started_at_ms, now, &attempt).await? {
            tracing::warn!(delivery = %d.id, "webhook delivery lease lost; left to its new owner");
        }
        match outcome {
            Outcome::Delivered => {
                tracing::debug!(delivery = %d.id, event = %d.event_type, latency_ms, "webhook delivered")
            }
            _ => {
                tracing::warn!(delivery = %d.id, event = %d.event_type, attempts = d.attempt_count, error = ?error, "webhook delivery failed")
            }
        }
        Ok(outcome)
    }

    /// Returns deliveries abandoned by a dead worker to the queue. Returns how many.
    pub async fn reap(&self) -> Result<u64, StoreError> {
        let Some(cfg) = self.config() else { return Ok(0) };
        let now = self.core.now_ms();
        let max = i32::try_from(cfg.max_delivery_attempts).unwrap_or(i32::MAX);
        self.core.store.reap_deliveries(now, now - ms(cfg.processing_stale_after), max).await
    }

    /// Deletes delivered and failed deliveries past their retention.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        let Some(cfg) = self.config() else { return Ok(0) };
        let now = self.core.now_ms();
        self.core.store.cleanup_deliveries(now - ms(cfg.delivered_retention), now - ms(cfg.failed_retention)).await
    }

    /// Queues a delivered or failed delivery again, under the same delivery id.
    pub async fn redeliver(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = self.core.store.redeliver(id, self.core.now_ms()).await?;
        if done {
            self.core.webhook_kick.notify_one();
        }
        Ok(done)
    }

    /// The newest deliveries, for operators.
    pub async fn recent(&self, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        self.core.store.recent_deliveries(limit).await
    }

    pub async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>, StoreError> {
        self.core.store.delivery(id).await
    }

    /// Deliveries per status.
    pub async fn counts(&self) -> Result<std::collections::HashMap<crate::domain::DeliveryStatus, i64>, StoreError> {
        self.core.store.delivery_counts().await
    }

    /// Whether webhooks are configured, and the settings the workers need.
    pub fn settings(&self) -> Option<&WebhookConfig> {
        self.config()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
