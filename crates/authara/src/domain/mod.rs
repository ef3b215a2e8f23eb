//! Value types parsed once at the edge: ids, roles, organization kinds, challenge purposes,
//! emails, passwords, usernames. The ground floor beside `config`: imports nothing of ours.

mod ids;
mod input;
mod roles;

pub use ids::{OrgId, SessionId, UserId};
pub use input::{EmailAddress, InputError, NewPassword, Username, generate_username, is_common_password, truncate};
pub use roles::{Audience, ChallengePurpose, InvitationStatus, OrgKind, OrgRole, PlatformRole, UnknownValue};
