//! One plain async function per subject: `(state, call, request) -> reply`.
//! Requests arrive decoded and validated, and `call.caller` checked against
//! the database where the subject takes a caller (see `runtime::service`).

use runtime::service::Call;
use shared::{
    Caller, Done, User,
    auth::{
        ChangePasswordRequest, CreateUserRequest, GetUserRequest, JwkSet, JwksRequest,
        LoginRequest, ProxyAssertion, ProxyAssertionRequest, RefreshTokenRequest, TokenReply,
    },
    headers::Anonymous,
};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::{
    AppState, Error,
    db::{
        sessions,
        throttle::{self, Key},
        users,
    },
    tokens,
};

/// `auth.create_user`: sign-up. Sign-ups are counted per client address
/// (429 over the limit) before anything else. The email check before hashing
/// saves an argon2 run on the common duplicate; the unique index still
/// decides races.
pub async fn create_user(
    state: AppState,
    Call { client, .. }: Call<Anonymous>,
    request: CreateUserRequest,
) -> Result<User, Error> {
    if let Some(address) = client {
        let limits = &state.settings.throttle;
        let [count] = throttle::reserve(
            &state.db,
            &[Key::Signup(address)],
            limits.signup_window_secs,
        )
        .await?[..] else {
            unreachable!("one key, one count")
        };
        if count.attempts > limits.signup_max_per_address {
            return Err(Error::Throttled {
                retry_after_secs: count.retry_after_secs,
            });
        }
    }
    if users::email_taken(&state.db, &request.email).await? {
        return Err(Error::EmailTaken);
    }
    let hash = state.hasher.hash(request.password.expose()).await?;
    let user = users::insert_user(
        &state.db,
        &request.email,
        &hash,
        request.firstname.as_deref(),
        request.lastname.as_deref(),
    )
    .await?;
    info!(user_id = user.id, "user created");
    Ok(user)
}

/// `auth.get_user`: by id or by email.
pub async fn get_user(
    state: AppState,
    _: Call<Anonymous>,
    request: GetUserRequest,
) -> Result<User, Error> {
    let user = match request {
        GetUserRequest::Id { id } => runtime::db::users::by_id(&state.db, id).await?,
        GetUserRequest::Email { email } => users::user_by_email(&state.db, &email).await?,
    };
    user.ok_or(Error::UserNotFound)
}

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

/// `auth.login`: an unknown email costs one argon2 verification too, so the
/// answer and its timing are the same as for a wrong password. Each attempt
/// is counted before the password is checked (see [`reserve_check`]); a
/// refused attempt answers 429 without checking, so a right password does not
/// open a lock.
pub async fn login(
    state: AppState,
    Call { client, .. }: Call<Anonymous>,
    request: LoginRequest,
) -> Result<TokenReply, Error> {
    let reserved = reserve_check(&state, &request.email, client).await?;
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
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let ttl = i64::try_from(state.settings.jwt.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(ttl);
    let mut tx = state.db.begin().await?;
    let session = sessions::create(&mut tx, user.id, &refresh_hash, expires_at).await?;
    tx.commit().await?;
    info!(user_id = user.id, %session, "login");
    token_reply(&state, user, session, refresh_token, expires_at)
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
            sessions::revoke(&mut *tx, row.session_id).await?;
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
        return token_reply(
            &state,
            user,
            row.session_id,
            current,
            row.session_expires_at,
        );
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
    token_reply(
        &state,
        user,
        row.session_id,
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
            sessions::revoke(&state.db, session).await?;
            ended(&state, caller.id).await;
            info!(user_id = caller.id, %session, "logout");
            Ok(Done {})
        }
        _ => Err(Error::InvalidRefreshToken),
    }
}

/// `auth.change_password`: checks the current password (counted like a
/// login from the caller's address), stores the new hash and revokes every
/// other session of the caller, in one transaction.
pub async fn change_password(
    state: AppState,
    Call { caller, client, .. }: Call<Caller>,
    request: ChangePasswordRequest,
) -> Result<Done, Error> {
    let (user, hash) = users::credentials_by_id(&state.db, caller.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let reserved = reserve_check(&state, &user.email, client).await?;
    if !state
        .hasher
        .verify(request.current_password.expose(), Some(hash))
        .await?
    {
        reserved.failed(&state).await?;
        return Err(Error::WrongCurrentPassword);
    }
    reserved.passed(&state).await?;
    let new_hash = state.hasher.hash(request.new_password.expose()).await?;
    let mut tx = state.db.begin().await?;
    users::set_password_hash(&mut *tx, user.id, &new_hash).await?;
    let revoked = sessions::revoke_all_but(&mut *tx, user.id, caller.session).await?;
    tx.commit().await?;
    ended(&state, user.id).await;
    info!(user_id = user.id, revoked, "password changed");
    Ok(Done {})
}

/// Sessions of `user` ended: the gateways drop what they cached for it.
async fn ended(state: &AppState, user: shared::user::UserId) {
    state
        .notices
        .user_changed(shared::auth::SESSIONS_ENDED, user)
        .await;
}

fn token_reply(
    state: &AppState,
    user: User,
    session: uuid::Uuid,
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

/// `auth.jwks`: the public keys that verify access tokens.
pub async fn jwks(
    state: AppState,
    _: Call<Anonymous>,
    _request: JwksRequest,
) -> Result<JwkSet, Error> {
    Ok(state.tokens.jwks().clone())
}

/// `auth.proxy_assertion`: an identity assertion for one protected upstream,
/// for a caller whose live session and current role were just checked, and
/// only when that role is one the route admits.
pub async fn proxy_assertion(
    state: AppState,
    Call { caller, user, .. }: Call<Caller>,
    request: ProxyAssertionRequest,
) -> Result<ProxyAssertion, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    if !request.roles.contains(&user.role) {
        info!(
            user_id = caller.id,
            audience = request.audience,
            "assertion refused: role"
        );
        return Err(Error::RoleNotAdmitted);
    }
    Ok(ProxyAssertion {
        assertion: state.tokens.issue_assertion(&user, &request.audience)?,
        expires_in: state.tokens.assertion_ttl_secs(),
        user,
    })
}
