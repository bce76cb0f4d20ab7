//! One plain async function per subject: `(state, call, request) -> reply`,
//! grouped by concern as `service.rs` registers them:
//!
//! * [`users`] has `auth.create_user` and `auth.get_user`.
//! * [`sessions`] has `auth.login`, `auth.refresh` and `auth.logout`.
//! * [`password`] has `auth.change_password`.
//! * [`keys`] has `auth.jwks` and `auth.proxy_assertion`: what the signing
//!   keys publish and sign besides access tokens.
//! * [`recovery`] has what mails carry links for: `auth.verify_email`,
//!   `auth.resend_verification`, `auth.recover`, `auth.reset_password`,
//!   `auth.admin_recover`, and `auth.mail_token` (the mail-worker's).
//! * [`account`] has the signed-in user's own account: `auth.change_email`,
//!   `auth.list_sessions`, `auth.revoke_session`,
//!   `auth.end_other_sessions`, and the ADMIN's `auth.end_user_sessions`.
//! * [`mfa`] has the second factor (`shared::mfa`): the login's second
//!   step, step-up, enrolment and removal, and the ADMIN's reset.
//!
//! Requests arrive decoded and validated, and `call.caller` checked against
//! the database where the subject takes a caller (see `runtime::service`).
//! Every change worth an event writes it to the outbox in its own
//! transaction ([`emit`]). This file holds what several of them share: the
//! throttled password check, the events, and the notice that a user's
//! sessions ended.

pub mod account;
pub mod keys;
pub mod mfa;
pub mod password;
pub mod recovery;
pub mod sessions;
pub mod users;

use shared::events::{Envelope, Event};

use crate::{
    AppState, Error,
    db::throttle::{self, Key},
};

/// Reserves a password check for `email` from `client` (see
/// `db::throttle`): 429 when the pair or the address is over its limit.
/// Past the email's own threshold of failures, waits before checking
/// instead of refusing, so guessing from many addresses is slowed and the
/// owner is never locked out. On success the keys to give back if the
/// password is right ([`Reserved::passed`]) or to count a failure against
/// ([`Reserved::failed`]).
///
/// The email counts failures only, recorded after a check: attempts a hard
/// limit refused never ran a hash, and logins in progress (a script's many
/// at once) are no guesses, so neither slows the owner down.
async fn reserve_check<'a>(
    state: &AppState,
    email: &'a str,
    client: Option<shared::headers::ClientAddress>,
) -> Result<Reserved<'a>, Error> {
    reserve(state, email, client)
        .await?
        .map_err(|refused| Error::Throttled {
            retry_after_secs: refused.retry_after_secs,
        })
}

/// A password check a hard limit refused.
struct Refused {
    retry_after_secs: u64,
    /// The first refusal of its key in this window (exactly one attempt
    /// sees it, whatever the number at once): the one that reports it.
    first: bool,
}

/// [`reserve_check`], saying how a refusal came about.
async fn reserve<'a>(
    state: &AppState,
    email: &'a str,
    client: Option<shared::headers::ClientAddress>,
) -> Result<Result<Reserved<'a>, Refused>, Error> {
    let limits = &state.settings.throttle;
    let mut keys = vec![Key::Pair(email, client)];
    keys.extend(client.map(Key::Address));
    let counts = throttle::reserve(&state.db, &keys, limits.window_secs).await?;
    for (key, count) in keys.iter().zip(&counts) {
        let limit = match key {
            Key::Pair(..) => limits.pair_max_attempts,
            Key::Address(_) => limits.address_max_failures,
            _ => continue,
        };
        if count.attempts > limit {
            return Ok(Err(Refused {
                retry_after_secs: count.retry_after_secs,
                first: count.attempts == limit.saturating_add(1),
            }));
        }
    }
    let email = Key::Email(email);
    if throttle::count(&state.db, email, limits.window_secs).await? > limits.email_slowdown_after {
        tokio::time::sleep(std::time::Duration::from_millis(limits.email_slowdown_ms)).await;
    }
    Ok(Ok(Reserved { keys, email }))
}

/// The user `id`, once `password` is its current one: the check is counted
/// like a login from `client` ([`reserve_check`]); a wrong password is 403
/// and counts as a failure. (A change of password or of address.)
async fn confirm_password(
    state: &AppState,
    id: shared::user::UserId,
    client: Option<shared::headers::ClientAddress>,
    password: &shared::types::Secret,
) -> Result<shared::User, Error> {
    let (user, hash) = crate::db::users::credentials_by_id(&state.db, id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let reserved = reserve_check(state, &user.email, client).await?;
    if !state.hasher.verify(password.expose(), Some(hash)).await? {
        reserved.failed(state).await?;
        return Err(Error::WrongCurrentPassword);
    }
    reserved.passed(state).await?;
    Ok(user)
}

/// A password check [`reserve_check`] let through.
struct Reserved<'a> {
    /// Reserved before the check.
    keys: Vec<Key<'a>>,
    /// Counted only when the check fails.
    email: Key<'a>,
}

impl Reserved<'_> {
    /// The password was right: the reservation is given back.
    async fn passed(self, state: &AppState) -> Result<(), Error> {
        throttle::release(&state.db, &self.keys).await
    }

    /// The password was wrong: the reservation stays, and the email counts
    /// one failure more.
    async fn failed(self, state: &AppState) -> Result<(), Error> {
        throttle::reserve(
            &state.db,
            &[self.email],
            state.settings.throttle.window_secs,
        )
        .await?;
        Ok(())
    }
}

/// Sessions of `user` ended: the gateways drop what they cached for it.
async fn ended(state: &AppState, user: shared::user::UserId) {
    state
        .notices
        .user_changed(shared::auth::SESSIONS_ENDED, user)
        .await;
}

/// Writes `event` to the outbox on `conn`: the transaction of the change it
/// reports, so the event exists exactly when the change does.
async fn emit(conn: &mut sqlx::PgConnection, event: Event) -> Result<(), Error> {
    crate::db::outbox::write(conn, &Envelope::new(event)).await
}

/// `caller` must be an ADMIN (its current role: callers are checked).
fn require_admin(caller: &shared::Caller) -> Result<(), Error> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(Error::AdminRequired)
    }
}
