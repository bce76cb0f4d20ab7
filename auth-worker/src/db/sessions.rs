//! Refresh-token sessions: a session is one login, a family of refresh tokens
//! each exchanged once.

use shared::user::UserId;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Error;

/// Starts a session with its first refresh token.
pub async fn create(
    conn: &mut PgConnection,
    user_id: UserId,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<Uuid, Error> {
    let session_id = Uuid::now_v7();
    sqlx::query!(
        "insert into sessions (id, user_id, expires_at) values ($1, $2, $3)",
        session_id,
        user_id,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    add_token(conn, session_id, token_hash, expires_at).await?;
    Ok(session_id)
}

async fn add_token(
    conn: &mut PgConnection,
    session_id: Uuid,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into refresh_tokens (token_hash, session_id, expires_at) values ($1, $2, $3)",
        token_hash,
        session_id,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A refresh token with its session, as found.
#[derive(Debug)]
pub struct TokenRow {
    pub session_id: Uuid,
    pub user_id: UserId,
    pub spent_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub session_expires_at: OffsetDateTime,
    /// The token that replaced this one, sealed (see
    /// `tokens::seal_successor`); set when spent.
    pub successor: Option<Vec<u8>>,
}

/// Finds a refresh token and locks it and its session until the transaction
/// ends, so concurrent refreshes of one token take turns.
pub async fn lock_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<TokenRow>, Error> {
    Ok(sqlx::query_as!(
        TokenRow,
        "select rt.session_id, s.user_id, rt.spent_at, rt.expires_at, s.revoked_at,
                s.expires_at as session_expires_at, rt.successor
         from refresh_tokens rt join sessions s on s.id = rt.session_id
         where rt.token_hash = $1
         for update of rt, s",
        token_hash
    )
    .fetch_optional(conn)
    .await?)
}

/// A refresh token of `session_id`, without locking it: the caller holds the
/// session's lock, which every rotation of the session takes. Its
/// `spent_at` and sealed successor.
pub async fn token_in_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    token_hash: &[u8],
) -> Result<Option<(Option<OffsetDateTime>, Option<Vec<u8>>)>, Error> {
    let row = sqlx::query!(
        "select spent_at, successor from refresh_tokens where token_hash = $1 and session_id = $2",
        token_hash,
        session_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.spent_at, r.successor)))
}

/// Spends `old`, keeping `successor` (the new token, sealed) with it, and adds
/// `new` to the same session.
pub async fn rotate(
    conn: &mut PgConnection,
    session_id: Uuid,
    old: &[u8],
    (new, successor): (&[u8], &[u8]),
    expires_at: OffsetDateTime,
) -> Result<(), Error> {
    sqlx::query!(
        "update refresh_tokens set spent_at = now(), successor = $2 where token_hash = $1",
        old,
        successor
    )
    .execute(&mut *conn)
    .await?;
    add_token(conn, session_id, new, expires_at).await
}

pub async fn revoke(db: impl PgExecutor<'_>, session_id: Uuid) -> Result<(), Error> {
    sqlx::query!(
        "update sessions set revoked_at = now() where id = $1 and revoked_at is null",
        session_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes every live session of `user_id` except `keep`.
pub async fn revoke_all_but(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    keep: Option<Uuid>,
) -> Result<u64, Error> {
    Ok(sqlx::query!(
        "update sessions set revoked_at = now()
         where user_id = $1 and revoked_at is null and ($2::uuid is null or id <> $2)",
        user_id,
        keep
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// The session and owner of a refresh token.
pub async fn owner_of_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<(Uuid, UserId)>, Error> {
    let row = sqlx::query!(
        "select s.id, s.user_id from refresh_tokens rt join sessions s on s.id = rt.session_id
         where rt.token_hash = $1",
        token_hash
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.id, r.user_id)))
}
