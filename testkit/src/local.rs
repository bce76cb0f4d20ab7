//! What a test takes from the machine: a directory of its own, a free port.

use std::path::PathBuf;

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    // Not `Default`: each call makes a new directory on disk.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("natsauth-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where [`free_port`] hands out ports: below Linux's ephemeral range
/// (32768–60999 by default), so no outgoing connection takes a port between
/// the check here and the server's own bind.
const PORTS: std::ops::Range<u32> = 10_000..32_000;

/// A port of 127.0.0.1 that nothing listens on (for a process that must be
/// told its port, or a server that comes back on the same one).
///
/// Each port is handed out once per test process: asking the kernel for
/// port 0 and letting it go can give two tests the same port, and then one
/// test's requests reach the other's gateway (the likely cause of a CI run
/// where two process tests failed at once: a first sign-up answered 409,
/// logins 429 from a throttle the test had lifted). Test
/// processes start at a different place in the range (by process id), and a
/// port something else already holds is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};

    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let span = PORTS.end - PORTS.start;
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "every port of {PORTS:?} was handed out");
        let port = u16::try_from(PORTS.start + (start + n) % span).expect("in range");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
