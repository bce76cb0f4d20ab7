//! Registers every `user.*` and `post.*` endpoint with its handler.

use runtime::service::{ResolveCaller, ServiceBuilder};
use shared::{post, user};

use crate::{
    AppState,
    handlers::{posts, users},
};

/// The user worker's service, ready to serve; `callers` checks the caller
/// of every endpoint that takes one (the worker's own is
/// [`runtime::db::callers::Callers`]).
pub fn builder(state: AppState, callers: impl ResolveCaller) -> ServiceBuilder<AppState> {
    let max_in_flight = state.settings.service.max_in_flight;
    ServiceBuilder::new(user::SERVICE, env!("CARGO_PKG_VERSION"), state, callers)
        .description("User profiles and posts")
        .max_in_flight(max_in_flight)
        .endpoint::<user::Get, _, _, _>(users::get)
        .endpoint::<user::List, _, _, _>(users::list)
        .endpoint::<user::Update, _, _, _>(users::update)
        .endpoint::<user::Delete, _, _, _>(users::delete)
        .endpoint::<post::Create, _, _, _>(posts::create)
        .endpoint::<post::Get, _, _, _>(posts::get)
        .endpoint::<post::List, _, _, _>(posts::list)
        .endpoint::<post::Update, _, _, _>(posts::update)
        .endpoint::<post::Delete, _, _, _>(posts::delete)
}
