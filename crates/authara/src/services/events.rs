//! Domain events: every change that applications, admins or auditors care about is recorded in
//! the same transaction as the change (design.md decision 14), so no consumer can miss or invent
//! one. The public types are the ones of `contract/webhooks.yaml`; `challenge.code_issued` is
//! internal (it carries a sealed code for the email worker and is never delivered elsewhere).
//!
//! Consumers: the email worker now (an email job is written for each event that sends mail);
//! the webhook dispatcher and the audit writer attach here next.

use serde_json::{Value, json};
use uuid::Uuid;

use super::Core;
use crate::clock::rfc3339;
use crate::domain::{ChallengePurpose, EmailAddress, OrgId, OrgKind, OrgRole, UserId};
use crate::store::events::NewEvent;
use crate::store::outbox::NewEmailJob;
use crate::store::webhooks::NewDelivery;
use crate::store::{StoreError, Tx};

/// Templates of the email outbox (`email_jobs.template`).
pub mod templates {
    pub const SIGNUP_CODE: &str = "signup_code";
    pub const PASSWORD_RESET_CODE: &str = "password_reset_code";
    pub const EMAIL_CHANGE_CODE: &str = "email_change_code";
    pub const EMAIL_CHANGE_NOTICE: &str = "email_change_notice";
}

/// A change worth recording.
#[derive(Debug, Clone)]
pub enum DomainEvent<'a> {
    UserCreated {
        user_id: UserId,
    },
    UserUpdated {
        user_id: UserId,
    },
    UserDeleted {
        user_id: UserId,
    },
    OrganizationCreated {
        org_id: OrgId,
        name: &'a str,
        kind: OrgKind,
        created_by: Option<UserId>,
    },
    MembershipCreated {
        org_id: OrgId,
        user_id: UserId,
        role: OrgRole,
        is_initial: bool,
        invitation_id: Option<Uuid>,
    },
    /// Someone asked to move the account to another address: the current address is told,
    /// with a link that cancels the change.
    EmailChangeRequested {
        user_id: UserId,
        challenge_id: Uuid,
        to: &'a str,
        new_email: &'a str,
        cancel_url: String,
    },
    /// A verification code was issued; the email worker sends it.
    CodeIssued {
        challenge_id: Uuid,
        purpose: ChallengePurpose,
        to: &'a EmailAddress,
        sealed_code: String,
        code_expires_at_ms: i64,
    },
}

impl DomainEvent<'_> {
    /// The event type (`contract/webhooks.yaml` names for public events).
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::UserCreated { .. } => "user.created",
            DomainEvent::UserUpdated { .. } => "user.updated",
            DomainEvent::UserDeleted { .. } => "user.deleted",
            DomainEvent::OrganizationCreated { .. } => "organization.created",
            DomainEvent::MembershipCreated { .. } => "organization.membership.created",
            DomainEvent::CodeIssued { .. } => "challenge.code_issued",
            DomainEvent::EmailChangeRequested { .. } => "user.email_change_requested",
        }
    }

    fn aggregate(&self) -> (&'static str, Uuid) {
        match self {
            DomainEvent::UserCreated { user_id }
            | DomainEvent::UserUpdated { user_id }
            | DomainEvent::UserDeleted { user_id }
            | DomainEvent::EmailChangeRequested { user_id, .. } => ("user", user_id.0),
            DomainEvent::OrganizationCreated { org_id, .. } | DomainEvent::MembershipCreated { org_id, .. } => {
                ("organization", org_id.0)
            }
            DomainEvent::CodeIssued { challenge_id, .. } => ("challenge", *challenge_id),
        }
    }

    /// The `data` object (webhooks.yaml's shape for public events).
    pub fn data(&self) -> Value {
        match self {
            DomainEvent::UserCreated { user_id }
            | DomainEvent::UserUpdated { user_id }
            | DomainEvent::UserDeleted { user_id } => json!({ "user_id": user_id }),
            DomainEvent::OrganizationCreated { org_id, name, kind, created_by } => json!({
                "organization_id": org_id, "name": name, "kind": kind.as_str(), "created_by_user_id": created_by,
            }),
            DomainEvent::MembershipCreated { org_id, user_id, role, is_initial, invitation_id } => json!({
                "organization_id": org_id, "user_id": user_id, "role": role.as_str(),
                "is_initial_membership": is_initial, "invitation_id": invitation_id, "metadata": {},
            }),
            DomainEvent::CodeIssued { challenge_id, purpose, to, sealed_code, code_expires_at_ms } => json!({
                "challenge_id": challenge_id, "purpose": purpose.as_str(), "to": to.as_str(),
                "sealed_code": sealed_code, "code_expires_at": rfc3339(*code_expires_at_ms),
                "code_expires_at_ms": code_expires_at_ms,
            }),
            DomainEvent::EmailChangeRequested { user_id, challenge_id, to, new_email, cancel_url } => json!({
                "user_id": user_id, "challenge_id": challenge_id, "to": to, "new_email": new_email,
                "cancel_url": cancel_url,
            }),
        }
    }

    /// The email this event sends, if any: (recipient, template, challenge it belongs to).
    fn email(&self) -> Option<(&str, &'static str, Option<Uuid>)> {
        match self {
            DomainEvent::CodeIssued { challenge_id, purpose, to, .. } => {
                let template = match purpose {
                    ChallengePurpose::Signup => templates::SIGNUP_CODE,
                    ChallengePurpose::PasswordReset => templates::PASSWORD_RESET_CODE,
                    ChallengePurpose::EmailChange => templates::EMAIL_CHANGE_CODE,
                };
                Some((to.as_str(), template, Some(*challenge_id)))
            }
            DomainEvent::EmailChangeRequested { challenge_id, to, .. } => {
                Some((to, templates::EMAIL_CHANGE_NOTICE, Some(*challenge_id)))
            }
            _ => None,
        }
    }
}

impl DomainEvent<'_> {
    /// Public events are the ones of `contract/webhooks.yaml`; the others stay inside.
    fn is_public(&self) -> bool {
        crate::config::webhooks::WEBHOOK_EVENTS.contains(&self.kind())
    }
}

/// The webhook envelope (`contract/webhooks.yaml`): the exact bytes sent and signed.
fn envelope(id: Uuid, kind: &str, created_at_ms: i64, data: &Value) -> String {
    format!(
        r#"{{"id":"{id}","type":"{kind}","created_at":"{}","data":{data}}}"#,
        crate::clock::rfc3339_millis(created_at_ms)
    )
}

impl Core {
    /// Records `event` in `tx` with what its consumers need, all in the same transaction: the
    /// email job it sends, if any, and the webhook delivery when webhooks are on and the event is
    /// public and enabled. Returns the event id.
    pub(crate) async fn record(&self, tx: &mut Tx, event: &DomainEvent<'_>) -> Result<Uuid, StoreError> {
        let now = self.now_ms();
        let id = Uuid::new_v4();
        let (aggregate_type, aggregate_id) = event.aggregate();
        let data = event.data();
        let text = data.to_string();
        let seq = tx
            .insert_event(&NewEvent { id, kind: event.kind(), aggregate_type, aggregate_id, data: &text, now_ms: now })
            .await?;
        if let Some((to, template, challenge_id)) = event.email() {
            tx.enqueue_email(&NewEmailJob { challenge_id, event_id: id, to, template, now_ms: now }).await?;
        }
        if let Some(hooks) = &self.config.webhooks
            && event.is_public()
            && (hooks.enabled_events.is_empty() || hooks.enabled_events.iter().any(|e| e == event.kind()))
        {
            let delivery = Uuid::new_v4();
            let payload = envelope(delivery, event.kind(), now, &data);
            tx.insert_delivery(&NewDelivery {
                id: delivery,
                event_id: id,
                event_seq: seq,
                event_type: event.kind(),
                aggregate_id,
                payload: &payload,
                now_ms: now,
            })
            .await?;
            let kick = self.webhook_kick.clone();
            tx.after_commit(move || kick.notify_one());
        }
        Ok(id)
    }
}
