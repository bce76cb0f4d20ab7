//! What mails carry links for: verifying an address, resetting a password
//! (asked by the user or an ADMIN), and the token a mail's link holds
//! (`auth.mail_token`, the mail-worker's).
//!
//! A token row is written with the event that asks for its mail; any token
//! that is not live and of the right purpose gets the one answer
//! [`Error::InvalidLink`] and changes nothing.

use runtime::service::Call;
use shared::{
    Caller, Done, User,
    auth::{
        Empty, MailToken, MailTokenRequest, RecoverRequest, ResetPasswordRequest, UserRequest,
        VerifyEmailRequest,
    },
    events::{Event, RequestedBy, RevokeReason},
    headers::Anonymous,
    types::Secret,
};
use tracing::info;

use super::{emit, ended, require_admin};
use crate::{
    AppState, Error,
    db::{
        email_tokens::{self, Purpose},
        sessions,
        throttle::{self, Key},
        users,
    },
};

/// Writes a verification token row for `user`'s address and the event that
/// asks for its mail, on `conn` (the caller's transaction).
pub(super) async fn request_verification(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    user: &User,
) -> Result<(), Error> {
    let ttl = state.settings.recovery.verify_ttl_secs;
    let token_id =
        email_tokens::create(&mut *conn, user.id, Purpose::Verify, &user.email, ttl).await?;
    let requested = Event::EmailVerificationRequested {
        user_id: user.id,
        email: user.email.clone(),
        token_id,
    };
    emit(conn, requested).await
}

/// `auth.verify_email`: spends a verification or change-of-address token.
/// A verification marks the address verified if it is still the
/// account's. A change of address switches to the new one, verified,
/// unless another account took it meanwhile: 409, and the token stays
/// unspent (the transaction rolls back), so it works once the address is
/// free again.
pub async fn verify_email(
    state: AppState,
    _: Call<Anonymous>,
    request: VerifyEmailRequest,
) -> Result<User, Error> {
    let hash = email_tokens::hash(request.token.expose());
    let mut tx = state.db.begin().await?;
    let spent = email_tokens::spend(&mut tx, &hash, &[Purpose::Verify, Purpose::ChangeEmail])
        .await?
        .ok_or(Error::InvalidLink)?;
    let user = if spent.purpose == Purpose::ChangeEmail {
        let old_email = users::lock_email(&mut *tx, spent.user_id)
            .await?
            .ok_or(Error::InvalidLink)?;
        let user = users::set_verified_email(&mut *tx, spent.user_id, &spent.email).await?;
        let changed = Event::EmailChanged {
            user_id: user.id,
            old_email,
            new_email: user.email.clone(),
        };
        emit(&mut tx, changed).await?;
        user
    } else {
        // The address changed since the mail was sent: the link proves an
        // address the account no longer has.
        let user = users::mark_verified(&mut *tx, spent.user_id, &spent.email)
            .await?
            .ok_or(Error::InvalidLink)?;
        let verified = Event::EmailVerified {
            user_id: user.id,
            email: user.email.clone(),
        };
        emit(&mut tx, verified).await?;
        user
    };
    tx.commit().await?;
    info!(
        user_id = user.id,
        purpose = spent.purpose.as_str(),
        "email verified"
    );
    Ok(user)
}

/// `auth.resend_verification`: a new verification mail for the caller's
/// address; 409 once it is verified, 429 past `recovery.resend_max_per_user`
/// in the window. Earlier links keep working until they expire.
pub async fn resend_verification(
    state: AppState,
    Call { caller, user, .. }: Call<Caller>,
    _: Empty,
) -> Result<Done, Error> {
    let user = user.ok_or(Error::UserNotFound)?;
    if user.email_verified {
        return Err(Error::AlreadyVerified);
    }
    let limits = &state.settings.recovery;
    let counts =
        throttle::reserve(&state.db, &[Key::Resend(caller.id)], limits.window_secs).await?;
    if let Some(count) = counts
        .iter()
        .find(|c| c.attempts > limits.resend_max_per_user)
    {
        return Err(Error::Throttled {
            retry_after_secs: count.retry_after_secs,
        });
    }
    let mut tx = state.db.begin().await?;
    request_verification(&state, &mut tx, &user).await?;
    tx.commit().await?;
    Ok(Done {})
}

/// `auth.recover`: a reset mail for `email` if it names an account. Counted
/// per email and per client address first (429 past either limit, for any
/// email alike). Then one statement writes the token row and the event only
/// when the account exists: known and unknown emails do the same work and
/// get the same reply.
pub async fn recover(
    state: AppState,
    Call { client, .. }: Call<Anonymous>,
    request: RecoverRequest,
) -> Result<Done, Error> {
    let limits = &state.settings.recovery;
    let keys = [Key::Recover(&request.email), Key::RecoverAddress(client)];
    // One transaction for the reservation and the request: both paths then
    // write (the reservation) and flush the log once at commit, whether or
    // not the request found an account and wrote its rows. Two commits, one
    // of them empty for an unknown address, differed by that flush.
    let mut tx = state.db.begin().await?;
    let counts = throttle::reserve(&mut *tx, &keys, limits.window_secs).await?;
    let caps = [limits.recover_max_per_email, limits.recover_max_per_address];
    if let Some((count, _)) = counts
        .iter()
        .zip(caps)
        .find(|(count, cap)| count.attempts > *cap)
    {
        let retry_after_secs = count.retry_after_secs;
        tx.commit().await?;
        return Err(Error::Throttled { retry_after_secs });
    }
    email_tokens::request_reset(&mut *tx, &request.email, limits.reset_ttl_secs).await?;
    tx.commit().await?;
    Ok(Done {})
}

/// `auth.reset_password`: spends a reset token and sets the new password;
/// in the same transaction voids the user's other links, ends every
/// session and writes `password.reset` and `session.revoked`. The token is
/// looked at before the password is hashed, so a bad link costs no hash,
/// and spent after (locked, checked again).
pub async fn reset_password(
    state: AppState,
    _: Call<Anonymous>,
    request: ResetPasswordRequest,
) -> Result<Done, Error> {
    let hash = email_tokens::hash(request.token.expose());
    if !email_tokens::is_live(&state.db, &hash, Purpose::Reset).await? {
        return Err(Error::InvalidLink);
    }
    let new_hash = state.hasher.hash(request.new_password.expose()).await?;
    let mut tx = state.db.begin().await?;
    let spent = email_tokens::spend(&mut tx, &hash, &[Purpose::Reset])
        .await?
        .ok_or(Error::InvalidLink)?;
    let email = users::lock_email(&mut *tx, spent.user_id)
        .await?
        .ok_or(Error::InvalidLink)?;
    users::set_password_hash(&mut *tx, spent.user_id, &new_hash).await?;
    email_tokens::void_all(&mut *tx, spent.user_id).await?;
    let revoked = sessions::revoke_all_but(&mut *tx, spent.user_id, None).await?;
    let reset = Event::PasswordReset {
        user_id: spent.user_id,
        email,
    };
    emit(&mut tx, reset).await?;
    let ended_all = Event::SessionRevoked {
        user_id: spent.user_id,
        session_id: None,
        count: revoked,
        reason: RevokeReason::Password,
    };
    emit(&mut tx, ended_all).await?;
    tx.commit().await?;
    ended(&state, spent.user_id).await;
    info!(user_id = spent.user_id, revoked, "password reset");
    Ok(Done {})
}

/// `auth.admin_recover`: an ADMIN sends the user a reset mail (403 for
/// anyone else, 404 for an unknown user).
pub async fn admin_recover(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: UserRequest,
) -> Result<Done, Error> {
    require_admin(&caller)?;
    let user = runtime::db::users::by_id(&state.db, request.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let mut tx = state.db.begin().await?;
    let ttl = state.settings.recovery.reset_ttl_secs;
    let token_id =
        email_tokens::create(&mut *tx, user.id, Purpose::Reset, &user.email, ttl).await?;
    let requested = Event::PasswordResetRequested {
        user_id: user.id,
        email: user.email,
        token_id,
        requested_by: RequestedBy::Admin,
    };
    emit(&mut tx, requested).await?;
    tx.commit().await?;
    info!(
        user_id = user.id,
        by = caller.id,
        "reset mail requested by an ADMIN"
    );
    Ok(Done {})
}

/// `auth.mail_token`: a new token for the row `tokenId` (replacing any
/// earlier one: the latest mail's link is the one that works); 410 when no
/// link can use the row any more.
pub async fn mail_token(
    state: AppState,
    _: Call<Anonymous>,
    request: MailTokenRequest,
) -> Result<MailToken, Error> {
    let (token, expires_at) = email_tokens::issue(&state.db, request.token_id)
        .await?
        .ok_or(Error::LinkGone)?;
    Ok(MailToken {
        token: Secret::new(token),
        expires_at,
    })
}
