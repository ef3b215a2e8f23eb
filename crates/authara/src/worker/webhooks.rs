//! The webhook workers: dispatchers that deliver back to back while work is due and otherwise
//! wait for a commit on this instance (or 1 s, for commits on other instances); a reaper that
//! returns deliveries abandoned by a dead worker; a cleanup of old rows.

use std::time::Duration;

pub use crate::services::webhooks::Outcome;
use crate::services::{Services, StoreError};

/// Delivers one due delivery.
pub async fn run_once(s: &Services) -> Result<Outcome, StoreError> {
    let outcome = s.webhooks().deliver_next().await;
    match &outcome {
        Ok(Outcome::Idle) | Err(_) => {}
        Ok(Outcome::Delivered) => s.metrics().webhook_delivery("delivered"),
        Ok(Outcome::Retrying) => s.metrics().webhook_delivery("retrying"),
        Ok(Outcome::Failed) => s.metrics().webhook_delivery("failed"),
    }
    outcome
}

/// Runs until [`Services::stop_workers`] (then returns once the delivery in hand is done) or
/// aborted.
pub async fn run(s: Services) {
    let mut stop = s.stop_requested();
    while !*stop.borrow_and_update() {
        match run_once(&s).await {
            Ok(Outcome::Idle) => tokio::select! {
                () = s.webhooks().wait_for_work(Duration::from_secs(1)) => {}
                _ = stop.changed() => {}
            },
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook worker");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// Every `AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL`: returns abandoned deliveries to the queue.
pub async fn reaper(s: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match s.webhooks().reap().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(deliveries = n, "reclaimed webhook deliveries abandoned mid-send"),
            Err(e) => tracing::warn!(error = %e, "webhook reaper"),
        }
    }
}

/// Every `AUTHARA_WEBHOOK_CLEANUP_INTERVAL`: deletes old delivered and failed rows.
pub async fn cleanup(s: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = s.webhooks().cleanup().await {
            tracing::warn!(error = %e, "webhook cleanup");
        }
    }
}
