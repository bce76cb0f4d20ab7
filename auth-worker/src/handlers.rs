//! One plain async function per subject: `(state, ctx, request) -> reply`.
//! Requests arrive decoded and validated (see `shared::service`).

use shared::{
    RequestContext, User,
    auth::{
        ChangePasswordRequest, CreateUserRequest, Done, GetUserRequest, JwkSet, JwksRequest,
        LoginRequest, LogoutRequest, RefreshRequest, TokenReply,
    },
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

/// `auth.create_user`: sign-up. The email check before hashing saves an
/// argon2 run on the common duplicate; the unique index still decides races.
pub async fn create_user(
    state: AppState,
    _ctx: RequestContext,
    request: CreateUserRequest,
) -> Result<User, Error> {
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
    _ctx: RequestContext,
    request: GetUserRequest,
) -> Result<User, Error> {
    let user = match request {
        GetUserRequest::Id { id } => users::user_by_id(&state.db, id).await?,
        GetUserRequest::Email { email } => users::user_by_email(&state.db, &email).await?,
    };
    user.ok_or(Error::UserNotFound)
}

/// `auth.login`: an unknown email costs one argon2 verification too, so the
/// answer and its timing are the same as for a wrong password. Failures are
/// counted per email and per client address; a locked key answers 429 before
/// any password is checked, so a right password does not open a lock.
pub async fn login(
    state: AppState,
    _ctx: RequestContext,
    request: LoginRequest,
) -> Result<TokenReply, Error> {
    let mut keys = vec![Key::Email(&request.email)];
    if let Some(ip) = request.client_ip.as_deref() {
        keys.push(Key::Ip(ip));
    }
    if let Some(retry_after_secs) = throttle::locked_for(&state.db, &keys).await? {
        return Err(Error::Throttled { retry_after_secs });
    }
    let found = users::credentials_by_email(&state.db, &request.email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = state.hasher.verify(request.password.expose(), hash).await?;
    let user = match user {
        Some(user) if matched => user,
        _ => {
            for key in keys {
                throttle::record_failure(&state.db, key, &state.settings.throttle).await?;
            }
            return Err(Error::InvalidCredentials);
        }
    };
    throttle::clear_email(&state.db, &request.email).await?;
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let ttl = i64::try_from(state.settings.jwt.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(ttl);
    let mut tx = state.db.begin().await?;
    let session = sessions::create(&mut tx, user.id, &refresh_hash, expires_at).await?;
    tx.commit().await?;
    info!(user_id = user.id, %session, "login");
    token_reply(&state, user, session, refresh_token)
}

/// `auth.refresh`: exchanges a refresh token for new tokens in one
/// transaction. The token row is locked, so concurrent refreshes of one token
/// take turns: the first rotates it, the others find it spent. A token spent
/// within `refresh.reuse_grace_secs` is refused without consequence (a retry,
/// two tabs); one spent earlier has leaked, and its whole session is revoked.
pub async fn refresh(
    state: AppState,
    _ctx: RequestContext,
    request: RefreshRequest,
) -> Result<TokenReply, Error> {
    let hash = tokens::refresh_token_hash(request.refresh_token.expose());
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
            warn!(session = %row.session_id, user_id = row.user_id, "spent refresh token presented: session revoked");
        }
        return Err(Error::InvalidRefreshToken);
    }
    // Inside the transaction: taking a second pooled connection while holding
    // the row lock would starve the pool when many refreshes wait on it.
    let user = users::user_by_id(&mut *tx, row.user_id)
        .await?
        .ok_or(Error::InvalidRefreshToken)?;
    let (refresh_token, new_hash) = tokens::new_refresh_token();
    sessions::rotate(
        &mut tx,
        row.session_id,
        &hash,
        &new_hash,
        row.session_expires_at,
    )
    .await?;
    tx.commit().await?;
    token_reply(&state, user, row.session_id, refresh_token)
}

/// `auth.logout`: revokes the session of the caller's refresh token.
/// Repeating it is harmless; another user's token is refused.
pub async fn logout(
    state: AppState,
    ctx: RequestContext,
    request: LogoutRequest,
) -> Result<Done, Error> {
    let caller = ctx.caller.ok_or(Error::NoCaller)?;
    let hash = tokens::refresh_token_hash(request.refresh_token.expose());
    match sessions::owner_of_token(&state.db, &hash).await? {
        Some((session, owner)) if owner == caller.id => {
            sessions::revoke(&state.db, session).await?;
            info!(user_id = caller.id, %session, "logout");
            Ok(Done {})
        }
        _ => Err(Error::InvalidRefreshToken),
    }
}

/// `auth.change_password`: checks the current password (failures count
/// towards the email's login throttle), stores the new hash and revokes every
/// other session of the caller, in one transaction.
pub async fn change_password(
    state: AppState,
    ctx: RequestContext,
    request: ChangePasswordRequest,
) -> Result<Done, Error> {
    let caller = ctx.caller.ok_or(Error::NoCaller)?;
    let (user, hash) = users::credentials_by_id(&state.db, caller.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let key = Key::Email(&user.email);
    if let Some(retry_after_secs) = throttle::locked_for(&state.db, &[key]).await? {
        return Err(Error::Throttled { retry_after_secs });
    }
    if !state
        .hasher
        .verify(request.current_password.expose(), Some(hash))
        .await?
    {
        throttle::record_failure(&state.db, key, &state.settings.throttle).await?;
        return Err(Error::WrongCurrentPassword);
    }
    let new_hash = state.hasher.hash(request.new_password.expose()).await?;
    let mut tx = state.db.begin().await?;
    users::set_password_hash(&mut *tx, user.id, &new_hash).await?;
    let revoked = sessions::revoke_all_but(&mut *tx, user.id, caller.session).await?;
    tx.commit().await?;
    info!(user_id = user.id, revoked, "password changed");
    Ok(Done {})
}

fn token_reply(
    state: &AppState,
    user: User,
    session: uuid::Uuid,
    refresh_token: String,
) -> Result<TokenReply, Error> {
    Ok(TokenReply {
        access_token: state.tokens.issue_access_token(&user, session)?,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl_secs(),
        user,
    })
}

/// `auth.jwks`: the public keys that verify access tokens.
pub async fn jwks(
    state: AppState,
    _ctx: RequestContext,
    _request: JwksRequest,
) -> Result<JwkSet, Error> {
    Ok(state.tokens.jwks().clone())
}
