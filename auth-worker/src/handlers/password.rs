//! `auth.change_password`.

use runtime::service::Call;
use shared::{
    Caller, Done,
    auth::ChangePasswordRequest,
    events::{Event, RevokeReason},
};
use tracing::info;

use super::{confirm_password, emit, ended};
use crate::{
    AppState, Error,
    db::{email_tokens, sessions, users},
};

/// `auth.change_password`: checks the current password (counted like a
/// login from the caller's address), stores the new hash and revokes every
/// other session of the caller, in one transaction; links already mailed
/// (a reset, a verification) stop working.
pub async fn change(
    state: AppState,
    Call { caller, client, .. }: Call<Caller>,
    request: ChangePasswordRequest,
) -> Result<Done, Error> {
    let user = confirm_password(&state, caller.id, client, &request.current_password).await?;
    let new_hash = state.hasher.hash(request.new_password.expose()).await?;
    let mut tx = state.db.begin().await?;
    users::set_password_hash(&mut *tx, user.id, &new_hash).await?;
    let revoked = sessions::revoke_all_but(&mut *tx, user.id, caller.session).await?;
    email_tokens::void_all(&mut *tx, user.id).await?;
    let changed = Event::PasswordChanged {
        user_id: user.id,
        email: user.email.clone(),
    };
    emit(&mut tx, changed).await?;
    if revoked > 0 {
        let ended = Event::SessionRevoked {
            user_id: user.id,
            session_id: None,
            count: revoked,
            reason: RevokeReason::Password,
        };
        emit(&mut tx, ended).await?;
    }
    tx.commit().await?;
    ended(&state, user.id).await;
    info!(user_id = user.id, revoked, "password changed");
    Ok(Done {})
}
