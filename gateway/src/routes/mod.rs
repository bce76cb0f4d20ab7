//! One file per resource, each with its own `router()`. Every route is
//! registered through `utoipa_axum`'s `routes!`, which puts it in the OpenAPI
//! document at the same time (a test checks nothing bypasses that).

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{AppState, openapi::ApiDoc};

pub mod account;
pub mod auth;
pub mod docs;
pub mod health;
pub mod mfa;
pub mod posts;
pub mod session;
pub mod users;

/// Every route of the API, with its document.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/auth", auth::router())
        .nest("/api/users", users::router())
        .nest("/api/users/me", account::router())
        .nest("/api/posts", posts::router())
        .merge(session::router())
        .merge(mfa::router())
        .merge(health::router())
        .merge(docs::router())
}
