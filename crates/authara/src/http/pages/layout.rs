//! The page frame and the error pages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::http::state::AppState;

/// The full document, or only the `#body` content for HTMX requests.
pub fn page(state: &AppState, hx: bool, title: &str, content: Markup) -> Markup {
    if hx {
        return content;
    }
    let product = &state.config.ui.product_name;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="referrer" content="same-origin";
                title { (title) " · " (product) }
                link rel="stylesheet" href=(state.assets.css_url());
                script src=(state.assets.js_url()) defer {}
            }
            body {
                a.sr-only href="#body" { "Skip to content" }
                header.top {
                    a.brand href="/" { span.mark aria-hidden="true" {} (product) }
                }
                main id="body" { (content) }
                footer { "Secured by " (product) }
            }
        }
    }
}

/// An alert box announced to screen readers.
pub fn alert(kind: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            div class={ "alert " (kind) } role=(if kind == "error" { "alert" } else { "status" }) { (m) }
        }
    }
}

/// A full error page in the same style. `detail` goes to the log, never to the page.
pub fn error_page(state: &AppState, hx: bool, status: StatusCode, detail: &str) -> Response {
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), detail, "page failed");
    }
    let (title, text) = match status.as_u16() {
        403 => ("Not allowed", "This form has expired or you cannot do this. Reload the page and try again."),
        404 => ("Page not found", "There is nothing at this address."),
        429 => ("Too many attempts", "Please wait a moment before trying again."),
        _ => ("Something went wrong", "We could not complete your request. Please try again in a moment."),
    };
    let body = html! {
        div.card {
            p.code aria-hidden="true" { (status.as_u16()) }
            h1 { (title) }
            p.lead { (text) }
            a.button href="/" { "Go to the home page" }
        }
    };
    (status, axum::response::Html(page(state, hx, title, body).into_string())).into_response()
}
