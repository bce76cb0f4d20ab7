//! `auth.jwks` and `auth.proxy_assertion`: the public keys that verify
//! access tokens, and the identity assertions signed for protected
//! upstreams.

use runtime::service::Call;
use shared::{
    Caller,
    auth::{JwkSet, JwksRequest, ProxyAssertion, ProxyAssertionRequest},
    headers::Anonymous,
};
use tracing::info;

use crate::{AppState, Error, db::sessions};

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
    let session = sessions::authentication(&state.db, &caller).await?;
    if !request.roles.contains(&user.role) {
        info!(
            user_id = caller.id,
            audience = request.audience,
            "assertion refused: role"
        );
        return Err(Error::RoleNotAdmitted);
    }
    Ok(ProxyAssertion {
        assertion: state
            .tokens
            .issue_assertion(&user, &request.audience, &session)?,
        expires_in: state.tokens.assertion_ttl_secs(),
        user,
        amr: session.amr,
        auth_time: session.auth_time.unix_timestamp(),
    })
}
