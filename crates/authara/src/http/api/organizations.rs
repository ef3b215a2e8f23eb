//! Organizations: the signed-in user's memberships, switching, and the public management routes
//! of behavior.md §9.5 (only with `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED=true`). The
//! response shapes are shared with the internal API.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::{OrgId, UserId};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, AppUser, AudienceParam, Client, Csrf, JsonBody, PublicManagement, query_param};
use crate::http::state::AppState;
use crate::services::invitations::Invitation;
use crate::services::organizations::{MemberCursor, MemberPage, MemberRow, MembershipRow, OrgRow, UserMembershipRow};

/// `Organization` of the contract.
#[derive(Serialize)]
pub struct Organization<'a> {
    id: Uuid,
    created_at: String,
    updated_at: String,
    name: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by_user_id: Option<Uuid>,
}

impl<'a> From<&'a OrgRow> for Organization<'a> {
    fn from(o: &'a OrgRow) -> Self {
        Organization {
            id: o.id.0,
            created_at: rfc3339(o.created_at_ms),
            updated_at: rfc3339(o.updated_at_ms),
            name: &o.name,
            kind: o.kind.as_str(),
            created_by_user_id: o.created_by_user_id.map(|u| u.0),
        }
    }
}

/// `Membership` of the contract.
#[derive(Serialize)]
pub struct Membership {
    organization_id: Uuid,
    user_id: Uuid,
    role: &'static str,
    created_at: String,
    updated_at: String,
}

impl From<&MembershipRow> for Membership {
    fn from(m: &MembershipRow) -> Self {
        Membership {
            organization_id: m.organization_id.0,
            user_id: m.user_id.0,
            role: m.role.as_str(),
            created_at: rfc3339(m.created_at_ms),
            updated_at: rfc3339(m.updated_at_ms),
        }
    }
}

/// `OrganizationWithMembership` / `MembershipWithOrganization` of the contract.
#[derive(Serialize)]
pub struct WithMembership<'a> {
    organization: Organization<'a>,
    membership: Membership,
}

impl<'a> WithMembership<'a> {
    pub fn new(org: &'a OrgRow, membership: &MembershipRow) -> Self {
        WithMembership { organization: org.into(), membership: membership.into() }
    }
}

/// A member list, serialized straight from the rows (a 10,000-member organization's list is
/// 2.5 MB: no intermediate JSON tree).
#[derive(Serialize)]
struct Members<M> {
    members: Vec<M>,
}

/// `OrganizationMember` of the contract.
#[derive(Serialize)]
struct Member<'a> {
    organization_id: Uuid,
    user_id: Uuid,
    email: &'a str,
    username: &'a str,
    role: &'static str,
    created_at: String,
    updated_at: String,
    disabled: bool,
}

impl<'a> From<&'a MemberRow> for Member<'a> {
    fn from(m: &'a MemberRow) -> Self {
        Member {
            organization_id: m.membership.organization_id.0,
            user_id: m.membership.user_id.0,
            email: &m.email,
            username: &m.username,
            role: m.membership.role.as_str(),
            created_at: rfc3339(m.membership.created_at_ms),
            updated_at: rfc3339(m.membership.updated_at_ms),
            disabled: m.disabled_at_ms.is_some(),
        }
    }
}

/// `OrganizationInvitation` of the contract; `invite_url` only right after create and resend.
#[derive(Serialize)]
pub struct InvitationBody<'a> {
    id: Uuid,
    organization_id: Uuid,
    email: &'a str,
    role: &'static str,
    metadata: &'a Map<String, Value>,
    status: &'static str,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invite_url: Option<&'a str>,
}

impl<'a> From<&'a Invitation> for InvitationBody<'a> {
    fn from(i: &'a Invitation) -> Self {
        InvitationBody {
            id: i.row.id,
            organization_id: i.row.organization_id.0,
            email: &i.row.email,
            role: i.row.role.as_str(),
            metadata: &i.metadata,
            status: i.status.as_str(),
            expires_at: rfc3339(i.row.expires_at_ms),
            invite_url: i.invite_url.as_deref(),
        }
    }
}

/// `OrganizationInvitationEnvelope`.
pub fn invitation_envelope(i: &Invitation) -> Json<Value> {
    Json(serde_json::json!({ "invitation": InvitationBody::from(i) }))
}

#[derive(Serialize)]
struct Summary<'a> {
    id: Uuid,
    name: &'a str,
    role: &'static str,
}

/// `GET /organizations`: every membership of the user, oldest first.
pub async fn list(State(state): State<AppState>, user: AppUser) -> Result<Response, ApiError> {
    let rows = state.services.organizations().mine(&user.0).await?;
    let organizations: Vec<Summary<'_>> = rows
        .iter()
        .map(|r| Summary { id: r.organization.id.0, name: &r.organization.name, role: r.role.as_str() })
        .collect();
    Ok(Json(serde_json::json!({ "organizations": organizations })).into_response())
}

#[derive(Serialize)]
struct CurrentMember<'a> {
    user_id: Uuid,
    email: &'a str,
    username: &'a str,
    role: &'static str,
    created_at: String,
}

/// The largest page of a member list.
const MAX_MEMBER_PAGE: u32 = 1000;
/// The page size when only `after` is given.
const DEFAULT_MEMBER_PAGE: u32 = 100;

/// `?limit=&after=` on the member lists (an extension, `contract/extensions.yaml`): without
/// either, the whole list as the contract has it; with either, at most `limit` members (1 to
/// 1000, default 100) after the `after` cursor, and a `Link: <…>; rel="next"` header while more
/// remain. Each page is an index range, however deep.
pub struct MemberPageParam {
    page: Option<MemberPage>,
    path: String,
}

impl axum::extract::FromRequestParts<AppState> for MemberPageParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &AppState) -> Result<Self, ApiError> {
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |u| u.0.path().to_owned());
        let (limit, after) = (query_param(parts, "limit"), query_param(parts, "after"));
        if limit.is_none() && after.is_none() {
            return Ok(MemberPageParam { page: None, path });
        }
        let limit = match limit {
            None => DEFAULT_MEMBER_PAGE,
            Some(l) => l.parse().ok().filter(|l| (1..=MAX_MEMBER_PAGE).contains(l)).ok_or_else(|| {
                ApiError::invalid_request(format!("limit must be a whole number from 1 to {MAX_MEMBER_PAGE}"))
            })?,
        };
        let after =
            match after {
                None => None,
                Some(a) => Some(MemberCursor::parse(&a).ok_or_else(|| {
                    ApiError::invalid_request("after must be the cursor of a member list's Link header")
                })?),
            };
        Ok(MemberPageParam { page: Some(MemberPage { after, limit }), path })
    }
}

impl MemberPageParam {
    /// One more row than the page shows, to know whether another page follows.
    fn query(&self) -> Option<MemberPage> {
        self.page.map(|p| MemberPage { limit: p.limit + 1, ..p })
    }

    /// Cuts `rows` to the page; the `Link` to the next page, if another follows.
    fn cut(&self, rows: &mut Vec<MemberRow>) -> Option<axum::http::HeaderValue> {
        let p = self.page?;
        if rows.len() <= p.limit as usize {
            return None;
        }
        rows.truncate(p.limit as usize);
        let last = MemberCursor::after(rows.last()?);
        axum::http::HeaderValue::from_str(&format!("<{}?limit={}&after={last}>; rel=\"next\"", self.path, p.limit)).ok()
    }
}

/// A member list's answer, with its `Link` header.
fn members_response<M: Serialize>(members: Vec<M>, next: Option<axum::http::HeaderValue>) -> Response {
    // Written into a buffer sized for the list (a member is about 260 bytes): grown by doubling
    // from empty, a 10,000-member list was copied a dozen times on its way to 2.5 MB.
    let mut body = Vec::with_capacity(members.len() * 272 + 16);
    let mut res = match serde_json::to_writer(&mut body, &Members { members }) {
        Ok(()) => {
            let json = axum::http::HeaderValue::from_static("application/json");
            ([(axum::http::header::CONTENT_TYPE, json)], body).into_response()
        }
        Err(e) => ApiError::internal(&e).into_response(),
    };
    if let Some(link) = next {
        res.headers_mut().insert(axum::http::header::LINK, link);
    }
    res
}

/// `GET /organizations/current/members`.
pub async fn current_members(
    State(state): State<AppState>,
    user: AppUser,
    page: MemberPageParam,
) -> Result<Response, ApiError> {
    let mut rows = state.services.organizations().current_members(&user.0, page.query()).await?;
    let next = page.cut(&mut rows);
    let members: Vec<CurrentMember<'_>> = rows
        .iter()
        .map(|m| CurrentMember {
            user_id: m.membership.user_id.0,
            email: &m.email,
            username: &m.username,
            role: m.membership.role.as_str(),
            created_at: rfc3339(m.membership.created_at_ms),
        })
        .collect();
    Ok(members_response(members, next))
}

#[derive(Serialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

/// `POST /organizations/{id}/switch?audience=`: new tokens for the target organization, in the
/// body and in both session cookies (behavior.md §2.6).
pub async fn switch(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    AudienceParam(audience): AudienceParam,
    user: AppUser,
    _: Csrf,
) -> Result<Response, ApiError> {
    let issued = state.services.organizations().switch(&user.0, OrgId(org), audience).await?;
    let mut headers = HeaderMap::new();
    cookies::append(&mut headers, state.session_cookies(&issued));
    let body = Tokens { access_token: issued.access_token, refresh_token: issued.refresh_token };
    Ok((headers, Json(body)).into_response())
}

/// `POST /organizations/{id}/leave` (ours): the caller leaves the organization; `204`. Their
/// sessions in it end (this one too, when it is the session's organization).
pub async fn leave(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    Client(client): Client,
    user: AppUser,
    _: Csrf,
) -> Result<Response, ApiError> {
    state.services.organizations().leave(&user.0, OrgId(org), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn organization_envelope(org: &OrgRow) -> Response {
    Json(serde_json::json!({ "organization": Organization::from(org) })).into_response()
}

/// `GET /organizations/{id}`.
pub async fn get(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    user: AppUser,
    _: PublicManagement,
) -> Result<Response, ApiError> {
    let row = state.services.organizations().get(&user.0, OrgId(org)).await?;
    Ok(organization_envelope(&row))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    name: String,
}

/// `PATCH /organizations/{id}`: renames (owners and admins).
pub async fn update(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    user: AppUser,
    _: PublicManagement,
    _: Csrf,
    JsonBody(req): JsonBody<UpdateOrganizationRequest>,
) -> Result<Response, ApiError> {
    let row = state.services.organizations().rename(&user.0, OrgId(org), &req.name).await?;
    Ok(organization_envelope(&row))
}

/// `GET /organizations/{id}/members`.
pub async fn members(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    user: AppUser,
    _: PublicManagement,
    page: MemberPageParam,
) -> Result<Response, ApiError> {
    let mut rows = state.services.organizations().members(&user.0, OrgId(org), page.query()).await?;
    let next = page.cut(&mut rows);
    Ok(members_response(rows.iter().map(Member::from).collect::<Vec<_>>(), next))
}

/// `GET /organizations/{id}/members/{userID}`.
pub async fn member(
    State(state): State<AppState>,
    ApiPath((org, member)): ApiPath<(Uuid, Uuid)>,
    user: AppUser,
    _: PublicManagement,
) -> Result<Response, ApiError> {
    let row = state.services.organizations().member(&user.0, OrgId(org), UserId(member)).await?;
    Ok(Json(serde_json::json!({ "member": Member::from(&row) })).into_response())
}

/// `GET /organizations/{id}/invitations`: every status, newest first (owners and admins).
pub async fn invitations(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    user: AppUser,
    _: PublicManagement,
) -> Result<Response, ApiError> {
    let list = state.services.invitations().invitations(&user.0, OrgId(org)).await?;
    let invitations: Vec<InvitationBody<'_>> = list.iter().map(InvitationBody::from).collect();
    Ok(Json(serde_json::json!({ "invitations": invitations })).into_response())
}

/// `GET /organizations/{id}/invitations/{invitationID}`.
pub async fn invitation(
    State(state): State<AppState>,
    ApiPath((org, id)): ApiPath<(Uuid, Uuid)>,
    user: AppUser,
    _: PublicManagement,
) -> Result<Response, ApiError> {
    let found = state.services.invitations().invitation_of(&user.0, OrgId(org), id).await?;
    Ok(invitation_envelope(&found).into_response())
}

/// `POST /organizations/{id}/invitations/{invitationID}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    ApiPath((org, id)): ApiPath<(Uuid, Uuid)>,
    user: AppUser,
    _: PublicManagement,
    _: Csrf,
) -> Result<Response, ApiError> {
    let revoked = state.services.invitations().revoke(&user.0, OrgId(org), id).await?;
    Ok(invitation_envelope(&revoked).into_response())
}

/// `GET /users/{userID}/memberships`: the caller's own.
pub async fn user_memberships(
    State(state): State<AppState>,
    ApiPath(of): ApiPath<Uuid>,
    user: AppUser,
    _: PublicManagement,
) -> Result<Response, ApiError> {
    let rows: Vec<UserMembershipRow> = state.services.organizations().memberships_of(&user.0, UserId(of)).await?;
    Ok(memberships_body(&rows).into_response())
}

/// `{"memberships": [{organization, membership}]}` (shared with the internal API).
pub fn memberships_body(rows: &[UserMembershipRow]) -> Json<Value> {
    let memberships: Vec<(MembershipRow, &OrgRow)> = rows.iter().map(|r| (r.membership(), &r.organization)).collect();
    let memberships: Vec<WithMembership<'_>> = memberships.iter().map(|(m, o)| WithMembership::new(o, m)).collect();
    Json(serde_json::json!({ "memberships": memberships }))
}
