//! `auth.change_password`.

use runtime::service::Call;
use shared::{Caller, Done, auth::ChangePasswordRequest};
use tracing::info;

use super::{ended, reserve_check};
use crate::{
    AppState, Error,
    db::{sessions, users},
};

/// `auth.change_password`: checks the current password (counted like a
/// login from the caller's address), stores the new hash and revokes every
/// other session of the caller, in one transaction.
pub async fn change(
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
