//! A client for the internal API (`/auth/internal/v1`): what a trusted server holding
//! `AUTHARA_INTERNAL_API_TOKEN` may do on behalf of users.

mod types;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
pub use types::{
    Invitation, InvitationStatus, Membership, NewInvitation, OrgKind, Organization, OrganizationWithMembership,
};
use uuid::Uuid;

/// Answers larger than this are not read.
const MAX_RESPONSE: usize = 1024 * 1024;

/// An error code of the contract's envelope (`{"error":{"code","message"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: a field is missing or invalid.
    InvalidRequest,
    /// `unauthorized`: the bearer token is wrong (or the server has none configured).
    Unauthorized,
    /// `forbidden`: the operation is not allowed (for example team organizations outside
    /// multi mode).
    Forbidden,
    /// `user_not_found`
    UserNotFound,
    /// `organization_not_found`
    OrganizationNotFound,
    /// `invitation_not_found`
    InvitationNotFound,
    /// `actor_not_member`: the acting user is not in the organization.
    ActorNotMember,
    /// `actor_not_allowed`: the acting user's role may not invite.
    ActorNotAllowed,
    /// `already_member`: the invited address already belongs to a member.
    AlreadyMember,
    /// `invitation_already_pending`: the address has a pending invitation.
    InvitationAlreadyPending,
    /// `invitation_already_accepted`
    InvitationAlreadyAccepted,
    /// `invitation_revoked`
    InvitationRevoked,
    /// `invitation_expired`
    InvitationExpired,
    /// `membership_not_found`
    MembershipNotFound,
    /// `last_owner`: the change would leave a team organization without an owner (hand it
    /// over or delete it first).
    LastOwner,
    /// `personal_organization`: personal organizations are neither handed over nor deleted.
    PersonalOrganization,
    /// `last_admin`: the change would leave no active platform administrator.
    LastAdmin,
    /// `not_found`: no such route (an older server).
    NotFound,
    /// `rate_limited`
    RateLimited,
    /// `internal_error`: the server failed; retrying may help.
    InternalError,
    /// A code this version does not know.
    Other(String),
}

impl ErrorCode {
    fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "unauthorized" => Self::Unauthorized,
            "forbidden" => Self::Forbidden,
            "user_not_found" => Self::UserNotFound,
            "organization_not_found" => Self::OrganizationNotFound,
            "invitation_not_found" => Self::InvitationNotFound,
            "actor_not_member" => Self::ActorNotMember,
            "actor_not_allowed" => Self::ActorNotAllowed,
            "already_member" => Self::AlreadyMember,
            "invitation_already_pending" => Self::InvitationAlreadyPending,
            "invitation_already_accepted" => Self::InvitationAlreadyAccepted,
            "invitation_revoked" => Self::InvitationRevoked,
            "invitation_expired" => Self::InvitationExpired,
            "membership_not_found" => Self::MembershipNotFound,
            "last_owner" => Self::LastOwner,
            "personal_organization" => Self::PersonalOrganization,
            "last_admin" => Self::LastAdmin,
            "not_found" => Self::NotFound,
            "rate_limited" => Self::RateLimited,
            "internal_error" => Self::InternalError,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// An error answered in the contract's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The envelope's `code`.
    pub code: ErrorCode,
    /// The envelope's `message` (for people, not for matching).
    pub message: String,
}

/// Why an internal API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused, with the contract's error envelope.
    #[error("authara answered {} ({:?}): {}", .0.status, .0.code, .0.message)]
    Api(ApiError),
    /// An answer that is not the envelope (a proxy's error page, say).
    #[error("unexpected answer: HTTP {status}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// A success whose body is not what the contract says, or larger than 1 MiB.
    #[error("the answer could not be read: {0}")]
    InvalidResponse(String),
    /// No answer within the timeout.
    #[error("the request timed out")]
    Timeout,
    /// The connection failed.
    #[error("the request failed: {0}")]
    Transport(String),
    /// The client's settings are unusable (base URL, empty token).
    #[error("invalid client settings: {0}")]
    Config(String),
}

impl ClientError {
    /// The envelope's code, for errors the server answered.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Api(e) => Some(&e.code),
            _ => None,
        }
    }
}

/// A client for `/auth/internal/v1`, with the bearer token. Cheap to clone.
///
/// ```no_run
/// # async fn run(owner: uuid::Uuid) -> Result<(), authara_sdk::client::ClientError> {
/// use authara_sdk::client::{InternalClient, NewInvitation};
/// let client = InternalClient::new("http://authara:8080", "the-internal-api-token")?;
/// let team = client.create_organization("Research", owner).await?;
/// let invitation =
///     client.create_invitation(team.organization.id, &NewInvitation::new(owner, "ada@example.com")).await?;
/// println!("send {} to ada", invitation.invite_url.unwrap_or_default());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct InternalClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for InternalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl InternalClient {
    /// A client for the server at `base_url` (scheme, host and port, as `AUTHARA_URL`), with a
    /// 10 s timeout per request (5 s to connect).
    pub fn new(base_url: &str, token: &str) -> Result<Self, ClientError> {
        Self::with_timeouts(base_url, token, Duration::from_secs(10), Duration::from_secs(5))
    }

    /// [`new`](Self::new) with other timeouts.
    pub fn with_timeouts(
        base_url: &str,
        token: &str,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authara-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Self::with_http_client(base_url, token, http)
    }

    /// A client over your own `reqwest::Client` (proxies, custom roots; set its timeouts).
    pub fn with_http_client(base_url: &str, token: &str, http: reqwest::Client) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(base_url).map_err(|e| ClientError::Config(format!("base URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(ClientError::Config("base URL must be an absolute http or https URL".to_owned()));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Config("the internal API token is empty".to_owned()));
        }
        Ok(Self { base: base_url.trim_end_matches('/').to_owned(), token: token.to_owned(), http })
    }

    /// `POST /organizations`: a team organization owned by `created_by_user_id` (the server
    /// must run in multi mode).
    pub async fn create_organization(
        &self,
        name: &str,
        created_by_user_id: Uuid,
    ) -> Result<OrganizationWithMembership, ClientError> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            created_by_user_id: Uuid,
        }
        self.post("/auth/internal/v1/organizations", Some(&Body { name, created_by_user_id })).await
    }

    /// `POST /organizations/{id}/invitations`: invites an address; the server mails the
    /// invitation, and the answer's `invite_url` is the link.
    pub async fn create_invitation(
        &self,
        organization_id: Uuid,
        invitation: &NewInvitation,
    ) -> Result<Invitation, ClientError> {
        let path = format!("/auth/internal/v1/organizations/{organization_id}/invitations");
        let envelope: types::InvitationEnvelope = self.post(&path, Some(invitation)).await?;
        Ok(envelope.invitation)
    }

    /// `POST /organizations/{id}/invitations/{invitation}/resend`: replaces the invitation
    /// with a fresh one (new link and expiry) and mails it.
    pub async fn resend_invitation(
        &self,
        organization_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<Invitation, ClientError> {
        let path = format!("/auth/internal/v1/organizations/{organization_id}/invitations/{invitation_id}/resend");
        let envelope: types::InvitationEnvelope = self.post::<(), _>(&path, None).await?;
        Ok(envelope.invitation)
    }

    /// `DELETE /users/{id}`: deletes a user as their own account deletion does (a GDPR
    /// erasure): every session ends on every instance, `user.deleted`. Organizations they are
    /// the only member of go with them; refused with [`ErrorCode::LastOwner`] while they are the
    /// only owner of a team organization that has other members.
    pub async fn delete_user(&self, user_id: Uuid) -> Result<(), ClientError> {
        let path = format!("/auth/internal/v1/users/{user_id}");
        self.call::<()>(reqwest::Method::DELETE, &path, None).await.map(drop)
    }

    /// `DELETE /organizations/{id}`: deletes a team organization; `actor_user_id` must be its
    /// owner. The sessions in it end; its members start in their default organization next time.
    pub async fn delete_organization(&self, organization_id: Uuid, actor_user_id: Uuid) -> Result<(), ClientError> {
        let path = format!("/auth/internal/v1/organizations/{organization_id}");
        self.call(reqwest::Method::DELETE, &path, Some(&Actor { actor_user_id })).await.map(drop)
    }

    /// `DELETE /organizations/{id}/members/{user}`: removes a member, acting for
    /// `actor_user_id` (an owner, or an admin removing someone who is not an owner). The
    /// member's sessions in that organization end.
    pub async fn remove_member(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        actor_user_id: Uuid,
    ) -> Result<(), ClientError> {
        let path = format!("/auth/internal/v1/organizations/{organization_id}/members/{user_id}");
        self.call(reqwest::Method::DELETE, &path, Some(&Actor { actor_user_id })).await.map(drop)
    }

    /// `POST /organizations/{id}/ownership-transfer`: the owner `actor_user_id` hands the
    /// organization to the member `new_owner_user_id` and becomes an admin. Access tokens issued
    /// before carry the old role until they are refreshed.
    pub async fn transfer_ownership(
        &self,
        organization_id: Uuid,
        actor_user_id: Uuid,
        new_owner_user_id: Uuid,
    ) -> Result<(), ClientError> {
        #[derive(Serialize)]
        struct Body {
            actor_user_id: Uuid,
            new_owner_user_id: Uuid,
        }
        let path = format!("/auth/internal/v1/organizations/{organization_id}/ownership-transfer");
        let body = Body { actor_user_id, new_owner_user_id };
        self.call(reqwest::Method::POST, &path, Some(&body)).await.map(drop)
    }

    /// `GET /users/{id}/memberships`: every organization the user belongs to, with their role.
    pub async fn memberships(&self, user_id: Uuid) -> Result<Vec<OrganizationWithMembership>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Memberships {
            memberships: Vec<OrganizationWithMembership>,
        }
        let path = format!("/auth/internal/v1/users/{user_id}/memberships");
        let bytes = self.call::<()>(reqwest::Method::GET, &path, None).await?;
        let body: Memberships =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse(e.to_string()))?;
        Ok(body.memberships)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: Option<&B>) -> Result<T, ClientError> {
        let bytes = self.call(reqwest::Method::POST, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::InvalidResponse(e.to_string()))
    }

    /// One call: the answer's body on a 2xx, the contract's envelope as a typed error otherwise.
    async fn call<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            req = req.json(body);
        }
        let mut res = req.send().await.map_err(transport)?;
        let status = res.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(ClientError::InvalidResponse("the answer is larger than 1 MiB".to_owned()));
            }
            bytes.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(e) => Err(ClientError::Api(ApiError {
                status,
                code: ErrorCode::parse(&e.error.code),
                message: e.error.message,
            })),
            Err(_) => Err(ClientError::UnexpectedStatus { status }),
        }
    }
}

/// `APIInternalOrganizationActorRequest`: the member the backend acts for.
#[derive(Serialize)]
struct Actor {
    actor_user_id: Uuid,
}

fn transport(e: reqwest::Error) -> ClientError {
    if e.is_timeout() { ClientError::Timeout } else { ClientError::Transport(e.without_url().to_string()) }
}
