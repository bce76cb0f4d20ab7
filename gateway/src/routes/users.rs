//! `/api/users`: the caller's own profile.

use axum::{Router, extract::State, routing::get};
use shared::{User, user};

use crate::{
    AppState,
    error::ApiError,
    extract::{Authenticated, Ctx},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

/// `GET /api/users/me` → the caller's `User`.
async fn me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<User>, ApiError> {
    let request = user::GetRequest { id: caller.id };
    let user = state
        .rpc
        .call::<user::Get>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(axum::Json(user))
}
