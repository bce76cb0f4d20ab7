//! Users: profiles, admin management, deletion, paging.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use shared::Role;
use testkit::{Account, Api, error_fields};

use crate::helpers::{TestApp, ids, spawn_app};

/// Inserts `n` users straight into the database (they cannot log in).
async fn insert_users(app: &TestApp, prefix: &str, n: i64) {
    sqlx::query(
        "insert into users (email, password_hash) \
         select $1 || g || '@example.com', '$argon2id$not-a-real-hash' \
         from generate_series(1, $2) g",
    )
    .bind(prefix)
    .bind(n)
    .execute(&app.db.pool().await)
    .await
    .unwrap();
}

async fn user_ids(app: &TestApp) -> BTreeSet<i64> {
    sqlx::query_scalar("select id from users")
        .fetch_all(&app.db.pool().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn timestamp(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn an_admin_pages_through_every_user_exactly_once_while_users_come_and_go() {
    let app = spawn_app().await;
    let admin = app.admin_account("admin@example.com").await;
    insert_users(&app, "bulk", 45).await;

    let mut seen = Vec::new();
    let mut path = "/api/users".to_owned();
    let mut pages = 0;
    loop {
        let page = app.call(Method::GET, &path, &admin, None).ok().await;
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 20, "default limit is 20: {page_ids:?}");
        pages += 1;
        seen.extend(page_ids);
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                assert_eq!(seen.len() % 20, 0, "only a full page has a next cursor");
                path = format!("/api/users?cursor={cursor}");
            }
            None => {
                assert!(page["nextCursor"].is_null());
                break;
            }
        }
        // Between pages, users are added, and one already seen is deleted:
        // neither may make the walk skip or repeat a row.
        insert_users(&app, &format!("late{pages}-"), 5).await;
        let first_seen = seen[pages];
        sqlx::query("delete from users where id = $1")
            .bind(first_seen)
            .execute(&app.db.pool().await)
            .await
            .unwrap();
    }
    // 46 users, then 10 more: pages of 20, 20 and 16.
    assert_eq!(pages, 3);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "in id order, no repeats"
    );
    let now: BTreeSet<i64> = user_ids(&app).await;
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    assert!(
        now.is_subset(&seen),
        "skipped: {:?}",
        now.difference(&seen).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), 56);
}

#[tokio::test]
async fn the_user_list_defaults_to_20_caps_the_limit_at_100_and_ends_without_an_empty_page() {
    let app = spawn_app().await;
    let admin = app.admin_account("admin@example.com").await;
    insert_users(&app, "bulk", 149).await;
    let (api, admin): (&Api, &Account) = (&app, &admin);
    let get = |path: String| async move { api.call(Method::GET, &path, admin, None).ok().await };

    let default = get("/api/users".into()).await;
    assert_eq!(ids(&default).len(), 20);
    assert!(default["nextCursor"].is_string());

    let capped = get("/api/users?limit=500".into()).await;
    assert_eq!(ids(&capped).len(), 100);
    let cursor = capped["nextCursor"].as_str().unwrap();
    let rest = get(format!("/api/users?limit=500&cursor={cursor}")).await;
    assert_eq!(ids(&rest).len(), 50);
    assert!(rest["nextCursor"].is_null());

    // 150 users in pages of 75: the second page is the last, and says so.
    let first = get("/api/users?limit=75".into()).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = get(format!("/api/users?limit=75&cursor={cursor}")).await;
    assert_eq!(ids(&second).len(), 75);
    assert!(second["nextCursor"].is_null());
    assert_eq!(ids(&get("/api/users?limit=1".into()).await).len(), 1);
}

#[tokio::test]
async fn a_cursor_that_does_not_decode_or_a_limit_below_1_is_a_400() {
    let app = spawn_app().await;
    let admin = app.admin_account("admin@example.com").await;
    for (query, message) in [
        ("cursor=not-a-cursor", "cursor is not valid"),
        ("cursor=!!!", "cursor is not valid"),
        ("cursor=AAAA", "cursor is not valid"),
        ("limit=0", "limit must be a positive integer"),
        ("limit=-3", "limit must be a positive integer"),
        ("limit=ten", "limit must be a positive integer"),
    ] {
        let path = format!("/api/users?{query}");
        let body = app.call(Method::GET, &path, &admin, None).fails(400).await;
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn only_an_admin_may_list_users() {
    let app = spawn_app().await;
    let user = app.account("ada@example.com").await;
    let body = app
        .call(Method::GET, "/api/users", &user, None)
        .fails(403)
        .await;
    assert_eq!(body["message"], "admin role required");
    app.call(Method::GET, "/api/users", None, None)
        .fails(401)
        .await;
    // The worker refuses too, whatever the gateway did.
    let (status, _) = app
        .nats_request("user.list", Some((user.id, Role::User)), &json!({}))
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app.nats_request("user.list", None, &json!({})).await;
    assert_eq!(status, Some(401));
}

#[tokio::test]
async fn a_user_reads_itself_by_id_an_admin_reads_anyone_and_others_get_403() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let ada_path = format!("/api/users/{}", ada.id);

    let me = app.call(Method::GET, &ada_path, &ada, None).ok().await;
    assert_eq!(me["email"], "ada@example.com");
    app.call(Method::GET, &ada_path, &bob, None)
        .fails(403)
        .await;
    let read = app.call(Method::GET, &ada_path, &admin, None).ok().await;
    assert_eq!(read["id"], ada.id);
    app.call(Method::GET, &ada_path, None, None)
        .fails(401)
        .await;
    app.call(Method::GET, "/api/users/999999", &admin, None)
        .fails(404)
        .await;
    // Another user's id that does not exist is still 403 for a USER: whether
    // an id exists is not revealed.
    app.call(Method::GET, "/api/users/999999", &bob, None)
        .fails(403)
        .await;
    app.call(Method::GET, "/api/users/abc", &admin, None)
        .fails(400)
        .await;
}

#[tokio::test]
async fn patching_me_keeps_absent_names_clears_null_or_blank_ones_and_sets_updated_at() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let before = app
        .call(Method::GET, "/api/users/me", &ada, None)
        .ok()
        .await;

    let names = json!({"firstname": "  Ada ", "lastname": "Lovelace"});
    let user = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&names))
        .ok()
        .await;
    assert_eq!(user["firstname"], "Ada");
    assert_eq!(user["lastname"], "Lovelace");
    assert!(timestamp(&user["updatedAt"]) > timestamp(&before["updatedAt"]));
    assert_eq!(user["createdAt"], before["createdAt"]);

    let no_firstname = json!({"firstname": null});
    let user = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&no_firstname))
        .ok()
        .await;
    assert_eq!(user["firstname"], Value::Null);
    assert_eq!(user["lastname"], "Lovelace", "an absent field is kept");

    let blank_lastname = json!({"lastname": "   "});
    let user = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&blank_lastname))
        .ok()
        .await;
    assert_eq!(user["lastname"], Value::Null);

    // An empty patch changes nothing, not even updatedAt.
    let same = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&json!({})))
        .ok()
        .await;
    assert_eq!(same, user);

    // The same rules as sign-up, every failing field at once; nothing changes.
    let invalid = json!({"firstname": "x".repeat(101), "lastname": "a\u{7}b"});
    let body = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&invalid))
        .fails(400)
        .await;
    assert_eq!(error_fields(&body), ["firstname", "lastname"]);
    let after = app
        .call(Method::GET, "/api/users/me", &ada, None)
        .ok()
        .await;
    assert_eq!(after, user);
    app.call(Method::PATCH, "/api/users/me", None, Some(&json!({})))
        .fails(401)
        .await;
}

#[tokio::test]
async fn a_user_cannot_raise_its_own_role_through_either_patch_route() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let raise = json!({"firstname": "Ada", "role": "ADMIN"});
    let body = app
        .call(Method::PATCH, "/api/users/me", &ada, Some(&raise))
        .fails(400)
        .await;
    assert!(body["message"].as_str().unwrap().contains("role"), "{body}");

    let path = format!("/api/users/{}", ada.id);
    let body = app
        .call(Method::PATCH, &path, &ada, Some(&json!({"role": "ADMIN"})))
        .fails(403)
        .await;
    assert_eq!(body["message"], "admin role required");

    assert_eq!(app.role_of(ada.id).await, "USER");
    let me = app
        .call(Method::GET, "/api/users/me", &ada, None)
        .ok()
        .await;
    assert_eq!(
        me["firstname"],
        Value::Null,
        "the refused patch changed nothing"
    );
}

#[tokio::test]
async fn an_admin_changes_a_users_names_and_role_and_the_new_role_works_after_login() {
    let app = spawn_app().await;
    let admin = app.admin_account("admin@example.com").await;
    let ada = app.account("ada@example.com").await;
    let path = format!("/api/users/{}", ada.id);

    let promote = json!({"firstname": "Ada", "role": "ADMIN"});
    let user = app
        .call(Method::PATCH, &path, &admin, Some(&promote))
        .ok()
        .await;
    assert_eq!(user["role"], "ADMIN");
    assert_eq!(user["firstname"], "Ada");
    assert_eq!(user["email"], "ada@example.com");

    let token = app.access_token("ada@example.com").await;
    app.call(Method::GET, "/api/users", token.as_str(), None)
        .ok()
        .await;

    let body = app
        .call(Method::PATCH, &path, &admin, Some(&json!({"role": "ROOT"})))
        .fails(400)
        .await;
    assert!(body["message"].as_str().unwrap().contains("ROOT"), "{body}");
    // No role at all, and a user that does not exist.
    for (path, change, status) in [
        (path.as_str(), json!({"role": null}), 400),
        ("/api/users/999999", json!({"firstname": "Nobody"}), 404),
    ] {
        app.call(Method::PATCH, path, &admin, Some(&change))
            .fails(status)
            .await;
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_deleted_but_either_of_two_can() {
    let app = spawn_app().await;
    let admin = app.admin_account("admin@example.com").await;
    let path = format!("/api/users/{}", admin.id);
    let demote = json!({"role": "USER"});

    let body = app
        .call(Method::PATCH, &path, &admin, Some(&demote))
        .fails(409)
        .await;
    assert_eq!(
        body["message"],
        "the last ADMIN cannot be demoted or deleted"
    );
    app.call(Method::DELETE, &path, &admin, None)
        .fails(409)
        .await;
    assert_eq!(app.role_of(admin.id).await, "ADMIN");

    // With a second ADMIN, the first may step down.
    let ada = app.account("ada@example.com").await;
    let (ada_path, promote) = (format!("/api/users/{}", ada.id), json!({"role": "ADMIN"}));
    app.call(Method::PATCH, &ada_path, &admin, Some(&promote))
        .ok()
        .await;
    let user = app
        .call(Method::PATCH, &path, &admin, Some(&demote))
        .ok()
        .await;
    assert_eq!(user["role"], "USER");
    // Now Ada is the last one.
    let ada_token = app.access_token("ada@example.com").await;
    app.call(Method::DELETE, &ada_path, ada_token.as_str(), None)
        .fails(409)
        .await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_and_keeps_their_posts_without_an_author() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let post = app.create_post(&ada, "Notes", true).await;
    let pool = app.db.pool().await;
    let sessions = |id: i64| {
        sqlx::query_scalar::<_, i64>("select count(*) from sessions where user_id = $1")
            .bind(id)
            .fetch_one(&pool)
    };
    assert_eq!(sessions(ada.id).await.unwrap(), 1);

    let path = format!("/api/users/{}", ada.id);
    let response = app.call(Method::DELETE, &path, &ada, None).send().await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());

    assert_eq!(sessions(ada.id).await.unwrap(), 0);
    assert_eq!(app.db.count("refresh_tokens").await, 0);
    // The post stays, with no author.
    let post_path = format!("/api/posts/{}", post["id"]);
    let read = app.call(Method::GET, &post_path, None, None).ok().await;
    assert_eq!(read["authorId"], Value::Null);
    assert_eq!(read["title"], "Notes");
    // The old access token still verifies, but its session is gone with
    // the user: 401 at once.
    let ghost = json!({"title": "Ghost"});
    for (method, path, body) in [
        (Method::GET, "/api/users/me", None),
        (Method::POST, "/api/posts", Some(&ghost)),
        (Method::DELETE, path.as_str(), None),
    ] {
        app.call(method, path, &ada, body).fails(401).await;
    }
}

#[tokio::test]
async fn a_user_deletes_only_itself_and_an_admin_deletes_anyone() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let bob_path = format!("/api/users/{}", bob.id);

    app.call(Method::DELETE, &bob_path, &ada, None)
        .fails(403)
        .await;
    app.call(Method::DELETE, &bob_path, None, None)
        .fails(401)
        .await;
    assert!(user_ids(&app).await.contains(&bob.id));

    let response = app
        .call(Method::DELETE, &bob_path, &admin, None)
        .send()
        .await;
    assert_eq!(response.status(), 204);
    assert!(!user_ids(&app).await.contains(&bob.id));
    app.call(Method::DELETE, &bob_path, &admin, None)
        .fails(404)
        .await;
}

#[tokio::test]
async fn user_writes_published_straight_onto_nats_need_a_caller_and_ownership() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let promote = json!({"id": bob.id, "firstname": "Mallory", "role": "ADMIN"});

    let (status, body) = app.nats_request("user.update", None, &promote).await;
    assert_eq!(status, Some(401));
    assert_eq!(body["message"], "missing caller");
    let (status, _) = app
        .nats_request("user.update", Some((ada.id, Role::User)), &promote)
        .await;
    assert_eq!(status, Some(403));
    // Even for itself, a USER cannot send a role past the worker.
    let (status, body) = app
        .nats_request("user.update", Some((bob.id, Role::User)), &promote)
        .await;
    assert_eq!(status, Some(403));
    assert_eq!(body["message"], "only an ADMIN may change a role");

    let delete = json!({"id": bob.id});
    let (status, _) = app.nats_request("user.delete", None, &delete).await;
    assert_eq!(status, Some(401));
    let (status, _) = app
        .nats_request("user.delete", Some((ada.id, Role::User)), &delete)
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app.nats_request("user.get", None, &delete).await;
    assert_eq!(status, Some(401));

    // Nothing changed.
    let bob_now = app
        .call(Method::GET, "/api/users/me", &bob, None)
        .ok()
        .await;
    assert_eq!(bob_now["firstname"], Value::Null);
    assert_eq!(bob_now["role"], "USER");

    // The control: the same request with a caller allowed to make it works.
    let (status, body) = app
        .nats_request(
            "user.update",
            Some((bob.id, Role::User)),
            &json!({"id": bob.id, "firstname": "Bob"}),
        )
        .await;
    assert_eq!(status, None, "{body}");
    assert_eq!(body["firstname"], "Bob");
}
