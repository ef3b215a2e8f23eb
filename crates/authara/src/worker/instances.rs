//! Following the other instances (Redis provider): their revocations and changes reach this
//! process's caches; after a lost connection the subscriber reconnects and catches up. The
//! revocation feed reads recent revocations from the database every second, so one that an
//! instance cut off from Redis could not announce is applied here too (see `docs/instances.md`
//! for the bound this gives).

use std::time::Duration;

use crate::services::Services;

/// Pause between reconnection attempts.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

pub async fn run(services: Services) {
    while services.follow_other_instances().await {
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

/// Reads the revocation feed every [`crate::cache::REVOCATION_FEED_EVERY`] (Redis provider;
/// returns at once with the memory provider, where this process makes every revocation).
pub async fn feed(services: Services) {
    if !services.cache().follows_revocation_feed() {
        return;
    }
    let mut cursor = None;
    let mut failing = false;
    let mut every = tokio::time::interval(crate::cache::REVOCATION_FEED_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match services.read_revocation_feed(&mut cursor).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("revocation feed read again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "reading the revocation feed failed; checking sessions in the database until it works");
            }
            Err(_) => {}
        }
    }
}
