//! The three-node NATS cluster of `nats-cluster/`: the stack keeps serving
//! when the node its processes use dies.
//!
//! The nodes run from the shipped files, with test ports: `-p` (clients),
//! `-m` (monitoring) and `--cluster` (routes) on the command line, and the
//! route list in `NATS_ROUTES`, as the files expect. `--cluster` replaces the
//! file's route `authorization` with its URL's user and password, so it
//! carries `route:<password>`.

use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{NatsProcess, Passwords, TestDb, eventually, free_port, nats_server_bin};

use crate::{
    load::{Call, Load, assert_fast_gateway_503s, assert_ok_outside, report},
    stack::{Backends, Stack},
};

fn node_conf(node: char) -> String {
    format!(
        "{}/../nats-cluster/node-{node}.conf",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Ports and secrets of a three-node cluster on loopback.
struct Cluster {
    passwords: Passwords,
    route_password: String,
    client_ports: [u16; 3],
    route_ports: [u16; 3],
    monitor_ports: [u16; 3],
    http: reqwest::Client,
}

impl Cluster {
    fn new() -> Self {
        Self {
            passwords: Passwords::random(),
            route_password: format!("r{}", uuid::Uuid::new_v4().simple()),
            client_ports: [free_port(), free_port(), free_port()],
            route_ports: [free_port(), free_port(), free_port()],
            monitor_ports: [free_port(), free_port(), free_port()],
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// Every node's client URL, comma-separated: what each process gets.
    fn urls(&self) -> String {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `NATS_ROUTES`: every node's route URL with `password` in it.
    fn routes(&self, password: &str) -> String {
        let urls: Vec<String> = self
            .route_ports
            .iter()
            .map(|p| format!("nats-route://route:{password}@127.0.0.1:{p}"))
            .collect();
        format!("[{}]", urls.join(", "))
    }

    /// Starts node `i` (0, 1, 2 = a, b, c) from its file, whose routes
    /// present `route_password`.
    async fn start_node(&self, i: usize, route_password: &str) -> NatsProcess {
        let node = ['a', 'b', 'c'][i];
        let args = [
            "-c".to_owned(),
            node_conf(node),
            "-p".to_owned(),
            self.client_ports[i].to_string(),
            "-m".to_owned(),
            self.monitor_ports[i].to_string(),
            "--cluster".to_owned(),
            format!(
                "nats://route:{}@127.0.0.1:{}",
                self.route_password, self.route_ports[i]
            ),
        ];
        NatsProcess::start(
            &format!("node-{node}"),
            &args,
            &self.passwords,
            &[
                ("NATS_ROUTE_PASSWORD", self.route_password.clone()),
                ("NATS_ROUTES", self.routes(route_password)),
            ],
        )
        .await
    }

    /// A monitoring page of node `i` (`routez`, `connz?auth=1`, …).
    async fn monitor(&self, i: usize, page: &str) -> Value {
        self.http
            .get(format!("http://127.0.0.1:{}/{page}", self.monitor_ports[i]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until each of `nodes` has exactly `n` routes.
    async fn await_routes(&self, nodes: &[usize], n: u64) {
        let formed = eventually(
            Duration::from_secs(20),
            Duration::from_millis(20),
            || async move {
                let mut formed = true;
                for &i in nodes {
                    formed &= self.monitor(i, "routez").await["num_routes"] == n;
                }
                formed
            },
        );
        assert!(formed.await, "nodes {nodes:?} never had {n} routes each");
    }

    /// The names of the processes connected to the given nodes (each names
    /// its connection after itself; the gateway's are
    /// `gateway/<service>`), sorted.
    async fn clients_on(&self, nodes: &[usize]) -> Vec<String> {
        let mut names = Vec::new();
        for &i in nodes {
            let connz = self.monitor(i, "connz?auth=1").await;
            // The test's own `ops` connections have no name.
            names.extend(
                connz["connections"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c["name"].as_str().filter(|n| !n.is_empty()))
                    .map(str::to_owned),
            );
        }
        names.sort();
        names
    }

    /// Waits until the given nodes hold exactly `expected` clients.
    async fn await_clients_on(&self, nodes: &[usize], expected: &[&str]) {
        let held = eventually(
            Duration::from_secs(20),
            Duration::from_millis(20),
            || async move { self.clients_on(nodes).await == expected },
        );
        assert!(
            held.await,
            "nodes {nodes:?} hold {:?}, not {expected:?}",
            self.clients_on(nodes).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_routes_refuse_a_wrong_password() {
    let cluster = Cluster::new();
    let a = cluster.start_node(0, &cluster.route_password).await;
    // Node b offers a wrong password: node a refuses the route.
    let mut intruder = cluster.start_node(1, "wrongpassword").await;
    a.wait_for_log("authentication error - User \"route\"")
        .await;
    cluster.await_routes(&[0, 1], 0).await;
    intruder.kill().await;

    // The same node with the right password joins (the refusal was about
    // the password, nothing else).
    let _b = cluster.start_node(1, &cluster.route_password).await;
    cluster.await_routes(&[0, 1], 1).await;

    // Every node file reads the route password from the environment.
    for node in ['a', 'b', 'c'] {
        let check = |with_password: bool| {
            let mut cmd = std::process::Command::new(nats_server_bin());
            cmd.args(["-t", "-c", &node_conf(node)])
                .env("NATS_GATEWAY_PASSWORD", "pa")
                .env("NATS_AUTH_WORKER_PASSWORD", "pb")
                .env("NATS_USER_WORKER_PASSWORD", "pc")
                .env("NATS_MAIL_WORKER_PASSWORD", "pe")
                .env("NATS_OPS_PASSWORD", "pd")
                .env("NATS_JETSTREAM_DIR", std::env::temp_dir())
                .env("NATS_ROUTES", "[]");
            if with_password {
                cmd.env("NATS_ROUTE_PASSWORD", "pr");
            } else {
                cmd.env_remove("NATS_ROUTE_PASSWORD");
            }
            cmd.output().unwrap()
        };
        assert!(check(true).status.success(), "node-{node}.conf is valid");
        let without = check(false);
        assert!(
            !without.status.success()
                && String::from_utf8_lossy(&without.stderr).contains("NATS_ROUTE_PASSWORD"),
            "node-{node}.conf must need NATS_ROUTE_PASSWORD"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_node_every_process_uses_fails_over_to_the_others_without_losing_requests() {
    let cluster = Cluster::new();
    let db = TestDb::create().await;

    // Only node a runs when the processes start, so each one connects there
    // (they are given all three URLs).
    let mut a = cluster.start_node(0, &cluster.route_password).await;
    let backends = Backends::of(cluster.urls(), &cluster.passwords, &db);
    let stack = Stack::on(backends, &[]).await;
    let mut workers = [
        stack.worker("auth-worker"),
        stack.worker("user-worker"),
        stack.worker("user-worker"),
    ];
    // The gateway has a connection per worker service.
    let everyone = [
        "auth-worker",
        "gateway/auth-worker",
        "gateway/user-worker",
        "user-worker",
        "user-worker",
    ];
    cluster.await_clients_on(&[0], &everyone).await;

    // Then b and c join: a three-node cluster, every route up.
    let _b = cluster.start_node(1, &cluster.route_password).await;
    let _c = cluster.start_node(2, &cluster.route_password).await;
    cluster.await_routes(&[0, 1, 2], 2).await;
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("user-worker", 2).await;
    let token = stack.user_token("ada@example.com").await;

    let load = Load::start(&stack, &token, &[Call::me(), Call::jwks()], 6);
    load.wait_for_successes(20).await;
    assert_eq!(
        cluster.clients_on(&[0]).await,
        everyone,
        "every process is on node a when it dies"
    );

    let killed = Instant::now();
    a.kill().await;
    // Everyone moves to b or c, by themselves.
    cluster.await_clients_on(&[1, 2], &everyone).await;
    stack.wait_for_copies("auth-worker", 1).await;
    stack.wait_for_copies("user-worker", 2).await;
    stack.await_readyz(200).await;
    load.wait_for_successes(1).await;
    let recovered = Instant::now();
    load.wait_for_successes(50).await;
    let all = load.stop().await;
    report("node a killed", &all);

    // A call in flight when the gateway's connection died fails at once
    // (its reply cannot come back): 503, not a 504 after the timeout.
    assert_fast_gateway_503s(&all);
    assert_ok_outside(&all, killed, recovered, "kill");
    for worker in &mut workers {
        assert!(worker.is_running());
    }
}
