//! The metrics listener (`AUTHARA_METRICS_BIND`): `GET /metrics` in the OpenMetrics text
//! format, on its own address so that it is never reachable under `/auth` on the public port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;

use crate::services::Services;

const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Scrapes {
    services: Services,
    /// A scrape reads the queues from the database: one at a time, others are told to retry.
    one: Arc<Semaphore>,
}

/// Binds `addr` and serves the metrics until the returned task is aborted.
pub async fn spawn(addr: SocketAddr, services: Services) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics {addr}"))?;
    let bound = listener.local_addr().context("reading the metrics address")?;
    tracing::info!("metrics on http://{bound}/metrics");
    let state = Scrapes { services, one: Arc::new(Semaphore::new(1)) };
    let app = Router::new().route("/metrics", get(scrape)).with_state(state);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    }))
}

async fn scrape(State(s): State<Scrapes>) -> Response {
    let Ok(_one) = s.one.try_acquire() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "a scrape is under way\n").into_response();
    };
    let body = s.services.scrape_metrics().await;
    ([(CONTENT_TYPE, HeaderValue::from_static(CONTENT))], body).into_response()
}
