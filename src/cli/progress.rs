//! Progress bars on stderr (indicatif), only when stderr is a terminal and neither `-q`
//! nor `--json` was given.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use artifact_migrate::engine::Progress;

/// A progress bar per phase, or nothing at all.
pub struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        Bars {
            enabled,
            bar: Mutex::new(None),
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
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
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(b) = slot.take() {
                b.finish_and_clear();
            }
        }
    }
}
