//! Fault-injection points for the crash and race tests.
//!
//! Only debug builds (what `cargo test` runs) read these variables; in a release build
//! every function here is empty. `ARTIFACT_MIGRATE_FAULT=NAME` makes the process announce
//! `fault-point: NAME` on stderr at that point and hang there until the test kills it with
//! SIGKILL. `ARTIFACT_MIGRATE_PAUSE=NAME:FILE` (or `NAME:K:FILE` at a counted point)
//! announces `paused: NAME` and waits until FILE exists, so a test can line two processes up
//! at the same point, or change the file system under a process at a known point. A SIGINT
//! or SIGTERM (see [`crate::interrupt`]) ends either wait, so a test can send a real signal
//! to a process standing at a known point; the caller's next safe point then stops it.

/// A named point in a transaction.
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    {
        if std::env::var("ARTIFACT_MIGRATE_FAULT").is_ok_and(|v| v == name) {
            hang(name);
        }
        if let Ok(v) = std::env::var("ARTIFACT_MIGRATE_PAUSE") {
            if let Some((n, file)) = v.split_once(':') {
                if n == name {
                    pause(name, file);
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// A point reached once per item: `NAME:K` fires when the K-th item is reached; every
/// other thread that comes by afterwards hangs too, so nothing more gets done.
pub fn counted(name: &str, counter: &std::sync::atomic::AtomicUsize) {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static FIRED: AtomicBool = AtomicBool::new(false);
        if FIRED.load(Ordering::SeqCst) {
            hang(name);
            return;
        }
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        // `ARTIFACT_MIGRATE_PAUSE=NAME:K:FILE`: pause before the K-th item.
        if let Ok(v) = std::env::var("ARTIFACT_MIGRATE_PAUSE") {
            let mut parts = v.splitn(3, ':');
            if let (Some(p), Some(k), Some(file)) = (parts.next(), parts.next(), parts.next()) {
                if p == name && k.parse::<usize>().is_ok_and(|k| k == n) {
                    pause(&format!("{name}:{k}"), file);
                }
            }
        }
        if let Ok(v) = std::env::var("ARTIFACT_MIGRATE_FAULT") {
            if let Some((p, k)) = v.split_once(':') {
                if p == name && k.parse::<usize>().is_ok_and(|k| k == n) {
                    FIRED.store(true, Ordering::SeqCst);
                    hang(&v);
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (name, counter);
}

/// Announces `paused: NAME` and waits until FILE exists (or a signal was handled).
#[cfg(debug_assertions)]
fn pause(name: &str, file: &str) {
    eprintln!("paused: {name}");
    while !std::path::Path::new(file).exists() && crate::interrupt::requested().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits for the SIGKILL (or, once a signal was handled, returns to the caller's safe point).
#[cfg(debug_assertions)]
fn hang(name: &str) {
    eprintln!("fault-point: {name}");
    while crate::interrupt::requested().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
