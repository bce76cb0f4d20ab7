//! An authenticator app: enrolment, the login's second step, codes that
//! are refused (replayed, out of the window, malformed), recovery codes,
//! the throttle, and removal.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::PASSWORD;

use super::{code, enrol, now_step, pending_login, second_step};
use crate::helpers::{Options, claims, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_app_is_enrolled_then_asked_for_at_login_and_the_session_says_how() {
    let app = spawn_app().await;
    let account = app.account("ada@example.com").await;
    // Before: a password is enough, and the token says so.
    let status = app
        .call(Method::GET, "/api/users/me/mfa", &account, None)
        .ok()
        .await;
    assert_eq!(status["totp"], false);
    assert_eq!(status["amr"], json!(["pwd"]));
    let begun = app
        .call(Method::POST, "/api/users/me/mfa/totp", &account, None)
        .ok()
        .await;
    let uri = begun["otpauthUri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/natsauth:ada%40example.com?"),
        "{uri}"
    );
    assert!(begun["qrSvg"].as_str().unwrap().contains("<svg"));
    // Not on until a first code: a login still needs no factor.
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);

    let enrolled = super::enrol_account(&app, account).await;
    assert_eq!(enrolled.recovery_codes.len(), 10);
    let upgraded = claims(&enrolled.account.token);
    assert_eq!(upgraded["amr"], json!(["pwd", "otp"]));

    let mfa_token = pending_login(&app, "ada@example.com").await;
    let reply = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) }),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let tokens: Value = reply.json().await.unwrap();
    let access = claims(tokens["accessToken"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd", "otp"]), "{access}");
    assert!(access["auth_time"].as_i64().is_some());
    // The pending login is spent by the login it completed.
    let again = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) }),
    )
    .await;
    testkit::assert_error(again, 401, "/api/auth/login/mfa").await;
}

#[tokio::test]
async fn a_code_is_never_taken_twice_nor_outside_its_window() {
    let app = spawn_app().await;
    let enrolled = enrol(&app, "bo@example.com").await;
    let (secret, step) = (&enrolled.secret, enrolled.last_step);
    let mfa_token = pending_login(&app, "bo@example.com").await;
    // The code that turned the app on, again: refused, the login waits.
    let replayed = second_step(&app, &mfa_token, json!({ "code": code(secret, step) })).await;
    let body = testkit::assert_error(replayed, 403, "/api/auth/login/mfa").await;
    assert_eq!(body["message"], "invalid code or passkey");
    // Two steps ahead of now (beyond the ±1 window): refused.
    let ahead = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(secret, now_step() + 3) }),
    )
    .await;
    testkit::assert_error(ahead, 403, "/api/auth/login/mfa").await;
    // The next step's code works once…
    let next = code(secret, step + 1);
    let ok = second_step(&app, &mfa_token, json!({ "code": next })).await;
    assert_eq!(ok.status(), 200);
    // …and not at the next login.
    let second = pending_login(&app, "bo@example.com").await;
    let reused = second_step(&app, &second, json!({ "code": next })).await;
    testkit::assert_error(reused, 403, "/api/auth/login/mfa").await;
}

#[tokio::test]
async fn malformed_second_steps_are_400s_that_change_nothing() {
    let app = spawn_app().await;
    let enrolled = enrol(&app, "cy@example.com").await;
    let mfa_token = pending_login(&app, "cy@example.com").await;
    for (body, field) in [
        (json!({ "mfaToken": mfa_token }), "code"),
        (
            json!({ "mfaToken": mfa_token, "code": "123456", "passkey": {} }),
            "passkey",
        ),
        (json!({ "mfaToken": mfa_token, "code": "" }), "code"),
        (json!({ "mfaToken": mfa_token, "passkey": "x" }), "passkey"),
        (json!({ "code": "123456" }), "mfaToken"),
        (
            json!({ "mfaToken": mfa_token, "code": "1".repeat(40) }),
            "code",
        ),
    ] {
        let response = app.post("/api/auth/login/mfa", &body).await;
        let error = testkit::assert_error(response, 400, "/api/auth/login/mfa").await;
        let fields: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {error}");
    }
    // An unknown pending login: 401, whatever the code.
    let unknown = second_step(&app, "nope", json!({ "code": "123456" })).await;
    testkit::assert_error(unknown, 401, "/api/auth/login/mfa").await;
    // None of that spent the pending login or a step.
    let ok = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) }),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_the_owner_is_told() {
    let app = spawn_app().await;
    let enrolled = enrol(&app, "di@example.com").await;
    let recovery = enrolled.recovery_codes[3].clone();
    let mfa_token = pending_login(&app, "di@example.com").await;
    // Typed in capitals with a space instead of the dash: the same code.
    let typed = recovery.to_uppercase().replace('-', " ");
    let ok = second_step(&app, &mfa_token, json!({ "code": typed })).await;
    assert_eq!(ok.status(), 200);
    let tokens: Value = ok.json().await.unwrap();
    let status = app
        .call(
            Method::GET,
            "/api/users/me/mfa",
            tokens["accessToken"].as_str().unwrap(),
            None,
        )
        .ok()
        .await;
    assert_eq!(status["recoveryCodesLeft"], 9);
    let used = crate::recovery::event(&app, "mfa.recovery_code_used", enrolled.account.id).await;
    assert_eq!(used["left"], 9);

    let again = pending_login(&app, "di@example.com").await;
    let reused = second_step(&app, &again, json!({ "code": recovery })).await;
    testkit::assert_error(reused, 403, "/api/auth/login/mfa").await;

    // Ten new codes for a code of the app; the old ones stop working.
    let renewed = app
        .call(
            Method::POST,
            "/api/users/me/mfa/recovery-codes",
            tokens["accessToken"].as_str().unwrap(),
            Some(&json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) })),
        )
        .ok()
        .await;
    assert_eq!(renewed["recoveryCodes"].as_array().unwrap().len(), 10);
    let old = second_step(&app, &again, json!({ "code": enrolled.recovery_codes[4] })).await;
    testkit::assert_error(old, 403, "/api/auth/login/mfa").await;
    let new = renewed["recoveryCodes"][0].as_str().unwrap();
    let ok = second_step(&app, &again, json!({ "code": new })).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn parallel_guesses_are_counted_before_any_is_checked() {
    let app = spawn_app().await;
    let enrolled = enrol(&app, "ed@example.com").await;
    let mfa_token = pending_login(&app, "ed@example.com").await;
    // Twenty wrong codes at once from one address: at most five are
    // checked (`mfa.max_attempts_per_address`), the rest are 429.
    let guesses = (0..20).map(|i| {
        let body = json!({ "mfaToken": mfa_token, "code": format!("{:06}", 100_000 + i) });
        let app = &app;
        async move {
            app.post("/api/auth/login/mfa", &body)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(checked <= 5, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // The right code is refused too while the address is over the limit:
    // nothing is checked past it.
    let right = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) }),
    )
    .await;
    assert!(
        [401, 429].contains(&right.status().as_u16()),
        "{}",
        right.status()
    );
}

#[tokio::test]
async fn a_pending_login_dies_after_five_wrong_factors() {
    // The address's throttle out of the way: the pending login's own limit
    // is what ends it.
    let app = spawn_app_with(Options {
        auth: |s| s.mfa.max_attempts_per_address = 100,
        ..Options::default()
    })
    .await;
    let enrolled = enrol(&app, "fa@example.com").await;
    let mfa_token = pending_login(&app, "fa@example.com").await;
    for _ in 0..5 {
        let wrong = second_step(&app, &mfa_token, json!({ "code": "000000" })).await;
        assert_eq!(wrong.status(), 403);
    }
    let late = second_step(
        &app,
        &mfa_token,
        json!({ "code": code(&enrolled.secret, enrolled.last_step + 1) }),
    )
    .await;
    testkit::assert_error(late, 401, "/api/auth/login/mfa").await;
}

#[tokio::test]
async fn removing_the_app_takes_the_password_and_a_code() {
    let app = spawn_app().await;
    let enrolled = enrol(&app, "gu@example.com").await;
    let who = &enrolled.account;
    let path = "/api/users/me/mfa/totp";
    let wrong_password = json!({ "currentPassword": "not it at all", "code": code(&enrolled.secret, enrolled.last_step + 1) });
    app.call(Method::DELETE, path, who, Some(&wrong_password))
        .fails(403)
        .await;
    let wrong_code = json!({ "currentPassword": PASSWORD, "code": "000000" });
    app.call(Method::DELETE, path, who, Some(&wrong_code))
        .fails(403)
        .await;
    // Still on.
    assert!(!pending_login(&app, "gu@example.com").await.is_empty());
    let right = json!({ "currentPassword": PASSWORD, "code": enrolled.recovery_codes[0] });
    let response = app
        .call(Method::DELETE, path, who, Some(&right))
        .send()
        .await;
    assert_eq!(response.status(), 204);
    // Off: a password is enough again, and the recovery codes are gone.
    assert_eq!(app.login("gu@example.com", PASSWORD).await.status(), 200);
    let status = app
        .call(Method::GET, "/api/users/me/mfa", who, None)
        .ok()
        .await;
    assert_eq!(status["totp"], false);
    assert_eq!(status["recoveryCodesLeft"], 0);
    let disabled = crate::recovery::event(&app, "mfa.disabled", who.id).await;
    assert_eq!(disabled["remaining"], 0);
}
