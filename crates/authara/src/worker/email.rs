//! The email worker: claims due jobs from the outbox and delivers them, with retries.
//!
//! A job is claimed (`sending`) in its own transaction, then sent; a job whose worker died
//! mid-send is returned to the queue once it has been `sending` for longer than any live send
//! can take, so it is delivered after a crash and never sent by two workers at once.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ms;
use crate::services::Services;
use crate::services::challenge::{code_hash, new_code};
use crate::services::emails::code_email;
use crate::services::mailer::Email;
use crate::store::StoreError;
use crate::store::outbox::EmailJob;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was due.
    Idle,
    Sent,
    /// Delivery failed for now; the job waits for its next attempt.
    Retrying,
    /// Delivery failed for good (permanent error, attempts exhausted, or nothing to send).
    Failed,
}

/// How long a claimed job may stay `sending` before it is assumed abandoned.
pub fn stale_after(s: &Services) -> Duration {
    let smtp = match &s.config.email.provider {
        crate::config::EmailProvider::Smtp(c) => c.timeout * 4,
        crate::config::EmailProvider::Noop => Duration::ZERO,
    };
    smtp.max(Duration::from_secs(60))
}

/// Delay before attempt `n + 1`: 5 s, 10 s, 20 s... capped at 15 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(5u64.saturating_mul(1 << exp.min(16))).min(Duration::from_secs(900))
}

/// Claims and handles one job.
pub async fn run_once(s: &Services) -> Result<Outcome, StoreError> {
    let now = s.now_ms();
    let Some(job) = s.store.claim_email(now, now - ms(stale_after(s))).await? else {
        return Ok(Outcome::Idle);
    };
    let email = match prepare(s, &job).await? {
        Some(e) => e,
        None => {
            s.store
                .email_failed(job.id, "nothing to send: challenge consumed, expired or unknown template", now)
                .await?;
            return Ok(Outcome::Failed);
        }
    };
    let result = s.mailer.send(&email).await;
    let now = s.now_ms();
    match result {
        Ok(()) => {
            s.store.email_sent(job.id, now).await?;
            tracing::info!(job = %job.id, template = %job.template, "email sent");
            Ok(Outcome::Sent)
        }
        Err(e)
            if e.permanent
                || job.attempt_count >= i32::try_from(s.config.email.job_max_attempts).unwrap_or(i32::MAX) =>
        {
            tracing::warn!(job = %job.id, attempts = job.attempt_count, error = %e, "email failed for good");
            s.store.email_failed(job.id, &e.message, now).await?;
            Ok(Outcome::Failed)
        }
        Err(e) => {
            let next = now + ms(backoff(job.attempt_count));
            tracing::warn!(job = %job.id, attempts = job.attempt_count, error = %e, "email delivery failed; will retry");
            s.store.email_retry(job.id, next, &e.message, now).await?;
            Ok(Outcome::Retrying)
        }
    }
}

/// Renders the job; challenge jobs get a fresh code, stored (as an HMAC) before sending.
async fn prepare(s: &Services, job: &EmailJob) -> Result<Option<Email>, StoreError> {
    let product = &s.config.ui.product_name;
    let Some(challenge_id) = job.challenge_id else { return Ok(None) };
    let now = s.now_ms();
    let mut tx = s.store.begin().await?;
    let Some(c) = tx.challenge_for_update(challenge_id).await? else { return Ok(None) };
    if c.opaque || c.consumed_at_ms.is_some() || now > c.expires_at_ms {
        return Ok(None);
    }
    let code = new_code();
    let expires = now.saturating_add(ms(s.config.challenge.code_ttl)).min(c.expires_at_ms);
    tx.set_challenge_code(challenge_id, &code_hash(&s.code_key, challenge_id, &code), expires, now).await?;
    tx.commit().await?;
    let minutes = (expires - now).div_euclid(60_000).max(1);
    Ok(code_email(&job.template, &job.to_email, &code, minutes, product))
}

/// Runs until aborted: handles jobs back to back, sleeps `poll` when idle or on errors.
pub async fn run(s: Arc<Services>) {
    let poll = s.config.email.poll_interval;
    loop {
        match run_once(&s).await {
            Ok(Outcome::Idle) => tokio::time::sleep(poll).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "email worker");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// Hourly: deletes old sent and failed jobs and expired challenges.
pub async fn cleanup(s: Arc<Services>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = s.now_ms();
        let sent = now - ms(s.config.email.cleanup_sent_after);
        let failed = now - ms(s.config.email.cleanup_failed_after);
        if let Err(e) = s.store.cleanup_emails(sent, failed).await {
            tracing::warn!(error = %e, "email cleanup");
        }
        if let Err(e) = s.store.delete_expired_challenges(now).await {
            tracing::warn!(error = %e, "challenge cleanup");
        }
    }
}
