//! A demotion, a deletion, a logout or a new password: the tokens it ends get
//! 401 on every route at once, and a demoted ADMIN cannot undo it.

use reqwest::Method;
use serde_json::{Value, json};
use shared::{Caller, Role};
use testkit::PASSWORD;

use super::{log_out, logged_in, session_of};
use crate::helpers::{TestApp, spawn_app};

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
        mfa: false,
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
        mfa: false,
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
