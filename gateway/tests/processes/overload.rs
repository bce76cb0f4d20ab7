//! Overload: with 8× the clients that keep a route's workers busy, the
//! workers stay busy with requests that succeed, every failure is a fast
//! 503 (or 429 past one address's share) with `Retry-After`, refused by the
//! gateway before NATS, and the cheap routes keep answering.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::PASSWORD;

use crate::stack::Stack;

/// One reply of [`logins`].
#[derive(Debug)]
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
    elapsed: Duration,
}

/// `clients` closed loops, each logging `email` in again as soon as its
/// last reply came, client `i` from address `address(i)` (the stack's
/// gateway trusts `X-Forwarded-For`), for `span`; every reply.
async fn logins(
    stack: &Stack,
    clients: usize,
    address: fn(usize) -> String,
    span: Duration,
) -> Vec<Reply> {
    let until = Instant::now() + span;
    let loops = (0..clients).map(|i| {
        let (http, url) = (stack.http.clone(), stack.url("/api/auth/login"));
        tokio::spawn(async move {
            let mut replies = Vec::new();
            while Instant::now() < until {
                let started = Instant::now();
                let sent = http
                    .post(&url)
                    .header("x-forwarded-for", address(i))
                    .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                let reply = match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse().ok());
                        Reply {
                            status,
                            retry_after,
                            body: response.json().await.unwrap_or_default(),
                            elapsed: started.elapsed(),
                        }
                    }
                    // A transport error or no reply within 20 s.
                    Err(_) => Reply {
                        status: 0,
                        retry_after: None,
                        body: Value::Null,
                        elapsed: started.elapsed(),
                    },
                };
                replies.push(reply);
            }
            replies
        })
    });
    let mut all = Vec::new();
    for replies in futures::future::join_all(loops).await {
        all.extend(replies.unwrap());
    }
    all
}

fn each_its_own(i: usize) -> String {
    format!("10.1.0.{}", i + 1)
}

fn all_the_same(_: usize) -> String {
    "10.2.0.1".to_owned()
}

fn count(replies: &[Reply], status: u16) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

fn statuses(replies: &[Reply]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in replies {
        *counts.entry(r.status).or_default() += 1;
    }
    counts
}

/// `auth_login`'s error count in the auth-worker's `$SRV.STATS`: requests
/// that reached a worker and failed there.
async fn worker_login_errors(stack: &Stack) -> u64 {
    let replies = stack.service_replies("$SRV.STATS.auth-worker").await;
    replies
        .iter()
        .flat_map(|r| r["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["name"] == "auth_login")
        .map(|e| e["num_errors"].as_u64().unwrap_or(0))
        .sum()
}

/// The auth-worker of these tests: one hashing thread (so 4 clients keep
/// it busy), at the process's priority (the test's own client must not
/// starve it), and room for only 8 requests at once, as a small copy has:
/// without the gateway's admission control, 32 clients would get most of
/// their replies as that copy's "busy" 503, each a round trip through NATS.
const ONE_HASHER: &[(&str, &str)] = &[
    ("AUTH_WORKER_ARGON2__MAX_CONCURRENT_HASHES", "1"),
    ("AUTH_WORKER_ARGON2__NICE", "0"),
    ("AUTH_WORKER_SERVICE__MAX_IN_FLIGHT", "8"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_times_the_logins_that_keep_the_hasher_busy_still_succeed_at_its_pace_and_the_rest_fail_fast()
 {
    // Short enough that 32 clients queue past it even where one hash takes
    // under 10 ms (AVX-512): then some are refused on every machine.
    const MAX_WAIT_MS: u64 = 100;
    let stack = Stack::start_with(&[
        ("GATEWAY_HTTP__TRUST_FORWARDED_FOR", "true"),
        // A request held until a timeout would show as a 504 after 10 s.
        ("GATEWAY_RPC__TIMEOUT_MS", "10000"),
        ("GATEWAY_ADMISSION__HASHING__MAX_WAIT_MS", "100"),
    ])
    .await;
    let _auth = stack.worker_with("auth-worker", ONE_HASHER);
    let _user = stack.worker("user-worker");
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("user-worker", 1).await;
    stack.signup_ok("ada@example.com").await;
    let token = stack.access_token("ada@example.com").await;

    // Capacity: 4 clients keep the one hashing thread busy.
    let span = Duration::from_secs(3);
    let base = logins(&stack, 4, each_its_own, span).await;
    assert_eq!(count(&base, 200), base.len(), "{:?}", statuses(&base));
    let errors_before = worker_login_errors(&stack).await;

    // 8× the clients, with /me asked all along beside them.
    let me = {
        let (http, url, token) = (stack.http.clone(), stack.url("/api/users/me"), token);
        let until = Instant::now() + span;
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < until {
                let reply = http.get(&url).bearer_auth(&token).send().await;
                statuses.push(reply.map_or(0, |r| r.status().as_u16()));
            }
            statuses
        })
    };
    let flood = logins(&stack, 32, each_its_own, span).await;
    let me = me.await.unwrap();

    let summary = format!("{:?}", statuses(&flood));
    // Every reply is a success or the gateway's fast 503: no 504, no hang,
    // no transport error.
    assert_eq!(
        count(&flood, 200) + count(&flood, 503),
        flood.len(),
        "{summary}"
    );
    for refused in flood.iter().filter(|r| r.status == 503) {
        assert_eq!(refused.body["statusCode"], 503, "{:?}", refused.body);
        assert_eq!(refused.body["message"], "overloaded, retry later");
        assert!(refused.body["requestId"].is_string());
        assert!(refused.retry_after.is_some_and(|s| s >= 1), "{refused:?}");
        assert!(
            refused.elapsed < Duration::from_millis(MAX_WAIT_MS + 1500),
            "a refusal took {:?}",
            refused.elapsed
        );
    }
    // The hashing thread stayed busy with logins that succeed. (The 28
    // clients refused at a time retry at once, as no real client should:
    // their refusals take CPU from the hashing thread, the test's own
    // client and the other tests running beside it, hence a third, not
    // nine tenths as the benchmark shows on a quiet machine.)
    let (ok_base, ok_flood) = (count(&base, 200), count(&flood, 200));
    assert!(
        ok_flood * 3 >= ok_base,
        "{ok_flood} logins succeeded with 32 clients, {ok_base} with 4 ({summary})"
    );
    // The refusals were the gateway's: next to nothing was refused by the
    // worker, whose room is 8 (without admission control, most of the 32
    // clients' requests would be, over and over).
    let worker_refusals = worker_login_errors(&stack).await - errors_before;
    assert!(
        worker_refusals * 10 <= ok_flood as u64,
        "{worker_refusals} logins were refused by the worker ({summary})"
    );
    // Operators see the lanes and the refusals.
    let metrics = stack.get_text("/metrics").await;
    for line in [
        r#"gateway_admission_limit{lane="hashing"}"#,
        r#"gateway_admission_queued{lane="default"}"#,
        r#"gateway_admission_refused_total{lane="hashing",reason="#,
    ] {
        assert!(metrics.contains(line), "no {line} in /metrics");
    }
    // /me has its own lane: the login queue does not hold it up.
    assert!(me.len() > 10, "{me:?}");
    assert!(me.iter().all(|s| *s == 200), "{me:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_the_hashing_lane_and_a_429_held_a_second_beyond_it() {
    let stack = Stack::start_with(&[
        ("GATEWAY_HTTP__TRUST_FORWARDED_FOR", "true"),
        ("GATEWAY_ADMISSION__HASHING__MAX_PER_CLIENT", "4"),
        // Long enough that nothing here is refused for the wait.
        ("GATEWAY_ADMISSION__HASHING__MAX_WAIT_MS", "20000"),
    ])
    .await;
    let _auth = stack.worker_with("auth-worker", ONE_HASHER);
    stack.wait_for_copies("auth-worker", 1).await;
    stack.signup_ok("ada@example.com").await;

    let greedy = logins(&stack, 16, all_the_same, Duration::from_secs(2));
    let other = async {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let reply = stack
                .login_from("ada@example.com", PASSWORD, "10.3.0.1")
                .await;
            statuses.push(reply.status().as_u16());
        }
        statuses
    };
    let (greedy, other) = futures::future::join(greedy, other).await;

    let summary = format!("{:?}", statuses(&greedy));
    assert_eq!(
        count(&greedy, 200) + count(&greedy, 429),
        greedy.len(),
        "{summary}"
    );
    assert!(count(&greedy, 200) > 0, "{summary}");
    assert!(count(&greedy, 429) > 0, "{summary}");
    for refused in greedy.iter().filter(|r| r.status == 429) {
        assert_eq!(
            refused.body["message"], "too many requests from this address, retry later",
            "{:?}",
            refused.body
        );
        assert!(refused.retry_after.is_some_and(|s| s >= 1), "{refused:?}");
        // Refused on arrival, then held for `admission.hold_refusals_ms`
        // (1 s) so the client does not retry at once; not after waiting
        // its turn in the queue.
        assert!(
            refused.elapsed >= Duration::from_secs(1)
                && refused.elapsed < Duration::from_millis(2500),
            "a refusal took {:?}",
            refused.elapsed
        );
    }
    // Another address still gets in, behind at most the first one's share.
    assert_eq!(other, [200, 200, 200]);
}
