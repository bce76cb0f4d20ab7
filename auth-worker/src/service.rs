//! Registers every `auth.*` endpoint with its handler.

use runtime::service::{ResolveCaller, ServiceBuilder};
use shared::auth;

use crate::{
    AppState,
    handlers::{keys, password, sessions, users},
};

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
        .endpoint::<auth::CreateUser, _, _, _>(users::create)
        .endpoint::<auth::GetUser, _, _, _>(users::get)
        .endpoint::<auth::Login, _, _, _>(sessions::login)
        .endpoint::<auth::Jwks, _, _, _>(keys::jwks)
        .endpoint::<auth::Refresh, _, _, _>(sessions::refresh)
        .endpoint::<auth::Logout, _, _, _>(sessions::logout)
        .endpoint::<auth::ChangePassword, _, _, _>(password::change)
        .endpoint::<auth::MintAssertion, _, _, _>(keys::proxy_assertion)
}
