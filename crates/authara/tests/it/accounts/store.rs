//! Users, organizations and their cascade.

use authara::domain::{EmailAddress, OrgId, OrgKind, OrgRole, PlatformRole, UserId};
use authara::store::accounts::{NewOrg, NewUser};
use authara::store::{Store, StoreError};

use crate::harness::{Engine, TestDb, on_both_engines};

pub async fn store(engine: Engine) -> (TestDb, Store) {
    let db = TestDb::new(engine, true).await;
    let store = db.store().await;
    (db, store)
}

pub async fn add_user(store: &Store, email: &str, username: &str) -> UserId {
    let id = UserId::new();
    let email = EmailAddress::parse(email).unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(tx.insert_user(&NewUser { id, email: &email, username, verified: false, now_ms: 1 }).await.unwrap());
    let org = OrgId::new();
    tx.insert_org(&NewOrg { id: org, name: username, kind: OrgKind::Personal, created_by: id, now_ms: 1 })
        .await
        .unwrap();
    tx.insert_membership(org, id, OrgRole::Owner, 1).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn an_email_belongs_to_one_user_and_a_username_too(engine: Engine) {
    let (_db, store) = store(engine).await;
    add_user(&store, "one@example.com", "one").await;
    let email = EmailAddress::parse("one@example.com").unwrap();
    let mut tx = store.begin().await.unwrap();
    let taken = tx
        .insert_user(&NewUser { id: UserId::new(), email: &email, username: "two", verified: false, now_ms: 1 })
        .await;
    assert!(!taken.unwrap(), "a taken email is reported, not an error");
    drop(tx);
    let other = EmailAddress::parse("other@example.com").unwrap();
    let mut tx = store.begin().await.unwrap();
    let clash = tx
        .insert_user(&NewUser { id: UserId::new(), email: &other, username: "one", verified: false, now_ms: 1 })
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict)), "a taken username is a conflict: {clash:?}");
    drop(tx);
    assert_eq!(store.user_count().await.unwrap(), 1, "a rolled-back insert leaves nothing");
}

async fn deleting_a_user_takes_what_was_only_theirs(engine: Engine) {
    let (_db, store) = store(engine).await;
    let gone = add_user(&store, "gone@example.com", "gone").await;
    let stays = add_user(&store, "stays@example.com", "stays").await;
    let mut tx = store.begin().await.unwrap();
    tx.grant_role(gone, PlatformRole::Admin, 1).await.unwrap();
    tx.set_password_hash(gone, "hash", 1).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.user_roles(gone).await.unwrap(), vec![PlatformRole::Admin], "roles decode to their type");

    let mut tx = store.begin().await.unwrap();
    tx.delete_user(gone, 0).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.user_by_id(gone).await.unwrap().is_none());
    assert!(store.password_hash(gone).await.unwrap().is_none(), "credentials cascade");
    assert!(store.user_roles(gone).await.unwrap().is_empty(), "roles cascade");
    assert!(store.user_by_id(stays).await.unwrap().is_some(), "other users are untouched");
    let mut tx = store.begin().await.unwrap();
    assert!(tx.default_membership(stays).await.unwrap().is_some());
    assert!(tx.default_membership(gone).await.unwrap().is_none(), "memberships cascade");
}

on_both_engines!(an_email_belongs_to_one_user_and_a_username_too, deleting_a_user_takes_what_was_only_theirs,);
