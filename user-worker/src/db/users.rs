//! `users`: page, update, delete. Creating users and credentials belong to
//! the auth worker; reading one by id is both workers'
//! ([`runtime::db::users`]).

use shared::{
    Role, User,
    user::{UpdateRequest, UserId},
};
use sqlx::{PgConnection, PgExecutor};

use crate::Error;

/// Up to `limit` users with an id above `after`, in id order.
pub async fn users_after(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<User>, Error> {
    Ok(sqlx::query_as!(
        User,
        r#"select id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at
           from users where id > $1 order by id limit $2"#,
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// Applies the fields present in `request` and sets `updated_at`; `None` if
/// the user does not exist.
pub async fn update_user(
    db: impl PgExecutor<'_>,
    request: &UpdateRequest,
) -> Result<Option<User>, Error> {
    // `case when <sent> then <value> else <column>`: a name sent as null
    // clears the column, one not sent keeps it.
    Ok(sqlx::query_as!(
        User,
        r#"update users set
             firstname = case when $2 then $3 else firstname end,
             lastname = case when $4 then $5 else lastname end,
             role = coalesce($6, role),
             updated_at = now()
           where id = $1
           returning id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at"#,
        request.id,
        request.firstname.is_some(),
        request.firstname.clone().flatten(),
        request.lastname.is_some(),
        request.lastname.clone().flatten(),
        request.role as Option<Role>,
    )
    .fetch_optional(db)
    .await?)
}

/// Ends every live session of `id` (its access tokens stop at once: workers
/// check the session on every request).
pub async fn revoke_sessions(db: impl PgExecutor<'_>, id: UserId) -> Result<u64, Error> {
    Ok(sqlx::query!(
        "update sessions set revoked_at = now() where user_id = $1 and revoked_at is null",
        id
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Deletes a user; their sessions go with them (`on delete cascade`) and
/// their posts stay with no author (`on delete set null`). The email it
/// had; `None` if there was no such user.
pub async fn delete_user(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar!("delete from users where id = $1 returning email", id)
            .fetch_optional(db)
            .await?,
    )
}

/// The role of `id`, locked until the transaction ends (a role change
/// reports the old one).
pub async fn lock_role(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<Role>, Error> {
    Ok(sqlx::query_scalar!(
        r#"select role as "role: Role" from users where id = $1 for update"#,
        id
    )
    .fetch_optional(db)
    .await?)
}

/// Refuses with [`Error::LastAdmin`] when `id` is the only ADMIN, and says
/// whether `id` is an ADMIN. Call it in the transaction that demotes or
/// deletes `id`: it locks every ADMIN row (always in id order, so two such
/// transactions cannot deadlock) until that transaction ends, so two ADMINs
/// demoting each other at once cannot both succeed — the second sees the
/// first's change once it gets the lock.
pub async fn ensure_another_admin(db: &mut PgConnection, id: UserId) -> Result<bool, Error> {
    let admins = sqlx::query_scalar!(
        "select id from users where role = $1 order by id for update",
        Role::Admin as Role
    )
    .fetch_all(db)
    .await?;
    if admins == [id] {
        Err(Error::LastAdmin)
    } else {
        Ok(admins.contains(&id))
    }
}
