//! The auth worker's SQL. Emails are matched with `lower(email)`, which the
//! unique index `users_email_key` serves.

use shared::{User, user::UserId};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

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

pub async fn user_by_id(db: &PgPool, id: UserId) -> Result<Option<User>, Error> {
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

/// Starts a session with its first refresh token.
pub async fn create_session(
    tx: &mut Transaction<'_, Postgres>,
    user_id: UserId,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<Uuid, Error> {
    let session_id = Uuid::now_v7();
    sqlx::query("insert into sessions (id, user_id, expires_at) values ($1, $2, $3)")
        .bind(session_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "insert into refresh_tokens (token_hash, session_id, expires_at) values ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(session_id)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(session_id)
}
