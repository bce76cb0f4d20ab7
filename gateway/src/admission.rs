//! Admission control: which NATS requests the gateway sends now, which wait
//! their turn here, and which it refuses at once.
//!
//! Each call goes into a *lane*: `hashing` for the subjects that hash a
//! password with argon2id (`auth.login`, `auth.create_user`,
//! `auth.change_password`, each ~10 ms of a core), `default` for every other
//! subject (well under 1 ms). A lane lets at most `limit` of its requests be
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
//!   many at once (they are batched on the sockets; Vegas held `/me` to
//!   half its throughput). Both cut the limit to 0.9× on a worker's "busy"
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

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use runtime::rpc::{CallError, Rpc};
use serde::Deserialize;
use shared::{
    Endpoint, RequestContext, ServiceError,
    auth::{ChangePassword, CreateUser, Login},
    headers::ClientAddress,
};
use tokio::sync::oneshot;

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
        if [Login::SUBJECT, CreateUser::SUBJECT, ChangePassword::SUBJECT].contains(&E::SUBJECT) {
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

/// How a lane's limit adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Round trips against the fastest recent one: keeps the workers' own
    /// queue short (the hashing lane: a login queued in the auth-worker
    /// holds one of its `max_in_flight` slots, which its other subjects
    /// need).
    Vegas,
    /// Grows by one per `limit` replies while in use, ×0.9 on a worker's
    /// "busy" or a timeout: fills the workers' slots (the default lane:
    /// cheap requests run best many at once, batched on the sockets).
    Aimd,
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
/// `state.rpc.call::<E>(&ctx, &request)`.
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

/// One lane: its limit, what is out, who waits.
#[derive(Debug)]
pub struct LaneGate {
    lane: Lane,
    settings: LaneSettings,
    state: Mutex<LaneState>,
    gauges: Gauges,
}

#[derive(Debug)]
struct Gauges {
    limit: metrics::Gauge,
    in_flight: metrics::Gauge,
    queued: metrics::Gauge,
}

#[derive(Debug)]
struct LaneState {
    limit: Limit,
    in_flight: u32,
    queue: VecDeque<Waiter>,
    /// Requests each client address holds in the lane (only counted when
    /// `max_per_client` is set).
    per_client: HashMap<IpAddr, u32>,
    /// The mean time between two replies while requests wait (EWMA): how
    /// fast the queue moves, for the wait estimate.
    interval: Option<Duration>,
    /// The last reply while requests waited.
    last_done: Option<Instant>,
    /// The next waiter's id.
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    since: Instant,
    wake: oneshot::Sender<()>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The lane's queue is as long as `max_wait_ms` allows (503).
    Overloaded,
    /// The request waited `max_wait_ms` without a turn (503).
    WaitedTooLong,
    /// The client holds `max_per_client` requests already (429).
    ClientShare,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Self::Overloaded => "overloaded",
            Self::WaitedTooLong => "waited_too_long",
            Self::ClientShare => "client_share",
        }
    }
}

impl LaneGate {
    fn new(lane: Lane, settings: LaneSettings) -> Self {
        let min = f64::from(settings.min_limit.max(1));
        let max = f64::from(settings.max_limit).max(min);
        let initial = f64::from(settings.initial_limit).clamp(min, max);
        let name = lane.name();
        let gauges = Gauges {
            limit: metrics::gauge!("gateway_admission_limit", "lane" => name),
            in_flight: metrics::gauge!("gateway_admission_in_flight", "lane" => name),
            queued: metrics::gauge!("gateway_admission_queued", "lane" => name),
        };
        gauges.limit.set(initial);
        let limit = Limit::new(settings.algorithm, initial, min, max);
        Self {
            lane,
            settings,
            state: Mutex::new(LaneState {
                limit,
                in_flight: 0,
                queue: VecDeque::new(),
                per_client: HashMap::new(),
                interval: None,
                last_done: None,
                next_id: 0,
            }),
            gauges,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // The state stays consistent at every unlock; a panic elsewhere
        // while holding it cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current limit, sent requests and waiting ones (the gauges say
    /// the same to operators).
    #[cfg(test)]
    fn snapshot(&self) -> (u32, u32, usize) {
        let state = self.lock();
        (state.limit.current(), state.in_flight, state.queue.len())
    }

    /// Waits for this lane's turn, or refuses.
    async fn acquire(&self, client: Option<ClientAddress>) -> Result<Permit<'_>, CallError> {
        let client = client.filter(|_| self.settings.max_per_client > 0);
        let wake = {
            let mut state = self.lock();
            if let Some(client) = client {
                let held = state.per_client.entry(client.masked()).or_default();
                if *held >= self.settings.max_per_client {
                    drop(state);
                    return Err(self.refuse(Refusal::ClientShare, 1));
                }
                *held += 1;
            }
            if state.queue.is_empty() && state.in_flight < state.limit.current() {
                state.in_flight += 1;
                self.gauges.in_flight.set(state.in_flight);
                None
            } else {
                let wait = state.expected_wait(state.queue.len() + 1);
                let full = state.queue.len() >= self.settings.max_queue as usize;
                if full || wait > self.settings.max_wait() {
                    state.release_client(client);
                    drop(state);
                    return Err(self.refuse(Refusal::Overloaded, retry_after(wait)));
                }
                let (tx, rx) = oneshot::channel();
                let id = state.next_id;
                state.next_id += 1;
                state.queue.push_back(Waiter {
                    id,
                    since: Instant::now(),
                    wake: tx,
                });
                self.gauges.queued.set(state.queue.len() as f64);
                Some((id, rx))
            }
        };
        let Some((id, rx)) = wake else {
            return Ok(Permit {
                gate: self,
                client,
                started: Instant::now(),
                outcome: Outcome::Ignored,
            });
        };
        let mut waiting = Waiting {
            gate: self,
            id,
            client,
            rx,
            admitted: false,
        };
        match tokio::time::timeout(self.settings.max_wait(), &mut waiting.rx).await {
            // The slot was handed over with `in_flight` counted.
            Ok(Ok(())) => {
                waiting.admitted = true;
                Ok(Permit {
                    gate: self,
                    client,
                    started: Instant::now(),
                    outcome: Outcome::Ignored,
                })
            }
            // Out of time: give the place up (`Waiting`'s drop).
            _ => {
                drop(waiting);
                let retry = {
                    let state = self.lock();
                    retry_after(state.expected_wait(state.queue.len()))
                };
                Err(self.refuse(Refusal::WaitedTooLong, retry))
            }
        }
    }

    fn refuse(&self, why: Refusal, retry_after: u64) -> CallError {
        metrics::counter!(
            "gateway_admission_refused_total",
            "lane" => self.lane.name(),
            "reason" => why.name()
        )
        .increment(1);
        let error = match why {
            Refusal::ClientShare => ServiceError {
                retry_after: Some(retry_after),
                ..ServiceError::new(429, "too many requests from this address, retry later")
            },
            Refusal::Overloaded | Refusal::WaitedTooLong => ServiceError {
                retry_after: Some(retry_after),
                ..ServiceError::unavailable("overloaded, retry later")
            },
        };
        CallError::Refused(error)
    }

    /// A sent request ended: learn from it, free its slot, wake whoever
    /// may go now.
    fn release(&self, permit: &Permit<'_>) {
        let mut state = self.lock();
        state.release_client(permit.client);
        let now = Instant::now();
        let rtt = now - permit.started;
        let in_flight = state.in_flight;
        // The queue's pace, measured only while it is not empty (then the
        // lane runs at its limit).
        if state.queue.is_empty() {
            state.last_done = None;
        } else {
            if let Some(last) = state.last_done {
                let gap = now - last;
                state.interval = Some(match state.interval {
                    None => gap,
                    Some(mean) => mean.mul_f64(0.95) + gap.mul_f64(0.05),
                });
            }
            state.last_done = Some(now);
        }
        match permit.outcome {
            Outcome::Replied => state.limit.on_reply(rtt, in_flight),
            Outcome::Overloaded => state.limit.on_overload(),
            Outcome::Ignored => {}
        }
        state.in_flight -= 1;
        self.hand_over(&mut state);
        self.gauges.limit.set(state.limit.current());
        self.gauges.in_flight.set(state.in_flight);
        self.gauges.queued.set(state.queue.len() as f64);
    }

    /// Waiter `id` left without using a slot it may have been handed.
    fn leave(&self, id: u64, client: Option<ClientAddress>, had_slot: bool) {
        let mut state = self.lock();
        state.release_client(client);
        // Out of time, it is among the oldest: look from the front.
        if let Some(at) = state.queue.iter().position(|w| w.id == id) {
            state.queue.remove(at);
        }
        if had_slot {
            state.in_flight -= 1;
            self.hand_over(&mut state);
            self.gauges.in_flight.set(state.in_flight);
        }
        self.gauges.queued.set(state.queue.len() as f64);
    }

    /// Gives free slots to the longest waiting requests still waiting.
    fn hand_over(&self, state: &mut LaneState) {
        while state.in_flight < state.limit.current() {
            let Some(waiter) = state.queue.pop_front() else {
                return;
            };
            // Its wait ran out (it refuses itself), or its caller left.
            if waiter.since.elapsed() >= self.settings.max_wait() || waiter.wake.is_closed() {
                continue;
            }
            state.in_flight += 1;
            if waiter.wake.send(()).is_err() {
                state.in_flight -= 1;
            }
        }
    }
}

impl LaneState {
    /// How long the `position`-th waiter would wait at the pace the queue
    /// last moved.
    fn expected_wait(&self, position: usize) -> Duration {
        // Never queued yet: no estimate; each waiter's own `max_wait` bounds it.
        self.interval
            .map_or(Duration::ZERO, |gap| gap.mul_f64(position as f64))
    }

    fn release_client(&mut self, client: Option<ClientAddress>) {
        let Some(client) = client else { return };
        let key = client.masked();
        if let Some(held) = self.per_client.get_mut(&key) {
            *held -= 1;
            if *held == 0 {
                self.per_client.remove(&key);
            }
        }
    }
}

/// `Retry-After` for a wait: whole seconds, at least 1, at most a minute.
fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().clamp(1.0, 60.0) as u64
}

/// A slot in a lane while the request is out, given back on drop (also
/// when the caller's future is dropped mid-request).
struct Permit<'a> {
    gate: &'a LaneGate,
    client: Option<ClientAddress>,
    started: Instant,
    outcome: Outcome,
}

/// A place in a lane's queue. Dropped without being admitted (out of time,
/// or the caller's future dropped), it gives back the slot it may have been
/// handed in the meantime.
struct Waiting<'a> {
    gate: &'a LaneGate,
    id: u64,
    client: Option<ClientAddress>,
    rx: oneshot::Receiver<()>,
    admitted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.admitted {
            return;
        }
        // After `close`, a slot sent before it is still received.
        self.rx.close();
        let had_slot = self.rx.try_recv().is_ok();
        self.gate.leave(self.id, self.client, had_slot);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.gate.release(self);
    }
}

/// A lane's adaptive limit.
#[derive(Debug)]
enum Limit {
    Vegas(Vegas),
    Aimd(Aimd),
}

impl Limit {
    fn new(algorithm: Algorithm, initial: f64, min: f64, max: f64) -> Self {
        match algorithm {
            Algorithm::Vegas => Self::Vegas(Vegas::new(initial, min, max)),
            Algorithm::Aimd => Self::Aimd(Aimd {
                limit: initial,
                min,
                max,
            }),
        }
    }

    fn current(&self) -> u32 {
        match self {
            Self::Vegas(v) => v.limit as u32,
            Self::Aimd(a) => a.limit as u32,
        }
    }

    fn on_reply(&mut self, rtt: Duration, in_flight: u32) {
        match self {
            Self::Vegas(v) => v.on_reply(rtt, in_flight),
            Self::Aimd(a) => a.on_reply(in_flight),
        }
    }

    /// A worker was busy or did not answer in time: ×0.9 at once.
    fn on_overload(&mut self) {
        let (limit, min) = match self {
            Self::Vegas(v) => (&mut v.limit, v.min),
            Self::Aimd(a) => (&mut a.limit, a.min),
        };
        *limit = (*limit * 0.9).max(min);
    }
}

/// Netflix concurrency-limits' `AIMDLimit`: +1 per `limit` replies while
/// the lane uses at least half of it (so an idle lane does not drift up).
#[derive(Debug)]
struct Aimd {
    limit: f64,
    min: f64,
    max: f64,
}

impl Aimd {
    fn on_reply(&mut self, in_flight: u32) {
        if f64::from(in_flight) * 2.0 >= self.limit {
            self.limit = (self.limit + 1.0 / self.limit).min(self.max);
        }
    }
}

/// Netflix concurrency-limits' `VegasLimit` (defaults: alpha `3·log10`,
/// beta `6·log10`, threshold `log10`, no smoothing), plus AIMD's
/// multiplicative decrease on an overload signal. Its probe differs: it
/// takes the fastest reply of the window since the last probe as the
/// no-queue latency, not the one reply at hand (with which the limit jumped
/// by `6·log10` per reply until it was far past what the workers hold).
#[derive(Debug)]
struct Vegas {
    limit: f64,
    min: f64,
    max: f64,
    /// The fastest recent round trip: the lane's no-queue latency.
    rtt_noload: Option<Duration>,
    /// Replies until the no-queue latency is measured afresh (so that a
    /// slower backend is not judged against a faster past).
    until_probe: u64,
    /// The fastest reply since the last probe.
    window_min: Option<Duration>,
}

impl Vegas {
    /// Replies between probes, per unit of limit (Netflix's jittered
    /// `probeMultiplier` of 30, without the jitter).
    const PROBE_EVERY: f64 = 30.0;

    fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            limit: initial,
            min,
            max,
            rtt_noload: None,
            until_probe: (Self::PROBE_EVERY * initial) as u64,
            window_min: None,
        }
    }

    fn on_reply(&mut self, rtt: Duration, in_flight: u32) {
        self.window_min = Some(self.window_min.map_or(rtt, |m| m.min(rtt)));
        self.until_probe = self.until_probe.saturating_sub(1);
        if self.until_probe == 0 {
            // The fastest of the last window becomes the no-queue latency:
            // a backend that got slower is not judged against its past,
            // and the limit does not jump as it would from one sample.
            self.until_probe = (Self::PROBE_EVERY * self.limit) as u64;
            self.rtt_noload = self.window_min.take();
            return;
        }
        let noload = match self.rtt_noload {
            Some(noload) if rtt >= noload => noload,
            _ => {
                self.rtt_noload = Some(rtt);
                return;
            }
        };
        // Not using the limit: no evidence it should grow.
        if f64::from(in_flight) * 2.0 < self.limit {
            return;
        }
        let queued =
            (self.limit * (1.0 - noload.as_secs_f64() / rtt.as_secs_f64().max(1e-9))).ceil();
        let log = self.limit.log10().max(1.0);
        let (alpha, beta, threshold) = (3.0 * log, 6.0 * log, log);
        let next = if queued <= threshold {
            self.limit + beta
        } else if queued < alpha {
            self.limit + log
        } else if queued > beta {
            self.limit - log
        } else {
            return;
        };
        self.limit = next.clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn settings(limit: u32, max_wait_ms: u64, max_per_client: u32) -> LaneSettings {
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

    fn client(n: u8) -> Option<ClientAddress> {
        Some(ClientAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))))
    }

    fn status(result: Result<Permit<'_>, CallError>) -> (u16, Option<u64>) {
        match result {
            Err(CallError::Refused(e)) => (e.status_code, e.retry_after),
            Err(other) => panic!("not a refusal: {other}"),
            Ok(_) => (200, None),
        }
    }

    #[test]
    fn the_hashing_subjects_have_their_own_lane() {
        assert_eq!(Lane::of::<Login>(), Lane::Hashing);
        assert_eq!(Lane::of::<CreateUser>(), Lane::Hashing);
        assert_eq!(Lane::of::<ChangePassword>(), Lane::Hashing);
        assert_eq!(Lane::of::<shared::auth::Refresh>(), Lane::Default);
        assert_eq!(Lane::of::<shared::user::Get>(), Lane::Default);
    }

    #[tokio::test]
    async fn within_the_limit_requests_go_at_once_beyond_it_they_wait_in_order() {
        let gate = LaneGate::new(Lane::Default, settings(1, 10_000, 0));
        let first = gate.acquire(None).await.unwrap();
        assert_eq!(gate.snapshot(), (1, 1, 0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate = &gate;
        let waiting = |n: u32| {
            let order = Arc::clone(&order);
            async move {
                let permit = gate.acquire(None).await.unwrap();
                order.lock().unwrap().push(n);
                drop(permit);
            }
        };
        let (second, third) = (waiting(2), waiting(3));
        let both = futures::future::join(second, third);
        tokio::pin!(both);
        // Both queue behind the first …
        assert!(futures::poll!(&mut both).is_pending());
        assert_eq!(gate.snapshot(), (1, 1, 2));
        // … and go in arrival order once it is done.
        drop(first);
        both.await;
        assert_eq!(*order.lock().unwrap(), [2, 3]);
        assert_eq!(gate.snapshot(), (1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_longer_than_the_wait_allows_is_refused_at_once_with_retry_after() {
        let gate = LaneGate::new(Lane::Default, settings(1, 100, 0));
        // The queue moves one place per 60 ms: two replies that far apart
        // while someone waited.
        let first = gate.acquire(None).await.unwrap();
        let second = gate.acquire(None);
        let third = gate.acquire(None);
        tokio::pin!(second, third);
        assert!(futures::poll!(&mut second).is_pending());
        assert!(futures::poll!(&mut third).is_pending());
        drop(first);
        let second = second.await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        drop(second);
        let _third = third.await.unwrap();
        assert!(
            gate.lock()
                .interval
                .is_some_and(|i| i >= Duration::from_millis(60))
        );
        // The next would wait about 60 ms: it queues. The one after it,
        // 120 ms: refused on arrival (the clock is paused: waiting would
        // move it), with the wait as its retry hint (at least a second).
        let next = gate.acquire(None);
        tokio::pin!(next);
        assert!(futures::poll!(&mut next).is_pending());
        let refused_at = tokio::time::Instant::now();
        assert_eq!(status(gate.acquire(None).await), (503, Some(1)));
        assert_eq!(refused_at.elapsed(), Duration::ZERO);
        assert_eq!(gate.snapshot(), (1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_waited_its_max_wait_is_refused_and_frees_its_place() {
        let gate = LaneGate::new(Lane::Default, settings(1, 100, 0));
        let held = gate.acquire(None).await.unwrap();
        assert_eq!(status(gate.acquire(None).await), (503, Some(1)));
        // Its place is not handed a slot later.
        drop(held);
        assert_eq!(gate.snapshot(), (1, 0, 0));
        let _next = gate.acquire(None).await.unwrap();
        assert_eq!(gate.snapshot(), (1, 1, 0));
    }

    #[tokio::test]
    async fn a_caller_that_leaves_while_waiting_gives_its_turn_to_the_next() {
        let gate = LaneGate::new(Lane::Default, settings(1, 10_000, 0));
        let held = gate.acquire(None).await.unwrap();
        {
            let leaving = gate.acquire(None);
            tokio::pin!(leaving);
            assert!(futures::poll!(&mut leaving).is_pending());
        }
        let next = gate.acquire(None);
        tokio::pin!(next);
        assert!(futures::poll!(&mut next).is_pending());
        drop(held);
        let _next = next.await.unwrap();
        assert_eq!(gate.snapshot(), (1, 1, 0));
    }

    #[tokio::test]
    async fn one_address_gets_its_share_and_a_429_beyond_it_others_still_get_in() {
        let gate = LaneGate::new(Lane::Hashing, settings(10, 10_000, 2));
        let a1 = gate.acquire(client(1)).await.unwrap();
        let _a2 = gate.acquire(client(1)).await.unwrap();
        assert_eq!(status(gate.acquire(client(1)).await), (429, Some(1)));
        let b = gate.acquire(client(2)).await.unwrap();
        // Requests without an address are not counted against anyone.
        let _none = gate.acquire(None).await.unwrap();
        drop(a1);
        let _a3 = gate.acquire(client(1)).await.unwrap();
        drop(b);
        assert_eq!(gate.lock().per_client.len(), 1);
    }

    fn vegas_limit(limit: &Limit) -> f64 {
        match limit {
            Limit::Vegas(v) => v.limit,
            Limit::Aimd(a) => a.limit,
        }
    }

    #[test]
    fn vegas_grows_while_replies_are_fast_and_shrinks_when_they_queue() {
        let mut limit = Limit::new(Algorithm::Vegas, 10.0, 1.0, 100.0);
        let fast = Duration::from_millis(1);
        limit.on_reply(fast, 10);
        for _ in 0..20 {
            limit.on_reply(fast, limit.current());
        }
        let grown = vegas_limit(&limit);
        assert!(grown > 10.0, "{grown}");
        // Round trips four times the fastest: three quarters of what is
        // out is queued in the workers.
        for _ in 0..20 {
            limit.on_reply(fast * 4, limit.current());
        }
        assert!(vegas_limit(&limit) < grown, "{limit:?} !< {grown}");
        // A busy worker cuts it at once, down to the minimum at most.
        let before = vegas_limit(&limit);
        limit.on_overload();
        assert!((vegas_limit(&limit) - before * 0.9).abs() < 1e-9);
        for _ in 0..100 {
            limit.on_overload();
        }
        assert_eq!(vegas_limit(&limit), 1.0);
    }

    #[test]
    fn aimd_grows_by_one_per_limit_replies_and_backs_off_on_a_busy_worker() {
        let mut limit = Limit::new(Algorithm::Aimd, 10.0, 2.0, 12.0);
        for _ in 0..10 {
            limit.on_reply(Duration::from_millis(50), 10);
        }
        assert_eq!(limit.current(), 10);
        limit.on_reply(Duration::from_millis(50), 10);
        assert_eq!(limit.current(), 11);
        for _ in 0..100 {
            limit.on_reply(Duration::from_millis(50), 12);
        }
        assert_eq!(limit.current(), 12, "its maximum");
        limit.on_overload();
        assert_eq!(limit.current(), 10);
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

    #[test]
    fn an_idle_lane_does_not_grow_its_limit() {
        for algorithm in [Algorithm::Vegas, Algorithm::Aimd] {
            let mut limit = Limit::new(algorithm, 10.0, 1.0, 100.0);
            for _ in 0..50 {
                limit.on_reply(Duration::from_millis(1), 1);
            }
            assert_eq!(limit.current(), 10, "{algorithm:?}");
        }
    }
}
