//! What a test takes from the machine: a directory of its own. (Its free
//! ports come from [`crate::free_port`].)

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
