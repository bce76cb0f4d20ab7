//! Integration tests: one binary, every test with its own `nats-server`
//! (started from the project's `nats.conf` on a random port), its own
//! PostgreSQL database, and the real workers and gateway, in this process
//! (`helpers::spawn_app`, on the servers and the HTTP client of `testkit`).

// Test helpers unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

mod helpers;

mod account_flows;
mod account_routes;
mod auth;
mod browser;
mod db_roles;
mod emails;
mod errors;
mod fair_shares;
mod hardening;
mod lifecycle;
mod mail;
mod mfa;
mod nats_permissions;
mod nats_tls;
mod openapi;
mod posts;
mod proxy;
mod recovery;
mod service_api;
mod session_hygiene;
mod sessions;
mod throttle_locks;
mod tokens;
mod upstream;
mod users;
