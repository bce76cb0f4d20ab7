//! The walks a person takes through the app.

use serde_json::Value;
use testkit::PASSWORD;

use crate::Browser;

/// Sign up, log in, edit the profile, change the password, log out; a USER
/// is refused the back-office.
#[tokio::test]
#[ignore = "needs Chromium and the web build: run by `cargo xtask test`"]
async fn a_user_signs_up_edits_the_profile_changes_the_password_and_logs_out() {
    let browser = Browser::start().await;
    let b = &browser;
    browser
        .run("user_walk", async {
            // The login page, with its errors beside the fields: an empty
            // form puts the focus on the first invalid field.
            b.goto("/login").await;
            b.heading("Log in").await;
            b.screenshot("login").await;
            b.click("Log in").await;
            b.field("Email").await;
            wait_focus(b, "Email").await;

            b.click("Create an account").await;
            b.wait_for_path("/signup").await;
            b.heading("Create an account").await;
            b.fill("Email", "ada@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.fill("First name", "Ada").await;
            b.fill("Last name", "Byron").await;
            b.click("Sign up").await;
            b.wait_for_path("/account").await;
            b.heading("Your account").await;

            b.fill("Last name", "Lovelace").await;
            b.click("Save profile").await;
            b.says("Profile saved").await;
            let lastname: Option<String> =
                sqlx::query_scalar("select lastname from users where email = 'ada@example.com'")
                    .fetch_one(&b.app.db.pool().await)
                    .await
                    .unwrap();
            assert_eq!(lastname.as_deref(), Some("Lovelace"));

            b.fill("Current password", PASSWORD).await;
            b.fill("New password", "a brand new passphrase").await;
            b.click("Change password").await;
            b.says("Password changed").await;
            assert_eq!(b.app.login("ada@example.com", PASSWORD).await.status(), 401);

            // No script can read the session: the cookie is HttpOnly.
            let cookies = b
                .client
                .execute("return document.cookie", vec![])
                .await
                .unwrap();
            assert_eq!(cookies, Value::String(String::new()));

            // A USER is refused the back-office.
            b.goto("/dashboard/").await;
            b.heading("Forbidden").await;

            b.goto("/account").await;
            b.click("Log out").await;
            b.wait_for_path("/login").await;
            b.goto("/account").await;
            b.wait_for_path("/login?next=%2Faccount").await;

            // The new password logs in and returns to where she was going.
            b.fill("Email", "ada@example.com").await;
            b.fill("Password", "a brand new passphrase").await;
            b.click("Log in").await;
            b.wait_for_path("/account").await;
            b.heading("Your account").await;
        })
        .await;
}

/// As ADMIN: `/dashboard/` goes to login and back; the users table a page
/// at a time; a role changed; a user deleted; a post created and published.
#[tokio::test]
#[ignore = "needs Chromium and the web build: run by `cargo xtask test`"]
async fn an_admin_manages_users_and_posts_in_the_back_office() {
    let browser = Browser::start().await;
    let b = &browser;
    browser
        .run("admin_walk", async {
            b.app.admin_account("root@example.com").await;
            // The tool below requires a verified address.
            sqlx::query("update users set email_verified = true where email = $1")
                .bind("root@example.com")
                .execute(&b.app.db.pool().await)
                .await
                .unwrap();
            for name in ["bob", "carol", "dave"] {
                b.app.signup_ok(&format!("{name}@example.com")).await;
            }
            // Anonymous: to the login page, and back after it.
            b.goto("/dashboard/?limit=2").await;
            b.wait_for_path("/login?next=%2Fdashboard%2F%3Flimit%3D2")
                .await;
            b.fill("Email", "root@example.com").await;
            b.fill("Password", PASSWORD).await;
            b.click("Log in").await;
            b.wait_for_path("/dashboard/?limit=2").await;
            b.heading("Users").await;
            // In id order, two a page: root and bob, then carol and dave.
            b.button("Delete bob@example.com").await;
            b.screenshot("back-office").await;

            // Make bob an ADMIN.
            let select = b
                .client
                .wait()
                .for_element(fantoccini::Locator::XPath(
                    "//select[@aria-label='Role for bob@example.com']",
                ))
                .await
                .unwrap();
            select.select_by_value("ADMIN").await.unwrap();
            b.says("Role of bob@example.com set to ADMIN").await;
            let bob = user_id(b, "bob@example.com").await.unwrap();
            assert_eq!(b.app.role_of(bob).await, "ADMIN");

            // The next page; delete carol there, after confirming.
            b.click("Next page").await;
            b.button("Delete dave@example.com").await;
            b.click("Delete carol@example.com").await;
            b.heading("Delete user?").await;
            b.click("Delete user").await;
            b.says("Deleted carol@example.com").await;
            assert_eq!(user_id(b, "carol@example.com").await, None);
            b.click("First page").await;
            b.button("Delete root@example.com").await;

            // A post: created as a draft, then published.
            b.click("Posts").await;
            b.wait_for_path("/dashboard/posts").await;
            b.heading("Posts").await;
            b.fill("Title", "Release notes").await;
            b.fill("Content", "Everything that changed.").await;
            b.click("Create post").await;
            b.click("Publish Release notes").await;
            b.button("Unpublish Release notes").await;
            b.screenshot("back-office-posts").await;
            let public = b.app.get_json("/api/posts").await;
            assert_eq!(public["items"][0]["title"], "Release notes");
            assert_eq!(public["items"][0]["published"], true);

            // An internal tool behind the login: the nats-server's own
            // monitoring pages, through the gateway's proxy.
            b.click("nats").await;
            b.wait_for_path("/proxy/nats/").await;
            b.click("General").await;
            b.wait_for_path("/proxy/nats/varz").await;
            let monitor = b.app.nats.monitor_url().unwrap();
            let varz: Value = reqwest::get(format!("{monitor}/varz"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let server_id = varz["server_id"].as_str().unwrap();
            let shown = b.client.source().await.unwrap();
            assert!(shown.contains(server_id), "varz shows {server_id}");
            b.screenshot("proxy-nats-varz").await;
        })
        .await;
}

async fn user_id(b: &Browser, email: &str) -> Option<i64> {
    sqlx::query_scalar("select id from users where email = $1")
        .bind(email)
        .fetch_optional(&b.app.db.pool().await)
        .await
        .unwrap()
}

/// Waits until the input labelled `label` has the focus.
async fn wait_focus(b: &Browser, label: &str) {
    let id = b.field(label).await.attr("id").await.unwrap().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.focused_id().await != id {
        assert!(
            std::time::Instant::now() < deadline,
            "{label} never got the focus"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
