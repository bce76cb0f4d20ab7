//! `posts`: create, read, page, update, delete.

use shared::{
    post::{CreateRequest, Post, PostId, UpdateRequest},
    user::UserId,
};
use sqlx::PgExecutor;

use crate::Error;

/// Inserts a post by `author`. An author whose account was deleted after
/// their token was issued is [`Error::UserNotFound`] (the foreign key
/// `posts_author_id_fkey`, see `Error`'s `From<sqlx::Error>`).
pub async fn insert_post(
    db: impl PgExecutor<'_>,
    author: UserId,
    request: &CreateRequest,
) -> Result<Post, Error> {
    Ok(sqlx::query_as!(
        Post,
        "insert into posts (title, content, published, author_id) values ($1, $2, $3, $4)
         returning id, title, content, published, author_id, created_at, updated_at",
        request.title,
        request.content,
        request.published,
        author
    )
    .fetch_one(db)
    .await?)
}

pub async fn post_by_id(db: impl PgExecutor<'_>, id: PostId) -> Result<Option<Post>, Error> {
    Ok(sqlx::query_as!(
        Post,
        "select id, title, content, published, author_id, created_at, updated_at
         from posts where id = $1",
        id
    )
    .fetch_optional(db)
    .await?)
}

/// Which posts a page may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visible {
    /// Published posts (anonymous readers).
    Published,
    /// Published posts plus this user's drafts.
    PublishedAndDraftsOf(UserId),
}

/// Up to `limit` posts with an id above `after`, in id order, that `visible`
/// admits, optionally of one author only.
///
/// Each shape is its own statement so that every one is an index range scan
/// starting at `after` (one generic `($3 is null or …)` statement would get a
/// generic plan that scans): published only uses the partial index
/// `posts_published_id_idx`; one author uses `posts_author_id_id_idx`;
/// "published or mine" is the union of one scan of each, merged.
pub async fn posts_after(
    db: impl PgExecutor<'_>,
    visible: Visible,
    author: Option<UserId>,
    after: i64,
    limit: i64,
) -> Result<Vec<Post>, Error> {
    let rows = match (author, visible) {
        (Some(author), Visible::PublishedAndDraftsOf(viewer)) if author == viewer => {
            sqlx::query_as!(
                Post,
                "select id, title, content, published, author_id, created_at, updated_at
                 from posts where author_id = $1 and id > $2 order by id limit $3",
                author,
                after,
                limit
            )
            .fetch_all(db)
            .await?
        }
        (Some(author), _) => {
            sqlx::query_as!(
                Post,
                "select id, title, content, published, author_id, created_at, updated_at
                 from posts where author_id = $1 and published and id > $2 order by id limit $3",
                author,
                after,
                limit
            )
            .fetch_all(db)
            .await?
        }
        (None, Visible::Published) => {
            sqlx::query_as!(
                Post,
                "select id, title, content, published, author_id, created_at, updated_at
                 from posts where published and id > $1 order by id limit $2",
                after,
                limit
            )
            .fetch_all(db)
            .await?
        }
        (None, Visible::PublishedAndDraftsOf(viewer)) => {
            // A union's columns are all nullable to the type checker: the
            // `!` says which are not.
            sqlx::query_as!(
                Post,
                r#"select id as "id!", title as "title!", content, published as "published!",
                          author_id, created_at as "created_at!", updated_at as "updated_at!"
                   from (
                     (select id, title, content, published, author_id, created_at, updated_at
                      from posts where published and id > $2 order by id limit $3)
                     union all
                     (select id, title, content, published, author_id, created_at, updated_at
                      from posts where author_id = $1 and not published and id > $2
                      order by id limit $3)
                   ) visible order by id limit $3"#,
                viewer,
                after,
                limit
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(rows)
}

/// Applies the fields present in `request` and sets `updated_at`; `None` if
/// the post does not exist (any more).
pub async fn update_post(
    db: impl PgExecutor<'_>,
    request: &UpdateRequest,
) -> Result<Option<Post>, Error> {
    Ok(sqlx::query_as!(
        Post,
        "update posts set
             title = coalesce($2, title),
             content = case when $3 then $4 else content end,
             published = coalesce($5, published),
             updated_at = now()
         where id = $1
         returning id, title, content, published, author_id, created_at, updated_at",
        request.id,
        request.title,
        request.content.is_some(),
        request.content.clone().flatten(),
        request.published
    )
    .fetch_optional(db)
    .await?)
}

/// False if there was no such post.
pub async fn delete_post(db: impl PgExecutor<'_>, id: PostId) -> Result<bool, Error> {
    let result = sqlx::query!("delete from posts where id = $1", id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() > 0)
}
