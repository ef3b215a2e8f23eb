//! The internal API (`/auth/internal`): the bearer token, teams, invitations, and the lifecycle
//! routes of `contract/extensions.yaml`.

mod api;
pub mod lifecycle;
