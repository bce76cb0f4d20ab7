//! Adversarial tests of the hardening issue: a revoked session or a changed
//! role stops working at once, throttles cannot be raced or turned against
//! an account's owner, retries of a refresh keep the session, purges run, and
//! error bodies leak nothing.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use shared::{Caller, Role};
use testkit::{PASSWORD, assert_error};

use crate::helpers::{Options, TestApp, spawn_app, spawn_app_with};

/// The claims of an access token, read without checking (the test made it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn session_of(token: &str) -> uuid::Uuid {
    claims(token)["sid"].as_str().unwrap().parse().unwrap()
}

/// Every route that takes a bearer token, called with `token`: the statuses.
/// `own` is the token's user, `post` a post id to aim at.
async fn every_route_with(app: &TestApp, token: &str, own: i64, post: i64) -> Vec<(String, u16)> {
    let user = format!("/api/users/{own}");
    let post_path = format!("/api/posts/{post}");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/users/me".into(), None),
        (
            Method::PATCH,
            "/api/users/me".into(),
            Some(json!({"firstname": "X"})),
        ),
        (
            Method::PUT,
            "/api/users/me/password".into(),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "another good one"})),
        ),
        (Method::GET, "/api/users".into(), None),
        (Method::GET, user.clone(), None),
        (Method::PATCH, user.clone(), Some(json!({"role": "ADMIN"}))),
        (
            Method::POST,
            "/api/posts".into(),
            Some(json!({"title": "t"})),
        ),
        (Method::GET, "/api/posts".into(), None),
        (Method::GET, post_path.clone(), None),
        (
            Method::PATCH,
            post_path.clone(),
            Some(json!({"title": "u"})),
        ),
        (Method::DELETE, post_path, None),
        (
            Method::POST,
            "/api/auth/logout".into(),
            Some(json!({"refreshToken": "x".repeat(43)})),
        ),
        (Method::DELETE, user, None),
    ];
    let mut statuses = Vec::new();
    for (method, path, body) in calls {
        let response = app
            .call(method.clone(), &path, Some(token), body.as_ref())
            .send()
            .await;
        statuses.push((format!("{method} {path}"), response.status().as_u16()));
    }
    statuses
}

fn assert_all_401(statuses: &[(String, u16)]) {
    let wrong: Vec<_> = statuses.iter().filter(|(_, s)| *s != 401).collect();
    assert!(wrong.is_empty(), "not 401: {wrong:?}");
}

#[tokio::test]
async fn a_demoted_admin_cannot_promote_itself_back_or_demote_its_demoter() {
    let app = spawn_app().await;
    let root = app.admin_account("root@example.com").await;
    let mallory = app.admin_account("mallory@example.com").await;
    let stale_session = session_of(&mallory.token);

    let path = format!("/api/users/{}", mallory.id);
    let (promote, demote) = (json!({"role": "ADMIN"}), json!({"role": "USER"}));
    app.call(Method::PATCH, &path, &root, Some(&demote))
        .ok()
        .await;

    // At once, with the token that still says ADMIN: the demotion ended the
    // session it belongs to.
    app.call(Method::PATCH, &path, &mallory, Some(&promote))
        .fails(401)
        .await;
    let root_path = format!("/api/users/{}", root.id);
    app.call(Method::PATCH, &root_path, &mallory, Some(&demote))
        .fails(401)
        .await;

    // Logged in again, the token says USER: refused by the route's role.
    let fresh = app.access_token("mallory@example.com").await;
    app.call(Method::PATCH, &path, fresh.as_str(), Some(&promote))
        .fails(403)
        .await;

    // Straight onto NATS with a live session but a stale ADMIN claim: the
    // worker reads the role from the database, not from the claim.
    let live = Caller {
        id: mallory.id,
        role: Role::Admin,
        session: Some(session_of(&fresh)),
    };
    for change in [
        json!({"id": mallory.id, "role": "ADMIN"}),
        json!({"id": root.id, "role": "USER"}),
    ] {
        let (status, body) = app
            .nats_request_as("user.update", Some(live), &change)
            .await;
        assert_eq!(status, Some(403), "{change}: {body}");
    }
    // The revoked session is refused outright, whatever its claim.
    let dead = Caller {
        session: Some(stale_session),
        ..live
    };
    let (status, body) = app
        .nats_request_as("user.list", Some(dead), &json!({}))
        .await;
    assert_eq!(status, Some(401), "{body}");

    assert_eq!(app.role_of(mallory.id).await, "USER");
    assert_eq!(app.role_of(root.id).await, "ADMIN");
}

#[tokio::test]
async fn a_promotion_applies_to_the_users_current_token_at_once() {
    let app = spawn_app().await;
    let root = app.admin_account("root@example.com").await;
    let ada = app.account("ada@example.com").await;
    app.call(Method::GET, "/api/users", &ada, None)
        .fails(403)
        .await;
    let path = format!("/api/users/{}", ada.id);
    app.call(Method::PATCH, &path, &root, Some(&json!({"role": "ADMIN"})))
        .ok()
        .await;
    // The token still says USER; the next request goes by the current role.
    let page = app.call(Method::GET, "/api/users", &ada, None).ok().await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_deleted_users_token_gets_401_on_every_route() {
    let app = spawn_app().await;
    let root = app.admin_account("root@example.com").await;
    let gone = app.admin_account("gone@example.com").await;
    let post = app.create_post(&root, "p", true).await;
    let path = format!("/api/users/{}", gone.id);
    assert_eq!(
        app.call(Method::DELETE, &path, &root, None)
            .send()
            .await
            .status(),
        204
    );

    let statuses = every_route_with(&app, &gone.token, gone.id, post["id"].as_i64().unwrap()).await;
    assert_all_401(&statuses);
    // Nothing was changed by the dead token.
    let post_path = format!("/api/posts/{}", post["id"]);
    let read = app.call(Method::GET, &post_path, None, None).ok().await;
    assert_eq!(read["title"], "p");
    assert_eq!(app.role_of(root.id).await, "ADMIN");
}

#[tokio::test]
async fn after_logout_the_access_token_gets_401_everywhere() {
    let app = spawn_app().await;
    let ada = logged_in(&app, "ada@example.com").await;
    let post = app.create_post(ada.access.as_str(), "mine", false).await;
    log_out(&app, &ada).await;

    let statuses = every_route_with(&app, &ada.access, ada.id, post["id"].as_i64().unwrap()).await;
    assert_all_401(&statuses);
}

#[tokio::test]
async fn after_a_password_change_another_sessions_access_token_gets_401_everywhere() {
    let app = spawn_app().await;
    let here = app.account("ada@example.com").await;
    let stolen = app.access_token("ada@example.com").await;
    let post = app.create_post(&here, "mine", false).await;
    let change = json!({"currentPassword": PASSWORD, "newPassword": "a brand new secret"});
    let response = app
        .call(Method::PUT, "/api/users/me/password", &here, Some(&change))
        .send()
        .await;
    assert_eq!(response.status(), 204);

    let statuses = every_route_with(&app, &stolen, here.id, post["id"].as_i64().unwrap()).await;
    assert_all_401(&statuses);
    // The session that changed the password goes on.
    assert_eq!(
        app.get_with_token("/api/users/me", &here.token)
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_passwords_for_one_email_verify_at_most_the_limit() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let before = app.password_verifications();
    let attempts = (0..50).map(|_| {
        let app = &app;
        async move {
            app.login("ada@example.com", "wrong password")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let verified = app.password_verifications() - before;
    // The default limit for one email from one address is 5.
    assert!(
        verified <= 5,
        "{verified} passwords were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        verified
    );
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out_from_another_address() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            app.login_from("ada@example.com", "guess", "203.0.113.7")
                .await
                .status(),
            401
        );
    }
    // The attacker's address is locked for this email, even with the right password…
    let locked = app
        .login_from("ada@example.com", PASSWORD, "203.0.113.7")
        .await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_error(locked, 429, "/api/auth/login").await;
    // …but the owner, from anywhere else, logs in.
    assert_eq!(
        app.login_from("ada@example.com", PASSWORD, "198.51.100.2")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn ipv6_clients_are_throttled_per_64_prefix() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    // Five addresses of one /64 (one subscriber's network).
    for host in 1..=5 {
        let address = format!("2001:db8:aa:1::{host}");
        assert_eq!(
            app.login_from("ada@example.com", "guess", &address)
                .await
                .status(),
            401
        );
    }
    let sixth = app
        .login_from("ada@example.com", PASSWORD, "2001:db8:aa:1:ffff::9")
        .await;
    assert_error(sixth, 429, "/api/auth/login").await;
    // The next /64 is someone else.
    assert_eq!(
        app.login_from("ada@example.com", PASSWORD, "2001:db8:aa:2::1")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failures_for_one_email_from_many_addresses_slow_it_down_but_never_lock_the_owner_out() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    // 30 guesses from 10 addresses (3 each, under the per-address limit).
    for i in 0..30 {
        let address = format!("192.0.2.{}", i % 10 + 1);
        assert_eq!(
            app.login_from("ada@example.com", "guess", &address)
                .await
                .status(),
            401
        );
    }
    let started = Instant::now();
    let owner = app
        .login_from("ada@example.com", PASSWORD, "198.51.100.77")
        .await;
    assert_eq!(owner.status(), 200);
    // The default slowdown holds every attempt for that email a second.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sign_ups_from_one_address_are_throttled() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    let signup_from = |i: usize, address: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/api/auth/signup"))
                .header("x-forwarded-for", address)
                .json(&json!({ "email": format!("u{i}@example.com"), "password": PASSWORD }))
                .send()
                .await
                .unwrap()
        }
    };
    // The default allows 10 sign-ups an hour from one address.
    for i in 0..10 {
        assert_eq!(signup_from(i, "203.0.113.9").await.status(), 201);
    }
    let refused = signup_from(10, "203.0.113.9").await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600, "{retry}");
    assert_error(refused, 429, "/api/auth/signup").await;
    assert_eq!(app.db.count("users").await, 10);
    assert_eq!(signup_from(11, "198.51.100.3").await.status(), 201);
}

#[tokio::test]
async fn expired_sessions_spent_tokens_and_old_throttle_rows_are_purged() {
    let mut app = spawn_app().await;
    let ada = app.account("ada@example.com").await;
    let pool = app.db.pool().await;
    // A session that ended a day ago with its tokens, a token that expired in
    // a live session, and a throttle window long gone.
    sqlx::query(
        "insert into sessions (id, user_id, expires_at) values \
           ('00000000-0000-7000-8000-000000000001', $1, now() - interval '1 day')",
    )
    .bind(ada.id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into refresh_tokens (token_hash, session_id, expires_at) values \
           ('\\x01', '00000000-0000-7000-8000-000000000001', now() - interval '1 day'), \
           ('\\x02', $1, now() - interval '1 hour')",
    )
    .bind(session_of(&ada.token))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into login_failures (scope, key, window_start, failures) \
         values ('email', 'old@example.com', now() - interval '2 days', 3)",
    )
    .execute(&pool)
    .await
    .unwrap();
    // A new copy purges when it starts, then on its schedule.
    app.start_auth_worker();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = sqlx::query_scalar(
            "select (select count(*) from sessions where id = '00000000-0000-7000-8000-000000000001') \
                  + (select count(*) from refresh_tokens where token_hash in ('\\x01', '\\x02')) \
                  + (select count(*) from login_failures where key = 'old@example.com')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} expired rows were never purged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The live session is untouched.
    assert_eq!(
        app.get_with_token("/api/users/me", &ada.token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_retried_refresh_inside_the_grace_window_gets_the_current_token_pair() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let first = app.login_ok("ada@example.com", PASSWORD).await;
    let old = first["refreshToken"].as_str().unwrap();
    let rotated: Value = app.refresh(old).await.json().await.unwrap();
    // The reply was lost; the client retries with the token it had.
    let retried = app.refresh(old).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["refreshToken"], rotated["refreshToken"]);
    assert_eq!(retried["user"]["email"], "ada@example.com");
    assert_eq!(
        app.get_with_token("/api/users/me", retried["accessToken"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // The current token goes on working.
    let next = app.refresh(rotated["refreshToken"].as_str().unwrap()).await;
    assert_eq!(next.status(), 200);

    // After the grace window, the same retry is a theft: the family dies.
    sqlx::query("update refresh_tokens set spent_at = spent_at - interval '1 hour' where spent_at is not null")
        .execute(&app.db.pool().await)
        .await
        .unwrap();
    assert_error(app.refresh(old).await, 401, "/api/auth/refresh").await;
    let next: Value = next.json().await.unwrap();
    assert_error(
        app.refresh(next["refreshToken"].as_str().unwrap()).await,
        401,
        "/api/auth/refresh",
    )
    .await;
}

#[tokio::test]
async fn a_password_sent_as_a_number_never_appears_in_the_error() {
    let app = spawn_app().await;
    for path in ["/api/auth/login", "/api/auth/signup"] {
        let response = app
            .post(
                path,
                &json!({"email": "ada@example.com", "password": 987654321}),
            )
            .await;
        let body = assert_error(response, 400, path).await;
        assert!(!body.to_string().contains("987654321"), "{body}");
    }
    // Straight onto NATS too.
    let (client, _) = app
        .nats
        .connect_as_gateway_to(shared::auth::SERVICE)
        .await
        .unwrap();
    let reply = client
        .request(
            "auth.login",
            r#"{"email":"ada@example.com","password":987654321}"#.into(),
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(
        text.contains("400") && !text.contains("987654321"),
        "{text}"
    );
}

#[tokio::test]
async fn a_database_outage_answers_503_without_naming_the_database() {
    let app = spawn_app_with(Options {
        // Nothing listens on port 1.
        auth: |s| {
            s.database.url = "postgres://postgres@127.0.0.1:1/natsauth".to_owned().into();
            s.database.acquire_timeout_ms = 300;
        },
        ..Options::default()
    })
    .await;
    let response = app.signup("ada@example.com", PASSWORD).await;
    let body = assert_error(response, 503, "/api/auth/signup").await;
    assert_eq!(body["message"], "service unavailable");
}

#[tokio::test]
async fn a_right_password_gives_its_attempt_back_so_the_owner_is_never_counted_out() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    // Four typos and a success, three times over: 15 attempts from one
    // address, 12 of them wrong, yet never more than 4 failures in a row.
    for round in 0..3 {
        for _ in 0..4 {
            let typo = app.login("ada@example.com", "not my password").await;
            assert_eq!(typo.status(), 401, "round {round}");
        }
        assert_eq!(
            app.login("ada@example.com", PASSWORD).await.status(),
            200,
            "round {round}"
        );
    }
}

/// A user signed up and logged in: its id, access token and session.
struct Login {
    id: i64,
    access: String,
    refresh: String,
    session: uuid::Uuid,
}

async fn logged_in(app: &TestApp, email: &str) -> Login {
    app.signup_ok(email).await;
    let body = app.login_ok(email, PASSWORD).await;
    let access = body["accessToken"].as_str().unwrap().to_owned();
    Login {
        id: body["user"]["id"].as_i64().unwrap(),
        session: session_of(&access),
        refresh: body["refreshToken"].as_str().unwrap().to_owned(),
        access,
    }
}

async fn log_out(app: &TestApp, login: &Login) {
    let logout = json!({"refreshToken": login.refresh});
    let response = app
        .call(
            Method::POST,
            "/api/auth/logout",
            login.access.as_str(),
            Some(&logout),
        )
        .send()
        .await;
    assert_eq!(response.status(), 204);
}

/// The workers check callers in batches (`runtime::db::callers`): one query
/// for every request that came together. Within one batch each claim still
/// gets its own answer: a live session its own user with the current role;
/// a revoked or expired session, another user's session, an unknown one or
/// none, 401.
#[tokio::test]
async fn one_coalesced_caller_check_answers_each_claim_on_its_own() {
    use runtime::{db::callers::Callers, service::ResolveCaller};

    let app = spawn_app().await;
    let ada = logged_in(&app, "ada@example.com").await;
    let bob = logged_in(&app, "bob@example.com").await;
    let cy = logged_in(&app, "cy@example.com").await;
    let dee = logged_in(&app, "dee@example.com").await;
    log_out(&app, &bob).await;
    let db = app.db.pool().await;
    sqlx::query("update sessions set expires_at = now() - interval '1 second' where id = $1")
        .bind(cy.session)
        .execute(&db)
        .await
        .unwrap();
    // Made an ADMIN after its token was issued: the token still says USER.
    sqlx::query("update users set role = 'ADMIN' where id = $1")
        .bind(dee.id)
        .execute(&db)
        .await
        .unwrap();

    let claim = |id: i64, session: Option<uuid::Uuid>| Caller {
        id,
        role: Role::User,
        session,
    };
    let claims = [
        claim(ada.id, Some(ada.session)),
        claim(bob.id, Some(bob.session)),
        claim(cy.id, Some(cy.session)),
        // Ada's live session, claimed by Bob.
        claim(bob.id, Some(ada.session)),
        claim(ada.id, None),
        claim(ada.id, Some(uuid::Uuid::new_v4())),
        claim(dee.id, Some(dee.session)),
        // The same claim twice in one batch.
        claim(ada.id, Some(ada.session)),
    ];
    // As the user-worker connects: its own role, least privilege.
    let pool = sqlx::PgPool::connect(&app.db.url_as("natsauth_user_worker"))
        .await
        .unwrap();
    let callers = Callers::new(pool, 1);
    // Every check is queued before the lane first runs (this test's runtime
    // has one thread), so they make one batch.
    let answers =
        futures::future::join_all(claims.iter().map(|c| callers.resolve_caller(*c))).await;

    let users: Vec<Option<(i64, Role)>> = answers
        .iter()
        .map(|a| a.as_ref().ok().map(|u| (u.id, u.role)))
        .collect();
    assert_eq!(
        users,
        [
            Some((ada.id, Role::User)),
            None,
            None,
            None,
            None,
            None,
            Some((dee.id, Role::Admin)),
            Some((ada.id, Role::User)),
        ]
    );
    for answer in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(answer.status_code, 401, "{answer:?}");
    }
    assert_eq!(answers[0].as_ref().unwrap().email, "ada@example.com");
    // The claim without a session is refused before it is queued.
    assert_eq!(callers.queries(), 1, "one query for the whole batch");
}

/// Through the whole stack, many `/me` at once with live and logged-out
/// tokens of several users (checked together in the user-worker's
/// batches): each gets its own user or 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_me_with_live_and_ended_sessions_each_get_their_own_answer() {
    let app = spawn_app().await;
    let mut logins = Vec::new();
    for i in 0..6 {
        logins.push(logged_in(&app, &format!("user{i}@example.com")).await);
    }
    for ended in logins.iter().skip(1).step_by(2) {
        log_out(&app, ended).await;
    }
    let app = &app;
    let calls = (0..8)
        .flat_map(|_| logins.iter().enumerate())
        .map(|(i, login)| async move {
            let response = app
                .call(Method::GET, "/api/users/me", login.access.as_str(), None)
                .send()
                .await;
            (i, response)
        });
    let replies = futures::future::join_all(calls).await;
    assert_eq!(replies.len(), 48);
    for (i, response) in replies {
        if i % 2 == 0 {
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["email"], format!("user{i}@example.com"));
            assert_eq!(body["id"], logins[i].id);
        } else {
            assert_error(response, 401, "/api/users/me").await;
        }
    }
}

/// With every connection taken (the database out of reach, say), a check
/// queued behind a batch that is waiting for one still gets its 503 about
/// `acquire_timeout` after it arrived, as its own query would have, not a
/// whole timeout after that batch gave up (which would pass the gateway's
/// NATS timeout and turn into a 504).
#[tokio::test]
async fn a_caller_check_waits_for_a_connection_no_longer_than_the_pools_timeout() {
    use runtime::{db::callers::Callers, service::ResolveCaller};

    let db = testkit::TestDb::create().await;
    let acquire_timeout = Duration::from_secs(2);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(acquire_timeout)
        .connect(&db.url_as("natsauth_user_worker"))
        .await
        .unwrap();
    let held = pool.acquire().await.unwrap();
    let callers = Callers::new(pool.clone(), 1);
    let claim = Caller {
        id: 1,
        role: Role::User,
        session: Some(uuid::Uuid::new_v4()),
    };
    let started = Instant::now();
    // The one lane takes the first check and waits for the connection.
    let first = tokio::spawn({
        let callers = callers.clone();
        async move { callers.resolve_caller(claim).await }
    });
    let taken = testkit::eventually(acquire_timeout / 2, Duration::from_millis(5), || async {
        callers.queries() == 1
    });
    assert!(taken.await, "the lane took the first check");
    // Queued while the lane waits: taken only when the first has failed.
    let second = callers.resolve_caller(claim).await;
    let waited = started.elapsed();
    assert_eq!(second.unwrap_err().status_code, 503);
    assert_eq!(first.await.unwrap().unwrap_err().status_code, 503);
    assert!(
        waited < acquire_timeout * 7 / 4,
        "the second check was answered after {waited:?}"
    );
    drop(held);
    // Once a connection is free the same checks are answered (401: no
    // such session) at once.
    let answer = callers.resolve_caller(claim).await;
    assert_eq!(answer.unwrap_err().status_code, 401);
    assert_eq!(callers.queries(), 3);
}
