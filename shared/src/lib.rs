//! The wire contract between the HTTP gateway and the workers.
//!
//! Everything that crosses NATS is defined here exactly once, so the two sides
//! cannot drift:
//!
//! * [`rpc`]: the [`Endpoint`](rpc::Endpoint) trait that binds a subject to its
//!   request and reply types, and the typed client ([`rpc::Rpc`]) the gateway
//!   calls through.
//! * [`auth`], [`user`], [`post`]: one type per request and reply, and one
//!   `Endpoint` impl per subject.
//! * [`paging`]: keyset paging (`Limit`, `Cursor`, `Page`).
//! * [`error`]: the error that travels in a reply ([`ServiceError`]) with its
//!   field details.
//! * [`headers`]: the caller, client address, request id and trace context
//!   headers, and `Access`: what a subject needs of its
//!   caller.
//! * [`types`]: the input rules (with `validator`), applied by the gateway
//!   and again by the worker that receives a request.
//! * [`service`]: the worker side of the NATS service API (ADR-32): queue
//!   groups, bounded concurrency, counted errors, drain on shutdown.
//! * `db` (feature `sqlx`): the workers' PostgreSQL settings and pool.
//! * [`nats`], [`settings`], [`telemetry`]: connection, layered configuration
//!   and logging, shared by every binary.

pub mod auth;
#[cfg(feature = "sqlx")]
pub mod db;
pub mod error;
pub mod headers;
pub mod nats;
pub mod paging;
pub mod post;
pub mod rpc;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod types;
pub mod user;

pub use error::{FieldError, ServiceError};
pub use headers::{Caller, RequestContext};
pub use rpc::Endpoint;
pub use user::{Role, User};
