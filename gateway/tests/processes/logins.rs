//! Logins that arrive together: of one account from one address (a team
//! behind one NAT, a script, a load test), and of a few accounts at once.
//! With the throttles lifted, as a deployment that does not want them has
//! them, every one succeeds: none waits on another's row lock, none fails
//! with a database error.

use serde_json::json;
use testkit::PASSWORD;

use crate::stack::Stack;

/// Throttles and the per-client share lifted: only the statements' own
/// locking is left to fail.
const LIFTED_WORKER: &[(&str, &str)] = &[
    ("AUTH_WORKER_THROTTLE__PAIR_MAX_ATTEMPTS", "1000000"),
    ("AUTH_WORKER_THROTTLE__ADDRESS_MAX_FAILURES", "1000000"),
    ("AUTH_WORKER_THROTTLE__EMAIL_SLOWDOWN_AFTER", "1000000"),
];
const LIFTED_GATEWAY: &[(&str, &str)] = &[
    ("GATEWAY_ADMISSION__HASHING__MAX_PER_CLIENT", "0"),
    ("GATEWAY_ADMISSION__HASHING__MAX_WAIT_MS", "60000"),
    ("GATEWAY_RPC__TIMEOUT_MS", "60000"),
];

/// `rounds` waves of 64 logins at once, spread over `emails`; every status.
async fn waves(stack: &Stack, emails: &[&str], rounds: usize) -> Vec<(u16, String)> {
    let mut all = Vec::new();
    for _ in 0..rounds {
        let logins = (0..64).map(|i| {
            let (http, url) = (stack.http.clone(), stack.url("/api/auth/login"));
            let email = emails[i % emails.len()].to_owned();
            async move {
                let response = http
                    .post(url)
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
        });
        all.extend(futures::future::join_all(logins).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_logins_of_one_account_or_a_few_all_succeed() {
    let stack = Stack::start_with(LIFTED_GATEWAY).await;
    let _auth = stack.worker_with("auth-worker", LIFTED_WORKER);
    let _user = stack.worker("user-worker");
    stack.wait_for_copies("auth-worker", 1).await;
    let few = [
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
        "di@example.com",
    ];
    for email in few {
        stack.signup_ok(email).await;
    }
    for emails in [&few[..1], &few[..]] {
        let replies = waves(&stack, emails, 3).await;
        let failed: Vec<_> = replies.iter().filter(|(s, _)| *s != 200).collect();
        assert!(
            failed.is_empty(),
            "{} of {} logins of {emails:?} failed, e.g. {:?}",
            failed.len(),
            replies.len(),
            failed.first()
        );
    }
}
