//! `authara serve`: the start-up sequence of behavior.md §0.1 ([`App::open`]), then listen.

use std::sync::Arc;

use anyhow::Context as _;

use crate::app::App;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;

pub async fn run(config: Config, migrate: bool) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config.clone(), clock, migrate).await?;
    for path in &app.generated_keys {
        // Printed once, on the start that created it; the secret itself is never printed.
        eprintln!(
            "generated a development signing key (active kid {}) in {}; it is reused on every start. \
             Apps that verify HS256 access tokens need AUTHARA_JWT_KEYS set to the dev-jwt-keys file's content; \
             EdDSA tokens verify with /auth/.well-known/jwks.json.",
            app.services.tokens().active_kid(),
            path.display()
        );
    }
    if !config.is_prod() && !listener_is_loopback(&config) {
        tracing::warn!(
            "APP_ENV=dev on a non-loopback address ({}): dev mode logs emailed codes and may sign with a generated key; \
             set APP_ENV=prod for anything reachable from other machines",
            config.bind
        );
    }
    if config.webhooks.as_ref().is_some_and(|w| w.insecure_http_in_prod) {
        tracing::warn!(
            "AUTHARA_WEBHOOK_ALLOW_HTTP=true: webhooks go to a plain http:// URL in prod; deliveries and their \
             signatures cross the network unencrypted"
        );
    }
    let metrics = match config.http.metrics_bind {
        Some(addr) => Some(crate::http::metrics::spawn(addr, app.services.clone()).await?),
        None => None,
    };
    let workers = app.spawn_workers();
    let router = app.router();
    let listener =
        tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(engine = app.store.engine().as_str(), version = crate::VERSION, "listening on http://{addr}");

    // At the signal, the email and webhook workers stop claiming work while requests drain;
    // all of it shares AUTHARA_SHUTDOWN_TIMEOUT.
    let drain = config.http.shutdown_timeout;
    let signalled = Arc::new(std::sync::OnceLock::new());
    let shutdown = {
        let (signalled, services) = (signalled.clone(), app.services.clone());
        async move {
            crate::http::server::shutdown_signal().await;
            let _ = signalled.set(std::time::Instant::now());
            services.stop_workers();
        }
    };
    crate::http::server::serve(listener, router, shutdown, crate::http::server::Limits::from_config(&config.http))
        .await
        .context("serving")?;
    let left = || drain.saturating_sub(signalled.get().map_or(std::time::Duration::ZERO, std::time::Instant::elapsed));
    workers.stop(left()).await;
    metrics.iter().for_each(tokio::task::JoinHandle::abort);
    app.close_within(left().max(std::time::Duration::from_millis(100))).await;
    tracing::info!("stopped");
    Ok(())
}

fn listener_is_loopback(config: &Config) -> bool {
    config.bind.ip().is_loopback()
}
