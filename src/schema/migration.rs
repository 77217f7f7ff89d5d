//! The `Migration` trait: one edge of the schema graph.
//!
//! A migration is pure: it looks at a document and says which edits to make, each with a
//! human description. It never sees the file system or git, and it never writes
//! `schema_version` or `migration_history` itself: the engine does both, so every migration
//! gets them right the same way.

use std::fmt;

use crate::layout::{Layouts, Placement};
use crate::manifest::{Edit, Json};
use crate::schema::Version;

/// What a migration is told about the manifest it transforms.
#[derive(Debug, Clone, Copy)]
pub struct MigrationContext<'a> {
    /// The manifest's path inside the repository, `/`-separated (e.g. `artifacts/job-a/run-1/manifest.json`).
    pub path: &'a str,
    /// The artifacts root the path lies under (e.g. `artifacts`).
    pub artifacts_root: &'a str,
    /// The configured layouts (§2): where a run's directory says which job and run it is.
    pub layouts: &'a Layouts,
}

impl<'a> MigrationContext<'a> {
    /// Where the path places the run: its layout and the ids its directories give, when it
    /// fits one of the configured layouts.
    pub fn placement(&self) -> Option<Placement<'a>> {
        self.layouts.place(self.artifacts_root, self.path)
    }
}

/// One edit a migration makes, with what it means to a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The edit on the document.
    pub edit: Edit,
    /// What was done to *this* manifest, e.g. `Add job_id "job-a" (from the path)`.
    /// Goes into the manifest's history entry.
    pub detail: String,
    /// The same without per-manifest values, e.g. `Add job_id (from the path)`.
    /// The commit message groups manifests by it.
    pub summary: String,
}

impl Change {
    /// A change whose detail and summary are the same text.
    pub fn new(edit: Edit, text: impl Into<String>) -> Self {
        let text = text.into();
        Change {
            edit,
            detail: text.clone(),
            summary: text,
        }
    }
}

/// Why a migration could not be applied to a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MigrationError(pub String);

impl MigrationError {
    pub fn new(msg: impl Into<String>) -> Self {
        MigrationError(msg.into())
    }
}

/// One edge `from -> to` of the schema graph.
///
/// Implement it to register a migration written in Rust with
/// [`Registry::register`](crate::schema::Registry::register).
pub trait Migration: Send + Sync {
    /// The version a manifest must be at.
    fn from(&self) -> Version;
    /// The version the manifest is at afterwards.
    fn to(&self) -> Version;
    /// What the migration does, one line per change, as declared (shown by `migrations`).
    fn describe(&self) -> Vec<String>;
    /// Checks a manifest before the transform (default: nothing to check).
    fn validate_before(
        &self,
        _doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<(), MigrationError> {
        Ok(())
    }
    /// The pure transform: the edits to make to this document. Only what is actually
    /// needed: a member that is already there is not re-added.
    fn transform(
        &self,
        doc: &Json,
        ctx: &MigrationContext<'_>,
    ) -> Result<Vec<Change>, MigrationError>;
    /// Checks the manifest after the transform (default: nothing to check).
    fn validate_after(
        &self,
        _doc: &Json,
        _ctx: &MigrationContext<'_>,
    ) -> Result<(), MigrationError> {
        Ok(())
    }
    /// The edge's name as written in history and trailers: `1.0.0->1.2.0`.
    fn id(&self) -> StepId {
        StepId {
            from: self.from(),
            to: self.to(),
        }
    }
    /// `sha256:...` of the canonical form of this migration's definition, recorded in history so
    /// `verify` can tell when a definition changed after it was applied. The default hashes
    /// `from`, `to` and `describe()` ([`crate::schema::checksum`], `am-builtin-v1`).
    fn checksum(&self) -> String {
        crate::schema::checksum::builtin_checksum(self.from(), self.to(), &self.describe())
    }
    /// The repository file that defines this migration (`None` for one written in Rust).
    fn source(&self) -> Option<&str> {
        None
    }
    /// Whether this migration may drop data (remove a member or overwrite a value); plan warns.
    fn lossy(&self) -> bool {
        false
    }
}

/// The name of an edge, `FROM->TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepId {
    pub from: Version,
    pub to: Version,
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

impl serde::Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_uses_the_configured_layouts() {
        let layouts = Layouts::default();
        let ctx = |path| MigrationContext {
            path,
            artifacts_root: "artifacts",
            layouts: &layouts,
        };
        let p = ctx("artifacts/job-a/run-1/manifest.json")
            .placement()
            .unwrap();
        assert_eq!(
            (p.job_id, p.run_id, p.is_canonical()),
            (Some("job-a"), "run-1", true)
        );
        let p = ctx("artifacts/runs/run-1/manifest.json")
            .placement()
            .unwrap();
        assert_eq!(
            (p.job_id, p.run_id, p.is_canonical()),
            (None, "run-1", false)
        );
        assert_eq!(ctx("artifacts/job-a/manifest.json").placement(), None);
        assert_eq!(ctx("other/job-a/run-1/manifest.json").placement(), None);
    }
}
