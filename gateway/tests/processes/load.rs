//! A [`Load`] of concurrent HTTP calls through a stack's gateway that
//! records every reply's status and timing, and the assertions the tests
//! make of what it recorded.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use testkit::{Api, eventually};
use tokio::task::JoinHandle;

use crate::stack::Stack;

/// One kind of HTTP call a [`Load`] makes, and the status it gets when all
/// is well.
#[derive(Debug, Clone)]
pub struct Call {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Option<Value>,
    expect: u16,
}

impl Call {
    /// `GET /api/users/me`: user-worker, one `user.get` (a database read).
    pub fn me() -> Self {
        Self {
            name: "me",
            method: reqwest::Method::GET,
            path: "/api/users/me",
            body: None,
            expect: 200,
        }
    }

    /// `GET /api/auth/jwks`: auth-worker, no database.
    pub fn jwks() -> Self {
        Self {
            name: "jwks",
            method: reqwest::Method::GET,
            path: "/api/auth/jwks",
            body: None,
            expect: 200,
        }
    }

    /// `POST /api/auth/refresh` with a token nobody holds: auth-worker, a
    /// database look-up that finds nothing (401) and changes nothing.
    pub fn unknown_refresh() -> Self {
        Self {
            name: "refresh",
            method: reqwest::Method::POST,
            path: "/api/auth/refresh",
            body: Some(
                serde_json::json!({"refreshToken": "nobody-holds-this-token-00000000000000000"}),
            ),
            expect: 401,
        }
    }
}

/// The outcome of one call; status 0 is a transport error (or no reply
/// within 20 s).
#[derive(Debug, Clone)]
pub struct Sample {
    pub call: &'static str,
    pub ok: bool,
    pub status: u16,
    /// The error body's message, when the call failed.
    pub message: Option<String>,
    pub started: Instant,
    pub ended: Instant,
}

impl Sample {
    pub fn elapsed(&self) -> Duration {
        self.ended - self.started
    }
}

/// Concurrent HTTP calls through the gateway, in a loop per task, until
/// stopped; every reply is recorded as it comes.
pub struct Load {
    /// The kinds of call made.
    calls: Vec<&'static str>,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// `tasks` loops, the i-th making `calls[i % calls.len()]` with `token`.
    pub fn start(stack: &Stack, token: &str, calls: &[Call], tasks: usize) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|i| {
                let call = calls[i % calls.len()].clone();
                let (api, token) = (Api::clone(stack), token.to_owned());
                let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut request = api
                            .http
                            .request(call.method.clone(), api.url(call.path))
                            .bearer_auth(&token)
                            .timeout(Duration::from_secs(20));
                        if let Some(body) = &call.body {
                            request = request.json(body);
                        }
                        let started = Instant::now();
                        let (status, message) = match request.send().await {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                let message = if status == call.expect {
                                    None
                                } else {
                                    // The contract's error body says who failed.
                                    let body: Value = response.json().await.unwrap_or_default();
                                    body["message"].as_str().map(str::to_owned)
                                };
                                (status, message)
                            }
                            Err(_) => (0, None),
                        };
                        let sample = Sample {
                            call: call.name,
                            ok: status == call.expect,
                            status,
                            message,
                            started,
                            ended: Instant::now(),
                        };
                        samples.lock().unwrap().push(sample);
                    }
                })
            })
            .collect();
        Self {
            calls: calls.iter().map(|c| c.name).collect(),
            samples,
            stop,
            tasks,
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Polls the samples until `done` holds (20 s at most).
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Sample]) -> bool) {
        let done = &done;
        let finished = eventually(
            Duration::from_secs(20),
            Duration::from_millis(10),
            || async move { done(&self.samples.lock().unwrap()) },
        );
        assert!(
            finished.await,
            "never saw {what}; replies so far: {}",
            summary(&self.samples())
        );
    }

    /// Waits for `n` successful replies of every kind of call among the calls
    /// started from now on.
    pub async fn wait_for_successes(&self, n: usize) {
        let now = Instant::now();
        self.wait_until(&format!("{n} successes of each call"), |samples| {
            self.calls.iter().all(|call| {
                samples
                    .iter()
                    .filter(|s| s.call == *call && s.ok && s.started >= now)
                    .count()
                    >= n
            })
        })
        .await;
    }

    /// Stops every loop; every sample.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.samples).unwrap().into_inner().unwrap()
    }
}

/// Counts by call and status, for failure messages.
pub fn summary(samples: &[Sample]) -> String {
    let mut counts: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for s in samples {
        *counts.entry((s.call, s.status)).or_default() += 1;
    }
    counts
        .iter()
        .map(|((call, status), n)| format!("{call} {status}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The gateway's NATS request timeout in the fault tests (the default).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Prints what the calls got (seen with `--nocapture`): counts by call and
/// status, and the slowest failure.
pub fn report(what: &str, samples: &[Sample]) {
    let slowest = samples.iter().filter(|s| !s.ok).map(Sample::elapsed).max();
    eprintln!("{what}: {}; slowest failure: {slowest:?}", summary(samples));
}

/// Every call that ended before the outage began, and every call that
/// started after the recovery, succeeded.
pub fn assert_ok_outside(samples: &[Sample], outage: Instant, recovered: Instant, what: &str) {
    assert_every(
        samples,
        |s| s.ended < outage,
        |s| s.ok,
        &format!("every call before the {what} succeeds"),
    );
    assert_every(
        samples,
        |s| s.started > recovered,
        |s| s.ok,
        &format!("every call after the {what} is over succeeds"),
    );
}

/// Every call succeeded or got the gateway's own 503, and none waited near
/// the NATS timeout.
pub fn assert_fast_gateway_503s(samples: &[Sample]) {
    assert_every(
        samples,
        |_| true,
        |s| s.ok || (s.status == 503 && s.message.as_deref() == Some("service unavailable")),
        "every call succeeds or fails with the gateway's 503",
    );
    assert_every(
        samples,
        |_| true,
        |s| s.elapsed() < RPC_TIMEOUT / 2,
        "no call waits anywhere near the NATS timeout",
    );
}

/// Fails with the offending samples unless `holds` is true of every sample
/// that `which` selects.
pub fn assert_every(
    samples: &[Sample],
    which: impl Fn(&Sample) -> bool,
    holds: impl Fn(&Sample) -> bool,
    rule: &str,
) {
    let selected: Vec<&Sample> = samples.iter().filter(|s| which(s)).collect();
    let broken: Vec<String> = selected
        .iter()
        .filter(|s| !holds(s))
        .map(|s| {
            let message = s.message.as_deref().unwrap_or("");
            format!("{} {} {message:?} in {:?}", s.call, s.status, s.elapsed())
        })
        .collect();
    assert!(
        broken.is_empty(),
        "{rule}: {} of {} broke it: {}{}",
        broken.len(),
        selected.len(),
        broken
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if broken.len() > 20 { ", …" } else { "" }
    );
}
