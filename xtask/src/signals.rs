//! SIGINT (Ctrl-C), SIGTERM and SIGHUP: counted, never fatal by themselves.
//!
//! Once the handler is installed xtask does not die on these signals; the
//! long-running loops poll [`requested`] and shut their children down in
//! order. A second signal asks for haste ([`count`] > 1).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

static RECEIVED: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler (once per process).
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        let n = RECEIVED.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            println!("\nstopping… (press Ctrl-C again to kill at once)");
        } else {
            println!("\nkilling what is left…");
        }
    })
    .context("installing the Ctrl-C/SIGTERM handler")
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    count() > 0
}

/// How many stop signals arrived.
pub fn count() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}
