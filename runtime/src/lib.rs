//! What every process of the system runs on; the contract itself is in
//! `shared`.
//!
//! * [`settings`]: layered configuration (built-in defaults, an optional TOML
//!   file, `<PROCESS>_<SECTION>__<KEY>` environment variables) and the blocks
//!   every process or every worker has: `[log]`, `[service]`.
//! * [`telemetry`]: logs (text or JSON) and the W3C trace context across the
//!   hop, with optional OTLP export of the spans.
//! * [`nats`]: connecting as the process's NATS user with its inbox prefix.
//! * [`rpc`]: the gateway's side of a request: [`rpc::Rpc`], the typed client
//!   that calls an [`Endpoint`](shared::Endpoint) over the connection of its
//!   worker service (per-subject timeouts, context headers, fail-fast while
//!   disconnected, metrics), or in-process handlers for the benchmark.
//! * [`db`] (feature `postgres`): the workers' PostgreSQL settings and pool,
//!   and the database's answer to "is this caller's session live, and what is
//!   its role now".
//! * [`service`]: the workers' side of the NATS service API (ADR-32): endpoints
//!   bound to handlers, queue groups, bounded concurrency, counted errors,
//!   drain on shutdown.
//! * [`secret`]: passwords read from files.
//! * [`process`]: what each binary sets for itself first (no transparent
//!   huge pages).
//! * [`shutdown`]: the signal every process stops on.

#[cfg(feature = "postgres")]
pub mod db;
pub mod nats;
pub mod process;
pub mod rpc;
pub mod secret;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
