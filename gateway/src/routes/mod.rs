//! One file per resource, each with its own `router()`.

pub mod auth;
pub mod health;
pub mod users;
