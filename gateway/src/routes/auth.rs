//! `/api/auth`: sign-up, login, the token keys.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::StatusCode,
};
use shared::{
    User,
    auth::{
        CreateUser, CreateUserRequest, JwkSet, Jwks, JwksRequest, Login, LoginRequest, TokenReply,
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Ctx, Valid},
    openapi::{BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(jwks))
}

/// Create an account (role USER).
#[utoipa::path(
    post, path = "/signup", tag = "auth",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 409, description = "Email already registered", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn signup(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let user = state.rpc.call::<CreateUser>(&ctx, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Exchange an email and password for an access and a refresh token.
#[utoipa::path(
    post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens and the user", body = TokenReply),
        (status = 401, description = "Unknown email or wrong password (one message for both)", body = ErrorBody),
        BodyErrors, UpstreamErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Ctx(ctx): Ctx,
    Valid(mut request): Valid<LoginRequest>,
) -> Result<axum::Json<TokenReply>, ApiError> {
    // Only the gateway knows the client's address; the worker throttles on it.
    request.client_ip = Some(peer.ip().to_string());
    let reply = state.rpc.call::<Login>(&ctx, &request).await?;
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
        state.rpc.call::<Jwks>(&ctx, &JwksRequest {}).await?,
    ))
}
