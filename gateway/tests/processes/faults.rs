//! What callers see when a process or a server dies, and that the rest heals
//! by itself when it returns.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{
    Api, NATS_CONF, NatsProcess, NatsServer, PASSWORD, Passwords, TempDir, TestDb, db_settings,
    free_port, provision_and_migrate, with_user,
};

use crate::{
    load::{
        Call, Load, RPC_TIMEOUT, assert_every, assert_fast_gateway_503s, assert_ok_outside, report,
    },
    servers::PrivatePostgres,
    stack::{Backends, Stack},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_request_gives_504_within_the_timeout_and_nothing_hangs() {
    // 24 logins of one account from one address at once: over the login
    // throttle's pair and address limits, which count attempts in flight,
    // and over the address's share of the gateway's hashing lane.
    let stack = Stack::start_with(&[
        ("GATEWAY_RPC__TIMEOUT_MS", "1500"),
        ("GATEWAY_ADMISSION__HASHING__MAX_PER_CLIENT", "0"),
    ])
    .await;
    let mut worker = stack.worker_with(
        "auth-worker",
        &[
            ("AUTH_WORKER_THROTTLE__PAIR_MAX_ATTEMPTS", "100"),
            ("AUTH_WORKER_THROTTLE__ADDRESS_MAX_FAILURES", "100"),
        ],
    );
    stack.wait_for_copies("auth-worker", 1).await;
    stack.signup_ok("ada@example.com").await;

    // Logins queue for the worker's argon2 slots; kill it while they do.
    let mut logins = Vec::new();
    for _ in 0..24 {
        let api = Api::clone(&stack);
        logins.push(tokio::spawn(async move {
            let started = Instant::now();
            let status = api
                .http
                .post(api.url("/api/auth/login"))
                .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (status, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    worker.kill_hard().await;

    let mut results = Vec::new();
    for login in logins {
        results.push(login.await.unwrap());
    }
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| [200, 503, 504].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&504),
        "nobody was in flight at the kill: {statuses:?}"
    );
    // Failing fast: nothing waits much past the 1.5 s NATS timeout.
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "a request hung for {slowest:?}"
    );
    // With no auth-worker left, a new call is a 503 at once.
    let after = stack.login("ada@example.com", PASSWORD).await;
    assert_eq!(after.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_under_load_gives_503_at_once_and_everything_reconnects_when_it_returns() {
    // The project's nats.conf on a port of our own, so it can come back there.
    let passwords = Passwords::random();
    let args: Vec<String> = ["-c", NATS_CONF, "-a", "127.0.0.1", "-p"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([free_port().to_string()])
        .collect();
    let mut nats = NatsProcess::start("nats", &args, &passwords, &[]).await;
    let db = TestDb::create().await;
    let stack = Stack::on(Backends::of(nats.url(), &passwords, &db), &[]).await;
    let mut workers = [stack.worker("auth-worker"), stack.worker("user-worker")];
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("user-worker", 1).await;
    let token = stack.user_token("ada@example.com").await;
    stack.await_readyz(200).await;

    let load = Load::start(&stack, &token, &[Call::me(), Call::jwks()], 6);
    load.wait_for_successes(20).await;

    let killed = Instant::now();
    nats.kill().await;
    load.wait_until("60 failures after the kill", |samples| {
        samples
            .iter()
            .filter(|s| s.started > killed && !s.ok)
            .count()
            >= 60
    })
    .await;
    let not_ready = stack.await_readyz(503).await;
    assert_eq!(
        not_ready["message"], "not ready: nats unavailable",
        "{not_ready}"
    );

    // Back on the same port with the same passwords; nobody is restarted.
    let _nats = NatsProcess::start("nats", &args, &passwords, &[]).await;
    load.wait_for_successes(1).await;
    stack.await_readyz(200).await;
    let recovered = Instant::now();
    load.wait_for_successes(50).await;
    let all = load.stop().await;
    report("nats-server killed", &all);

    assert_fast_gateway_503s(&all);
    assert_ok_outside(&all, killed, recovered, "kill");
    for worker in &mut workers {
        assert!(worker.is_running(), "a worker died with the NATS server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gives_503_and_the_workers_recover_when_it_returns() {
    // A cluster that asks every role for its password (SCRAM): the roles
    // get theirs from files at provisioning, and the workers read the same
    // files at start, and log in with them again after the restart.
    let mut pg = PrivatePostgres::start().await;
    let role_passwords = TempDir::new();
    for (_, file) in auth_worker::provision::ROLES {
        let password = format!("p{}", uuid::Uuid::new_v4().simple());
        std::fs::write(role_passwords.path.join(file), format!("{password}\n")).unwrap();
    }
    let db_url =
        provision_and_migrate(&pg.url("postgres"), "natsauth", Some(&role_passwords.path)).await;
    // It does ask: without its password file a role is refused.
    let without = db_settings(&with_user(
        &db_url,
        auth_worker::provision::USER_WORKER_ROLE,
    ));
    let refused = sqlx::PgPool::connect_with(without.connect_options().unwrap()).await;
    assert!(refused.is_err(), "a role got in without its password");
    let nats = NatsServer::start().await;
    let backends = Backends {
        nats_url: nats.url(),
        passwords: nats.passwords.clone(),
        db_url,
        db_passwords: Some(role_passwords.path.clone()),
    };
    // Default timeouts on both sides: a worker gives up on the pool
    // (database.acquire_timeout_ms, 3 s) before the gateway gives up on the
    // worker (rpc.timeout_ms, 5 s), so callers see the worker's 503.
    let stack = Stack::on(backends, &[]).await;
    let mut workers = [stack.worker("auth-worker"), stack.worker("user-worker")];
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("user-worker", 1).await;
    let token = stack.user_token("ada@example.com").await;

    // Both workers read the database on every call.
    let load = Load::start(&stack, &token, &[Call::me(), Call::unknown_refresh()], 6);
    load.wait_for_successes(20).await;

    let stopped = Instant::now();
    pg.stop().await;
    load.wait_until("three 503s of each call after the stop", |samples| {
        ["me", "refresh"].iter().all(|call| {
            samples
                .iter()
                .filter(|s| s.call == *call && s.started > stopped && s.status == 503)
                .count()
                >= 3
        })
    })
    .await;

    pg.start_again().await;
    load.wait_for_successes(1).await;
    let recovered = Instant::now();
    load.wait_for_successes(20).await;
    let all = load.stop().await;
    report("PostgreSQL stopped", &all);

    assert_every(
        &all,
        |_| true,
        |s| s.ok || (s.status == 503 && s.message.as_deref() == Some("service unavailable")),
        "every call succeeds or gets a 503 (never 500 or 504)",
    );
    // The 503 body names no dependency; the gateway's metrics say who sent
    // them: the workers' error replies, never the gateway's own 503s (no
    // responders, NATS down).
    let metrics = stack.get_text("/metrics").await;
    let outcomes = |outcome: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("nats_requests_total{") && l.contains(outcome))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(outcomes("outcome=\"error_503\"") >= 6.0, "{metrics}");
    assert_eq!(outcomes("outcome=\"no_responders\""), 0.0, "{metrics}");
    assert_eq!(outcomes("outcome=\"disconnected\""), 0.0, "{metrics}");
    assert_every(
        &all,
        |_| true,
        |s| s.elapsed() < RPC_TIMEOUT,
        "every call is answered before the gateway's NATS timeout",
    );
    assert_ok_outside(&all, stopped, recovered, "stop");
    for worker in &mut workers {
        assert!(worker.is_running(), "a worker died with the database");
    }
}
