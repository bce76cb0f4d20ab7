//! The second factors' rows: authenticator apps, recovery codes, passkeys,
//! pending logins and WebAuthn challenges (migration 0010).
//!
//! Whatever must happen once happens in one statement whose row count
//! says whether it did: a TOTP step is accepted only if it is after the
//! last one, a recovery code is spent only if unused, a challenge or a
//! pending login is taken by deleting it. Two requests racing with the same
//! code, code or assertion: one wins, the other finds nothing.

use serde_json::Value;
use shared::{mfa::Method, user::UserId};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Error;

/// A user's authenticator app.
#[derive(Debug)]
pub struct Totp {
    pub secret: Vec<u8>,
    pub confirmed: bool,
}

/// The factors `user` can prove at a login: the app and its recovery
/// codes, and passkeys. Empty: a password is enough.
pub async fn methods(db: impl PgExecutor<'_>, user: UserId) -> Result<Vec<Method>, Error> {
    let row = sqlx::query!(
        r#"select
             exists (select 1 from totp_factors where user_id = $1 and confirmed_at is not null)
               as "totp!",
             exists (select 1 from passkeys where user_id = $1) as "passkey!",
             exists (select 1 from recovery_codes where user_id = $1 and used_at is null)
               as "recovery!""#,
        user
    )
    .fetch_one(db)
    .await?;
    let mut methods = Vec::new();
    if row.totp {
        methods.push(Method::Totp);
    }
    if row.passkey {
        methods.push(Method::Passkey);
    }
    if row.recovery && !methods.is_empty() {
        methods.push(Method::RecoveryCode);
    }
    Ok(methods)
}

pub async fn totp(db: impl PgExecutor<'_>, user: UserId) -> Result<Option<Totp>, Error> {
    let row = sqlx::query!(
        "select secret, confirmed_at from totp_factors where user_id = $1",
        user
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Totp {
        secret: r.secret,
        confirmed: r.confirmed_at.is_some(),
    }))
}

/// Stores a new unconfirmed secret (replacing an unconfirmed one); false
/// when an app is already on.
pub async fn begin_totp(
    db: impl PgExecutor<'_>,
    user: UserId,
    sealed: &[u8],
) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "insert into totp_factors (user_id, secret) values ($1, $2)
         on conflict (user_id) do update set secret = excluded.secret, created_at = now(),
           last_step = null
         where totp_factors.confirmed_at is null",
        user,
        sealed
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Accepts time step `step` for `user`'s app: true only if no step at or
/// after it was accepted before (so each code counts once), and for an
/// app that is on, or, with `confirming`, one being set up (which this
/// turns on).
pub async fn accept_step(
    db: impl PgExecutor<'_>,
    user: UserId,
    step: i64,
    confirming: bool,
) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "update totp_factors
         set last_step = $2, confirmed_at = coalesce(confirmed_at, now())
         where user_id = $1 and (last_step is null or last_step < $2)
           and (confirmed_at is not null) <> $3",
        user,
        step,
        confirming
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Turns the app off; false when none was on.
pub async fn delete_totp(db: impl PgExecutor<'_>, user: UserId) -> Result<bool, Error> {
    Ok(
        sqlx::query!("delete from totp_factors where user_id = $1", user)
            .execute(db)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Replaces every recovery code of `user` with `hashes`.
pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    user: UserId,
    hashes: &[Vec<u8>],
) -> Result<(), Error> {
    sqlx::query!("delete from recovery_codes where user_id = $1", user)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "insert into recovery_codes (user_id, code_hash) select $1, unnest($2::bytea[])",
        user,
        hashes
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Spends the recovery code of `hash`: true only the first time.
pub async fn spend_recovery_code(
    db: impl PgExecutor<'_>,
    user: UserId,
    hash: &[u8],
) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "update recovery_codes set used_at = now()
         where user_id = $1 and code_hash = $2 and used_at is null",
        user,
        hash
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Unused recovery codes of `user`.
pub async fn recovery_codes_left(db: impl PgExecutor<'_>, user: UserId) -> Result<u32, Error> {
    let n = sqlx::query_scalar!(
        r#"select count(*) as "n!" from recovery_codes where user_id = $1 and used_at is null"#,
        user
    )
    .fetch_one(db)
    .await?;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// A stored passkey.
#[derive(Debug)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub name: String,
    pub credential: Value,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

impl PasskeyRow {
    pub fn info(&self) -> shared::mfa::PasskeyInfo {
        shared::mfa::PasskeyInfo {
            id: self.id,
            name: self.name.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// `user`'s passkeys, oldest first.
pub async fn passkeys(db: impl PgExecutor<'_>, user: UserId) -> Result<Vec<PasskeyRow>, Error> {
    Ok(sqlx::query_as!(
        PasskeyRow,
        "select id, name, credential, created_at, last_used_at from passkeys
         where user_id = $1 order by created_at, id",
        user
    )
    .fetch_all(db)
    .await?)
}

/// Stores a new passkey; `Conflict` when its credential is already stored.
pub async fn insert_passkey(
    db: impl PgExecutor<'_>,
    user: UserId,
    name: &str,
    credential_id: &[u8],
    credential: &Value,
) -> Result<PasskeyRow, Error> {
    let id = Uuid::now_v7();
    let row = sqlx::query!(
        "insert into passkeys (id, user_id, name, credential_id, credential)
         values ($1, $2, $3, $4, $5)
         on conflict (credential_id) do nothing
         returning created_at",
        id,
        user,
        name,
        credential_id,
        credential
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::PasskeyExists)?;
    Ok(PasskeyRow {
        id,
        name: name.to_owned(),
        credential: credential.clone(),
        created_at: row.created_at,
        last_used_at: None,
    })
}

/// A passkey was used: its stored credential (counter, backup state) and
/// when.
pub async fn passkey_used(
    db: impl PgExecutor<'_>,
    id: Uuid,
    credential: &Value,
) -> Result<(), Error> {
    sqlx::query!(
        "update passkeys set credential = $2, last_used_at = now() where id = $1",
        id,
        credential
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Renames `user`'s passkey `id`.
pub async fn rename_passkey(
    db: impl PgExecutor<'_>,
    user: UserId,
    id: Uuid,
    name: &str,
) -> Result<PasskeyRow, Error> {
    sqlx::query_as!(
        PasskeyRow,
        "update passkeys set name = $3 where id = $2 and user_id = $1
         returning id, name, credential, created_at, last_used_at",
        user,
        id,
        name
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::PasskeyNotFound)
}

/// Removes `user`'s passkey `id`; its name, or `PasskeyNotFound`.
pub async fn delete_passkey(
    db: impl PgExecutor<'_>,
    user: UserId,
    id: Uuid,
) -> Result<String, Error> {
    sqlx::query_scalar!(
        "delete from passkeys where id = $2 and user_id = $1 returning name",
        user,
        id
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::PasskeyNotFound)
}

/// How many factors `user` has on: the app (0 or 1) and passkeys.
pub async fn factor_count(db: impl PgExecutor<'_>, user: UserId) -> Result<u32, Error> {
    let n = sqlx::query_scalar!(
        r#"select (select count(*) from totp_factors where user_id = $1 and confirmed_at is not null)
                + (select count(*) from passkeys where user_id = $1) as "n!""#,
        user
    )
    .fetch_one(db)
    .await?;
    Ok(u32::try_from(n).unwrap_or(0))
}

/// Removes every factor, code, pending login and challenge of `user`.
pub async fn reset(conn: &mut PgConnection, user: UserId) -> Result<(), Error> {
    for statement in [
        "delete from totp_factors where user_id = $1",
        "delete from recovery_codes where user_id = $1",
        "delete from passkeys where user_id = $1",
        "delete from mfa_pending where user_id = $1",
        "delete from webauthn_challenges where user_id = $1",
    ] {
        sqlx::query(statement)
            .bind(user)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A login waiting for its second factor.
#[derive(Debug)]
pub struct Pending {
    pub user_id: UserId,
    pub user_agent: Option<String>,
    pub network: Option<String>,
}

pub async fn insert_pending(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    user: UserId,
    expires_at: OffsetDateTime,
    device: &crate::db::sessions::Device,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into mfa_pending (token_hash, user_id, expires_at, user_agent, network)
         values ($1, $2, $3, $4, $5)",
        token_hash,
        user,
        expires_at,
        device.user_agent,
        device.network
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The live pending login of `token_hash`.
pub async fn pending(db: impl PgExecutor<'_>, token_hash: &[u8]) -> Result<Option<Pending>, Error> {
    Ok(sqlx::query_as!(
        Pending,
        "select user_id, user_agent, network from mfa_pending
         where token_hash = $1 and expires_at > now()",
        token_hash
    )
    .fetch_optional(db)
    .await?)
}

/// Counts a wrong factor against the pending login; at `max` failures it
/// is gone (the password must be given again).
pub async fn pending_failed(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    max: i32,
) -> Result<(), Error> {
    // The last failure ends it at once (an update's own rows cannot also
    // be deleted in the same statement).
    sqlx::query!(
        "update mfa_pending
         set failures = failures + 1,
             expires_at = case when failures + 1 >= $2 then now() else expires_at end
         where token_hash = $1",
        token_hash,
        max
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes (deletes) the pending login: true for the one request that does.
pub async fn take_pending(conn: &mut PgConnection, token_hash: &[u8]) -> Result<bool, Error> {
    Ok(sqlx::query!(
        "delete from mfa_pending where token_hash = $1 and expires_at > now()",
        token_hash
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// What a WebAuthn challenge is for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Register,
    Authenticate,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
        }
    }
}

/// Stores the state of a ceremony begun by `owner` (a session id, or a
/// pending login's hash in hex), replacing the one before it.
pub async fn put_challenge(
    db: impl PgExecutor<'_>,
    owner: &str,
    purpose: Purpose,
    user: UserId,
    state: &Value,
    expires_at: OffsetDateTime,
) -> Result<(), Error> {
    sqlx::query!(
        "insert into webauthn_challenges (owner, purpose, user_id, state, expires_at)
         values ($1, $2, $3, $4, $5)
         on conflict (owner, purpose) do update
           set user_id = excluded.user_id, state = excluded.state,
               expires_at = excluded.expires_at",
        owner,
        purpose.as_str(),
        user,
        state,
        expires_at
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes (deletes) `owner`'s live challenge state for `purpose` of `user`:
/// each challenge answers once.
pub async fn take_challenge(
    db: impl PgExecutor<'_>,
    owner: &str,
    purpose: Purpose,
    user: UserId,
) -> Result<Option<Value>, Error> {
    Ok(sqlx::query_scalar!(
        "delete from webauthn_challenges
         where owner = $1 and purpose = $2 and user_id = $3 and expires_at > now()
         returning state",
        owner,
        purpose.as_str(),
        user
    )
    .fetch_optional(db)
    .await?)
}
