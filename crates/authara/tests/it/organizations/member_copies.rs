//! Each membership keeps a copy of its member's email, username and disabled time (migration
//! 25, kept by triggers), and the member lists read the copy: whatever changes a member's
//! account (the account page, an email change, the admin's disabling, an operator's SQL) shows
//! in the whole list, the pages and the single member at once; and a database migrated from
//! before the copy gets it filled.

use authara::domain::{EmailAddress, OrgId, OrgKind, OrgRole, UserId};
use authara::store::accounts::{NewOrg, NewUser};
use serde_json::Value;

use super::api::{PW, current_org, invite, signup_with_code, token_of, user_id};
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, TestDb, on_both_engines};

/// `(email, username, disabled)` of the member `user` as the whole list, a page of one and the
/// single-member route each show it; asserts the three agree.
async fn shown(c: &TestClient, org: &str, user: &str) -> (String, String, bool) {
    let of = |m: &Value| {
        (m["email"].as_str().unwrap().to_owned(), m["username"].as_str().unwrap().to_owned(), m["disabled"] == true)
    };
    let find = |list: &Value| list["members"].as_array().unwrap().iter().find(|m| m["user_id"] == user).map(of);
    let path = format!("/auth/api/v1/organizations/{org}/members");
    let res = c.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let whole = find(&res.json()).expect("the member is listed");
    let mut paged = None;
    let mut url = format!("{path}?limit=1");
    for _ in 0..5 {
        let res = c.get(&url).await;
        assert_eq!(res.status, 200, "{}", res.text());
        paged = paged.or_else(|| find(&res.json()));
        match res.headers.get("link") {
            Some(link) => {
                let link = link.to_str().unwrap();
                url = link.trim_start_matches('<').split_once('>').unwrap().0.to_owned();
            }
            None => break,
        }
    }
    let res = c.get(&format!("{path}/{user}")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let single = of(&res.json()["member"]);
    assert_eq!(paged.as_ref(), Some(&whole), "the pages show the member as the whole list does");
    assert_eq!(single, whole, "the member route shows the member as the list does");
    whole
}

/// Memberships whose copy differs from the member's account (none, whatever happened).
async fn stale_copies(app: &TestApp) -> Vec<String> {
    app.db
        .texts(
            "SELECT m.member_email FROM organization_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.member_email <> u.email OR m.member_username <> u.username \
             OR (m.member_disabled_at_ms IS NULL) <> (u.disabled_at_ms IS NULL) \
             OR m.member_disabled_at_ms <> u.disabled_at_ms",
        )
        .await
}

async fn member_lists_follow_every_change_to_the_members_account(engine: Engine) {
    let app = super::api::start(engine, "single", &[]).await;
    let lead = app.signed_in("lead@example.com", PW).await;
    let lead_id = user_id(&app, "lead@example.com").await;
    let org = current_org(&lead).await;
    // The member joins through an invitation, over HTTP.
    let inv = invite(&app, &org, &lead_id, "second@example.com", "member").await;
    let (member, res) = signup_with_code(&app, "second@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let id = user_id(&app, "second@example.com").await;
    let uid = UserId(uuid::Uuid::parse_str(&id).unwrap());
    let (email, username, disabled) = shown(&lead, &org, &id).await;
    assert_eq!((email.as_str(), disabled), ("second@example.com", false));
    let was = username.clone();

    // The account page's username change.
    assert_eq!(member.form("/auth/user/username", &[("username", "renamed-member")]).await.status, 303);
    assert_eq!(shown(&lead, &org, &id).await, ("second@example.com".into(), "renamed-member".into(), false));
    assert_ne!(was, "renamed-member");

    // The email change a verified code makes, and the admin's disabling, in one transaction.
    let mut tx = app.store.begin().await.unwrap();
    tx.set_email(uid, &EmailAddress::parse("moved@example.com").unwrap(), app.clock_now()).await.unwrap();
    assert!(tx.set_user_disabled(uid, Some(app.clock_now()), app.clock_now()).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(shown(&lead, &org, &id).await, ("moved@example.com".into(), "renamed-member".into(), true));
    let mut tx = app.store.begin().await.unwrap();
    assert!(tx.set_user_disabled(uid, None, app.clock_now()).await.unwrap());
    tx.commit().await.unwrap();
    assert!(!shown(&lead, &org, &id).await.2, "enabled again");

    // A rolled-back change leaves the copy as it was.
    let mut tx = app.store.begin().await.unwrap();
    tx.set_username(uid, "never-kept", app.clock_now()).await.unwrap();
    drop(tx);
    assert_eq!(shown(&lead, &org, &id).await.1, "renamed-member");

    // An operator's SQL, on PostgreSQL from a session whose search_path does not hold the schema.
    let sql = match engine {
        Engine::Sqlite => "UPDATE users SET email = 'operator@example.com', username = 'by-operator' \
                           WHERE email = 'moved@example.com'"
            .to_owned(),
        Engine::Postgres => "SET search_path = public; UPDATE authara.users \
                             SET email = 'operator@example.com', username = 'by-operator' \
                             WHERE email = 'moved@example.com'"
            .to_owned(),
    };
    app.db.raw_sql(&sql).await;
    assert_eq!(shown(&lead, &org, &id).await, ("operator@example.com".into(), "by-operator".into(), false));
    // The lead's own row, and the personal organizations signup made, are current too.
    assert_eq!(shown(&lead, &org, &lead_id).await.0, "lead@example.com");
    assert!(stale_copies(&app).await.is_empty(), "{:?}", stale_copies(&app).await);
}

/// A membership inserted without the copy (the invitation's join, an organization's creation,
/// signup's personal organization) gets it from the user row; one naming no user is refused by
/// the foreign key as before, and leaves nothing behind.
async fn memberships_get_the_copy_however_they_are_made(engine: Engine) {
    let app = super::api::start(engine, "multi", &[]).await;
    let c = app.signed_in("solo@example.com", PW).await;
    let solo = user_id(&app, "solo@example.com").await;
    let personal = current_org(&c).await;
    let (email, _, _) = shown(&c, &personal, &solo).await;
    assert_eq!(email, "solo@example.com", "signup's personal organization");

    let now = app.clock_now();
    let (uid, org) = (UserId::new(), OrgId::new());
    let mut tx = app.store.begin().await.unwrap();
    let email = EmailAddress::parse("stored@example.com").unwrap();
    tx.insert_user(&NewUser { id: uid, email: &email, username: "stored-user", verified: true, now_ms: now })
        .await
        .unwrap();
    tx.insert_org(&NewOrg { id: org, name: "Stored", kind: OrgKind::Team, created_by: uid, now_ms: now })
        .await
        .unwrap();
    tx.insert_membership(org, uid, OrgRole::Owner, now).await.unwrap();
    tx.commit().await.unwrap();
    let members = app.store.members(org).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.email.as_str(), m.username.as_str())).collect::<Vec<_>>(),
        [("stored@example.com", "stored-user")]
    );

    let mut tx = app.store.begin().await.unwrap();
    assert!(tx.join_org(org, UserId::new(), OrgRole::Member, now).await.is_err(), "no such user");
    drop(tx);
    assert_eq!(app.store.members(org).await.unwrap().len(), 1);
    assert!(stale_copies(&app).await.is_empty(), "{:?}", stale_copies(&app).await);
}

/// A database with memberships from before migration 25 gets each copy filled by it.
async fn migrating_fills_the_copies_of_existing_memberships(engine: Engine) {
    let db = TestDb::new(engine, false).await;
    let store = db.store().await;
    store.migrate_to(0, Some(24)).await.unwrap();
    let (org, now) = (OrgId::new(), 1_700_000_000_000);
    let ids: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
    let mut tx = store.begin().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        let email = EmailAddress::parse(&format!("old{i}@example.com")).unwrap();
        let username = format!("old-{i}");
        tx.insert_user(&NewUser {
            id: *id,
            email: &email,
            username: &username,
            verified: true,
            now_ms: now + i as i64,
        })
        .await
        .unwrap();
    }
    tx.insert_org(&NewOrg { id: org, name: "Before", kind: OrgKind::Team, created_by: ids[0], now_ms: now })
        .await
        .unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert!(tx.join_org(org, *id, OrgRole::Member, now + i as i64).await.unwrap());
    }
    assert!(tx.set_user_disabled(ids[2], Some(now), now).await.unwrap());
    tx.commit().await.unwrap();

    store.migrate(0).await.unwrap();
    let members = store.members(org).await.unwrap();
    let seen: Vec<(String, String, bool)> =
        members.iter().map(|m| (m.email.clone(), m.username.clone(), m.disabled_at_ms.is_some())).collect();
    assert_eq!(
        seen,
        [
            ("old0@example.com".to_owned(), "old-0".to_owned(), false),
            ("old1@example.com".to_owned(), "old-1".to_owned(), false),
            ("old2@example.com".to_owned(), "old-2".to_owned(), true),
        ]
    );
    store.close().await;
}

on_both_engines!(
    member_lists_follow_every_change_to_the_members_account,
    memberships_get_the_copy_however_they_are_made,
    migrating_fills_the_copies_of_existing_memberships
);
