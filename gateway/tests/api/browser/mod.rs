//! The browser session (`/api/session`, the sealed cookie), CSRF, `next`,
//! refresh in the gateway, and the pages the gateway serves.
//!
//! * `session`: logging in and out with the cookie, and what it is worth.
//! * `origin`: what only this origin's pages may do (unsafe requests, `next`).
//! * `refresh`: the gateway refreshing an expired access token once.
//! * `pages`: the web app's pages, assets and who may see them.

mod origin;
mod pages;
mod refresh;
mod session;

use std::path::Path;

use reqwest::{Method, Response, header};
use serde_json::{Value, json};
use testkit::{Api, PASSWORD, TempDir};

use crate::helpers::{COOKIE, TestApp, spawn_app};

/// A browser's cookie jar for our one cookie.
#[derive(Debug, Clone)]
pub(crate) struct Browser<'a> {
    api: &'a Api,
    /// `name=value`, as sent back in `Cookie`.
    pub(crate) cookie: Option<String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(api: &'a Api) -> Self {
        Self { api, cookie: None }
    }

    /// A same-origin request (what a page of ours sends), with the cookie.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .api
            .http
            .request(method, self.api.url(path))
            .header("sec-fetch-site", "same-origin");
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        request
    }

    /// Sends and keeps what the reply sets.
    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("request");
        if let Some(set) = set_cookie(&response) {
            self.cookie = (!set.value.is_empty()).then(|| format!("{COOKIE}={}", set.value));
        }
        response
    }

    pub(crate) async fn login(
        &mut self,
        email: &str,
        password: &str,
        next: Option<&str>,
    ) -> Response {
        let mut body = json!({"email": email, "password": password});
        if let Some(next) = next {
            body["next"] = json!(next);
        }
        let request = self.request(Method::POST, "/api/session").json(&body);
        self.send(request).await
    }

    pub(crate) async fn login_ok(&mut self, email: &str) -> Value {
        let response = self.login(email, PASSWORD, None).await;
        assert_eq!(response.status(), 200, "session login of {email}");
        response.json().await.unwrap()
    }

    pub(crate) async fn get(&mut self, path: &str) -> Response {
        let request = self.request(Method::GET, path);
        self.send(request).await
    }
}

/// Our cookie as a `Set-Cookie` sets it: value and attributes.
#[derive(Debug)]
pub(crate) struct SetCookie {
    pub(crate) value: String,
    pub(crate) attributes: Vec<String>,
}

pub(crate) fn set_cookie(response: &Response) -> Option<SetCookie> {
    let ours: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|v| v.starts_with(&format!("{COOKIE}=")))
        .collect();
    assert!(ours.len() <= 1, "one Set-Cookie for the session: {ours:?}");
    let line = ours.first()?;
    let mut parts = line.split(';').map(str::trim);
    let value = parts.next()?.split_once('=')?.1.to_owned();
    Some(SetCookie {
        value,
        attributes: parts.map(str::to_owned).collect(),
    })
}

pub(crate) fn cleared(response: &Response) -> bool {
    set_cookie(response)
        .is_some_and(|c| c.value.is_empty() && c.attributes.iter().any(|a| a == "Max-Age=0"))
}

/// A stand-in build of the web app, so page tests do not need npm.
pub(crate) fn fake_build() -> TempDir {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("assets")).unwrap();
    std::fs::write(
        dir.path.join("index.html"),
        "<!doctype html><title>app</title><script type=module src=/assets/index-AbC123.js></script>",
    )
    .unwrap();
    std::fs::write(
        dir.path.join("assets/index-AbC123.js"),
        "console.log('app')",
    )
    .unwrap();
    std::fs::write(dir.path.join("favicon.svg"), "<svg/>").unwrap();
    dir
}

pub(crate) async fn app_with_web(dir: &Path) -> TestApp {
    let mut app = spawn_app().await;
    let mut settings = app.gateway_settings();
    settings.web.dir = dir.to_owned();
    let api = app.start_gateway(settings).await;
    app.set_api(api);
    app
}
