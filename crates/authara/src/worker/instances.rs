//! Following the other instances (Redis provider): their revocations and changes reach this
//! process's caches; after a lost connection the subscriber reconnects and catches up.

use std::time::Duration;

use crate::services::Services;

/// Pause between reconnection attempts.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

pub async fn run(services: Services) {
    while services.follow_other_instances().await {
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}
