//! Extractors: parse at the edge into types that cannot be wrong. Every rejection answers the
//! contract's envelope.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::Audience;
use crate::domain::ClientInfo;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::InternalRefusal;
use crate::services::auth::Principal;

/// The client's IP (behavior.md §0.2, stricter). Without `AUTHARA_TRUST_PROXY_HEADERS`: the TCP
/// peer. With it: the rightmost `X-Forwarded-For` hop that is not a trusted proxy, walking from
/// the peer (the nearest hop) leftwards; with no `AUTHARA_TRUSTED_PROXIES`, only the peer is
/// trusted, so the client is the hop it appended. The leftmost entries, `True-Client-IP` and
/// `X-Real-IP` are written by the client itself behind an appending proxy and are ignored.
pub fn client_ip(parts: &Parts, http: &crate::config::HttpConfig, trust_proxy: bool) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if !trust_proxy {
        return peer;
    }
    let trusted = |ip: IpAddr| http.trusted_proxies.iter().any(|n| n.contains(ip));
    if let Some(p) = peer
        && !http.trusted_proxies.is_empty()
        && !trusted(p)
    {
        // The peer is not one of our proxies: its headers are the client's own words.
        return peer;
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { return peer };
        if !trusted(ip) {
            return Some(ip);
        }
    }
    peer
}

/// IP and user agent of the caller.
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, &state.config.http, state.config.trust_proxy_headers);
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let remembered = cookies::get(&parts.headers, cookies::MFA_REMEMBER)
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .map(str::to_owned);
        Ok(Client(ClientInfo { ip, user_agent, remembered }))
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

/// The organization routes of behavior.md §9.5 exist only with
/// `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`: `404 not_found` otherwise. Extract it
/// after [`AppUser`] and before [`Csrf`] (the order of §1.2: 401, then 404, then 403).
pub struct PublicManagement;

impl FromRequestParts<AppState> for PublicManagement {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.config.organizations.public_management_enabled {
            Ok(PublicManagement)
        } else {
            Err(ApiError::not_found())
        }
    }
}

/// A trusted server calling `/auth/internal/v1` (behavior.md §1.3): `Authorization` starts with
/// exactly `Bearer ` and the rest, trimmed, equals `AUTHARA_INTERNAL_API_TOKEN` (compared in
/// constant time). Without a configured token every call is refused. Refusals are
/// `401 unauthorized`, and `429 rate_limited` for an IP that sent too many wrong tokens
/// (ours: the reference does not limit them); no cookies and no CSRF are involved.
pub struct InternalCaller;

impl FromRequestParts<AppState> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ip = client_ip(parts, &state.config.http, state.config.trust_proxy_headers);
        match state.services.check_internal_token(given, ip).await {
            Ok(()) => Ok(InternalCaller),
            Err(InternalRefusal::Unauthorized) => Err(ApiError::unauthorized()),
            Err(InternalRefusal::RateLimited { retry_after_secs }) => Err(ApiError::rate_limited(retry_after_secs)),
        }
    }
}

/// Path parameters (ids): one that does not parse is `400 invalid_request`, before anything else
/// is checked, as the contract validator of the reference answers.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(ApiError::invalid_request("Path parameters must be UUIDs")),
        }
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
pub(crate) fn query_param(parts: &Parts, name: &str) -> Option<String> {
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
