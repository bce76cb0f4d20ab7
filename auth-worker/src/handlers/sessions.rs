//! `auth.login`, `auth.refresh` and `auth.logout`: sessions and the token
//! pairs that carry them.

use runtime::service::Call;
use shared::{
    Caller, Done, User,
    auth::{LoginRequest, RefreshTokenRequest, TokenReply},
    events::{Event, RevokeReason},
    headers::Anonymous,
    mfa::{LoginReply, amr},
};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use super::{emit, ended, mfa, reserve};
use crate::{
    AppState, Error,
    db::{self, sessions, users},
    tokens, user_agent,
};

/// `auth.login`: an unknown email costs one argon2 verification too, so the
/// answer and its timing are the same as for a wrong password. Each attempt
/// is counted before the password is checked (see [`reserve_check`]); a
/// refused attempt answers 429 without checking, so a right password does not
/// open a lock. The first refusal of a window, for an existing account, is
/// the event `login.throttled` (the owner learns of it; nothing locks them
/// out).
///
/// The session keeps the client's browser family and network; the event
/// `session.created` says whether that pair is new for the user.
pub async fn login(
    state: AppState,
    Call {
        client, user_agent, ..
    }: Call<Anonymous>,
    request: LoginRequest,
) -> Result<LoginReply, Error> {
    let network = client.map(user_agent::network);
    let reserved = match reserve(&state, &request.email, client).await? {
        Ok(reserved) => reserved,
        Err(refused) => {
            if refused.first {
                report_throttled(&state, &request.email, network).await?;
            }
            return Err(Error::Throttled {
                retry_after_secs: refused.retry_after_secs,
            });
        }
    };
    let found = users::credentials_by_email(&state.db, &request.email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = state.hasher.verify(request.password.expose(), hash).await?;
    let user = match user {
        Some(user) if matched => user,
        _ => {
            reserved.failed(&state).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    reserved.passed(&state).await?;
    let device = sessions::Device {
        user_agent: user_agent.as_deref().and_then(user_agent::family),
        network,
    };
    let methods = db::mfa::methods(&state.db, user.id).await?;
    if !methods.is_empty() {
        // A second factor to prove first: a pending login, not a session.
        let challenge = mfa::pending_login(&state, &user, &device, methods).await?;
        return Ok(LoginReply::MfaRequired(challenge));
    }
    let amr = [amr::PWD.to_owned()];
    start_session(&state, user, device, &amr)
        .await
        .map(LoginReply::Tokens)
}

/// Starts a session of `user` from `device`, authenticated by `amr`, with
/// its `session.created` event: the end of a login, with or without a
/// second factor.
pub(super) async fn start_session(
    state: &AppState,
    user: User,
    device: sessions::Device,
    amr: &[String],
) -> Result<TokenReply, Error> {
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let ttl = i64::try_from(state.settings.jwt.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(ttl);
    let mut tx = state.db.begin().await?;
    let (session, new_device) =
        sessions::create(&mut tx, user.id, &refresh_hash, expires_at, &device, amr).await?;
    let created = Event::SessionCreated {
        user_id: user.id,
        email: user.email.clone(),
        session_id: session.id,
        user_agent: device.user_agent,
        network: device.network,
        new_device,
    };
    emit(&mut tx, created).await?;
    tx.commit().await?;
    info!(user_id = user.id, session = %session.id, new_device, amr = ?session.amr, "login");
    token_reply(state, user, &session, refresh_token, expires_at)
}

/// Writes `login.throttled` for the account of `email`, if there is one.
async fn report_throttled(
    state: &AppState,
    email: &shared::types::Email,
    network: Option<String>,
) -> Result<(), Error> {
    let Some(user) = users::user_by_email(&state.db, email).await? else {
        return Ok(());
    };
    let mut conn = state.db.acquire().await?;
    let throttled = Event::LoginThrottled {
        user_id: user.id,
        email: user.email,
        network,
    };
    emit(&mut conn, throttled).await?;
    warn!(user_id = user.id, "logins throttled");
    Ok(())
}

/// How many rotations a retry inside the grace window may follow to reach
/// the session's current token (two tabs refreshing at once make two).
const MAX_SUCCESSORS: usize = 4;

/// `auth.refresh`: exchanges a refresh token for new tokens in one
/// transaction. The token row is locked, so concurrent refreshes of one token
/// take turns: the first rotates it, the others find it spent.
///
/// A token spent within `refresh.reuse_grace_secs` is a retry (the reply was
/// lost, two tabs): the answer is the session's current refresh token, opened
/// from the successor sealed with the spent token, and a new access token;
/// nothing is rotated. One spent earlier has leaked, and its whole session is
/// revoked.
pub async fn refresh(
    state: AppState,
    _: Call<Anonymous>,
    request: RefreshTokenRequest,
) -> Result<TokenReply, Error> {
    let presented = request.refresh_token.expose();
    let hash = tokens::refresh_token_hash(presented);
    let mut tx = state.db.begin().await?;
    let row = sessions::lock_token(&mut tx, &hash)
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    let now = OffsetDateTime::now_utc();
    if row.revoked_at.is_some() || row.expires_at <= now || row.session_expires_at <= now {
        return Err(Error::InvalidRefreshToken);
    }
    if let Some(spent_at) = row.spent_at {
        let grace =
            Duration::seconds(i64::try_from(state.settings.refresh.reuse_grace_secs).unwrap_or(0));
        if now - spent_at > grace {
            if sessions::revoke(&mut *tx, row.session_id).await? {
                let revoked = Event::SessionRevoked {
                    user_id: row.user_id,
                    session_id: Some(row.session_id),
                    count: 1,
                    reason: RevokeReason::TokenReuse,
                };
                emit(&mut tx, revoked).await?;
            }
            tx.commit().await?;
            ended(&state, row.user_id).await;
            warn!(session = %row.session_id, user_id = row.user_id, "spent refresh token presented: session revoked");
            return Err(Error::InvalidRefreshToken);
        }
        let current = current_successor(&mut tx, row.session_id, presented, row.successor)
            .await?
            .ok_or(Error::InvalidRefreshToken)?;
        let user = user_in(&mut tx, row.user_id).await?;
        info!(user_id = user.id, session = %row.session_id, "refresh retried: current pair sent again");
        let session = tokens::SessionAuth {
            id: row.session_id,
            amr: row.amr,
            auth_time: row.auth_time,
        };
        return token_reply(&state, user, &session, current, row.session_expires_at);
    }
    let user = user_in(&mut tx, row.user_id).await?;
    let (refresh_token, new_hash) = tokens::new_refresh_token();
    let sealed = tokens::seal_successor(presented, row.session_id, &refresh_token)?;
    sessions::rotate(
        &mut tx,
        row.session_id,
        &hash,
        (&new_hash, &sealed),
        row.session_expires_at,
    )
    .await?;
    tx.commit().await?;
    let session = tokens::SessionAuth {
        id: row.session_id,
        amr: row.amr,
        auth_time: row.auth_time,
    };
    token_reply(
        &state,
        user,
        &session,
        refresh_token,
        row.session_expires_at,
    )
}

/// The session's user, read inside the refresh's transaction: taking a
/// second pooled connection while holding the row lock would starve the pool
/// when many refreshes wait on it.
async fn user_in(conn: &mut sqlx::PgConnection, id: shared::user::UserId) -> Result<User, Error> {
    runtime::db::users::by_id(conn, id)
        .await?
        .ok_or(Error::InvalidRefreshToken)
}

/// Follows the sealed successors from `spent` to the session's current
/// (unspent) refresh token; `None` when the chain breaks or is too long.
async fn current_successor(
    conn: &mut sqlx::PgConnection,
    session: uuid::Uuid,
    spent: &str,
    mut sealed: Option<Vec<u8>>,
) -> Result<Option<String>, Error> {
    let mut token = spent.to_owned();
    for _ in 0..MAX_SUCCESSORS {
        let Some(next) = sealed
            .as_deref()
            .and_then(|s| tokens::open_successor(&token, session, s))
        else {
            return Ok(None);
        };
        let hash = tokens::refresh_token_hash(&next);
        match sessions::token_in_session(conn, session, &hash).await? {
            Some((None, _)) => return Ok(Some(next)),
            Some((Some(_), successor)) => (token, sealed) = (next, successor),
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// `auth.logout`: revokes the session of the caller's refresh token.
/// Another user's token is refused.
pub async fn logout(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: RefreshTokenRequest,
) -> Result<Done, Error> {
    let hash = tokens::refresh_token_hash(request.refresh_token.expose());
    match sessions::owner_of_token(&state.db, &hash).await? {
        Some((session, owner)) if owner == caller.id => {
            let mut tx = state.db.begin().await?;
            if sessions::revoke(&mut *tx, session).await? {
                let revoked = Event::SessionRevoked {
                    user_id: caller.id,
                    session_id: Some(session),
                    count: 1,
                    reason: RevokeReason::Logout,
                };
                emit(&mut tx, revoked).await?;
            }
            tx.commit().await?;
            ended(&state, caller.id).await;
            info!(user_id = caller.id, %session, "logout");
            Ok(Done {})
        }
        _ => Err(Error::InvalidRefreshToken),
    }
}

/// The reply of a login or refresh: a new access token beside
/// `refresh_token`, and how long each lasts.
fn token_reply(
    state: &AppState,
    user: User,
    session: &tokens::SessionAuth,
    refresh_token: String,
    session_expires_at: OffsetDateTime,
) -> Result<TokenReply, Error> {
    let left = (session_expires_at - OffsetDateTime::now_utc()).whole_seconds();
    Ok(TokenReply {
        access_token: state.tokens.issue_access_token(&user, session)?,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl_secs(),
        refresh_expires_in: u64::try_from(left).unwrap_or(0),
        user,
    })
}
