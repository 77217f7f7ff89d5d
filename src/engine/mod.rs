//! The engine: plan a batch (scan, choose paths, transform, check) and apply it (objects,
//! commit, compare-and-swap, working tree).

pub mod batch;
pub mod branch_check;
pub mod drift;
pub mod error;
pub mod history;
pub mod invariants;
pub mod land;
pub mod log;
pub mod migrate;
pub mod preview;
pub mod progress;
pub mod registry;
pub mod relocate;
pub mod repair;
pub mod rollback;
pub mod survey;
pub mod timeline;
pub mod validate;
pub mod verify;
pub mod verify_inputs;
pub mod verify_signatures;

pub use batch::{
    apply, plan, ApplyOptions, ApplyReport, BatchPlan, Failure, PlanOptions, PlannedManifest,
};
pub use error::EngineError;
pub use history::{tool_name, BatchInfo, HistoryEntry};
pub use migrate::{migrate_manifest, ManifestError, MigrateOptions, Migrated, Outcome};
pub use preview::{preview, preview_bytes, Preview, PreviewError};
pub use progress::{NoProgress, Progress};
pub use survey::{status, Status, Survey};
