//! Throttles: attempts counted per key in a window, in PostgreSQL so every
//! copy of every process sees the same counts.
//!
//! For a hard limit, an attempt is *reserved* before the password is
//! checked: one upsert adds it to every key at once and returns the counts,
//! so any number of parallel guesses are counted before any of them is
//! verified. A right password gives its reservation back ([`release`]), so
//! the counts are failures (and attempts still in progress).
//!
//! What each key does with its count is the caller's choice (see
//! `handlers::reserve_check`): a hard limit per email and client address
//! pair and per client address, and on sign-ups per client address; only a
//! slowdown per email alone, which counts failures after the check (read
//! with [`count`], added with [`reserve`]).
//!
//! No statement holds a row lock past itself (none runs inside a
//! transaction that waits for a hash), and each takes its rows in the order
//! `scope, key`, so concurrent logins never deadlock.

use shared::headers::ClientAddress;
use sqlx::PgPool;

use crate::Error;

/// What an attempt is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// An email (any case) from one client address.
    Pair(&'a str, Option<ClientAddress>),
    /// A client address, over every email.
    Address(ClientAddress),
    /// An email, from every address: failed checks only.
    Email(&'a str),
    /// Sign-ups from a client address.
    Signup(ClientAddress),
    /// Reset mails asked for an email (any case), from every address.
    Recover(&'a str),
    /// Reset mails asked for from a client address, over every email.
    RecoverAddress(Option<ClientAddress>),
    /// New verification mails a user asked for.
    Resend(shared::user::UserId),
    /// Second-factor checks of a user from one client address.
    Mfa(shared::user::UserId, Option<ClientAddress>),
    /// Failed second-factor checks of a user, from every address.
    MfaUser(shared::user::UserId),
}

impl Key<'_> {
    fn parts(self) -> (&'static str, String) {
        // An unknown address (a request that did not come through the
        // gateway) is one address of its own.
        let address =
            |a: Option<ClientAddress>| a.map_or_else(|| "-".to_owned(), |a| a.throttle_key());
        match self {
            Key::Pair(email, a) => ("pair", format!("{} {}", email.to_lowercase(), address(a))),
            Key::Address(a) => ("ip", a.throttle_key()),
            Key::Email(email) => ("email", email.to_lowercase()),
            Key::Signup(a) => ("signup", a.throttle_key()),
            Key::Recover(email) => ("recover", email.to_lowercase()),
            Key::RecoverAddress(a) => ("recover_ip", address(a)),
            Key::Resend(user) => ("resend", user.to_string()),
            Key::Mfa(user, a) => ("mfa", format!("{user} {}", address(a))),
            Key::MfaUser(user) => ("mfa_user", user.to_string()),
        }
    }
}

/// A key's count after a reservation.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    /// Attempts in the current window, this one included.
    pub attempts: i32,
    /// Seconds until the window ends (at least 1).
    pub retry_after_secs: u64,
}

/// Counts one attempt against each of `keys` in a window of `window_secs`
/// (a window that has ended starts again at 1), and returns each key's count,
/// in the order of `keys`. One statement, whatever the number of keys; rows
/// are locked in a fixed order so concurrent reservations cannot deadlock.
pub async fn reserve(
    db: impl sqlx::PgExecutor<'_>,
    keys: &[Key<'_>],
    window_secs: u64,
) -> Result<Vec<Count>, Error> {
    let (scopes, names): (Vec<&str>, Vec<String>) = keys.iter().map(|k| k.parts()).unzip();
    // A key whose window has ended starts a new one at 1; otherwise its
    // count goes up by one.
    let rows = sqlx::query!(
        r#"insert into login_failures as f (scope, key, window_start, failures)
           select scope, key, now(), 1 from unnest($1::text[], $2::text[]) as k (scope, key)
           order by scope, key
           on conflict (scope, key) do update set (window_start, failures) = (
             select case when open then f.window_start else now() end,
                    case when open then f.failures + 1 else 1 end
             from (select f.window_start > now() - make_interval(secs => $3) as open) as w)
           returning scope, key, failures,
             extract(epoch from window_start - now())::float8 + $3 as "seconds_left!""#,
        &scopes as &[&str],
        &names,
        window_secs as f64,
    )
    .fetch_all(db)
    .await?;
    Ok(scopes
        .iter()
        .zip(&names)
        .map(|(scope, name)| {
            rows.iter()
                .find(|r| r.scope == *scope && r.key == *name)
                .map_or(
                    Count {
                        attempts: 1,
                        retry_after_secs: 1,
                    },
                    |r| Count {
                        attempts: r.failures,
                        retry_after_secs: r.seconds_left.ceil().max(1.0) as u64,
                    },
                )
        })
        .collect())
}

/// The count of `key` in its current window (0 when none is open).
pub async fn count(db: &PgPool, key: Key<'_>, window_secs: u64) -> Result<i32, Error> {
    let (scope, name) = key.parts();
    let failures = sqlx::query_scalar!(
        "select failures from login_failures
         where scope = $1 and key = $2 and window_start > now() - make_interval(secs => $3)",
        scope,
        name,
        window_secs as f64,
    )
    .fetch_optional(db)
    .await?;
    Ok(failures.unwrap_or(0))
}

/// Gives back the reservation of an attempt that succeeded: the pair (of
/// an email or a user's second factor, and an address) starts over; the address and email counts lose this one attempt. (An address is
/// not forgiven its failures: one good account must not reset the count of
/// an address that is guessing others.)
///
/// The rows are locked first, in the order [`reserve`] takes them
/// (`scope, key`), and only then changed: a delete and an update of one
/// statement would lock in whatever order their plans run, and a
/// reservation of the same keys waiting in the other order is a deadlock.
pub async fn release(db: &PgPool, keys: &[Key<'_>]) -> Result<(), Error> {
    let (scopes, names): (Vec<&str>, Vec<String>) = keys.iter().map(|k| k.parts()).unzip();
    sqlx::query!(
        "with locked as (
           select f.scope, f.key from login_failures f
           join unnest($1::text[], $2::text[]) as k (scope, key)
             on f.scope = k.scope and f.key = k.key
           order by f.scope, f.key
           for update of f),
         cleared as (delete from login_failures f using locked l
                     where f.scope = l.scope and f.key = l.key and f.scope in ('pair', 'mfa'))
         update login_failures f set failures = greatest(f.failures - 1, 0) from locked l
         where f.scope = l.scope and f.key = l.key and f.scope not in ('pair', 'mfa')",
        &scopes as &[&str],
        &names,
    )
    .execute(db)
    .await?;
    Ok(())
}
