//! `/api/auth`: sign-up, login, the token keys, and the links mailed for
//! verification and recovery.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use shared::{
    User,
    auth::{
        CreateUser, CreateUserRequest, Empty, JwkSet, Jwks, JwksRequest, Login, LoginRequest,
        Logout, Recover, RecoverRequest, Refresh, RefreshTokenRequest, ResendVerification,
        ResetPassword, ResetPasswordRequest, TokenReply, VerifyEmail, VerifyEmailRequest,
    },
    mfa::{LoginReply, MfaChallenge},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, ClientUserAgent, Ctx, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(jwks))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(verify))
        .routes(routes!(resend_verification))
        .routes(routes!(recover))
        .routes(routes!(reset))
}

/// Create an account (role USER).
#[utoipa::path(
    post, path = "/signup", tag = "auth",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 429, description = "Too many sign-ups from this client address; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn signup(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let user = state.nats.call::<CreateUser>(&ctx, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Exchange an email and password for an access and a refresh token. A
/// user with a second factor gets a pending login instead (202): its
/// `mfaToken` and a factor go to `POST /api/auth/login/mfa`.
#[utoipa::path(
    post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens and the user (no second factor)", body = TokenReply),
        (status = 202, description = "The password is right; a second factor is required \
            (`mfaRequired: true`, the pending login's `mfaToken`, the user's `methods`, \
            `expiresIn` seconds)", body = MfaChallenge),
        (status = 401, description = "Unknown email or wrong password (one message for both)", body = ErrorBody),
        (status = 429, description = "Too many failures for this email or client address; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    Ctx(mut ctx): Ctx,
    ClientUserAgent(user_agent): ClientUserAgent,
    Valid(request): Valid<LoginRequest>,
) -> Result<Response, ApiError> {
    // The client's address travels in the context; the worker throttles on
    // it. The user agent names the new session in the sessions list.
    ctx.user_agent = user_agent;
    Ok(match state.nats.call::<Login>(&ctx, &request).await? {
        LoginReply::Tokens(tokens) => axum::Json(tokens).into_response(),
        LoginReply::MfaRequired(challenge) => {
            (StatusCode::ACCEPTED, axum::Json(challenge)).into_response()
        }
    })
}

/// The public keys that verify access tokens (a JWK Set).
#[utoipa::path(
    get, path = "/jwks", tag = "auth",
    responses(
        (status = 200, description = "The JWK Set", body = JwkSet),
        UpstreamErrors,
    )
)]
async fn jwks(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<axum::Json<JwkSet>, ApiError> {
    Ok(axum::Json(
        state.nats.call::<Jwks>(&ctx, &JwksRequest {}).await?,
    ))
}

/// Exchange a refresh token for new tokens; the old one is spent. Presenting
/// a spent token again revokes its whole session.
#[utoipa::path(
    post, path = "/refresh", tag = "auth",
    request_body = RefreshTokenRequest,
    responses(
        (status = 200, description = "New tokens and the user", body = TokenReply),
        (status = 401, description = "Unknown, expired, revoked or spent refresh token", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn refresh(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<RefreshTokenRequest>,
) -> Result<axum::Json<TokenReply>, ApiError> {
    Ok(axum::Json(
        state.nats.call::<Refresh>(&ctx, &request).await?,
    ))
}

/// Revoke the session of this refresh token (one of the caller's).
#[utoipa::path(
    post, path = "/logout", tag = "auth",
    security(("bearer" = [])),
    request_body = RefreshTokenRequest,
    responses(
        (status = 204, description = "The session is revoked"),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn logout(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(request): Valid<RefreshTokenRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<Logout>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Spend the token of a verification (or change of address) link. The
/// page the link opens posts it; opening the link spends nothing.
#[utoipa::path(
    post, path = "/verify", tag = "auth", operation_id = "verify_email",
    request_body = VerifyEmailRequest,
    responses(
        BodyErrors,
        (status = 200, description = "The user, `emailVerified: true` (an address change also switched `email`)", body = User),
        (status = 400, description = "Malformed body, or an invalid, expired or spent link (one message for all: \"invalid or expired link\")", body = ErrorBody),
        (status = 409, description = "The new address was taken meanwhile", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn verify(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<VerifyEmailRequest>,
) -> Result<axum::Json<User>, ApiError> {
    let user = state.nats.call::<VerifyEmail>(&ctx, &request).await?;
    // Cached proxy assertions still say "unverified" (or name the old
    // address): the next proxied request gets a new one.
    state.proxy.assertions.forget_user(user.id);
    Ok(axum::Json(user))
}

/// Mail the caller a new verification link (the earlier links stay valid
/// until they expire). No body.
#[utoipa::path(
    post, path = "/verify/resend", tag = "auth", operation_id = "resend_verification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A mail is on its way (no body)"),
        (status = 403, description = "A cross-site request (browser session)", body = ErrorBody),
        (status = 409, description = "The address is already verified", body = ErrorBody),
        (status = 429, description = "Asked too often; see Retry-After", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn resend_verification(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<ResendVerification>(&ctx.with_caller(caller), &Empty {})
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Ask for a password reset link. The reply is the same, 202 with no body,
/// whether or not the address names an account, so it tells nobody which
/// addresses are registered.
#[utoipa::path(
    post, path = "/recover", tag = "auth",
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "Accepted (no body), for a known and an unknown address alike"),
        (status = 429, description = "Too many requests for this address or client; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn recover(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<RecoverRequest>,
) -> Result<StatusCode, ApiError> {
    state.nats.call::<Recover>(&ctx, &request).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token of a reset link. Every session of the
/// user ends.
#[utoipa::path(
    post, path = "/reset", tag = "auth", operation_id = "reset_password",
    request_body = ResetPasswordRequest,
    responses(
        BodyErrors,
        (status = 204, description = "The password is set; every session of the user ended"),
        (status = 400, description = "Malformed body, or an invalid, expired or spent link (one message for all: \"invalid or expired link\")", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn reset(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state.nats.call::<ResetPassword>(&ctx, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}
