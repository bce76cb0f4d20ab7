//! No lost mail: every security event's mail arrives however the
//! mail-worker, the SMTP server, nats-server or the auth-worker's relay
//! fail, at least once, a repeat recognizable by its Message-ID.

use std::{collections::HashMap, time::Duration};

use async_nats::jetstream;
use futures::StreamExt;
use testkit::{
    MailCatcher, NATS_CONF, NatsProcess, Passwords, TempDir, TestDb, eventually, free_port,
};

use crate::stack::{Backends, Proc, Stack};

/// The subject of the verification mail (`templates/en/verify.subject.txt`).
const VERIFY_SUBJECT: &str = "Confirm your email address";

/// A mail-worker config file with quick retries: a nak waits 1–2 s and
/// an event whose copy died comes again after 5 s (`ack_wait_secs`), with
/// deliveries enough for a 30 s outage (`max_deliver`).
fn mail_worker_config(dir: &TempDir, smtp_port: u16) -> String {
    let path = dir.path.join("mail-worker.toml");
    std::fs::write(
        &path,
        format!(
            "[consumer]\nmax_deliver = 200\nbackoff_secs = [1, 2]\nack_wait_secs = 5\n\
             retry_ms = 200\n\n[smtp]\nport = {smtp_port}\ntimeout_ms = 3000\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn mail_worker(stack: &Stack, config: &str) -> Proc {
    stack.worker_with("mail-worker", &[("MAIL_WORKER_CONFIG", config)])
}

/// Sign-ups enough from one address.
const AUTH_ENV: &[(&str, &str)] = &[("AUTH_WORKER_THROTTLE__SIGNUP_MAX_PER_ADDRESS", "100000")];

/// Waits (90 s at most) until every address of `emails` got its
/// verification mail; then the Message-IDs caught more than once, with
/// their count.
async fn every_verification_mail(catcher: &MailCatcher, emails: &[String]) -> Vec<(String, usize)> {
    let missing = || {
        let caught = catcher.messages();
        emails
            .iter()
            .filter(|e| {
                !caught
                    .iter()
                    .any(|m| m.subject == VERIFY_SUBJECT && m.to.contains(e))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let all = eventually(
        Duration::from_secs(90),
        Duration::from_millis(250),
        || async { missing().is_empty() },
    )
    .await;
    assert!(all, "mail lost, never caught for: {:?}", missing());
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for mail in catcher.messages() {
        *by_id.entry(mail.message_id).or_default() += 1;
    }
    let mut repeated: Vec<_> = by_id.into_iter().filter(|(_, n)| *n > 1).collect();
    repeated.sort();
    repeated
}

fn nats_args(port: u16) -> Vec<String> {
    ["-c", NATS_CONF, "-a", "127.0.0.1", "-p"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([port.to_string()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mail_is_lost_when_the_mail_worker_dies_smtp_is_down_and_nats_restarts() {
    let passwords = Passwords::random();
    // The JetStream store outlives the nats-server process.
    let store = TempDir::new();
    let nats_env = [("NATS_JETSTREAM_DIR", store.path.display().to_string())];
    let args = nats_args(free_port());
    let mut nats = NatsProcess::start("nats", &args, &passwords, &nats_env).await;
    let db = TestDb::create().await;
    let stack = Stack::on(Backends::of(nats.url(), &passwords, &db), &[]).await;
    let _auth = stack.worker_with("auth-worker", AUTH_ENV);
    let _user = stack.worker("user-worker");
    let mut catcher = MailCatcher::start().await;
    let dir = TempDir::new();
    let config = mail_worker_config(&dir, catcher.port());
    let mut mailer = mail_worker(&stack, &config);
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("mail-worker", 1).await;

    let emails: Vec<String> = (0..30).map(|i| format!("lost{i}@example.com")).collect();
    for email in &emails {
        stack.signup_ok(email).await;
    }
    // Mails in flight: a copy SIGKILLed mid-send, the SMTP server gone.
    mailer.kill_hard().await;
    catcher.stop().await;
    let sent_before = catcher.messages().len();
    // A new copy meets the dead SMTP server: its tries fail and wait.
    let mut mailer = mail_worker(&stack, &config);
    stack.wait_for_copies("mail-worker", 1).await;
    // The outage itself: 30 s without an SMTP server (the scenario, not a
    // wait for something to happen).
    tokio::time::sleep(Duration::from_secs(30)).await;
    catcher.restart().await;
    // nats-server restarted once, on the same port and store.
    nats.kill().await;
    let _nats = NatsProcess::start("nats", &args, &passwords, &nats_env).await;

    let repeated = every_verification_mail(&catcher, &emails).await;
    // At least once: a mail handed over just before the SIGKILL, or before
    // its event's ack was lost with the server, is sent again, with the
    // same Message-ID.
    println!(
        "{} mails before the kill; {} Message-IDs caught more than once: {repeated:?}",
        sent_before,
        repeated.len()
    );
    assert!(mailer.is_running(), "the mail-worker survives the outages");
    assert_eq!(
        mailer.terminate().await.code(),
        Some(0),
        "drains and exits 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_worker_killed_while_its_relay_publishes_sends_no_event_twice() {
    let passwords = Passwords::random();
    let args = nats_args(free_port());
    let nats = NatsProcess::start("nats", &args, &passwords, &[]).await;
    let db = TestDb::create().await;
    let stack = Stack::on(Backends::of(nats.url(), &passwords, &db), &[]).await;
    let mut auth = stack.worker_with("auth-worker", AUTH_ENV);
    let _user = stack.worker("user-worker");
    let catcher = MailCatcher::start().await;
    let dir = TempDir::new();
    let config = mail_worker_config(&dir, catcher.port());
    let _mailer = mail_worker(&stack, &config);
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("mail-worker", 1).await;

    // Sign-ups answered, their events in the outbox; the relay is killed
    // while it publishes them (between a publish and its mark, for some).
    // (One at a time: the gateway admits only so many sign-ups of one
    // client at once.)
    let emails: Vec<String> = (0..20).map(|i| format!("relay{i}@example.com")).collect();
    for email in &emails {
        stack.signup_ok(email).await;
    }
    auth.kill_hard().await;
    let _auth = stack.worker_with("auth-worker", AUTH_ENV);
    let repeated = every_verification_mail(&catcher, &emails).await;
    assert_eq!(repeated, [], "mails sent twice");

    // Where a kill lands is chance; this is the state it leaves at worst:
    // every row published, none marked. The relay publishes them all again
    // and the stream keeps one copy of each (Nats-Msg-Id = the outbox id).
    let pool = db.pool().await;
    let unmarked = sqlx::query("update outbox set published_at = null")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(
        unmarked >= emails.len() as u64 * 2,
        "sign-ups wrote their events"
    );
    let relayed_again = eventually(Duration::from_secs(30), Duration::from_millis(50), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from outbox where published_at is null")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 0
        }
    })
    .await;
    assert!(relayed_again, "the relay publishes the unmarked rows again");
    let (ops, _) = testkit::connect(&nats.url(), &passwords, "ops", "_INBOX_ops")
        .await
        .unwrap();
    let stream = jetstream::new(ops)
        .get_stream_no_info(shared::events::STREAM)
        .await
        .unwrap();
    let subject = "events.auth.email.verification_requested";
    let counts: HashMap<String, usize> = stream
        .info_with_subjects(subject)
        .await
        .unwrap()
        .filter_map(|entry| async move { entry.ok() })
        .collect()
        .await;
    assert_eq!(
        counts.get(subject).copied(),
        Some(emails.len()),
        "one event per sign-up in AUTH_EVENTS"
    );
}
