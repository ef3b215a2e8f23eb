//! Member lists by keyset pages (`?limit=&after=`, an extension): following the `Link` headers
//! walks the whole list once, in the list's order, ties in one millisecond included; a bad
//! value is 400. The whole list (read in one packed row) shows every member exactly as the
//! pages do. (`bench/scale` measures both in a 10,000-member organization.)

use authara::domain::{EmailAddress, OrgId, OrgRole, UserId};
use authara::store::accounts::NewUser;

use super::api::{PW, current_org, start};
use crate::app::{Res, TestClient};
use crate::harness::{Engine, on_both_engines};

fn user_ids(res: &Res) -> Vec<String> {
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["members"].as_array().unwrap().iter().map(|m| m["user_id"].as_str().unwrap().to_owned()).collect()
}

/// The target of `Link: <…>; rel="next"`.
fn next_link(res: &Res) -> Option<String> {
    let link = res.headers.get("link")?.to_str().unwrap();
    let target = link.strip_prefix('<')?.strip_suffix(">; rel=\"next\"")?;
    Some(target.to_owned())
}

/// Every page from `first`, following the links: (member ids in order, page sizes).
async fn walk(c: &TestClient, first: String) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes, mut next) = (Vec::new(), Vec::new(), Some(first));
    while let Some(url) = next {
        let res = c.get(&url).await;
        let page = user_ids(&res);
        sizes.push(page.len());
        ids.extend(page);
        next = next_link(&res);
        assert!(sizes.len() < 20, "the pages end");
    }
    (ids, sizes)
}

async fn member_lists_page_by_keyset_in_list_order(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let c = app.signed_in("lead@example.com", PW).await;
    let org = current_org(&c).await;
    let org_id = OrgId(uuid::Uuid::parse_str(&org).unwrap());
    // 37 more members, three to a millisecond: the cursor must break ties by user id.
    let start_ms = app.clock_now() + 1;
    let mut expected: Vec<(i64, String)> = Vec::new();
    let mut tx = app.store.begin().await.unwrap();
    for i in 0..37 {
        let (id, at) = (UserId::new(), start_ms + i / 3);
        let email = EmailAddress::parse(&format!("m{i}@example.com")).unwrap();
        let username = format!("m{i}");
        tx.insert_user(&NewUser { id, email: &email, username: &username, verified: true, now_ms: at }).await.unwrap();
        assert!(tx.join_org(org_id, id, OrgRole::Member, at).await.unwrap());
        expected.push((at, id.to_string()));
    }
    tx.commit().await.unwrap();
    expected.sort();

    for path in
        [format!("/auth/api/v1/organizations/{org}/members"), "/auth/api/v1/organizations/current/members".into()]
    {
        let full = user_ids(&c.get(&path).await);
        assert_eq!(full.len(), 38, "{path}: no parameters, the whole list");
        assert_eq!(full[1..], expected.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()[..], "{path}: list order");
        assert!(next_link(&c.get(&path).await).is_none());

        let (walked, sizes) = walk(&c, format!("{path}?limit=10")).await;
        assert_eq!((walked.as_slice(), sizes.as_slice()), (full.as_slice(), [10, 10, 10, 8].as_slice()), "{path}");
        let (walked, sizes) = walk(&c, format!("{path}?limit=19")).await;
        assert_eq!(sizes, [19, 19], "{path}: an exact last page carries no link to an empty one");
        assert_eq!(walked, full);
        let res = c.get(&format!("{path}?limit=1000")).await;
        assert_eq!((user_ids(&res), next_link(&res)), (full.clone(), None));

        // `after` alone: the rest of the list, up to 100.
        let first = c.get(&format!("{path}?limit=10")).await;
        let link = next_link(&first).unwrap();
        assert!(link.starts_with(&format!("{path}?limit=10&after=")), "{link}");
        let cursor = link.split_once("after=").unwrap().1;
        assert_eq!(user_ids(&c.get(&format!("{path}?after={cursor}")).await), full[10..]);

        for bad in ["limit=0", "limit=1001", "limit=ten", "limit=-1", "after=nope", "after=12.not-a-uuid", "after=x.y"]
        {
            let res = c.get(&format!("{path}?{bad}")).await;
            assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{path}?{bad}");
        }
    }
}

/// The whole list is read in one packed row and the pages row by row: every field of every member
/// must come out the same, including text JSON must escape, a disabled member and a changed role.
async fn the_whole_list_shows_each_member_as_the_pages_do(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let c = app.signed_in("lead@example.com", PW).await;
    let org = current_org(&c).await;
    let org_id = OrgId(uuid::Uuid::parse_str(&org).unwrap());
    let now = app.clock_now();
    let names = ["plain", "Zoë \"the\" \\ tab\tnewline\n", "日本語", "</script>&amp;", "\u{1F600} \u{7}"];
    let mut tx = app.store.begin().await.unwrap();
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let id = UserId::new();
        let email = EmailAddress::parse(&format!("o'brien+{i}@example.com")).unwrap();
        let at = now + 1 + i as i64;
        tx.insert_user(&NewUser { id, email: &email, username: name, verified: true, now_ms: at }).await.unwrap();
        assert!(tx.join_org(org_id, id, OrgRole::Member, at).await.unwrap());
        ids.push(id);
    }
    assert!(tx.set_user_disabled(ids[1], Some(now + 50), now + 50).await.unwrap());
    tx.set_member_role(org_id, ids[2], OrgRole::Admin, now + 60_000).await.unwrap();
    tx.commit().await.unwrap();

    for path in
        [format!("/auth/api/v1/organizations/{org}/members"), "/auth/api/v1/organizations/current/members".into()]
    {
        let whole = c.get(&path).await;
        assert_eq!(whole.status, 200, "{}", whole.text());
        let whole = whole.json()["members"].as_array().unwrap().clone();
        let mut paged = Vec::new();
        for limit in [1, 2] {
            let (mut next, mut members) = (Some(format!("{path}?limit={limit}")), Vec::new());
            while let Some(url) = next {
                let res = c.get(&url).await;
                members.extend(res.json()["members"].as_array().unwrap().iter().cloned());
                next = next_link(&res);
            }
            paged.push(members);
        }
        assert_eq!(whole.len(), 6, "{path}");
        assert_eq!(whole, paged[0], "{path}: the whole list, field for field, as pages of one");
        assert_eq!(whole, paged[1], "{path}: as pages of two");
        let username: Vec<&str> = whole.iter().map(|m| m["username"].as_str().unwrap()).collect();
        assert_eq!(username[1..], names, "{path}: text as stored");
        assert_eq!(whole[3]["role"], "admin", "{path}");
        if path.contains("current") {
            assert!(whole[2].get("disabled").is_none(), "{path}: the current list's own shape");
        } else {
            let disabled: Vec<bool> = whole.iter().map(|m| m["disabled"].as_bool().unwrap()).collect();
            assert_eq!(disabled, [false, false, true, false, false, false], "{path}");
            assert_eq!(whole[3]["updated_at"], authara::clock::rfc3339(now + 60_000), "{path}");
            assert_eq!(whole[3]["organization_id"], org.as_str(), "{path}");
        }
    }
}

on_both_engines!(member_lists_page_by_keyset_in_list_order, the_whole_list_shows_each_member_as_the_pages_do);
