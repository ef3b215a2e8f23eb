//! The admin console's reads and actions (behavior.md §10). Every action takes an [`AdminActor`],
//! which only [`Admin::authorize`] (a principal holding the `admin` role) and [`Admin::cli`]
//! (the server's shell) make: authorization is visible in the signature. Each action writes its
//! audit event, and the domain event where the contract has one, in the action's transaction.

use uuid::Uuid;

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, Privilege, ReauthError};
use super::events::{DomainEvent, MfaChange, UserChange};
use super::sessions::Sessions;
use crate::domain::{ActorKind, ClientInfo, EmailAddress, PlatformRole, SessionId, UserId};
use crate::store::accounts::UserRow;
pub use crate::store::admin::{AllowedEmail, FailedEmail, RiskyChallenge, SessionRow, Stats};
pub use crate::store::audit::{AuditFilter, AuditRow};
pub use crate::store::webhooks::DeliveryRow;
use crate::store::{StoreError, Tx};

/// Proof that the caller may administer: built only by [`Admin::authorize`] and [`Admin::cli`].
#[derive(Debug, Clone)]
pub struct AdminActor {
    actor: Actor,
    /// The administrator's session (none for the shell).
    principal: Option<Principal>,
}

impl AdminActor {
    pub fn user_id(&self) -> Option<UserId> {
        self.actor.user
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin role is required")]
    NotAdmin,
    #[error("user not found")]
    UnknownUser,
    #[error("session not found")]
    UnknownSession,
    #[error("administrators cannot do this to their own account")]
    OnSelf,
    #[error("the last active administrator cannot be disabled or demoted")]
    LastAdmin,
    #[error("already on the allowlist")]
    AlreadyAllowed,
    #[error("allowlist entry not found")]
    UnknownEntry,
    #[error("administrators cannot remove their own email from the allowlist")]
    OwnEmail,
    /// Changing roles, disabling and ending sessions need a recent sign-in (or the password).
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub stats: Stats,
    pub latest_failures: Vec<FailedEmail>,
    /// Webhook deliveries that failed for good.
    pub failed_webhooks: i64,
}

/// One user, as the detail page shows them.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: UserRow,
    pub roles: Vec<PlatformRole>,
    pub has_password: bool,
    /// Passkeys (names, dates and flags; never key material).
    pub passkeys: Vec<crate::store::passkeys::PasskeyRow>,
    pub sessions: Vec<SessionRow>,
    pub recent: Vec<AuditRow>,
}

pub const PAGE_SIZE: i64 = 25;
/// Rows per audit log page.
pub const AUDIT_PAGE_SIZE: i64 = 50;
/// The last page number a list serves (deeper pages are this one: no overflow, no huge OFFSET).
pub const MAX_PAGE: i64 = 10_000;
/// Search terms are cut to this many characters (the longest email address).
const MAX_NEEDLE: usize = 254;

/// The page number as served: 1 to [`MAX_PAGE`].
pub fn page_number(page: Option<i64>) -> i64 {
    page.unwrap_or(1).clamp(1, MAX_PAGE)
}

fn offset(page: i64, size: i64) -> i64 {
    (page_number(Some(page)) - 1) * size
}

/// A search term, trimmed and bounded.
fn needle(q: &str) -> &str {
    let q = q.trim();
    q.char_indices().nth(MAX_NEEDLE).map_or(q, |(i, _)| &q[..i])
}

/// The admin area.
#[derive(Clone)]
pub struct Admin {
    core: Core,
    sessions: Sessions,
}

impl Admin {
    pub(crate) fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
    }

    /// An administrator in the console: the principal must hold the `admin` role (auditors and
    /// monitors may hold the admin audience but act on nothing here).
    pub fn authorize(&self, who: &Principal, client: &ClientInfo) -> Result<AdminActor, AdminError> {
        if !who.has_role(PlatformRole::Admin) {
            return Err(AdminError::NotAdmin);
        }
        let actor = Actor {
            user: Some(who.user_id()),
            kind: ActorKind::Admin,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
        };
        Ok(AdminActor { actor, principal: Some(who.clone()) })
    }

    /// The server's shell (`authara admin …`).
    pub fn cli(&self) -> AdminActor {
        AdminActor { actor: Actor::cli(), principal: None }
    }

    /// Whether the administrator's session is privileged now (a recent sign-in): the console
    /// asks for the password with sensitive actions only when it is not.
    pub async fn privileged_now(&self, who: &AdminActor) -> Result<Privilege, StoreError> {
        match &who.principal {
            Some(p) => self.core.privilege(p).await,
            None => Ok(Privilege::Now),
        }
    }

    /// The privileged-session rule for the console's sensitive actions (roles, disabling,
    /// sessions): a sign-in within `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`, or the administrator's
    /// current password. A stolen admin session older than that cannot lock others out or take
    /// the console over. The shell is trusted.
    async fn privileged(&self, who: &AdminActor, current_password: Option<&str>) -> Result<(), AdminError> {
        match &who.principal {
            Some(p) => Ok(self.core.require_privileged(p, current_password).await?),
            None => Ok(()),
        }
    }

    pub async fn dashboard(&self, _: &AdminActor) -> Result<Dashboard, StoreError> {
        let now = self.core.now_ms();
        let stats = self.core.store.stats(now - 86_400_000, now).await?;
        let latest_failures = self.core.store.failed_emails(5, 0).await?;
        let failed_webhooks =
            self.core.store.delivery_counts().await?.get(&crate::domain::DeliveryStatus::Failed).copied().unwrap_or(0);
        Ok(Dashboard { stats, latest_failures, failed_webhooks })
    }

    /// The user with exactly this address (the CLI's `--email`).
    pub async fn user_by_email(&self, _: &AdminActor, email: &EmailAddress) -> Result<Option<UserRow>, StoreError> {
        self.core.store.user_by_email(email).await
    }

    /// Users by exact email first, else by email or username prefix (by email); newest users when
    /// empty.
    pub async fn search(&self, _: &AdminActor, q: &str, page: i64) -> Result<Vec<UserRow>, StoreError> {
        let q = needle(q).to_lowercase();
        let offset = offset(page, PAGE_SIZE);
        if q.is_empty() {
            return self.core.store.newest_users(PAGE_SIZE, offset).await;
        }
        if let Ok(email) = EmailAddress::parse(&q)
            && let Some(u) = self.core.store.user_by_email(&email).await?
        {
            return Ok(vec![u]);
        }
        self.core.store.search_users(&q, PAGE_SIZE, offset).await
    }

    pub async fn user(&self, _: &AdminActor, id: UserId) -> Result<UserDetail, AdminError> {
        let store = &self.core.store;
        let user = store.user_by_id(id).await?.ok_or(AdminError::UnknownUser)?;
        let filter = AuditFilter { target: Some(id), ..AuditFilter::default() };
        Ok(UserDetail {
            roles: store.user_roles(id).await?,
            has_password: store.password_hash(id).await?.is_some(),
            passkeys: store.passkeys_of(id).await?,
            sessions: store.user_sessions(id).await?,
            recent: store.audit_page(&filter, 20, 0).await?,
            user,
        })
    }

    pub async fn failures(&self, _: &AdminActor, page: i64) -> Result<Vec<FailedEmail>, StoreError> {
        self.core.store.failed_emails(PAGE_SIZE, offset(page, PAGE_SIZE)).await
    }

    /// Challenges that expired unused or ran out of attempts or resends (decoys always show).
    pub async fn risky_challenges(&self, _: &AdminActor, page: i64) -> Result<Vec<RiskyChallenge>, StoreError> {
        self.core.store.risky_challenges(self.core.now_ms(), PAGE_SIZE, offset(page, PAGE_SIZE)).await
    }

    /// The newest webhook deliveries.
    pub async fn deliveries(&self, _: &AdminActor) -> Result<Vec<DeliveryRow>, StoreError> {
        self.core.store.recent_deliveries(100).await
    }

    /// Queues a delivered or failed webhook delivery again (same delivery id), audited.
    pub async fn redeliver(&self, who: &AdminActor, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.core.store.begin().await?;
        let done = tx.redeliver(id, self.core.now_ms()).await?;
        if done {
            self.core.record(&mut tx, &who.actor, &DomainEvent::WebhookRedelivered { delivery_id: id }).await?;
        }
        tx.commit().await?;
        if done {
            self.core.webhook_kick.notify_one();
        }
        Ok(done)
    }

    /// A user's own recent security events (their account page).
    pub async fn own_events(&self, who: &Principal) -> Result<Vec<AuditRow>, StoreError> {
        let filter = AuditFilter { target: Some(who.user_id()), ..AuditFilter::default() };
        self.core.store.audit_page(&filter, 10, 0).await
    }

    pub async fn audit(&self, _: &AdminActor, filter: &AuditFilter, page: i64) -> Result<Vec<AuditRow>, StoreError> {
        let filter = filter.clone();
        self.core.store.audit_page(&filter, AUDIT_PAGE_SIZE, offset(page, AUDIT_PAGE_SIZE)).await
    }

    /// The page after the row at `before` (`created_at_ms`, `seq`): the console's "Older" link.
    pub async fn audit_before(
        &self,
        _: &AdminActor,
        filter: &AuditFilter,
        before: (i64, i64),
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.core.store.audit_page_before(filter, before, AUDIT_PAGE_SIZE).await
    }

    pub async fn allowlist(&self, _: &AdminActor, q: &str, page: i64) -> Result<Vec<AllowedEmail>, StoreError> {
        self.core.store.allowlist(needle(q), PAGE_SIZE, offset(page, PAGE_SIZE)).await
    }

    /// Disables or re-enables a user, recording `user.updated`. Disabling ends every session
    /// at once; nobody disables themselves or the last active administrator.
    pub async fn set_disabled(
        &self,
        who: &AdminActor,
        target: UserId,
        disabled: bool,
        current_password: Option<&str>,
    ) -> Result<(), AdminError> {
        if who.actor.user == Some(target) {
            return Err(AdminError::OnSelf);
        }
        self.privileged(who, current_password).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(target).await?.ok_or(AdminError::UnknownUser)?;
        if disabled {
            if self.core.is_last_admin(&mut tx, &user).await? {
                return Err(AdminError::LastAdmin);
            }
            tx.set_user_disabled(target, Some(now), now).await?;
            self.sessions.end_all(&mut tx, target, None).await?;
        } else {
            tx.set_user_disabled(target, None, now).await?;
        }
        let change = if disabled { UserChange::Disabled } else { UserChange::Enabled };
        self.core
            .record(&mut tx, &who.actor, &DomainEvent::UserUpdated { user_id: target, email: &user.email, change })
            .await?;
        tx.commit().await?;
        self.core.forget_user(target);
        Ok(())
    }

    /// Grants or revokes the `admin` role. Revoking ends the user's sessions; nobody demotes
    /// themselves or the last active administrator.
    pub async fn set_admin(
        &self,
        who: &AdminActor,
        target: UserId,
        grant: bool,
        current_password: Option<&str>,
    ) -> Result<(), AdminError> {
        if !grant && who.actor.user == Some(target) {
            return Err(AdminError::OnSelf);
        }
        self.privileged(who, current_password).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(target).await?.ok_or(AdminError::UnknownUser)?;
        if grant {
            tx.grant_role(target, PlatformRole::Admin, now).await?;
        } else {
            if self.core.is_last_admin(&mut tx, &user).await? {
                return Err(AdminError::LastAdmin);
            }
            if tx.revoke_role(target, PlatformRole::Admin).await? {
                self.sessions.end_all(&mut tx, target, None).await?;
            }
        }
        let event = DomainEvent::AdminRoleChanged { user_id: target, email: &user.email, granted: grant };
        self.core.record(&mut tx, &who.actor, &event).await?;
        tx.commit().await?;
        self.core.forget_user(target);
        Ok(())
    }

    /// Revokes one session of `target`; its access tokens stop at once.
    pub async fn revoke_session(
        &self,
        who: &AdminActor,
        target: UserId,
        session: SessionId,
        current_password: Option<&str>,
    ) -> Result<(), AdminError> {
        self.privileged(who, current_password).await?;
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(target).await?.ok_or(AdminError::UnknownUser)?;
        if tx.session_owner(session).await? != Some(target) {
            return Err(AdminError::UnknownSession);
        }
        self.sessions.end(&mut tx, vec![session]).await?;
        let event = DomainEvent::SessionsEnded {
            user_id: target,
            email: &user.email,
            count: 1,
            session: Some(session),
            reuse: false,
        };
        self.core.record(&mut tx, &who.actor, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the authenticator app and the recovery codes of `target`, for a user who lost
    /// them (privileged, audited; the user is mailed). `false` when they had none.
    pub async fn reset_second_factor(
        &self,
        who: &AdminActor,
        target: UserId,
        current_password: Option<&str>,
    ) -> Result<bool, AdminError> {
        self.privileged(who, current_password).await?;
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(target).await?.ok_or(AdminError::UnknownUser)?;
        if !tx.delete_mfa(target).await? {
            return Ok(false);
        }
        let change = MfaChange::Disabled { by_admin: true };
        self.core
            .record(&mut tx, &who.actor, &DomainEvent::SecondFactor { user_id: target, email: &user.email, change })
            .await?;
        tx.commit().await?;
        self.core.forget_user(target);
        Ok(true)
    }

    /// Ends every session of `target` (not one's own account). Returns how many.
    pub async fn revoke_all(
        &self,
        who: &AdminActor,
        target: UserId,
        current_password: Option<&str>,
    ) -> Result<usize, AdminError> {
        if who.actor.user == Some(target) {
            return Err(AdminError::OnSelf);
        }
        self.privileged(who, current_password).await?;
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(target).await?.ok_or(AdminError::UnknownUser)?;
        let count = self.sessions.end_all(&mut tx, target, None).await?.len();
        let event =
            DomainEvent::SessionsEnded { user_id: target, email: &user.email, count, session: None, reuse: false };
        self.core.record(&mut tx, &who.actor, &event).await?;
        tx.commit().await?;
        Ok(count)
    }

    /// Adds an email to the sign-up allowlist.
    pub async fn allow(&self, who: &AdminActor, email: &EmailAddress) -> Result<(), AdminError> {
        let mut tx = self.core.store.begin().await?;
        if !tx.allow_email(email.as_str(), who.actor.user, self.core.now_ms()).await? {
            return Err(AdminError::AlreadyAllowed);
        }
        let event =
            DomainEvent::AllowlistChanged { entry: None, email: email.as_str(), added: true, invitation_id: None };
        self.core.record(&mut tx, &who.actor, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an allowlist entry (not the administrator's own email).
    pub async fn disallow(&self, who: &AdminActor, id: Uuid) -> Result<(), AdminError> {
        let own = match who.actor.user {
            Some(u) => self.core.store.user_by_id(u).await?.map(|u| u.email),
            None => None,
        };
        let mut tx = self.core.store.begin().await?;
        let email = tx.disallow_email(id).await?.ok_or(AdminError::UnknownEntry)?;
        if own.as_deref() == Some(email.as_str()) {
            return Err(AdminError::OwnEmail);
        }
        let event = DomainEvent::AllowlistChanged { entry: Some(id), email: &email, added: false, invitation_id: None };
        self.core.record(&mut tx, &who.actor, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes audit events past `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`.
    pub async fn cleanup_audit(&self) -> Result<u64, StoreError> {
        let days = i64::from(self.core.config.admin_audit_retention_days);
        self.core.store.cleanup_audit(self.core.now_ms() - days * 86_400_000).await
    }
}

impl Core {
    /// Whether `user` is the last active administrator, asked under the admin-role lock: the
    /// one place the last-admin rule is read, so that two changes at once (two administrators
    /// demoting each other, or deleting their accounts) cannot both see the other and leave
    /// none. Holds the lock until `tx` ends.
    pub(crate) async fn is_last_admin(&self, tx: &mut Tx, user: &UserRow) -> Result<bool, StoreError> {
        tx.lock_admin_role().await?;
        let roles = tx.user_roles(user.id).await?;
        Ok(roles.contains(&PlatformRole::Admin)
            && user.disabled_at_ms.is_none()
            && tx.other_active_admins(user.id).await? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_clamped_and_search_terms_bounded() {
        assert_eq!((page_number(None), page_number(Some(0)), page_number(Some(-5))), (1, 1, 1));
        assert_eq!(page_number(Some(i64::MAX)), MAX_PAGE);
        assert_eq!(offset(3, 50), 100);
        assert_eq!(offset(i64::MAX, 50), (MAX_PAGE - 1) * 50, "no overflow");
        assert_eq!(needle("  ada@example.com "), "ada@example.com");
        let long = "é".repeat(MAX_NEEDLE + 10);
        assert_eq!(needle(&long).chars().count(), MAX_NEEDLE, "cut on a character boundary");
    }
}
