//! `authara serve`: the startup sequence of behavior.md §0.1, failing fast.

use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::app::{self, AppState};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::services::Services;
use crate::services::keys;
use crate::store::Store;
use crate::store::migrate::MigrateError;

pub async fn run(config: Config, migrate: bool) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let clock: SharedClock = Arc::new(SystemClock);
    if let crate::config::CacheConfig::Redis { .. } = config.cache {
        bail!("AUTHARA_CACHE_PROVIDER=redis is not supported by this build yet; use noop (in-process)");
    }

    let keys = keys::load(&config).context("loading signing keys")?;
    for path in &keys.generated {
        // Printed once, on the start that created it; the secret itself is never printed.
        eprintln!(
            "generated a development signing key (active kid {}) in {}; it is reused on every start. \
             Apps that verify HS256 access tokens need AUTHARA_JWT_KEYS set to the dev-jwt-keys file's content; \
             EdDSA tokens verify with /auth/.well-known/jwks.json.",
            keys.active_kid,
            path.display()
        );
    }

    let store = Store::connect(&config).await.context("opening the database")?;
    if migrate {
        match store.migrate(clock.now_ms()).await {
            Ok(applied) => {
                for m in applied {
                    tracing::info!(version = m.version, name = m.name, "applied migration");
                }
            }
            Err(e @ MigrateError::DatabaseNewer { .. }) => bail!("{e}"),
            Err(e) => return Err(e).context("migrating"),
        }
    }
    check_schema(&store).await?;
    let pinned =
        store.pin_org_mode(config.org_mode.as_str(), clock.now_ms()).await.context("pinning the organization mode")?;
    if pinned != config.org_mode.as_str() {
        bail!(
            "organization mode mismatch: the database was set up with AUTHARA_ORG_MODE={pinned}, \
             the configuration says {}; the mode cannot change after first boot",
            config.org_mode.as_str()
        );
    }

    let services = Arc::new(Services::new(config.clone(), store.clone(), clock, &keys).map_err(anyhow::Error::msg)?);
    let revoked = services.load_revocations().await.context("loading recent revocations")?;
    tracing::debug!(sessions = revoked, "revocation list loaded");
    let warm = services.hasher.clone();
    tokio::spawn(async move { warm.warm_up().await });
    let mut workers = vec![tokio::spawn(crate::worker::cleanup::run(services.clone()))];
    // why (design.md decision 3): the reference starts email workers only with challenges on,
    // so password-reset mail was never sent otherwise. Ours always run.
    for _ in 0..config.email.worker_count {
        workers.push(tokio::spawn(crate::worker::email::run(services.clone())));
    }
    workers.push(tokio::spawn(crate::worker::email::cleanup(services.clone())));
    let router = app::build(AppState::new(services));
    let listener =
        tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(engine = store.engine().as_str(), version = crate::VERSION, "listening on http://{addr}");

    crate::http::server::serve(listener, router, crate::http::server::shutdown_signal(), config.http.shutdown_timeout)
        .await
        .context("serving")?;
    workers.iter().for_each(tokio::task::JoinHandle::abort);
    store.close().await;
    tracing::info!("stopped");
    Ok(())
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
    if status.current != status.required {
        bail!(
            "schema version mismatch: the database is at version {}, this binary needs version {}; \
             run `authara migrate` (or start with `authara serve --migrate`)",
            status.current,
            status.required
        );
    }
    Ok(())
}
