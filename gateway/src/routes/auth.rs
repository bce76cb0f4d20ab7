//! `/api/auth`: sign-up, login, the token keys.

use std::net::SocketAddr;

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::StatusCode,
    routing::{get, post},
};
use shared::{
    User,
    auth::{
        CreateUser, CreateUserRequest, JwkSet, Jwks, JwksRequest, Login, LoginRequest, TokenReply,
    },
};

use crate::{
    AppState,
    error::ApiError,
    extract::{Ctx, Valid},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/login", post(login))
        .route("/jwks", get(jwks))
}

/// `POST /api/auth/signup` → 201 `User`.
async fn signup(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Valid(request): Valid<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let user = state.rpc.call::<CreateUser>(&ctx, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// `POST /api/auth/login` → 200 tokens and the user.
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

/// `GET /api/auth/jwks` → the JWK Set.
async fn jwks(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<axum::Json<JwkSet>, ApiError> {
    Ok(axum::Json(
        state.rpc.call::<Jwks>(&ctx, &JwksRequest {}).await?,
    ))
}
