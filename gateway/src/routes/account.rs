//! `/api/users/me/…`: the caller's own credentials and sessions.

use axum::{extract::State, http::StatusCode};
use shared::auth::{
    ChangeEmail, ChangeEmailRequest, ChangePassword, ChangePasswordRequest, Empty,
    EndOtherSessions, ListSessions, RevokeSession, SessionList, SessionRequest,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, Ctx, Path, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(change_email))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(end_other_sessions))
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

/// Change the caller's address: a confirmation link goes to the new one
/// and a notice to the old one. The address changes when the link is
/// followed (`POST /api/auth/verify`).
#[utoipa::path(
    post, path = "/email", tag = "users", operation_id = "change_email",
    security(("bearer" = [])),
    request_body = ChangeEmailRequest,
    responses(
        (status = 202, description = "The confirmation mail is on its way (no body)"),
        (status = 403, description = "The current password is incorrect, or a cross-site request", body = ErrorBody),
        (status = 409, description = "The address is already registered", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        AuthErrors, BodyErrors, UpstreamErrors,
    )
)]
async fn change_email(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(request): Valid<ChangeEmailRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<ChangeEmail>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// The caller's live sessions, newest first; `current` marks this one.
#[utoipa::path(
    get, path = "/sessions", tag = "users", operation_id = "list_sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The live sessions", body = SessionList),
        AuthErrors, UpstreamErrors,
    )
)]
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<axum::Json<SessionList>, ApiError> {
    let list = state
        .nats
        .call::<ListSessions>(&ctx.with_caller(caller), &Empty {})
        .await?;
    Ok(axum::Json(list))
}

/// End one of the caller's sessions at once (this one included).
#[utoipa::path(
    delete, path = "/sessions/{id}", tag = "users", operation_id = "revoke_session",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The session's id, from the sessions list")),
    responses(
        (status = 204, description = "The session ended"),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 403, description = "A cross-site request (browser session)", body = ErrorBody),
        (status = 404, description = "No live session of the caller has this id", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn revoke_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<RevokeSession>(&ctx.with_caller(caller), &SessionRequest { id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller but this one.
#[utoipa::path(
    post, path = "/sessions/end-others", tag = "users", operation_id = "end_other_sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every other session ended"),
        (status = 403, description = "A cross-site request (browser session)", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn end_other_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<EndOtherSessions>(&ctx.with_caller(caller), &Empty {})
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
