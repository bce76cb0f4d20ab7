//! Users and their credentials.

use shared::{User, user::UserId};
use sqlx::{PgExecutor, PgPool};

use crate::Error;

const USER_COLUMNS: &str = "id, email, firstname, lastname, role, created_at, updated_at";

/// Inserts a USER; a duplicate email (any case) is [`Error::EmailTaken`].
pub async fn insert_user(
    db: &PgPool,
    email: &str,
    password_hash: &str,
    firstname: Option<&str>,
    lastname: Option<&str>,
) -> Result<User, Error> {
    sqlx::query_as::<_, User>(&format!(
        "insert into users (email, password_hash, firstname, lastname) \
         values ($1, $2, $3, $4) returning {USER_COLUMNS}"
    ))
    .bind(email)
    .bind(password_hash)
    .bind(firstname)
    .bind(lastname)
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("users_email_key") => Error::EmailTaken,
        _ => e.into(),
    })
}

pub async fn email_taken(db: &PgPool, email: &str) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from users where lower(email) = lower($1))")
            .bind(email)
            .fetch_one(db)
            .await?,
    )
}

pub async fn user_by_id(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<User>, Error> {
    Ok(
        sqlx::query_as(&format!("select {USER_COLUMNS} from users where id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn user_by_email(db: &PgPool, email: &str) -> Result<Option<User>, Error> {
    Ok(sqlx::query_as(&format!(
        "select {USER_COLUMNS} from users where lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await?)
}

/// The user and their password hash, for a login.
pub async fn credentials_by_email(
    db: &PgPool,
    email: &str,
) -> Result<Option<(User, String)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "select {USER_COLUMNS}, password_hash from users where lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

/// The user and their password hash, by id.
pub async fn credentials_by_id(db: &PgPool, id: UserId) -> Result<Option<(User, String)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: String,
    }
    let row: Option<Row> = sqlx::query_as(&format!(
        "select {USER_COLUMNS}, password_hash from users where id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
) -> Result<(), Error> {
    sqlx::query("update users set password_hash = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Sets a user's role by email (the admin command line). Demoting revokes
/// the user's sessions in the same transaction, as `user.update` does.
pub async fn set_role_by_email(
    db: &PgPool,
    email: &str,
    role: shared::Role,
) -> Result<Option<User>, Error> {
    let mut tx = db.begin().await?;
    let user: Option<User> = sqlx::query_as(&format!(
        "update users set role = $2, updated_at = now() where lower(email) = lower($1) \
         returning {USER_COLUMNS}"
    ))
    .bind(email)
    .bind(role)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(user), shared::Role::User) = (&user, role) {
        crate::db::sessions::revoke_all_but(&mut *tx, user.id, None).await?;
    }
    tx.commit().await?;
    Ok(user)
}
