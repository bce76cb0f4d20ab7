//! The signed-in user's own account: a change of address and the sessions
//! list; and the ADMIN's ending of a user's sessions.

use runtime::service::Call;
use shared::{
    Caller, Done,
    auth::{ChangeEmailRequest, Empty, SessionInfo, SessionList, SessionRequest, UserRequest},
    events::{Event, RevokeReason},
};
use tracing::info;

use super::{confirm_password, emit, ended, require_admin};
use crate::{
    AppState, Error,
    db::{
        email_tokens::{self, Purpose},
        sessions, users,
    },
};

/// `auth.change_email`: checks the current password (counted like a login
/// from the caller's address), then writes a token for the new address
/// and the event that asks for its confirmation mail (and a notice to the
/// old address). The address changes only when that link is followed
/// (`auth.verify_email`). The current address again: 400; an address of
/// another account: 409.
pub async fn change_email(
    state: AppState,
    Call { caller, client, .. }: Call<Caller>,
    request: ChangeEmailRequest,
) -> Result<Done, Error> {
    let user = confirm_password(&state, caller.id, client, &request.current_password).await?;
    if request.email.eq_ignore_ascii_case(&user.email) {
        return Err(Error::SameEmail);
    }
    if users::email_taken(&state.db, &request.email).await? {
        return Err(Error::EmailTaken);
    }
    let mut tx = state.db.begin().await?;
    let ttl = state.settings.recovery.change_email_ttl_secs;
    let token_id =
        email_tokens::create(&mut *tx, user.id, Purpose::ChangeEmail, &request.email, ttl).await?;
    let requested = Event::EmailChangeRequested {
        user_id: user.id,
        old_email: user.email,
        new_email: request.email.into_string(),
        token_id,
    };
    emit(&mut tx, requested).await?;
    tx.commit().await?;
    info!(user_id = caller.id, "change of email requested");
    Ok(Done {})
}

/// `auth.list_sessions`: the caller's live sessions, newest first, the
/// caller's own marked `current`.
pub async fn list_sessions(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    _: Empty,
) -> Result<SessionList, Error> {
    let items = sessions::live(&state.db, caller.id)
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            current: caller.session == Some(s.id),
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent,
            network: s.network,
        })
        .collect();
    Ok(SessionList { items })
}

/// `auth.revoke_session`: ends one live session of the caller's; any other
/// id (another user's, ended, unknown) is 404, alike.
pub async fn revoke_session(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: SessionRequest,
) -> Result<Done, Error> {
    let mut tx = state.db.begin().await?;
    if !sessions::revoke_own(&mut *tx, caller.id, request.id).await? {
        return Err(Error::SessionNotFound);
    }
    let revoked = Event::SessionRevoked {
        user_id: caller.id,
        session_id: Some(request.id),
        count: 1,
        reason: RevokeReason::Revoked,
    };
    emit(&mut tx, revoked).await?;
    tx.commit().await?;
    ended(&state, caller.id).await;
    info!(user_id = caller.id, session = %request.id, "session ended by its user");
    Ok(Done {})
}

/// `auth.end_other_sessions`: ends every session of the caller but the one
/// of this request.
pub async fn end_other_sessions(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    _: Empty,
) -> Result<Done, Error> {
    end_sessions(&state, caller.id, caller.session, RevokeReason::EndOthers).await?;
    Ok(Done {})
}

/// `auth.end_user_sessions`: an ADMIN ends every session of a user (403
/// for anyone else, 404 for an unknown user).
pub async fn end_user_sessions(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: UserRequest,
) -> Result<Done, Error> {
    require_admin(&caller)?;
    runtime::db::users::by_id(&state.db, request.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    end_sessions(&state, request.id, None, RevokeReason::Admin).await?;
    info!(
        user_id = request.id,
        by = caller.id,
        "sessions ended by an ADMIN"
    );
    Ok(Done {})
}

/// Revokes every live session of `user` but `keep`, with its event, and
/// tells the gateways when any ended.
async fn end_sessions(
    state: &AppState,
    user: shared::user::UserId,
    keep: Option<uuid::Uuid>,
    reason: RevokeReason,
) -> Result<u64, Error> {
    let mut tx = state.db.begin().await?;
    let count = sessions::revoke_all_but(&mut *tx, user, keep).await?;
    if count > 0 {
        let revoked = Event::SessionRevoked {
            user_id: user,
            session_id: None,
            count,
            reason,
        };
        emit(&mut tx, revoked).await?;
    }
    tx.commit().await?;
    if count > 0 {
        ended(state, user).await;
    }
    Ok(count)
}
