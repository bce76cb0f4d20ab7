//! The user worker's SQL.

use shared::{User, user::UserId};
use sqlx::PgPool;

pub async fn user_by_id(db: &PgPool, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(
        "select id, email, firstname, lastname, role, created_at, updated_at \
         from users where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}
