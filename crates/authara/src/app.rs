//! The one assembly: from a configuration and a clock to the store, the cache, the services, the
//! router and the workers. `serve`, the admin CLI, the integration tests and the bench all start
//! the application through [`App::open`], so there is one start-up sequence (behavior.md §0.1).

use std::path::PathBuf;
use std::sync::Arc;

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

    /// Starts the background workers: session cleanup, the email workers and their cleanup, and,
    /// when webhooks are configured, the webhook dispatchers, their reaper and cleanup.
    /// why (design.md decision 3): the reference starts email workers only with challenges on,
    /// so password-reset mail was never sent otherwise. Ours always run.
    pub fn spawn_workers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let s = &self.services;
        let mut workers = vec![tokio::spawn(crate::worker::cleanup::run(s.clone()))];
        for _ in 0..self.config.email.worker_count {
            workers.push(tokio::spawn(crate::worker::email::run(s.clone())));
        }
        workers.push(tokio::spawn(crate::worker::email::cleanup(s.clone())));
        workers.push(tokio::spawn(crate::worker::instances::run(s.clone())));
        if let Some(hooks) = &self.config.webhooks {
            for _ in 0..hooks.worker_count {
                workers.push(tokio::spawn(crate::worker::webhooks::run(s.clone())));
            }
            workers.push(tokio::spawn(crate::worker::webhooks::reaper(s.clone(), hooks.stale_reaper_interval)));
            workers.push(tokio::spawn(crate::worker::webhooks::cleanup(s.clone(), hooks.cleanup_interval)));
        }
        workers.push(tokio::spawn(crate::worker::cleanup::audit(s.clone())));
        let warm = s.clone();
        workers.push(tokio::spawn(async move { warm.warm_up().await }));
        workers
    }

    /// Closes the store's pools.
    pub async fn close(&self) {
        self.store.close().await;
    }
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
