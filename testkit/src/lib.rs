//! The integration tests' harness: what every test binary of the workspace
//! starts and calls, so that none of them copies it. A dev-dependency only
//! (`publish = false`); its items are public, so none is dead code in a test
//! binary that happens not to use it.
//!
//! * `nats`: a real `nats-server` per test, from the project's `nats.conf`
//!   on a free port with fresh passwords ([`NatsServer`]), or with any
//!   arguments and a log a test can wait on ([`NatsProcess`]); connections
//!   as one of its users.
//! * `db`: a fresh PostgreSQL database per test, provisioned and migrated
//!   as operators do ([`TestDb`]), and the URLs and settings of its roles.
//! * `api`: a client of the gateway's HTTP API ([`Api`]: sign-up, login,
//!   any [`Call`] made by an [`Account`], a token or nobody, and what its
//!   reply must be) and [`assert_error`], the contract's error body.
//! * `local`: a temporary directory and a free port.
//! * `wait`: [`eventually`], for a state no event announces.
//!
//! Each test binary builds its stack from these: `gateway/tests/api`'s
//! `spawn_app()` runs the gateway and the workers in process, and
//! `gateway/tests/processes`' `Stack` runs the built binaries.

// A harness unwraps: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

mod api;
mod db;
mod local;
mod nats;
mod wait;

pub use api::{Account, Api, Bearer, Call, PASSWORD, assert_error, error_fields};
pub use db::{TestDb, db_settings, provision_and_migrate, url_as};
pub use local::{TempDir, free_port};
pub use nats::{NATS_CONF, NatsProcess, NatsServer, Passwords, connect, nats_server_bin};
pub use wait::eventually;
