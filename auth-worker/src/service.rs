//! Registers every `auth.*` endpoint with its handler.

use runtime::service::{ResolveCaller, ServiceBuilder};
use shared::auth;

use crate::{AppState, handlers};

/// The auth worker's service, ready to serve; `callers` checks the caller
/// of every endpoint that takes one (the worker's own is
/// [`runtime::db::callers::Callers`]).
pub fn builder(state: AppState, callers: impl ResolveCaller) -> ServiceBuilder<AppState> {
    let max_in_flight = state.settings.service.max_in_flight;
    ServiceBuilder::new(auth::SERVICE, env!("CARGO_PKG_VERSION"), state, callers)
        .description("Accounts, credentials and access tokens")
        .max_in_flight(max_in_flight)
        // Its key set may have changed: token verifiers fetch it again.
        .announce(auth::KEYS_CHANGED)
        .endpoint::<auth::CreateUser, _, _, _>(handlers::create_user)
        .endpoint::<auth::GetUser, _, _, _>(handlers::get_user)
        .endpoint::<auth::Login, _, _, _>(handlers::login)
        .endpoint::<auth::Jwks, _, _, _>(handlers::jwks)
        .endpoint::<auth::Refresh, _, _, _>(handlers::refresh)
        .endpoint::<auth::Logout, _, _, _>(handlers::logout)
        .endpoint::<auth::ChangePassword, _, _, _>(handlers::change_password)
        .endpoint::<auth::MintAssertion, _, _, _>(handlers::proxy_assertion)
}
