//! Delivering the email outbox: claim a due job, render it from its event, send, record the
//! outcome with retries and backoff.
//!
//! A job is claimed (`sending`) in its own transaction, then sent; a job whose worker died
//! mid-send is returned to the queue once it has been `sending` for longer than any live send
//! can take, so it is delivered after a crash and never sent by two workers at once.

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use super::Core;
use super::emails::{Invitation, Notice, code_email, email_change_notice, invitation_email, security_notice};
use super::events::templates::{EMAIL_CHANGE_NOTICE, ORGANIZATION_INVITATION, SECURITY_NOTICE};
use super::invitations::invite_url;
use super::mailer::{Email, Mailer};
use crate::clock::{human, ms};
use crate::config::EmailProvider;
use crate::domain::InvitationStatus;
use crate::store::StoreError;
use crate::store::outbox::EmailJob;

/// What one delivery attempt did.
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

/// Delay before attempt `n + 1`: 5 s, 10 s, 20 s... capped at 15 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(5u64.saturating_mul(1 << exp.min(16))).min(Duration::from_secs(900))
}

/// The data of a `challenge.code_issued` event that the email needs.
#[derive(Deserialize)]
struct CodeIssued {
    challenge_id: Uuid,
    sealed_code: String,
    code_expires_at_ms: i64,
}

/// The data of a `user.email_change_requested` event that the notice needs.
#[derive(Deserialize)]
struct ChangeRequested {
    new_email: String,
    cancel_url: String,
}

/// The data of an `organization.invitation.created` event that the invitation needs.
#[derive(Deserialize)]
struct InvitationCreated {
    invitation_id: Uuid,
}

/// The invitation email's job data: the token, sealed under the invitation id.
#[derive(Deserialize)]
struct InvitationJob {
    sealed_token: String,
    organization_name: String,
}

/// The email outbox.
#[derive(Clone)]
pub struct Mail {
    core: Core,
    mailer: Mailer,
}

impl Mail {
    pub(crate) fn new(core: Core, mailer: Mailer) -> Self {
        Self { core, mailer }
    }

    /// How long a claimed job may stay `sending` before it is assumed abandoned.
    pub fn stale_after(&self) -> Duration {
        let smtp = match &self.core.config.email.provider {
            EmailProvider::Smtp(c) => c.timeout * 4,
            EmailProvider::Noop => Duration::ZERO,
        };
        smtp.max(Duration::from_secs(60))
    }

    /// Claims and handles one job.
    pub async fn deliver_next(&self) -> Result<Outcome, StoreError> {
        let store = &self.core.store;
        let now = self.core.now_ms();
        let Some(job) = store.claim_email(now, now - ms(self.stale_after())).await? else {
            return Ok(Outcome::Idle);
        };
        let email = match self.render(&job).await? {
            Ok(e) => e,
            Err(why) => {
                tracing::warn!(job = %job.id, template = %job.template, why, "email not sendable");
                store.email_failed(job.id, why, now).await?;
                return Ok(Outcome::Failed);
            }
        };
        let result = self.mailer.send(&email).await;
        let now = self.core.now_ms();
        let max_attempts = i32::try_from(self.core.config.email.job_max_attempts).unwrap_or(i32::MAX);
        match result {
            Ok(()) => {
                store.email_sent(job.id, now).await?;
                tracing::info!(job = %job.id, template = %job.template, "email sent");
                Ok(Outcome::Sent)
            }
            Err(e) if e.permanent || job.attempt_count >= max_attempts => {
                tracing::warn!(job = %job.id, attempts = job.attempt_count, error = %e, "email failed for good");
                store.email_failed(job.id, &e.message, now).await?;
                Ok(Outcome::Failed)
            }
            Err(e) => {
                let next = now + ms(backoff(job.attempt_count));
                tracing::warn!(job = %job.id, attempts = job.attempt_count, error = %e, "email delivery failed; will retry");
                store.email_retry(job.id, next, &e.message, now).await?;
                Ok(Outcome::Retrying)
            }
        }
    }

    /// Renders a job from its event; `Err(why)` when there is nothing that can be sent.
    async fn render(&self, job: &EmailJob) -> Result<Result<Email, &'static str>, StoreError> {
        let Some(event_id) = job.event_id else { return Ok(Err("the job has no event")) };
        let Some(event) = self.core.store.event(event_id).await? else { return Ok(Err("the event is gone")) };
        let product = &self.core.config.ui.product_name;
        if job.template == EMAIL_CHANGE_NOTICE {
            let Ok(data) = serde_json::from_str::<ChangeRequested>(&event.data) else {
                return Ok(Err("the event does not describe an email change"));
            };
            return Ok(Ok(email_change_notice(&job.to_email, &data.new_email, &data.cancel_url, product)));
        }
        if job.template == ORGANIZATION_INVITATION {
            return self.render_invitation(job, &event.data).await;
        }
        if job.template == SECURITY_NOTICE {
            let Ok(mut notice) = serde_json::from_str::<Notice>(&job.template_data) else {
                return Ok(Err("the job does not describe a notice"));
            };
            // A provider by the name people know it by.
            if notice.notice.starts_with("provider_")
                && let Some(p) = notice.detail.as_deref().and_then(|d| self.core.config.oauth.provider(d))
            {
                notice.detail = Some(p.display_name.clone());
            }
            return Ok(security_notice(&job.to_email, &notice, product).ok_or("unknown notice"));
        }
        let Ok(data) = serde_json::from_str::<CodeIssued>(&event.data) else {
            return Ok(Err("the event carries no code"));
        };
        let now = self.core.now_ms();
        if now > data.code_expires_at_ms {
            return Ok(Err("the code expired before it could be delivered"));
        }
        let Ok(code) = self.core.secrets.open(&data.sealed_code, data.challenge_id.as_bytes()) else {
            return Ok(Err("the code was sealed with another key"));
        };
        let code = String::from_utf8_lossy(&code);
        let minutes = (data.code_expires_at_ms - now).div_euclid(60_000).max(1);
        Ok(code_email(&job.template, &job.to_email, &code, minutes, product).ok_or("unknown template"))
    }

    /// The invitation email, while the invitation is still pending (a resent or revoked one is
    /// not mailed any more).
    async fn render_invitation(&self, job: &EmailJob, event: &str) -> Result<Result<Email, &'static str>, StoreError> {
        let (Ok(data), Ok(sealed)) = (
            serde_json::from_str::<InvitationCreated>(event),
            serde_json::from_str::<InvitationJob>(&job.template_data),
        ) else {
            return Ok(Err("the event does not describe an invitation"));
        };
        let Some(row) = self.core.store.invitation_by_id(data.invitation_id).await? else {
            return Ok(Err("the invitation is gone"));
        };
        if row.status(self.core.now_ms()) != InvitationStatus::Pending {
            return Ok(Err("the invitation is no longer pending"));
        }
        let Ok(token) = self.core.secrets.open(&sealed.sealed_token, data.invitation_id.as_bytes()) else {
            return Ok(Err("the token was sealed with another key"));
        };
        let token = String::from_utf8_lossy(&token);
        let config = &self.core.config;
        let url = invite_url(&config.public_url, &token);
        let invitation = Invitation {
            organization: &sealed.organization_name,
            url: &url,
            code: config.organizations.invitation_email_include_code.then_some(&*token),
            expires: &human(row.expires_at_ms),
        };
        Ok(Ok(invitation_email(&job.to_email, &invitation, &config.ui.product_name)))
    }

    /// Deletes old sent and failed jobs, expired challenges, and events no consumer needs.
    /// Returns the rows deleted.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        let now = self.core.now_ms();
        let email = &self.core.config.email;
        let store = &self.core.store;
        Ok(store.cleanup_emails(now - ms(email.cleanup_sent_after), now - ms(email.cleanup_failed_after)).await?
            + store.delete_expired_challenges(now).await?
            + store.cleanup_events(now - ms(email.cleanup_failed_after)).await?)
    }

    /// Jobs per status (`pending`, `sending`, `sent`, `failed`).
    pub async fn counts(&self) -> Result<std::collections::HashMap<crate::domain::JobStatus, i64>, StoreError> {
        self.core.store.email_counts().await
    }
}
