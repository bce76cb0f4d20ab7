//! Users: profiles, admin management, deletion, paging.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use shared::{Caller, Role};

use crate::helpers::{TestApp, assert_error, spawn_app};

pub const PASSWORD: &str = "correct horse battery";

/// A signed-up user with a fresh access token.
pub struct Account {
    pub id: i64,
    pub token: String,
}

/// Signs `email` up and logs in.
pub async fn account(app: &TestApp, email: &str) -> Account {
    let response = app.signup(email, PASSWORD).await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    Account {
        id: user["id"].as_i64().unwrap(),
        token: login(app, email).await,
    }
}

/// Signs `email` up, makes it an ADMIN in the database (as the command line
/// does), then logs in so the token carries the role.
pub async fn admin_account(app: &TestApp, email: &str) -> Account {
    let response = app.signup(email, PASSWORD).await;
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    sqlx::query("update users set role = 'ADMIN' where lower(email) = lower($1)")
        .bind(email)
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    Account {
        id: user["id"].as_i64().unwrap(),
        token: login(app, email).await,
    }
}

pub async fn login(app: &TestApp, email: &str) -> String {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["accessToken"].as_str().unwrap().to_owned()
}

/// Any request, with an optional bearer token and JSON body.
pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// `send` for a 2xx reply with a JSON body.
pub async fn send_ok(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Value {
    let response = send(app, method.clone(), path, token, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// A request published straight onto NATS as the `gateway` NATS user (which
/// skips every HTTP check), with an `X-Caller` header or none. The caller
/// names the user's newest live session, as a token of theirs would. Returns
/// the error status (None for a success) and the body.
pub async fn nats_request(
    app: &TestApp,
    subject: &'static str,
    caller: Option<(i64, Role)>,
    body: &Value,
) -> (Option<u16>, Value) {
    let mut claimed = None;
    if let Some((id, role)) = caller {
        let session = sqlx::query_scalar(
            "select id from sessions where user_id = $1 and revoked_at is null \
             order by created_at desc limit 1",
        )
        .bind(id)
        .fetch_optional(&app.db.pool().await)
        .await
        .unwrap();
        claimed = Some(Caller { id, role, session });
    }
    nats_request_as(app, subject, claimed, body).await
}

/// [`nats_request`] with exactly this caller header (or none).
pub async fn nats_request_as(
    app: &TestApp,
    subject: &'static str,
    caller: Option<Caller>,
    body: &Value,
) -> (Option<u16>, Value) {
    let service = if subject.starts_with("auth.") {
        shared::auth::SERVICE
    } else {
        shared::user::SERVICE
    };
    let (client, _) = app.nats.connect_as_gateway_to(service).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    if let Some(caller) = caller {
        headers.insert(
            shared::headers::CALLER,
            serde_json::to_string(&caller).unwrap().as_str(),
        );
    }
    let reply = client
        .request_with_headers(subject, headers, body.to_string().into())
        .await
        .unwrap();
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(shared::headers::NATS_SERVICE_ERROR_CODE))
        .map(|v| v.as_str().parse().unwrap());
    (status, serde_json::from_slice(&reply.payload).unwrap())
}

/// Inserts `n` users straight into the database (they cannot log in).
pub async fn insert_users(app: &TestApp, prefix: &str, n: i64) {
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

/// A user's role as the database holds it.
pub async fn role_of(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("select role::text from users where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool().await)
        .await
        .unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
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
    let admin = admin_account(&app, "admin@example.com").await;
    insert_users(&app, "bulk", 45).await;

    let mut seen = Vec::new();
    let mut path = "/api/users".to_owned();
    let mut pages = 0;
    loop {
        let page = send_ok(&app, Method::GET, &path, Some(&admin.token), None).await;
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
    let admin = admin_account(&app, "admin@example.com").await;
    insert_users(&app, "bulk", 149).await;
    let get = |path: &'static str| send_ok(&app, Method::GET, path, Some(&admin.token), None);

    let default = get("/api/users").await;
    assert_eq!(ids(&default).len(), 20);
    assert!(default["nextCursor"].is_string());

    let capped = get("/api/users?limit=500").await;
    assert_eq!(ids(&capped).len(), 100);
    let cursor = capped["nextCursor"].as_str().unwrap();
    let rest = send_ok(
        &app,
        Method::GET,
        &format!("/api/users?limit=500&cursor={cursor}"),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(ids(&rest).len(), 50);
    assert!(rest["nextCursor"].is_null());

    // 150 users in pages of 75: the second page is the last, and says so.
    let first = get("/api/users?limit=75").await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let second = send_ok(
        &app,
        Method::GET,
        &format!("/api/users?limit=75&cursor={cursor}"),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(ids(&second).len(), 75);
    assert!(second["nextCursor"].is_null());
    assert_eq!(ids(&get("/api/users?limit=1").await).len(), 1);
}

#[tokio::test]
async fn a_cursor_that_does_not_decode_or_a_limit_below_1_is_a_400() {
    let app = spawn_app().await;
    let admin = admin_account(&app, "admin@example.com").await;
    for (query, message) in [
        ("cursor=not-a-cursor", "cursor is not valid"),
        ("cursor=!!!", "cursor is not valid"),
        ("cursor=AAAA", "cursor is not valid"),
        ("limit=0", "limit must be a positive integer"),
        ("limit=-3", "limit must be a positive integer"),
        ("limit=ten", "limit must be a positive integer"),
    ] {
        let response = send(
            &app,
            Method::GET,
            &format!("/api/users?{query}"),
            Some(&admin.token),
            None,
        )
        .await;
        let body = assert_error(response, 400, "/api/users").await;
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn only_an_admin_may_list_users() {
    let app = spawn_app().await;
    let user = account(&app, "ada@example.com").await;
    let body = assert_error(
        send(&app, Method::GET, "/api/users", Some(&user.token), None).await,
        403,
        "/api/users",
    )
    .await;
    assert_eq!(body["message"], "admin role required");
    assert_error(
        send(&app, Method::GET, "/api/users", None, None).await,
        401,
        "/api/users",
    )
    .await;
    // The worker refuses too, whatever the gateway did.
    let (status, _) =
        nats_request(&app, "user.list", Some((user.id, Role::User)), &json!({})).await;
    assert_eq!(status, Some(403));
    let (status, _) = nats_request(&app, "user.list", None, &json!({})).await;
    assert_eq!(status, Some(401));
}

#[tokio::test]
async fn a_user_reads_itself_by_id_an_admin_reads_anyone_and_others_get_403() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let bob = account(&app, "bob@example.com").await;
    let admin = admin_account(&app, "admin@example.com").await;
    let ada_path = format!("/api/users/{}", ada.id);

    let me = send_ok(&app, Method::GET, &ada_path, Some(&ada.token), None).await;
    assert_eq!(me["email"], "ada@example.com");
    assert_error(
        send(&app, Method::GET, &ada_path, Some(&bob.token), None).await,
        403,
        &ada_path,
    )
    .await;
    let read = send_ok(&app, Method::GET, &ada_path, Some(&admin.token), None).await;
    assert_eq!(read["id"], ada.id);
    assert_error(
        send(&app, Method::GET, &ada_path, None, None).await,
        401,
        &ada_path,
    )
    .await;
    assert_error(
        send(
            &app,
            Method::GET,
            "/api/users/999999",
            Some(&admin.token),
            None,
        )
        .await,
        404,
        "/api/users/999999",
    )
    .await;
    // Another user's id that does not exist is still 403 for a USER: whether
    // an id exists is not revealed.
    assert_error(
        send(
            &app,
            Method::GET,
            "/api/users/999999",
            Some(&bob.token),
            None,
        )
        .await,
        403,
        "/api/users/999999",
    )
    .await;
    assert_error(
        send(
            &app,
            Method::GET,
            "/api/users/abc",
            Some(&admin.token),
            None,
        )
        .await,
        400,
        "/api/users/abc",
    )
    .await;
}

#[tokio::test]
async fn patching_me_keeps_absent_names_clears_null_or_blank_ones_and_sets_updated_at() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let token = Some(ada.token.as_str());
    let before = send_ok(&app, Method::GET, "/api/users/me", token, None).await;

    let user = send_ok(
        &app,
        Method::PATCH,
        "/api/users/me",
        token,
        Some(&json!({"firstname": "  Ada ", "lastname": "Lovelace"})),
    )
    .await;
    assert_eq!(user["firstname"], "Ada");
    assert_eq!(user["lastname"], "Lovelace");
    assert!(timestamp(&user["updatedAt"]) > timestamp(&before["updatedAt"]));
    assert_eq!(user["createdAt"], before["createdAt"]);

    let user = send_ok(
        &app,
        Method::PATCH,
        "/api/users/me",
        token,
        Some(&json!({"firstname": null})),
    )
    .await;
    assert_eq!(user["firstname"], Value::Null);
    assert_eq!(user["lastname"], "Lovelace", "an absent field is kept");

    let user = send_ok(
        &app,
        Method::PATCH,
        "/api/users/me",
        token,
        Some(&json!({"lastname": "   "})),
    )
    .await;
    assert_eq!(user["lastname"], Value::Null);

    // An empty patch changes nothing, not even updatedAt.
    let same = send_ok(
        &app,
        Method::PATCH,
        "/api/users/me",
        token,
        Some(&json!({})),
    )
    .await;
    assert_eq!(same, user);

    // The same rules as sign-up, every failing field at once; nothing changes.
    let body = assert_error(
        send(
            &app,
            Method::PATCH,
            "/api/users/me",
            token,
            Some(&json!({"firstname": "x".repeat(101), "lastname": "a\u{7}b"})),
        )
        .await,
        400,
        "/api/users/me",
    )
    .await;
    let fields: Vec<_> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["firstname", "lastname"]);
    let after = send_ok(&app, Method::GET, "/api/users/me", token, None).await;
    assert_eq!(after, user);
    assert_error(
        send(&app, Method::PATCH, "/api/users/me", None, Some(&json!({}))).await,
        401,
        "/api/users/me",
    )
    .await;
}

#[tokio::test]
async fn a_user_cannot_raise_its_own_role_through_either_patch_route() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let body = assert_error(
        send(
            &app,
            Method::PATCH,
            "/api/users/me",
            Some(&ada.token),
            Some(&json!({"firstname": "Ada", "role": "ADMIN"})),
        )
        .await,
        400,
        "/api/users/me",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("role"), "{body}");

    let path = format!("/api/users/{}", ada.id);
    let body = assert_error(
        send(
            &app,
            Method::PATCH,
            &path,
            Some(&ada.token),
            Some(&json!({"role": "ADMIN"})),
        )
        .await,
        403,
        &path,
    )
    .await;
    assert_eq!(body["message"], "admin role required");

    assert_eq!(role_of(&app, ada.id).await, "USER");
    let me = send_ok(&app, Method::GET, "/api/users/me", Some(&ada.token), None).await;
    assert_eq!(
        me["firstname"],
        Value::Null,
        "the refused patch changed nothing"
    );
}

#[tokio::test]
async fn an_admin_changes_a_users_names_and_role_and_the_new_role_works_after_login() {
    let app = spawn_app().await;
    let admin = admin_account(&app, "admin@example.com").await;
    let ada = account(&app, "ada@example.com").await;
    let path = format!("/api/users/{}", ada.id);

    let user = send_ok(
        &app,
        Method::PATCH,
        &path,
        Some(&admin.token),
        Some(&json!({"firstname": "Ada", "role": "ADMIN"})),
    )
    .await;
    assert_eq!(user["role"], "ADMIN");
    assert_eq!(user["firstname"], "Ada");
    assert_eq!(user["email"], "ada@example.com");

    let token = login(&app, "ada@example.com").await;
    send_ok(&app, Method::GET, "/api/users", Some(&token), None).await;

    let body = assert_error(
        send(
            &app,
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(&json!({"role": "ROOT"})),
        )
        .await,
        400,
        &path,
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("ROOT"), "{body}");
    assert_error(
        send(
            &app,
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(&json!({"role": null})),
        )
        .await,
        400,
        &path,
    )
    .await;
    assert_error(
        send(
            &app,
            Method::PATCH,
            "/api/users/999999",
            Some(&admin.token),
            Some(&json!({"firstname": "Nobody"})),
        )
        .await,
        404,
        "/api/users/999999",
    )
    .await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_deleted_but_either_of_two_can() {
    let app = spawn_app().await;
    let admin = admin_account(&app, "admin@example.com").await;
    let path = format!("/api/users/{}", admin.id);
    let demote = json!({"role": "USER"});

    let body = assert_error(
        send(
            &app,
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(&demote),
        )
        .await,
        409,
        &path,
    )
    .await;
    assert_eq!(
        body["message"],
        "the last ADMIN cannot be demoted or deleted"
    );
    assert_error(
        send(&app, Method::DELETE, &path, Some(&admin.token), None).await,
        409,
        &path,
    )
    .await;
    assert_eq!(role_of(&app, admin.id).await, "ADMIN");

    // With a second ADMIN, the first may step down.
    let ada = account(&app, "ada@example.com").await;
    send_ok(
        &app,
        Method::PATCH,
        &format!("/api/users/{}", ada.id),
        Some(&admin.token),
        Some(&json!({"role": "ADMIN"})),
    )
    .await;
    let user = send_ok(
        &app,
        Method::PATCH,
        &path,
        Some(&admin.token),
        Some(&demote),
    )
    .await;
    assert_eq!(user["role"], "USER");
    // Now Ada is the last one.
    let ada_token = login(&app, "ada@example.com").await;
    let ada_path = format!("/api/users/{}", ada.id);
    assert_error(
        send(&app, Method::DELETE, &ada_path, Some(&ada_token), None).await,
        409,
        &ada_path,
    )
    .await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions_and_keeps_their_posts_without_an_author() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let post = send_ok(
        &app,
        Method::POST,
        "/api/posts",
        Some(&ada.token),
        Some(&json!({"title": "Notes", "published": true})),
    )
    .await;
    let pool = app.db.pool().await;
    let sessions = |id: i64| {
        sqlx::query_scalar::<_, i64>("select count(*) from sessions where user_id = $1")
            .bind(id)
            .fetch_one(&pool)
    };
    assert_eq!(sessions(ada.id).await.unwrap(), 1);

    let path = format!("/api/users/{}", ada.id);
    let response = send(&app, Method::DELETE, &path, Some(&ada.token), None).await;
    assert_eq!(response.status(), 204);
    assert!(response.text().await.unwrap().is_empty());

    assert_eq!(sessions(ada.id).await.unwrap(), 0);
    let tokens: i64 = sqlx::query_scalar("select count(*) from refresh_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
    // The post stays, with no author.
    let read = send_ok(
        &app,
        Method::GET,
        &format!("/api/posts/{}", post["id"]),
        None,
        None,
    )
    .await;
    assert_eq!(read["authorId"], Value::Null);
    assert_eq!(read["title"], "Notes");
    // The old access token still verifies, but its session is gone with
    // the user: 401 at once.
    assert_error(
        app.get_with_token("/api/users/me", &ada.token).await,
        401,
        "/api/users/me",
    )
    .await;
    assert_error(
        send(
            &app,
            Method::POST,
            "/api/posts",
            Some(&ada.token),
            Some(&json!({"title": "Ghost"})),
        )
        .await,
        401,
        "/api/posts",
    )
    .await;
    assert_error(
        send(&app, Method::DELETE, &path, Some(&ada.token), None).await,
        401,
        &path,
    )
    .await;
}

#[tokio::test]
async fn a_user_deletes_only_itself_and_an_admin_deletes_anyone() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let bob = account(&app, "bob@example.com").await;
    let admin = admin_account(&app, "admin@example.com").await;
    let bob_path = format!("/api/users/{}", bob.id);

    assert_error(
        send(&app, Method::DELETE, &bob_path, Some(&ada.token), None).await,
        403,
        &bob_path,
    )
    .await;
    assert_error(
        send(&app, Method::DELETE, &bob_path, None, None).await,
        401,
        &bob_path,
    )
    .await;
    assert!(user_ids(&app).await.contains(&bob.id));

    let response = send(&app, Method::DELETE, &bob_path, Some(&admin.token), None).await;
    assert_eq!(response.status(), 204);
    assert!(!user_ids(&app).await.contains(&bob.id));
    assert_error(
        send(&app, Method::DELETE, &bob_path, Some(&admin.token), None).await,
        404,
        &bob_path,
    )
    .await;
}

#[tokio::test]
async fn user_writes_published_straight_onto_nats_need_a_caller_and_ownership() {
    let app = spawn_app().await;
    let ada = account(&app, "ada@example.com").await;
    let bob = account(&app, "bob@example.com").await;
    let promote = json!({"id": bob.id, "firstname": "Mallory", "role": "ADMIN"});

    let (status, body) = nats_request(&app, "user.update", None, &promote).await;
    assert_eq!(status, Some(401));
    assert_eq!(body["message"], "missing caller");
    let (status, _) = nats_request(&app, "user.update", Some((ada.id, Role::User)), &promote).await;
    assert_eq!(status, Some(403));
    // Even for itself, a USER cannot send a role past the worker.
    let (status, body) =
        nats_request(&app, "user.update", Some((bob.id, Role::User)), &promote).await;
    assert_eq!(status, Some(403));
    assert_eq!(body["message"], "only an ADMIN may change a role");

    let delete = json!({"id": bob.id});
    let (status, _) = nats_request(&app, "user.delete", None, &delete).await;
    assert_eq!(status, Some(401));
    let (status, _) = nats_request(&app, "user.delete", Some((ada.id, Role::User)), &delete).await;
    assert_eq!(status, Some(403));
    let (status, _) = nats_request(&app, "user.get", None, &delete).await;
    assert_eq!(status, Some(401));

    // Nothing changed.
    let bob_now = send_ok(&app, Method::GET, "/api/users/me", Some(&bob.token), None).await;
    assert_eq!(bob_now["firstname"], Value::Null);
    assert_eq!(bob_now["role"], "USER");

    // The control: the same request with a caller allowed to make it works.
    let (status, body) = nats_request(
        &app,
        "user.update",
        Some((bob.id, Role::User)),
        &json!({"id": bob.id, "firstname": "Bob"}),
    )
    .await;
    assert_eq!(status, None, "{body}");
    assert_eq!(body["firstname"], "Bob");
}
