//! The workers check callers in batches (`runtime::db::callers`): one query
//! for every request that came together, yet each claim its own answer.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use shared::{Caller, Role};
use testkit::assert_error;

use super::{log_out, logged_in};
use crate::helpers::spawn_app;

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
        mfa: false,
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
        mfa: false,
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
