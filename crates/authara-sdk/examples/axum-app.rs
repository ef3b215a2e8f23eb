//! An application behind authara, with axum.
//!
//! ```sh
//! AUTHARA_URL=http://localhost:8080 AUTHARA_JWT_ISSUER=authara \
//! AUTHARA_JWT_KEYS="$(cat data/dev-jwt-keys)" AUTHARA_WEBHOOK_SECRET=… APP_BIND=127.0.0.1:3000 \
//!   cargo run -p authara-sdk --example axum-app
//! ```
//!
//! - `AUTHARA_URL`: the server's base URL (for its JWKS);
//! - `AUTHARA_JWT_ISSUER`: its `AUTHARA_JWT_ISSUER` (default `authara`);
//! - `AUTHARA_JWT_KEYS`: its HS256 keys; leave it unset when the server signs with EdDSA
//!   (`AUTHARA_JWT_ALGORITHM=EdDSA`): the keys then come from its JWKS;
//! - `AUTHARA_WEBHOOK_SECRET`: its webhook secret;
//! - `APP_BIND`: where to listen (default `127.0.0.1:3000`).
//!
//! Routes: `GET /` (public), `GET /me` (signed in), `GET /admin` (platform admins),
//! `POST /webhooks` (deliveries of the server's webhooks).

use authara_sdk::webhooks::{Event, Webhook, WebhookVerifier};
use authara_sdk::{AuthUser, Authara, JWKS_PATH, PlatformRole, Requirement, Verifier};
use axum::Router;
use axum::http::StatusCode;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The settings, from the environment.
struct Settings {
    authara_url: String,
    issuer: String,
    jwt_keys: Option<String>,
    webhook_secret: String,
    bind: String,
}

impl Settings {
    #[expect(clippy::disallowed_methods, reason = "an example application reads its settings from the environment")]
    fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &str| var(name).ok_or_else(|| format!("{name} is required"));
        Ok(Settings {
            authara_url: required("AUTHARA_URL")?.trim_end_matches('/').to_owned(),
            issuer: var("AUTHARA_JWT_ISSUER").unwrap_or_else(|| "authara".to_owned()),
            jwt_keys: var("AUTHARA_JWT_KEYS"),
            webhook_secret: required("AUTHARA_WEBHOOK_SECRET")?,
            bind: var("APP_BIND").unwrap_or_else(|| "127.0.0.1:3000".to_owned()),
        })
    }
}

async fn home() -> &'static str {
    "public page\n"
}

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({
        "sub": user.sub,
        "sid": user.sid,
        "org_id": user.org_id,
        "org_role": user.org_role.as_str(),
        "roles": user.roles,
        "amr": user.amr,
        "auth_time": user.auth_time,
    }))
}

async fn admin(user: AuthUser) -> Json<Value> {
    Json(json!({ "admin": user.user_id() }))
}

async fn webhooks(hook: Webhook) -> StatusCode {
    let event = &hook.event;
    let subject = match &event.event {
        Event::UserCreated(u) | Event::UserUpdated(u) | Event::UserDeleted(u) => format!("user {}", u.user_id),
        Event::OrganizationCreated(o) => format!("organization {} ({:?})", o.organization_id, o.name),
        Event::MembershipCreated(m) => format!("user {} joins {} as {}", m.user_id, m.organization_id, m.role.as_str()),
        Event::InvitationCreated(i) => format!("{} invited to {}", i.email, i.organization_id),
        other => format!("{other:?}"),
    };
    // Deliveries may repeat (retries): a real application deduplicates on `event.id`.
    println!("webhook {} {}: {subject}", event.event.kind(), event.id);
    StatusCode::NO_CONTENT
}

fn app(authara: &Authara, hooks: &WebhookVerifier) -> Router {
    let admin_only = Router::new()
        .route("/admin", get(admin))
        .route_layer(authara.require(Requirement::PlatformRole(PlatformRole::Admin)));
    Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/webhooks", post(webhooks))
        .merge(admin_only)
        .layer(authara.layer())
        .layer(hooks.layer())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env()?;
    let verifier = Verifier::builder(&settings.issuer);
    let verifier = match &settings.jwt_keys {
        Some(keys) => verifier.hs256_keys(keys.parse()?),
        None => verifier.jwks_url(format!("{}{JWKS_PATH}", settings.authara_url)),
    }
    .build()?;
    if settings.jwt_keys.is_none() {
        // Warm the key cache; if the server is not up yet, the first request fetches instead.
        if let Err(e) = verifier.refresh_keys().await {
            eprintln!("the JWKS is not available yet ({e}); it is fetched on the first request");
        }
    }
    let authara = Authara::new(verifier);
    let hooks = WebhookVerifier::new(&settings.webhook_secret)?;

    let listener = tokio::net::TcpListener::bind(&settings.bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&authara, &hooks)).await?;
    Ok(())
}
