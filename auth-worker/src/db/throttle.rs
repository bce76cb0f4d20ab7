//! Login throttling: failures counted per key (an email or a client address)
//! in a window; at the threshold the key is locked for a while.

use sqlx::PgPool;

use crate::{Error, settings::ThrottleSettings};

/// What a failure is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// The lower-cased email.
    Email(&'a str),
    /// The client address as the gateway saw it.
    Ip(&'a str),
}

impl Key<'_> {
    fn parts(self) -> (&'static str, String) {
        match self {
            Key::Email(e) => ("email", e.to_lowercase()),
            Key::Ip(ip) => ("ip", ip.to_owned()),
        }
    }

    fn max_failures(self, settings: &ThrottleSettings) -> i32 {
        match self {
            Key::Email(_) => settings.email_max_failures,
            Key::Ip(_) => settings.ip_max_failures,
        }
    }
}

/// Seconds until the longest lock among `keys` ends, if one is locked. One
/// query, whatever the number of keys.
pub async fn locked_for(db: &PgPool, keys: &[Key<'_>]) -> Result<Option<u64>, Error> {
    let (scopes, keys): (Vec<&str>, Vec<String>) = keys.iter().map(|k| k.parts()).unzip();
    let secs: Option<f64> = sqlx::query_scalar(
        "select max(extract(epoch from locked_until - now()))::float8 from login_failures \
         where (scope, key) in (select * from unnest($1::text[], $2::text[])) \
           and locked_until > now()",
    )
    .bind(scopes)
    .bind(keys)
    .fetch_one(db)
    .await?;
    Ok(secs.map(|s| s.ceil().max(1.0) as u64))
}

/// Counts one failure against `key`; locks it when the count reaches the
/// threshold within the window.
pub async fn record_failure(
    db: &PgPool,
    key: Key<'_>,
    settings: &ThrottleSettings,
) -> Result<(), Error> {
    let max = key.max_failures(settings);
    let (scope, key) = key.parts();
    // `fresh` says whether the stored window has expired (then counting
    // restarts at 1).
    sqlx::query(
        "insert into login_failures as f (scope, key, window_start, failures, locked_until) \
         values ($1, $2, now(), 1, case when 1 >= $3 then now() + make_interval(secs => $5) end) \
         on conflict (scope, key) do update set \
           window_start = case when f.window_start < now() - make_interval(secs => $4) \
                               then now() else f.window_start end, \
           failures = case when f.window_start < now() - make_interval(secs => $4) \
                           then 1 else f.failures + 1 end, \
           locked_until = case when (case when f.window_start < now() - make_interval(secs => $4) \
                                          then 1 else f.failures + 1 end) >= $3 \
                               then now() + make_interval(secs => $5) else f.locked_until end",
    )
    .bind(scope)
    .bind(key)
    .bind(max)
    .bind(settings.window_secs as f64)
    .bind(settings.lockout_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets the failures of an email after a successful login. (A client
/// address is not forgiven: one good account must not reset the count of an
/// address that is guessing others.)
pub async fn clear_email(db: &PgPool, email: &str) -> Result<(), Error> {
    sqlx::query("delete from login_failures where scope = 'email' and key = $1")
        .bind(email.to_lowercase())
        .execute(db)
        .await?;
    Ok(())
}
