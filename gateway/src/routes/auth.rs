//! `/api/auth`: sign-up, login, the token keys.

use axum::{extract::State, http::StatusCode};
use shared::{
    User,
    auth::{
        CreateUser, CreateUserRequest, JwkSet, Jwks, JwksRequest, Login, LoginRequest, Logout,
        Refresh, RefreshTokenRequest, TokenReply,
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, Ctx, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(jwks))
        .routes(routes!(refresh))
        .routes(routes!(logout))
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

/// Exchange an email and password for an access and a refresh token.
#[utoipa::path(
    post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens and the user", body = TokenReply),
        (status = 401, description = "Unknown email or wrong password (one message for both)", body = ErrorBody),
        (status = 429, description = "Too many failures for this email or client address; see Retry-After", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<LoginRequest>,
) -> Result<axum::Json<TokenReply>, ApiError> {
    // The client's address travels in the context; the worker throttles on it.
    let reply = state.nats.call::<Login>(&ctx, &request).await?;
    Ok(axum::Json(reply))
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
