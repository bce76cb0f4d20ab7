//! More copies share the load; copies come and go without losing a request.

use std::collections::BTreeMap;

use crate::{
    load::{Call, Load, assert_every, summary},
    stack::Stack,
};

/// This test found a request lost now and then (1 in ~9,500) with async-nats
/// 0.51 as published: its `Subscriber::drain` forgot the subscription on the
/// client's next poll after the UNSUB was written, not after the server's
/// PONG, so a request routed just before the server processed the UNSUB was
/// dropped. The workspace patches that (vendor/async-nats, `[patch]` in
/// Cargo.toml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_worker_one_by_one_under_load_fails_no_request() {
    let stack = Stack::start().await;
    let mut workers = vec![
        ("auth-worker", stack.worker("auth-worker")),
        ("auth-worker", stack.worker("auth-worker")),
        ("user-worker", stack.worker("user-worker")),
        ("user-worker", stack.worker("user-worker")),
    ];
    stack.wait_for_copies("auth-worker", 2).await;
    stack.wait_for_copies("user-worker", 2).await;
    let token = stack.user_token("ada@example.com").await;

    // Steady load on both workers: /me (user-worker) and the JWKS (auth-worker).
    let load = Load::start(&stack, &token, &[Call::me(), Call::jwks()], 6);
    for (service, process) in &mut workers {
        let status = process.terminate().await;
        assert!(
            status.success(),
            "{service} exited with {status} after SIGTERM"
        );
        *process = stack.worker(service);
        stack.wait_for_copies(service, 2).await;
    }
    let all = load.stop().await;

    assert!(
        all.len() > 100,
        "too little load to mean anything: {}",
        all.len()
    );
    assert_every(&all, |_| true, |s| s.ok, "no request fails");

    let mut gateway = stack.gateway;
    assert!(
        gateway.terminate().await.success(),
        "the gateway exits cleanly on SIGTERM"
    );
}

/// `num_requests` of `endpoint` per copy of `service`, from
/// `$SRV.STATS.<service>` (one reply per copy).
async fn requests_per_copy(stack: &Stack, service: &str, endpoint: &str) -> BTreeMap<String, u64> {
    stack
        .service_replies(&format!("$SRV.STATS.{service}"))
        .await
        .iter()
        .map(|stats| {
            let id = stats["id"].as_str().unwrap().to_owned();
            let served = stats["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == endpoint)
                .unwrap_or_else(|| panic!("no endpoint {endpoint} in {stats}"))["num_requests"]
                .as_u64()
                .unwrap();
            (id, served)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_copies_of_a_worker_share_the_load_and_one_leaves_under_load_losing_nothing() {
    let stack = Stack::start().await;
    let _auth = stack.worker("auth-worker");
    let mut copies = vec![
        stack.worker("user-worker"),
        stack.worker("user-worker"),
        stack.worker("user-worker"),
    ];
    stack.wait_for_copies("auth-worker", 1).await;
    let ids = stack.wait_for_copies("user-worker", 3).await;
    let token = stack.user_token("ada@example.com").await;

    // Each GET /api/users/me is exactly one `user.get` request.
    let load = Load::start(&stack, &token, &[Call::me()], 6);
    load.wait_until("600 replies", |s| s.len() >= 600).await;
    let first = load.stop().await;
    assert_every(&first, |_| true, |s| s.ok, "every /me succeeds");

    let served = requests_per_copy(&stack, "user-worker", "user_get").await;
    assert_eq!(
        served
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        ids,
        "every copy reports its stats"
    );
    let total: u64 = served.values().sum();
    assert_eq!(
        total,
        first.len() as u64,
        "the copies served each request exactly once: {served:?}"
    );
    for (id, n) in &served {
        assert!(
            *n * 10 >= total,
            "copy {id} served {n} of {total}: the queue group does not spread the load ({served:?})"
        );
    }

    // One copy leaves (SIGTERM: drain) while the load goes on.
    let load = Load::start(&stack, &token, &[Call::me()], 6);
    load.wait_until("100 replies", |s| s.len() >= 100).await;
    let leaving = copies.remove(0);
    let mut leaving = leaving;
    let status = leaving.terminate().await;
    assert!(
        status.success(),
        "a copy exited with {status} after SIGTERM"
    );
    let remaining = stack.wait_for_copies("user-worker", 2).await;
    load.wait_for_successes(200).await;
    let second = load.stop().await;
    assert_every(
        &second,
        |_| true,
        |s| s.ok,
        "no request fails while a copy leaves",
    );

    // The two that stay took the load on.
    let after = requests_per_copy(&stack, "user-worker", "user_get").await;
    assert_eq!(
        after
            .keys()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        remaining
    );
    for (id, n) in &after {
        assert!(
            *n > served[id],
            "copy {id} served nothing after the other left ({served:?} then {after:?}); {}",
            summary(&second)
        );
    }
    for copy in &mut copies {
        assert!(copy.is_running());
    }
}
