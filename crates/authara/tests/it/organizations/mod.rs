//! Organizations: memberships, switching, management, invitations (API and pages), per
//! organization mode. `api.rs` holds the helpers other areas use (`start`, `invite`, `team`…).

pub mod api;
mod invitation_pages;
mod member_copies;
mod pages;
mod paging;
