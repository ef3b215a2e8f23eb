//! Domain events: every change that applications, admins or auditors care about is recorded in
//! the same transaction as the change (design.md decision 14), so no consumer can miss or invent
//! one. `Core::record` is the one write: the event row, and from it, in that transaction, what
//! each consumer needs:
//! - the webhook delivery, for the public types of `contract/webhooks.yaml`;
//! - the email job, for the events that send mail (codes, invitations, security notices);
//! - the audit row, for the events the audit log shows.
//!
//! What only the email may see (a verification code, an invitation token) is sealed in the
//! event or its job, never in the `data` that webhooks deliver.

use serde_json::{Value, json};
use uuid::Uuid;

use super::Core;
use super::audit::{Actor, sanitize};
use crate::clock::rfc3339;
use crate::domain::{
    Audience, AuditAction, ChallengePurpose, EmailAddress, EventType, OrgId, OrgKind, OrgRole, SessionId, UserId,
    truncate,
};
use crate::store::audit::NewAudit;
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
    /// A sign-in method was added or removed, the password changed, credentials were removed
    /// when the address was first proven (rendered from the event's data).
    pub const SECURITY_NOTICE: &str = "security_notice";
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

/// What changed about a user (`user.updated` for applications, one audit action each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Username,
    /// The password was changed (or added, to an account without one); `revoked` sessions ended.
    Password {
        revoked: usize,
        added: bool,
    },
    /// Reset by email code; every session ended.
    PasswordReset {
        revoked: usize,
    },
    Email,
    Disabled,
    Enabled,
}

/// A sign-in method of an account.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    Passkey {
        id: Uuid,
        name: &'a str,
        synced: bool,
    },
    /// A provider identity (`proof`: what proved the account when it was linked), or the
    /// password when `name` is `password` (removal only).
    Provider {
        name: &'a str,
        proof: &'a str,
    },
}

/// Why a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipEnd {
    /// The member left.
    Left,
    /// An owner or admin (or the internal API on their behalf) removed them.
    Removed,
    /// The organization was deleted.
    OrganizationDeleted,
    /// The user was deleted.
    UserDeleted,
}

/// What changed about a user's second factor (each mails the account's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaChange {
    /// The authenticator app was confirmed.
    Enabled,
    /// The app and the recovery codes were removed: by the user (with a code), or by an
    /// administrator for a user who lost them.
    Disabled {
        by_admin: bool,
    },
    /// A recovery code was used; `left` remain.
    RecoveryCodeUsed {
        left: i64,
    },
    RecoveryCodesRegenerated,
    /// Too many incorrect codes: the app is locked until a recovery code or an administrator.
    Locked,
}

/// A change worth recording.
#[derive(Debug, Clone)]
pub enum DomainEvent<'a> {
    UserCreated {
        user_id: UserId,
    },
    UserUpdated {
        user_id: UserId,
        email: &'a str,
        change: UserChange,
    },
    UserDeleted {
        user_id: UserId,
        email: &'a str,
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
    OrganizationDeleted {
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
    /// A member's role changed (an ownership transfer records one per member).
    MembershipUpdated {
        org_id: OrgId,
        user_id: UserId,
        role: OrgRole,
        previous: OrgRole,
        /// The audit row this change writes, if any (a transfer is audited once).
        audit: Option<AuditAction>,
    },
    MembershipDeleted {
        org_id: OrgId,
        user_id: UserId,
        role: OrgRole,
        why: MembershipEnd,
        /// The member's address, for the audit row.
        email: &'a str,
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
    /// A sign-in completed (services::signin): `method` as the audit log names it, `detail`
    /// what else the log shows (created, invitation, passkey id…).
    SignedIn {
        user_id: UserId,
        email: &'a str,
        method: &'a str,
        audience: Audience,
        session_id: SessionId,
        detail: Value,
    },
    /// A first factor that did not check out (the account, when there is one).
    SignInFailed {
        user_id: Option<UserId>,
        email: &'a str,
        method: &'a str,
        detail: Value,
    },
    /// Sessions of a user ended on request: one (`session`), all others, or every one.
    SessionsEnded {
        user_id: UserId,
        email: &'a str,
        count: usize,
        session: Option<SessionId>,
        /// A consumed refresh token was presented again: the session was revoked for it.
        reuse: bool,
    },
    CredentialAdded {
        user_id: UserId,
        email: &'a str,
        credential: Credential<'a>,
    },
    CredentialRemoved {
        user_id: UserId,
        email: &'a str,
        credential: Credential<'a>,
    },
    PasskeyRenamed {
        user_id: UserId,
        email: &'a str,
        id: Uuid,
        name: &'a str,
    },
    /// A passkey's signature counter went backwards: flagged, its sign-in refused.
    PasskeyCloneWarning {
        user_id: UserId,
        email: &'a str,
        id: Uuid,
        stored_counter: i64,
    },
    /// The account's address was proven for the first time; the sign-in methods added before
    /// that proof by whoever held the account then are named in `removed`.
    AddressProven {
        user_id: UserId,
        email: &'a str,
        how: &'a str,
        removed: &'a [String],
    },
    AdminRoleChanged {
        user_id: UserId,
        email: &'a str,
        granted: bool,
    },
    AllowlistChanged {
        entry: Option<Uuid>,
        email: &'a str,
        added: bool,
        invitation_id: Option<Uuid>,
    },
    WebhookRedelivered {
        delivery_id: Uuid,
    },
    /// Two-step verification changed (never the secret or a code: what happened).
    SecondFactor {
        user_id: UserId,
        email: &'a str,
        change: MfaChange,
    },
    /// `authara import` wrote a batch (`undone`: `authara import --undo` removed one); `detail`
    /// says which and how many.
    Imported {
        batch: &'a str,
        undone: bool,
        detail: Value,
    },
}

/// An audit row an event writes: action, target, metadata.
struct AuditFacts<'e> {
    action: AuditAction,
    target: Option<(UserId, &'e str)>,
    metadata: Value,
}

impl DomainEvent<'_> {
    /// The event type.
    pub fn kind(&self) -> EventType {
        match self {
            DomainEvent::UserCreated { .. } => EventType::UserCreated,
            DomainEvent::UserUpdated { .. } => EventType::UserUpdated,
            DomainEvent::UserDeleted { .. } => EventType::UserDeleted,
            DomainEvent::OrganizationCreated { .. } => EventType::OrganizationCreated,
            DomainEvent::OrganizationUpdated { .. } => EventType::OrganizationUpdated,
            DomainEvent::OrganizationDeleted { .. } => EventType::OrganizationDeleted,
            DomainEvent::MembershipCreated { .. } => EventType::MembershipCreated,
            DomainEvent::MembershipUpdated { .. } => EventType::MembershipUpdated,
            DomainEvent::MembershipDeleted { .. } => EventType::MembershipDeleted,
            DomainEvent::InvitationCreated { .. } => EventType::InvitationCreated,
            DomainEvent::InvitationAccepted { .. } => EventType::InvitationAccepted,
            DomainEvent::InvitationRevoked { .. } => EventType::InvitationRevoked,
            DomainEvent::CodeIssued { .. } => EventType::CodeIssued,
            DomainEvent::EmailChangeRequested { .. } => EventType::EmailChangeRequested,
            DomainEvent::SignedIn { .. } => EventType::SignedIn,
            DomainEvent::SignInFailed { .. } => EventType::SignInFailed,
            DomainEvent::SessionsEnded { .. } => EventType::SessionsEnded,
            DomainEvent::CredentialAdded { .. } => EventType::CredentialAdded,
            DomainEvent::CredentialRemoved { .. } => EventType::CredentialRemoved,
            DomainEvent::PasskeyRenamed { .. } | DomainEvent::PasskeyCloneWarning { .. } => {
                EventType::CredentialChanged
            }
            DomainEvent::AddressProven { .. } => EventType::AddressProven,
            DomainEvent::AdminRoleChanged { .. } => EventType::AdminRoleChanged,
            DomainEvent::AllowlistChanged { .. } => EventType::AllowlistChanged,
            DomainEvent::WebhookRedelivered { .. } => EventType::WebhookRedelivered,
            DomainEvent::SecondFactor { .. } => EventType::SecondFactorChanged,
            DomainEvent::Imported { undone: false, .. } => EventType::UsersImported,
            DomainEvent::Imported { undone: true, .. } => EventType::ImportUndone,
        }
    }

    fn aggregate(&self) -> (&'static str, Uuid) {
        match self {
            DomainEvent::UserCreated { user_id }
            | DomainEvent::UserUpdated { user_id, .. }
            | DomainEvent::UserDeleted { user_id, .. }
            | DomainEvent::EmailChangeRequested { user_id, .. }
            | DomainEvent::SignedIn { user_id, .. }
            | DomainEvent::SessionsEnded { user_id, .. }
            | DomainEvent::CredentialAdded { user_id, .. }
            | DomainEvent::CredentialRemoved { user_id, .. }
            | DomainEvent::PasskeyRenamed { user_id, .. }
            | DomainEvent::PasskeyCloneWarning { user_id, .. }
            | DomainEvent::AddressProven { user_id, .. }
            | DomainEvent::AdminRoleChanged { user_id, .. }
            | DomainEvent::SecondFactor { user_id, .. } => ("user", user_id.0),
            DomainEvent::SignInFailed { user_id, .. } => ("user", user_id.map_or(Uuid::nil(), |u| u.0)),
            DomainEvent::OrganizationCreated { org_id, .. }
            | DomainEvent::OrganizationUpdated { org_id, .. }
            | DomainEvent::OrganizationDeleted { org_id, .. }
            | DomainEvent::MembershipCreated { org_id, .. }
            | DomainEvent::MembershipUpdated { org_id, .. }
            | DomainEvent::MembershipDeleted { org_id, .. } => ("organization", org_id.0),
            DomainEvent::InvitationCreated { invitation, .. }
            | DomainEvent::InvitationAccepted { invitation, .. }
            | DomainEvent::InvitationRevoked { invitation, .. } => ("organization", invitation.org_id.0),
            DomainEvent::CodeIssued { challenge_id, .. } => ("challenge", *challenge_id),
            DomainEvent::AllowlistChanged { entry, .. } => ("allowlist", entry.unwrap_or_else(Uuid::nil)),
            DomainEvent::WebhookRedelivered { delivery_id } => ("webhook", *delivery_id),
            DomainEvent::Imported { .. } => ("import", Uuid::nil()),
        }
    }

    /// The `data` object (webhooks.yaml's shape for public events).
    pub fn data(&self) -> Value {
        match self {
            DomainEvent::UserCreated { user_id }
            | DomainEvent::UserUpdated { user_id, .. }
            | DomainEvent::UserDeleted { user_id, .. } => json!({ "user_id": user_id }),
            DomainEvent::OrganizationCreated { org_id, name, kind, created_by }
            | DomainEvent::OrganizationUpdated { org_id, name, kind, created_by }
            | DomainEvent::OrganizationDeleted { org_id, name, kind, created_by } => json!({
                "organization_id": org_id, "name": name, "kind": kind.as_str(), "created_by_user_id": created_by,
            }),
            DomainEvent::MembershipCreated { org_id, user_id, role, is_initial, invitation_id, metadata } => json!({
                "organization_id": org_id, "user_id": user_id, "role": role.as_str(),
                "is_initial_membership": is_initial, "invitation_id": invitation_id,
                "metadata": metadata.cloned().unwrap_or_else(|| json!({})),
            }),
            DomainEvent::MembershipUpdated { org_id, user_id, role, .. }
            | DomainEvent::MembershipDeleted { org_id, user_id, role, .. } => json!({
                "organization_id": org_id, "user_id": user_id, "role": role.as_str(),
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
            DomainEvent::CredentialAdded { user_id, credential, .. }
            | DomainEvent::CredentialRemoved { user_id, credential, .. } => {
                let mut data = credential_data(credential);
                data["user_id"] = json!(user_id);
                data
            }
            DomainEvent::AddressProven { user_id, how, removed, .. } => {
                json!({ "user_id": user_id, "how": how, "removed": removed })
            }
            // The internal events keep what their audit row shows (sanitized: no secrets).
            other => {
                let mut data = other.audit().map(|a| a.metadata).unwrap_or_else(|| json!({}));
                if let (DomainEvent::SignedIn { user_id, .. } | DomainEvent::SessionsEnded { user_id, .. }, Some(map)) =
                    (other, data.as_object_mut())
                {
                    map.insert("user_id".to_owned(), json!(user_id));
                }
                sanitize(data)
            }
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
            DomainEvent::UserUpdated { email, change: UserChange::Password { added, .. }, .. } => {
                let notice = if *added { "password_added" } else { "password_changed" };
                Some((email, templates::SECURITY_NOTICE, None, json!({ "notice": notice })))
            }
            DomainEvent::UserUpdated { email, change: UserChange::PasswordReset { .. }, .. } => {
                Some((email, templates::SECURITY_NOTICE, None, json!({ "notice": "password_reset" })))
            }
            DomainEvent::CredentialAdded { email, credential, .. } => {
                let data = match credential {
                    Credential::Passkey { name, .. } => json!({ "notice": "passkey_added", "detail": name }),
                    Credential::Provider { name, .. } => json!({ "notice": "provider_linked", "detail": name }),
                };
                Some((email, templates::SECURITY_NOTICE, None, data))
            }
            DomainEvent::CredentialRemoved { email, credential, .. } => {
                let data = match credential {
                    Credential::Passkey { name, .. } => json!({ "notice": "passkey_removed", "detail": name }),
                    Credential::Provider { name: "password", .. } => json!({ "notice": "password_removed" }),
                    Credential::Provider { name, .. } => json!({ "notice": "provider_unlinked", "detail": name }),
                };
                Some((email, templates::SECURITY_NOTICE, None, data))
            }
            DomainEvent::SecondFactor { email, change, .. } => {
                let data = match change {
                    MfaChange::Enabled => json!({ "notice": "mfa_enabled" }),
                    MfaChange::Disabled { by_admin: false } => json!({ "notice": "mfa_disabled" }),
                    MfaChange::Disabled { by_admin: true } => json!({ "notice": "mfa_reset" }),
                    MfaChange::RecoveryCodeUsed { left } => {
                        json!({ "notice": "recovery_code_used", "detail": left.to_string() })
                    }
                    MfaChange::RecoveryCodesRegenerated => json!({ "notice": "recovery_codes_regenerated" }),
                    MfaChange::Locked => json!({ "notice": "mfa_locked" }),
                };
                Some((email, templates::SECURITY_NOTICE, None, data))
            }
            DomainEvent::AddressProven { email, removed, .. } if !removed.is_empty() => {
                let data = json!({ "notice": "credentials_removed", "removed": removed });
                Some((email, templates::SECURITY_NOTICE, None, data))
            }
            _ => None,
        }
    }

    /// The audit row this event writes, if the audit log shows it.
    fn audit(&self) -> Option<AuditFacts<'_>> {
        let (action, target, metadata) = match self {
            DomainEvent::UserUpdated { user_id, email, change } => match change {
                UserChange::Username => return None,
                UserChange::Password { revoked, added } => (
                    AuditAction::PasswordChanged,
                    (*user_id, *email),
                    json!({ "revoked_sessions": revoked, "added": added }),
                ),
                UserChange::PasswordReset { revoked } => {
                    (AuditAction::PasswordReset, (*user_id, *email), json!({ "revoked_sessions": revoked }))
                }
                UserChange::Email => (AuditAction::EmailChanged, (*user_id, *email), json!({})),
                UserChange::Disabled => (AuditAction::Disabled, (*user_id, *email), json!({})),
                UserChange::Enabled => (AuditAction::Enabled, (*user_id, *email), json!({})),
            },
            DomainEvent::UserDeleted { user_id, email } => (AuditAction::Deleted, (*user_id, *email), json!({})),
            DomainEvent::SignedIn { user_id, email, method, audience, session_id, detail } => {
                let mut meta = json!({ "method": method, "audience": audience.as_str(), "session_id": session_id });
                merge(&mut meta, detail);
                (AuditAction::Login, (*user_id, *email), meta)
            }
            DomainEvent::SignInFailed { user_id, email, method, detail } => {
                let mut meta = json!({ "method": method, "email": email });
                merge(&mut meta, detail);
                let target = user_id.map(|u| (u, *email));
                return Some(AuditFacts { action: AuditAction::LoginFailed, target, metadata: meta });
            }
            DomainEvent::SessionsEnded { user_id, email, count, session, reuse } => match (reuse, session) {
                (true, Some(s)) => (AuditAction::ReuseDetected, (*user_id, *email), json!({ "session_id": s })),
                (_, Some(s)) => (AuditAction::SessionRevoked, (*user_id, *email), json!({ "session_id": s })),
                (_, None) => (AuditAction::SessionsRevoked, (*user_id, *email), json!({ "revoked_sessions": count })),
            },
            DomainEvent::CredentialAdded { user_id, email, credential } => {
                let action = match credential {
                    Credential::Passkey { .. } => AuditAction::PasskeyAdded,
                    Credential::Provider { .. } => AuditAction::ProviderLinked,
                };
                (action, (*user_id, *email), credential_data(credential))
            }
            DomainEvent::CredentialRemoved { user_id, email, credential } => {
                let (action, meta) = match credential {
                    Credential::Passkey { id, name, .. } => {
                        (AuditAction::PasskeyRemoved, json!({ "passkey_id": id, "name": name }))
                    }
                    Credential::Provider { name, .. } => (AuditAction::ProviderUnlinked, json!({ "provider": name })),
                };
                (action, (*user_id, *email), meta)
            }
            DomainEvent::PasskeyRenamed { user_id, email, id, name } => {
                (AuditAction::PasskeyRenamed, (*user_id, *email), json!({ "passkey_id": id, "name": name }))
            }
            DomainEvent::PasskeyCloneWarning { user_id, email, id, stored_counter } => (
                AuditAction::PasskeyCloneWarning,
                (*user_id, *email),
                json!({ "passkey_id": id, "stored_counter": stored_counter }),
            ),
            DomainEvent::AddressProven { user_id, email, how, removed } => {
                (AuditAction::AddressProven, (*user_id, *email), json!({ "how": how, "removed": removed }))
            }
            DomainEvent::SecondFactor { user_id, email, change } => {
                let (action, meta) = match change {
                    MfaChange::Enabled => (AuditAction::MfaEnabled, json!({ "factor": "totp" })),
                    MfaChange::Disabled { by_admin: false } => (AuditAction::MfaDisabled, json!({})),
                    MfaChange::Disabled { by_admin: true } => (AuditAction::MfaReset, json!({})),
                    MfaChange::RecoveryCodeUsed { left } => (AuditAction::RecoveryCodeUsed, json!({ "left": left })),
                    MfaChange::RecoveryCodesRegenerated => (AuditAction::RecoveryCodesRegenerated, json!({})),
                    MfaChange::Locked => (AuditAction::MfaLocked, json!({})),
                };
                (action, (*user_id, *email), meta)
            }
            DomainEvent::AdminRoleChanged { user_id, email, granted } => {
                let action = if *granted { AuditAction::AdminGranted } else { AuditAction::AdminRevoked };
                (action, (*user_id, *email), json!({}))
            }
            DomainEvent::MembershipDeleted { org_id, user_id, role, why, email } => {
                let action = match why {
                    MembershipEnd::Left => AuditAction::OrganizationLeft,
                    MembershipEnd::Removed => AuditAction::MemberRemoved,
                    MembershipEnd::OrganizationDeleted | MembershipEnd::UserDeleted => return None,
                };
                (action, (*user_id, *email), json!({ "organization_id": org_id, "role": role.as_str() }))
            }
            DomainEvent::MembershipUpdated { org_id, user_id, role, previous, audit: Some(action) } => {
                let meta =
                    json!({ "organization_id": org_id, "role": role.as_str(), "previous_role": previous.as_str() });
                return Some(AuditFacts { action: *action, target: Some((*user_id, "")), metadata: meta });
            }
            DomainEvent::OrganizationDeleted { org_id, name, .. } => {
                let meta = json!({ "organization_id": org_id, "name": name });
                return Some(AuditFacts { action: AuditAction::OrganizationDeleted, target: None, metadata: meta });
            }
            DomainEvent::AllowlistChanged { entry, email, added, invitation_id } => {
                let (action, meta) = if *added {
                    let mut meta = json!({ "email": email });
                    if let Some(i) = invitation_id {
                        meta["invitation_id"] = json!(i);
                    }
                    (AuditAction::AllowlistAdded, meta)
                } else {
                    (AuditAction::AllowlistRemoved, json!({ "allowed_email_id": entry, "email": email }))
                };
                return Some(AuditFacts { action, target: None, metadata: meta });
            }
            DomainEvent::WebhookRedelivered { delivery_id } => {
                let meta = json!({ "delivery_id": delivery_id });
                return Some(AuditFacts { action: AuditAction::WebhookRedelivered, target: None, metadata: meta });
            }
            DomainEvent::Imported { batch, undone, detail } => {
                let action = if *undone { AuditAction::ImportUndone } else { AuditAction::UsersImported };
                let mut meta = json!({ "batch": batch });
                merge(&mut meta, detail);
                return Some(AuditFacts { action, target: None, metadata: meta });
            }
            DomainEvent::UserCreated { .. }
            | DomainEvent::OrganizationCreated { .. }
            | DomainEvent::OrganizationUpdated { .. }
            | DomainEvent::MembershipCreated { .. }
            | DomainEvent::MembershipUpdated { audit: None, .. }
            | DomainEvent::InvitationCreated { .. }
            | DomainEvent::InvitationAccepted { .. }
            | DomainEvent::InvitationRevoked { .. }
            | DomainEvent::EmailChangeRequested { .. }
            | DomainEvent::CodeIssued { .. } => return None,
        };
        Some(AuditFacts { action, target: Some(target), metadata })
    }
}

/// What an event says about a credential (never key material).
fn credential_data(c: &Credential<'_>) -> Value {
    match c {
        Credential::Passkey { id, name, synced } => json!({ "passkey_id": id, "name": name, "synced": synced }),
        Credential::Provider { name, proof } => json!({ "provider": name, "proof": proof }),
    }
}

/// Adds `extra`'s keys to `meta` (both objects).
fn merge(meta: &mut Value, extra: &Value) {
    if let (Some(m), Some(e)) = (meta.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
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
    /// Records `event`, done by `actor`, in `tx` with what its consumers need, all in the same
    /// transaction: the email job it sends, if any; the webhook delivery when webhooks are on
    /// and the event is public and enabled; the audit row when the audit log shows it. Returns
    /// the event id.
    pub(crate) async fn record(&self, tx: &mut Tx, actor: &Actor, event: &DomainEvent<'_>) -> Result<Uuid, StoreError> {
        // Every failed first or second factor is recorded here, whatever the method.
        if let DomainEvent::SignInFailed { method, .. } = event {
            self.metrics.sign_in(method, "bad_credentials");
        }
        let now = self.now_ms();
        let id = crate::domain::time_ordered_uuid();
        let kind = event.kind();
        let (aggregate_type, aggregate_id) = event.aggregate();
        let data = event.data();
        let text = data.to_string();
        let seq = tx
            .insert_event(&NewEvent { id, kind: kind.as_str(), aggregate_type, aggregate_id, data: &text, now_ms: now })
            .await?;
        if let Some((to, template, challenge_id, job_data)) = event.email() {
            let job_data = job_data.to_string();
            tx.enqueue_email(&NewEmailJob { challenge_id, event_id: id, to, template, data: &job_data, now_ms: now })
                .await?;
        }
        if let Some(hooks) = &self.config.webhooks
            && kind.is_public()
            && (hooks.enabled_events.is_empty() || hooks.enabled_events.iter().any(|e| e == kind.as_str()))
        {
            let delivery = crate::domain::time_ordered_uuid();
            let payload = envelope(delivery, kind.as_str(), now, &data);
            tx.insert_delivery(&NewDelivery {
                id: delivery,
                event_id: id,
                event_seq: seq,
                event_type: kind.as_str(),
                aggregate_id,
                payload: &payload,
                now_ms: now,
            })
            .await?;
            let kick = self.webhook_kick.clone();
            tx.after_commit(move || kick.notify_one());
        }
        if let Some(audit) = event.audit() {
            let metadata = sanitize(audit.metadata).to_string();
            let ip = actor.ip.map(|ip| ip.to_string());
            tx.insert_audit(&NewAudit {
                actor_user_id: actor.user,
                actor: actor.kind,
                action: audit.action,
                target_user_id: audit.target.map(|(id, _)| id),
                target_email: audit.target.map(|(_, email)| truncate(email, 255)).filter(|e| !e.is_empty()),
                metadata: &metadata,
                ip: ip.as_deref(),
                user_agent: Some(truncate(&actor.user_agent, 512)),
                now_ms: now,
            })
            .await?;
        }
        Ok(id)
    }

    /// Records `event` in a transaction of its own (a failed sign-in: no change around it).
    /// Failures are logged, never reported.
    pub(crate) async fn record_alone(&self, actor: &Actor, event: &DomainEvent<'_>) {
        let result: Result<(), StoreError> = async {
            let mut tx = self.store.begin().await?;
            self.record(&mut tx, actor, event).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, event = %event.kind(), "event not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contract_types_are_public_and_every_audited_event_is_recorded_whole() {
        let user_id = UserId::new();
        let signed_in = DomainEvent::SignedIn {
            user_id,
            email: "a@example.com",
            method: "password",
            audience: Audience::App,
            session_id: SessionId::new(),
            detail: json!({ "created": true, "password": "never" }),
        };
        assert!(!signed_in.kind().is_public());
        let audit = signed_in.audit().unwrap();
        assert_eq!(audit.action, AuditAction::Login);
        assert_eq!(audit.metadata["created"], true);
        let data = signed_in.data();
        assert_eq!(data["user_id"], json!(user_id));
        assert!(data.get("password").is_none(), "internal event data is sanitized: {data}");
        let changed = DomainEvent::UserUpdated { user_id, email: "a@example.com", change: UserChange::Disabled };
        assert!(changed.kind().is_public());
        assert_eq!(changed.data(), json!({ "user_id": user_id }), "the webhook shape only");
        assert_eq!(changed.audit().unwrap().action, AuditAction::Disabled);
        let renamed = DomainEvent::UserUpdated { user_id, email: "a@example.com", change: UserChange::Username };
        assert!(renamed.audit().is_none());
    }
}
