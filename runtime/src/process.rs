//! Process-wide settings each binary makes before anything else.

/// Turns transparent huge pages off for this process (Linux; elsewhere a
/// no-op). The processes use mimalloc (see the workspace's `Cargo.toml`),
/// whose regions are 2 MiB-aligned: where the kernel's THP setting is
/// `always`, every region touched becomes a resident huge page: more
/// resident memory for no speed (docs/adr/0007-allocator-huge-pages-threads.md).
/// A small server heap gains nothing from huge pages.
/// (The auth-worker does not call this: its argon2id arenas want huge pages.)
/// A refusal (an old kernel) only costs that memory, so it is returned for
/// the log, not raised.
pub fn no_transparent_huge_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(true).map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (0 to 19; Linux
/// keeps a nice value per thread; elsewhere a no-op). For threads doing
/// expensive work that must not take the CPU from the requests beside it:
/// the auth-worker's argon2id threads. A thread may always lower its own
/// priority; raising it back needs a privilege, so such threads keep it.
pub fn lower_this_threads_priority(nice: i32) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice.clamp(0, 19))
            .map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        Ok(())
    }
}

/// The nice value of the calling thread (Linux; elsewhere 0).
pub fn this_threads_nice() -> Result<i32, String> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid()))
            .map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(0)
    }
}
