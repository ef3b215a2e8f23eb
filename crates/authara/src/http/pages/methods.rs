//! The account page's "Sign-in methods" section (`#linked-providers-section`, behavior.md §13):
//! the password, each configured provider (link, unlink) and the passkeys (rename, remove,
//! add). The account page shows it; the passkey script swaps it in after adding one.

use maud::{Markup, html};

use super::fields;
use super::{PageCtx, PageError};
use crate::clock::human;
use crate::services::auth::Principal;
use crate::services::passkeys::MAX_NAME_CHARS;

/// The "Sign-in methods" section (`#linked-providers-section`, behavior.md §13), which the page
/// script also swaps in after adding a passkey. Each sign-in feature adds its rows.
pub async fn sign_in_methods(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let provider_rows = provider_rows(ctx, who).await?;
    let passkey_rows = passkey_rows(ctx, who).await?;
    Ok(html! {
        section.block id="linked-providers-section" aria-labelledby="methods-h" {
            h2 id="methods-h" { "Sign-in methods" }
            (provider_rows)
            (passkey_rows)
        }
    })
}

/// The provider rows of the account page's "Sign-in methods" section
/// (`#linked-providers-section`, behavior.md §13): the password, each configured provider with
/// link or unlink.
async fn provider_rows(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let oauth = ctx.state().services.oauth();
    let linked = oauth.linked(who.user_id()).await?;
    let has_password = oauth.has_password(who.user_id()).await?;
    let providers = oauth.providers();
    let csrf = fields::csrf(&ctx.csrf);
    // Providers linked earlier but no longer configured are listed too, so they can be removed.
    let mut names: Vec<(String, String, bool)> =
        providers.iter().map(|p| (p.name.clone(), p.display_name.clone(), p.code_flow)).collect();
    for l in &linked {
        if !names.iter().any(|(n, _, _)| *n == l.provider) {
            names.push((l.provider.clone(), oauth.display_name(&l.provider), false));
        }
    }
    Ok(html! {
            ul.sessions.methods {
                li data-method="password" {
                    div {
                        div.device { "Password" }
                        div.meta { @if has_password { "Set" } @else { "Not set" } }
                    }
                }
                @for (name, display, code_flow) in &names {
                    @let link = linked.iter().find(|l| l.provider == *name);
                    li data-provider=(name) {
                        div {
                            div.device { (display) }
                            div.meta {
                                @if let Some(l) = link { "Linked " (human(l.created_at_ms)) } @else { "Not linked" }
                            }
                        }
                        @if link.is_some() {
                            details {
                                summary { "Unlink" }
                                form method="post" action={ "/auth/providers/" (name) "/unlink" } {
                                    (csrf)
                                    (fields::reauth(&format!("unlink-{name}-password")))
                                    button.secondary.small type="submit" aria-label={ "Unlink " (display) } { "Unlink" }
                                }
                            }
                        } @else if name == "google" && !*code_flow {
                            (super::google::button(ctx, "link", None))
                        } @else if *code_flow {
                            details {
                                summary { "Link" }
                                form method="post" action={ "/auth/oauth/" (name) "/link" } {
                                    (csrf)
                                    (fields::reauth(&format!("link-{name}-password")))
                                    button.secondary.small type="submit" aria-label={ "Link " (display) } { "Link " (display) }
                                }
                            }
                        }
                    }
                }
            }
    })
}

/// The passkey rows of the account page's sign-in methods (name, created, last used, synced or
/// device-bound), each with rename and delete forms, and the button that adds one.
async fn passkey_rows(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let passkeys = ctx.state().services.passkeys();
    if !passkeys.available() {
        return Ok(html! {});
    }
    let list = passkeys.list(who.user_id()).await?;
    let csrf = super::fields::csrf(&ctx.csrf);
    Ok(html! {
        h3 { "Passkeys" }
        @if list.is_empty() {
            p.meta { "No passkeys yet." }
        } @else {
            ul.sessions.passkeys {
                @for p in &list {
                    li data-passkey-row {
                        div {
                            div.device {
                                span data-passkey-name { (p.name) }
                                @if p.backup_eligible { span.badge { "Synced" } } @else { span.badge { "This device only" } }
                                @if p.clone_warning { span.badge.warn { "Possibly copied" } }
                            }
                            div.meta {
                                "Added " (human(p.created_at_ms)) " · "
                                @match p.last_used_at_ms { Some(t) => { "last used " (human(t)) }, None => "never used" }
                            }
                            details {
                                summary { "Rename or remove" }
                                form method="post" action={ "/auth/passkeys/" (p.id) "/rename" } {
                                    (csrf)
                                    div.inline {
                                        div.field {
                                            label for={ "pk-name-" (p.id) } { "Name" }
                                            input id={ "pk-name-" (p.id) } name="name" type="text" required maxlength=(MAX_NAME_CHARS) value=(p.name);
                                        }
                                        button.secondary.small type="submit" { "Rename" }
                                    }
                                }
                                form method="post" action={ "/auth/passkeys/" (p.id) "/delete" } {
                                    (csrf)
                                    (super::fields::reauth(&format!("pk-pw-{}", p.id)))
                                    button.danger.small type="submit" aria-label={ "Remove " (p.name) } { "Remove passkey" }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.alert.error role="alert" hidden data-passkey-error {}
        button.secondary type="button" hidden data-passkey-register { "Add a passkey" }
    })
}
