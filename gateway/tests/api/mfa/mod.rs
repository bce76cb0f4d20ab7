//! The second factor over the HTTP API: an authenticator app (TOTP) with
//! recovery codes, the login's second step, step-up, the ADMIN policy and
//! the proxy's per-route demands. Codes are computed here from the secret
//! the enrolment shows, as a phone app would.

mod policy;
mod step_up;
mod totp;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::{Account, PASSWORD};

use crate::helpers::TestApp;

/// An account with an authenticator app on: its secret, its recovery
/// codes, and the time step its confirming code used (each later code must
/// be of a later step).
pub struct Enrolled {
    pub account: Account,
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
    pub last_step: i64,
}

/// The current time step.
pub fn now_step() -> i64 {
    auth_worker::factors::totp::step_of(time::OffsetDateTime::now_utc().unix_timestamp())
}

/// The app's code for `step`.
pub fn code(secret: &[u8], step: i64) -> String {
    auth_worker::factors::totp::code_at(secret, step).unwrap()
}

/// RFC 4648 base32 without padding, as the enrolment shows the secret.
pub fn base32(text: &str) -> Vec<u8> {
    data_encoding::BASE32_NOPAD
        .decode(text.as_bytes())
        .unwrap_or_else(|e| panic!("{text:?} is not base32: {e}"))
}

/// Signs `email` up and turns an authenticator app on with the current
/// step's code; the account's token is the upgraded one (`grant`).
pub async fn enrol(app: &TestApp, email: &str) -> Enrolled {
    let account = app.account(email).await;
    enrol_account(app, account).await
}

/// Turns an app on for `account` (whose token may be an ADMIN's).
pub async fn enrol_account(app: &TestApp, mut account: Account) -> Enrolled {
    let begun = app
        .call(Method::POST, "/api/users/me/mfa/totp", &account, None)
        .ok()
        .await;
    let secret = base32(begun["secret"].as_str().unwrap());
    let step = now_step();
    let confirmed = app
        .call(
            Method::POST,
            "/api/users/me/mfa/totp/confirm",
            &account,
            Some(&json!({ "code": code(&secret, step) })),
        )
        .ok()
        .await;
    let codes: Vec<String> = serde_json::from_value(confirmed["recoveryCodes"].clone()).unwrap();
    account.token = confirmed["grant"]["accessToken"]
        .as_str()
        .expect("the first factor upgrades the session: a new access token")
        .to_owned();
    Enrolled {
        account,
        secret,
        recovery_codes: codes,
        last_step: step,
    }
}

/// The first step of a login of a user with a factor: 202 and the pending
/// login's token.
pub async fn pending_login(app: &TestApp, email: &str) -> String {
    let response = app.login(email, PASSWORD).await;
    assert_eq!(response.status(), 202, "a second factor is asked for");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfaRequired"], true, "{body}");
    assert!(body.get("accessToken").is_none(), "no token yet: {body}");
    body["mfaToken"].as_str().unwrap().to_owned()
}

/// `POST /api/auth/login/mfa` with `proof` (`{"code": …}`).
pub async fn second_step(app: &TestApp, mfa_token: &str, proof: Value) -> reqwest::Response {
    let mut body = proof;
    body["mfaToken"] = json!(mfa_token);
    app.post("/api/auth/login/mfa", &body).await
}
