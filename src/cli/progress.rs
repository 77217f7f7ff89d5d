//! Progress bars on stderr (indicatif), only when stderr is a terminal and neither `-q`
//! nor `--json` was given.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use artifact_migrate::engine::Progress;

/// A progress bar per phase, or nothing at all.
pub struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// `ARTIFACT_MIGRATE_TIMINGS=1`: print each phase's wall time on stderr (for profiling).
    timings: Option<Mutex<Option<(String, Instant)>>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        let timings = std::env::var_os("ARTIFACT_MIGRATE_TIMINGS").map(|_| Mutex::new(None));
        Bars {
            enabled,
            bar: Mutex::new(None),
            timings,
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
        if let Some(Ok(mut t)) = self.timings.as_ref().map(|t| t.lock()) {
            *t = Some((phase.to_string(), Instant::now()));
        }
        if !self.enabled {
            return;
        }
        let bar = if total > 0 {
            let b = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} ({eta})")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b
        } else {
            ProgressBar::new_spinner()
        };
        bar.set_prefix(phase.to_string());
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }
    fn inc(&self, n: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(b) = slot.as_ref() {
                b.inc(n);
            }
        }
    }
    fn finish(&self) {
        if let Some(Ok(mut t)) = self.timings.as_ref().map(|t| t.lock()) {
            if let Some((phase, start)) = t.take() {
                eprintln!("timing: {phase}: {:.3}s", start.elapsed().as_secs_f64());
            }
        }
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(b) = slot.take() {
                b.finish_and_clear();
            }
        }
    }
}
