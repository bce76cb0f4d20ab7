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

/// A port of 127.0.0.1 that nothing listens on (for a process that must be
/// told its port, or a server that comes back on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
