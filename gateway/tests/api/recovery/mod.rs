//! Recovery, verification, sessions and events, driven over NATS as the
//! gateway and the mail-worker call the auth-worker. Links are obtained the
//! way the mail-worker does: the event names the token's row
//! (`tokenId`), and `auth.mail_token`, asked as the `mail-worker` NATS
//! user, makes the token.

mod account;
mod enumeration;
mod events;
mod reset;
mod verify;

use std::time::Duration;

use serde_json::{Value, json};
use shared::{Caller, Role};

use crate::helpers::TestApp;

/// The outbox's events of `kind` about `user`, oldest first.
pub async fn events(app: &TestApp, kind: &str, user: i64) -> Vec<Value> {
    sqlx::query_scalar(
        "select payload from outbox where kind = $1 and (payload->>'userId')::bigint = $2
         order by id",
    )
    .bind(kind)
    .bind(user)
    .fetch_all(&app.db.pool().await)
    .await
    .unwrap()
}

/// The only event of `kind` about `user`.
pub async fn event(app: &TestApp, kind: &str, user: i64) -> Value {
    let mut found = events(app, kind, user).await;
    assert_eq!(
        found.len(),
        1,
        "one {kind} event for user {user}: {found:?}"
    );
    found.pop().unwrap()
}

/// `auth.mail_token` as the mail-worker: the error status (None for a
/// success) and the body.
pub async fn mail_token(app: &TestApp, token_id: &Value) -> (Option<u16>, Value) {
    let (mail, _) = app.nats.connect_as("mail-worker").await.unwrap();
    let reply = mail
        .request(
            "auth.mail_token",
            json!({ "tokenId": token_id }).to_string().into(),
        )
        .await
        .unwrap();
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(shared::headers::NATS_SERVICE_ERROR_CODE))
        .map(|v| v.as_str().parse().unwrap());
    (status, serde_json::from_slice(&reply.payload).unwrap())
}

/// The token of the newest event of `kind` about `user`, as its mail would
/// carry it.
pub async fn link_token(app: &TestApp, kind: &str, user: i64) -> String {
    let event = events(app, kind, user)
        .await
        .pop()
        .unwrap_or_else(|| panic!("no {kind} event"));
    let (status, reply) = mail_token(app, &event["tokenId"]).await;
    assert_eq!(status, None, "a token for {event}: {reply}");
    reply["token"].as_str().unwrap().to_owned()
}

/// A request as the gateway sends it, with exactly these client headers
/// (the address and `User-Agent` of the HTTP client) and caller.
pub async fn call(
    app: &TestApp,
    subject: &str,
    caller: Option<Caller>,
    client: Option<(&str, &str)>,
    body: &Value,
) -> (Option<u16>, Value) {
    app.nats_request_from(subject, caller, client, body).await
}

/// Logs `email` in over NATS as from `address` with `user_agent`; the
/// reply (tokens, user) and the session's caller.
pub async fn login_from(
    app: &TestApp,
    email: &str,
    address: &str,
    user_agent: &str,
) -> (Value, Caller) {
    let body = json!({ "email": email, "password": testkit::PASSWORD });
    let (status, reply) = call(app, "auth.login", None, Some((address, user_agent)), &body).await;
    assert_eq!(status, None, "login: {reply}");
    let claims = crate::helpers::claims(reply["accessToken"].as_str().unwrap());
    let caller = Caller {
        id: reply["user"]["id"].as_i64().unwrap(),
        role: serde_json::from_value(reply["user"]["role"].clone()).unwrap(),
        session: claims["sid"].as_str().map(|s| s.parse().unwrap()),
        mfa: false,
    };
    (reply, caller)
}

/// A caller for `id` with its newest live session (as its newest token).
pub async fn caller_of(app: &TestApp, id: i64, role: Role) -> Caller {
    let session = sqlx::query_scalar(
        "select id from sessions where user_id = $1 and revoked_at is null
         order by created_at desc limit 1",
    )
    .bind(id)
    .fetch_optional(&app.db.pool().await)
    .await
    .unwrap();
    Caller {
        id,
        role,
        session,
        mfa: false,
    }
}

/// Waits until every outbox row is published (the relay acknowledged it).
pub async fn all_published(app: &TestApp) {
    let pool = app.db.pool().await;
    let pool = &pool;
    let done = testkit::eventually(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async move {
            let pending: i64 =
                sqlx::query_scalar("select count(*) from outbox where published_at is null")
                    .fetch_one(pool)
                    .await
                    .unwrap();
            pending == 0
        },
    );
    assert!(done.await, "the relay did not publish every event");
}
