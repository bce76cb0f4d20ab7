//! The adaptive limits of a lane, pure functions of the replies seen:
//! Vegas and AIMD, after Netflix's concurrency-limits.

use std::time::Duration;

use serde::Deserialize;

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

#[derive(Debug)]
pub(super) enum Limit {
    Vegas(Vegas),
    Aimd(Aimd),
}

impl Limit {
    pub(super) fn new(algorithm: Algorithm, initial: f64, min: f64, max: f64) -> Self {
        match algorithm {
            Algorithm::Vegas => Self::Vegas(Vegas::new(initial, min, max)),
            Algorithm::Aimd => Self::Aimd(Aimd {
                limit: initial,
                min,
                max,
            }),
        }
    }

    pub(super) fn current(&self) -> u32 {
        match self {
            Self::Vegas(v) => v.limit as u32,
            Self::Aimd(a) => a.limit as u32,
        }
    }

    pub(super) fn on_reply(&mut self, rtt: Duration, in_flight: u32) {
        match self {
            Self::Vegas(v) => v.on_reply(rtt, in_flight),
            Self::Aimd(a) => a.on_reply(in_flight),
        }
    }

    /// A worker was busy or did not answer in time: ×0.9 at once.
    pub(super) fn on_overload(&mut self) {
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
pub(super) struct Aimd {
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
/// no-queue latency, not the one reply at hand: each reply that matched
/// its own sample would read as "nothing queued" and add `6·log10`, so the
/// limit would climb far past what the workers hold.
#[derive(Debug)]
pub(super) struct Vegas {
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
    use super::*;

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
