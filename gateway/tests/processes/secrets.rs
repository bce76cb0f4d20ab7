//! No secret in a log line or an error body: a whole account's life through
//! the real binaries, every process logging at `debug`, then every line
//! searched for every password, token and hash the flow used (a second
//! factor's secret, codes and pending login among them).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testkit::{MailCatcher, NatsServer, TempDir, TestDb, assert_error};

use crate::stack::{Backends, Stack};

const PASSWORD: &str = "first passphrase of ada";
const NEW_PASSWORD: &str = "second passphrase of ada";
const THIRD_PASSWORD: &str = "third passphrase of ada";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_leaves_no_password_token_or_hash_in_any_log_or_error_body() {
    let logs = TempDir::new();
    let log = |name: &str| logs.path.join(format!("{name}.log"));
    let nats = NatsServer::start().await;
    let db = TestDb::create().await;
    let backends = Backends::of(nats.url(), &nats.passwords, &db);
    let debug = [("GATEWAY_LOG__LEVEL", "debug")];
    let stack = Stack::on_logging(backends, &debug, Some(&log("gateway"))).await;
    let _auth = stack.worker_logging(
        "auth-worker",
        &[("AUTH_WORKER_LOG__LEVEL", "debug")],
        Some(&log("auth-worker")),
    );
    let _user = stack.worker_logging(
        "user-worker",
        &[("USER_WORKER_LOG__LEVEL", "debug")],
        Some(&log("user-worker")),
    );
    let catcher = MailCatcher::start().await;
    let port = catcher.port().to_string();
    let _mail = stack.worker_logging(
        "mail-worker",
        &[
            ("MAIL_WORKER_LOG__LEVEL", "debug"),
            ("MAIL_WORKER_SMTP__PORT", &port),
        ],
        Some(&log("mail-worker")),
    );
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("mail-worker", 1).await;

    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), NEW_PASSWORD.into(), THIRD_PASSWORD.into()];
    let mut bodies: Vec<Value> = Vec::new();
    let post = |path: &'static str, body: Value| {
        let stack = &stack;
        async move { stack.post(path, &body).await }
    };

    // Sign up, verify from the mail.
    let signup = post(
        "/api/auth/signup",
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(signup.status(), 201);
    let verify_mail = catcher
        .wait_for("ada@example.com", "Confirm your email")
        .await;
    let verify_token = verify_mail.token("/verify").expect("a verification link");
    secrets.push(verify_token.clone());
    let verified = post("/api/auth/verify", json!({"token": verify_token})).await;
    assert_eq!(verified.status(), 200);
    // Spent: refused, and the refusal does not echo it.
    bodies.push(
        assert_error(
            post("/api/auth/verify", json!({"token": verify_token})).await,
            400,
            "/api/auth/verify",
        )
        .await,
    );

    // Log in; a wrong password's refusal.
    let login = post(
        "/api/auth/login",
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.unwrap();
    let (access, refresh) = (
        tokens["accessToken"].as_str().unwrap().to_owned(),
        tokens["refreshToken"].as_str().unwrap().to_owned(),
    );
    secrets.extend([access.clone(), refresh.clone()]);
    bodies.push(
        assert_error(
            post(
                "/api/auth/login",
                json!({"email": "ada@example.com", "password": "not the passphrase"}),
            )
            .await,
            401,
            "/api/auth/login",
        )
        .await,
    );
    secrets.push("not the passphrase".into());

    // Forgot the password: recover, reset from the mail.
    assert_eq!(
        post("/api/auth/recover", json!({"email": "ada@example.com"}))
            .await
            .status(),
        202
    );
    let reset_mail = catcher.wait_for("ada@example.com", "Reset").await;
    let reset_token = reset_mail.token("/reset").expect("a reset link");
    secrets.push(reset_token.clone());
    let reset = post(
        "/api/auth/reset",
        json!({"token": reset_token, "newPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reset.status(), 204);
    bodies.push(
        assert_error(
            post(
                "/api/auth/reset",
                json!({"token": reset_token, "newPassword": THIRD_PASSWORD}),
            )
            .await,
            400,
            "/api/auth/reset",
        )
        .await,
    );
    // The old refresh token, spent by the reset's end of every session.
    bodies.push(
        assert_error(
            post("/api/auth/refresh", json!({"refreshToken": refresh})).await,
            401,
            "/api/auth/refresh",
        )
        .await,
    );

    // A new session; a change of address confirmed from the mail; a
    // password change.
    let login = post(
        "/api/auth/login",
        json!({"email": "ada@example.com", "password": NEW_PASSWORD}),
    )
    .await;
    let tokens: Value = login.json().await.unwrap();
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    secrets.extend([
        access.clone(),
        tokens["refreshToken"].as_str().unwrap().to_owned(),
    ]);
    let change = stack
        .http
        .post(stack.url("/api/users/me/email"))
        .bearer_auth(&access)
        .json(&json!({"email": "ada@example.org", "currentPassword": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 202);
    let confirm_mail = catcher
        .wait_for("ada@example.org", "Confirm your new")
        .await;
    let confirm_token = confirm_mail.token("/verify").expect("a confirmation link");
    secrets.push(confirm_token.clone());
    assert_eq!(
        post("/api/auth/verify", json!({"token": confirm_token}))
            .await
            .status(),
        200
    );
    let changed = stack
        .http
        .put(stack.url("/api/users/me/password"))
        .bearer_auth(&access)
        .json(&json!({"currentPassword": NEW_PASSWORD, "newPassword": THIRD_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    catcher.wait_for("ada@example.org", "password").await;

    // A second factor: an authenticator app's secret, its URI, the codes,
    // a pending login's token, wrong codes refused.
    let begun = stack
        .http
        .post(stack.url("/api/users/me/mfa/totp"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status(), 200);
    let begun: Value = begun.json().await.unwrap();
    let secret_text = begun["secret"].as_str().unwrap().to_owned();
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_text.as_bytes())
        .unwrap();
    secrets.extend([
        secret_text,
        begun["otpauthUri"].as_str().unwrap().to_owned(),
    ]);
    let step =
        auth_worker::factors::totp::step_of(time::OffsetDateTime::now_utc().unix_timestamp());
    let code = auth_worker::factors::totp::code_at(&secret, step).unwrap();
    let confirmed = stack
        .http
        .post(stack.url("/api/users/me/mfa/totp/confirm"))
        .bearer_auth(&access)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let confirmed: Value = confirmed.json().await.unwrap();
    let recovery: Vec<String> = serde_json::from_value(confirmed["recoveryCodes"].clone()).unwrap();
    secrets.extend(recovery.iter().cloned());
    secrets.push(
        confirmed["grant"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let pending = post(
        "/api/auth/login",
        json!({"email": "ada@example.org", "password": THIRD_PASSWORD}),
    )
    .await;
    assert_eq!(pending.status(), 202);
    let pending: Value = pending.json().await.unwrap();
    let mfa_token = pending["mfaToken"].as_str().unwrap().to_owned();
    secrets.push(mfa_token.clone());
    for wrong in [code.as_str(), "000000"] {
        bodies.push(
            assert_error(
                post(
                    "/api/auth/login/mfa",
                    json!({"mfaToken": mfa_token, "code": wrong}),
                )
                .await,
                403,
                "/api/auth/login/mfa",
            )
            .await,
        );
    }
    let second = post(
        "/api/auth/login/mfa",
        json!({"mfaToken": mfa_token, "code": recovery[0]}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let tokens: Value = second.json().await.unwrap();
    secrets.extend([
        tokens["accessToken"].as_str().unwrap().to_owned(),
        tokens["refreshToken"].as_str().unwrap().to_owned(),
        hex(&Sha256::digest(mfa_token.as_bytes())),
    ]);
    catcher.wait_for("ada@example.org", "recovery code").await;

    // What the database keeps in their place: hashes.
    let pool = db.pool().await;
    let password_hash: String = sqlx::query_scalar("select password_hash from users")
        .fetch_one(&pool)
        .await
        .unwrap();
    secrets.push(password_hash);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar(
        "select token_hash from email_tokens where token_hash is not null
         union all select token_hash from refresh_tokens
         union all select secret from totp_factors
         union all select code_hash from recovery_codes",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    secrets.extend(stored.iter().map(|h| hex(h)));
    for token in [&verify_token, &reset_token, &confirm_token] {
        secrets.push(hex(&Sha256::digest(token.as_bytes())));
    }

    let mut searched = 0;
    for name in ["gateway", "auth-worker", "user-worker", "mail-worker"] {
        let text = std::fs::read_to_string(log(name)).unwrap_or_default();
        assert!(!text.is_empty(), "{name} logged nothing at debug");
        searched += text.lines().count();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{name}'s log holds a secret: {secret:.12}…"
            );
        }
        assert!(
            !text.contains("$argon2id$"),
            "{name}'s log holds a password hash"
        );
    }
    for body in &bodies {
        let text = body.to_string();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "an error body holds a secret: {text}"
            );
        }
    }
    println!(
        "searched {searched} log lines and {} error bodies for {} secrets",
        bodies.len(),
        secrets.len()
    );
}
