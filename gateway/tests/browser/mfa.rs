//! The second factor in a real browser: an ADMIN without one is sent to
//! enrol; enrols an authenticator app (the key read off the page, the code
//! computed as a phone would) and a passkey (Chromium's WebDriver virtual
//! authenticator, the WebAuthn extension of WebDriver); is asked for a
//! factor at the next login, answered with the passkey and with a code;
//! is asked again before the MFA-only tool once its `max_auth_age` has
//! passed, and comes back to it; removes the passkey.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;
use testkit::PASSWORD;

use crate::Browser;

/// `POST /session/{id}/webauthn/authenticator`: a platform authenticator
/// with user verification, which answers every prompt at once.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "isUserConsenting": true,
        });
        (axum::http::Method::POST, Some(options.to_string()))
    }
}

/// The code an app shows now for the key on the page, of a step after
/// `after` (each code is taken once); the step used.
fn next_code(secret: &[u8], after: i64) -> (String, i64) {
    let now = auth_worker::factors::totp::step_of(time::OffsetDateTime::now_utc().unix_timestamp());
    let step = now.max(after + 1);
    (
        auth_worker::factors::totp::code_at(secret, step).unwrap(),
        step,
    )
}

#[tokio::test]
#[ignore = "needs Chromium and the web build: run by `cargo xtask test`"]
async fn an_admin_enrols_an_app_and_a_passkey_then_needs_one_to_log_in_and_to_open_the_tool() {
    let browser = Browser::start_with(true).await;
    let b = &browser;
    browser
        .run("mfa_walk", async {
            b.client
                .issue_cmd(AddVirtualAuthenticator)
                .await
                .expect("chromedriver's virtual authenticator");
            let admin = b.app.admin_account("root@example.com").await;
            sqlx::query("update users set email_verified = true where id = $1")
                .bind(admin.id)
                .execute(&b.app.db.pool().await)
                .await
                .unwrap();

            // An ADMIN without a factor is sent to enrol one.
            b.goto("/login?next=%2Fdashboard%2F").await;
            b.fill("Email", "root@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.click("Log in").await;
            b.wait_for_path("/account?mfa=required").await;
            b.says("An ADMIN account needs a second factor").await;

            // The authenticator app: the QR code and the key, then a code.
            b.click("Set up an authenticator app").await;
            let key = b
                .client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css("code.totp-secret"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let secret = data_encoding::BASE32_NOPAD
                .decode(key.trim().as_bytes())
                .unwrap_or_else(|e| panic!("the key {key:?} on the page: {e}"));
            b.full_page_screenshot("mfa-totp").await;
            let (code, mut last_step) = next_code(&secret, i64::MIN + 1);
            b.fill("Code from the app", &code).await;
            b.click("Turn on").await;
            b.heading("Save these recovery codes").await;
            b.screenshot("mfa-recovery-codes").await;
            b.click("Done").await;

            // A passkey, from the browser's (virtual) authenticator.
            b.fill("Passkey name", "Laptop").await;
            b.click("Add a passkey").await;
            b.button("Remove Laptop").await;
            b.full_page_screenshot("mfa-account").await;

            // The session proved a factor: the back-office opens.
            b.goto("/dashboard/").await;
            b.heading("Users").await;

            // The next login asks for a factor: the passkey.
            b.goto("/account").await;
            b.click("Log out").await;
            b.wait_for_path("/login").await;
            b.goto("/login?next=%2Fdashboard%2F").await;
            b.fill("Email", "root@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.click("Log in").await;
            b.heading("Two-step verification").await;
            b.screenshot("mfa-login").await;
            b.click("Use a passkey").await;
            b.wait_for_path("/dashboard/").await;
            b.heading("Users").await;

            // And again with a code.
            b.goto("/account").await;
            b.click("Log out").await;
            b.wait_for_path("/login").await;
            b.fill("Email", "root@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.click("Log in").await;
            b.heading("Two-step verification").await;
            let (code, step) = next_code(&secret, last_step);
            last_step = step;
            b.fill("Code", &code).await;
            b.click("Verify").await;
            b.wait_for_path("/dashboard/").await;

            // The MFA-only tool (`max_auth_age` of 3 s): open now; once the
            // age has passed, the factor page first, then back to the tool.
            b.goto("/proxy/nats/varz").await;
            wait_for_text(b, "server_id").await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                b.goto("/proxy/nats/varz").await;
                let url = b.client.current_url().await.unwrap();
                if url.path() == "/mfa" {
                    break;
                }
                assert!(Instant::now() < deadline, "never asked again: {url}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            b.heading("Confirm it's you").await;
            b.screenshot("mfa-step-up").await;
            b.click("Use a passkey").await;
            b.wait_for_path("/proxy/nats/varz").await;
            wait_for_text(b, "server_id").await;

            // The passkey goes: the password, and the passkey itself.
            b.goto("/account").await;
            b.click("Remove Laptop").await;
            b.heading("Remove this passkey?").await;
            b.fill("Current password", PASSWORD).await;
            b.click("Use a passkey").await;
            b.says("Removed the passkey Laptop").await;
            let left: i64 = sqlx::query_scalar("select count(*) from passkeys where user_id = $1")
                .bind(admin.id)
                .fetch_one(&b.app.db.pool().await)
                .await
                .unwrap();
            assert_eq!(left, 0);
            let _ = last_step;
        })
        .await;
}

/// Waits until the page's text contains `text`.
async fn wait_for_text(b: &Browser, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = b
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .unwrap();
        if body.as_str().is_some_and(|t| t.contains(text)) {
            return;
        }
        assert!(Instant::now() < deadline, "no {text:?} on the page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
