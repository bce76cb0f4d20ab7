//! `/api/users`: profiles, and user management for ADMINs.
//!
//! The gateway checks the token (and the ADMIN role where the route needs
//! it); whether the caller may read, change or delete *this* user is decided
//! by the user worker from the caller it is sent.

use axum::{extract::State, http::StatusCode};
use shared::{
    User,
    auth::{AdminRecover, EndUserSessions, UserRequest},
    paging::Page,
    user::{self, DeleteRequest, ListRequest, UpdateProfile, UpdateUser, UserId},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Admin, Authenticated, Ctx, Path, Query, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(list))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(admin_recover))
        .routes(routes!(end_user_sessions))
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
        .nats
        .call::<user::Get>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(axum::Json(user))
}

/// Change the caller's own names. Absent fields stay; `null` or blank clears.
/// A `role` (or any unknown field) is refused with 400: no route lets a user
/// raise its own role.
#[utoipa::path(
    patch, path = "/me", tag = "users",
    security(("bearer" = [])),
    request_body = UpdateProfile,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 404, description = "The caller's account no longer exists", body = ErrorBody),
        BodyErrors, AuthErrors, UpstreamErrors,
    )
)]
async fn update_me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(body): Valid<UpdateProfile>,
) -> Result<axum::Json<User>, ApiError> {
    let request = body.for_user(caller.id);
    let user = state
        .nats
        .call::<user::Update>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(axum::Json(user))
}

/// Every user, a page at a time in id order (ADMIN only).
#[utoipa::path(
    get, path = "/", tag = "users", operation_id = "list_users",
    security(("bearer" = [])),
    params(ListRequest),
    responses(
        (status = 200, description = "A page of users; `nextCursor` is null on the last page",
            body = Page<User>),
        (status = 400, description = "A `limit` below 1 or a cursor that does not decode",
            body = ErrorBody),
        (status = 403, description = "The caller is not an ADMIN", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ctx: Ctx,
    Query(request): Query<ListRequest>,
) -> Result<axum::Json<Page<User>>, ApiError> {
    let page = state
        .nats
        .call::<user::List>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(axum::Json(page))
}

/// One user: the caller itself, or anyone for an ADMIN.
#[utoipa::path(
    get, path = "/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "Another user, and the caller is not an ADMIN", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn get_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<UserId>,
) -> Result<axum::Json<User>, ApiError> {
    let user = state
        .nats
        .call::<user::Get>(&ctx.with_caller(caller), &user::GetRequest { id })
        .await?;
    Ok(axum::Json(user))
}

/// Change a user's names or role (ADMIN only). Absent fields stay; `null`
/// or blank clears a name. Demoting the last ADMIN is refused (409).
#[utoipa::path(
    patch, path = "/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 403, description = "The caller is not an ADMIN", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is the last ADMIN and `role` is USER", body = ErrorBody),
        BodyErrors, AuthErrors, UpstreamErrors,
    )
)]
async fn update_user(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ctx: Ctx,
    Path(id): Path<UserId>,
    Valid(body): Valid<UpdateUser>,
) -> Result<axum::Json<User>, ApiError> {
    let user = state
        .nats
        .call::<user::Update>(&ctx.with_caller(caller), &body.for_user(id))
        .await?;
    Ok(axum::Json(user))
}

/// Delete a user: the caller itself, or anyone for an ADMIN. Their sessions
/// end; their posts stay, with `authorId` null. Deleting the last ADMIN is
/// refused (409).
#[utoipa::path(
    delete, path = "/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "Another user, and the caller is not an ADMIN", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is the last ADMIN", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn delete_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<user::Delete>(&ctx.with_caller(caller), &DeleteRequest { id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail a user a password reset link (ADMIN only). Nothing else changes:
/// the password and sessions stay until the link is used.
#[utoipa::path(
    post, path = "/{id}/recover", tag = "users", operation_id = "admin_recover",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 202, description = "The reset mail is on its way (no body)"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "The caller is not an ADMIN, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn admin_recover(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ctx: Ctx,
    Path(id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    let request = user_request(id)?;
    state
        .nats
        .call::<AdminRecover>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// End every session of a user at once (ADMIN only).
#[utoipa::path(
    delete, path = "/{id}/sessions", tag = "users", operation_id = "end_user_sessions",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The user's id")),
    responses(
        (status = 204, description = "Every session of the user ended"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "The caller is not an ADMIN, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn end_user_sessions(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ctx: Ctx,
    Path(id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    let request = user_request(id)?;
    state
        .nats
        .call::<EndUserSessions>(&ctx.with_caller(caller), &request)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of an ADMIN action on user `id`, checked as the worker will.
fn user_request(id: UserId) -> Result<UserRequest, ApiError> {
    let request = UserRequest { id };
    validator::Validate::validate(&request)?;
    Ok(request)
}
