//! NATS over TLS, as the README tells operators to run it off loopback: a
//! nats-server with the project's `nats.conf` plus a `tls` block, and
//! processes that trust a private CA through `nats.tls_ca_file`.

use std::{path::Path, process::Command};

use testkit::{NATS_CONF, NatsServer, TempDir};

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's `openssl` package) makes the test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed
/// (`server.pem`, `server.key`), in `dir`.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=natsauth test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

fn settings(server: &NatsServer, url: String, ca: Option<&Path>) -> runtime::nats::NatsSettings {
    runtime::nats::NatsSettings {
        url,
        user: "gateway".into(),
        password: Some(server.passwords.gateway.clone().into()),
        password_file: None,
        inbox_prefix: "_INBOX_gateway".into(),
        connect_timeout_ms: 2000,
        tls_ca_file: ca.map(Path::to_path_buf),
    }
}

#[tokio::test]
async fn with_tls_configured_a_process_connects_only_when_it_trusts_the_servers_ca() {
    let dir = TempDir::new();
    make_certificates(&dir.path);
    // nats-server resolves `include` against the including file's folder.
    std::fs::copy(NATS_CONF, dir.path.join("nats.conf")).unwrap();
    // Certificate paths are read from the server's working directory.
    let tls = format!(
        "include \"nats.conf\"\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
        dir.path.join("server.pem").display(),
        dir.path.join("server.key").display()
    );
    std::fs::write(dir.path.join("tls.conf"), tls).unwrap();
    let server = NatsServer::start_with_config(&dir.path.join("tls.conf")).await;
    let tls_url = format!("tls://127.0.0.1:{}", server.port());
    let ca = dir.path.join("ca.pem");

    // Trusting the CA: connected, and requests flow.
    let client = runtime::nats::connect(&settings(&server, tls_url.clone(), Some(&ca)), "gateway")
        .await
        .expect("connects over TLS with the CA");
    client.flush().await.unwrap();
    // `nats://` with a CA file still insists on TLS.
    runtime::nats::connect(&settings(&server, server.url(), Some(&ca)), "gateway")
        .await
        .expect("a CA file requires TLS whatever the scheme");

    // Without the CA the certificate is unknown: refused.
    let untrusting = runtime::nats::connect(&settings(&server, tls_url, None), "gateway").await;
    assert!(untrusting.is_err(), "connected without trusting the CA");
}

#[tokio::test]
async fn a_ca_file_refuses_a_server_without_tls() {
    let dir = TempDir::new();
    make_certificates(&dir.path);
    let plain = NatsServer::start().await;
    let result = runtime::nats::connect(
        &settings(&plain, plain.url(), Some(&dir.path.join("ca.pem"))),
        "gateway",
    )
    .await;
    assert!(result.is_err(), "a plain-text server was accepted");
}
