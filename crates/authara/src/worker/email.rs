//! The email worker: delivers the outbox (see `services::mail`) until aborted.

use std::time::Duration;

use crate::services::Services;
use crate::services::StoreError;
pub use crate::services::mail::{Outcome, backoff};

/// Claims and handles one job.
pub async fn run_once(s: &Services) -> Result<Outcome, StoreError> {
    s.mail().deliver_next().await
}

/// Runs until [`Services::stop_workers`] (then returns once the job in hand is handled) or
/// aborted: handles jobs back to back, sleeps `poll` when idle or on errors.
pub async fn run(s: Services) {
    let poll = s.config().email.poll_interval;
    let mut stop = s.stop_requested();
    while !*stop.borrow_and_update() {
        let rest = match run_once(&s).await {
            Ok(Outcome::Idle) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "email worker");
                true
            }
        };
        if rest {
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Hourly: deletes old sent and failed jobs, expired challenges and consumed events.
pub async fn cleanup(s: Services) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = s.mail().cleanup().await {
            tracing::warn!(error = %e, "email cleanup");
        }
    }
}
