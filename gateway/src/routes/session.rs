//! `/api/session`: the browser session (see [`crate::session`]). Log in,
//! ask who is logged in, log out. No reply body ever carries a token: the
//! token pair lives only in the sealed cookie, and a pending login (a user
//! with a second factor) only in the sealed pending-login cookie, which
//! `POST /api/session/mfa` ([`crate::routes::mfa`]) completes.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use runtime::rpc::CallError;
use serde::{Deserialize, Serialize};
use shared::{
    Role, User,
    auth::{Login, LoginRequest, Logout, RefreshTokenRequest, TokenReply},
    mfa::{LoginReply, MfaChallenge},
    types::Secret,
    user,
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationErrors};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, ClientUserAgent, Ctx, Valid},
    openapi::{BodyErrors, UpstreamErrors},
    session::{SessionAuth, Sessions, next},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login, current))
        .routes(routes!(logout))
}

/// `POST /api/session`: the login form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionLogin {
    #[serde(flatten)]
    pub credentials: LoginRequest,
    /// Where to go after login: followed only when it is a path on this
    /// origin (see the README's list), else the user's default page.
    #[serde(default)]
    #[schema(example = "/dashboard/")]
    pub next: Option<String>,
}

impl Validate for SessionLogin {
    fn validate(&self) -> Result<(), ValidationErrors> {
        self.credentials.validate()
    }
}

/// A successful login: who, and where to go.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub user: User,
    /// `next` when it is safe, else `/dashboard/` for an ADMIN and
    /// `/account` for a USER.
    #[schema(example = "/account")]
    pub redirect_to: String,
}

/// Who is logged in, and until when the session lasts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub user: User,
    /// When the session ends (it is refreshed until then).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// The protected upstreams (internal tools) this user's role may open,
    /// in the order configured.
    pub tools: Vec<Tool>,
}

/// An internal tool behind the login (a proxy route).
#[derive(Debug, Serialize, ToSchema)]
pub struct Tool {
    /// The route's name.
    #[schema(example = "nats")]
    pub name: String,
    /// Where it opens.
    #[schema(example = "/proxy/nats/")]
    pub href: String,
}

/// The page a user lands on when `next` is absent or refused.
pub fn default_page(role: Role) -> &'static str {
    match role {
        Role::Admin => "/dashboard/",
        Role::User => "/account",
    }
}

/// Session replies are about one person: no cache may keep them.
pub(crate) fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Log in and start a browser session (sets the session cookie). The same
/// checks and throttling as `POST /api/auth/login`; refused cross-site. A
/// user with a second factor gets 202 and the pending-login cookie
/// (`<session cookie>-mfa`, HttpOnly, for `expiresIn` seconds) instead;
/// `POST /api/session/mfa` with a factor then starts the session.
#[utoipa::path(
    post, path = "/api/session", tag = "session", operation_id = "session_login",
    request_body = SessionLogin,
    responses(
        (status = 200, description = "Logged in; the cookie is set", body = SessionCreated),
        (status = 202, description = "The password is right; a second factor is required \
            (`mfaRequired: true`, `methods`, `expiresIn`; no token: the pending login is in \
            the HttpOnly cookie `<session cookie>-mfa`)", body = MfaChallenge),
        (status = 401, description = "Unknown email or wrong password (one message for both)", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 429, description = "Too many failures for this email or client address; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    previous: Option<axum::Extension<SessionAuth>>,
    Ctx(ctx): Ctx,
    ClientUserAgent(user_agent): ClientUserAgent,
    Valid(request): Valid<SessionLogin>,
) -> Result<Response, ApiError> {
    // Only the login carries the user agent (the session remembers it, or
    // the pending login until its second step), not the logout of the
    // session it replaces.
    let login_ctx = shared::RequestContext {
        user_agent,
        ..ctx.clone()
    };
    let reply = match state
        .nats
        .call::<Login>(&login_ctx, &request.credentials)
        .await?
    {
        LoginReply::Tokens(reply) => reply,
        LoginReply::MfaRequired(challenge) => return pending_login(&state, challenge),
    };
    let mut response = start(&state, ctx, previous, reply, request.next.as_deref()).await?;
    if state.sessions.has_pending_cookie(&headers) {
        // A pending login left from an earlier attempt is moot now.
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.sessions.clear_pending_cookie());
    }
    Ok(response)
}

/// The 202 of a login that needs a second factor: the pending login goes
/// into its sealed cookie, never into the body (no page script sees it).
/// The session cookie, if any, stays until the second step replaces it.
fn pending_login(state: &AppState, challenge: MfaChallenge) -> Result<Response, ApiError> {
    let token = challenge
        .mfa_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a pending login without a token")))?;
    let cookie = state
        .sessions
        .set_pending_cookie(token, challenge.expires_in)?;
    let body = MfaChallenge {
        mfa_token: None,
        ..challenge
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::SET_COOKIE, cookie), no_store()],
        axum::Json(body),
    )
        .into_response())
}

/// Starts the browser session of `reply` (a login, or its second step):
/// ends the session of the cookie it replaces, sets the cookie and answers
/// who logged in and where to go (`next` when it is a path on this origin).
pub(crate) async fn start(
    state: &AppState,
    ctx: shared::RequestContext,
    previous: Option<axum::Extension<SessionAuth>>,
    reply: TokenReply,
    next: Option<&str>,
) -> Result<Response, ApiError> {
    if let Some(axum::Extension(previous)) = previous {
        // The cookie this login replaces: its session ends now rather than
        // lingering for a copy of the old cookie to use.
        end_session(state, ctx, &previous).await;
    }
    let user = reply.user.clone();
    let cookie = state.sessions.set_cookie(&Sessions::contents(reply))?;
    let redirect_to = next
        .and_then(next::same_origin_path)
        .unwrap_or_else(|| default_page(user.role))
        .to_owned();
    tracing::info!(user_id = user.id, "browser session started");
    Ok((
        [(header::SET_COOKIE, cookie), no_store()],
        axum::Json(SessionCreated { user, redirect_to }),
    )
        .into_response())
}

/// Who the session cookie belongs to (asked of the user-worker, so a
/// deleted user or an ended session is 401).
#[utoipa::path(
    get, path = "/api/session", tag = "session", operation_id = "session_current",
    security(("session" = [])),
    responses(
        (status = 200, description = "The session's user", body = SessionInfo),
        (status = 401, description = "No valid session", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn current(
    State(state): State<AppState>,
    session: Option<axum::Extension<SessionAuth>>,
    ctx: Ctx,
) -> Result<Response, ApiError> {
    let axum::Extension(session) = session.ok_or(ApiError::Unauthorized("no session"))?;
    let caller = state.tokens.verify(&session.contents.access_token).await?;
    let user = state
        .nats
        .call::<user::Get>(
            &ctx.with_caller(caller),
            &user::GetRequest { id: caller.id },
        )
        .await?;
    let expires_at = OffsetDateTime::from_unix_timestamp(session.contents.session_expires_at)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let tools = state
        .proxy
        .routes
        .iter()
        .filter(|route| route.roles.contains(&user.role))
        .map(|route| Tool {
            name: route.name.clone(),
            href: format!("{}/", route.prefix),
        })
        .collect();
    Ok((
        [no_store()],
        axum::Json(SessionInfo {
            user,
            expires_at,
            tools,
        }),
    )
        .into_response())
}

/// End the browser session: its refresh token is revoked and the cookie
/// cleared. Refused cross-site.
#[utoipa::path(
    post, path = "/api/session/logout", tag = "session", operation_id = "session_logout",
    security(("session" = [])),
    responses(
        (status = 204, description = "Logged out; the cookie is cleared"),
        (status = 401, description = "No session cookie", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn logout(
    State(state): State<AppState>,
    session: Option<axum::Extension<SessionAuth>>,
    caller: Result<Authenticated, ApiError>,
    ctx: Ctx,
) -> Result<Response, ApiError> {
    let axum::Extension(session) = session.ok_or(ApiError::Unauthorized("no session"))?;
    // An access token that no longer verifies (its key was retired) still
    // names a session to end; without a caller the worker cannot check the
    // token is this user's, so only a verified caller revokes.
    if let Ok(Authenticated(caller)) = caller {
        revoke(&state, ctx.with_caller(caller), &session).await?;
        tracing::info!(user_id = caller.id, "browser session ended");
    }
    Ok((
        StatusCode::NO_CONTENT,
        [
            (header::SET_COOKIE, state.sessions.clear_cookie()),
            no_store(),
        ],
    )
        .into_response())
}

/// Ends `session` through `auth.logout` as the caller in `ctx`; a session
/// that had already ended (revoked, expired, its user deleted) is not an
/// error.
async fn revoke(
    state: &AppState,
    ctx: shared::RequestContext,
    session: &SessionAuth,
) -> Result<(), CallError> {
    let request = RefreshTokenRequest {
        refresh_token: Secret::new(session.contents.refresh_token.clone()),
    };
    match state.nats.call::<Logout>(&ctx, &request).await {
        Err(CallError::Service(e)) if e.status_code == 401 || e.status_code == 404 => Ok(()),
        other => other.map(drop),
    }
}

/// Revokes the session of a cookie that is being replaced; a failure only
/// costs that session its early end, so it is logged, not returned.
async fn end_session(state: &AppState, mut ctx: shared::RequestContext, session: &SessionAuth) {
    let Ok(caller) = state.tokens.verify(&session.contents.access_token).await else {
        return;
    };
    ctx.caller = Some(caller);
    match revoke(state, ctx, session).await {
        Ok(()) => tracing::info!(user_id = caller.id, "replaced browser session ended"),
        Err(e) => tracing::warn!(error = %e, "could not end the replaced browser session"),
    }
}
