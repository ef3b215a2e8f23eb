//! THE route table, in contract order. No route is registered anywhere else.

use axum::Router;
use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};

use crate::http::api::{auth, challenges, health, internal, mfa, oauth, organizations, passkeys, sessions, user};
use crate::http::error::ApiError;
use crate::http::forward_auth;
use crate::http::pages;
use crate::http::state::AppState;

pub fn routes(state: AppState) -> Router {
    let api = Router::new()
        // Meta routes (behavior.md §1.1)
        .route("/auth/health", get(health::health))
        .route("/auth/health/live", get(health::live))
        .route("/auth/health/ready", get(health::ready))
        .route("/auth/version", get(health::version))
        .route("/auth/.well-known/jwks.json", get(health::jwks))
        // Ours (contract/extensions.yaml): forward-auth for nginx, Traefik and Caddy, any method.
        .route("/auth/verify", any(forward_auth::verify))
        // JSON API, in contract order. Public: CSRF on every POST except tokens/refresh.
        .route("/auth/api/v1/csrf", get(auth::csrf))
        .route("/auth/api/v1/oauth/google/options", get(oauth::google_options))
        .route("/auth/api/v1/oauth/google", post(oauth::google_login))
        .route("/auth/api/v1/login", post(auth::login))
        .route("/auth/api/v1/signup/direct", post(auth::signup_direct))
        .route("/auth/api/v1/signup/challenges", post(challenges::start_signup))
        .route("/auth/api/v1/signup/challenges/verify", post(challenges::verify_signup))
        .route("/auth/api/v1/password-reset/challenges", post(challenges::start_password_reset))
        .route("/auth/api/v1/password-reset/challenges/verify", post(challenges::verify_password_reset))
        .route("/auth/api/v1/challenges/resend", post(challenges::resend))
        .route("/auth/api/v1/passkeys/authenticate/options", post(passkeys::authenticate_options))
        .route("/auth/api/v1/passkeys/authenticate/finish", post(passkeys::authenticate_finish))
        .route("/auth/api/v1/sessions/logout", post(sessions::logout))
        .route("/auth/api/v1/sessions/refresh", post(sessions::refresh))
        .route("/auth/api/v1/tokens/refresh", post(sessions::tokens_refresh))
        .route("/auth/api/v1/login/mfa", post(mfa::login_second_step))
        .route("/auth/api/v1/login/mfa/enroll", post(mfa::login_enrol))
        .route("/auth/api/v1/login/mfa/enroll/confirm", post(mfa::login_enrol_confirm))
        // Signed-in user (authara_access cookie, audience app).
        .route("/auth/api/v1/user", get(user::current_user))
        .route("/auth/api/v1/users/password", put(user::set_password))
        .route("/auth/api/v1/mfa", get(mfa::status))
        .route("/auth/api/v1/mfa/totp/setup", post(mfa::setup))
        .route("/auth/api/v1/mfa/totp/confirm", post(mfa::confirm))
        .route("/auth/api/v1/mfa/totp/disable", post(mfa::disable))
        .route("/auth/api/v1/mfa/recovery-codes", post(mfa::regenerate))
        .route("/auth/api/v1/mfa/verify", post(mfa::verify))
        .route("/auth/api/v1/passkeys/register/options", post(passkeys::register_options))
        .route("/auth/api/v1/passkeys/register/finish", post(passkeys::register_finish))
        .route("/auth/api/v1/organizations", get(organizations::list))
        .route("/auth/api/v1/organizations/current", get(user::current_organization))
        .route("/auth/api/v1/organizations/current/members", get(organizations::current_members))
        .route("/auth/api/v1/organizations/{organizationID}/switch", post(organizations::switch))
        // Ours (contract/extensions.yaml): a member leaves an organization they joined.
        .route("/auth/api/v1/organizations/{organizationID}/leave", post(organizations::leave))
        .route("/auth/api/v1/capabilities", get(user::capabilities))
        // Public organization management: the session's organization only, 404 unless
        // AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED (behavior.md §9.5).
        .route("/auth/api/v1/organizations/{organizationID}", get(organizations::get).patch(organizations::update))
        .route("/auth/api/v1/organizations/{organizationID}/members", get(organizations::members))
        .route("/auth/api/v1/organizations/{organizationID}/members/{userID}", get(organizations::member))
        .route("/auth/api/v1/organizations/{organizationID}/invitations", get(organizations::invitations))
        .route("/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}", get(organizations::invitation))
        .route(
            "/auth/api/v1/organizations/{organizationID}/invitations/{invitationID}/revoke",
            post(organizations::revoke),
        )
        .route("/auth/api/v1/users/{userID}/memberships", get(organizations::user_memberships))
        // Internal API: bearer AUTHARA_INTERNAL_API_TOKEN, no cookies, no CSRF (behavior.md §1.3).
        .route("/auth/internal/v1/organizations", post(internal::create_organization))
        .route("/auth/internal/v1/organizations/{organizationID}/invitations", post(internal::create_invitation))
        .route(
            "/auth/internal/v1/organizations/{organizationID}/invitations/{invitationID}/resend",
            post(internal::resend_invitation),
        )
        // Ours (contract/extensions.yaml, the official Go SDK's calls): the lifecycle of members,
        // organizations and users, and a user's memberships.
        .route("/auth/internal/v1/organizations/{organizationID}", delete(internal::delete_organization))
        .route("/auth/internal/v1/organizations/{organizationID}/members/{userID}", delete(internal::remove_member))
        .route(
            "/auth/internal/v1/organizations/{organizationID}/ownership-transfer",
            post(internal::transfer_ownership),
        )
        .route("/auth/internal/v1/users/{userID}", delete(internal::delete_user))
        .route("/auth/internal/v1/users/{userID}/memberships", get(internal::user_memberships));
    // Hosted pages (behavior.md §1.4), inside the page layer (cookies, error pages).
    let pages = Router::new()
        .route("/auth/login", get(pages::auth::login_page).post(pages::auth::login))
        .route("/auth/signup", get(pages::auth::signup_page).post(pages::auth::signup))
        .route("/auth/sessions/logout", get(pages::auth::logout_page).post(pages::auth::logout))
        .route("/auth/sessions/refresh", get(pages::auth::refresh_page).post(pages::auth::refresh))
        .route("/auth/password-reset", get(pages::challenge::reset_page).post(pages::challenge::reset))
        .route("/auth/verify-challenge/{action}", get(pages::challenge::verify_get).post(pages::challenge::verify_post))
        .route("/auth/resend-challenge", post(pages::challenge::resend))
        .route("/auth/email-change", post(pages::challenge::email_change))
        .route("/auth/email-change/cancel", get(pages::challenge::cancel_page).post(pages::challenge::cancel))
        .route("/auth/passkeys/authenticate/options", post(pages::passkeys::authenticate_options))
        .route("/auth/passkeys/authenticate/finish", post(pages::passkeys::authenticate_finish))
        .route("/auth/passkeys/register/options", post(pages::passkeys::register_options))
        .route("/auth/passkeys/register/finish", post(pages::passkeys::register_finish))
        .route("/auth/passkeys/setup", get(pages::passkeys::setup_page))
        .route("/auth/passkeys/{id}/rename", post(pages::passkeys::rename))
        .route("/auth/passkeys/{id}/delete", post(pages::passkeys::delete))
        .route("/auth/login/mfa", get(pages::mfa::second_step_page).post(pages::mfa::second_step))
        .route("/auth/login/mfa/enroll", get(pages::mfa::enrol_page).post(pages::mfa::enrol))
        .route("/auth/mfa/verify", get(pages::mfa::verify_page).post(pages::mfa::verify))
        .route("/auth/mfa/recovery-codes/saved", post(pages::mfa::saved))
        .route("/auth/account/mfa/setup", post(pages::mfa::account_setup))
        .route("/auth/account/mfa/confirm", post(pages::mfa::account_confirm))
        .route("/auth/account/mfa/disable", post(pages::mfa::account_disable))
        .route("/auth/account/mfa/recovery-codes", post(pages::mfa::account_regenerate))
        .route("/auth/account", get(pages::account::account_page))
        .route("/auth/user/username", post(pages::account::change_username))
        .route("/auth/providers/password/change", post(pages::account::change_password))
        .route("/auth/sessions/revoke-other", post(pages::account::revoke_others))
        .route("/auth/sessions/{id}/revoke", post(pages::account::revoke_session))
        .route("/auth/user/delete", post(pages::account::delete_account))
        .route("/auth/successful-deletion", get(pages::account::deleted))
        .route("/auth/organizations/{id}/switch", post(pages::account::switch_organization))
        .route("/auth/organizations/{id}/leave", post(pages::account::leave_organization))
        // Sign-in providers (behavior.md §7; the code flow is our addition).
        .route("/auth/oauth/{provider}/start", get(pages::oauth::start))
        .route("/auth/oauth/{provider}/callback", get(pages::oauth::callback).post(pages::google::callback))
        .route("/auth/oauth/{provider}/link", post(pages::oauth::link))
        .route("/auth/provider-links/confirm", get(pages::oauth::confirm_get).post(pages::oauth::confirm_post))
        .route("/auth/providers/{provider}/unlink", post(pages::oauth::unlink))
        .route("/auth/providers/{provider}/link/start", post(pages::google::link_start))
        .route("/auth/invitations/accept", get(pages::invitations::accept_page).post(pages::invitations::accept))
        .route("/auth/invitations/signup", get(pages::invitations::signup_page).post(pages::invitations::signup))
        .route("/auth/invitations/login", get(pages::invitations::login_page).post(pages::invitations::login))
        // Admin console (behavior.md §10): admin audience, `admin` role, CSRF on every POST.
        .route("/auth/admin", get(pages::admin::dashboard))
        .route("/auth/admin/", get(pages::admin::dashboard))
        .route("/auth/admin/users", get(pages::admin::users))
        .route("/auth/admin/users/{id}", get(pages::admin::user))
        .route("/auth/admin/users/{id}/disable", post(pages::admin::disable))
        .route("/auth/admin/users/{id}/enable", post(pages::admin::enable))
        .route("/auth/admin/users/{id}/roles/admin/grant", post(pages::admin::grant_admin))
        .route("/auth/admin/users/{id}/roles/admin/revoke", post(pages::admin::revoke_admin))
        .route("/auth/admin/users/{id}/sessions/{sid}/revoke", post(pages::admin::revoke_session))
        .route("/auth/admin/users/{id}/sessions/revoke-all", post(pages::admin::revoke_all))
        .route("/auth/admin/users/{id}/mfa/reset", post(pages::admin::reset_mfa))
        .route("/auth/admin/failures", get(pages::admin::failures))
        .route("/auth/admin/audit", get(pages::admin::audit))
        .route("/auth/admin/webhooks", get(pages::admin::webhooks))
        .route("/auth/admin/webhooks/{id}/redeliver", post(pages::admin::redeliver))
        .route("/auth/admin/allowlist", get(pages::admin::allowlist).post(pages::admin::allow))
        .route("/auth/admin/allowlist/{id}/delete", post(pages::admin::disallow))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), pages::page_layer));
    let routes = api.merge(pages).route("/auth/static/{name}", get(static_asset));
    // The route template is needed only by the metrics: without them, no work per request.
    let routes = if state.services.metrics().enabled() {
        routes.route_layer(axum::middleware::from_fn(crate::http::middleware::edge::tag_route))
    } else {
        routes
    };
    routes.fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}

/// `GET /auth/static/{name}`: the stylesheet and the page script, by content-hashed name.
async fn static_asset(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    state.assets.response(&name)
}

fn is_api(uri: &Uri) -> bool {
    let p = uri.path();
    p.starts_with("/auth/api/") || p.starts_with("/auth/internal/")
}

/// Unknown API routes answer the envelope; browsers get the HTML 404 page, other clients the
/// plain-text 404 (behavior.md §0.2).
async fn not_found(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    if is_api(&uri) {
        ApiError::not_found().into_response()
    } else if wants_html {
        pages::layout::error_page(&state, pages::is_hx(&headers), StatusCode::NOT_FOUND, "not found")
    } else {
        (StatusCode::NOT_FOUND, "404 page not found").into_response()
    }
}

async fn method_not_allowed(uri: Uri) -> Response {
    if is_api(&uri) {
        ApiError::method_not_allowed().into_response()
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}
