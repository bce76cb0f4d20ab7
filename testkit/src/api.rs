//! A client of the gateway's HTTP API, and the contract's error body.

use reqwest::{Method, Response};
use serde_json::{Value, json};

/// The password every test account signs up with.
pub const PASSWORD: &str = "correct horse battery";

/// The gateway's HTTP API at one address, called as a client would.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://host:port`.
    pub base: String,
    pub http: reqwest::Client,
}

/// A signed-up user with a fresh access token.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub token: String,
}

impl Api {
    /// A client of the gateway at `base` (`http://host:port`), never through
    /// a proxy.
    pub fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Self { base, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request, made by `who` (an [`Account`], a token, or `None` for
    /// nobody), with an optional JSON body: `.send()` it, or check its reply
    /// with `.ok()` or `.fails(status)`.
    pub fn call<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        who: impl Into<Bearer<'a>>,
        body: Option<&'a Value>,
    ) -> Call<'a> {
        Call {
            api: self,
            method,
            path,
            token: who.into().0,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, None, None).send().await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).send().await
    }

    /// A GET's body as JSON, whatever the status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("a JSON body")
    }

    /// A GET's body as text, whatever the status (`/metrics`, say).
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("a text body")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.call(Method::POST, path, None, Some(body)).send().await
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/signup",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs `email` up with [`PASSWORD`], asserting 201; the new user.
    pub async fn signup_ok(&self, email: &str) -> Value {
        let response = self.signup(email, PASSWORD).await;
        assert_eq!(response.status(), 201, "sign-up of {email}");
        response.json().await.expect("the new user")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Logs in, asserting 200; the reply (both tokens and the user).
    pub async fn login_ok(&self, email: &str, password: &str) -> Value {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200, "login {email}");
        response.json().await.expect("the login reply")
    }

    /// Logs `email` in with [`PASSWORD`]; the access token.
    pub async fn access_token(&self, email: &str) -> String {
        let body = self.login_ok(email, PASSWORD).await;
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned()
    }

    /// A login as from `address` (`X-Forwarded-For`, which the gateway
    /// believes only when told to trust a proxy).
    pub async fn login_from(&self, email: &str, password: &str, address: &str) -> Response {
        self.http
            .post(self.url("/api/auth/login"))
            .header("x-forwarded-for", address)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// A request as a page of the app's own origin sends it: with the
    /// session `cookie` and `Sec-Fetch-Site: same-origin`.
    pub fn same_origin(&self, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(reqwest::header::COOKIE, cookie)
            .header("sec-fetch-site", "same-origin")
    }

    /// The browser's session login (`POST /api/session` from the app's own
    /// origin), whatever the status.
    pub async fn session_login(&self, email: &str, password: &str) -> Response {
        self.http
            .post(self.url("/api/session"))
            .header("sec-fetch-site", "same-origin")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/auth/refresh",
            &json!({ "refreshToken": refresh_token }),
        )
        .await
    }

    /// Signs `email` up with [`PASSWORD`] and logs in.
    pub async fn account(&self, email: &str) -> Account {
        let user = self.signup_ok(email).await;
        Account {
            id: user["id"].as_i64().expect("the user's id"),
            token: self.access_token(email).await,
        }
    }

    /// Signs `email` up and logs in; the access token.
    pub async fn user_token(&self, email: &str) -> String {
        self.account(email).await.token
    }
}

/// Who makes an [`Api::call`]: the bearer token it sends, if any.
#[derive(Debug, Clone, Copy)]
pub struct Bearer<'a>(Option<&'a str>);

/// An account calls with its access token.
impl<'a> From<&'a Account> for Bearer<'a> {
    fn from(account: &'a Account) -> Self {
        Self(Some(&account.token))
    }
}

/// A token, or `None` for a call without one.
impl<'a> From<Option<&'a str>> for Bearer<'a> {
    fn from(token: Option<&'a str>) -> Self {
        Self(token)
    }
}

impl<'a> From<&'a str> for Bearer<'a> {
    fn from(token: &'a str) -> Self {
        Self(Some(token))
    }
}

/// One request of [`Api::call`], not sent yet.
#[derive(Debug)]
pub struct Call<'a> {
    api: &'a Api,
    method: Method,
    path: &'a str,
    token: Option<&'a str>,
    body: Option<&'a Value>,
}

impl Call<'_> {
    /// Sends it; the response, whatever its status.
    pub async fn send(self) -> Response {
        let mut request = self.api.http.request(self.method, self.api.url(self.path));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = self.body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Sends it and asserts a 2xx reply with a JSON body: the body.
    pub async fn ok(self) -> Value {
        let (method, path) = (self.method.clone(), self.path);
        let response = self.send().await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// Sends it and asserts an error reply: `status` and the contract's body
    /// for the path (without its query). Returns the body.
    pub async fn fails(self, status: u16) -> Value {
        let path = self.path;
        let route = path.split_once('?').map_or(path, |(route, _)| route);
        assert_error(self.send().await, status, route).await
    }
}

/// Asserts the contract's error body and returns it.
pub async fn assert_error(response: Response, status: u16, path: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every reply")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("an error body is JSON");
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert_eq!(body["path"], path, "{body}");
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    let ts = body["timestamp"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("timestamp is RFC 3339");
    body
}

/// The fields a validation error lists in its `details`, in its order.
pub fn error_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().expect("a field").to_owned())
        .collect()
}
