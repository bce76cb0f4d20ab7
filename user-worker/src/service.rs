//! Registers every `user.*` endpoint with its handler.

use shared::{service::ServiceBuilder, user};

use crate::{AppState, handlers};

/// The user worker's service, ready to serve.
pub fn builder(state: AppState) -> ServiceBuilder<AppState> {
    let max_in_flight = state.settings.service.max_in_flight;
    ServiceBuilder::new(user::SERVICE, env!("CARGO_PKG_VERSION"), state)
        .description("User profiles and posts")
        .max_in_flight(max_in_flight)
        .endpoint::<user::Get, _, _, _>(handlers::get)
}
