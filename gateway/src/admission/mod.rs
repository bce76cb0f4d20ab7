//! Admission control: which NATS requests the gateway sends now, which wait
//! their turn here, and which it refuses at once.
//!
//! Each call goes into a *lane*: `hashing` for the subjects that hash a
//! password with argon2id (`auth.login`, `auth.create_user`,
//! `auth.change_password`, and the removals of a second factor, which ask
//! for the password: each milliseconds of a core), `default` for
//! every other subject (a small fraction of that). A lane lets at most `limit` of its requests be
//! out on NATS at once; the rest wait here in arrival order. So a login
//! flood fills the hashing lane's queue, never the default lane's, and the
//! workers are only handed what they can start on; a queue in the gateway
//! costs a parked task, where one in a worker costs a round trip per refusal.
//!
//! * **The limit adapts** (Netflix concurrency-limits): the hashing lane's
//!   by *Vegas*: from each reply's round trip and the lane's fastest recent
//!   one it estimates how many of its requests wait inside the workers,
//!   `limit × (1 − fastest / this)`, and keeps that between `3·log10(limit)`
//!   and `6·log10(limit)`, so a login flood waits here, not in the
//!   auth-worker's slots that its cheap subjects need. The default lane's by
//!   *AIMD*: +1 per `limit` replies while in use, so cheap requests go out
//!   many at once (they are batched on the sockets, so a queue in the
//!   workers costs them little). Both cut the limit to 0.9× on a worker's "busy"
//!   503 or a timeout, and a "busy" request (its handler never ran) goes
//!   back into the lane, so the limit finds what the workers take, across
//!   however many copies and gateways there are, without being told.
//! * **The queue is bounded by time** (AWS Builders' Library, "Using load
//!   shedding to avoid overload"; CoDel's idea): a request that would wait
//!   longer than the lane's `max_wait_ms` is refused on arrival, from the
//!   pace at which the queue last moved, with 503 and a `Retry-After` of
//!   that wait. One that waited its `max_wait_ms` anyway is
//!   refused then. Nothing that the client has given up on is sent.
//! * **Per-client share**: in a lane with `max_per_client` set (the hashing
//!   lane by default), one client address may hold that many requests,
//!   waiting or sent; more get 429 with `Retry-After`. The address is the
//!   one login throttling uses (`http.trust_forwarded_for`). The default
//!   lane's share is generous (64): it only stops one address's flood from
//!   filling the queue everyone's cheap requests wait in.
//! * **A 429 is held** (`hold_refusals_ms`, bounded by `max_held_refusals`)
//!   before it is answered, whether this gate or a worker's throttle
//!   refused: a client that retries at once then sends a few refused
//!   requests a second, not thousands whose handling starves the others.
//!
//! A refusal never reaches NATS or a worker, is logged at debug level only
//! and counted in `gateway_admission_refused_total{lane,reason}`; each
//! lane's `gateway_admission_limit`, `…_in_flight` and `…_queued` are
//! gauges. A worker copy still answers "busy" past its own `max_in_flight`:
//! that is the last line when several gateways share the workers.
//!
//! Here: [`Calls`] (what handlers call), [`Admission`] (the lanes and the
//! held refusals) and `Outcome`; the queue, permits and refusals of one
//! lane are in `gate`, the adaptive limits in `limit`.

mod gate;
mod limit;

use std::{sync::Arc, time::Duration};

use runtime::rpc::{CallError, Rpc};
use serde::Deserialize;
use shared::{
    Endpoint, RequestContext,
    auth::{ChangePassword, CreateUser, Login},
    mfa::{RemovePasskey, RemoveTotp},
};

pub use gate::{LaneGate, Refusal};
pub use limit::Algorithm;

/// The two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Subjects that hash a password.
    Hashing,
    /// Everything else.
    Default,
}

impl Lane {
    /// The lane of `E`'s subject.
    pub fn of<E: Endpoint>() -> Self {
        let hashing = [
            Login::SUBJECT,
            CreateUser::SUBJECT,
            ChangePassword::SUBJECT,
            RemoveTotp::SUBJECT,
            RemovePasskey::SUBJECT,
        ];
        if hashing.contains(&E::SUBJECT) {
            Self::Hashing
        } else {
            Self::Default
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hashing => "hashing",
            Self::Default => "default",
        }
    }
}

/// `[admission]`: on or off, and each lane's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AdmissionSettings {
    /// Off: every request goes straight to NATS (the workers' own
    /// `max_in_flight` is then the only bound).
    pub enabled: bool,
    /// A 429 (a client past its share here, or a throttle in a worker) is
    /// answered after this long, so a client that retries at once, as a
    /// closed loop does, sends a few refused requests a second rather than
    /// thousands; 0 answers at once.
    pub hold_refusals_ms: u64,
    /// Refusals held at once, at most; past it they are answered at once
    /// (a held refusal costs a parked task and its open connection).
    pub max_held_refusals: u32,
    pub default: LaneSettings,
    pub hashing: LaneSettings,
}

/// One lane's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LaneSettings {
    pub algorithm: Algorithm,
    /// The limit before any reply has been seen.
    pub initial_limit: u32,
    /// The adaptive limit stays within these.
    pub min_limit: u32,
    pub max_limit: u32,
    /// A request that would wait longer than this is refused (503).
    pub max_wait_ms: u64,
    /// The most requests one client address may hold in the lane, waiting
    /// or sent; more get 429. 0: no per-client bound.
    pub max_per_client: u32,
    /// The most requests waiting in the lane, whatever the wait.
    pub max_queue: u32,
}

impl LaneSettings {
    fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

/// Every lane of one gateway.
#[derive(Debug)]
pub struct Admission {
    enabled: bool,
    default: LaneGate,
    hashing: LaneGate,
    hold: Duration,
    max_held: u32,
    held: std::sync::atomic::AtomicU32,
    held_gauge: metrics::Gauge,
}

impl Admission {
    pub fn new(settings: &AdmissionSettings) -> Self {
        Self {
            enabled: settings.enabled,
            default: LaneGate::new(Lane::Default, settings.default.clone()),
            hashing: LaneGate::new(Lane::Hashing, settings.hashing.clone()),
            hold: Duration::from_millis(settings.hold_refusals_ms),
            max_held: settings.max_held_refusals,
            held: std::sync::atomic::AtomicU32::new(0),
            held_gauge: metrics::gauge!("gateway_admission_held_refusals"),
        }
    }

    /// `result`, after [`AdmissionSettings::hold_refusals_ms`] when it is a
    /// 429 and fewer than `max_held_refusals` are held.
    async fn hold<T>(&self, result: Result<T, CallError>) -> Result<T, CallError> {
        use std::sync::atomic::Ordering;
        let too_many = match &result {
            Err(CallError::Refused(e) | CallError::Service(e)) => e.status_code == 429,
            _ => false,
        };
        if !too_many || self.hold.is_zero() {
            return result;
        }
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.max_held).then_some(held + 1)
            });
        if taken.is_err() {
            return result;
        }
        /// Gives the place back however the wait ends (a client that
        /// leaves drops it).
        struct Held<'a>(&'a Admission);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                let left = self.0.held.fetch_sub(1, Ordering::AcqRel) - 1;
                self.0.held_gauge.set(left);
            }
        }
        let held = Held(self);
        self.held_gauge.set(self.held.load(Ordering::Acquire));
        tokio::time::sleep(self.hold).await;
        drop(held);
        result
    }

    pub fn lane(&self, lane: Lane) -> &LaneGate {
        match lane {
            Lane::Default => &self.default,
            Lane::Hashing => &self.hashing,
        }
    }
}

/// The gateway's NATS calls: [`Rpc`] behind [`Admission`]. Handlers call
/// `state.nats.call::<E>(&ctx, &request)`.
#[derive(Debug, Clone)]
pub struct Calls {
    rpc: Rpc,
    admission: Arc<Admission>,
}

impl Calls {
    pub fn new(rpc: Rpc, admission: Admission) -> Self {
        Self {
            rpc,
            admission: Arc::new(admission),
        }
    }

    /// The NATS client underneath, without admission (key fetches, service
    /// checks, subscriptions).
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Sends one request on `E::SUBJECT` once its lane admits it; the lane
    /// learns from how the reply came back. A worker's "busy" (the handler
    /// did not run) goes back into the lane, up to [`BUSY_RETRIES`] times.
    pub async fn call<E: Endpoint>(
        &self,
        ctx: &RequestContext,
        request: &E::Request,
    ) -> Result<E::Reply, CallError> {
        let result = if self.admission.enabled {
            self.admitted::<E>(ctx, request).await
        } else {
            self.rpc.call::<E>(ctx, request).await
        };
        self.admission.hold(result).await
    }

    async fn admitted<E: Endpoint>(
        &self,
        ctx: &RequestContext,
        request: &E::Request,
    ) -> Result<E::Reply, CallError> {
        let gate = self.admission.lane(Lane::of::<E>());
        let mut tries = 0;
        loop {
            let mut permit = gate.acquire(ctx.client).await?;
            let result = self.rpc.call::<E>(ctx, request).await;
            permit.outcome = Outcome::of(gate.lane, &result);
            drop(permit);
            match result {
                Err(CallError::Service(e)) if e.is_busy() => {
                    if tries == BUSY_RETRIES {
                        // As full as the lane: say so as the lane would.
                        return Err(gate.refuse(Refusal::Overloaded, 1));
                    }
                    tries += 1;
                }
                result => return result,
            }
        }
    }
}

/// How often a request a worker was too busy to start is sent again; then
/// it is refused as the lane refuses (503 "overloaded").
pub const BUSY_RETRIES: u32 = 3;

/// How a sent request ended, for the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Replied,
    Overloaded,
    Ignored,
}

impl Outcome {
    /// What a result says about the lane's load.
    fn of<T>(lane: Lane, result: &Result<T, CallError>) -> Self {
        match result {
            Ok(_) => Self::Replied,
            // The worker had no room, or did not answer in time: too much
            // is out.
            Err(CallError::Service(e)) if e.status_code == 503 => Self::Overloaded,
            Err(CallError::Timeout(..)) => Self::Overloaded,
            // In the hashing lane, an error reply that ran no hash (a
            // throttle's 429, an email already taken) is many times faster
            // than a login: taken as the no-queue latency, it would make
            // every real login look queued and shrink the limit. Only a
            // wrong password (401) or a wrong current one (403) was hashed.
            Err(CallError::Service(e))
                if lane == Lane::Hashing && !matches!(e.status_code, 401 | 403) =>
            {
                Self::Ignored
            }
            // A reply (an error one too) took a real round trip.
            Err(CallError::Service(_)) => Self::Replied,
            // No worker, no connection: says nothing about load.
            Err(_) => Self::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::ServiceError;

    use super::*;

    /// A lane of a fixed `limit` (the gate's tests share it).
    pub(super) fn settings(limit: u32, max_wait_ms: u64, max_per_client: u32) -> LaneSettings {
        LaneSettings {
            algorithm: Algorithm::Aimd,
            initial_limit: limit,
            min_limit: limit,
            max_limit: limit,
            max_wait_ms,
            max_per_client,
            max_queue: 1000,
        }
    }

    #[test]
    fn the_hashing_subjects_have_their_own_lane() {
        assert_eq!(Lane::of::<Login>(), Lane::Hashing);
        assert_eq!(Lane::of::<CreateUser>(), Lane::Hashing);
        assert_eq!(Lane::of::<ChangePassword>(), Lane::Hashing);
        assert_eq!(Lane::of::<RemoveTotp>(), Lane::Hashing);
        assert_eq!(Lane::of::<RemovePasskey>(), Lane::Hashing);
        assert_eq!(Lane::of::<shared::mfa::StepUp>(), Lane::Default);
        assert_eq!(Lane::of::<shared::auth::Refresh>(), Lane::Default);
        assert_eq!(Lane::of::<shared::user::Get>(), Lane::Default);
    }

    fn admission(hold_ms: u64, max_held: u32) -> Admission {
        Admission::new(&AdmissionSettings {
            enabled: true,
            hold_refusals_ms: hold_ms,
            max_held_refusals: max_held,
            default: settings(4, 1000, 0),
            hashing: settings(4, 1000, 0),
        })
    }

    fn refused(status: u16) -> Result<(), CallError> {
        Err(CallError::Refused(ServiceError::new(status, "x")))
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_held_before_it_is_answered_and_past_the_bound_answered_at_once() {
        let admission = admission(1000, 1);
        let started = tokio::time::Instant::now();
        let first = admission.hold(refused(429));
        let second = async {
            // Once the first is held, the bound (1) is reached.
            tokio::task::yield_now().await;
            let answered = admission.hold(refused(429)).await;
            (answered, started.elapsed())
        };
        let (first, (second, second_after)) = tokio::join!(first, second);
        assert!(first.is_err() && second.is_err());
        assert_eq!(second_after, Duration::ZERO, "past the bound: at once");
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(1000),
            "held for the hold"
        );
        // The place was given back; other statuses are never held.
        let again = tokio::time::Instant::now();
        admission.hold(refused(429)).await.ok();
        assert_eq!(again.elapsed(), Duration::from_millis(1000));
        let now = tokio::time::Instant::now();
        admission.hold(refused(503)).await.ok();
        admission.hold(Ok(())).await.unwrap();
        assert_eq!(now.elapsed(), Duration::ZERO);
        let off = admission_off();
        let now = tokio::time::Instant::now();
        off.hold(refused(429)).await.ok();
        assert_eq!(now.elapsed(), Duration::ZERO);
    }

    fn admission_off() -> Admission {
        admission(0, 10)
    }

    #[test]
    fn only_replies_that_ran_a_hash_feed_the_hashing_lanes_estimate() {
        let reply = |status: u16| -> Result<(), CallError> {
            Err(CallError::Service(ServiceError::new(status, "x")))
        };
        for status in [429, 409, 400, 404] {
            assert_eq!(
                Outcome::of(Lane::Hashing, &reply(status)),
                Outcome::Ignored,
                "{status}"
            );
            assert_eq!(
                Outcome::of(Lane::Default, &reply(status)),
                Outcome::Replied,
                "{status}"
            );
        }
        for status in [401, 403] {
            assert_eq!(
                Outcome::of(Lane::Hashing, &reply(status)),
                Outcome::Replied,
                "{status}"
            );
        }
        assert_eq!(Outcome::of(Lane::Hashing, &Ok(())), Outcome::Replied);
        assert_eq!(Outcome::of(Lane::Hashing, &reply(503)), Outcome::Overloaded);
    }
}
