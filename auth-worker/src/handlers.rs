//! One plain async function per subject: `(state, ctx, request) -> reply`.
//! Requests arrive decoded and validated (see `shared::service`).

use shared::{
    RequestContext, User,
    auth::{CreateUserRequest, GetUserRequest, JwkSet, JwksRequest, LoginRequest, TokenReply},
};
use time::{Duration, OffsetDateTime};
use tracing::info;

use crate::{AppState, Error, db, tokens};

/// `auth.create_user`: sign-up. The email check before hashing saves an
/// argon2 run on the common duplicate; the unique index still decides races.
pub async fn create_user(
    state: AppState,
    _ctx: RequestContext,
    request: CreateUserRequest,
) -> Result<User, Error> {
    if db::email_taken(&state.db, &request.email).await? {
        return Err(Error::EmailTaken);
    }
    let hash = state.hasher.hash(request.password.expose()).await?;
    let user = db::insert_user(
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
        GetUserRequest::Id { id } => db::user_by_id(&state.db, id).await?,
        GetUserRequest::Email { email } => db::user_by_email(&state.db, &email).await?,
    };
    user.ok_or(Error::UserNotFound)
}

/// `auth.login`: an unknown email costs one argon2 verification too, so the
/// answer and its timing are the same as for a wrong password.
pub async fn login(
    state: AppState,
    _ctx: RequestContext,
    request: LoginRequest,
) -> Result<TokenReply, Error> {
    let found = db::credentials_by_email(&state.db, &request.email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = state.hasher.verify(request.password.expose(), hash).await?;
    let user = match user {
        Some(user) if matched => user,
        _ => return Err(Error::InvalidCredentials),
    };
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let ttl = i64::try_from(state.settings.jwt.refresh_ttl_secs).unwrap_or(i64::MAX / 2);
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(ttl);
    let mut tx = state.db.begin().await?;
    let session = db::create_session(&mut tx, user.id, &refresh_hash, expires_at).await?;
    tx.commit().await?;
    let access_token = state.tokens.issue_access_token(&user, session)?;
    info!(user_id = user.id, %session, "login");
    Ok(TokenReply {
        access_token,
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
