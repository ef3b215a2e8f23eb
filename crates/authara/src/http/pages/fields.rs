//! Form fields shared by every page, so that names, autocomplete hints and limits are written
//! once.

use maud::{Markup, html};

/// The hidden CSRF field of every form.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// An email field (`name="email"` unless `name` says otherwise).
pub fn email(name: &str, label: &str, value: &str, autofocus: bool) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type="email" autocomplete="email" required autofocus[autofocus] value=(value);
        }
    }
}

/// An email address the form is for and that cannot be changed (an invitation's): shown
/// read-only, and hinted as the username so that password managers file the password under it.
/// It is not submitted (no `name`); the form carries what it stands for.
pub fn fixed_email(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="email" autocomplete="username" readonly value=(value);
        }
    }
}

/// Which password a field asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Password {
    /// The password the user has (sign in, confirmation).
    Current,
    /// A password being chosen: the input rules are shown and hinted to the browser.
    New,
}

pub fn password(name: &str, label: &str, kind: Password, autofocus: bool) -> Markup {
    let hint_id = format!("{name}-hint");
    html! {
        div.field {
            label for=(name) { (label) }
            @match kind {
                Password::Current => {
                    input id=(name) name=(name) type="password" autocomplete="current-password" required autofocus[autofocus];
                }
                Password::New => {
                    input id=(name) name=(name) type="password" autocomplete="new-password" required minlength="8" maxlength="128" aria-describedby=(hint_id) autofocus[autofocus];
                    div.hint id=(hint_id) { "At least 8 characters. Common passwords are refused." }
                }
            }
        }
    }
}

/// A new password that may be left empty (a signup that can go passwordless).
pub fn optional_new_password(name: &str, label: &str, hint: &str) -> Markup {
    let hint_id = format!("{name}-hint");
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type="password" autocomplete="new-password" minlength="8" maxlength="128" aria-describedby=(hint_id);
            div.hint id=(hint_id) { (hint) " Otherwise at least 8 characters; common passwords are refused." }
        }
    }
}

/// The current-password field of sensitive forms: needed unless the sign-in is recent (the
/// privileged-session rule). `id` tells several on one page apart.
pub fn reauth(id: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { "Current password" }
            input id=(id) name="current_password" type="password" autocomplete="current-password";
            div.hint { "Needed if you signed in more than a few minutes ago." }
        }
    }
}
