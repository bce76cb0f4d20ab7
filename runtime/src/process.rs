//! Process-wide settings each binary makes before anything else.

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). The processes use mimalloc (see the workspace's `Cargo.toml`),
/// whose regions are 2 MiB-aligned: where the kernel's THP setting is
/// `always`, every region touched became a resident huge page, and the
/// gateway's peak RSS went from 22 to 37 MiB under load for no speed (the
/// benchmark, issue 15). A small server heap gains nothing from huge pages.
/// (The auth-worker does not call this: its argon2id arenas want huge pages.)
/// A refusal (an old kernel) only costs that memory, so it is returned for
/// the log, not raised.
pub fn no_transparent_huge_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_thp_disable(true).map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}
