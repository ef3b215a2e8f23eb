//! The emails we send: plain text and HTML, compiled into the binary, with the product name.

use maud::{Markup, html};

use super::mailer::Email;

use super::events::templates::{EMAIL_CHANGE_CODE, PASSWORD_RESET_CODE, SIGNUP_CODE};

/// The HTML every email shares: the product name on a card, then `body`.
fn frame(product: &str, body: Markup) -> Markup {
    html! {
        (maud::DOCTYPE)
        html {
            body style="font-family: system-ui, sans-serif; color: #1c1f2a; background: #f6f7fb; padding: 24px;" {
                div style="max-width: 480px; margin: 0 auto; background: #fff; border-radius: 12px; padding: 28px;" {
                    p style="font-weight: 700; font-size: 18px; margin: 0 0 16px;" { (product) }
                    (body)
                }
            }
        }
    }
}

/// Renders a code email; `None` for an unknown template.
pub fn code_email(template: &str, to: &str, code: &str, minutes: i64, product: &str) -> Option<Email> {
    let (subject, intro) = match template {
        SIGNUP_CODE => ("Your verification code", format!("Use this code to finish creating your {product} account.")),
        PASSWORD_RESET_CODE => {
            ("Your password reset code", format!("Use this code to choose a new password for {product}."))
        }
        EMAIL_CHANGE_CODE => (
            "Verify your new email address",
            format!("Use this code to confirm this address for your {product} account."),
        ),
        _ => return None,
    };
    let outro = format!("The code expires in {minutes} minutes. If you did not ask for it, you can ignore this email.");
    let text = format!("{intro}\n\n    {code}\n\n{outro}\n\n-- {product}\n");
    let html = frame(
        product,
        html! {
            p { (intro) }
            p style="font-size: 32px; font-weight: 800; letter-spacing: 6px; margin: 20px 0;" { (code) }
            p style="color: #5b6172; font-size: 14px;" { (outro) }
        },
    );
    Some(Email { to: to.to_owned(), subject: subject.to_owned(), text, html: html.into_string() })
}

/// What an invitation email says.
#[derive(Debug, Clone, Copy)]
pub struct Invitation<'a> {
    pub organization: &'a str,
    /// `PUBLIC_URL/auth/invitations/accept?token=…`.
    pub url: &'a str,
    /// The raw invitation code, with `AUTHARA_INVITATION_EMAIL_INCLUDE_CODE=true`.
    pub code: Option<&'a str>,
    /// When the invitation expires, for people.
    pub expires: &'a str,
}

/// An organization's name as an invitation email shows it: in double quotes (its words are the
/// organization's, not ours: "Acme. Your account is suspended" cannot pass for our sentence),
/// with any double quote inside made single (it cannot close ours) and invisible characters
/// dropped (names stored before they were refused).
fn quoted_name(name: &str) -> String {
    format!("\"{}\"", crate::domain::without_hidden(name).replace('"', "'"))
}

/// The invitation to join an organization.
pub fn invitation_email(to: &str, i: &Invitation<'_>, product: &str) -> Email {
    let name = quoted_name(i.organization);
    let subject = format!("You're invited to {name}");
    let intro = format!("You have been invited to join the organization {name} on {product}.");
    let outro =
        format!("The invitation expires on {}. If you did not expect it, you can ignore this email.", i.expires);
    let code_text = i.code.map(|c| format!("Invitation code: {c}\n\n")).unwrap_or_default();
    let text = format!("{intro}\n\nAccept the invitation: {}\n\n{code_text}{outro}\n\n-- {product}\n", i.url);
    let html = frame(
        product,
        html! {
            p { (intro) }
            p { a href=(i.url) { "Accept the invitation" } }
            @if let Some(code) = i.code {
                p { "Invitation code: " code { (code) } }
            }
            p style="color: #5b6172; font-size: 14px;" { (outro) }
        },
    );
    Email { to: to.to_owned(), subject, text, html: html.into_string() }
}

/// The notice to an account's current address that someone asked to move it elsewhere.
pub fn email_change_notice(to: &str, new_email: &str, cancel_url: &str, product: &str) -> Email {
    let subject = format!("Your {product} email address is being changed");
    let intro =
        format!("Someone signed in to your {product} account asked to change its email address to {new_email}.");
    let outro = "If this was you, there is nothing to do. If it was not, cancel the change with the link below and change your password.";
    let text = format!("{intro}\n\n{outro}\n\nCancel the change: {cancel_url}\n\n-- {product}\n");
    let html = frame(
        product,
        html! {
            p { (intro) }
            p { (outro) }
            p { a href=(cancel_url) { "Cancel the change" } }
        },
    );
    Email { to: to.to_owned(), subject, text, html: html.into_string() }
}

/// What a security notice says (`email_jobs.template_data` of a `security_notice` job).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Notice {
    pub notice: String,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// The mail to an account's address when a way to sign in to it changed: what happened, and
/// what to do if it was not the owner. `None` for a notice we do not know.
pub fn security_notice(to: &str, n: &Notice, product: &str) -> Option<Email> {
    let detail = n.detail.as_deref().unwrap_or_default();
    let (subject, what) = match n.notice.as_str() {
        "password_changed" => {
            (format!("Your {product} password was changed"), "The password of your account was changed.".to_owned())
        }
        "password_added" => (
            format!("A password was added to your {product} account"),
            "A password was added to your account.".to_owned(),
        ),
        "password_reset" => (
            format!("Your {product} password was reset"),
            "The password of your account was reset with a code sent to this address, and every device was signed out."
                .to_owned(),
        ),
        "password_removed" => (
            format!("The password was removed from your {product} account"),
            "The password of your account was removed; it signs in with its other methods.".to_owned(),
        ),
        "passkey_added" => (
            format!("A passkey was added to your {product} account"),
            format!("A passkey named “{detail}” was added to your account."),
        ),
        "passkey_removed" => (
            format!("A passkey was removed from your {product} account"),
            format!("The passkey named “{detail}” was removed from your account."),
        ),
        "provider_linked" => (
            format!("A sign-in method was added to your {product} account"),
            format!("Signing in with {detail} was linked to your account."),
        ),
        "provider_unlinked" => (
            format!("A sign-in method was removed from your {product} account"),
            format!("Signing in with {detail} was removed from your account."),
        ),
        "mfa_enabled" => (
            format!("Two-step verification is on for your {product} account"),
            "An authenticator app was set up for your account: signing in now also asks for its code.".to_owned(),
        ),
        "mfa_disabled" => (
            format!("Two-step verification was turned off for your {product} account"),
            "The authenticator app and the recovery codes were removed from your account.".to_owned(),
        ),
        "mfa_reset" => (
            format!("An administrator turned off two-step verification for your {product} account"),
            "An administrator removed the authenticator app and the recovery codes from your account. Set them up \
             again from your account page."
                .to_owned(),
        ),
        "recovery_code_used" => (
            format!("A recovery code was used for your {product} account"),
            format!(
                "A recovery code was used to sign in to your account or to confirm a change. {detail} of your \
                 recovery codes remain; you can make a new set from your account page."
            ),
        ),
        "recovery_codes_regenerated" => (
            format!("New recovery codes for your {product} account"),
            "A new set of recovery codes was made for your account; the previous ones no longer work.".to_owned(),
        ),
        "mfa_locked" => (
            format!("Two-step verification of your {product} account was locked"),
            "Too many incorrect codes were entered for your account, so its authenticator app is locked. Sign in \
             with a recovery code to unlock it. Someone who tries codes knows your password: change it."
                .to_owned(),
        ),
        "credentials_removed" => (
            format!("Your {product} email address was confirmed"),
            format!(
                "Your email address was just confirmed. These ways to sign in were added to the account before it \
                 was, by whoever held it then, and were removed: {}. Add again any that were yours.",
                n.removed.join(", ")
            ),
        ),
        _ => return None,
    };
    let outro = "If this was you, there is nothing to do. If it was not, reset your password now and review where \
                 you are signed in, from your account page.";
    let text = format!("{what}\n\n{outro}\n\n-- {product}\n");
    let html = frame(
        product,
        html! {
            p { (what) }
            p style="color: #5b6172; font-size: 14px;" { (outro) }
        },
    );
    Some(Email { to: to.to_owned(), subject, text, html: html.into_string() })
}
