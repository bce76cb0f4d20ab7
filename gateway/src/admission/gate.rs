//! One lane's gate: its limit, the requests it has sent, the queue of
//! those waiting their turn, each client's share, and the refusals.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use runtime::rpc::CallError;
use shared::{ServiceError, headers::ClientAddress};
use tokio::sync::oneshot;

use super::{Lane, LaneSettings, Outcome, limit::Limit};

#[derive(Debug)]
pub struct LaneGate {
    pub(super) lane: Lane,
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
    pub(super) fn new(lane: Lane, settings: LaneSettings) -> Self {
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
    pub(super) async fn acquire(
        &self,
        client: Option<ClientAddress>,
    ) -> Result<Permit<'_>, CallError> {
        let client = client.filter(|_| self.settings.max_per_client > 0);
        match self.enter(client)? {
            None => Ok(self.permit(client)),
            Some((id, rx)) => self.wait_turn(id, client, rx).await,
        }
    }

    /// Takes a slot at once (`None`) or a place in the queue (its id and
    /// the receiver its slot will be handed over on); refuses a client past
    /// its share, or a queue longer than `max_wait_ms` or `max_queue` allow.
    fn enter(
        &self,
        client: Option<ClientAddress>,
    ) -> Result<Option<(u64, oneshot::Receiver<()>)>, CallError> {
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
            return Ok(None);
        }
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
        Ok(Some((id, rx)))
    }

    /// Waits in the queue until a slot is handed over, or refuses once the
    /// lane's `max_wait_ms` has passed.
    async fn wait_turn(
        &self,
        id: u64,
        client: Option<ClientAddress>,
        rx: oneshot::Receiver<()>,
    ) -> Result<Permit<'_>, CallError> {
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
                Ok(self.permit(client))
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

    /// A slot taken now; its outcome is set once the reply is in.
    fn permit(&self, client: Option<ClientAddress>) -> Permit<'_> {
        Permit {
            gate: self,
            client,
            started: Instant::now(),
            outcome: Outcome::Ignored,
        }
    }

    pub(super) fn refuse(&self, why: Refusal, retry_after: u64) -> CallError {
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
pub(super) struct Permit<'a> {
    gate: &'a LaneGate,
    client: Option<ClientAddress>,
    started: Instant,
    pub(super) outcome: Outcome,
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

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, sync::Arc};

    use super::*;
    use crate::admission::tests::settings;

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
}
