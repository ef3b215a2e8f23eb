//! The closed sets of what happens: audit actions, event types, who acted, and the states of
//! the email and webhook queues. One text form each, stored and shown as such.

closed_set!(
    /// What an audit row records (`audit_events.action`).
    AuditAction, "audit action" {
        Login => "user.login",
        LoginFailed => "user.login_failed",
        PasswordChanged => "user.password_changed",
        PasswordReset => "user.password_reset",
        EmailChanged => "user.email_changed",
        SessionRevoked => "user.session_revoked",
        SessionsRevoked => "user.sessions_revoked",
        ReuseDetected => "session.reuse_detected",
        Disabled => "user.disabled",
        Enabled => "user.enabled",
        AdminGranted => "user.admin_granted",
        AdminRevoked => "user.admin_revoked",
        Deleted => "user.deleted",
        PasskeyAdded => "passkey.added",
        PasskeyRenamed => "passkey.renamed",
        PasskeyRemoved => "passkey.removed",
        PasskeyCloneWarning => "passkey.clone_warning",
        ProviderLinked => "user.provider_linked",
        ProviderUnlinked => "user.provider_unlinked",
        AddressProven => "user.email_verified",
        OrganizationLeft => "organization.left",
        MemberRemoved => "organization.member_removed",
        OwnershipTransferred => "organization.ownership_transferred",
        OrganizationDeleted => "organization.deleted",
        AllowlistAdded => "allowlist.email_added",
        AllowlistRemoved => "allowlist.email_removed",
        WebhookRedelivered => "webhook.redelivered",
        UsersImported => "users.imported",
        ImportUndone => "users.import_undone",
        MfaEnabled => "mfa.enabled",
        MfaDisabled => "mfa.disabled",
        MfaReset => "mfa.reset",
        MfaLocked => "mfa.locked",
        RecoveryCodeUsed => "mfa.recovery_code_used",
        RecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
    }
);

closed_set!(
    /// Who acted (`audit_events.actor`).
    ActorKind, "actor" {
        User => "user",
        Admin => "admin",
        Cli => "cli",
        InternalApi => "internal_api",
        Anonymous => "anonymous",
        System => "system",
    }
);

closed_set!(
    /// The type of a domain event (`events.type`). The public ones are the webhook types of
    /// `contract/webhooks.yaml`; the others stay inside (mail, audit).
    EventType, "event type" {
        UserCreated => "user.created",
        UserUpdated => "user.updated",
        UserDeleted => "user.deleted",
        OrganizationCreated => "organization.created",
        OrganizationUpdated => "organization.updated",
        OrganizationDeleted => "organization.deleted",
        MembershipCreated => "organization.membership.created",
        MembershipUpdated => "organization.membership.updated",
        MembershipDeleted => "organization.membership.deleted",
        InvitationCreated => "organization.invitation.created",
        InvitationAccepted => "organization.invitation.accepted",
        InvitationRevoked => "organization.invitation.revoked",
        SignedIn => "user.signed_in",
        SignInFailed => "user.sign_in_failed",
        SessionsEnded => "user.sessions_ended",
        CredentialAdded => "user.credential_added",
        CredentialRemoved => "user.credential_removed",
        CredentialChanged => "user.credential_changed",
        AddressProven => "user.email_verified",
        AdminRoleChanged => "user.admin_role_changed",
        AllowlistChanged => "allowlist.changed",
        WebhookRedelivered => "webhook.redelivered",
        UsersImported => "users.imported",
        ImportUndone => "users.import_undone",
        EmailChangeRequested => "user.email_change_requested",
        SecondFactorChanged => "user.second_factor_changed",
        CodeIssued => "challenge.code_issued",
    }
);

impl EventType {
    /// The types of `contract/webhooks.yaml`: the only ones webhooks ever deliver.
    pub fn is_public(self) -> bool {
        use EventType::*;
        matches!(
            self,
            UserCreated
                | UserUpdated
                | UserDeleted
                | OrganizationCreated
                | OrganizationUpdated
                | OrganizationDeleted
                | MembershipCreated
                | MembershipUpdated
                | MembershipDeleted
                | InvitationCreated
                | InvitationAccepted
                | InvitationRevoked
        )
    }
}

closed_set!(
    /// Where an email job stands (`email_jobs.status`).
    JobStatus, "email job status" { Pending => "pending", Sending => "sending", Sent => "sent", Failed => "failed" }
);

closed_set!(
    /// Where a webhook delivery stands (`webhook_deliveries.status`).
    DeliveryStatus, "delivery status" {
        Pending => "pending",
        Processing => "processing",
        Delivered => "delivered",
        Failed => "failed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_back() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Ok(*a));
        }
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Ok(*t));
        }
        assert_eq!(EventType::ALL.iter().filter(|t| t.is_public()).count(), 12);
    }
}
