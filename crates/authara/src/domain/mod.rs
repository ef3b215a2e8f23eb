//! Value types parsed once at the edge: ids, roles, organization kinds, challenge purposes,
//! emails, passwords, usernames. The ground floor beside `config`: imports nothing of ours.

/// A closed set of values with one text form (`as_str`/`parse`), stored as text on both engines.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and wire) form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored form.
            pub fn parse(s: &str) -> Result<Self, $crate::domain::UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::domain::UnknownValue { what: $what, value: other.to_owned() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::UnknownValue;
            fn try_from(s: String) -> Result<Self, $crate::domain::UnknownValue> {
                Self::parse(&s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Stored as its text form on both engines; an unknown value fails to decode.
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(Self::parse(&text)?)
            }
        }
    };
}

mod activity;
mod client;
mod ids;
mod input;
mod roles;

pub use activity::{ActorKind, AuditAction, DeliveryStatus, EventType, JobStatus};
pub use client::ClientInfo;
pub use ids::{OrgId, SessionId, UserId, time_ordered_uuid};
pub use input::{
    EmailAddress, InputError, NewPassword, Username, generate_username, has_hidden_characters, is_common_password,
    is_hidden, truncate, without_hidden,
};
pub use roles::{Audience, ChallengePurpose, InvitationStatus, OrgKind, OrgRole, PlatformRole, UnknownValue};
