//! Session cleanup: every 5 minutes, delete abandoned provider sign-in flows, passkey
//! ceremonies and sign-ins that never finished their second step, expired sessions, sessions revoked longer than one access-token lifetime ago,
//! and expired refresh tokens. Consumed refresh tokens that have not expired are kept: they
//! are how reuse is detected.

use std::time::Duration;

use crate::services::Services;
use crate::services::StoreError;

pub const INTERVAL: Duration = Duration::from_secs(300);

/// One pass; returns (sessions, refresh tokens) deleted. Expired passkey ceremonies and
/// abandoned provider sign-in flows go too; each kind is cleaned even when another fails.
pub async fn run_once(services: &Services) -> Result<(u64, u64), StoreError> {
    if let Err(e) = services.passkeys().cleanup().await {
        tracing::warn!(error = %e, "passkey ceremony cleanup failed");
    }
    match services.oauth().cleanup().await {
        Ok(0) => {}
        Ok(flows) => tracing::debug!(flows, "abandoned sign-in flows deleted"),
        Err(e) => tracing::warn!(error = %e, "sign-in flow cleanup failed"),
    }
    match services.signins().cleanup().await {
        Ok(0) => {}
        Ok(waiting) => tracing::debug!(waiting, "sign-ins that never finished their second step deleted"),
        Err(e) => tracing::warn!(error = %e, "second-step cleanup failed"),
    }
    services.sessions().cleanup().await
}

/// Loops until the task is aborted at shutdown.
pub async fn run(services: Services) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Batches commit as they go: a pass cut short by the timeout resumes at the next tick.
        match tokio::time::timeout(INTERVAL - Duration::from_secs(60), run_once(&services)).await {
            Ok(Ok((s, t))) if s + t > 0 => tracing::info!(sessions = s, refresh_tokens = t, "cleanup"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cleanup failed"),
            Err(_) => tracing::warn!("cleanup timed out"),
        }
    }
}

/// Daily: deletes audit events past `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`.
pub async fn audit(services: Services) {
    let mut tick = tokio::time::interval(Duration::from_secs(86_400));
    loop {
        tick.tick().await;
        match services.admin().cleanup_audit().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "audit retention"),
            Err(e) => tracing::warn!(error = %e, "audit retention"),
        }
    }
}

/// Every cleanup at once (`authara cleanup`): what the workers delete on their own schedules.
/// Returns the rows deleted per kind.
pub async fn everything(services: &Services) -> Result<Vec<(&'static str, u64)>, StoreError> {
    let (sessions, tokens) = run_once(services).await?;
    Ok(vec![
        ("sessions", sessions),
        ("refresh tokens", tokens),
        ("emails, challenges and events", services.mail().cleanup().await?),
        ("webhook deliveries", services.webhooks().cleanup().await?),
        ("audit events", services.admin().cleanup_audit().await?),
    ])
}
