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
//! * `mail`: a real SMTP server that keeps what it is sent ([`MailCatcher`],
//!   Debian's aiosmtpd), and the caught mail, parsed ([`CaughtMail`]).
//! * `local`: a temporary directory.
//! * `wait`: [`eventually`], for a state no event announces.
//! * `net`: a free port ([`free_port`]) and PostgreSQL URLs
//!   ([`with_database`], [`with_user`], [`redact`], [`loopback_url`]).
//!
//! All but `net` are the default feature `stack`. `net` needs only `std`,
//! so `xtask` (compiled before every `cargo xtask …`) uses it with
//! `default-features = false` and compiles none of the harness.
//!
//! Each test binary builds its stack from these: `gateway/tests/api`'s
//! `spawn_app()` runs the gateway and the workers in process, and
//! `gateway/tests/processes`' `Stack` runs the built binaries.

// A harness unwraps: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "stack")]
mod api;
#[cfg(feature = "stack")]
mod db;
#[cfg(feature = "stack")]
mod local;
#[cfg(feature = "stack")]
mod mail;
#[cfg(feature = "stack")]
mod nats;
mod net;
#[cfg(feature = "stack")]
mod wait;

#[cfg(feature = "stack")]
pub use api::{Account, Api, Bearer, Call, PASSWORD, assert_error, error_fields};
#[cfg(feature = "stack")]
pub use db::{TestDb, db_settings, provision_and_migrate};
#[cfg(feature = "stack")]
pub use local::TempDir;
#[cfg(feature = "stack")]
pub use mail::{CaughtMail, MailCatcher, mail_catcher_python};
#[cfg(feature = "stack")]
pub use nats::{NATS_CONF, NatsProcess, NatsServer, Passwords, connect, nats_server_bin};
pub use net::{free_port, loopback_url, port_is_free, redact, with_database, with_user};
#[cfg(feature = "stack")]
pub use wait::eventually;
