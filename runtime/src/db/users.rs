//! The reads of a user that both workers make: one by id, and the check of a
//! claimed caller with a query of its own (the workers batch theirs:
//! [`super::callers`]).

use shared::{Caller, Role, ServiceError, User, user::UserId};
use sqlx::{PgExecutor, PgPool};

use crate::service::ResolveCaller;

/// The user with `id`, if there is one.
pub async fn by_id(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"select id, email, email_verified, firstname, lastname, role as "role: Role", created_at, updated_at
           from users where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// The claimed caller's user as it stands now, if the caller's session is
/// live (not revoked, not expired, and the user's own): its role is the one
/// that counts. One query over two primary keys; a deleted user has no
/// sessions left.
impl ResolveCaller for PgPool {
    async fn resolve_caller(&self, claimed: Caller) -> Result<User, ServiceError> {
        let ended = || ServiceError::unauthorized("session expired or revoked");
        let session = claimed.session.ok_or_else(ended)?;
        let user = sqlx::query_as!(
            User,
            r#"select u.id, u.email, u.email_verified, u.firstname, u.lastname, u.role as "role: Role",
                      u.created_at, u.updated_at
               from sessions s join users u on u.id = s.user_id
               where s.id = $1 and s.user_id = $2 and s.revoked_at is null
                 and s.expires_at > now()"#,
            session,
            claimed.id
        )
        .fetch_optional(self)
        .await?;
        user.ok_or_else(ended)
    }
}
