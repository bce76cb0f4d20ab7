//! `/api/posts`: posts and drafts.
//!
//! Reading needs no token, but a reader who sends one sees their own drafts
//! too ([`OptionalCaller`](crate::extract::OptionalCaller)). Who may see, change or delete a post is decided
//! by the user worker from the caller it is sent.

use axum::{extract::State, http::StatusCode};
use shared::{
    paging::Page,
    post::{self, CreateRequest, DeleteRequest, GetRequest, ListRequest, Post, PostId, UpdatePost},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
    extract::{Authenticated, Ctx, OptionalCaller, Path, Query, Valid},
    openapi::{AuthErrors, BodyErrors, UpstreamErrors},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_post, update_post, delete_post))
}

/// Write a post as the caller: a draft unless `published` is true.
#[utoipa::path(
    post, path = "/", tag = "posts",
    security(("bearer" = [])),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The new post", body = Post),
        (status = 404, description = "The caller's account no longer exists", body = ErrorBody),
        BodyErrors, AuthErrors, UpstreamErrors,
    )
)]
async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Valid(request): Valid<CreateRequest>,
) -> Result<(StatusCode, axum::Json<Post>), ApiError> {
    let post = state
        .nats
        .call::<post::Create>(&ctx.with_caller(caller), &request)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(post)))
}

/// Published posts, plus the caller's own drafts when a bearer token is
/// sent, a page at a time in id order; `authorId` keeps one author's.
#[utoipa::path(
    get, path = "/", tag = "posts", operation_id = "list_posts",
    security((), ("bearer" = [])),
    params(ListRequest),
    responses(
        (status = 200, description = "A page of posts; `nextCursor` is null on the last page",
            body = Page<Post>),
        (status = 400, description = "A `limit` below 1, a cursor that does not decode, or a bad `authorId`",
            body = ErrorBody),
        (status = 401, description = "A bearer token was sent and is not valid", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn list(
    State(state): State<AppState>,
    OptionalCaller(caller): OptionalCaller,
    Ctx(mut ctx): Ctx,
    Query(request): Query<ListRequest>,
) -> Result<axum::Json<Page<Post>>, ApiError> {
    ctx.caller = caller;
    Ok(axum::Json(
        state.nats.call::<post::List>(&ctx, &request).await?,
    ))
}

/// One post: if it is published, or the caller is its author or an ADMIN.
/// A draft the caller may not see is a 404, as if it did not exist.
#[utoipa::path(
    get, path = "/{id}", tag = "posts",
    security((), ("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The post's id")),
    responses(
        (status = 200, description = "The post", body = Post),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 401, description = "A bearer token was sent and is not valid", body = ErrorBody),
        (status = 404, description = "No such post, or a draft the caller may not see", body = ErrorBody),
        UpstreamErrors,
    )
)]
async fn get_post(
    State(state): State<AppState>,
    OptionalCaller(caller): OptionalCaller,
    Ctx(mut ctx): Ctx,
    Path(id): Path<PostId>,
) -> Result<axum::Json<Post>, ApiError> {
    ctx.caller = caller;
    Ok(axum::Json(
        state
            .nats
            .call::<post::Get>(&ctx, &GetRequest { id })
            .await?,
    ))
}

/// Change a post (author or ADMIN). Absent fields stay; `content: null` or
/// blank clears the content; `title` and `published` cannot be null.
#[utoipa::path(
    patch, path = "/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The post's id")),
    request_body = UpdatePost,
    responses(
        (status = 200, description = "The updated post", body = Post),
        (status = 403, description = "A post the caller can see but did not write", body = ErrorBody),
        (status = 404, description = "No such post, or a draft the caller may not see", body = ErrorBody),
        BodyErrors, AuthErrors, UpstreamErrors,
    )
)]
async fn update_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<PostId>,
    Valid(body): Valid<UpdatePost>,
) -> Result<axum::Json<Post>, ApiError> {
    let post = state
        .nats
        .call::<post::Update>(&ctx.with_caller(caller), &body.for_post(id))
        .await?;
    Ok(axum::Json(post))
}

/// Delete a post (author or ADMIN).
#[utoipa::path(
    delete, path = "/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The post's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 403, description = "A post the caller can see but did not write", body = ErrorBody),
        (status = 404, description = "No such post, or a draft the caller may not see", body = ErrorBody),
        AuthErrors, UpstreamErrors,
    )
)]
async fn delete_post(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ctx: Ctx,
    Path(id): Path<PostId>,
) -> Result<StatusCode, ApiError> {
    state
        .nats
        .call::<post::Delete>(&ctx.with_caller(caller), &DeleteRequest { id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
