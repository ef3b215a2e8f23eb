//! Domain events: every change that applications, admins or auditors care about is recorded in
//! the same transaction as the change (design.md decision 14), so no consumer can miss or invent
//! one. The public types are the ones of `contract/webhooks.yaml`; `challenge.code_issued` is
//! internal (it carries a sealed code for the email worker and is never delivered elsewhere).
//!
//! Consumers: the email worker now (an email job is written for each event that sends mail);
//! the webhook dispatcher and the audit writer attach here next. What only the email needs (a
//! sealed invitation token) goes into the email job, never into an event's public `data`.

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
    pub const ORGANIZATION_INVITATION: &str = "organization_invitation";
}

/// What every invitation event says about the invitation (webhooks.yaml).
#[derive(Debug, Clone, Copy)]
pub struct InvitationFacts<'a> {
    pub id: Uuid,
    pub org_id: OrgId,
    pub email: &'a str,
    pub role: OrgRole,
    pub metadata: &'a Value,
}

impl InvitationFacts<'_> {
    fn data(&self) -> Value {
        json!({
            "invitation_id": self.id, "organization_id": self.org_id, "email": self.email,
            "role": self.role.as_str(), "metadata": self.metadata,
        })
    }
}

/// What the invitation email needs besides the event: kept in the email job, not the event.
#[derive(Debug, Clone)]
pub struct InvitationMail<'a> {
    /// The raw token, sealed under the invitation id (`Secrets::seal`).
    pub sealed_token: String,
    pub organization_name: &'a str,
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
    OrganizationUpdated {
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
        /// The invitation's metadata (`{}` when `None`).
        metadata: Option<&'a Value>,
    },
    /// An invitation was issued; the email worker sends it.
    InvitationCreated {
        invitation: InvitationFacts<'a>,
        invited_by: Option<UserId>,
        expires_at_ms: i64,
        mail: InvitationMail<'a>,
    },
    InvitationAccepted {
        invitation: InvitationFacts<'a>,
        accepted_by: UserId,
        accepted_at_ms: i64,
    },
    InvitationRevoked {
        invitation: InvitationFacts<'a>,
        revoked_by: Option<UserId>,
        revoked_at_ms: i64,
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
            DomainEvent::OrganizationUpdated { .. } => "organization.updated",
            DomainEvent::MembershipCreated { .. } => "organization.membership.created",
            DomainEvent::InvitationCreated { .. } => "organization.invitation.created",
            DomainEvent::InvitationAccepted { .. } => "organization.invitation.accepted",
            DomainEvent::InvitationRevoked { .. } => "organization.invitation.revoked",
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
            DomainEvent::OrganizationCreated { org_id, .. }
            | DomainEvent::OrganizationUpdated { org_id, .. }
            | DomainEvent::MembershipCreated { org_id, .. } => ("organization", org_id.0),
            DomainEvent::InvitationCreated { invitation, .. }
            | DomainEvent::InvitationAccepted { invitation, .. }
            | DomainEvent::InvitationRevoked { invitation, .. } => ("organization", invitation.org_id.0),
            DomainEvent::CodeIssued { challenge_id, .. } => ("challenge", *challenge_id),
        }
    }

    /// The `data` object (webhooks.yaml's shape for public events).
    pub fn data(&self) -> Value {
        match self {
            DomainEvent::UserCreated { user_id }
            | DomainEvent::UserUpdated { user_id }
            | DomainEvent::UserDeleted { user_id } => json!({ "user_id": user_id }),
            DomainEvent::OrganizationCreated { org_id, name, kind, created_by }
            | DomainEvent::OrganizationUpdated { org_id, name, kind, created_by } => json!({
                "organization_id": org_id, "name": name, "kind": kind.as_str(), "created_by_user_id": created_by,
            }),
            DomainEvent::MembershipCreated { org_id, user_id, role, is_initial, invitation_id, metadata } => json!({
                "organization_id": org_id, "user_id": user_id, "role": role.as_str(),
                "is_initial_membership": is_initial, "invitation_id": invitation_id,
                "metadata": metadata.cloned().unwrap_or_else(|| json!({})),
            }),
            DomainEvent::InvitationCreated { invitation, invited_by, expires_at_ms, mail: _ } => {
                let mut data = invitation.data();
                data["invited_by_user_id"] = json!(invited_by);
                data["expires_at"] = json!(rfc3339(*expires_at_ms));
                data
            }
            DomainEvent::InvitationAccepted { invitation, accepted_by, accepted_at_ms } => {
                let mut data = invitation.data();
                data["accepted_by_user_id"] = json!(accepted_by);
                data["accepted_at"] = json!(rfc3339(*accepted_at_ms));
                data
            }
            DomainEvent::InvitationRevoked { invitation, revoked_by, revoked_at_ms } => {
                let mut data = invitation.data();
                data["revoked_by_user_id"] = json!(revoked_by);
                data["revoked_at"] = json!(rfc3339(*revoked_at_ms));
                data
            }
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

    /// The email this event sends, if any: (recipient, template, challenge it belongs to,
    /// template data).
    fn email(&self) -> Option<(&str, &'static str, Option<Uuid>, Value)> {
        let none = || json!({});
        match self {
            DomainEvent::CodeIssued { challenge_id, purpose, to, .. } => {
                let template = match purpose {
                    ChallengePurpose::Signup => templates::SIGNUP_CODE,
                    ChallengePurpose::PasswordReset => templates::PASSWORD_RESET_CODE,
                    ChallengePurpose::EmailChange => templates::EMAIL_CHANGE_CODE,
                };
                Some((to.as_str(), template, Some(*challenge_id), none()))
            }
            DomainEvent::EmailChangeRequested { challenge_id, to, .. } => {
                Some((to, templates::EMAIL_CHANGE_NOTICE, Some(*challenge_id), none()))
            }
            DomainEvent::InvitationCreated { invitation, mail, .. } => {
                let data = json!({"sealed_token": mail.sealed_token, "organization_name": mail.organization_name});
                Some((invitation.email, templates::ORGANIZATION_INVITATION, None, data))
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
        if let Some((to, template, challenge_id, job_data)) = event.email() {
            let job_data = job_data.to_string();
            tx.enqueue_email(&NewEmailJob { challenge_id, event_id: id, to, template, data: &job_data, now_ms: now })
                .await?;
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
