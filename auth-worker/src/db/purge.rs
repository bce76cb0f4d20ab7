//! Deleting what no request can use any more: sessions that ended, refresh
//! tokens that expired, the sealed successors of tokens spent before the
//! grace window, throttle windows that closed, mail tokens no link can use,
//! events published long enough ago.

use sqlx::PgPool;

use crate::{Error, settings::Settings};

/// Rows deleted per statement, so a large backlog never holds long locks.
const BATCH: i64 = 5_000;

/// What one purge deleted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Purged {
    pub sessions: u64,
    pub refresh_tokens: u64,
    /// Spent tokens whose sealed successor was erased.
    pub successors: u64,
    pub throttle_rows: u64,
    pub email_tokens: u64,
    pub events: u64,
    /// Pending logins and WebAuthn challenges past their end.
    pub second_factor: u64,
}

/// Runs one purge unless another copy is running one: a session-level
/// advisory lock on one connection, so copies take turns and a copy that dies
/// releases it with its connection. Each batch commits on its own.
/// `None`: another copy held the lock.
pub async fn run(db: &PgPool, settings: &Settings) -> Result<Option<Purged>, Error> {
    let mut conn = db.acquire().await?;
    let got =
        sqlx::query_scalar!(r#"select pg_try_advisory_lock(hashtext('natsauth.purge')) as "got!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !got {
        return Ok(None);
    }
    let purged = purge(&mut conn, settings).await;
    let unlocked = sqlx::query_scalar!(
        r#"select pg_advisory_unlock(hashtext('natsauth.purge')) as "unlocked!""#
    )
    .fetch_one(&mut *conn)
    .await;
    if purged.is_err() || !matches!(unlocked, Ok(true)) {
        // Never hand a connection that may still hold the lock back to the
        // pool: closing it releases the lock.
        conn.close().await.ok();
    }
    purged.map(Some)
}

/// Runs a checked `delete … limit $2` (`$1`: seconds) until it deletes less
/// than a batch, and says how many rows it deleted in all.
macro_rules! batched {
    ($conn:expr, $secs:expr, $sql:literal) => {{
        let mut total = 0;
        loop {
            let deleted = sqlx::query!($sql, $secs, BATCH)
                .execute(&mut *$conn)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < BATCH as u64 {
                break total;
            }
        }
    }};
}

async fn purge(conn: &mut sqlx::PgConnection, settings: &Settings) -> Result<Purged, Error> {
    let retention = settings.purge.revoked_session_retention_secs as f64;
    // A session that expired, or was revoked more than the retention ago,
    // takes its tokens with it (on delete cascade).
    let sessions = batched!(
        conn,
        retention,
        "delete from sessions where id in (select id from sessions
           where expires_at < now() or revoked_at < now() - make_interval(secs => $1) limit $2)"
    );
    // Tokens past their expiry are refused anyway. A spent token stays as
    // long as its session: presented again at any time after the grace
    // window, it revokes the session.
    let refresh_tokens = batched!(
        conn,
        0.0_f64,
        "delete from refresh_tokens where token_hash in (select token_hash from refresh_tokens
           where expires_at < now() - make_interval(secs => $1) limit $2)"
    );
    // The sealed successor only serves a retry inside the grace window;
    // after it nothing may open the session's current token from a spent one.
    let grace = settings.refresh.reuse_grace_secs as f64;
    let successors = batched!(
        conn,
        grace,
        "update refresh_tokens set successor = null where token_hash in (
           select token_hash from refresh_tokens where successor is not null
             and spent_at < now() - make_interval(secs => $1) limit $2)"
    );
    // A window that ended counts nothing: the next attempt starts a new one.
    let longest_window = settings
        .throttle
        .window_secs
        .max(settings.throttle.signup_window_secs)
        .max(settings.recovery.window_secs) as f64;
    // (The second factor's checks count in `throttle.window_secs` too.)
    let throttle_rows = batched!(
        conn,
        longest_window,
        "delete from login_failures where (scope, key) in (select scope, key from login_failures
           where window_start < now() - make_interval(secs => $1) limit $2)"
    );
    // A spent, voided or expired token answers like an unknown one, to a
    // link and to the mail-worker alike.
    let email_tokens = batched!(
        conn,
        0.0_f64,
        "delete from email_tokens where id in (select id from email_tokens
           where expires_at < now() - make_interval(secs => $1)
              or spent_at is not null or voided_at is not null limit $2)"
    );
    // The stream holds what was published; the outbox keeps it a while
    // for whoever looks into the database.
    let retention = settings.purge.published_event_retention_secs as f64;
    let events = batched!(
        conn,
        retention,
        "delete from outbox where id in (select id from outbox
           where published_at < now() - make_interval(secs => $1) limit $2)"
    );
    // A pending login or a passkey prompt past its end answers like none.
    let pending = batched!(
        conn,
        0.0_f64,
        "delete from mfa_pending where token_hash in (select token_hash from mfa_pending
           where expires_at < now() - make_interval(secs => $1) limit $2)"
    );
    let challenges = batched!(
        conn,
        0.0_f64,
        "delete from webauthn_challenges where (owner, purpose) in
           (select owner, purpose from webauthn_challenges
            where expires_at < now() - make_interval(secs => $1) limit $2)"
    );
    Ok(Purged {
        second_factor: pending + challenges,
        sessions,
        refresh_tokens,
        successors,
        throttle_rows,
        email_tokens,
        events,
    })
}
