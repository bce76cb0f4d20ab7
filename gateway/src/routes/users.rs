//! `/api/users`: profiles.

use axum::extract::State;
use shared::{User, user};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, Ctx},
    openapi::{AuthErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The caller's own user.
#[utoipa::path(
    get, path = "/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 404, description = "The caller's account no longer exists", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
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
