//! `/api/users/me/password`: the caller's own credentials.

use axum::{extract::State, http::StatusCode};
use shared::auth::{ChangePassword, ChangePasswordRequest};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, Ctx, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_password))
}

/// Change the caller's password; every other session of the caller is
/// revoked (this one stays).
#[utoipa::path(
    put, path = "/password", tag = "users",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; other sessions revoked"),
        (status = 403, description = "The current password is incorrect", body = ErrorBody),
        (status = 429, description = "Too many wrong current passwords; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(request): Valid<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<ChangePassword>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
