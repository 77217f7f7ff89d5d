//! SIGINT and SIGTERM during a writing command: stop at the next safe point, never in the
//! middle of a write (SPEC §7).
//!
//! A signal handler may only do async-signal-safe things, so ours does one of two: inside a
//! guarded section (a writing command: `apply`, `rollback`, `repair`, and the recovery of an
//! interrupted run) it stores the signal's number in an atomic and returns; the command
//! polls [`check`] at the points where the crash tests already prove a SIGKILL safe (between
//! phases, before each working-tree file), and unwinds through its ordinary error paths,
//! which remove temporary files and never leave git's `index.lock` held. Outside a guarded
//! section, or at a second signal, the handler runs the signal's default action (the process
//! ends as if no handler existed, which is what a SIGKILL at that moment would do too, and
//! that is proven safe).
//!
//! The binary installs the handlers with [`install`]; a library user who wants the same may
//! call it too, or call [`request`] from its own shutdown logic.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The signal received inside a guarded section (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// How many guarded sections are open (they nest: `apply` inside the CLI's recovery).
static GUARDED: AtomicUsize = AtomicUsize::new(0);

/// A writing command was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.signal))]
pub struct Interrupted {
    /// The signal's number (`SIGINT` is 2, `SIGTERM` 15).
    pub signal: i32,
}

/// The name of a signal, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Installs the SIGINT and SIGTERM handlers (once per process).
pub fn install() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // SAFETY: the action only does async-signal-safe things: atomic loads and a
        // compare-exchange, and `emulate_default_handler`, which signal-hook documents as
        // async-signal-safe. It allocates nothing and takes no lock.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                let first = RECEIVED
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                if GUARDED.load(Ordering::SeqCst) == 0 || !first {
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                }
            })?;
        }
    }
    Ok(())
}

/// Marks a section that must stop only at safe points; ends when dropped.
#[must_use = "the section ends when the guard is dropped"]
pub struct Guard(());

/// Opens a guarded section.
pub fn guard() -> Guard {
    GUARDED.fetch_add(1, Ordering::SeqCst);
    Guard(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        GUARDED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The signal that asked this process to stop, if any.
pub fn requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Asks the running command to stop at its next safe point, as a signal would.
pub fn request(signal: i32) {
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
}

/// A safe point: `Err` when a stop was requested.
pub fn check() -> Result<(), Interrupted> {
    match requested() {
        None => Ok(()),
        Some(signal) => Err(Interrupted { signal }),
    }
}

/// Ends the process by the signal that interrupted it, with that signal's default action,
/// so the parent sees the usual status (a shell prints nothing and `$?` is 130 for SIGINT).
/// Returns when no signal was received.
pub fn exit_if_requested() {
    if let Some(sig) = requested() {
        let _ = signal_hook::low_level::emulate_default_handler(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(
            Interrupted { signal: 15 }.to_string(),
            "interrupted by SIGTERM"
        );
    }
}
