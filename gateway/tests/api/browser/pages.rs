//! The web app's pages as the gateway serves them: who may see which page,
//! how assets are cached, and what shows without a build.

use reqwest::header;
use serde_json::json;
use testkit::{PASSWORD, TempDir, assert_error};

use super::{Browser, app_with_web, fake_build};
use crate::helpers::no_redirects;

#[tokio::test]
async fn pages_need_the_right_session_and_anonymous_visits_go_to_login() {
    let build = fake_build();
    let app = app_with_web(&build.path).await;
    app.signup_ok("ada@example.com").await;
    app.admin_account("root@example.com").await;
    let http = no_redirects();
    let get = |path: &str, cookie: Option<String>| {
        let mut request = http.get(app.url(path));
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request.send()
    };
    // Anonymous: the login page with where they were going.
    let anonymous = get("/dashboard/posts?limit=2", None).await.unwrap();
    assert_eq!(anonymous.status(), 302);
    assert_eq!(
        anonymous.headers()[header::LOCATION],
        "/login?next=%2Fdashboard%2Fposts%3Flimit%3D2"
    );
    assert_eq!(
        get("/account", None).await.unwrap().headers()[header::LOCATION],
        "/login?next=%2Faccount"
    );
    assert_eq!(
        get("/", None).await.unwrap().headers()[header::LOCATION],
        "/login"
    );
    assert_eq!(
        get("/dashboard", None).await.unwrap().headers()[header::LOCATION],
        "/dashboard/"
    );
    for public in ["/login", "/signup", "/login?next=%2Faccount"] {
        let page = get(public, None).await.unwrap();
        assert_eq!(page.status(), 200, "{public}");
    }
    // A USER: her account, but a 403 page for the back-office.
    let mut ada = Browser::new(&app);
    ada.login_ok("ada@example.com").await;
    assert_eq!(
        get("/account", ada.cookie.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("/", ada.cookie.clone()).await.unwrap().headers()[header::LOCATION],
        "/account"
    );
    let refused = get("/dashboard/", ada.cookie.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("<title>app</title>"));
    // An ADMIN: the back-office.
    let mut root = Browser::new(&app);
    root.login_ok("root@example.com").await;
    assert_eq!(
        get("/", root.cookie.clone()).await.unwrap().headers()[header::LOCATION],
        "/dashboard/"
    );
    let page = get("/dashboard/users", root.cookie.clone()).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
}

#[tokio::test]
async fn assets_are_cached_for_good_the_app_never_and_api_paths_are_never_shadowed() {
    let build = fake_build();
    let app = app_with_web(&build.path).await;
    let asset = app.get("/assets/index-AbC123.js").await;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    // A missing asset is a plain 404 in the contract's shape, not the app.
    let missing = app.get("/assets/nope-123.js").await;
    assert!(!missing.headers().contains_key(header::CACHE_CONTROL));
    assert_error(missing, 404, "/assets/nope-123.js").await;
    // A root file of the build.
    assert_eq!(app.get_text("/favicon.svg").await, "<svg/>");
    // An unknown page: the app (which shows "not found") with 404.
    let unknown = app.get("/no/such/page").await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("<title>app</title>"));
    // Under /api/ the contract's JSON 404 always wins.
    for path in [
        "/api/nope",
        "/api/users/me/nope",
        "/api",
        "/api/session/nope",
    ] {
        assert_error(app.get(path).await, 404, path).await;
    }
    let post = app.post("/no/such/page", &json!({})).await;
    assert_error(post, 404, "/no/such/page").await;
    for ops in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(app.get(ops).await.status(), 200, "{ops}");
    }
}

#[tokio::test]
async fn without_a_build_the_pages_say_how_to_make_one_and_the_api_works() {
    let empty = TempDir::new();
    let app = app_with_web(&empty.path.join("dist")).await;
    let page = app.get("/login").await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("cargo xtask web"));
    app.signup_ok("ada@example.com").await;
    assert_eq!(app.login("ada@example.com", PASSWORD).await.status(), 200);
}
