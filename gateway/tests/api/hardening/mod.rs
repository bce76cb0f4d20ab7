//! Adversarial tests: a revoked session or a changed role stops working at
//! once, throttles cannot be raced or turned against an account's owner,
//! retries of a refresh keep the session, purges run, and error bodies leak
//! nothing.
//!
//! * `revocation`: a demotion, a deletion, a logout or a new password counts
//!   at once on every route.
//! * `throttles`: login and sign-up limits that cannot be raced or turned
//!   against an account's owner.
//! * `sessions`: purges of what expired, and a retried refresh.
//! * `errors`: error bodies that name neither a password nor the database.
//! * `caller_checks`: batched caller checks, each claim answered on its own.

mod caller_checks;
mod errors;
mod revocation;
mod sessions;
mod throttles;

use reqwest::Method;
use serde_json::json;
use testkit::PASSWORD;

use crate::helpers::{TestApp, claims};

fn session_of(token: &str) -> uuid::Uuid {
    claims(token)["sid"].as_str().unwrap().parse().unwrap()
}

/// A user signed up and logged in: its id, access token and session.
pub(crate) struct Login {
    pub(crate) id: i64,
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) session: uuid::Uuid,
}

pub(crate) async fn logged_in(app: &TestApp, email: &str) -> Login {
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

pub(crate) async fn log_out(app: &TestApp, login: &Login) {
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
