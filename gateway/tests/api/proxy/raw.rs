//! Requests written byte for byte on a socket, where a client library would
//! normalize the path or a header name, and the reply as the gateway wrote
//! it.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

/// A reply as the gateway wrote it on the socket.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl RawReply {
    pub(crate) fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {} {}", self.head, String::from_utf8_lossy(&self.body))
        })
    }

    /// Asserts the contract's error shape with `status` for `path`.
    pub(crate) fn assert_error(&self, status: u16, path: &str) {
        assert_eq!(self.status, status, "{}", self.head);
        let body = self.json();
        assert_eq!(body["statusCode"], status, "{body}");
        assert_eq!(body["path"], path, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            body["requestId"].as_str().unwrap(),
            self.headers("x-request-id")[0],
            "{body}"
        );
    }
}

/// `request_line` (`METHOD target`) and `headers`, written exactly as given
/// on a new connection to `app` (with its `Host` unless one is given, and
/// `Connection: close` unless a `Connection` is given); the reply, read to
/// its end (only its head for a 101).
pub(crate) async fn raw(app: &TestApp, request_line: &str, headers: &[(&str, &str)]) -> RawReply {
    let authority = app.base.trim_start_matches("http://").to_owned();
    let mut text = format!("{request_line} HTTP/1.1\r\n");
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("host") {
        text.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has("connection") {
        text.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 8192];
        let end_of_head = loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed before a reply head");
            received.extend_from_slice(&buffer[..n]);
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
        };
        let head = String::from_utf8_lossy(&received[..end_of_head]).into_owned();
        let mut reply = RawReply {
            status: head.split(' ').nth(1).unwrap().parse().unwrap(),
            head,
            body: received[end_of_head + 4..].to_vec(),
        };
        let length = reply
            .headers("content-length")
            .first()
            .map(|l| l.parse().unwrap());
        let chunked = !reply.headers("transfer-encoding").is_empty();
        // Read to the body's end (the connection may stay open).
        while reply.status != 101
            && match length {
                Some(length) => reply.body.len() < length,
                None if chunked => !reply.body.ends_with(b"0\r\n\r\n"),
                None => true,
            }
        {
            let n = stream.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            reply.body.extend_from_slice(&buffer[..n]);
        }
        if chunked {
            reply.body = dechunk(&reply.body);
        }
        reply
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("a reply within 10 s")
}

/// A chunked body's content.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
    out
}
