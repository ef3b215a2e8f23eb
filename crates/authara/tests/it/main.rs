//! The integration suite: one binary, laid out like the route table.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#![allow(clippy::disallowed_methods, reason = "the harness reads its own AUTHARA_TEST_* variables and uses real time")]

mod app;
mod contract;
mod harness;
mod smtp;

mod api;
mod email;

mod health;
mod migrations;
mod pages;
mod serve;
