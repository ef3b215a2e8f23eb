//! Extractors: parse at the edge into types that cannot be wrong. Every rejection answers the
//! contract's envelope.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::Audience;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::auth::Principal;
use crate::services::sessions::ClientInfo;

/// The client's IP: the TCP peer, or the forwarded headers when `AUTHARA_TRUST_PROXY_HEADERS`
/// is on (`True-Client-IP`, `X-Real-IP`, leftmost `X-Forwarded-For`; only if it parses).
pub fn client_ip(parts: &Parts, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let h = &parts.headers;
        let forwarded = ["true-client-ip", "x-real-ip"]
            .iter()
            .filter_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .chain(
                h.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(str::trim),
            )
            .find(|v| !v.is_empty());
        if let Some(ip) = forwarded.and_then(|v| v.parse().ok()) {
            return Some(ip);
        }
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// IP and user agent of the caller.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, state.config.trust_proxy_headers);
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// A user authenticated by the `authara_access` cookie for audience `app` (the API never reads
/// `Authorization: Bearer`), through the one [`crate::services::auth::Authenticator`].
pub struct AppUser(pub Principal);

impl FromRequestParts<AppState> for AppUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = cookies::get(&parts.headers, cookies::ACCESS)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        Ok(AppUser(state.services.auth().authenticate(token, Some(Audience::App)).await?))
    }
}

/// The double-submit CSRF check (behavior.md §3) for the JSON API: header, or a
/// `csrf_token` query parameter.
pub struct Csrf;

impl FromRequestParts<AppState> for Csrf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let from_query = query_param(parts, "csrf_token");
        if cookies::csrf_matches(&parts.headers, from_query.as_deref()) {
            Ok(Csrf)
        } else {
            Err(ApiError::forbidden("CSRF validation failed"))
        }
    }
}

/// `?audience=app|admin` (default `app`); anything else is `400 invalid_request`.
pub struct AudienceParam(pub Audience);

impl FromRequestParts<AppState> for AudienceParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match query_param(parts, "audience") {
            None => Ok(AudienceParam(Audience::App)),
            Some(v) => Audience::parse(&v)
                .map(AudienceParam)
                .map_err(|_| ApiError::invalid_request("audience must be app or admin")),
        }
    }
}

/// The last value of `name` in the query string, decoded.
fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query()?).ok()?;
    pairs.into_iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A JSON body: wrong content type, malformed or oversized JSON, missing or unknown fields all
/// answer `400 invalid_request`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::invalid_request(match e {
                JsonRejection::MissingJsonContentType(_) => "Content-Type must be application/json".to_owned(),
                // The serde message can quote submitted values (passwords): not echoed.
                JsonRejection::JsonDataError(_) => "Request does not match the API contract".to_owned(),
                JsonRejection::JsonSyntaxError(_) => "Request body is not valid JSON".to_owned(),
                JsonRejection::BytesRejection(_) => "Request body is too large or unreadable".to_owned(),
                _ => "Request does not match the API contract".to_owned(),
            })),
        }
    }
}
