//! Posts: drafts, visibility, ownership, paging.

use reqwest::Method;
use serde_json::{Value, json};
use shared::Role;
use testkit::{Bearer, error_fields};

use crate::helpers::{TestApp, ids, spawn_app};

/// Inserts `n` posts by `author` straight into the database.
async fn insert_posts(app: &TestApp, author: i64, published: bool, n: i64) {
    sqlx::query(
        "insert into posts (title, published, author_id) \
         select 'Bulk ' || g, $1, $2 from generate_series(1, $3) g",
    )
    .bind(published)
    .bind(author)
    .bind(n)
    .execute(&app.db.pool().await)
    .await
    .unwrap();
}

async fn list<'a>(app: &'a TestApp, query: &str, who: impl Into<Bearer<'a>>) -> Vec<i64> {
    let path = format!("/api/posts{query}");
    let page = app.call(Method::GET, &path, who.into(), None).ok().await;
    ids(&page)
}

#[tokio::test]
async fn a_new_post_is_the_callers_draft_unless_published_is_sent() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let notes = json!({"title": "  Notes  ", "content": "  indented\nline"});
    let response = app
        .call(Method::POST, "/api/posts", &ada, Some(&notes))
        .send()
        .await;
    assert_eq!(response.status(), 201);
    let post: Value = response.json().await.unwrap();
    assert!(post["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(post["title"], "Notes");
    assert_eq!(post["content"], "  indented\nline");
    assert_eq!(post["published"], false);
    assert_eq!(post["authorId"], ada.id);
    let keys: Vec<_> = post.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "authorId",
            "content",
            "createdAt",
            "id",
            "published",
            "title",
            "updatedAt"
        ]
    );
    assert!(post["createdAt"].as_str().unwrap().ends_with('Z'));

    let published = app.create_post(&ada, "Public", true).await;
    assert_eq!(published["published"], true);
    let no_content = json!({"title": "No content", "content": "   "});
    let bare = app
        .call(Method::POST, "/api/posts", &ada, Some(&no_content))
        .ok()
        .await;
    assert_eq!(bare["content"], Value::Null);
}

#[tokio::test]
async fn creating_a_post_needs_a_token_and_a_valid_body_and_otherwise_creates_nothing() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let minimal = json!({"title": "t"});
    app.call(Method::POST, "/api/posts", None, Some(&minimal))
        .fails(401)
        .await;
    let body = app
        .call(Method::POST, "/api/posts", &ada, Some(&json!({})))
        .fails(400)
        .await;
    assert_eq!(body["details"][0]["field"], "title");
    let too_long = json!({"title": "x".repeat(201), "content": "y".repeat(50_001)});
    let body = app
        .call(Method::POST, "/api/posts", &ada, Some(&too_long))
        .fails(400)
        .await;
    assert_eq!(error_fields(&body), ["content", "title"]);
    // The author is always the caller.
    let with_author = json!({"title": "t", "authorId": 999});
    app.call(Method::POST, "/api/posts", &ada, Some(&with_author))
        .fails(400)
        .await;
    assert_eq!(app.db.count("posts").await, 0);

    // The limits themselves are accepted.
    let at_the_limits = json!({"title": "é".repeat(200), "content": "y".repeat(50_000)});
    let long = app
        .call(Method::POST, "/api/posts", &ada, Some(&at_the_limits))
        .ok()
        .await;
    assert_eq!(long["content"].as_str().unwrap().len(), 50_000);
}

#[tokio::test]
async fn a_draft_is_visible_only_to_its_author_and_admins_and_a_404_to_anyone_else() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let draft = app.create_post(&ada, "Draft", false).await;
    let public = app.create_post(&ada, "Public", true).await;
    let draft_path = format!("/api/posts/{}", draft["id"]);
    let public_path = format!("/api/posts/{}", public["id"]);

    let anonymous = app
        .call(Method::GET, &draft_path, None, None)
        .fails(404)
        .await;
    let other = app
        .call(Method::GET, &draft_path, &bob, None)
        .fails(404)
        .await;
    let missing = app
        .call(Method::GET, "/api/posts/999999", &bob, None)
        .fails(404)
        .await;
    // Indistinguishable from a post that does not exist.
    assert_eq!(anonymous["message"], missing["message"]);
    assert_eq!(other["message"], missing["message"]);

    assert_eq!(
        app.call(Method::GET, &draft_path, &ada, None).ok().await,
        draft
    );
    assert_eq!(
        app.call(Method::GET, &draft_path, &admin, None).ok().await,
        draft
    );
    assert_eq!(
        app.call(Method::GET, &public_path, None, None).ok().await,
        public
    );
    // A token that is sent must be valid, even where none is needed.
    app.call(Method::GET, &public_path, Some("not.a.jwt"), None)
        .fails(401)
        .await;
}

#[tokio::test]
async fn the_post_list_shows_published_posts_plus_only_the_callers_own_drafts() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let id = |post: Value| post["id"].as_i64().unwrap();
    let ada_public = id(app.create_post(&ada, "A public", true).await);
    let ada_draft = id(app.create_post(&ada, "A draft", false).await);
    let bob_public = id(app.create_post(&bob, "B public", true).await);
    let bob_draft = id(app.create_post(&bob, "B draft", false).await);

    assert_eq!(list(&app, "", None).await, [ada_public, bob_public]);
    assert_eq!(
        list(&app, "", &ada).await,
        [ada_public, ada_draft, bob_public]
    );
    assert_eq!(
        list(&app, "", &bob).await,
        [ada_public, bob_public, bob_draft]
    );
    assert_eq!(list(&app, "", &admin).await, [ada_public, bob_public]);

    let by_ada = format!("?authorId={}", ada.id);
    assert_eq!(list(&app, &by_ada, None).await, [ada_public]);
    assert_eq!(list(&app, &by_ada, &ada).await, [ada_public, ada_draft]);
    assert_eq!(list(&app, &by_ada, &bob).await, [ada_public]);
    assert_eq!(
        list(&app, "?authorId=999999", None).await,
        Vec::<i64>::new()
    );

    for (query, status) in [("?authorId=0", 400), ("?authorId=x", 400)] {
        app.call(Method::GET, &format!("/api/posts{query}"), None, None)
            .fails(status)
            .await;
    }
    app.call(Method::GET, "/api/posts", Some("not.a.jwt"), None)
        .fails(401)
        .await;
}

#[tokio::test]
async fn paging_posts_walks_every_visible_post_exactly_once_while_posts_come_and_go() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    // 45 rows: Ada's drafts and Bob's published posts and drafts, interleaved.
    for _ in 0..5 {
        insert_posts(&app, ada.id, false, 3).await;
        insert_posts(&app, bob.id, true, 4).await;
        insert_posts(&app, bob.id, false, 2).await;
    }

    // An anonymous reader sees published posts; Ada also her own drafts.
    for (token, viewer) in [(Some(ada.token.as_str()), Some(ada.id)), (None, None)] {
        let mut seen = Vec::new();
        let mut deleted = Vec::new();
        let mut path = "/api/posts".to_owned();
        loop {
            let page = app.call(Method::GET, &path, token, None).ok().await;
            let page_ids = ids(&page);
            assert!(page_ids.len() <= 20);
            seen.extend(page_ids);
            let Some(cursor) = page["nextCursor"].as_str() else {
                assert!(page["nextCursor"].is_null());
                break;
            };
            path = format!("/api/posts?cursor={cursor}");
            // Between pages, posts are written (visible or not) and one
            // already seen is deleted: the walk must neither skip nor repeat.
            insert_posts(&app, ada.id, false, 1).await;
            insert_posts(&app, bob.id, true, 2).await;
            insert_posts(&app, bob.id, false, 1).await;
            let gone = seen[deleted.len()];
            sqlx::query("delete from posts where id = $1")
                .bind(gone)
                .execute(&app.db.pool().await)
                .await
                .unwrap();
            deleted.push(gone);
        }
        assert!(!deleted.is_empty(), "more than one page");
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "no repeats: {seen:?}");
        let mut expected: Vec<i64> = sqlx::query_scalar(
            "select id from posts where published or author_id = $1 order by id",
        )
        .bind(viewer)
        .fetch_all(&app.db.pool().await)
        .await
        .unwrap();
        expected.extend(&deleted);
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }
}

#[tokio::test]
async fn the_post_list_defaults_to_20_caps_the_limit_at_100_and_refuses_a_bad_cursor() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    insert_posts(&app, ada.id, true, 120).await;
    assert_eq!(list(&app, "", None).await.len(), 20);
    assert_eq!(list(&app, "?limit=1000", None).await.len(), 100);
    assert_eq!(list(&app, "?limit=7", None).await.len(), 7);
    for query in ["?cursor=garbage!", "?cursor=AAAA", "?limit=0"] {
        app.call(Method::GET, &format!("/api/posts{query}"), None, None)
            .fails(400)
            .await;
    }
    // The last page of an exact multiple says it is the last.
    let first = app
        .call(Method::GET, "/api/posts?limit=60", None, None)
        .ok()
        .await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let next = format!("/api/posts?limit=60&cursor={cursor}");
    let second = app.call(Method::GET, &next, None, None).ok().await;
    assert_eq!(ids(&second).len(), 60);
    assert!(second["nextCursor"].is_null());
}

#[tokio::test]
async fn the_author_patches_a_post_with_absent_fields_kept_and_null_content_cleared() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let post = app.create_post(&ada, "Draft", false).await;
    let path = format!("/api/posts/{}", post["id"]);

    let publish = json!({"title": " Final ", "published": true});
    let changed = app
        .call(Method::PATCH, &path, &ada, Some(&publish))
        .ok()
        .await;
    assert_eq!(changed["title"], "Final");
    assert_eq!(changed["published"], true);
    assert_eq!(changed["content"], "Some text.", "absent content is kept");
    assert_eq!(changed["authorId"], ada.id);
    assert_eq!(changed["createdAt"], post["createdAt"]);
    assert_ne!(changed["updatedAt"], post["updatedAt"]);

    let cleared = app
        .call(Method::PATCH, &path, &ada, Some(&json!({"content": null})))
        .ok()
        .await;
    assert_eq!(cleared["content"], Value::Null);
    assert_eq!(cleared["title"], "Final");

    let same = app
        .call(Method::PATCH, &path, &ada, Some(&json!({})))
        .ok()
        .await;
    assert_eq!(same, cleared);

    for bad in [
        json!({"title": null}),
        json!({"title": "  "}),
        json!({"published": null}),
        json!({"authorId": 2}),
    ] {
        app.call(Method::PATCH, &path, &ada, Some(&bad))
            .fails(400)
            .await;
    }
    assert_eq!(app.call(Method::GET, &path, &ada, None).ok().await, cleared);
}

#[tokio::test]
async fn a_non_author_gets_403_for_a_post_it_can_see_and_404_for_a_draft_and_changes_nothing() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let public = app.create_post(&ada, "Public", true).await;
    let draft = app.create_post(&ada, "Draft", false).await;
    let public_path = format!("/api/posts/{}", public["id"]);
    let draft_path = format!("/api/posts/{}", draft["id"]);
    let patch = json!({"title": "Defaced"});

    for (method, body) in [(Method::PATCH, Some(&patch)), (Method::DELETE, None)] {
        app.call(method.clone(), &public_path, &bob, body)
            .fails(403)
            .await;
        app.call(method.clone(), &draft_path, &bob, body)
            .fails(404)
            .await;
        app.call(method.clone(), &public_path, None, body)
            .fails(401)
            .await;
    }
    assert_eq!(
        app.call(Method::GET, &public_path, None, None).ok().await,
        public
    );
    assert_eq!(
        app.call(Method::GET, &draft_path, &ada, None).ok().await,
        draft
    );
}

#[tokio::test]
async fn the_author_or_an_admin_deletes_a_post_and_an_admin_may_edit_any() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let mine = app.create_post(&ada, "Mine", true).await;
    let draft = app.create_post(&ada, "Draft", false).await;
    let mine_path = format!("/api/posts/{}", mine["id"]);
    let draft_path = format!("/api/posts/{}", draft["id"]);

    let moderate = json!({"title": "Moderated"});
    let edited = app
        .call(Method::PATCH, &draft_path, &admin, Some(&moderate))
        .ok()
        .await;
    assert_eq!(edited["title"], "Moderated");
    assert_eq!(
        edited["authorId"], ada.id,
        "editing does not take authorship"
    );

    let response = app
        .call(Method::DELETE, &mine_path, &ada, None)
        .send()
        .await;
    assert_eq!(response.status(), 204);
    for method in [Method::GET, Method::DELETE] {
        app.call(method, &mine_path, &ada, None).fails(404).await;
    }

    let response = app
        .call(Method::DELETE, &draft_path, &admin, None)
        .send()
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.db.count("posts").await, 0);
}

#[tokio::test]
async fn a_post_whose_author_was_deleted_can_be_changed_only_by_an_admin() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let admin = app.admin_account("admin@example.com").await;
    let public = app.create_post(&ada, "Orphan", true).await;
    let draft = app.create_post(&ada, "Orphan draft", false).await;
    let ada_path = format!("/api/users/{}", ada.id);
    let response = app.call(Method::DELETE, &ada_path, &ada, None).send().await;
    assert_eq!(response.status(), 204);

    let public_path = format!("/api/posts/{}", public["id"]);
    let draft_path = format!("/api/posts/{}", draft["id"]);
    let orphan = app.call(Method::GET, &public_path, None, None).ok().await;
    assert_eq!(orphan["authorId"], Value::Null);
    assert_eq!(list(&app, "", None).await, [public["id"].as_i64().unwrap()]);
    // The deleted author's token died with its sessions.
    app.call(Method::DELETE, &public_path, &ada, None)
        .fails(401)
        .await;
    app.call(Method::DELETE, &public_path, &bob, None)
        .fails(403)
        .await;
    app.call(Method::GET, &draft_path, &ada, None)
        .fails(401)
        .await;
    let draft_now = app.call(Method::GET, &draft_path, &admin, None).ok().await;
    assert_eq!(draft_now["authorId"], Value::Null);
    let response = app
        .call(Method::DELETE, &public_path, &admin, None)
        .send()
        .await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn post_writes_published_straight_onto_nats_need_a_caller_and_ownership() {
    let app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let bob = app.account("bob@example.com").await;
    let public = app.create_post(&ada, "Public", true).await;
    let draft = app.create_post(&ada, "Draft", false).await;
    let bob_caller = Some((bob.id, Role::User));
    let deface = |post: &Value| json!({"id": post["id"], "title": "Defaced", "published": false});
    let target = |post: &Value| json!({"id": post["id"]});

    for (subject, body) in [
        ("post.update", deface(&public)),
        ("post.delete", target(&public)),
        ("post.create", json!({"title": "Anonymous"})),
    ] {
        let (status, reply) = app.nats_request(subject, None, &body).await;
        assert_eq!(status, Some(401), "{subject}: {reply}");
        assert_eq!(reply["message"], "missing caller");
    }
    let (status, _) = app
        .nats_request("post.update", bob_caller, &deface(&public))
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app
        .nats_request("post.delete", bob_caller, &target(&public))
        .await;
    assert_eq!(status, Some(403));
    let (status, _) = app
        .nats_request("post.update", bob_caller, &deface(&draft))
        .await;
    assert_eq!(status, Some(404));
    let (status, _) = app
        .nats_request("post.delete", bob_caller, &target(&draft))
        .await;
    assert_eq!(status, Some(404));
    let (status, _) = app.nats_request("post.get", None, &target(&draft)).await;
    assert_eq!(status, Some(404));

    // Nothing changed.
    assert_eq!(app.db.count("posts").await, 2);
    let path = format!("/api/posts/{}", public["id"]);
    assert_eq!(app.call(Method::GET, &path, None, None).ok().await, public);
    let path = format!("/api/posts/{}", draft["id"]);
    assert_eq!(app.call(Method::GET, &path, &ada, None).ok().await, draft);

    // The control: the author's own caller header is obeyed.
    let (status, reply) = app
        .nats_request("post.update", Some((ada.id, Role::User)), &deface(&public))
        .await;
    assert_eq!(status, None, "{reply}");
    assert_eq!(reply["title"], "Defaced");
}
