//! Two-step verification pages: the login's second step, the enrolment a policy requires
//! during a sign-in, the recovery codes (shown once, saved, typed back), the account page's
//! section and its actions, and the step-up page.
//!
//! Everything works without JavaScript: the recovery-code switch is a `<details>`, the download
//! a `data:` link, the "typed back" check a form. With it, the page script copies the codes and
//! checks the typed one before sending.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::layout::alert;
use super::{CsrfForm, Flash, PageCtx, PageError, PageUser, UserForm, fields};
use crate::domain::PlatformRole;
use crate::http::extract::Client;
use crate::services::accounts::Completion;
use crate::services::auth::{Principal, Privilege, ReauthError};
use crate::services::mfa::{MfaError, MfaStatus, Proof, Setup};
use crate::services::return_to;

/// What a refused code says on a page, and its status; `Err` for what is not the visitor's to
/// fix.
fn refusal(e: MfaError) -> Result<(StatusCode, &'static str), PageError> {
    Ok(match e {
        MfaError::InvalidCode => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "That code is incorrect. Codes change every 30 seconds: type the one shown now.",
        ),
        MfaError::Locked => (
            StatusCode::FORBIDDEN,
            "Your authenticator app is locked after too many incorrect codes. Use a recovery code instead.",
        ),
        MfaError::RateLimited { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait a minute and try again.")
        }
        MfaError::NotEnabled => (StatusCode::CONFLICT, "Two-step verification is not on for this account."),
        MfaError::AlreadyEnabled => (StatusCode::CONFLICT, "Two-step verification is already on."),
        MfaError::NoSetup => (StatusCode::CONFLICT, "That setup expired. Start again."),
        MfaError::UnknownChallenge => (StatusCode::GONE, "That sign-in expired. Please sign in again."),
        MfaError::Reauth(ReauthError::Required | ReauthError::WrongPassword) => {
            (StatusCode::FORBIDDEN, "For your security, enter your current password to continue (or sign in again).")
        }
        MfaError::Reauth(ReauthError::SecondFactorRequired) => (
            StatusCode::FORBIDDEN,
            "For your security, confirm it is you with your authenticator app first (“Verify now”).",
        ),
        MfaError::Reauth(ReauthError::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Wait a minute and try again.")
        }
        MfaError::Reauth(ReauthError::Hash(h)) => return Err(h.into()),
        MfaError::Reauth(ReauthError::Store(s)) | MfaError::Store(s) => return Err(s.into()),
        MfaError::Session(s) => return Err(PageError::internal(&s)),
        MfaError::Token(t) => return Err(PageError::internal(&t)),
        MfaError::KeyMissing => return Err(PageError::internal(&e)),
    })
}

/// The code field: six digits, filled by the platform's one-time-code autofill.
fn code_field(id: &str, autofocus: bool) -> Markup {
    html! {
        div.field {
            label for=(id) { "Code from your authenticator app" }
            input id=(id) name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                pattern="[0-9 ]{6,7}" maxlength="7" required autofocus[autofocus];
        }
    }
}

fn recovery_field(id: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { "Recovery code" }
            input id=(id) name="recovery_code" type="text" autocomplete="off" autocapitalize="off" spellcheck="false"
                maxlength="24" placeholder="xxxx-xxxx-xxxx-xxxx" required;
        }
    }
}

/// A code or a recovery code, as a form sends it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProofForm {
    code: String,
    recovery_code: String,
    remember: String,
}

impl ProofForm {
    fn proof(&self) -> Option<Proof<'_>> {
        match (self.code.trim(), self.recovery_code.trim()) {
            (c, "") if !c.is_empty() && c.len() <= 16 => Some(Proof::Totp(c)),
            ("", r) if !r.is_empty() && r.len() <= 32 => Some(Proof::Recovery(r)),
            _ => None,
        }
    }
}

// --- The login's second step -------------------------------------------------------------

fn second_step_card(ctx: &PageCtx, error: Option<&str>, recovery_open: bool) -> Markup {
    let remember_days = ctx.state().config.mfa.remember_days;
    let action = format!("/auth/login/mfa{}", ctx.rt_query());
    html! {
        div.card {
            h1 { "Two-step verification" }
            p.lead { "Open your authenticator app and enter the code it shows for this account." }
            (alert("error", error))
            form method="post" action=(action) data-mfa-form {
                (fields::csrf(&ctx.csrf))
                (code_field("code", !recovery_open))
                @if remember_days > 0 {
                    div.field.check {
                        label {
                            input type="checkbox" name="remember" value="1";
                            " Remember this browser for " (remember_days) " days"
                        }
                    }
                }
                button type="submit" { "Verify" }
            }
            details open[recovery_open] {
                summary { "Use a recovery code instead" }
                p.meta { "Lost your phone? Each recovery code you saved works once." }
                form method="post" action=(action) {
                    (fields::csrf(&ctx.csrf))
                    (recovery_field("recovery_code"))
                    button.secondary type="submit" { "Use recovery code" }
                }
            }
            p.switch { a href=(ctx.login_url()) { "Sign in as someone else" } }
        }
    }
}

/// Back to the login page, saying why (no sign-in waits in this browser, or it expired).
fn expired(ctx: &PageCtx) -> Response {
    ctx.flash(Flash::Error, "That sign-in expired. Please sign in again.");
    ctx.redirect(&ctx.login_url())
}

/// `GET /auth/login/mfa`.
pub async fn second_step_page(ctx: PageCtx) -> Result<Response, PageError> {
    if ctx.waiting_sign_in().is_none() {
        return Ok(expired(&ctx));
    }
    Ok(ctx.html(StatusCode::OK, "Two-step verification", second_step_card(&ctx, None, false)))
}

/// `POST /auth/login/mfa`.
pub async fn second_step(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<ProofForm>,
) -> Result<Response, PageError> {
    let Some((id, binding)) = ctx.waiting_sign_in() else { return Ok(expired(&ctx)) };
    let recovery = !form.recovery_code.trim().is_empty();
    let Some(proof) = form.proof() else {
        let card = second_step_card(&ctx, Some("Enter the code."), recovery);
        return Ok(ctx.html(StatusCode::BAD_REQUEST, "Two-step verification", card));
    };
    let remember = form.remember == "1";
    match ctx.state().services.signins().second_factor(id, Some(binding), proof, remember, &client).await {
        Ok(signed) => {
            let next = ctx.finish(Completion::SignedIn(signed), &ctx.return_to).await;
            Ok(ctx.redirect(&next))
        }
        Err(MfaError::UnknownChallenge) => Ok(expired(&ctx)),
        Err(e) => {
            let (status, message) = refusal(e)?;
            Ok(ctx.html(status, "Two-step verification", second_step_card(&ctx, Some(message), recovery)))
        }
    }
}

// --- Setting up an authenticator app -----------------------------------------------------

/// The secret as the app takes it: the QR code (rendered here, no third party sees the
/// secret), the text to type, and the code that confirms it.
fn setup_card(ctx: &PageCtx, setup: &Setup, action: &str, lead: &str, error: Option<&str>) -> Markup {
    // The renderer's SVG is ours (no user text in it); its XML declaration has no place in HTML.
    let svg = setup.qr_svg.find("<svg").map_or("", |i| &setup.qr_svg[i..]);
    let grouped: Vec<String> =
        setup.secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    html! {
        div.card {
            h1 { "Set up your authenticator app" }
            p.lead { (lead) }
            (alert("error", error))
            ol.steps {
                li {
                    "Scan this code with an authenticator app (1Password, Google Authenticator, Microsoft Authenticator, Aegis, Bitwarden…)."
                    div.qr role="img" aria-label="QR code of your two-step verification secret" { (PreEscaped(svg)) }
                }
                li {
                    "Can't scan it? Enter this key in the app instead:"
                    div { code.secret data-mfa-secret=(setup.secret) { (grouped.join(" ")) } }
                    a.small href=(setup.otpauth_uri) { "Open in an authenticator app on this device" }
                }
                li {
                    "Type the 6-digit code the app now shows."
                    form method="post" action=(action) {
                        (fields::csrf(&ctx.csrf))
                        (code_field("code", true))
                        button type="submit" { "Turn on two-step verification" }
                    }
                }
            }
        }
    }
}

/// The recovery codes, shown once: copy, download, and type one back to go on.
fn codes_card(ctx: &PageCtx, codes: &[String], then: &str, error: Option<&str>) -> Markup {
    let text = format!(
        "{} recovery codes\nEach works once, instead of a code from your authenticator app.\n\n{}\n",
        ctx.state().config.ui.product_name,
        codes.join("\n")
    );
    let href = format!("data:text/plain;charset=utf-8,{}", return_to::encode(&text));
    html! {
        div.card {
            h1 { "Save your recovery codes" }
            p.lead { "If you lose your phone, each of these codes signs you in once. This is the only time they are shown: keep them somewhere safe, like a password manager." }
            (alert("error", error))
            ol.codes data-recovery-codes { @for c in codes { li { code { (c) } } } }
            div.row {
                button.secondary.small type="button" data-copy-codes hidden { "Copy" }
                a.button.secondary.small href=(href) download="recovery-codes.txt" { "Download" }
            }
            form method="post" action={ "/auth/mfa/recovery-codes/saved?return_to=" (return_to::encode(then)) } data-saved-form {
                (fields::csrf(&ctx.csrf))
                @for c in codes { input type="hidden" name="shown" value=(c); }
                div.field {
                    label for="saved_code" { "Type one of them to confirm you saved them" }
                    input id="saved_code" name="code" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" maxlength="24" required;
                }
                button type="submit" { "I saved them" }
            }
        }
    }
}

/// `shown` and `code` of the "I saved them" form (the codes come back only to be shown again
/// after a typo: this page is the only place they exist in the clear).
#[derive(Default)]
pub struct SavedForm {
    code: String,
    shown: Vec<String>,
}

impl<'de> Deserialize<'de> for SavedForm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs: Vec<(String, String)> = Deserialize::deserialize(d)?;
        let mut form = SavedForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "code" => form.code = v,
                "shown" if form.shown.len() < 10 && v.len() <= 24 => form.shown.push(v),
                _ => {}
            }
        }
        Ok(form)
    }
}

/// `POST /auth/mfa/recovery-codes/saved`: the code typed back is one of the account's unused
/// recovery codes (none is used) → on to `return_to`.
pub async fn saved(ctx: PageCtx, UserForm(who, form): UserForm<SavedForm>) -> Result<Response, PageError> {
    let mfa = ctx.state().services.mfa();
    let error = match mfa.holds_recovery_code(&who, &form.code).await {
        Ok(true) => {
            ctx.flash(Flash::Success, "Two-step verification is on. Keep your recovery codes safe.");
            return Ok(ctx.redirect(&ctx.return_to));
        }
        Ok(false) => "That is not one of the codes above. Check what you saved and type it again.",
        Err(e) => refusal(e)?.1,
    };
    let card = codes_card(&ctx, &form.shown, &ctx.return_to, Some(error));
    Ok(ctx.html(StatusCode::UNPROCESSABLE_ENTITY, "Recovery codes", card))
}

// --- Enrolment a policy requires during a sign-in ---------------------------------------------

const ENROL_LEAD: &str =
    "Your organization requires two-step verification. Set it up now to finish signing in: it takes a minute.";

/// `GET /auth/login/mfa/enroll`: the secret of the waiting sign-in (shown again on reload).
pub async fn enrol_page(ctx: PageCtx) -> Result<Response, PageError> {
    let Some((id, binding)) = ctx.waiting_sign_in() else { return Ok(expired(&ctx)) };
    match ctx.state().services.signins().enrol_setup(id, Some(binding), true).await {
        Ok(setup) => {
            let action = format!("/auth/login/mfa/enroll{}", ctx.rt_query());
            Ok(ctx.html(
                StatusCode::OK,
                "Set up two-step verification",
                setup_card(&ctx, &setup, &action, ENROL_LEAD, None),
            ))
        }
        Err(MfaError::UnknownChallenge) => Ok(expired(&ctx)),
        Err(e) => {
            let (status, message) = refusal(e)?;
            Ok(ctx.html(status, "Set up two-step verification", html! { div.card { (alert("error", Some(message))) } }))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    code: String,
    current_password: String,
}

/// `POST /auth/login/mfa/enroll`: the code confirms the app; signed in, the recovery codes.
pub async fn enrol(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, PageError> {
    let Some((id, binding)) = ctx.waiting_sign_in() else { return Ok(expired(&ctx)) };
    let signins = ctx.state().services.signins();
    let code = if form.code.len() <= 16 { form.code.trim() } else { "" };
    match signins.enrol_confirm(id, Some(binding), code, &client).await {
        Ok(enrolled) => {
            let then = ctx.finish(Completion::SignedIn(enrolled.signed), &ctx.return_to).await;
            Ok(ctx.html(StatusCode::OK, "Recovery codes", codes_card(&ctx, &enrolled.recovery_codes, &then, None)))
        }
        Err(MfaError::UnknownChallenge) => Ok(expired(&ctx)),
        Err(e) => {
            let (status, message) = refusal(e)?;
            let setup = signins.enrol_setup(id, Some(binding), true).await;
            let Ok(setup) = setup else { return Ok(expired(&ctx)) };
            let action = format!("/auth/login/mfa/enroll{}", ctx.rt_query());
            Ok(ctx.html(
                status,
                "Set up two-step verification",
                setup_card(&ctx, &setup, &action, ENROL_LEAD, Some(message)),
            ))
        }
    }
}

// --- The account page --------------------------------------------------------------------

/// The account page's "Two-step verification" section.
pub async fn account_section(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let services = &ctx.state().services;
    let roles: Vec<PlatformRole> =
        who.role_claims().iter().filter_map(|r| PlatformRole::from_claim(r.as_str())).collect();
    let status: MfaStatus = services.mfa().status(who.user_id(), &roles).await?;
    let privilege = services.mfa().privilege(who).await?;
    let csrf = fields::csrf(&ctx.csrf);
    Ok(html! {
        section.block id="mfa" aria-labelledby="mfa-h" {
            h2 id="mfa-h" { "Two-step verification" }
            @if status.totp_enabled {
                p {
                    span.badge { "On" } " Signing in asks for a code from your authenticator app. "
                    (status.recovery_remaining) " recovery code" @if status.recovery_remaining != 1 { "s" } " left."
                    @if status.locked { " " span.badge.warn { "Locked" } " Too many incorrect codes: sign in with a recovery code to unlock it." }
                }
                @if privilege == Privilege::SecondFactor {
                    p.meta {
                        "Changing your email, password or sign-in methods needs a fresh code. "
                        a href={ "/auth/mfa/verify?return_to=" (return_to::encode("/auth/account")) } { "Verify now" }
                    }
                }
                details {
                    summary { "Make new recovery codes" }
                    p.meta { "The codes you have now stop working." }
                    form method="post" action="/auth/account/mfa/recovery-codes" {
                        (csrf)
                        (code_field("regen_code", false))
                        button.secondary type="submit" { "Make new codes" }
                    }
                }
                details {
                    summary { "Turn off two-step verification" }
                    p.meta { "Signing in will need only your password, passkey or provider again." }
                    form method="post" action="/auth/account/mfa/disable" {
                        (csrf)
                        (code_field("disable_code", false))
                        button.danger type="submit" { "Turn off" }
                    }
                    form method="post" action="/auth/account/mfa/disable" {
                        (csrf)
                        (recovery_field("disable_recovery"))
                        button.danger type="submit" { "Turn off with a recovery code" }
                    }
                }
            } @else {
                p.meta {
                    "Protect your account with a code from an authenticator app on your phone, asked after your password (or a sign-in provider). A passkey is two factors already."
                    @if status.required { " Your organization requires it: you will be asked to set it up at your next sign-in." }
                }
                form method="post" action="/auth/account/mfa/setup" {
                    (csrf)
                    @if privilege == Privilege::Password { (fields::reauth("mfa_current_password")) }
                    button.secondary type="submit" { "Set up an authenticator app" }
                }
            }
        }
    })
}

const ACCOUNT_LEAD: &str = "Each sign-in will ask for a code from the app after your password or provider.";

/// Back to the account page's section, saying what went wrong.
fn back_with(ctx: &PageCtx, message: &str) -> Response {
    ctx.flash(Flash::Error, message);
    ctx.redirect("/auth/account")
}

/// `POST /auth/account/mfa/setup` (privileged): the new secret, to confirm.
pub async fn account_setup(ctx: PageCtx, UserForm(who, form): UserForm<CodeForm>) -> Result<Response, PageError> {
    let password = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match ctx.state().services.mfa().setup(&who, password).await {
        Ok(setup) => {
            let card = setup_card(&ctx, &setup, "/auth/account/mfa/confirm", ACCOUNT_LEAD, None);
            Ok(ctx.html(StatusCode::OK, "Set up two-step verification", card))
        }
        Err(e) => Ok(back_with(&ctx, refusal(e)?.1)),
    }
}

/// `POST /auth/account/mfa/confirm`: the code turns it on; the recovery codes.
pub async fn account_confirm(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<CodeForm>,
) -> Result<Response, PageError> {
    let mfa = ctx.state().services.mfa();
    let code = if form.code.len() <= 16 { form.code.trim() } else { "" };
    match mfa.confirm(&who, code, &client).await {
        Ok(codes) => Ok(ctx.html(StatusCode::OK, "Recovery codes", codes_card(&ctx, &codes, "/auth/account", None))),
        Err(e) => {
            let (status, message) = refusal(e)?;
            match mfa.pending_setup(&who).await {
                Ok(Some(setup)) => {
                    let card = setup_card(&ctx, &setup, "/auth/account/mfa/confirm", ACCOUNT_LEAD, Some(message));
                    Ok(ctx.html(status, "Set up two-step verification", card))
                }
                _ => Ok(back_with(&ctx, "That setup expired. Start again.")),
            }
        }
    }
}

/// `POST /auth/account/mfa/disable`: a code or a recovery code.
pub async fn account_disable(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<ProofForm>,
) -> Result<Response, PageError> {
    let Some(proof) = form.proof() else { return Ok(back_with(&ctx, "Enter a code.")) };
    match ctx.state().services.mfa().disable(&who, proof, &client).await {
        Ok(()) => {
            ctx.flash(Flash::Success, "Two-step verification is off.");
            Ok(ctx.redirect("/auth/account"))
        }
        Err(e) => Ok(back_with(&ctx, refusal(e)?.1)),
    }
}

/// `POST /auth/account/mfa/recovery-codes` (privileged, with a code): a new set.
pub async fn account_regenerate(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<CodeForm>,
) -> Result<Response, PageError> {
    let code = if form.code.len() <= 16 { form.code.trim() } else { "" };
    match ctx.state().services.mfa().regenerate(&who, code, &client).await {
        Ok(codes) => Ok(ctx.html(StatusCode::OK, "Recovery codes", codes_card(&ctx, &codes, "/auth/account", None))),
        Err(e) => Ok(back_with(&ctx, refusal(e)?.1)),
    }
}

// --- Step-up -----------------------------------------------------------------------------

fn verify_card(ctx: &PageCtx, error: Option<&str>, recovery_open: bool) -> Markup {
    let action = format!("/auth/mfa/verify{}", ctx.rt_query());
    html! {
        div.card {
            h1 { "Confirm it's you" }
            p.lead { "Enter the code from your authenticator app to continue." }
            (alert("error", error))
            form method="post" action=(action) {
                (fields::csrf(&ctx.csrf))
                (code_field("code", !recovery_open))
                button type="submit" { "Verify" }
            }
            details open[recovery_open] {
                summary { "Use a recovery code instead" }
                form method="post" action=(action) {
                    (fields::csrf(&ctx.csrf))
                    (recovery_field("recovery_code"))
                    button.secondary type="submit" { "Use recovery code" }
                }
            }
            p.switch { a href="/auth/account" { "Back to your account" } }
        }
    }
}

fn not_enabled_card() -> Markup {
    html! {
        div.card {
            h1 { "Two-step verification is not on" }
            p.lead { "This needs a code from an authenticator app, and your account has none yet. Set one up from your account page, then come back." }
            p { a.button href="/auth/account" { "Set it up" } }
        }
    }
}

/// `GET /auth/mfa/verify?return_to=`.
pub async fn verify_page(ctx: PageCtx, PageUser(who): PageUser) -> Result<Response, PageError> {
    let roles: Vec<PlatformRole> =
        who.role_claims().iter().filter_map(|r| PlatformRole::from_claim(r.as_str())).collect();
    let status = ctx.state().services.mfa().status(who.user_id(), &roles).await?;
    if !status.totp_enabled {
        return Ok(ctx.html(StatusCode::OK, "Two-step verification", not_enabled_card()));
    }
    Ok(ctx.html(StatusCode::OK, "Confirm it's you", verify_card(&ctx, None, status.locked)))
}

/// `POST /auth/mfa/verify`: a fresh second factor for this session; on to `return_to`.
pub async fn verify(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<ProofForm>,
) -> Result<Response, PageError> {
    let recovery = !form.recovery_code.trim().is_empty();
    let Some(proof) = form.proof() else {
        return Ok(ctx.html(
            StatusCode::BAD_REQUEST,
            "Confirm it's you",
            verify_card(&ctx, Some("Enter the code."), recovery),
        ));
    };
    match ctx.state().services.mfa().step_up(&who, proof, &client).await {
        Ok(issued) => {
            ctx.set_session(&issued);
            Ok(ctx.redirect(&ctx.return_to))
        }
        Err(MfaError::NotEnabled) => Ok(ctx.html(StatusCode::CONFLICT, "Two-step verification", not_enabled_card())),
        Err(e) => {
            let (status, message) = refusal(e)?;
            Ok(ctx.html(status, "Confirm it's you", verify_card(&ctx, Some(message), recovery)))
        }
    }
}
