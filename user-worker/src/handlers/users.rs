//! `user.*`: profiles, the ADMIN's user list, role changes, deletion.

use runtime::service::Call;
use shared::{
    Caller, Done, Role, User,
    events::{Event, RevokeReason},
    paging::{Cursor, Page},
    user::{DeleteRequest, GetRequest, ListRequest, UpdateRequest},
};

use crate::{
    AppState, Error,
    db::{outbox, users as db},
};

/// `user.get`: the caller may read itself; an ADMIN may read anyone.
pub async fn get(
    state: AppState,
    Call { caller, user, .. }: Call<Caller>,
    request: GetRequest,
) -> Result<User, Error> {
    // `GET /api/users/me`: checking the caller already read this row.
    if let Some(me) = user.filter(|me| me.id == request.id) {
        return Ok(me);
    }
    if !caller.is_self_or_admin(request.id) {
        return Err(Error::Forbidden("not allowed"));
    }
    runtime::db::users::by_id(&state.db, request.id)
        .await?
        .ok_or(Error::UserNotFound)
}

/// `user.list`: ADMIN only; a page of users in id order.
pub async fn list(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: ListRequest,
) -> Result<Page<User>, Error> {
    if !caller.is_admin() {
        return Err(Error::Forbidden("admin role required"));
    }
    let rows = db::users_after(
        &state.db,
        Cursor::start(request.cursor),
        request.limit.fetch(),
    )
    .await?;
    Ok(Page::from_rows(rows, request.limit, |u| u.id))
}

/// `user.update`: names for the user itself or an ADMIN; `role` only from an
/// ADMIN (the caller's current role). Demoting the last ADMIN is refused
/// (409); demoting an ADMIN revokes all of its sessions. A change of role
/// is the event `role.changed` (and `session.revoked` for what it ended). An update that names no
/// field changes nothing (not even `updatedAt`) and returns the user.
pub async fn update(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: UpdateRequest,
) -> Result<User, Error> {
    if !caller.is_self_or_admin(request.id) {
        return Err(Error::Forbidden("not allowed"));
    }
    if request.role.is_some() && !caller.is_admin() {
        return Err(Error::Forbidden("only an ADMIN may change a role"));
    }
    if request.is_empty() {
        return runtime::db::users::by_id(&state.db, request.id)
            .await?
            .ok_or(Error::UserNotFound);
    }
    let mut tx = state.db.begin().await?;
    let demoted =
        request.role == Some(Role::User) && db::ensure_another_admin(&mut tx, request.id).await?;
    let from = match request.role {
        Some(_) => db::lock_role(&mut *tx, request.id).await?,
        None => None,
    };
    let mut revoked = 0;
    if demoted {
        // Every session ends with the role it was opened under, in the same
        // transaction: the demoted user's tokens stop working at once.
        revoked = db::revoke_sessions(&mut *tx, request.id).await?;
    }
    let user = db::update_user(&mut *tx, &request)
        .await?
        .ok_or(Error::UserNotFound)?;
    if let Some(from) = from.filter(|from| *from != user.role) {
        let changed = Event::RoleChanged {
            user_id: user.id,
            email: user.email.clone(),
            from,
            to: user.role,
        };
        outbox::write(&mut *tx, changed).await?;
    }
    if revoked > 0 {
        let ended = Event::SessionRevoked {
            user_id: user.id,
            session_id: None,
            count: revoked,
            reason: RevokeReason::RoleChanged,
        };
        outbox::write(&mut *tx, ended).await?;
    }
    tx.commit().await?;
    if request.role.is_some() {
        state
            .notices
            .user_changed(shared::user::CHANGED, request.id)
            .await;
    }
    if demoted {
        tracing::info!(
            user_id = request.id,
            by = caller.id,
            "ADMIN demoted: sessions revoked"
        );
    }
    Ok(user)
}

/// `user.delete`: the user itself or an ADMIN. Deleting the last ADMIN is
/// refused (409). Sessions end with the user; posts stay, without author.
/// The event `user.deleted` is written with the deletion.
pub async fn delete(
    state: AppState,
    Call { caller, .. }: Call<Caller>,
    request: DeleteRequest,
) -> Result<Done, Error> {
    if !caller.is_self_or_admin(request.id) {
        return Err(Error::Forbidden("not allowed"));
    }
    let mut tx = state.db.begin().await?;
    db::ensure_another_admin(&mut tx, request.id).await?;
    let email = db::delete_user(&mut *tx, request.id)
        .await?
        .ok_or(Error::UserNotFound)?;
    let deleted = Event::UserDeleted {
        user_id: request.id,
        email,
    };
    outbox::write(&mut *tx, deleted).await?;
    tx.commit().await?;
    state
        .notices
        .user_changed(shared::user::CHANGED, request.id)
        .await;
    Ok(Done {})
}
