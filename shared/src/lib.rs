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
//!
//! Nothing here runs anything: the processes' runtime (settings, logging,
//! connections, the workers' service loop) is the `runtime` crate. Feature
//! `sqlx` lets the workers read [`User`] and [`post::Post`] rows and turns
//! database errors into the [`ServiceError`] that travels.

pub mod auth;
pub mod error;
pub mod headers;
pub mod paging;
pub mod post;
pub mod rpc;
pub mod types;
pub mod user;

pub use error::{FieldError, ServiceError};
pub use headers::{Caller, RequestContext};
pub use rpc::{Done, Endpoint};
pub use user::{Role, User};
