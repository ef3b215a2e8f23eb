//! The one assembly: from a configuration and a clock to the store, the cache, the services, the
//! router and the workers. `serve`, the admin CLI, the integration tests and the bench all start
//! the application through [`App::open`], so there is one start-up sequence (behavior.md §0.1).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::cache::Cache;
use crate::clock::{SharedClock, ms};
use crate::config::Config;
use crate::http::state::HttpState;
use crate::services::{Services, keys};
use crate::store::Store;
use crate::store::migrate::MigrateError;

/// An opened application: its store and services, ready to serve.
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    pub services: Services,
    /// Dev key files this start generated (printed once by `serve`).
    pub generated_keys: Vec<PathBuf>,
}

impl App {
    /// Loads the signing keys, opens the store (migrating first when `migrate`), refuses a
    /// schema of another version, pins the organization mode, builds the cache and the services,
    /// and reloads the recent revocations.
    pub async fn open(config: Arc<Config>, clock: SharedClock, migrate: bool) -> anyhow::Result<App> {
        let keys = keys::load(&config).context("loading signing keys")?;
        let store = Store::connect(&config).await.context("opening the database")?;
        if migrate {
            if let Some(path) = snapshot_before_migrate(&store, &config, clock.now_ms()).await? {
                tracing::info!(snapshot = %path.display(), "snapshot taken before migrating");
            }
            match store.migrate(clock.now_ms()).await {
                Ok(applied) => {
                    for m in applied {
                        tracing::info!(version = m.version, name = m.name, "applied migration");
                    }
                }
                Err(e @ (MigrateError::DatabaseNewer { .. } | MigrateError::UnknownApplied { .. })) => bail!("{e}"),
                Err(e) => return Err(e).context("migrating"),
            }
        }
        check_schema(&store).await?;
        let mode = config.org_mode.as_str();
        let pinned = store.pin_org_mode(mode, clock.now_ms()).await.context("pinning the organization mode")?;
        if pinned != mode {
            bail!(
                "organization mode mismatch: the database was set up with AUTHARA_ORG_MODE={pinned}, \
                 the configuration says {mode}; the mode cannot change after first boot"
            );
        }
        let cache = Cache::from_config(&config.cache, &config.rate_limits, ms(config.jwt.access_ttl))?;
        let services = Services::new(config.clone(), store.clone(), cache, clock, &keys).map_err(anyhow::Error::msg)?;
        // With Redis, the subscriber catches up from the database each time it connects (and
        // the authenticator reads the database until then): loading here would be done twice.
        if services.cache().kind() == "memory" {
            let revoked = services.sessions().load_revocations().await.context("loading recent revocations")?;
            tracing::debug!(sessions = revoked, "revocation list loaded");
        }
        Ok(App { config, store, services, generated_keys: keys.generated })
    }

    /// The full router with its middleware.
    pub fn router(&self) -> axum::Router {
        crate::http::router(HttpState::new(self.services.clone()))
    }

    /// Starts the background workers: session cleanup, the email workers and their cleanup,
    /// when webhooks are configured, the webhook dispatchers, their reaper and cleanup, and with
    /// `AUTHARA_BACKUP_DIR`, the scheduled backups.
    /// why (design.md decision 3): the reference starts email workers only with challenges on,
    /// so password-reset mail was never sent otherwise. Ours always run.
    pub fn spawn_workers(&self) -> Workers {
        let s = &self.services;
        let mut senders = Vec::new();
        let mut workers = vec![tokio::spawn(crate::worker::cleanup::run(s.clone()))];
        for _ in 0..self.config.email.worker_count {
            senders.push(tokio::spawn(crate::worker::email::run(s.clone())));
        }
        workers.push(tokio::spawn(crate::worker::email::cleanup(s.clone())));
        workers.push(tokio::spawn(crate::worker::instances::run(s.clone())));
        workers.push(tokio::spawn(crate::worker::instances::feed(s.clone())));
        if let Some(hooks) = &self.config.webhooks {
            for _ in 0..hooks.worker_count {
                senders.push(tokio::spawn(crate::worker::webhooks::run(s.clone())));
            }
            workers.push(tokio::spawn(crate::worker::webhooks::reaper(s.clone(), hooks.stale_reaper_interval)));
            workers.push(tokio::spawn(crate::worker::webhooks::cleanup(s.clone(), hooks.cleanup_interval)));
        }
        workers.push(tokio::spawn(crate::worker::cleanup::audit(s.clone())));
        if let Some(dir) = &self.config.backup.dir {
            let b = &self.config.backup;
            workers.push(tokio::spawn(crate::worker::backup::run(s.clone(), dir.clone(), b.interval, b.keep)));
        }
        let warm = s.clone();
        workers.push(tokio::spawn(async move { warm.warm_up().await }));
        Workers { senders, others: workers, services: s.clone() }
    }

    /// Closes the store's pools; `within` bounds the wait for connections still in use (a
    /// request that never ended may hold one).
    pub async fn close_within(&self, within: Duration) {
        if tokio::time::timeout(within, self.store.close()).await.is_err() {
            tracing::warn!("shutdown: database connections still in use; not waiting for them");
        }
    }

    /// Closes the store's pools.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The running background workers.
pub struct Workers {
    /// The email and webhook workers: they finish what they are sending at shutdown.
    senders: Vec<tokio::task::JoinHandle<()>>,
    others: Vec<tokio::task::JoinHandle<()>>,
    services: Services,
}

impl Workers {
    /// Stops every worker: the others at once; the email and webhook workers once what they are
    /// sending is done, or when `within` runs out (then they are cut off: a job or delivery left
    /// `sending`/`processing` is taken up again after a restart).
    pub async fn stop(self, within: Duration) {
        self.services.stop_workers();
        self.others.iter().for_each(tokio::task::JoinHandle::abort);
        let aborts: Vec<_> = self.senders.iter().map(tokio::task::JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(self.senders);
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("shutdown: email or webhook workers did not finish in time; cut off");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}

/// SQLite, before migrations are applied to a database that has a schema already: a snapshot
/// beside it (`authara.db.pre-migrate-v<version>-<UTC time>`), then the oldest such snapshots
/// removed until `AUTHARA_MIGRATE_SNAPSHOTS_KEEP` remain. `None` when nothing is pending, the
/// database is new, the engine is PostgreSQL (back it up with `authara backup` or pg_dump), or
/// the setting is 0.
pub async fn snapshot_before_migrate(store: &Store, config: &Config, now_ms: i64) -> anyhow::Result<Option<PathBuf>> {
    let crate::config::DatabaseConfig::Sqlite { path } = &config.database else { return Ok(None) };
    let keep = config.backup.migrate_snapshots_keep as usize;
    if keep == 0 {
        return Ok(None);
    }
    let status = store.migration_status().await.context("reading the schema version")?;
    if status.current == 0 || status.pending().next().is_none() {
        return Ok(None);
    }
    let name = path.file_name().map_or_else(|| "authara.db".to_owned(), |n| n.to_string_lossy().into_owned());
    let prefix = format!("{name}.pre-migrate-");
    let snapshot =
        path.with_file_name(format!("{prefix}v{}-{}", status.current, crate::services::backup::stamp(now_ms)));
    crate::services::backup::private_empty_file(&snapshot).context("creating the pre-migration snapshot")?;
    store.sqlite_snapshot(&snapshot).await.context("taking the pre-migration snapshot")?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    // Names sort by time only within one version: order by modification time instead.
    let mut taken: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .context("listing pre-migration snapshots")?
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name().to_str()?.starts_with(&prefix).then_some(())?;
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    taken.sort();
    let excess = taken.len().saturating_sub(keep);
    for (_, old) in taken.into_iter().take(excess) {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(Some(snapshot))
}

async fn check_schema(store: &Store) -> anyhow::Result<()> {
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), store.migration_status())
        .await
        .context("the database did not answer within 5s")?
        .context("reading the schema version")?;
    if status.current > status.required {
        bail!(
            "schema version mismatch: the database is at version {}, newer than this binary needs ({}); \
             run a newer authara",
            status.current,
            status.required
        );
    }
    let unknown = status.unknown();
    if !unknown.is_empty() {
        bail!(
            "schema version mismatch: the database holds migration(s) {} that this binary (version {}) does not know; \
             it was migrated by a newer authara: run that version",
            unknown.join(", "),
            status.required
        );
    }
    // why: versions may have gaps (a reserved number lands later), so the highest version
    // alone does not prove that every migration ran: every one must be recorded.
    let missing: Vec<String> = status.pending().map(|m| format!("{} {}", m.version, m.name)).collect();
    if !missing.is_empty() {
        bail!(
            "schema version mismatch: the database is at version {}, this binary needs version {} \
             (missing: {}); run `authara migrate` (or start with `authara serve --migrate`)",
            status.current,
            status.required,
            missing.join(", ")
        );
    }
    Ok(())
}
