//! Sessions and the refresh rotation statement, the store's hottest write.

use authara::domain::{SessionId, UserId};
use authara::store::Store;
use authara::store::refresh::NewRefresh;
use authara::store::sessions::NewSession;

use crate::accounts::store::{add_user, store};
use crate::harness::{Engine, on_both_engines};

const FAR: i64 = i64::MAX / 2;
const DUE: i64 = i64::MAX;

/// A session of `user` with one refresh token whose hash is `hash`.
async fn session(store: &Store, user: UserId, hash: &[u8]) -> SessionId {
    let mut tx = store.begin().await.unwrap();
    let org = tx.default_membership(user).await.unwrap().unwrap().organization_id;
    let id = SessionId::new();
    let s = NewSession {
        id,
        user_id: user,
        organization_id: org,
        user_agent: "t",
        ip: None,
        now_ms: 1,
        expires_at_ms: FAR,
        amr: "pwd",
        mfa: false,
    };
    tx.insert_session(&s).await.unwrap();
    let r = NewRefresh { session_id: id, organization_id: org, token_hash: hash, now_ms: 1, expires_at_ms: FAR };
    tx.insert_refresh(&r).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn rotation_consumes_a_token_once_with_one_successor(engine: Engine) {
    let (_db, store) = store(engine).await;
    let user = add_user(&store, "rot@example.com", "rot").await;
    session(&store, user, b"t0").await;
    // Two rotations of one token race; only one may consume it and insert a successor.
    let race = |successor: &'static [u8]| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let out = tx.rotate_refresh_if_due(b"t0", 10, DUE, successor, FAR).await.unwrap().unwrap();
            tx.commit().await.unwrap();
            out.1
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(race(b"s1")), tokio::spawn(race(b"s2")));
    let rotated = [a.unwrap(), b.unwrap()];
    assert_eq!(rotated.iter().filter(|r| **r).count(), 1, "exactly one rotation: {rotated:?}");
    let winner: &[u8] = if rotated[0] { b"s1" } else { b"s2" };
    let loser: &[u8] = if rotated[0] { b"s2" } else { b"s1" };
    assert!(store.refresh_by_hash(winner).await.unwrap().is_some(), "the winner's successor exists");
    assert!(store.refresh_by_hash(loser).await.unwrap().is_none(), "the loser inserted nothing");
    let consumed = store.refresh_by_hash(b"t0").await.unwrap().unwrap();
    assert_eq!(consumed.consumed_at_ms, Some(10), "the token is marked consumed, not deleted");

    // The context is complete: user, membership role, platform roles.
    let mut tx = store.begin().await.unwrap();
    let ctx = tx.refresh_context_for_update(winner).await.unwrap().unwrap();
    assert_eq!(ctx.token.user_id, user);
    assert_eq!(ctx.org_role, Some(authara::domain::OrgRole::Owner));
    assert!(!ctx.user_disabled);
}

async fn a_rolled_back_rotation_leaves_the_token_fresh(engine: Engine) {
    let (_db, store) = store(engine).await;
    let user = add_user(&store, "back@example.com", "back").await;
    session(&store, user, b"t0").await;
    let mut tx = store.begin().await.unwrap();
    let (_, rotated) = tx.rotate_refresh_if_due(b"t0", 10, DUE, b"s1", FAR).await.unwrap().unwrap();
    assert!(rotated);
    drop(tx);
    let row = store.refresh_by_hash(b"t0").await.unwrap().unwrap();
    assert_eq!(row.consumed_at_ms, None, "dropping the transaction undid the consume");
    assert!(store.refresh_by_hash(b"s1").await.unwrap().is_none(), "and the successor");
    // Not due: nothing rotates, the context is still read.
    let mut tx = store.begin().await.unwrap();
    let (ctx, rotated) = tx.rotate_refresh_if_due(b"t0", 10, 0, b"s1", FAR).await.unwrap().unwrap();
    assert!(!rotated);
    assert_eq!(ctx.token.consumed_at_ms, None);
}

async fn a_user_revokes_only_their_own_sessions(engine: Engine) {
    let (_db, store) = store(engine).await;
    let alice = add_user(&store, "alice@example.com", "alice").await;
    let bob = add_user(&store, "bob@example.com", "bob").await;
    let a1 = session(&store, alice, b"a1").await;
    let a2 = session(&store, alice, b"a2").await;
    let b1 = session(&store, bob, b"b1").await;
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.revoke_own_session(alice, b1, 5).await.unwrap(), "bob's session is not alice's to revoke");
    assert_eq!(tx.revoke_other_sessions(alice, a1, 5).await.unwrap(), vec![a2]);
    tx.commit().await.unwrap();
    assert_eq!(store.active_session_count(bob, 6).await.unwrap(), 1);
    assert_eq!(store.active_session_count(alice, 6).await.unwrap(), 1);
    assert!(store.refresh_by_hash(b"a2").await.unwrap().is_none(), "revoked sessions lose their refresh tokens");
    assert_eq!(store.sessions_revoked_since(5).await.unwrap(), vec![a2]);
}

on_both_engines!(
    rotation_consumes_a_token_once_with_one_successor,
    a_rolled_back_rotation_leaves_the_token_fresh,
    a_user_revokes_only_their_own_sessions,
);
