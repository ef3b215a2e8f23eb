//! `/auth/admin/*`: the admin console (behavior.md §10). Server-rendered, usable without
//! JavaScript, in the hosted pages' look. Every page needs an admin-audience session holding the
//! `admin` role ([`AdminPage`]); every action is a CSRF-checked POST that redirects back with a
//! notice (or re-renders with the refusal), and leaves an audit event.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::layout::alert;
use super::{CsrfForm, NoFields, PageCtx, PageError, PagePath, PageQuery};
use super::{copy, fields};
use crate::clock::human;
use crate::domain::{Audience, AuditAction, DeliveryStatus, EmailAddress, PlatformRole, SessionId, UserId};
use crate::http::extract::Client;
use crate::http::state::AppState;
use crate::services::admin::{AUDIT_PAGE_SIZE, AdminActor, AdminError, page_number};
use crate::services::auth::{Principal, Privilege};
use crate::services::device::describe_device;

/// An administrator on a console page: an admin-audience access token (refreshed into that
/// audience when needed, §1.9) of a user holding the `admin` role. Auditors and monitors get a
/// 403 page; users with no platform role go back to `/`; nobody signed in goes to the login.
pub struct AdminPage {
    pub ctx: PageCtx,
    pub who: Principal,
    pub actor: AdminActor,
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = PageCtx::from_request_parts(parts, state).await?;
        let client = Client::from_request_parts(parts, state).await.map_err(|_| PageError::BadRequest("client"))?.0;
        AdminPage::resolve(ctx, client).await
    }
}

/// A console form: the CSRF check first (nothing about the session is touched for a forged
/// request), then the administrator, then the form's fields.
pub struct AdminForm<T>(pub AdminPage, pub T);

impl<T: DeserializeOwned + Default + Send> FromRequest<AppState> for AdminForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = PageCtx::from_request_parts(&mut parts, state).await?;
        let client =
            Client::from_request_parts(&mut parts, state).await.map_err(|_| PageError::BadRequest("client"))?.0;
        let CsrfForm(form) = CsrfForm::<T>::from_request(Request::from_parts(parts, body), state).await?;
        Ok(AdminForm(AdminPage::resolve(ctx, client).await?, form))
    }
}

impl AdminPage {
    /// The administrator behind a page context (after the CSRF check, for forms).
    pub async fn resolve(ctx: PageCtx, client: crate::domain::ClientInfo) -> Result<Self, PageError> {
        let who = ctx.user_for(Audience::Admin).await?;
        let s = &ctx.state().services;
        let actor =
            s.admin().authorize(&who, &client).map_err(|_| PageError::Forbidden("the admin role is required"))?;
        Ok(AdminPage { ctx, who, actor })
    }
}

fn frame(
    page: &AdminPage,
    title: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    body: Markup,
) -> Response {
    let allowlist = page.ctx.state().config.allowlist_enabled;
    let content = html! {
        div.card.admin {
            nav.admin aria-label="Admin" {
                a href="/auth/admin" { "Dashboard" }
                a href="/auth/admin/users" { "Users" }
                a href="/auth/admin/failures" { "Failures" }
                a href="/auth/admin/audit" { "Audit log" }
                a href="/auth/admin/webhooks" { "Webhooks" }
                @if allowlist { a href="/auth/admin/allowlist" { "Allowlist" } }
                a href="/auth/account" { "Your account" }
            }
            h1 { (title) }
            (alert("success", notice))
            (alert("error", error))
            (body)
        }
    };
    page.ctx.html(status, title, content)
}

/// Fixed notices after an action (never text from the request).
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "disabled" => "The user was disabled and signed out everywhere.",
        "enabled" => "The user was enabled.",
        "granted" => "The user is now an administrator.",
        "revoked-admin" => "The admin role was revoked; the user was signed out.",
        "session" => "That session was revoked.",
        "sessions" => "Every session of the user was revoked.",
        "mfa-reset" => "Two-step verification was turned off for the user; they were told by email.",
        "allowed" => "The address was added to the allowlist.",
        "removed" => "The address was removed from the allowlist.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    page: Option<i64>,
    notice: Option<String>,
    action: Option<String>,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    /// The audit log's keyset cursor, `<created_at_ms>.<seq>` of the last row seen.
    before: Option<String>,
}

/// `GET /auth/admin`.
pub async fn dashboard(page: AdminPage) -> Result<Response, PageError> {
    let d = page.ctx.state().services.admin().dashboard(&page.actor).await?;
    let body = html! {
        div.stats {
            div { strong { (d.stats.users) } "users" }
            div { strong { (d.stats.signups_since) } "sign-ups in 24 h" }
            div { strong { (d.stats.disabled) } "disabled users" }
            div { strong { (d.stats.active_sessions) } "active sessions" }
            div { strong { (d.failed_webhooks) } "failed webhook deliveries" }
        }
        h2 { "Latest failures" }
        (failure_table(&d.latest_failures))
        form method="get" action="/auth/admin/users" {
            div.inline {
                div.field { label for="q" { "Find a user" } input id="q" name="q" type="search" placeholder="email or username"; }
                button.secondary type="submit" { "Search" }
            }
        }
    };
    Ok(frame(&page, "Admin", StatusCode::OK, None, None, body))
}

fn failure_table(rows: &[crate::services::admin::FailedEmail]) -> Markup {
    html! {
        @if rows.is_empty() { p.meta { "No failed emails." } } @else {
            table.list {
                thead { tr { th { "When" } th { "To" } th { "Email" } th { "Status" } th { "Attempts" } th { "Last error" } } }
                tbody { @for f in rows { tr {
                    td { (human(f.updated_at_ms)) } td { (f.to_email) } td { (f.template) } td { (f.status) }
                    td { (f.attempt_count) } td { (f.last_error.as_deref().unwrap_or("")) }
                } } }
            }
        }
    }
}

/// `GET /auth/admin/users?q=&page=`: exact email, else email/username prefix (by email); newest
/// first without a query.
pub async fn users(page: AdminPage, PageQuery(q): PageQuery<ListQuery>) -> Result<Response, PageError> {
    let n = page_number(q.page);
    let rows = page.ctx.state().services.admin().search(&page.actor, &q.q, n).await?;
    let body = html! {
        form method="get" action="/auth/admin/users" {
            div.inline {
                div.field { label for="q" { "Email or username" } input id="q" name="q" type="search" value=(q.q); }
                button.secondary type="submit" { "Search" }
            }
        }
        @if rows.is_empty() { p.meta { "No user matches." } } @else {
            table.list {
                thead { tr { th { "Email" } th { "Username" } th { "Created" } th { "State" } } }
                tbody { @for u in &rows { tr {
                    td { a href={ "/auth/admin/users/" (u.id) } { (u.email) } }
                    td { (u.username) } td { (human(u.created_at_ms)) }
                    td { @if u.disabled_at_ms.is_some() { "disabled" } @else { "active" } }
                } } }
            }
        }
        div.row {
            @if n > 1 { a href={ "/auth/admin/users?q=" (crate::services::return_to::encode(&q.q)) "&page=" (n - 1) } { "Previous" } }
            @if rows.len() as i64 == crate::services::admin::PAGE_SIZE { a href={ "/auth/admin/users?q=" (crate::services::return_to::encode(&q.q)) "&page=" (n + 1) } { "Next" } }
        }
    };
    Ok(frame(&page, "Users", StatusCode::OK, None, None, body))
}

async fn render_user(
    page: &AdminPage,
    id: UserId,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let d = match page.ctx.state().services.admin().user(&page.actor, id).await {
        Ok(d) => d,
        Err(AdminError::UnknownUser) => return Err(PageError::NotFound),
        Err(e) => return Err(PageError::internal(&e)),
    };
    let now = page.ctx.state().services.now_ms();
    // The password is asked for with the sensitive actions only when the sign-in is not recent;
    // an administrator with a second factor verifies it instead (step-up).
    let privilege = page.ctx.state().services.admin().privileged_now(&page.actor).await?;
    let ask = privilege == Privilege::Password;
    let mfa = page.ctx.state().services.mfa().status(id, &d.roles).await?;
    let is_admin = d.roles.contains(&PlatformRole::Admin);
    let me = page.who.user_id() == id;
    let csrf = fields::csrf(&page.ctx.csrf);
    let base = format!("/auth/admin/users/{id}");
    let linked = page.ctx.state().services.oauth().linked(id).await?;
    let body = html! {
        dl.facts {
            dt { "Email" } dd { (d.user.email) }
            dt { "Username" } dd { (d.user.username) }
            dt { "Created" } dd { (human(d.user.created_at_ms)) }
            dt { "State" } dd { @if let Some(at) = d.user.disabled_at_ms { "disabled since " (human(at)) } @else { "active" } }
            dt { "Roles" } dd { @if d.roles.is_empty() { "none" } @else { @for r in &d.roles { span.badge { (r.as_str()) } } } }
            dt { "Sign-in methods" } dd {
                @if d.has_password { span.badge { "password" } }
                @for p in &linked { span.badge { (p.provider) } }
                @if !d.passkeys.is_empty() { span.badge { (d.passkeys.len()) " passkey(s)" } }
                @if !d.has_password && linked.is_empty() && d.passkeys.is_empty() { "none" }
            }
            dt { "Two-step verification" } dd {
                @if mfa.totp_enabled {
                    "authenticator app · " (mfa.recovery_remaining) " recovery code(s) left"
                    @if mfa.locked { " " span.badge { "locked" } }
                } @else { "off" @if mfa.required { " (required by policy: asked at the next sign-in)" } }
            }
        }
        @if !d.passkeys.is_empty() {
            h2 { "Passkeys" }
            table.list {
                thead { tr { th { "Name" } th { "Added" } th { "Last used" } th { "Kind" } } }
                tbody { @for p in &d.passkeys {
                    tr {
                        td { (p.name) @if p.clone_warning { " " span.badge { "possibly copied" } } }
                        td { (human(p.created_at_ms)) }
                        td { @match p.last_used_at_ms { Some(t) => (human(t)), None => "never" } }
                        td { @if p.backup_eligible { "synced" } @else { "device-bound" } }
                    }
                } }
            }
        }
        @if ask {
            p.meta { "Changing roles, disabling and ending sessions need a recent sign-in: yours is older, so type your password with the action." }
        }
        @if privilege == Privilege::SecondFactor {
            p.meta {
                "Changing roles, disabling and ending sessions need your second factor within the last few minutes. "
                a href={ "/auth/mfa/verify?return_to=" (crate::services::return_to::encode(&base)) } { "Verify now" }
            }
        }
        div.row {
            @if !me {
                @if d.user.disabled_at_ms.is_some() {
                    (privileged(&csrf, ask, &format!("{base}/enable"), "Enable", "secondary", "Enable"))
                } @else {
                    (privileged(&csrf, ask, &format!("{base}/disable"), "Disable", "danger", "Disable"))
                }
                @if is_admin {
                    (privileged(&csrf, ask, &format!("{base}/roles/admin/revoke"), "Revoke admin", "secondary", "Revoke admin"))
                }
                (privileged(&csrf, ask, &format!("{base}/sessions/revoke-all"), "Revoke all sessions", "secondary", "Revoke all sessions"))
                @if mfa.totp_enabled {
                    (privileged(&csrf, ask, &format!("{base}/mfa/reset"), "Reset two-step verification", "danger", "Reset two-step verification"))
                }
            }
            @if !is_admin {
                (privileged(&csrf, ask, &format!("{base}/roles/admin/grant"), "Grant admin", "secondary", "Grant admin"))
            }
        }
        h2 { "Sessions" }
        table.list {
            thead { tr { th { "Device" } th { "IP" } th { "Signed in" } th { "Last seen" } th { "Status" } th {} } }
            tbody { @for x in &d.sessions {
                @let status = if x.revoked_at_ms.is_some() { "revoked" } else if x.expires_at_ms <= now { "expired" } else { "active" };
                tr {
                    td { (describe_device(&x.user_agent).0) } td { (x.ip.as_deref().unwrap_or("")) }
                    td { (human(x.created_at_ms)) } td { (human(x.last_used_at_ms)) } td { (status) }
                    td { @if status == "active" {
                        (privileged(&csrf, ask, &format!("{base}/sessions/{}/revoke", x.id), "Revoke", "secondary", &format!("Revoke session {}", x.id)))
                    } }
                }
            } }
        }
        h2 { "Recent events" }
        (audit_table(&d.recent))
    };
    Ok(frame(page, &format!("User {}", d.user.email), status, notice, error, body))
}

fn audit_table(rows: &[crate::services::admin::AuditRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.meta { "No events." } } @else {
            table.list {
                thead { tr { th { "When" } th { "Action" } th { "Actor" } th { "Target" } th { "IP" } th { "Details" } } }
                tbody { @for e in rows { tr {
                    td { (human(e.created_at_ms)) } td { (e.action) }
                    td { (e.actor) @if let Some(a) = e.actor_user_id { " " a href={ "/auth/admin/users/" (a) } { "(user)" } } }
                    td { (e.target_email.as_deref().unwrap_or("")) }
                    td { (e.ip.as_deref().unwrap_or("")) }
                    td { code { (e.metadata) } }
                } } }
            }
        }
    }
}

/// `GET /auth/admin/users/{id}`.
pub async fn user(
    page: AdminPage,
    PagePath(id): PagePath<Uuid>,
    PageQuery(q): PageQuery<ListQuery>,
) -> Result<Response, PageError> {
    render_user(&page, UserId(id), StatusCode::OK, notice(q.notice.as_deref()), None).await
}

/// A sensitive action's form: its button and the administrator's current password, asked for
/// when the sign-in is not recent (the privileged-session rule).
fn privileged(csrf: &Markup, ask: bool, action: &str, label: &str, class: &str, name: &str) -> Markup {
    html! {
        form.inline.privileged method="post" action=(action) {
            (csrf)
            @if ask {
                input name="current_password" type="password" autocomplete="current-password"
                    placeholder="Your password" aria-label={ "Your password, to " (name.to_lowercase()) };
            }
            button class={ "small " (class) } type="submit" aria-label=(name) { (label) }
        }
    }
}

/// What a sensitive action's form sends besides its CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReauthFields {
    current_password: String,
}

impl ReauthFields {
    fn password(&self) -> Option<&str> {
        Some(self.current_password.as_str()).filter(|p| !p.is_empty())
    }
}

async fn act(page: AdminPage, id: UserId, result: Result<(), AdminError>, done: &str) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(page.ctx.redirect(&format!("/auth/admin/users/{id}?notice={done}"))),
        Err(e) => {
            let refused = copy::admin(e)?;
            render_user(&page, id, refused.status, None, Some(refused.message)).await
        }
    }
}

/// `POST /auth/admin/users/{id}/disable`.
pub async fn disable(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().set_disabled(&page.actor, UserId(id), true, f.password()).await;
    act(page, UserId(id), r, "disabled").await
}

/// `POST /auth/admin/users/{id}/enable`.
pub async fn enable(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().set_disabled(&page.actor, UserId(id), false, f.password()).await;
    act(page, UserId(id), r, "enabled").await
}

/// `POST /auth/admin/users/{id}/roles/admin/grant`.
pub async fn grant_admin(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().set_admin(&page.actor, UserId(id), true, f.password()).await;
    act(page, UserId(id), r, "granted").await
}

/// `POST /auth/admin/users/{id}/roles/admin/revoke`.
pub async fn revoke_admin(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().set_admin(&page.actor, UserId(id), false, f.password()).await;
    act(page, UserId(id), r, "revoked-admin").await
}

/// `POST /auth/admin/users/{id}/sessions/{sid}/revoke`.
pub async fn revoke_session(
    PagePath((id, sid)): PagePath<(Uuid, Uuid)>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r =
        page.ctx.state().services.admin().revoke_session(&page.actor, UserId(id), SessionId(sid), f.password()).await;
    act(page, UserId(id), r, "session").await
}

/// `POST /auth/admin/users/{id}/sessions/revoke-all`.
pub async fn revoke_all(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().revoke_all(&page.actor, UserId(id), f.password()).await.map(|_| ());
    act(page, UserId(id), r, "sessions").await
}

/// `POST /auth/admin/users/{id}/mfa/reset`: for a user who lost their authenticator app and
/// their recovery codes.
pub async fn reset_mfa(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, f): AdminForm<ReauthFields>,
) -> Result<Response, PageError> {
    let r = page.ctx.state().services.admin().reset_second_factor(&page.actor, UserId(id), f.password()).await;
    act(page, UserId(id), r.map(|_| ()), "mfa-reset").await
}

/// `GET /auth/admin/failures?page=`: failed emails and risky challenges, newest first.
pub async fn failures(page: AdminPage, PageQuery(q): PageQuery<ListQuery>) -> Result<Response, PageError> {
    let admin = page.ctx.state().services.admin();
    let n = page_number(q.page);
    let rows = admin.failures(&page.actor, n).await?;
    let risky = admin.risky_challenges(&page.actor, n).await?;
    let body = html! {
        h2 { "Emails" }
        (failure_table(&rows))
        h2 { "Challenges" }
        @if risky.is_empty() { p.meta { "No risky challenge." } } @else {
            table.list {
                thead { tr { th { "Created" } th { "Purpose" } th { "Email" } th { "Attempts" } th { "Resends" } th { "Expires" } th { "Decoy" } } }
                tbody { @for c in &risky { tr {
                    td { (human(c.created_at_ms)) } td { (c.purpose) } td { (c.email) }
                    td { (c.attempt_count) "/" (c.max_attempts) } td { (c.resend_count) "/" (c.max_resends) }
                    td { (human(c.expires_at_ms)) } td { @if c.opaque { "yes" } @else { "no" } }
                } } }
            }
        }
    };
    Ok(frame(&page, "Failures", StatusCode::OK, None, None, body))
}

/// `GET /auth/admin/webhooks`: the newest deliveries, with redelivery.
pub async fn webhooks(page: AdminPage, PageQuery(q): PageQuery<ListQuery>) -> Result<Response, PageError> {
    let rows = page.ctx.state().services.admin().deliveries(&page.actor).await?;
    let csrf = fields::csrf(&page.ctx.csrf);
    let configured = page.ctx.state().config.webhooks.is_some();
    let body = html! {
        @if !configured { p.meta { "Webhooks are off (set AUTHARA_WEBHOOK_URL and AUTHARA_WEBHOOK_SECRET)." } }
        @if rows.is_empty() { p.meta { "No deliveries." } } @else {
            table.list {
                thead { tr { th { "Created" } th { "Event" } th { "Status" } th { "Attempts" } th { "Response" } th { "Latency" } th { "Last error" } th {} } }
                tbody { @for d in &rows { tr {
                    td { (human(d.created_at_ms)) } td { (d.event_type) br; span.meta { (d.id) } } td { (d.status) }
                    td { (d.attempt_count) }
                    td { (d.response_status.map(|s| s.to_string()).unwrap_or_default()) }
                    td { (d.latency_ms.map(|l| format!("{l} ms")).unwrap_or_default()) }
                    td { (d.last_error.as_deref().unwrap_or("")) }
                    td { @if matches!(d.status, DeliveryStatus::Failed | DeliveryStatus::Delivered) {
                        form method="post" action={ "/auth/admin/webhooks/" (d.id) "/redeliver" } {
                            (csrf) button.secondary.small type="submit" { "Redeliver" }
                        }
                    } }
                } } }
            }
        }
    };
    let notice = (q.notice.as_deref() == Some("redelivered")).then_some("The delivery was queued again.");
    Ok(frame(&page, "Webhook deliveries", StatusCode::OK, notice, None, body))
}

/// `POST /auth/admin/webhooks/{id}/redeliver`.
pub async fn redeliver(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, _): AdminForm<NoFields>,
) -> Result<Response, PageError> {
    if !page.ctx.state().services.admin().redeliver(&page.actor, id).await? {
        return Err(PageError::NotFound);
    }
    Ok(page.ctx.redirect("/auth/admin/webhooks?notice=redelivered"))
}

/// `GET /auth/admin/audit?page=&before=&action=&actor=&target=`: newest first; "Older" pages by
/// keyset (`before`), the 500th as cheap as the first.
pub async fn audit(page: AdminPage, PageQuery(q): PageQuery<ListQuery>) -> Result<Response, PageError> {
    let wanted = q.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let action = wanted.map(AuditAction::parse);
    let filter = crate::services::admin::AuditFilter {
        actor: q.actor.map(UserId),
        target: q.target.map(UserId),
        action: action.clone().and_then(Result::ok),
    };
    let n = page_number(q.page);
    let before = match q.before.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return Err(PageError::BadRequest("before")),
    };
    let admin = page.ctx.state().services.admin();
    // An action that does not exist has no rows (rather than every row).
    let rows = match (action, before) {
        (Some(Err(_)), _) => Vec::new(),
        (_, Some(c)) => admin.audit_before(&page.actor, &filter, c).await?,
        _ => admin.audit(&page.actor, &filter, n).await?,
    };
    // The links keep the filters; "Older" continues after the last row shown.
    let mut filters = String::new();
    for (k, v) in [
        ("action", wanted.map(str::to_owned)),
        ("actor", q.actor.map(|a| a.to_string())),
        ("target", q.target.map(|t| t.to_string())),
    ] {
        if let Some(v) = v {
            filters.push_str(&format!("&{k}={}", crate::services::return_to::encode(&v)));
        }
    }
    let older =
        rows.last().filter(|_| rows.len() as i64 == AUDIT_PAGE_SIZE).map(|r| format!("{}.{}", r.created_at_ms, r.seq));
    let body = html! {
        form method="get" action="/auth/admin/audit" {
            div.inline {
                div.field {
                    label for="action" { "Action" }
                    select id="action" name="action" {
                        option value="" { "Any action" }
                        @for a in AuditAction::ALL {
                            option value=(a.as_str()) selected[q.action.as_deref() == Some(a.as_str())] { (a.as_str()) }
                        }
                    }
                }
                button.secondary type="submit" { "Filter" }
            }
        }
        (audit_table(&rows))
        div.row {
            @if before.is_some() { a href={ "/auth/admin/audit?page=1" (filters) } { "Newest" } }
            @else if n > 1 { a href={ "/auth/admin/audit?page=" (n - 1) (filters) } { "Newer" } }
            @if let Some(c) = &older { a href={ "/auth/admin/audit?before=" (c) (filters) } { "Older" } }
        }
    };
    Ok(frame(&page, "Audit log", StatusCode::OK, None, None, body))
}

/// `<created_at_ms>.<seq>`.
fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (at, seq) = s.split_once('.')?;
    Some((at.parse().ok()?, seq.parse().ok()?))
}

/// `GET /auth/admin/allowlist?q=&page=` (only with the allowlist on).
pub async fn allowlist(page: AdminPage, PageQuery(q): PageQuery<ListQuery>) -> Result<Response, PageError> {
    render_allowlist(&page, &q, StatusCode::OK, None).await
}

async fn render_allowlist(
    page: &AdminPage,
    q: &ListQuery,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    if !page.ctx.state().config.allowlist_enabled {
        return Err(PageError::NotFound);
    }
    let rows = page.ctx.state().services.admin().allowlist(&page.actor, &q.q, page_number(q.page)).await?;
    let csrf = fields::csrf(&page.ctx.csrf);
    let body = html! {
        form method="post" action="/auth/admin/allowlist" {
            (csrf)
            div.inline { (fields::email("email", "Allow an email", "", false)) button.secondary type="submit" { "Add" } }
        }
        form method="get" action="/auth/admin/allowlist" {
            div.inline { div.field { label for="q" { "Search" } input id="q" name="q" type="search" value=(q.q); } button.secondary type="submit" { "Search" } }
        }
        table.list {
            thead { tr { th { "Email" } th { "Added" } th {} } }
            tbody { @for e in &rows { tr {
                td { (e.email) } td { (human(e.created_at_ms)) }
                td { form method="post" action={ "/auth/admin/allowlist/" (e.id) "/delete" } { (csrf) button.secondary.small type="submit" { "Remove" } } }
            } } }
        }
    };
    Ok(frame(page, "Allowlist", status, notice(q.notice.as_deref()), error, body))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AllowForm {
    email: String,
}

/// `POST /auth/admin/allowlist`.
pub async fn allow(AdminForm(page, form): AdminForm<AllowForm>) -> Result<Response, PageError> {
    if !page.ctx.state().config.allowlist_enabled {
        return Err(PageError::NotFound);
    }
    let result = match EmailAddress::parse(&form.email) {
        Err(e) => Err(copy::Failure { status: StatusCode::BAD_REQUEST, ..copy::input(e) }),
        Ok(email) => match page.ctx.state().services.admin().allow(&page.actor, &email).await {
            Ok(()) => Ok(()),
            Err(e) => Err(copy::admin(e)?),
        },
    };
    match result {
        Ok(()) => Ok(page.ctx.redirect("/auth/admin/allowlist?notice=allowed")),
        Err(f) => render_allowlist(&page, &ListQuery::default(), f.status, Some(f.message)).await,
    }
}

/// `POST /auth/admin/allowlist/{id}/delete`.
pub async fn disallow(
    PagePath(id): PagePath<Uuid>,
    AdminForm(page, _): AdminForm<NoFields>,
) -> Result<Response, PageError> {
    if !page.ctx.state().config.allowlist_enabled {
        return Err(PageError::NotFound);
    }
    match page.ctx.state().services.admin().disallow(&page.actor, id).await {
        Ok(()) => Ok(page.ctx.redirect("/auth/admin/allowlist?notice=removed")),
        Err(e) => {
            let refused = copy::admin(e)?;
            render_allowlist(&page, &ListQuery::default(), refused.status, Some(refused.message)).await
        }
    }
}
