//! Refresh-token sessions: a session is one login, a family of refresh tokens
//! each exchanged once.

use shared::user::UserId;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Error, tokens::SessionAuth};

/// Where a login came from, as the sessions list shows it.
#[derive(Debug, Clone, Default)]
pub struct Device {
    /// The browser family and system (`user_agent::family`).
    pub user_agent: Option<String>,
    /// The client's /24 or /48 (`user_agent::network`).
    pub network: Option<String>,
}

/// Starts a session with its first refresh token. Also says whether the
/// device is new: no earlier session of the user (live or not, while kept)
/// had the same user agent and network.
pub async fn create(
    conn: &mut PgConnection,
    user_id: UserId,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
    device: &Device,
    amr: &[String],
) -> Result<(SessionAuth, bool), Error> {
    let session_id = Uuid::now_v7();
    let row = sqlx::query!(
        r#"with seen as (
             select exists (select 1 from sessions where user_id = $2
               and user_agent is not distinct from $4 and network is not distinct from $5) as seen)
           insert into sessions (id, user_id, expires_at, user_agent, network, amr)
           values ($1, $2, $3, $4, $5, $6)
           returning (select not seen from seen) as "new_device!", auth_time"#,
        session_id,
        user_id,
        expires_at,
        device.user_agent,
        device.network,
        amr,
    )
    .fetch_one(&mut *conn)
    .await?;
    add_token(conn, session_id, token_hash, expires_at).await?;
    let auth = SessionAuth {
        id: session_id,
        amr: amr.to_vec(),
        auth_time: row.auth_time,
    };
    Ok((auth, row.new_device))
}

/// How the caller's live session is authenticated; 401 when it has ended
/// (the caller check saw it live, but it may end meanwhile).
pub async fn authentication(
    db: impl PgExecutor<'_>,
    caller: &shared::Caller,
) -> Result<SessionAuth, Error> {
    let session = caller.session.ok_or(Error::InvalidRefreshToken)?;
    let row = sqlx::query!(
        "select amr, auth_time from sessions
         where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()",
        session,
        caller.id
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::InvalidRefreshToken)?;
    Ok(SessionAuth {
        id: session,
        amr: row.amr,
        auth_time: row.auth_time,
    })
}

/// The session proved `method` (`otp`, `hwk`) just now: it joins the
/// session's `amr` and `auth_time` becomes now. 401 when the session has
/// ended.
pub async fn step_up(
    db: impl PgExecutor<'_>,
    caller: &shared::Caller,
    method: &str,
) -> Result<SessionAuth, Error> {
    let session = caller.session.ok_or(Error::InvalidRefreshToken)?;
    let row = sqlx::query!(
        "update sessions
         set amr = case when $3 = any(amr) then amr else amr || $3::text end,
             auth_time = now()
         where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()
         returning amr, auth_time",
        session,
        caller.id,
        method
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::InvalidRefreshToken)?;
    Ok(SessionAuth {
        id: session,
        amr: row.amr,
        auth_time: row.auth_time,
    })
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
    /// How the session was authenticated (see `tokens::SessionAuth`).
    pub amr: Vec<String>,
    pub auth_time: OffsetDateTime,
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
                s.expires_at as session_expires_at, s.amr, s.auth_time, rt.successor
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
    sqlx::query!(
        "update sessions set last_used_at = now() where id = $1",
        session_id
    )
    .execute(&mut *conn)
    .await?;
    add_token(conn, session_id, new, expires_at).await
}

/// Revokes a session; false when it was revoked already.
pub async fn revoke(db: impl PgExecutor<'_>, session_id: Uuid) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "update sessions set revoked_at = now() where id = $1 and revoked_at is null",
        session_id
    )
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// Revokes `session_id` if it is a live session of `user_id`; false when
/// it is not (another user's, ended, unknown).
pub async fn revoke_own(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    session_id: Uuid,
) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "update sessions set revoked_at = now()
         where id = $1 and user_id = $2 and revoked_at is null and expires_at > now()",
        session_id,
        user_id
    )
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// A live session, as the sessions list shows it.
#[derive(Debug)]
pub struct Live {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub user_agent: Option<String>,
    pub network: Option<String>,
}

/// The live sessions of `user_id` (not revoked, not expired), newest first.
pub async fn live(db: impl PgExecutor<'_>, user_id: UserId) -> Result<Vec<Live>, Error> {
    Ok(sqlx::query_as!(
        Live,
        "select id, created_at, last_used_at, user_agent, network from sessions
         where user_id = $1 and revoked_at is null and expires_at > now()
         order by created_at desc, id desc",
        user_id
    )
    .fetch_all(db)
    .await?)
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
