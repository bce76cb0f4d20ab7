//! The authenticating reverse proxy: internal web tools behind the login.
//!
//! Each configured route ([`settings`]) sends everything under its prefix to
//! its upstream, for a browser session or bearer token whose current role the
//! route admits:
//!
//! * anonymous navigation → 302 to `/login?next=…`; an anonymous fetch, JSON
//!   request or WebSocket upgrade → 401 (never a redirect, never a 101); a
//!   role the route does not admit → 403 (a page shows the app's
//!   "Forbidden"). A route that requires a verified address
//!   (`require_verified_email`, the default) sends a user whose address is
//!   not verified to `/account?verify=required` (302) when navigating, and
//!   answers anything else 403; the upstream hears nothing of it.
//! * A route that requires a second factor (`mfa = "required"`, or a route
//!   for ADMIN only while `mfa.require_for_admin` is on) lets a session
//!   pass only when its `amr` names one (`otp`, `hwk`) and, with
//!   `max_auth_age`, its `auth_time` is no older than that (both from the
//!   minted assertion, so from the session as the auth-worker knows it).
//!   Otherwise a page navigation (not a WebSocket upgrade) is sent to
//!   `/mfa?next=<the path and query asked for>` (302), where the user
//!   proves a factor (`POST /api/auth/step-up`) and comes back; anything
//!   else gets 401 with `WWW-Authenticate: Bearer
//!   error="insufficient_user_authentication", error_description="…"` and,
//!   with `max_auth_age`, `max_age=<seconds>` (RFC 9470), in the
//!   contract's error body. The upstream hears nothing of it.
//! * Before anything else ([`gate`], [`paths`]): with a public origin, the
//!   request must be for its host (400); a path that would leave the route
//!   gets 400; an upgrade must be a WebSocket (400); and a
//!   cookie-authenticated request from another site passes only as a
//!   top-level navigation, whatever its method (403), as must a WebSocket
//!   upgrade (browsers apply no CORS to WebSockets).
//! * The upstream gets the client's request less hop-by-hop headers, every
//!   client-sent identity header however spelled, every header with an `_`,
//!   the `Authorization` header, the query parameters the route drops and
//!   every cookie but the route's own ([`forward`], [`cookies`]); plus
//!   `X-Forwarded-User/-Email/-Groups/-For/-Proto/-Host` (`-Email` only for
//!   a verified address), `x-request-id`,
//!   `traceparent` and `X-Auth-Assertion`, a JWT for audience
//!   `proxy:<name>` minted by the auth-worker and cached here
//!   ([`assertions`]); its `amr` and `auth_time` claims say how and when
//!   the session last proved who it is.
//! * The client gets the upstream's reply with its cookies renamed and
//!   scoped to the route, never the gateway's session cookie, and marked
//!   `nosniff`, `Cross-Origin-Resource-Policy` and, for an isolated route,
//!   sandboxed.
//! * Bodies stream both ways: none of the API's body limit, time limit,
//!   compression or error envelope applies (see [`crate::app_with`]). A
//!   WebSocket answered 101 becomes a byte tunnel between the two upgraded
//!   connections ([`tunnel`]), which ends when the user's sessions or role
//!   change.
//! * Upstream refused or broken: 502; no response head within the route's
//!   timeout: 504; both in the contract's shape.
//!
//! The client is hyper-util's pooled HTTP/1 client (already in the tree
//! under reqwest): it streams, keeps connections alive, and hands over
//! upgraded connections, so no HTTP is written here.
//!
//! This file is the entry: the [`Proxy`], its [`router`], and each
//! request's way up to the upstream (checks, caller, assertion), which
//! [`forward::send`] then sends; a WebSocket it answers 101 is handed to
//! [`tunnel`].

pub mod assertions;
pub mod cookies;
pub mod forward;
pub mod gate;
pub mod paths;
pub mod settings;
pub mod tunnel;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::any,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use shared::auth::{MintAssertion, ProxyAssertionRequest};
use tokio_util::sync::CancellationToken;

use crate::{
    AppState,
    error::ApiError,
    extract::{Authenticated, Ctx},
    session::{CROSS_SITE, SessionAuth},
};
use assertions::{Assertions, Minted};
pub use settings::{Mfa, ProxySettings, Route};

/// The routes, the HTTP client and the assertion cache.
#[derive(Debug)]
pub struct Proxy {
    pub routes: Vec<Arc<Route>>,
    client: Client<HttpConnector, Body>,
    pub assertions: Assertions,
    /// The open WebSocket tunnels, by user.
    pub tunnels: tunnel::Tunnels,
    /// Cancelled when the gateway starts shutting down: proxied bodies and
    /// tunnels end then, or an endless stream (server-sent events) would
    /// hold the graceful shutdown open for good.
    pub closing: CancellationToken,
}

impl Proxy {
    /// Fails on a route that does not check out (named in the error).
    pub fn new(settings: &ProxySettings) -> anyhow::Result<Self> {
        let routes = settings.routes()?.into_iter().map(Arc::new).collect();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            routes,
            client,
            assertions: Assertions::default(),
            tunnels: tunnel::Tunnels::default(),
            closing: CancellationToken::new(),
        })
    }
}

/// Drops a user's cached assertions, then ends the user's tunnels, when a
/// worker announces that the user's sessions ended or role changed
/// ([`shared::auth::SESSIONS_ENDED`], [`shared::user::CHANGED`]), on every
/// gateway copy at once. (In that order: a request that registers its
/// tunnel after the tunnels were ended finds no assertion to reuse.)
/// Subscribed before the gateway serves; only with routes configured.
pub async fn forget_on_notices(
    state: &AppState,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    use anyhow::Context;
    use futures::StreamExt;
    if state.proxy.routes.is_empty() {
        return Ok(None);
    }
    let mut notices = Vec::new();
    for (service, subject) in [
        (shared::auth::SERVICE, shared::auth::SESSIONS_ENDED),
        (shared::user::SERVICE, shared::user::CHANGED),
    ] {
        let client = state
            .nats
            .rpc()
            .client(service)
            .with_context(|| format!("no NATS connection to the {service}"))?;
        notices.push(
            client
                .subscribe(subject)
                .await
                .with_context(|| format!("subscribing to {subject}"))?,
        );
    }
    let mut all = futures::stream::select_all(notices);
    let proxy = Arc::clone(&state.proxy);
    Ok(Some(tokio::spawn(async move {
        while let Some(message) = all.next().await {
            match serde_json::from_slice::<shared::user::UserChanged>(&message.payload) {
                Ok(notice) => {
                    proxy.assertions.forget_user(notice.user_id);
                    let tunnels = proxy.tunnels.end_user(notice.user_id);
                    tracing::debug!(user_id = notice.user_id, tunnels, subject = %message.subject, "assertions dropped, tunnels ended");
                }
                Err(e) => {
                    tracing::warn!(subject = %message.subject, error = %e, "unreadable notice")
                }
            }
        }
    })))
}

/// The routes of every protected upstream: `<prefix>` redirects to
/// `<prefix>/` (so the upstream's relative links resolve under it), and
/// `<prefix>/…` is proxied.
pub fn router(proxy: &Proxy) -> Router<AppState> {
    let mut router = Router::new();
    for route in &proxy.routes {
        let slash = format!("{}/", route.prefix);
        let target = slash.clone();
        let handler = {
            let route = Arc::clone(route);
            move |State(state): State<AppState>, request: Request| {
                let route = Arc::clone(&route);
                async move { handle(&state, &route, request).await }
            }
        };
        router = router
            .route(
                &route.prefix,
                any(move |request: Request| {
                    let query = request
                        .uri()
                        .query()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    let location = format!("{target}{query}");
                    async move { Redirect::permanent(&location) }
                }),
            )
            .route(&slash, any(handler.clone()))
            .route(&format!("{slash}{{*rest}}"), any(handler));
    }
    router
}

/// Where a person opening a route that requires a verified address is
/// sent while theirs is not: the account page, which offers a new link.
pub const VERIFY_PAGE: &str = "/account?verify=required";
/// The refusal of any other request (a fetch, a WebSocket) of such a user.
pub const VERIFY_FIRST: &str = "verify your email address to use this tool";

/// What kind of request an anonymous caller made: a person navigating
/// gets the login page, anything else an error.
fn is_navigation(parts: &Parts) -> bool {
    if !(parts.method == Method::GET || parts.method == Method::HEAD) {
        return false;
    }
    match parts.headers.get("sec-fetch-mode") {
        Some(mode) => mode.as_bytes() == b"navigate",
        None => parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html")),
    }
}

/// One proxied request, counted and logged by route and status.
async fn handle(state: &AppState, route: &Route, request: Request) -> Response {
    let started = Instant::now();
    let (response, user) = pass(state, route, request).await;
    let status = response.status().as_u16();
    metrics::counter!("proxy_requests_total", "route" => route.name.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("proxy_response_head_seconds", "route" => route.name.clone())
        .record(started.elapsed().as_secs_f64());
    match user {
        Some(user_id) => tracing::info!(route = route.name, user_id, status, "proxied"),
        None => tracing::info!(route = route.name, status, "proxy refused"),
    }
    response
}

async fn pass(state: &AppState, route: &Route, request: Request) -> (Response, Option<i64>) {
    let (mut parts, body) = request.into_parts();
    let navigation = is_navigation(&parts);
    let admitted = match admit(state, route, &parts) {
        Ok(admitted) => admitted,
        Err(e) => return (e.into_response(), None),
    };
    let upgrade = admitted.upgrade.is_some();
    let caller = match Authenticated::from_request_parts(&mut parts, state).await {
        Ok(Authenticated(caller)) => caller,
        Err(ApiError::Unauthorized(_)) if navigation && !upgrade => {
            return (crate::web::to_login(&parts.uri), None);
        }
        Err(e) => return (e.into_response(), None),
    };
    // Before the assertion is looked up: a notice from here on ends it.
    let tunnel = upgrade.then(|| state.proxy.tunnels.register(caller.id));
    let by_cookie = !parts.headers.contains_key(header::AUTHORIZATION);
    let access_token = match parts.extensions.get::<SessionAuth>() {
        Some(session) if by_cookie => session.contents.access_token.clone(),
        _ => bearer(&parts).unwrap_or_default(),
    };
    let minted = match assertion(state, route, &mut parts, caller, &access_token).await {
        Ok(minted) => minted,
        Err(ApiError::Upstream(runtime::rpc::CallError::Service(e))) if e.status_code == 403 => {
            let refused = if navigation {
                crate::web::index(state, StatusCode::FORBIDDEN).await
            } else {
                ApiError::Forbidden("role not allowed for this route").into_response()
            };
            return (refused, None);
        }
        Err(ApiError::Upstream(runtime::rpc::CallError::Service(e)))
            if e.status_code == 401 && navigation && !upgrade =>
        {
            return (crate::web::to_login(&parts.uri), None);
        }
        Err(e) => return (e.into_response(), None),
    };
    let user_id = minted.user.id;
    if route.require_verified_email && !minted.user.email_verified {
        // The assertion said "unverified"; once the address is verified the
        // next request must see that, not this cached word.
        state.proxy.assertions.forget_user(user_id);
        let refused = if navigation && !upgrade {
            crate::web::found(VERIFY_PAGE)
        } else {
            ApiError::Forbidden(VERIFY_FIRST).into_response()
        };
        tracing::info!(user_id, route = route.name, "address not verified");
        return (refused, None);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let require_for_admin = state.settings.mfa.require_for_admin;
    if let Err(refused) = route.step_up(require_for_admin, &minted.amr, minted.auth_time, now) {
        let refused = if navigation && !upgrade {
            crate::web::to_step_up(&parts.uri)
        } else {
            refused.into_response()
        };
        tracing::info!(user_id, route = route.name, "second factor required");
        return (refused, None);
    }
    let response = match forward::send(state, route, parts, body, &minted, admitted, tunnel).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    (response, Some(user_id))
}

/// What [`admit`] found out about a request it lets through.
#[derive(Debug)]
struct Admitted {
    /// Where it goes.
    uri: axum::http::Uri,
    /// `X-Forwarded-Host`.
    host: Option<HeaderValue>,
    /// `websocket`, for an upgrade.
    upgrade: Option<HeaderValue>,
}

/// The checks made on the request's head before anyone is asked anything
/// (see the module docs).
fn admit(state: &AppState, route: &Route, parts: &Parts) -> Result<Admitted, ApiError> {
    let public_origin = &state.settings.session.public_origin;
    let host = gate::forwarded_host(public_origin, &parts.uri, &parts.headers)?;
    let uri = paths::upstream_uri(route, &parts.uri)
        .ok_or_else(|| ApiError::BadRequest(paths::REFUSED.into()))?;
    let upgrade = gate::websocket_upgrade(&parts.method, &parts.headers)?;
    let by_cookie = !parts.headers.contains_key(header::AUTHORIZATION)
        && parts.extensions.get::<SessionAuth>().is_some();
    if by_cookie {
        match gate::site(&parts.method, &parts.headers) {
            gate::Site::Passes => {}
            gate::Site::Refused => return Err(CROSS_SITE),
            gate::Site::AskOrigin => state.sessions.check_same_origin(&parts.headers)?,
        }
        // A browser opens a WebSocket from any page it likes, with the
        // cookie: only this origin's pages may.
        if upgrade.is_some() {
            state.sessions.check_same_origin(&parts.headers)?;
        }
    }
    Ok(Admitted { uri, host, upgrade })
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (_, token) = value.split_once(' ')?;
    Some(token.trim().to_owned())
}

/// The route's assertion for this caller: cached, or minted now (the
/// request's context for the NATS hop is only made then).
async fn assertion(
    state: &AppState,
    route: &Route,
    parts: &mut Parts,
    caller: shared::Caller,
    access_token: &str,
) -> Result<Minted, ApiError> {
    state
        .proxy
        .assertions
        .get(caller.id, access_token, &route.audience, || async move {
            let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
            let reply = state
                .nats
                .call::<MintAssertion>(
                    &ctx.with_caller(caller),
                    &ProxyAssertionRequest {
                        audience: route.audience.to_string(),
                        roles: route.roles.clone(),
                    },
                )
                .await?;
            Ok(Minted::new(reply))
        })
        .await
}
