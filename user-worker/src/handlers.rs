//! One plain async function per subject: `(state, ctx, request) -> reply`.

use shared::{RequestContext, User, user::GetRequest};

use crate::{AppState, Error, db};

/// `user.get`: the caller may read itself; an ADMIN may read anyone.
pub async fn get(state: AppState, ctx: RequestContext, request: GetRequest) -> Result<User, Error> {
    let caller = ctx.caller.ok_or(Error::NoCaller)?;
    if !caller.is_self_or_admin(request.id) {
        return Err(Error::Forbidden);
    }
    db::user_by_id(&state.db, request.id)
        .await?
        .ok_or(Error::UserNotFound)
}
