//! One plain async function per subject: `(state, call, request) -> reply`,
//! grouped by concern as `service.rs` registers them:
//!
//! * [`users`] has `auth.create_user` and `auth.get_user`.
//! * [`sessions`] has `auth.login`, `auth.refresh` and `auth.logout`.
//! * [`password`] has `auth.change_password`.
//! * [`keys`] has `auth.jwks` and `auth.proxy_assertion`: what the signing
//!   keys publish and sign besides access tokens.
//!
//! Requests arrive decoded and validated, and `call.caller` checked against
//! the database where the subject takes a caller (see `runtime::service`).
//! This file holds what several of them share: the throttled password
//! check and the notice that a user's sessions ended.

pub mod keys;
pub mod password;
pub mod sessions;
pub mod users;

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
    let limits = &state.settings.throttle;
    let mut keys = vec![Key::Pair(email, client)];
    keys.extend(client.map(Key::Address));
    let counts = throttle::reserve(&state.db, &keys, limits.window_secs).await?;
    for (key, count) in keys.iter().zip(&counts) {
        let refused = match key {
            Key::Pair(..) => count.attempts > limits.pair_max_attempts,
            Key::Address(_) => count.attempts > limits.address_max_failures,
            Key::Email(_) | Key::Signup(_) => false,
        };
        if refused {
            return Err(Error::Throttled {
                retry_after_secs: count.retry_after_secs,
            });
        }
    }
    let email = Key::Email(email);
    if throttle::count(&state.db, email, limits.window_secs).await? > limits.email_slowdown_after {
        tokio::time::sleep(std::time::Duration::from_millis(limits.email_slowdown_ms)).await;
    }
    Ok(Reserved { keys, email })
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
