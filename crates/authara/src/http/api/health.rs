//! `GET /auth/health`, its probes `/auth/health/live` and `/auth/health/ready`, and
//! `GET /auth/version`.
//!
//! why: the reference answers `{"status":"ok"}` without looking at anything (behavior.md §1.1,
//! §14 item 9). Ours checks the database with a real query, the cache and the signing keys
//! (design.md decision 4) so that a load balancer stops sending traffic to a broken instance.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::http::state::AppState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    components: Components,
}

#[derive(Serialize)]
struct Components {
    database: Component,
    cache: Component,
    signing_keys: Component,
}

#[derive(Serialize)]
struct Component {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

const DB_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn health(State(state): State<AppState>) -> Response {
    let (engine, ping) = state.services.ping_store(DB_TIMEOUT).await;
    let database = match ping {
        Ok(latency) => Component {
            status: "up",
            kind: Some(engine),
            latency_ms: Some((latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0),
            detail: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            Component {
                status: "down",
                kind: Some(engine),
                latency_ms: None,
                detail: Some("database unreachable".to_owned()),
            }
        }
    };
    let c = state.services.cache().health().await;
    let cache =
        Component { status: if c.up { "up" } else { "down" }, kind: Some(c.kind), latency_ms: None, detail: c.detail };
    let tokens = state.services.tokens();
    let keys_ok = tokens.key_count() > 0;
    let signing_keys = Component {
        status: if keys_ok { "up" } else { "down" },
        kind: Some(tokens.algorithm_name()),
        latency_ms: None,
        // The active key id is not for the public: it tells an attacker which key to go after.
        detail: Some(format!("{} key(s)", tokens.key_count())),
    };
    let (status, code) = if database.status != "up" || !keys_ok {
        ("unhealthy", StatusCode::SERVICE_UNAVAILABLE)
    } else if cache.status != "up" {
        ("degraded", StatusCode::OK)
    } else {
        ("healthy", StatusCode::OK)
    };
    let body = Health { status, version: crate::VERSION, components: Components { database, cache, signing_keys } };
    (code, Json(body)).into_response()
}

#[derive(Serialize)]
struct Probe {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<&'static str>,
}

/// `GET /auth/health/live`: the process serves requests. Touches nothing else, so a database
/// outage never gets the instance restarted (Kubernetes liveness).
pub async fn live() -> Response {
    ([(axum::http::header::CACHE_CONTROL, "no-store")], Json(Probe { status: "live", failed: None })).into_response()
}

/// `GET /auth/health/ready`: 200 when the database answers, the schema is current and signing
/// keys are loaded (a degraded cache is still ready); 503 naming the failing check otherwise
/// (Kubernetes readiness: take the instance out of rotation).
pub async fn ready(State(state): State<AppState>) -> Response {
    let headers = [(axum::http::header::CACHE_CONTROL, "no-store")];
    match state.services.readiness(DB_TIMEOUT).await {
        Ok(()) => (StatusCode::OK, headers, Json(Probe { status: "ready", failed: None })).into_response(),
        Err(check) => {
            (StatusCode::SERVICE_UNAVAILABLE, headers, Json(Probe { status: "not_ready", failed: Some(check) }))
                .into_response()
        }
    }
}

#[derive(Serialize)]
struct Version {
    version: &'static str,
}

pub async fn version() -> Response {
    Json(Version { version: crate::VERSION }).into_response()
}

/// `GET /auth/.well-known/jwks.json`: public verification keys (EdDSA); empty with HS256 only.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.services.tokens().jwks(),
    )
        .into_response()
}
