//! Users and their credentials. (Reading a user by id is the same in both
//! workers: [`runtime::db::users`].)
//!
//! Emails come in as [`Email`], normalized, and are stored so; look-ups
//! still compare `lower(email)`, the unique index `users_email_key`, so the
//! local part's case does not count.

use shared::{Role, User, types::Email, user::UserId};
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::Error;

/// Inserts a USER; a duplicate email (any case, any spelling: it is
/// normalized) is [`Error::EmailTaken`] (the unique index `users_email_key`,
/// see `Error`'s `From<sqlx::Error>`).
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &Email,
    password_hash: &str,
    firstname: Option<&str>,
    lastname: Option<&str>,
) -> Result<User, Error> {
    Ok(sqlx::query_as!(
        User,
        r#"insert into users (email, password_hash, firstname, lastname)
           values ($1, $2, $3, $4)
           returning id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at"#,
        email.as_str(),
        password_hash,
        firstname,
        lastname,
    )
    .fetch_one(db)
    .await?)
}

pub async fn email_taken(db: &PgPool, email: &Email) -> Result<bool, Error> {
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from users where lower(email) = lower($1)) as "taken!""#,
        email.as_str()
    )
    .fetch_one(db)
    .await?)
}

pub async fn user_by_email(db: &PgPool, email: &Email) -> Result<Option<User>, Error> {
    Ok(sqlx::query_as!(
        User,
        r#"select id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at
           from users where lower(email) = lower($1)"#,
        email.as_str()
    )
    .fetch_optional(db)
    .await?)
}

/// A user's row with the password hash: only a login or a password change
/// reads it.
struct Credentials {
    id: UserId,
    email: String,
    email_verified: bool,
    firstname: Option<String>,
    lastname: Option<String>,
    role: Role,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    password_hash: String,
}

impl Credentials {
    fn split(self) -> (User, String) {
        let user = User {
            id: self.id,
            email: self.email,
            email_verified: self.email_verified,
            firstname: self.firstname,
            lastname: self.lastname,
            role: self.role,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        (user, self.password_hash)
    }
}

/// The user and their password hash, for a login.
pub async fn credentials_by_email(
    db: &PgPool,
    email: &Email,
) -> Result<Option<(User, String)>, Error> {
    let row = sqlx::query_as!(
        Credentials,
        r#"select id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at,
                  password_hash
           from users where lower(email) = lower($1)"#,
        email.as_str()
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Credentials::split))
}

/// The user and their password hash, by id (a password change).
pub async fn credentials_by_id(db: &PgPool, id: UserId) -> Result<Option<(User, String)>, Error> {
    let row = sqlx::query_as!(
        Credentials,
        r#"select id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at,
                  password_hash
           from users where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(Credentials::split))
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
) -> Result<(), Error> {
    sqlx::query!(
        "update users set password_hash = $2, updated_at = now() where id = $1",
        id,
        password_hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Sets a user's role by email (the admin command line). Demoting revokes
/// the user's sessions in the same transaction, as `user.update` does; a
/// change of role is an event (`role.changed`, and `session.revoked` for
/// the sessions it ended).
pub async fn set_role_by_email(
    db: &PgPool,
    email: &Email,
    role: Role,
) -> Result<Option<User>, Error> {
    use shared::events::{Envelope, Event, RevokeReason};
    let mut tx = db.begin().await?;
    let Some(from) = sqlx::query_scalar!(
        r#"select role as "role: Role" from users where lower(email) = lower($1) for update"#,
        email.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let user = sqlx::query_as!(
        User,
        r#"update users set role = $2, updated_at = now() where lower(email) = lower($1)
           returning id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at"#,
        email.as_str(),
        role as Role,
    )
    .fetch_one(&mut *tx)
    .await?;
    if from != role {
        let changed = Event::RoleChanged {
            user_id: user.id,
            email: user.email.clone(),
            from,
            to: role,
        };
        crate::db::outbox::write(&mut *tx, &Envelope::new(changed)).await?;
    }
    if role == Role::User {
        let count = crate::db::sessions::revoke_all_but(&mut *tx, user.id, None).await?;
        if count > 0 {
            let revoked = Event::SessionRevoked {
                user_id: user.id,
                session_id: None,
                count,
                reason: RevokeReason::RoleChanged,
            };
            crate::db::outbox::write(&mut *tx, &Envelope::new(revoked)).await?;
        }
    }
    tx.commit().await?;
    Ok(Some(user))
}

/// Marks `email` verified, if it is still the address of `id`; the user, or
/// `None` when the address has changed since the link was made.
pub async fn mark_verified(
    db: impl PgExecutor<'_>,
    id: UserId,
    email: &str,
) -> Result<Option<User>, Error> {
    Ok(sqlx::query_as!(
        User,
        r#"update users set email_verified = true, updated_at = now()
           where id = $1 and email = $2
           returning id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at"#,
        id,
        email
    )
    .fetch_optional(db)
    .await?)
}

/// The address of `id`, locked until the transaction ends (a change of
/// address reads the old one).
pub async fn lock_email(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar!("select email from users where id = $1 for update", id)
            .fetch_optional(db)
            .await?,
    )
}

/// Switches the address of `id` to `email`, verified (the link mailed to
/// it was followed). Taken by another account meanwhile:
/// [`Error::EmailTaken`] (the unique index).
pub async fn set_verified_email(
    db: impl PgExecutor<'_>,
    id: UserId,
    email: &str,
) -> Result<User, Error> {
    Ok(sqlx::query_as!(
        User,
        r#"update users set email = $2, email_verified = true, updated_at = now()
           where id = $1
           returning id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at"#,
        id,
        email
    )
    .fetch_one(db)
    .await?)
}
