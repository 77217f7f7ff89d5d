//! Progress reporting without a terminal: the CLI plugs in a progress bar, the library
//! default reports nothing.

/// Receives progress for each long phase (scan, transform, write objects, update files).
pub trait Progress: Sync {
    /// A phase starts; `total` is its number of items (0 when unknown).
    fn start(&self, phase: &str, total: u64);
    /// `n` more items of the current phase are done.
    fn inc(&self, n: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: u64) {}
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}
