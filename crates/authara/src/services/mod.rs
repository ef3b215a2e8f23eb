//! Use cases: plain Rust types in and out, all policy here, no HTTP types.
//!
//! One service per area (`auth`, `accounts`, `sessions`, `signin`, `challenges`, `profile`,
//! `mfa`, `mail`, `organizations`, `invitations`, `admin`, `webhooks`, `oauth`, `passkeys`), each built on the same small `Core` of
//! shared dependencies and each with its own error enum. Fields are private: callers go through
//! the area's methods, and [`Services`] hands out the areas.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod challenges;
pub mod device;
pub mod emails;
pub mod events;
pub mod import;
pub mod invitations;
pub mod keys;
pub mod mail;
pub mod mailer;
pub mod mfa;
pub mod oauth;
pub mod organizations;
pub mod passkeys;
pub mod password;
pub mod profile;
pub mod return_to;
pub mod secrets;
pub mod sessions;
pub mod signin;
pub mod token;
pub mod webhooks;

use std::sync::Arc;

/// What services return and fail with, re-exported so that callers (HTTP, workers, the CLI)
/// never name the store.
pub use crate::store::StoreError;
pub use crate::store::accounts::UserRow;
pub use crate::store::sessions::SessionInfo;

use crate::cache::{Announcement, Cache, Decision, LimitKey, Scope};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::Store;

/// The dependencies every area shares, built once at start.
#[derive(Clone)]
pub(crate) struct Core {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) cache: Arc<Cache>,
    pub(crate) hasher: password::PasswordHasher,
    pub(crate) tokens: Arc<token::TokenService>,
    pub(crate) secrets: Arc<secrets::Secrets>,
    /// What is known about users between requests (states for access checks, profiles).
    pub(crate) users: Arc<profile::UserViews>,
    /// Woken after a commit that queued webhook deliveries (this instance's dispatchers).
    pub(crate) webhook_kick: Arc<tokio::sync::Notify>,
    /// Counters of what happens (served by `AUTHARA_METRICS_BIND`).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Set once at shutdown: the email and webhook workers finish what they are sending and
    /// claim nothing more.
    pub(crate) stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Core {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The access policy (behavior.md §5.5): with the allowlist on, only listed emails may sign
    /// up or start sessions.
    pub(crate) async fn allowed(&self, email: &crate::domain::EmailAddress) -> Result<bool, StoreError> {
        if !self.config.allowlist_enabled {
            return Ok(true);
        }
        self.store.is_allowed(email.as_str()).await
    }

    /// [`Core::allowed`] inside a transaction (what the change commits with).
    pub(crate) async fn allowed_in(&self, tx: &mut crate::store::Tx, email: &str) -> Result<bool, StoreError> {
        Ok(!self.config.allowlist_enabled || tx.is_allowed(email).await?)
    }

    /// Forgets what is cached about a user (after any change to them).
    pub(crate) fn forget_user(&self, user: crate::domain::UserId) {
        self.users.forget(user);
        self.cache.announce_user_changed(user);
    }

    /// Counts an attempt; `Err(seconds to wait)` when it is over the limit.
    pub(crate) async fn limit(&self, scope: Scope, key: &LimitKey) -> Result<(), u64> {
        match self.cache.check_limit(scope, key, self.now_ms()).await {
            Decision::Allowed => Ok(()),
            Decision::Blocked { retry_after_secs } => Err(retry_after_secs),
        }
    }
}

/// Why an internal API call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalRefusal {
    /// No token configured, none given, or the wrong one.
    Unauthorized,
    /// Too many wrong tokens from this IP.
    RateLimited { retry_after_secs: u64 },
}

/// Every area service, built once at start and cloned cheaply.
#[derive(Clone)]
pub struct Services {
    core: Core,
    auth: auth::Authenticator,
    accounts: accounts::Accounts,
    sessions: sessions::Sessions,
    challenges: challenges::Challenges,
    profiles: profile::Profiles,
    mail: mail::Mail,
    webhooks: webhooks::Webhooks,
    admin: admin::Admin,
    organizations: organizations::Organizations,
    invitations: invitations::Invitations,
    oauth: oauth::OAuth,
    passkeys: passkeys::Passkeys,
    signins: signin::SignIns,
    mfa: mfa::Mfa,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("engine", &self.core.store.engine()).finish_non_exhaustive()
    }
}

impl Services {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        cache: Arc<Cache>,
        clock: SharedClock,
        keys: &keys::SigningKeys,
    ) -> Result<Self, String> {
        let tokens = token::TokenService::new(keys, config.jwt.algorithm, &config.jwt.issuer, config.jwt.access_ttl)?;
        let mailer = mailer::Mailer::new(&config.email.provider, !config.is_prod())?;
        let metrics = Arc::new(crate::metrics::Metrics::new(config.http.metrics_bind.is_some()));
        let core = Core {
            hasher: password::PasswordHasher::new(config.password_hash, config.password_hash_queue)
                .with_metrics(metrics.clone()),
            metrics,
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            tokens: Arc::new(tokens),
            secrets: Arc::new(secrets::Secrets::derive(keys)?),
            users: Arc::new(profile::UserViews::default()),
            webhook_kick: Arc::default(),
            config,
            store,
            clock,
            cache,
        };
        let auth = auth::Authenticator::new(core.clone());
        let sessions = sessions::Sessions::new(core.clone());
        let factors = mfa::Factors::new(core.clone());
        let signins = signin::SignIns::new(core.clone(), sessions.clone(), factors.clone());
        let mfa = mfa::Mfa::new(core.clone(), factors, sessions.clone());
        let organizations = organizations::Organizations::new(core.clone(), sessions.clone());
        let invitations = invitations::Invitations::new(core.clone(), organizations.clone());
        let accounts = accounts::Accounts::new(core.clone(), sessions.clone(), signins.clone(), invitations.clone());
        let challenges =
            challenges::Challenges::new(core.clone(), accounts.clone(), signins.clone(), invitations.clone());
        let profiles = profile::Profiles::new(core.clone(), sessions.clone(), organizations.clone());
        let mail = mail::Mail::new(core.clone(), mailer);
        let webhooks = webhooks::Webhooks::new(core.clone())?;
        let admin = admin::Admin::new(core.clone(), sessions.clone());
        let oauth = oauth::OAuth::new(core.clone(), accounts.clone(), signins.clone(), invitations.clone())?;
        let passkeys = passkeys::Passkeys::new(core.clone(), signins.clone());
        Ok(Self {
            core,
            auth,
            accounts,
            sessions,
            challenges,
            profiles,
            mail,
            webhooks,
            admin,
            organizations,
            invitations,
            oauth,
            passkeys,
            signins,
            mfa,
        })
    }

    /// Tells the email and webhook workers to stop after what they are sending (shutdown).
    pub fn stop_workers(&self) {
        self.core.stopping.send_replace(true);
    }

    /// Watches for [`Services::stop_workers`].
    pub fn stop_requested(&self) -> tokio::sync::watch::Receiver<bool> {
        self.core.stopping.subscribe()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.core.metrics
    }

    /// Reads what the metrics show at scrape time (queues, pool, cache) and encodes them.
    pub async fn scrape_metrics(&self) -> String {
        let core = &self.core;
        let mut snap = crate::metrics::Snapshot {
            hash_queue_depth: core.hasher.waiting(),
            cache_up: Some(core.cache.health().await.up),
            ..Default::default()
        };
        (snap.db_in_use, snap.db_idle) = core.store.pool_connections();
        match self.mail.counts().await {
            // Every state, 0 included: a series that appears only once it is non-zero breaks rates.
            Ok(counts) => {
                let of = |s| counts.get(s).copied().unwrap_or(0);
                snap.outbox_jobs = crate::domain::JobStatus::ALL.iter().map(|s| (s.as_str(), of(s))).collect();
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the email outbox"),
        }
        if core.config.webhooks.is_some() {
            match self.webhooks.counts().await {
                Ok(counts) => {
                    let of = |s| counts.get(s).copied().unwrap_or(0);
                    snap.webhook_queue =
                        crate::domain::DeliveryStatus::ALL.iter().map(|s| (s.as_str(), of(s))).collect();
                }
                Err(e) => tracing::warn!(error = %e, "metrics: reading the webhook queue"),
            }
        }
        core.metrics.set_snapshot(&snap);
        core.metrics.encode()
    }

    pub fn auth(&self) -> &auth::Authenticator {
        &self.auth
    }

    pub fn accounts(&self) -> &accounts::Accounts {
        &self.accounts
    }

    pub fn sessions(&self) -> &sessions::Sessions {
        &self.sessions
    }

    pub fn challenges(&self) -> &challenges::Challenges {
        &self.challenges
    }

    pub fn profiles(&self) -> &profile::Profiles {
        &self.profiles
    }

    pub fn mail(&self) -> &mail::Mail {
        &self.mail
    }

    pub fn admin(&self) -> &admin::Admin {
        &self.admin
    }

    pub fn webhooks(&self) -> &webhooks::Webhooks {
        &self.webhooks
    }

    pub fn organizations(&self) -> &organizations::Organizations {
        &self.organizations
    }

    pub fn invitations(&self) -> &invitations::Invitations {
        &self.invitations
    }

    pub fn oauth(&self) -> &oauth::OAuth {
        &self.oauth
    }

    /// Database snapshots (`authara backup`, scheduled backups).
    pub fn backups(&self) -> backup::Backups {
        backup::Backups::new(self.core.clone())
    }

    /// `authara import`: users brought from another system.
    pub fn importer(&self) -> import::Importer {
        import::Importer::new(self.core.clone())
    }

    /// The second step of a sign-in (`services::signin`).
    pub fn signins(&self) -> &signin::SignIns {
        &self.signins
    }

    /// A user's own two-step verification, step-up, the administrator's reset.
    pub fn mfa(&self) -> &mfa::Mfa {
        &self.mfa
    }

    pub fn passkeys(&self) -> &passkeys::Passkeys {
        &self.passkeys
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.core.config
    }

    pub fn now_ms(&self) -> i64 {
        self.core.now_ms()
    }

    /// Seals a short text for a browser to carry back (the pages' flash messages): only this
    /// server (or one sharing its keys) can make or read one, so no other site, nor a sibling
    /// subdomain that can set cookies, can put its words on our pages.
    pub fn seal_message(&self, text: &str) -> String {
        self.core.secrets.seal(text.as_bytes(), b"flash-message")
    }

    /// Opens a text sealed by [`Self::seal_message`]; `None` for anything else.
    pub fn open_message(&self, sealed: &str) -> Option<String> {
        let bytes = self.core.secrets.open(sealed, b"flash-message").ok()?;
        String::from_utf8(bytes).ok()
    }

    /// The token service (JWKS, signing-key health).
    pub fn tokens(&self) -> &token::TokenService {
        &self.core.tokens
    }

    /// The cache provider (health).
    pub fn cache(&self) -> &Cache {
        &self.core.cache
    }

    /// With the Redis provider, applies what other instances announce (revoked sessions, changed
    /// users and organizations) until the connection drops. Catches up from the database first:
    /// a revocation committed before the subscription is there, one committed after is announced.
    /// Returns at once with the memory provider; the caller loops with a pause.
    pub async fn follow_other_instances(&self) -> bool {
        let cache = &self.core.cache;
        let mut sub = match cache.subscribe().await {
            None => return false,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "Redis subscriber not connected");
                return true;
            }
            Some(Ok(sub)) => sub,
        };
        if let Err(e) = self.sessions.load_revocations().await {
            tracing::warn!(error = %e, "catching up revocations from the database failed; retrying");
            return true;
        }
        cache.set_listening(true);
        while let Some(a) = sub.next().await {
            match a {
                Announcement::Revoked(sid) => cache.remember_revoked(sid, self.core.now_ms()),
                Announcement::User(user) => self.core.users.forget(user),
                Announcement::Org(org) => self.core.users.forget_org(org),
            }
        }
        cache.set_listening(false);
        true
    }

    /// One read of the revocation feed (Redis provider): the sessions revoked since `cursor`
    /// (the first read: within one access-token lifetime) join this process's revocation list,
    /// whether or not their announcement reached it. Moves `cursor` to this read's start, less
    /// [`crate::cache::REVOCATION_FEED_OVERLAP_MS`] (a revocation may commit after the clock
    /// reading it carries, on an instance whose clock differs). Returns how many were read.
    pub async fn read_revocation_feed(&self, cursor: &mut Option<i64>) -> Result<usize, StoreError> {
        let cache = &self.core.cache;
        let started = self.core.now_ms();
        let since = cursor.unwrap_or_else(|| started.saturating_sub(cache.revocation_ttl_ms()));
        let ids = self.core.store.sessions_revoked_since(since).await?;
        let now = self.core.now_ms();
        for sid in &ids {
            if !cache.is_session_revoked(*sid, now) {
                cache.remember_revoked(*sid, now);
            }
        }
        cache.revocation_feed_read(started);
        *cursor = Some(started.saturating_sub(crate::cache::REVOCATION_FEED_OVERLAP_MS));
        Ok(ids.len())
    }

    /// The internal API's caller check: `given` (the bearer token, trimmed) must equal
    /// `AUTHARA_INTERNAL_API_TOKEN` (constant time). Wrong tokens are counted per IP; an IP over
    /// [`crate::cache::INTERNAL_AUTH_FAILURES_PER_IP`] is refused before its token is even
    /// compared, the right one included, until its window ends (so guessing teaches nothing
    /// once limited).
    pub async fn check_internal_token(
        &self,
        given: Option<&str>,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), InternalRefusal> {
        let Some(expected) = self.core.config.internal_api_token.as_ref().filter(|t| !t.is_empty()) else {
            return Err(InternalRefusal::Unauthorized);
        };
        let key = LimitKey { ip, target: None };
        let cache = &self.core.cache;
        if let Decision::Blocked { retry_after_secs } =
            cache.peek_limit(Scope::InternalAuthFailure, &key, self.core.now_ms()).await
        {
            return Err(InternalRefusal::RateLimited { retry_after_secs });
        }
        if given.is_some_and(|g| expected.ct_eq(g)) {
            return Ok(());
        }
        match cache.check_limit(Scope::InternalAuthFailure, &key, self.core.now_ms()).await {
            Decision::Allowed => Err(InternalRefusal::Unauthorized),
            Decision::Blocked { retry_after_secs } => Err(InternalRefusal::RateLimited { retry_after_secs }),
        }
    }

    /// A real round trip to the database, with its latency (health).
    pub async fn ping_store(
        &self,
        timeout: std::time::Duration,
    ) -> (&'static str, Result<std::time::Duration, crate::store::StoreError>) {
        (self.core.store.engine().as_str(), self.core.store.ping(timeout).await)
    }

    /// Whether this instance can take traffic (`/auth/health/ready`): the database answers,
    /// its schema is the one this binary needs, and signing keys are loaded. `Err` names the
    /// first failing check. The cache is not consulted: a degraded cache is still ready.
    pub async fn readiness(&self, timeout: std::time::Duration) -> Result<(), &'static str> {
        if let Err(e) = self.core.store.ping(timeout).await {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return Err("database");
        }
        match tokio::time::timeout(timeout, self.core.store.migration_status()).await {
            Ok(Ok(status)) if status.pending().next().is_none() && status.unknown().is_empty() => {}
            Ok(Ok(status)) => {
                tracing::warn!(current = status.current, required = status.required, "readiness: schema not current");
                return Err("migrations");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: reading the schema version failed");
                return Err("database");
            }
            Err(_) => return Err("database"),
        }
        if self.tokens().key_count() == 0 {
            return Err("signing_keys");
        }
        Ok(())
    }

    /// Password verifications run so far, real and dummy (the unknown-email cost is provable).
    pub fn password_verifications(&self) -> u64 {
        self.core.hasher.verifications()
    }

    /// Computes the dummy hash now (at start-up, in the background).
    pub async fn warm_up(&self) {
        self.core.hasher.warm_up().await;
    }
}
