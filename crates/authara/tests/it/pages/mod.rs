//! Hosted pages at the HTTP level: redirects, return_to, CSRF, HTMX, transparent refresh.
//! The browser suite (`tests/browser`) drives the same pages in Chromium.

mod account;
pub mod admin;
mod auth;
mod challenge;
mod invitations;
