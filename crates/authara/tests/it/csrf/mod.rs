//! CSRF: the double-submit cookie, every state-changing route's refusal, and the pages' order of
//! checks.

mod cookie;
mod pages;
mod routes;
