//! Id newtypes: a session id cannot be passed where a user id is expected.

use uuid::Uuid;

/// A new id for a row of a table that grows with every sign-in or refresh (sessions, refresh
/// tokens, audit rows, events, deliveries, emails): a UUIDv7, whose first 48 bits are the
/// time in milliseconds and whose rest is random (the `uuid` crate keeps one process's ids in
/// creation order within a millisecond too).
///
/// why: a random (v4) key lands on a random leaf of the table's primary-key index, so at
/// millions of rows each insert reads and dirties a page the cache rarely holds, and on
/// PostgreSQL writes that whole page to the WAL once per checkpoint; time-ordered keys all
/// land on the index's rightmost pages. The time they reveal is the row's creation time,
/// which the rows' owners see anyway (a session's first token carries it as `iat`). Users and
/// organizations keep random ids: theirs are handed out and would date the account.
pub fn time_ordered_uuid() -> Uuid {
    Uuid::now_v7()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            pub fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A session's id (the `sid` claim).
    SessionId
);
id_type!(
    /// An organization's id (the `org_id` claim).
    OrgId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_in_creation_order_and_differ() {
        let ids: Vec<Uuid> = (0..1000).map(|_| time_ordered_uuid()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "each id sorts after the one before");
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        let before = ids[0].get_timestamp().unwrap().to_unix();
        let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
        assert!(before.0 <= now && before.0 + 5 >= now, "the time in the id is now");
    }
}
