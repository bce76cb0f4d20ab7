//! The walks of a mail's link: a forgotten password reset from the link in
//! the caught mail, and an address verified from its link. The links are
//! read from the mail the stack's mail-worker sent to its SMTP catcher; only
//! their path and query are followed, on the browser's gateway.

use std::time::Duration;

use reqwest::{Method, header};
use testkit::PASSWORD;

use crate::Browser;

const NEW_PASSWORD: &str = "a passphrase from the reset link";
/// A browser the sessions list names "Firefox on Linux".
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// "Forgot password?" on the login page, the link in the mail, a new
/// password; the new password logs in, and a session from before the reset
/// (another device's cookie) is refused at once.
#[tokio::test]
#[ignore = "needs Chromium and the web build: run by `cargo xtask test`"]
async fn a_forgotten_password_is_reset_from_the_mailed_link_and_old_sessions_end() {
    let browser = Browser::start().await;
    let b = &browser;
    browser
        .run("reset_walk", async {
            b.app.signup_ok("ada@example.com").await;
            // A link's page is the app's, and names no Referer: its token
            // goes nowhere but into the page's POST.
            let page = b.app.get("/reset?token=not-a-real-one").await;
            assert_eq!(page.status(), 200);
            assert_eq!(page.headers()[header::REFERRER_POLICY], "no-referrer");
            let old_cookie = cookie_session(b, "ada@example.com", PASSWORD, None).await;
            assert_eq!(session_status(b, &old_cookie).await, 200);

            b.goto("/login?next=%2Faccount").await;
            b.click("Forgot password?").await;
            b.wait_for_path("/forgot?next=%2Faccount").await;
            b.heading("Reset your password").await;
            b.fill("Email", "ada@example.com").await;
            b.click("Send reset link").await;
            b.says("If an account exists for that address, we sent a link to reset its password.")
                .await;
            b.screenshot("forgot").await;

            // Opening the link spends nothing, and the page takes the token
            // out of the address bar.
            let link = mailed_link(b, "ada@example.com", "/reset").await;
            b.goto(&link).await;
            b.heading("Choose a new password").await;
            b.wait_for_path("/reset").await;
            assert_eq!(session_status(b, &old_cookie).await, 200);
            assert_eq!(b.app.login("ada@example.com", PASSWORD).await.status(), 200);

            b.fill("New password", NEW_PASSWORD).await;
            b.fill("Confirm new password", NEW_PASSWORD).await;
            b.screenshot("reset").await;
            b.click("Set new password").await;
            b.says("Your password is set").await;

            // Every session of the account ended with the reset.
            assert_eq!(session_status(b, &old_cookie).await, 401);
            assert_eq!(b.app.login("ada@example.com", PASSWORD).await.status(), 401);

            b.click("Log in").await;
            b.wait_for_path("/login").await;
            b.fill("Email", "ada@example.com").await;
            b.fill("Password", NEW_PASSWORD).await;
            b.click("Log in").await;
            b.wait_for_path("/account").await;
            b.heading("Your account").await;

            // The link was spent by the reset: opened again, it is refused.
            b.goto(&link).await;
            b.fill("New password", "yet another passphrase").await;
            b.fill("Confirm new password", "yet another passphrase")
                .await;
            b.click("Set new password").await;
            b.says("This link is invalid or has expired. Ask for a new one.")
                .await;
            assert_eq!(
                b.app.login("ada@example.com", NEW_PASSWORD).await.status(),
                200
            );
        })
        .await;
}

/// Sign up, follow the verification link from the mail, verify; the account
/// page then says the address is verified, and lists the sessions, which
/// can be ended from there.
#[tokio::test]
#[ignore = "needs Chromium and the web build: run by `cargo xtask test`"]
async fn a_new_address_is_verified_from_the_mailed_link() {
    let browser = Browser::start().await;
    let b = &browser;
    browser
        .run("verify_walk", async {
            b.goto("/signup").await;
            b.fill("Email", "grace@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.fill("First name", "Grace").await;
            b.fill("Last name", "Hopper").await;
            b.click("Sign up").await;
            b.wait_for_path("/account").await;
            b.heading("Your account").await;
            b.button("Send the link again").await;
            assert!(!email_verified(b, "grace@example.com").await);

            let link = mailed_link(b, "grace@example.com", "/verify").await;
            b.goto(&link).await;
            b.heading("Verify your email address").await;
            b.wait_for_path("/verify").await;
            // Opening the page verified nothing: the button does.
            assert!(!email_verified(b, "grace@example.com").await);
            b.click("Verify my email address").await;
            b.says("Your email address is verified.").await;
            assert!(email_verified(b, "grace@example.com").await);

            b.click("Go to your account").await;
            b.wait_for_path("/account").await;
            b.heading("Email address").await;
            b.find("//*[contains(@class, 'badge') and normalize-space()='Verified']")
                .await;

            // Another device logs in; the account page lists it beside this
            // one, and ends it.
            let firefox = cookie_session(b, "grace@example.com", PASSWORD, Some(FIREFOX)).await;
            b.goto("/account").await;
            b.button("Sign out everywhere else").await;
            b.find("//*[contains(@class, 'badge') and normalize-space()='This device']")
                .await;
            b.full_page_screenshot("account").await;
            b.click("Sign out everywhere else").await;
            b.heading("Sign out everywhere else?").await;
            b.click("Sign out").await;
            b.says("Signed out everywhere else.").await;
            assert_eq!(session_status(b, &firefox).await, 401);
            b.goto("/account").await;
            b.heading("Your account").await;
        })
        .await;
}

impl Browser {
    /// Saves a screenshot of the whole page, however long, as
    /// `target/browser/<name>.png`: the window grows by what the page has
    /// below its fold for it, then returns to its size.
    pub async fn full_page_screenshot(&self, name: &str) {
        let (_, _, width, height) = self.client.get_window_rect().await.unwrap();
        let below = self
            .client
            .execute(
                "return Math.max(0, document.documentElement.scrollHeight - window.innerHeight)",
                vec![],
            )
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0);
        let size = |h: u64| (u32::try_from(width).unwrap(), u32::try_from(h).unwrap());
        let (w, h) = size(height + below);
        self.client.set_window_size(w, h).await.unwrap();
        self.screenshot(name).await;
        let (w, h) = size(height);
        self.client.set_window_size(w, h).await.unwrap();
    }
}

/// The path and query of the link to `page` (`/reset`, `/verify`) in the
/// latest mail caught for `to` that has one, waiting for it to arrive. The
/// only place these walks read mail.
async fn mailed_link(b: &Browser, to: &str, page: &str) -> String {
    let catcher = b.app.mail();
    let link = || {
        catcher
            .messages_to(to, "")
            .iter()
            .rev()
            .find_map(|mail| mail.link(page))
    };
    let arrived = testkit::eventually(Duration::from_secs(30), Duration::from_millis(50), || {
        let found = link().is_some();
        async move { found }
    })
    .await;
    assert!(arrived, "no mail to {to} with a {page} link");
    path_and_query(&link().unwrap(), page)
}

/// `…/reset?token=…` as `/reset?token=…`, checking its path is `page`.
fn path_and_query(link: &str, page: &str) -> String {
    let url = reqwest::Url::parse(link).unwrap_or_else(|e| panic!("{link:?}: {e}"));
    assert_eq!(url.path(), page, "the mail's link goes to {page}");
    let token = url
        .query_pairs()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    assert!(
        token.is_some_and(|t| !t.is_empty()),
        "the link carries a token"
    );
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A browser session of `email` made outside the walk's browser (another
/// device), as its `Cookie` header.
async fn cookie_session(
    b: &Browser,
    email: &str,
    password: &str,
    user_agent: Option<&str>,
) -> String {
    let mut request = b
        .app
        .http
        .post(b.app.url("/api/session"))
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({ "email": email, "password": password }));
    if let Some(user_agent) = user_agent {
        request = request.header(header::USER_AGENT, user_agent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "the session login");
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// `GET /api/session` with `cookie`: 200 while that session lives.
async fn session_status(b: &Browser, cookie: &str) -> u16 {
    b.app
        .same_origin(Method::GET, "/api/session", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn email_verified(b: &Browser, email: &str) -> bool {
    sqlx::query_scalar("select email_verified from users where email = $1")
        .bind(email)
        .fetch_one(&b.app.db.pool().await)
        .await
        .unwrap()
}
