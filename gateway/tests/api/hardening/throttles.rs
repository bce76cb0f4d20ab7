//! Login and sign-up throttles: they cannot be raced, do not lock the owner
//! out, and count IPv6 clients per /64.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::{PASSWORD, assert_error};

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_passwords_for_one_email_verify_at_most_the_limit() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    let before = app.password_verifications();
    let attempts = (0..50).map(|_| {
        let app = &app;
        async move {
            app.login("ada@example.com", "wrong password")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let verified = app.password_verifications() - before;
    // The default limit for one email from one address is 5.
    assert!(
        verified <= 5,
        "{verified} passwords were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        verified
    );
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_owner_out_from_another_address() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            app.login_from("ada@example.com", "guess", "203.0.113.7")
                .await
                .status(),
            401
        );
    }
    // The attacker's address is locked for this email, even with the right password…
    let locked = app
        .login_from("ada@example.com", PASSWORD, "203.0.113.7")
        .await;
    assert!(locked.headers().contains_key("retry-after"));
    assert_error(locked, 429, "/api/auth/login").await;
    // …but the owner, from anywhere else, logs in.
    assert_eq!(
        app.login_from("ada@example.com", PASSWORD, "198.51.100.2")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn ipv6_clients_are_throttled_per_64_prefix() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    // Five addresses of one /64 (one subscriber's network).
    for host in 1..=5 {
        let address = format!("2001:db8:aa:1::{host}");
        assert_eq!(
            app.login_from("ada@example.com", "guess", &address)
                .await
                .status(),
            401
        );
    }
    let sixth = app
        .login_from("ada@example.com", PASSWORD, "2001:db8:aa:1:ffff::9")
        .await;
    assert_error(sixth, 429, "/api/auth/login").await;
    // The next /64 is someone else.
    assert_eq!(
        app.login_from("ada@example.com", PASSWORD, "2001:db8:aa:2::1")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failures_for_one_email_from_many_addresses_slow_it_down_but_never_lock_the_owner_out() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    app.signup_ok("ada@example.com").await;
    // 30 guesses from 10 addresses (3 each, under the per-address limit).
    for i in 0..30 {
        let address = format!("192.0.2.{}", i % 10 + 1);
        assert_eq!(
            app.login_from("ada@example.com", "guess", &address)
                .await
                .status(),
            401
        );
    }
    let started = Instant::now();
    let owner = app
        .login_from("ada@example.com", PASSWORD, "198.51.100.77")
        .await;
    assert_eq!(owner.status(), 200);
    // The default slowdown holds every attempt for that email a second.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sign_ups_from_one_address_are_throttled() {
    let app = spawn_app_with(Options::trusting_forwarded_for()).await;
    let signup_from = |i: usize, address: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/api/auth/signup"))
                .header("x-forwarded-for", address)
                .json(&json!({ "email": format!("u{i}@example.com"), "password": PASSWORD }))
                .send()
                .await
                .unwrap()
        }
    };
    // The default allows 10 sign-ups an hour from one address.
    for i in 0..10 {
        assert_eq!(signup_from(i, "203.0.113.9").await.status(), 201);
    }
    let refused = signup_from(10, "203.0.113.9").await;
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 3600, "{retry}");
    assert_error(refused, 429, "/api/auth/signup").await;
    assert_eq!(app.db.count("users").await, 10);
    assert_eq!(signup_from(11, "198.51.100.3").await.status(), 201);
}

#[tokio::test]
async fn a_right_password_gives_its_attempt_back_so_the_owner_is_never_counted_out() {
    let app = spawn_app().await;
    app.signup_ok("ada@example.com").await;
    // Four typos and a success, three times over: 15 attempts from one
    // address, 12 of them wrong, yet never more than 4 failures in a row.
    for round in 0..3 {
        for _ in 0..4 {
            let typo = app.login("ada@example.com", "not my password").await;
            assert_eq!(typo.status(), 401, "round {round}");
        }
        assert_eq!(
            app.login("ada@example.com", PASSWORD).await.status(),
            200,
            "round {round}"
        );
    }
}
