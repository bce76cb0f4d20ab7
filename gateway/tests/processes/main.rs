//! Tests that run the real binaries as separate processes. (The in-process
//! tests in `tests/api` cover behaviour; these cover what only a process
//! boundary shows: signals, drain, exit, lost connections, several copies,
//! several NATS servers.)
//!
//! * `scaling`: restarting every worker under load loses nothing; three
//!   copies of a worker share the load and one can leave under load.
//! * `faults`: a worker SIGKILLed mid-request (504), nats-server killed and
//!   restarted (503 at once, then recovery), PostgreSQL stopped and
//!   restarted (503, then recovery).
//! * `cluster`: the three-node NATS cluster of `nats-cluster/`, one node
//!   SIGKILLed under load.
//! * `overload`: 8× the logins one hashing thread keeps up with: it stays
//!   busy with logins that succeed, the rest get a fast 503 from the
//!   gateway (not the worker), `/me` keeps answering; one address beyond
//!   its share gets a 429 (held a second, so it does not retry at once)
//!   while another still logs in.
//! * `logins`: 64 concurrent logins of one account, and of a few, all
//!   succeed with the throttles lifted (no lock waits, no deadlock).
//! * `refresh`: a cookie refresh answered 504 while the auth-worker was
//!   stopped keeps the session (no reuse, no revocation).
//! * `pool`: the workers' PostgreSQL pool gives a connection back without a
//!   round trip when its query left it clean, and still rolls back a dropped
//!   transaction as it goes back and replaces a dead connection.
//! * `mail`: no lost mail: with verification mails in flight, the
//!   mail-worker SIGKILLed, the SMTP server down for 30 s and nats-server
//!   restarted, every mail arrives (at least once, duplicates recognizable
//!   by their Message-ID); the auth-worker killed while its relay publishes
//!   sends no event twice.
//! * `otlp`: spans exported to a collector of the test's own, one trace
//!   across the hop, sent on SIGTERM.
//!
//! The harness: `stack` (the built binaries, a `Stack` of real processes),
//! `load` (a `Load` of concurrent HTTP calls that records every reply's
//! status and timing, and the assertions made of it), `servers` (a private
//! PostgreSQL cluster a test may stop); nats-server, the test databases and
//! the HTTP client come from `testkit`.

// Test helpers unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

mod load;
mod servers;
mod stack;

mod cluster;
mod faults;
mod logins;
mod mail;
mod otlp;
mod overload;
mod pool;
mod refresh;
mod scaling;
mod secrets;
