//! `post.*`: who may see a post, and who may change it.
//!
//! A published post is public. A draft is visible to its author and to
//! ADMINs only; to anyone else it does not exist (404, never 403). Only the
//! author or an ADMIN may change or delete a post: anyone else gets 403 for a
//! post they can see and 404 for a draft they cannot.

use runtime::service::Call;
use shared::{
    Caller, Done,
    paging::{Cursor, Page},
    post::{CreateRequest, DeleteRequest, GetRequest, ListRequest, Post, UpdateRequest},
};

use crate::{
    AppState, Error,
    db::posts::{self as db, Visible},
};

/// Whether `caller` (or an anonymous reader) may see `post`.
fn can_see(caller: Option<&Caller>, post: &Post) -> bool {
    post.published || caller.is_some_and(|c| c.is_admin() || post.is_by(c.id))
}

/// The post `id` if `caller` may change it: 404 when it does not exist or is
/// a draft they cannot see, 403 when they can see it but it is not theirs.
async fn changeable(state: &AppState, caller: &Caller, id: i64) -> Result<Post, Error> {
    let post = db::post_by_id(&state.db, id)
        .await?
        .filter(|post| can_see(Some(caller), post))
        .ok_or(Error::PostNotFound)?;
    if caller.is_admin() || post.is_by(caller.id) {
        Ok(post)
    } else {
        Err(Error::Forbidden(
            "only the author or an ADMIN may change a post",
        ))
    }
}

/// `post.create`: a post by the caller.
pub async fn create(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: CreateRequest,
) -> Result<Post, Error> {
    db::insert_post(&state.db, caller.id, &request).await
}

/// `post.get`: anyone may read a published post; a draft only its author or
/// an ADMIN.
pub async fn get(
    state: AppState,
    Call { caller, .. }: Call<Option<Caller>>,
    request: GetRequest,
) -> Result<Post, Error> {
    db::post_by_id(&state.db, request.id)
        .await?
        .filter(|post| can_see(caller.as_ref(), post))
        .ok_or(Error::PostNotFound)
}

/// `post.list`: published posts plus the caller's own drafts, optionally of
/// one author, a page at a time in id order.
pub async fn list(
    state: AppState,
    Call { caller, .. }: Call<Option<Caller>>,
    request: ListRequest,
) -> Result<Page<Post>, Error> {
    let visible = caller.map_or(Visible::Published, |c| Visible::PublishedAndDraftsOf(c.id));
    let rows = db::posts_after(
        &state.db,
        visible,
        request.author_id,
        Cursor::start(request.cursor),
        request.limit.fetch(),
    )
    .await?;
    Ok(Page::from_rows(rows, request.limit, |p| p.id))
}

/// `post.update`: author or ADMIN. An update that names no field changes
/// nothing (not even `updatedAt`) and returns the post.
pub async fn update(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: UpdateRequest,
) -> Result<Post, Error> {
    let post = changeable(&state, &caller, request.id).await?;
    if request.is_empty() {
        return Ok(post);
    }
    db::update_post(&state.db, &request)
        .await?
        .ok_or(Error::PostNotFound)
}

/// `post.delete`: author or ADMIN.
pub async fn delete(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: DeleteRequest,
) -> Result<Done, Error> {
    changeable(&state, &caller, request.id).await?;
    if db::delete_post(&state.db, request.id).await? {
        Ok(Done {})
    } else {
        Err(Error::PostNotFound)
    }
}
