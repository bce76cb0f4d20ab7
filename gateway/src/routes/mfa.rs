//! The second factor (see `shared::mfa`): the second step of a login (API
//! and browser session), step-up, the caller's own factors, and the ADMIN's
//! reset of another user's.
//!
//! Three things are the gateway's own here, the rest is one NATS request
//! each:
//!
//! * **The pending login of a browser** lives in its sealed cookie
//!   (`<session cookie>-mfa`, set by `POST /api/session`), never in a body:
//!   `/api/session/mfa…` read it from there. A 401 of the auth-worker (the
//!   pending login expired, was spent or failed too often) clears it.
//! * **Passkeys** are bound to an origin: every call that makes WebAuthn
//!   options or checks a passkey sends `session.public_origin` along
//!   ([`RequestContext::origin`]); without one the auth-worker answers 409.
//! * **A new access token** ([`AccessGrant`]: a step-up, the first factor
//!   enrolled) goes into the session cookie for a browser session, and the
//!   body then has none; a bearer client gets it in the body.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use runtime::rpc::CallError;
use serde::{Deserialize, Serialize};
use shared::{
    RequestContext,
    auth::{Empty, TokenReply, UserRequest},
    mfa::{
        AccessGrant, BeginTotp, ConfirmTotp, ConfirmTotpRequest, FactorAdded, FactorProof,
        GetMfaStatus, LoginMfa, LoginMfaRequest, LoginPasskeyOptions, MfaStatus, NewRecoveryCodes,
        PasskeyInfo, PasskeyOptions, PendingLoginRequest, RecoveryCodes, RegisterPasskey,
        RegisterPasskeyRequest, RemoveFactorRequest, RemovePasskey, RemoveTotp, RenamePasskey,
        RenamePasskeyRequest, ResetMfa, StepUp, StepUpOptions, TotpEnrolment, WebAuthnOptions,
    },
    types::Secret,
    user::UserId,
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationErrors};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Admin, Authenticated, CookieSession, Ctx, Path, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
    routes::session::{SessionCreated, no_store, start},
    session::{Contents, SessionAuth},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login_mfa))
        .routes(routes!(login_passkey_options))
        .routes(routes!(session_mfa))
        .routes(routes!(session_passkey_options))
        .routes(routes!(mfa_status))
        .routes(routes!(begin_totp, remove_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(passkey_options))
        .routes(routes!(register_passkey))
        .routes(routes!(rename_passkey, remove_passkey))
        .routes(routes!(new_recovery_codes))
        .routes(routes!(step_up_options))
        .routes(routes!(step_up))
        .routes(routes!(reset_mfa))
}

/// The refusal of a second step without a pending login in its cookie.
const NO_PENDING_LOGIN: ApiError = ApiError::Unauthorized("no pending login");

/// `POST /api/session/mfa`: a factor for the pending login in the cookie.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionMfa {
    /// A `code` (the app's 6 digits or a recovery code) or a `passkey`.
    #[serde(flatten)]
    pub proof: FactorProof,
    /// Where to go after login, as for `POST /api/session`.
    #[serde(default)]
    #[schema(example = "/dashboard/")]
    pub next: Option<String>,
}

impl Validate for SessionMfa {
    fn validate(&self) -> Result<(), ValidationErrors> {
        self.proof.validate()
    }
}

/// `PATCH /api/users/me/mfa/passkeys/{id}`: the passkey's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasskeyName {
    #[serde(default)]
    #[schema(example = "Phone", required = true, min_length = 1, max_length = 64)]
    pub name: String,
}

impl Validate for PasskeyName {
    /// The worker's rule for a name, which lives with
    /// [`RenamePasskeyRequest`] (the id is the path's, checked by then).
    fn validate(&self) -> Result<(), ValidationErrors> {
        RenamePasskeyRequest {
            id: uuid::Uuid::nil(),
            name: self.name.clone(),
        }
        .validate()
    }
}

/// The context of a call that makes passkey options or checks a passkey:
/// WebAuthn's origin (and so its relying party) is the gateway's public
/// origin, which only the gateway knows.
fn with_origin(state: &AppState, mut ctx: RequestContext) -> RequestContext {
    let origin = state.settings.session.public_origin.trim_end_matches('/');
    if !origin.is_empty() {
        ctx.origin = Some(origin.to_owned());
    }
    ctx
}

/// [`with_origin`] when `proof` is a passkey.
fn for_proof(state: &AppState, ctx: RequestContext, proof: &FactorProof) -> RequestContext {
    if proof.passkey.is_some() {
        with_origin(state, ctx)
    } else {
        ctx
    }
}

/// Where a new access token goes: into the cookie of a browser session
/// (the `Set-Cookie` returned, and the grant's `accessToken` emptied so the
/// body carries none), or, for a bearer client, left in the body.
fn deliver(
    state: &AppState,
    session: Option<&SessionAuth>,
    grant: &mut AccessGrant,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(session) = session else {
        return Ok(None);
    };
    let contents = granted(&session.contents, grant, OffsetDateTime::now_utc());
    let cookie = state.sessions.set_cookie(&contents)?;
    grant.access_token = String::new();
    Ok(Some(cookie))
}

/// The session cookie's contents once `grant` replaced its access token.
fn granted(contents: &Contents, grant: &AccessGrant, now: OffsetDateTime) -> Contents {
    let life = i64::try_from(grant.expires_in).unwrap_or(i64::MAX / 4);
    Contents {
        access_token: grant.access_token.clone(),
        access_expires_at: now.unix_timestamp() + life,
        ..contents.clone()
    }
}

/// `body` with `status`, and the cookie of a grant if there is one.
fn with_cookie<T: Serialize>(status: StatusCode, cookie: Option<HeaderValue>, body: T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(cookie) = cookie {
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, cookie);
        let (name, value) = no_store();
        headers.insert(name, value);
    }
    response
}

/// Complete a pending login with a factor (the second step after a 202 of
/// `POST /api/auth/login`): the session starts, authenticated by the
/// password and the factor. A wrong factor counts against the pending
/// login; a few, and the password must be given again. A `passkey` answers
/// the options of `POST /api/auth/login/passkey`.
#[utoipa::path(
    post, path = "/api/auth/login/mfa", tag = "mfa",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Tokens and the user", body = TokenReply),
        (status = 401, description = "The pending login expired, was spent or failed too often", body = ErrorBody),
        (status = 403, description = "A wrong, replayed or spent factor (\"invalid code or passkey\")", body = ErrorBody),
        (status = 409, description = "A passkey, and the gateway has no `session.public_origin`", body = ErrorBody),
        (status = 429, description = "Too many wrong factors; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login_mfa(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<LoginMfaRequest>,
) -> Result<axum::Json<TokenReply>, ApiError> {
    let ctx = for_proof(&state, ctx, &request.proof);
    Ok(axum::Json(
        state.nats.call::<LoginMfa>(&ctx, &request).await?,
    ))
}

/// WebAuthn options (`navigator.credentials.get()`) for a pending login's
/// passkeys; the assertion goes to `POST /api/auth/login/mfa` as `passkey`.
#[utoipa::path(
    post, path = "/api/auth/login/passkey", tag = "mfa",
    request_body = PendingLoginRequest,
    responses(
        (status = 200, description = "Request options, `{publicKey: {…}}`", body = WebAuthnOptions),
        (status = 401, description = "The pending login expired, was spent or failed too often", body = ErrorBody),
        (status = 409, description = "No passkey, or the gateway has no `session.public_origin`", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login_passkey_options(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<PendingLoginRequest>,
) -> Result<axum::Json<WebAuthnOptions>, ApiError> {
    let ctx = with_origin(&state, ctx);
    Ok(axum::Json(
        state
            .nats
            .call::<LoginPasskeyOptions>(&ctx, &request)
            .await?,
    ))
}

/// The pending login of the request's cookie; 401 without one.
fn pending_token(state: &AppState, headers: &HeaderMap) -> Result<Secret, ApiError> {
    state
        .sessions
        .pending(headers)
        .map(|pending| Secret::new(pending.token))
        .ok_or(NO_PENDING_LOGIN)
}

/// A failed call about the pending login: a 401 says it is over, and the
/// cookie that holds it goes with the refusal.
fn pending_failed(state: &AppState, error: CallError) -> Response {
    let over = matches!(&error, CallError::Service(e) if e.status_code == 401);
    let mut response = ApiError::from(error).into_response();
    if over {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.sessions.clear_pending_cookie());
    }
    response
}

/// The second step of a browser login: a factor for the pending login in
/// the cookie. The session starts as `POST /api/session` starts it (the
/// session cookie set, `redirectTo` from `next`), and the pending-login
/// cookie is cleared. Refused cross-site.
#[utoipa::path(
    post, path = "/api/session/mfa", tag = "mfa", operation_id = "session_mfa",
    request_body = SessionMfa,
    responses(
        (status = 200, description = "Logged in; the session cookie is set and the pending-login \
            cookie cleared", body = SessionCreated),
        (status = 401, description = "No pending-login cookie (\"no pending login\"), a wrong \
            factor, or the pending login is over (its cookie is then cleared)", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 409, description = "A passkey, and the gateway has no `session.public_origin`", body = ErrorBody),
        (status = 429, description = "Too many wrong factors; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn session_mfa(
    State(state): State<AppState>,
    headers: HeaderMap,
    previous: Option<axum::Extension<SessionAuth>>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<SessionMfa>,
) -> Result<Response, ApiError> {
    let mfa_token = pending_token(&state, &headers)?;
    let call_ctx = for_proof(&state, ctx.clone(), &request.proof);
    let login = LoginMfaRequest {
        mfa_token,
        proof: request.proof,
    };
    let reply = match state.nats.call::<LoginMfa>(&call_ctx, &login).await {
        Ok(reply) => reply,
        Err(e) => return Ok(pending_failed(&state, e)),
    };
    let mut response = start(&state, ctx, previous, reply, request.next.as_deref()).await?;
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.sessions.clear_pending_cookie());
    Ok(response)
}

/// WebAuthn options for the pending login in the cookie; the assertion
/// goes to `POST /api/session/mfa` as `passkey`. No body. Refused
/// cross-site.
#[utoipa::path(
    post, path = "/api/session/mfa/passkey", tag = "mfa", operation_id = "session_passkey_options",
    responses(
        (status = 200, description = "Request options, `{publicKey: {…}}`", body = WebAuthnOptions),
        (status = 401, description = "No pending-login cookie, or the pending login is over (its \
            cookie is then cleared)", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 409, description = "No passkey, or the gateway has no `session.public_origin`", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn session_passkey_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    Ctx(ctx): Ctx,
) -> Result<Response, ApiError> {
    let request = PendingLoginRequest {
        mfa_token: pending_token(&state, &headers)?,
    };
    let ctx = with_origin(&state, ctx);
    Ok(
        match state.nats.call::<LoginPasskeyOptions>(&ctx, &request).await {
            Ok(options) => ([no_store()], axum::Json(options)).into_response(),
            Err(e) => pending_failed(&state, e),
        },
    )
}

/// The caller's factors (never a secret) and how this session is
/// authenticated.
#[utoipa::path(
    get, path = "/api/users/me/mfa", tag = "mfa", operation_id = "mfa_status",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The factors and the session's `amr` and `authTime`", body = MfaStatus),
        AuthErrors, UpstreamErrors,
    )
)]
async fn mfa_status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<MfaStatus>, ApiError> {
    Ok(axum::Json(
        state
            .nats
            .call::<GetMfaStatus>(&ctx.with_caller(caller), &Empty {})
            .await?,
    ))
}

/// Begin setting up an authenticator app: a new secret, unconfirmed until
/// `POST /api/users/me/mfa/totp/confirm` sends its first code. No body.
#[utoipa::path(
    post, path = "/api/users/me/mfa/totp", tag = "mfa", operation_id = "begin_totp",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret, its `otpauth://` URI and that URI's QR code (SVG)", body = TotpEnrolment),
        (status = 403, description = "The user has a factor this session has not proved (step up \
            first), or a cross-site request", body = ErrorBody),
        (status = 409, description = "An authenticator app is already on", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn begin_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<TotpEnrolment>, ApiError> {
    Ok(axum::Json(
        state
            .nats
            .call::<BeginTotp>(&ctx.with_caller(caller), &Empty {})
            .await?,
    ))
}

/// Turn the authenticator app on with its first code. The first factor
/// brings ten recovery codes (shown once) and upgrades this session
/// (`grant`; a browser session gets it in its cookie).
#[utoipa::path(
    post, path = "/api/users/me/mfa/totp/confirm", tag = "mfa", operation_id = "confirm_totp",
    security(("bearer" = [])),
    request_body = ConfirmTotpRequest,
    responses(
        (status = 200, description = "The app is on: `recoveryCodes` (none unless this is the first \
            factor) and, for the first factor, `grant`", body = FactorAdded),
        (status = 403, description = "A wrong code, a session that must step up first, or a \
            cross-site request", body = ErrorBody),
        (status = 409, description = "No set-up begun, or the app is already on", body = ErrorBody),
        (status = 429, description = "Too many wrong codes; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn confirm_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    CookieSession(session): CookieSession,
    ctx: Ctx,
    Valid(request): Valid<ConfirmTotpRequest>,
) -> Result<Response, ApiError> {
    let mut added = state
        .nats
        .call::<ConfirmTotp>(&ctx.with_caller(caller), &request)
        .await?;
    let cookie = match added.grant.as_mut() {
        Some(grant) => deliver(&state, session.as_ref(), grant)?,
        None => None,
    };
    Ok(with_cookie(StatusCode::OK, cookie, added))
}

/// Turn the authenticator app off: the current password and a current
/// factor (`code`, or a `passkey` for the options of
/// `POST /api/auth/step-up/passkey`).
#[utoipa::path(
    delete, path = "/api/users/me/mfa/totp", tag = "mfa", operation_id = "remove_totp",
    security(("bearer" = [])),
    request_body(content = RemoveFactorRequest, description = "`currentPassword` and a `code` or \
        a `passkey` (`id` is not used here)"),
    responses(
        (status = 204, description = "The app is off"),
        (status = 403, description = "A wrong password or factor, or a cross-site request", body = ErrorBody),
        (status = 409, description = "No app is on, or an ADMIN's last factor", body = ErrorBody),
        (status = 429, description = "Too many wrong attempts; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn remove_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(mut request): Valid<RemoveFactorRequest>,
) -> Result<StatusCode, ApiError> {
    request.id = None;
    let ctx = for_proof(&state, ctx.with_caller(caller), &request.proof);
    state.nats.call::<RemoveTotp>(&ctx, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// WebAuthn options (`navigator.credentials.create()`) for a new passkey;
/// the credential goes to `POST /api/users/me/mfa/passkeys`. No body.
#[utoipa::path(
    post, path = "/api/users/me/mfa/passkeys/options", tag = "mfa", operation_id = "passkey_options",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Creation options, `{publicKey: {…}}`", body = WebAuthnOptions),
        (status = 403, description = "The user has a factor this session has not proved (step up \
            first), or a cross-site request", body = ErrorBody),
        (status = 409, description = "The gateway has no `session.public_origin`", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn passkey_options(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<WebAuthnOptions>, ApiError> {
    options::<PasskeyOptions>(&state, caller, ctx).await
}

/// The caller's WebAuthn options from `E`, made for the public origin.
async fn options<E>(
    state: &AppState,
    caller: shared::Caller,
    ctx: Ctx,
) -> Result<axum::Json<WebAuthnOptions>, ApiError>
where
    E: shared::Endpoint<Request = Empty, Reply = WebAuthnOptions>,
{
    let ctx = with_origin(state, ctx.with_caller(caller));
    Ok(axum::Json(state.nats.call::<E>(&ctx, &Empty {}).await?))
}

/// Add a passkey: the browser's new credential for the options of
/// `POST /api/users/me/mfa/passkeys/options`, and its name. The first
/// factor brings ten recovery codes (shown once) and upgrades this session
/// (`grant`; a browser session gets it in its cookie).
#[utoipa::path(
    post, path = "/api/users/me/mfa/passkeys", tag = "mfa", operation_id = "register_passkey",
    security(("bearer" = [])),
    request_body = RegisterPasskeyRequest,
    responses(
        (status = 201, description = "The passkey, `recoveryCodes` (none unless this is the first \
            factor) and, for the first factor, `grant`", body = FactorAdded),
        (status = 400, description = "A malformed body, or a credential that does not verify \
            against the options", body = ErrorBody),
        (status = 403, description = "A session that must step up first, or a cross-site request", body = ErrorBody),
        (status = 409, description = "The passkey is already registered, or the gateway has no \
            `session.public_origin`", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn register_passkey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    CookieSession(session): CookieSession,
    ctx: Ctx,
    Valid(request): Valid<RegisterPasskeyRequest>,
) -> Result<Response, ApiError> {
    let ctx = with_origin(&state, ctx.with_caller(caller));
    let mut added = state.nats.call::<RegisterPasskey>(&ctx, &request).await?;
    let cookie = match added.grant.as_mut() {
        Some(grant) => deliver(&state, session.as_ref(), grant)?,
        None => None,
    };
    Ok(with_cookie(StatusCode::CREATED, cookie, added))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(
    patch, path = "/api/users/me/mfa/passkeys/{id}", tag = "mfa", operation_id = "rename_passkey",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The passkey's id, from the status")),
    request_body = PasskeyName,
    responses(
        (status = 200, description = "The renamed passkey", body = PasskeyInfo),
        (status = 403, description = "A cross-site request (browser session)", body = ErrorBody),
        (status = 404, description = "The caller has no passkey with this id", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn rename_passkey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<uuid::Uuid>,
    Valid(body): Valid<PasskeyName>,
) -> Result<axum::Json<PasskeyInfo>, ApiError> {
    let request = RenamePasskeyRequest {
        id,
        name: body.name,
    };
    Ok(axum::Json(
        state
            .nats
            .call::<RenamePasskey>(&ctx.with_caller(caller), &request)
            .await?,
    ))
}

/// Remove one of the caller's passkeys: the current password and a current
/// factor (`code`, or a `passkey` for the options of
/// `POST /api/auth/step-up/passkey`).
#[utoipa::path(
    delete, path = "/api/users/me/mfa/passkeys/{id}", tag = "mfa", operation_id = "remove_passkey",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The passkey's id, from the status")),
    request_body(content = RemoveFactorRequest, description = "`currentPassword` and a `code` or \
        a `passkey` (the path names the passkey; an `id` here is not used)"),
    responses(
        (status = 204, description = "The passkey is removed"),
        (status = 403, description = "A wrong password or factor, or a cross-site request", body = ErrorBody),
        (status = 404, description = "The caller has no passkey with this id", body = ErrorBody),
        (status = 409, description = "An ADMIN's last factor", body = ErrorBody),
        (status = 429, description = "Too many wrong attempts; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn remove_passkey(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<uuid::Uuid>,
    Valid(mut request): Valid<RemoveFactorRequest>,
) -> Result<StatusCode, ApiError> {
    request.id = Some(id);
    let ctx = for_proof(&state, ctx.with_caller(caller), &request.proof);
    state.nats.call::<RemovePasskey>(&ctx, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new recovery codes for a factor proved now (`code` or `passkey`);
/// the old ones stop working. Shown once.
#[utoipa::path(
    post, path = "/api/users/me/mfa/recovery-codes", tag = "mfa", operation_id = "new_recovery_codes",
    security(("bearer" = [])),
    request_body = FactorProof,
    responses(
        (status = 200, description = "The new codes", body = RecoveryCodes),
        (status = 403, description = "A wrong factor, or a cross-site request", body = ErrorBody),
        (status = 409, description = "No factor is on", body = ErrorBody),
        (status = 429, description = "Too many wrong factors; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn new_recovery_codes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(proof): Valid<FactorProof>,
) -> Result<Response, ApiError> {
    let ctx = for_proof(&state, ctx.with_caller(caller), &proof);
    let codes = state.nats.call::<NewRecoveryCodes>(&ctx, &proof).await?;
    Ok(([no_store()], axum::Json(codes)).into_response())
}

/// WebAuthn options for the caller's passkeys: for a step-up, or the proof
/// a removal asks for. No body.
#[utoipa::path(
    post, path = "/api/auth/step-up/passkey", tag = "mfa", operation_id = "step_up_options",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Request options, `{publicKey: {…}}`", body = WebAuthnOptions),
        (status = 403, description = "A cross-site request (browser session)", body = ErrorBody),
        (status = 409, description = "No passkey, or the gateway has no `session.public_origin`", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn step_up_options(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<WebAuthnOptions>, ApiError> {
    options::<StepUpOptions>(&state, caller, ctx).await
}

/// Prove a factor again (`code` or `passkey`): the session's `amr` gains it
/// and its `authTime` is now, in a new access token. A browser session
/// gets the token in its cookie (the body then has no `accessToken`); a
/// bearer client gets it in the body.
#[utoipa::path(
    post, path = "/api/auth/step-up", tag = "mfa", operation_id = "step_up",
    security(("bearer" = [])),
    request_body = FactorProof,
    responses(
        (status = 200, description = "The session's new access token (bearer clients only), \
            `expiresIn`, `amr` and `authTime`", body = AccessGrant),
        (status = 403, description = "A wrong factor, or a cross-site request", body = ErrorBody),
        (status = 409, description = "No factor is on, or a passkey and the gateway has no \
            `session.public_origin`", body = ErrorBody),
        (status = 429, description = "Too many wrong factors; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn step_up(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    CookieSession(session): CookieSession,
    ctx: Ctx,
    Valid(proof): Valid<FactorProof>,
) -> Result<Response, ApiError> {
    let ctx = for_proof(&state, ctx.with_caller(caller), &proof);
    let mut grant = state.nats.call::<StepUp>(&ctx, &proof).await?;
    let cookie = deliver(&state, session.as_ref(), &mut grant)?;
    Ok(with_cookie(StatusCode::OK, cookie, grant))
}

/// Remove every factor of a user (ADMIN only): the app, the passkeys, the
/// recovery codes and any pending login; the user's sessions end. For a
/// user who lost their factors; they sign in with the password and enrol
/// again.
#[utoipa::path(
    delete, path = "/api/users/{id}/mfa", tag = "mfa", operation_id = "reset_mfa",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 204, description = "Every factor of the user removed; the user's sessions ended"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "The caller is not an ADMIN, has not signed in with a second \
            factor, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn reset_mfa(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ctx: Ctx,
    Path(id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    let request = UserRequest { id };
    request.validate()?;
    state
        .nats
        .call::<ResetMfa>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(token: &str, expires_in: u64) -> AccessGrant {
        AccessGrant {
            access_token: token.into(),
            expires_in,
            amr: vec!["pwd".into(), "otp".into()],
            auth_time: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_grant_replaces_the_access_token_and_keeps_the_session() {
        let contents = Contents {
            access_token: "old".into(),
            refresh_token: "refresh".into(),
            access_expires_at: 100,
            session_expires_at: 5_000,
        };
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let new = granted(&contents, &grant("new", 900), now);
        assert_eq!(new.access_token, "new");
        assert_eq!(new.access_expires_at, 1_900);
        assert_eq!(new.refresh_token, "refresh");
        assert_eq!(new.session_expires_at, 5_000);
    }

    #[test]
    fn a_grant_for_a_cookie_has_no_access_token_in_its_body() {
        let mut kept = grant("new", 900);
        let body = serde_json::to_value(&kept).unwrap();
        assert_eq!(body["accessToken"], "new");
        kept.access_token = String::new();
        let body = serde_json::to_value(&kept).unwrap();
        assert!(body.get("accessToken").is_none(), "{body}");
        assert_eq!(body["expiresIn"], 900);
    }

    #[test]
    fn every_route_of_the_second_factor_is_routed_and_documented() {
        // Building the router panics on a path that clashes with another
        // (`/api/users/me/mfa` beside `/api/users/{id}/mfa`).
        let (_, doc) = crate::routes::api().split_for_parts();
        let doc = serde_json::to_value(doc).unwrap();
        for (path, method) in [
            ("/api/auth/login/mfa", "post"),
            ("/api/auth/login/passkey", "post"),
            ("/api/session/mfa", "post"),
            ("/api/session/mfa/passkey", "post"),
            ("/api/users/me/mfa", "get"),
            ("/api/users/me/mfa/totp", "post"),
            ("/api/users/me/mfa/totp", "delete"),
            ("/api/users/me/mfa/totp/confirm", "post"),
            ("/api/users/me/mfa/passkeys/options", "post"),
            ("/api/users/me/mfa/passkeys", "post"),
            ("/api/users/me/mfa/passkeys/{id}", "patch"),
            ("/api/users/me/mfa/passkeys/{id}", "delete"),
            ("/api/users/me/mfa/recovery-codes", "post"),
            ("/api/auth/step-up/passkey", "post"),
            ("/api/auth/step-up", "post"),
            ("/api/users/{id}/mfa", "delete"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not in the document"
            );
        }
        let login = &doc["paths"]["/api/auth/login"]["post"]["responses"];
        assert!(login["200"].is_object() && login["202"].is_object());
    }

    #[test]
    fn the_second_step_takes_a_code_or_a_passkey_and_next() {
        let step: SessionMfa =
            serde_json::from_str(r#"{"code":"123456","next":"/dashboard/"}"#).unwrap();
        assert!(step.validate().is_ok());
        assert_eq!(step.next.as_deref(), Some("/dashboard/"));
        let none: SessionMfa = serde_json::from_str(r#"{"next":"/"}"#).unwrap();
        assert!(none.validate().is_err());
        let name: PasskeyName = serde_json::from_str(r#"{"name":"  "}"#).unwrap();
        assert!(name.validate().is_err());
        let name: PasskeyName = serde_json::from_str(r#"{"name":"Laptop"}"#).unwrap();
        assert!(name.validate().is_ok());
        assert!(serde_json::from_str::<PasskeyName>(r#"{"name":"a","id":"x"}"#).is_err());
    }
}
