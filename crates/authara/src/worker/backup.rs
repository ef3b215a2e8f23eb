//! Scheduled backups (`AUTHARA_BACKUP_DIR`): a snapshot every `AUTHARA_BACKUP_INTERVAL`, the
//! newest `AUTHARA_BACKUP_KEEP` kept.

use std::path::PathBuf;
use std::time::Duration;

use crate::services::Services;

/// Loops until the task is aborted at shutdown; the first snapshot is one interval after start.
pub async fn run(services: Services, dir: PathBuf, interval: Duration, keep: u32) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match services.backups().scheduled(&dir, keep).await {
            Ok((path, bytes)) => tracing::info!(path = %path.display(), bytes, "backup written"),
            Err(e) => tracing::error!(error = %e, dir = %dir.display(), "scheduled backup failed"),
        }
    }
}
