//! The web app (`web/`, built by Vite into `web.dir`) and its pages.
//!
//! * `/assets/…`: Vite's content-hashed files, cached for a year
//!   (`immutable`): a new build has new names.
//! * The pages (`/login`, `/signup`, `/forgot`, `/reset`, `/verify`,
//!   `/account`, `/mfa`, `/dashboard/…`) answer the app's `index.html`, never
//!   cached, so a new build is picked up at once. `/reset` and `/verify`
//!   are opened from a mail's link: their GET spends nothing (the page
//!   POSTs the token), so a mail scanner that follows the link does no harm,
//!   and they send no `Referer`, so the token in their address is not
//!   passed on with the requests for the page's own files.
//!   The server decides who sees a page: `/account` and `/mfa` (the
//!   step-up page a proxy route sends to) need a session and
//!   `/dashboard/…` an ADMIN; anonymous navigation is redirected to
//!   `/login?next=…`, a USER on `/dashboard/…` gets the page with 403 (the
//!   app shows "Forbidden"), and an ADMIN whose session has not proved a
//!   second factor (`mfa.require_for_admin`) is sent to
//!   [`SECOND_FACTOR_PAGE`] (302) to enrol one.
//! * Any other GET outside `/api/` is a file of the build (`/favicon.svg`)
//!   or the app's "not found" page with 404. `/api/…` is never shadowed: an
//!   unknown API path keeps the contract's JSON 404.
//! * Without a build, the pages say how to make one (503); the API is
//!   unaffected.

use std::path::{Path, PathBuf};

use axum::{
    Router,
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::{
    AppState,
    error::{ApiError, PageResponse},
    extract::{Admin, Authenticated},
    routes::session::default_page,
};

/// `[web]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WebSettings {
    /// The built app: `index.html` and `assets/` (`npm run build` in `web/`).
    pub dir: PathBuf,
}

/// Pages and headers that keep the app from being framed or sniffed, and
/// scripts, styles and requests to this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the pages and the app's files.
pub fn router(settings: &WebSettings) -> Router<AppState> {
    let assets = ServeDir::new(settings.dir.join("assets"));
    Router::new()
        .route("/", get(home))
        .route("/login", get(public_page))
        .route("/signup", get(public_page))
        .route("/forgot", get(public_page))
        .route("/reset", get(link_page))
        .route("/verify", get(link_page))
        .route("/account", get(account_page))
        .route("/mfa", get(account_page))
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(admin_page))
        .route("/dashboard/{*rest}", get(admin_page))
        .nest_service(
            "/assets",
            Router::new()
                .fallback_service(assets)
                .layer(middleware::from_fn(immutable)),
        )
}

/// Hashed assets are cached for a year, but only when found.
async fn immutable(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    } else if status == StatusCode::NOT_FOUND {
        return ApiError::NoRoute.into_response();
    }
    response
}

/// The app's `index.html` with `status`, or, without a build, a page that
/// says how to make one.
pub(crate) async fn index(state: &AppState, status: StatusCode) -> Response {
    let file = state.settings.web.dir.join("index.html");
    match tokio::fs::read(&file).await {
        Ok(html) => page(status, Body::from(html)),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "the web app is not built");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                Body::from(not_built(&file)),
            )
        }
    }
}

fn page(status: StatusCode, body: Body) -> Response {
    let mut response = (status, body).into_response();
    response.extensions_mut().insert(PageResponse);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Always asked again: it names the current build's assets.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn not_built(file: &Path) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Web app not built</title>\
         <h1>The web app is not built</h1>\
         <p>The gateway found no <code>{}</code>. Build it with <code>cargo xtask web</code> \
         (or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), then reload. \
         The JSON API under <code>/api/</code> works without it.</p></html>",
        file.display()
    )
}

/// `/login?next=<the page asked for>`.
pub(crate) fn to_login(uri: &Uri) -> Response {
    found(&with_next("/login", uri))
}

/// `page?next=<uri's path and query, percent-encoded>`.
fn with_next(page: &str, uri: &Uri) -> String {
    let asked = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let next = utf8_percent_encode(asked, NON_ALPHANUMERIC);
    format!("{page}?next={next}")
}

/// A 302 to `location` (the contract's status for a page's redirects;
/// axum's `Redirect::to` answers 303).
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => ApiError::BadRequest("unusable redirect target".into()).into_response(),
    }
}

/// `/mfa?next=<the page asked for>`: the step-up page, which comes back to
/// the page once the session has proved a factor.
pub(crate) fn to_step_up(uri: &Uri) -> Response {
    found(&with_next("/mfa", uri))
}

/// Where the back office sends an ADMIN without a second factor: the
/// account page, which says why and offers the enrolment.
pub const SECOND_FACTOR_PAGE: &str = "/account?mfa=required";

/// `/`: the user's default page, or the login page.
async fn home(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(Authenticated(caller)) => found(default_page(caller.role)),
        Err(_) => found("/login"),
    }
}

async fn public_page(State(state): State<AppState>) -> Response {
    index(&state, StatusCode::OK).await
}

/// A page a mail links to, with its token in the query.
async fn link_page(State(state): State<AppState>) -> Response {
    let mut response = index(&state, StatusCode::OK).await;
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A page for anyone logged in (`/account`, `/mfa`).
async fn account_page(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(_) => index(&state, StatusCode::OK).await,
        Err(ApiError::Unauthorized(_)) => to_login(&parts.uri),
        Err(other) => other.into_response(),
    }
}

/// A back-office page: ADMIN only (the role as it is now, not only as the
/// token says).
async fn admin_page(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    match Admin::now(&mut parts, &state).await {
        Ok(_) => index(&state, StatusCode::OK).await,
        Err(ApiError::Unauthorized(_)) => to_login(&parts.uri),
        // The session ended, or its user is gone.
        Err(ApiError::Upstream(runtime::rpc::CallError::Service(e)))
            if e.status_code == 401 || e.status_code == 404 =>
        {
            to_login(&parts.uri)
        }
        Err(ApiError::AdminNeedsSecondFactor) => found(SECOND_FACTOR_PAGE),
        Err(ApiError::Forbidden(_)) => index(&state, StatusCode::FORBIDDEN).await,
        Err(other) => other.into_response(),
    }
}

/// Whatever no route matched: the contract's JSON 404 under `/api/` and for
/// other methods; otherwise a file of the build, or the app's own "not
/// found" page.
pub async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    if api || !(request.method() == Method::GET || request.method() == Method::HEAD) {
        return ApiError::NoRoute.into_response();
    }
    let file = ServeDir::new(&state.settings.web.dir)
        .append_index_html_on_directories(false)
        .oneshot(request)
        .await;
    match file {
        Ok(response) if response.status().is_success() => response.into_response(),
        _ => index(&state, StatusCode::NOT_FOUND).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_asked_for_travels_whole_and_percent_encoded_in_next() {
        let uri: Uri = "/proxy/nats/varz?a=1&b=%2F".parse().unwrap();
        assert_eq!(
            with_next("/mfa", &uri),
            "/mfa?next=%2Fproxy%2Fnats%2Fvarz%3Fa%3D1%26b%3D%252F"
        );
        let response = to_step_up(&uri);
        assert_eq!(response.status(), StatusCode::FOUND);
        assert!(
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/mfa?next=%2Fproxy%2Fnats")
        );
    }
}
