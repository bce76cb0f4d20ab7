//! Extractors: typed input, and the verified caller.
//!
//! * [`Json`] is axum's, except that its rejection is an [`ApiError`], so a
//!   malformed body gets the contract's error body.
//! * [`Valid`] is a JSON body that also passed its `validator` rules (the
//!   same rules the worker applies again); every failing field is listed.
//! * [`Path`] and [`Query`] are axum's, with 400s in the contract's shape
//!   (a non-numeric id, a bad `limit`).
//! * [`Authenticated`] is the bearer-token guard: it yields the verified
//!   [`Caller`] or answers 401. Without an `Authorization` header it takes
//!   the browser session's access token ([`SessionAuth`]) instead. [`Admin`] is the role guard on top: 403 for a
//!   caller who is not an ADMIN now (not only by the token's word), or
//!   one who has not proved a second factor (`mfa.require_for_admin`). [`OptionalCaller`] is for public
//!   routes that show more to a caller: no token is fine, a bad one is 401.
//!   [`CookieSession`] is the browser session of a request that is
//!   authenticated by its cookie, for the routes that update the cookie.
//! * [`Ctx`] is what travels to the worker in headers (request id, trace,
//!   the client's address). [`ClientUserAgent`] is the client's
//!   `User-Agent`, which only the login routes add to it.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, header, request::Parts},
};
use serde::de::DeserializeOwned;
use shared::{Caller, RequestContext, headers::ClientAddress};

use crate::{AppState, error::ApiError, session::SessionAuth};

/// A JSON body whose rejection is the contract's error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        // The body limit applies here (413).
        let bytes = axum::body::Bytes::from_request(request, state).await?;
        // serde would read a struct from a JSON array too (`["a@b.co", …]`);
        // every body of this API is an object, so nothing else gets that far.
        // `shared` words the refusal (a worker gives the same one); its
        // status is chosen where every malformed body's is.
        shared::endpoint::require_object(&bytes).map_err(|e| ApiError::BadRequest(e.message))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| {
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// A JSON body that passed validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Valid<T>(pub T);

impl<S, T> FromRequest<S> for Valid<T>
where
    T: DeserializeOwned + validator::Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        value.validate()?;
        Ok(Self(value))
    }
}

/// Path parameters; a value that does not parse is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A query string; a value that does not parse is a 400.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The caller of a route that needs a bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // No header: the browser session's access token, if any, with
            // the same checks (the session layer opened and refreshed it).
            let session = parts
                .extensions
                .get::<SessionAuth>()
                .ok_or(ApiError::Unauthorized("missing bearer token"))?;
            return state
                .tokens
                .verify(&session.contents.access_token)
                .await
                .map(Self);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized("malformed authorization header"))?;
        state.tokens.verify(token).await.map(Self)
    }
}

/// The caller of an ADMIN-only route: 401 without a valid token, 403 with
/// one whose user is not an ADMIN now, and 403 for an ADMIN whose session
/// has not proved a second factor while `mfa.require_for_admin` is on (the
/// token's `amr` says so: [`Caller::mfa`]).
///
/// A token's role is what it was at login. A token that says ADMIN goes on
/// (the worker checks the current role and the session on every request). A
/// token that says USER is not refused on its word alone: its user may have
/// been promoted since, or its session may have ended (then the answer must
/// be 401, not 403). One `user.get` of the caller, which the worker answers
/// from the database, settles both; it costs a round trip only on this
/// uncommon path.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let admin = if caller.is_admin() {
            Self(caller)
        } else {
            Self::confirm(parts, state, caller).await?
        };
        admin_policy(state.settings.mfa.require_for_admin, &admin.0)?;
        Ok(admin)
    }
}

/// The second-factor policy for an ADMIN caller: with `require_for_admin`,
/// a session without a second factor may not act as an ADMIN (it may still
/// enrol one: those routes are any caller's).
pub fn admin_policy(require_for_admin: bool, caller: &Caller) -> Result<(), ApiError> {
    if require_for_admin && !caller.mfa {
        Err(ApiError::AdminNeedsSecondFactor)
    } else {
        Ok(())
    }
}

impl Admin {
    /// The guard for a route that makes no worker call of its own (the
    /// back-office pages): the current role is asked for even when the
    /// token says ADMIN, so a demotion or a deletion counts at once.
    pub async fn now(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let admin = Self::confirm(parts, state, caller).await?;
        admin_policy(state.settings.mfa.require_for_admin, &admin.0)?;
        Ok(admin)
    }

    /// ADMIN as the user-worker sees the caller now (its live session and
    /// current role).
    async fn confirm(
        parts: &mut Parts,
        state: &AppState,
        caller: Caller,
    ) -> Result<Self, ApiError> {
        let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
        let now = state
            .nats
            .call::<shared::user::Get>(
                &ctx.with_caller(caller),
                &shared::user::GetRequest { id: caller.id },
            )
            .await?;
        if now.role == shared::Role::Admin {
            Ok(Self(Caller {
                role: now.role,
                ..caller
            }))
        } else {
            Err(ApiError::Forbidden("admin role required"))
        }
    }
}

/// The caller of a route where a bearer token is optional: none without an
/// `Authorization` header or a session, but a header that is there must hold a valid token
/// (401 otherwise), so a bad or expired token is never silently anonymous.
#[derive(Debug, Clone, Copy)]
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION)
            && parts.extensions.get::<SessionAuth>().is_none()
        {
            return Ok(Self(None));
        }
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        Ok(Self(Some(caller)))
    }
}

/// The browser session of a request authenticated by its cookie; `None`
/// for a bearer caller (an `Authorization` header wins over the cookie) and
/// an anonymous one. A route whose reply changes the session's access
/// token (a step-up) stores it here rather than in the body.
#[derive(Debug, Clone)]
pub struct CookieSession(pub Option<SessionAuth>);

impl<S: Send + Sync> FromRequestParts<S> for CookieSession {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Self(None));
        }
        Ok(Self(parts.extensions.get::<SessionAuth>().cloned()))
    }
}

/// The request's context for the NATS hop: request id, trace parent and the
/// client's address. The caller is added by routes that have one.
#[derive(Debug, Clone, Default)]
pub struct Ctx(pub RequestContext);

impl Ctx {
    pub fn with_caller(mut self, caller: Caller) -> RequestContext {
        self.0.caller = Some(caller);
        self.0
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                ClientAddress(client_ip(
                    *peer,
                    &parts.headers,
                    state.settings.http.trust_forwarded_for,
                ))
            });
        Ok(Self(RequestContext {
            caller: None,
            request_id: text(crate::REQUEST_ID),
            // Set by the trace-context middleware: this hop, not the client's.
            traceparent: parts
                .extensions
                .get::<shared::headers::TraceParent>()
                .map(ToString::to_string),
            client,
            user_agent: None,
            // Only the passkey calls send it (see `routes::mfa`).
            origin: None,
        }))
    }
}

/// The client's `User-Agent`, cut to [`shared::headers::USER_AGENT_MAX`]
/// bytes; `None` when absent or not text. Only the login routes put it in
/// the context (the worker remembers it with the new session), so no other
/// request carries it to a worker.
#[derive(Debug, Clone, Default)]
pub struct ClientUserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientUserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| shared::headers::cut(v, shared::headers::USER_AGENT_MAX).to_owned()),
        ))
    }
}

/// The client's address: the peer, or, behind a trusted proxy that appends
/// it, the last `X-Forwarded-For` entry. Anything unparsable falls back to
/// the peer.
pub(crate) fn client_ip(
    peer: SocketAddr,
    headers: &HeaderMap,
    trust_forwarded_for: bool,
) -> IpAddr {
    if trust_forwarded_for && let Some(ip) = last_forwarded_for(headers).and_then(forwarded_ip) {
        return ip;
    }
    peer.ip()
}

/// The last `X-Forwarded-For` entry: the one the trusted proxy appended.
fn last_forwarded_for(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .next_back()
}

/// An `X-Forwarded-For` entry as proxies write it: `ip`, `ip:port`,
/// `[v6]` or `[v6]:port`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let v6 = entry.strip_prefix('[')?.strip_suffix(']')?;
            v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })
}

/// With `http.trust_forwarded_for`, a request whose last `X-Forwarded-For`
/// entry is no address gets 400: taking the proxy's own address instead
/// would count every client as one (one throttle, one share). The proxy's
/// misconfiguration is logged once.
pub async fn forwarded_for(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if state.settings.http.trust_forwarded_for
        && let Some(last) = last_forwarded_for(request.headers())
        && forwarded_ip(last).is_none()
    {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let shown: String = last.chars().take(64).collect();
            tracing::warn!(entry = ?shown, "X-Forwarded-For's last entry is no address: refused (400); check the proxy in front");
        }
        return ApiError::BadRequest("X-Forwarded-For: the last entry is not an address".into())
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn an_admin_without_a_second_factor_is_refused_while_the_policy_is_on() {
        let admin = |mfa| Caller {
            id: 1,
            role: shared::Role::Admin,
            session: None,
            mfa,
        };
        assert!(matches!(
            admin_policy(true, &admin(false)),
            Err(ApiError::AdminNeedsSecondFactor)
        ));
        assert!(admin_policy(true, &admin(true)).is_ok());
        assert!(admin_policy(false, &admin(false)).is_ok());
    }

    #[test]
    fn forwarded_for_is_ignored_unless_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let h = forwarded("1.2.3.4, 5.6.7.8");
        assert_eq!(client_ip(peer, &h, false), peer.ip());
        assert_eq!(client_ip(peer, &h, true).to_string(), "5.6.7.8");
        assert_eq!(client_ip(peer, &forwarded("garbage"), true), peer.ip());
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_parse() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        for (value, ip) in [
            ("1.2.3.4, 5.6.7.8:4711", "5.6.7.8"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::2]", "2001:db8::2"),
            ("2001:db8::3", "2001:db8::3"),
            (" 9.9.9.9 ", "9.9.9.9"),
        ] {
            assert_eq!(
                client_ip(peer, &forwarded(value), true).to_string(),
                ip,
                "{value}"
            );
        }
        for bad in ["unknown", "1.2.3.4:", "[::1", "1.2.3.4.5"] {
            assert_eq!(forwarded_ip(bad), None, "{bad}");
        }
    }
}
