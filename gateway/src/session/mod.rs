//! The browser session: one encrypted cookie holding the token pair, so no
//! page script ever holds a token and the gateway keeps no state.
//!
//! * [`seal`]: the cookie's value (AES-256-GCM, with key rotation).
//! * [`refresh`]: one `auth.refresh` per session at a time in this copy.
//! * [`next`]: which `next` paths a login may be sent back to.
//! * [`layer`] (a middleware on every route): CSRF for cookie-authenticated
//!   unsafe methods, opening the cookie, refreshing the access token when it
//!   is near expiry, and setting or clearing the cookie on the way out. It
//!   leaves a [`SessionAuth`] in the request's extensions, which the
//!   [`Authenticated`](crate::extract::Authenticated) extractor verifies
//!   exactly as it verifies a bearer token (a request with an
//!   `Authorization` header ignores the cookie).
//!
//! The cookie is `__Host-…` (browsers accept it only with `Secure`,
//! `Path=/` and no `Domain`, so a sibling subdomain cannot plant one),
//! `HttpOnly` (no script reads it), `SameSite=Lax` (not sent on cross-site
//! subrequests and form posts), and lives until the session ends.
//!
//! A login whose user has a second factor sets a second cookie instead,
//! `<cookie name>-mfa`, with the same attributes: the pending login's token,
//! sealed with the same keys for that purpose only ([`seal::Pending`]),
//! until the second step (`POST /api/session/mfa`) turns it into a session
//! or it expires (`Max-Age` is the pending login's life). The login and its
//! second step are refused cross-site like every cookie-authenticated
//! unsafe request, with or without a cookie.

pub mod next;
pub mod refresh;
pub mod seal;

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use cookie::{Cookie, SameSite};
use runtime::rpc::CallError;
use serde::Deserialize;
use shared::{
    auth::{Refresh, RefreshTokenRequest, TokenReply},
    types::Secret,
};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::{AppState, error::ApiError, extract::Ctx};
use refresh::Refresher;
pub use seal::{Contents, Pending, SessionKeys};

/// `[session]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// The cookie's name; keep the `__Host-` prefix.
    pub cookie_name: String,
    /// The sealing key (`cargo xtask secrets` writes one). Empty: a random
    /// key made at start, so sessions end with the process and other
    /// gateway copies cannot read them (tests, one-off runs).
    pub key_file: String,
    /// The key before the last rotation; cookies it sealed are still read
    /// and sealed again with the current key. Empty: none.
    pub previous_key_file: String,
    /// The access token in the cookie is refreshed when less than this is
    /// left of it.
    pub refresh_before_secs: u64,
    /// The origin browsers reach this gateway at (`https://app.example.com`).
    /// A cookie-authenticated unsafe request without `Sec-Fetch-Site` must
    /// carry it as `Origin`. Empty: the request's own `Host`.
    pub public_origin: String,
}

impl SessionSettings {
    /// The keys the settings name.
    pub fn keys(&self) -> anyhow::Result<SessionKeys> {
        if self.key_file.is_empty() {
            tracing::warn!(
                "session.key_file is empty: browser sessions use a key made now, end when this \
                 process stops and are not readable by other gateway copies"
            );
            return SessionKeys::ephemeral(&self.cookie_name);
        }
        let previous = (!self.previous_key_file.is_empty())
            .then(|| std::path::Path::new(&self.previous_key_file));
        SessionKeys::from_files(
            std::path::Path::new(&self.key_file),
            previous,
            &self.cookie_name,
        )
    }
}

/// What the session layer shares between requests.
#[derive(Debug)]
pub struct Sessions {
    pub keys: SessionKeys,
    pub settings: SessionSettings,
    /// `<cookie_name>-mfa`: the pending login's cookie.
    pub pending_cookie_name: String,
    refresher: Refresher,
}

/// The session a request's cookie carries, for the extractors.
#[derive(Clone)]
pub struct SessionAuth {
    pub contents: Contents,
}

impl std::fmt::Debug for SessionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.contents.fmt(f)
    }
}

/// The refusal of a cross-site unsafe request.
pub const CROSS_SITE: ApiError = ApiError::Forbidden("cross-site request refused");

impl Sessions {
    pub fn new(keys: SessionKeys, settings: SessionSettings) -> Self {
        Self {
            pending_cookie_name: format!("{}{}", settings.cookie_name, seal::PENDING_SUFFIX),
            keys,
            settings,
            refresher: Refresher::default(),
        }
    }

    /// Every value of our session cookie the request carries.
    fn cookie_values<'a>(&'a self, headers: &'a HeaderMap) -> impl Iterator<Item = String> + 'a {
        values_of(headers, &self.settings.cookie_name)
    }

    /// The `Set-Cookie` that stores `contents`.
    pub fn set_cookie(&self, contents: &Contents) -> Result<HeaderValue, ApiError> {
        let value = self.keys.seal(contents)?;
        let left = contents.session_expires_at - OffsetDateTime::now_utc().unix_timestamp();
        build_cookie(&self.settings.cookie_name, value, left)
    }

    /// The `Set-Cookie` that removes the cookie.
    pub fn clear_cookie(&self) -> HeaderValue {
        removal(&self.settings.cookie_name)
    }

    /// The `Set-Cookie` of the pending login `token`, which lasts
    /// `expires_in` seconds.
    pub fn set_pending_cookie(
        &self,
        token: String,
        expires_in: u64,
    ) -> Result<HeaderValue, ApiError> {
        let life = i64::try_from(expires_in).unwrap_or(i64::MAX / 4);
        let pending = Pending {
            token,
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + life,
        };
        let value = self.keys.seal_pending(&pending)?;
        build_cookie(&self.pending_cookie_name, value, life)
    }

    /// The `Set-Cookie` that removes the pending-login cookie.
    pub fn clear_pending_cookie(&self) -> HeaderValue {
        removal(&self.pending_cookie_name)
    }

    /// The pending login the request's cookie holds: one that opens and has
    /// not expired.
    pub fn pending(&self, headers: &HeaderMap) -> Option<Pending> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        values_of(headers, &self.pending_cookie_name)
            .filter_map(|v| self.keys.open_pending(&v).ok())
            .find(|p| p.expires_at > now)
    }

    /// Whether the request carries a pending-login cookie (opened or not).
    pub fn has_pending_cookie(&self, headers: &HeaderMap) -> bool {
        values_of(headers, &self.pending_cookie_name)
            .next()
            .is_some()
    }

    /// Whether `response` already sets our cookie (a login or logout did).
    fn sets_cookie(&self, response: &Response) -> bool {
        sets(response, &self.settings.cookie_name)
    }

    /// Same-origin: `Sec-Fetch-Site: same-origin` when the browser sends the
    /// header, else an `Origin` equal to the public origin (or, with none
    /// configured, naming the request's `Host`).
    pub fn check_same_origin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(site) = headers.get("sec-fetch-site") {
            return if site.as_bytes() == b"same-origin" {
                Ok(())
            } else {
                Err(CROSS_SITE)
            };
        }
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .ok_or(CROSS_SITE)?;
        let public = self.settings.public_origin.trim_end_matches('/');
        let same = if public.is_empty() {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| Some(authority) == host)
        } else {
            origin.eq_ignore_ascii_case(public)
        };
        if same { Ok(()) } else { Err(CROSS_SITE) }
    }

    /// Cookie contents from a login or refresh reply.
    pub fn contents(reply: TokenReply) -> Contents {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX / 4);
        Contents {
            access_token: reply.access_token,
            refresh_token: reply.refresh_token,
            access_expires_at: now + secs(reply.expires_in),
            session_expires_at: now + secs(reply.refresh_expires_in),
        }
    }
}

/// Every value of the cookie `name` in `headers`.
fn values_of<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` of ours: host-only, `HttpOnly`, `Secure`, `Lax`, for
/// `max_age` seconds.
fn build_cookie(name: &str, value: String, max_age: i64) -> Result<HeaderValue, ApiError> {
    let cookie = Cookie::build((name, value))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(time::Duration::seconds(max_age.max(0)));
    HeaderValue::try_from(cookie.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cookie header: {e}")))
}

/// The `Set-Cookie` that removes the cookie `name`.
fn removal(name: &str) -> HeaderValue {
    let cookie = Cookie::build((name, ""))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(time::Duration::ZERO)
        .expires(OffsetDateTime::UNIX_EPOCH);
    HeaderValue::try_from(cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Whether `response` sets the cookie `name`.
fn sets(response: &Response, name: &str) -> bool {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(prefix.as_bytes()))
}

/// The routes that start a session (a login and its second step): refused
/// cross-site even without a cookie, so another site cannot log a browser
/// into an account of its choosing.
const STARTS_SESSION: &[&str] = &[
    "/api/session",
    "/api/session/mfa",
    "/api/session/mfa/passkey",
];

/// Methods a cross-site page must not make with the user's cookie.
fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The session middleware (see the module docs), and what caches may keep
/// of its replies: nothing of one that sets the cookie (a shared cache
/// would hand the session to the next visitor), nor of an API reply to a
/// caller with credentials.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let credentialed = request.headers().contains_key(header::AUTHORIZATION)
        || state
            .sessions
            .cookie_values(request.headers())
            .next()
            .is_some()
        || state.sessions.has_pending_cookie(request.headers());
    let api = request.uri().path().starts_with("/api/");
    let mut response = open_and_refresh(&state, request, next).await;
    let cache_control = if state.sessions.sets_cookie(&response)
        || sets(&response, &state.sessions.pending_cookie_name)
    {
        Some("private, no-store")
    } else if credentialed && api {
        Some("no-store")
    } else {
        None
    };
    if let Some(value) = cache_control {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

async fn open_and_refresh(state: &AppState, request: Request, next: Next) -> Response {
    let sessions = &state.sessions;
    let bearer = request.headers().contains_key(header::AUTHORIZATION);
    let values: Vec<String> = sessions.cookie_values(request.headers()).collect();
    let login = request.method() == Method::POST && STARTS_SESSION.contains(&request.uri().path());
    if is_unsafe(request.method())
        && !bearer
        && (!values.is_empty() || login)
        && let Err(refused) = sessions.check_same_origin(request.headers())
    {
        return refused.into_response();
    }
    if bearer || values.is_empty() {
        return next.run(request).await;
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let opened = values
        .iter()
        .find_map(|v| sessions.keys.open(v).ok())
        .filter(|o| o.contents.session_expires_at > now);
    let Some(opened) = opened else {
        // Tampered, sealed with a retired key, or past the session's end:
        // the request goes on without a session and the cookie is removed.
        tracing::debug!("a session cookie that does not open: cleared");
        return clear(sessions, next.run(request).await);
    };
    let near_expiry = opened.contents.access_expires_at - now
        <= i64::try_from(sessions.settings.refresh_before_secs).unwrap_or(i64::MAX);
    let (mut request, contents, changed) = if near_expiry {
        let (mut parts, body) = request.into_parts();
        let Ok(Ctx(ctx)) = Ctx::from_request_parts(&mut parts, state).await;
        let refreshed = refresh(state, ctx, opened.contents.refresh_token).await;
        let request = Request::from_parts(parts, body);
        match refreshed {
            Ok(contents) => (request, contents, true),
            Err(ApiError::Upstream(CallError::Service(e))) if e.status_code == 401 => {
                // Revoked, expired or spent: the session is over.
                tracing::info!("session refresh refused: cookie cleared");
                return clear(sessions, next.run(request).await);
            }
            Err(other) => return other.into_response(),
        }
    } else {
        (request, opened.contents, opened.stale_key)
    };
    request.extensions_mut().insert(SessionAuth {
        contents: contents.clone(),
    });
    let mut response = next.run(request).await;
    if changed && !sessions.sets_cookie(&response) {
        match sessions.set_cookie(&contents) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(e) => return e.into_response(),
        }
    }
    response
}

/// Exchanges the cookie's refresh token in a task of its own: its answer
/// is kept (and given to the next request with the same cookie) even when
/// the request that started it is gone first, closed by the client or cut
/// by a time limit. Dropping the call instead would lose a rotation that
/// the auth-worker may already have made, and leave the browser with a
/// spent token.
async fn refresh(
    state: &AppState,
    ctx: shared::RequestContext,
    refresh_token: String,
) -> Result<Contents, ApiError> {
    let state = state.clone();
    let call = async move {
        let sessions = &state.sessions;
        sessions
            .refresher
            .refresh(&refresh_token, || async {
                let reply = state
                    .nats
                    .call::<Refresh>(
                        &ctx,
                        &RefreshTokenRequest {
                            refresh_token: Secret::new(refresh_token.clone()),
                        },
                    )
                    .await?;
                Ok(Sessions::contents(reply))
            })
            .await
    };
    tokio::spawn(call.instrument(tracing::Span::current()))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("session refresh task: {e}")))?
}

/// `response`, removing the cookie unless the handler set it anew.
fn clear(sessions: &Sessions, mut response: Response) -> Response {
    if !sessions.sets_cookie(&response) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, sessions.clear_cookie());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(public_origin: &str) -> Sessions {
        let settings = SessionSettings {
            cookie_name: "__Host-test".into(),
            key_file: String::new(),
            previous_key_file: String::new(),
            refresh_before_secs: 60,
            public_origin: public_origin.into(),
        };
        Sessions::new(SessionKeys::ephemeral("__Host-test").unwrap(), settings)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn same_origin_is_sec_fetch_site_when_sent_else_the_origin() {
        let s = sessions("https://app.example");
        let ok = |h: &[(&'static str, &'static str)]| s.check_same_origin(&headers(h)).is_ok();
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        assert!(!ok(&[("sec-fetch-site", "none")]));
        // The browser's word wins over an Origin that looks right.
        assert!(!ok(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example")
        ]));
        assert!(ok(&[("origin", "https://app.example")]));
        assert!(!ok(&[("origin", "https://evil.example")]));
        assert!(!ok(&[("origin", "https://app.example.evil.example")]));
        assert!(!ok(&[("origin", "null")]));
        assert!(!ok(&[]));
    }

    #[test]
    fn without_a_public_origin_the_origin_must_name_the_host() {
        let s = sessions("");
        let ok = |h: &[(&'static str, &'static str)]| s.check_same_origin(&headers(h)).is_ok();
        assert!(ok(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(!ok(&[
            ("origin", "http://127.0.0.1:9999"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(!ok(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(!ok(&[("origin", "http://127.0.0.1:8080")]));
    }

    /// A request's headers with `Cookie: <the Set-Cookie's pair>`.
    fn sent_back(set: &HeaderValue) -> HeaderMap {
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::try_from(pair).unwrap());
        headers
    }

    #[test]
    fn the_pending_login_has_its_own_cookie_for_its_own_life() {
        let s = sessions("");
        assert_eq!(s.pending_cookie_name, "__Host-test-mfa");
        let set = s.set_pending_cookie("pending-token".into(), 300).unwrap();
        let text = set.to_str().unwrap();
        assert!(text.starts_with("__Host-test-mfa=v1."), "{text}");
        assert!(!text.contains("pending-token"), "{text}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=300",
        ] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        assert!(!text.contains("Domain"), "{text}");
        let headers = sent_back(&set);
        assert_eq!(s.pending(&headers).unwrap().token, "pending-token");
        assert!(s.has_pending_cookie(&headers));
        // It is no session cookie, and a session cookie is no pending login.
        assert_eq!(s.cookie_values(&headers).count(), 0);
        let clear = s.clear_pending_cookie();
        let clear = clear.to_str().unwrap();
        assert!(
            clear.starts_with("__Host-test-mfa=;") && clear.contains("Max-Age=0"),
            "{clear}"
        );
    }

    #[test]
    fn a_pending_cookie_that_is_a_session_value_expired_or_forged_is_none() {
        let s = sessions("");
        let contents = Contents {
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at: 0,
            session_expires_at: OffsetDateTime::now_utc().unix_timestamp() + 100,
        };
        let session_value = s.keys.seal(&contents).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::try_from(format!("__Host-test-mfa={session_value}")).unwrap(),
        );
        assert!(s.pending(&headers).is_none());
        assert!(s.has_pending_cookie(&headers));
        let expired = s.set_pending_cookie("t".into(), 0).unwrap();
        assert!(s.pending(&sent_back(&expired)).is_none());
        let other = sessions("");
        let foreign = other.set_pending_cookie("t".into(), 300).unwrap();
        assert!(s.pending(&sent_back(&foreign)).is_none());
    }

    #[test]
    fn the_cookie_is_host_only_http_only_secure_and_lax() {
        let s = sessions("");
        let contents = Contents {
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at: 0,
            session_expires_at: OffsetDateTime::now_utc().unix_timestamp() + 100,
        };
        let set = s.set_cookie(&contents).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-test=v1."), "{set}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age="] {
            assert!(set.contains(attribute), "{attribute} in {set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let clear = s.clear_cookie();
        let clear = clear.to_str().unwrap();
        assert!(
            clear.starts_with("__Host-test=;") && clear.contains("Max-Age=0"),
            "{clear}"
        );
    }
}
