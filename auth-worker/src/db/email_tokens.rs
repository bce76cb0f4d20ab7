//! The tokens that mails carry (`email_tokens`). A row is written with the
//! event that asks for the mail; the token itself is made only when the
//! mail-worker sends it ([`issue`]), and only its SHA-256 is kept.

use shared::{
    events::{Envelope, Event, RequestedBy},
    types::Email,
    user::UserId,
};
use sqlx::{PgConnection, PgExecutor};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{Error, tokens};

/// What a token proves, as the `purpose` column names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
    ChangeEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::ChangeEmail => "change_email",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "verify" => Some(Self::Verify),
            "reset" => Some(Self::Reset),
            "change_email" => Some(Self::ChangeEmail),
            _ => None,
        }
    }
}

/// Writes a token row (no token yet) for `user` and `email`, valid for
/// `ttl_secs`; its id is the event's `tokenId`.
pub async fn create(
    db: impl PgExecutor<'_>,
    user: UserId,
    purpose: Purpose,
    email: &str,
    ttl_secs: u64,
) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    let expires_at = OffsetDateTime::now_utc()
        + Duration::seconds(i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2));
    sqlx::query!(
        "insert into email_tokens (id, user_id, purpose, email, expires_at)
         values ($1, $2, $3, $4, $5)",
        id,
        user,
        purpose.as_str(),
        email,
        expires_at
    )
    .execute(db)
    .await?;
    Ok(id)
}

/// Makes a new token for the row `id` (a redelivered mail's link replaces
/// the earlier one) and returns it with its expiry; `None` when the row is
/// unknown, spent, voided or expired.
pub async fn issue(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(String, OffsetDateTime)>, Error> {
    let (token, hash) = tokens::new_refresh_token();
    let expires_at = sqlx::query_scalar!(
        "update email_tokens set token_hash = $2
         where id = $1 and spent_at is null and voided_at is null and expires_at > now()
         returning expires_at",
        id,
        hash
    )
    .fetch_optional(db)
    .await?;
    Ok(expires_at.map(|at| (token, at)))
}

/// A token just spent.
#[derive(Debug)]
pub struct Spent {
    pub id: Uuid,
    pub user_id: UserId,
    pub purpose: Purpose,
    /// The address the token proves.
    pub email: String,
}

/// Spends the token whose hash is `hash`, if it is live and of one of
/// `purposes`. The row is locked first, so of two requests with one token
/// only one spends it; anything else (unknown, spent, voided, expired,
/// another purpose) is `None` and changes nothing.
pub async fn spend(
    conn: &mut PgConnection,
    hash: &[u8],
    purposes: &[Purpose],
) -> Result<Option<Spent>, Error> {
    let row = sqlx::query!(
        "select id, user_id, purpose, email, spent_at, voided_at, expires_at
         from email_tokens where token_hash = $1 for update",
        hash
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(purpose) = Purpose::parse(&row.purpose) else {
        return Ok(None);
    };
    let live = row.spent_at.is_none()
        && row.voided_at.is_none()
        && row.expires_at > OffsetDateTime::now_utc();
    if !live || !purposes.contains(&purpose) {
        return Ok(None);
    }
    sqlx::query!(
        "update email_tokens set spent_at = now() where id = $1",
        row.id
    )
    .execute(&mut *conn)
    .await?;
    Ok(Some(Spent {
        id: row.id,
        user_id: row.user_id,
        purpose,
        email: row.email,
    }))
}

/// Voids every live token of `user` (a password changed or was reset):
/// links already mailed stop working.
pub async fn void_all(db: impl PgExecutor<'_>, user: UserId) -> Result<u64, Error> {
    Ok(sqlx::query!(
        "update email_tokens set voided_at = now()
         where user_id = $1 and spent_at is null and voided_at is null and expires_at > now()",
        user
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Writes a reset token row for the account of `email` and the event
/// `password.reset_requested` (requested by the user), if there is such an
/// account; nothing otherwise. One statement, the same whether or not the
/// account exists, so the reply takes about the same time either way.
///
/// The event's JSON is an [`Envelope`] made here with placeholders, whose
/// user, email and token the statement sets from the account it finds.
pub async fn request_reset(
    db: impl PgExecutor<'_>,
    email: &Email,
    ttl_secs: u64,
) -> Result<(), Error> {
    let envelope = Envelope::new(Event::PasswordResetRequested {
        user_id: 0,
        email: String::new(),
        token_id: Uuid::nil(),
        requested_by: RequestedBy::User,
    });
    let template = serde_json::to_string(&envelope).map_err(anyhow::Error::from)?;
    let token_id = Uuid::now_v7();
    sqlx::query!(
        "with account as (
           select id, email from users where lower(email) = lower($1)),
         token as (
           insert into email_tokens (id, user_id, purpose, email, expires_at)
           select $2, id, 'reset', email, now() + make_interval(secs => $3) from account
           returning id, user_id, email)
         insert into outbox (id, kind, payload)
         select $4, $5, $6::text::jsonb
                || jsonb_build_object('userId', token.user_id, 'email', token.email,
                                      'tokenId', token.id)
         from token",
        email.as_str(),
        token_id,
        ttl_secs as f64,
        envelope.id,
        envelope.event.kind(),
        template,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whether a token with `hash` is live and of `purpose` (nothing locked:
/// [`spend`] checks again).
pub async fn is_live(
    db: impl PgExecutor<'_>,
    hash: &[u8],
    purpose: Purpose,
) -> Result<bool, Error> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from email_tokens where token_hash = $1 and purpose = $2
             and spent_at is null and voided_at is null and expires_at > now()) as "live!""#,
        hash,
        purpose.as_str()
    )
    .fetch_one(db)
    .await?)
}

/// The SHA-256 a presented token is looked up by.
pub fn hash(token: &str) -> Vec<u8> {
    tokens::refresh_token_hash(token)
}
