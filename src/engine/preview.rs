//! Lazy migration on read: one committed manifest as it would be at a version, exactly as
//! `apply` would write it, computed in memory. What `show` prints and what a server serves.
//! It never writes anything: no object, no ref, no file, no cache.

use crate::config::Config;
use crate::engine::batch::batch_time;
use crate::engine::history::{tool_name, BatchInfo};
use crate::engine::migrate::{
    migrate_manifest, ChangeNote, ManifestError, MigrateOptions, Outcome,
};
use crate::error::ErrorKind;
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};
use crate::schema::{Registry, StepId, Version};

/// A manifest as stored at a commit and as served at a version.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The commit it was read from.
    pub commit: CommitId,
    pub path: RepoPath,
    /// The bytes in the commit's tree, and their version.
    pub stored: Vec<u8>,
    pub stored_version: Version,
    /// The bytes at the asked version (the stored ones when already there), and that version.
    pub served: Vec<u8>,
    pub served_version: Version,
    /// The migrations run, in order (empty when already at the version).
    pub steps: Vec<StepId>,
    pub changes: Vec<ChangeNote>,
}

/// Why a manifest cannot be previewed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{path}: not a file in the tree of {}; only committed manifests can be shown", .commit.short())]
    NotFound { commit: CommitId, path: RepoPath },
    /// The manifest cannot be migrated (or is a symbolic link).
    #[error("{path}: {source}")]
    Manifest {
        path: RepoPath,
        source: Box<ManifestError>,
    },
    #[error("the registry has no migrations")]
    EmptyRegistry,
    #[error(transparent)]
    Git(#[from] GitError),
}

impl PreviewError {
    /// What kind of failure this is (exhaustive: a new variant must be classified here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PreviewError::NotFound { .. } => ErrorKind::NotFound,
            PreviewError::Manifest { .. } => ErrorKind::Failed,
            PreviewError::EmptyRegistry => ErrorKind::Environment,
            PreviewError::Git(g) => g.kind(),
        }
    }

    /// The one file to blame, if there is one.
    pub fn path(&self) -> Option<String> {
        match self {
            PreviewError::NotFound { path, .. } | PreviewError::Manifest { path, .. } => {
                Some(path.to_string())
            }
            PreviewError::EmptyRegistry => None,
            PreviewError::Git(g) => g.path(),
        }
    }
}

/// The manifest at `path` in `commit`'s tree, migrated in memory to `target` (default: the
/// registry's latest version) with every check `apply` runs, as if a batch were built on
/// `commit` now.
pub fn preview(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    commit: CommitId,
    path: &RepoPath,
    target: Option<Version>,
) -> Result<Preview, PreviewError> {
    let entry = repo
        .read_entry(commit, path.as_str())
        .ok_or_else(|| PreviewError::NotFound {
            commit,
            path: path.clone(),
        })?;
    preview_bytes(repo, cfg, registry, commit, path, entry, target)
}

/// [`preview`] of an entry the caller has already read from `commit`'s tree at `path` (its
/// bytes and file mode): what the server does with the blob id its index holds, which spares
/// the walk down the commit's trees (not cached, `main.rs`) on every request.
pub fn preview_bytes(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    commit: CommitId,
    path: &RepoPath,
    entry: (Vec<u8>, i32),
    target: Option<Version>,
) -> Result<Preview, PreviewError> {
    let (stored, mode) = entry;
    let failed = |source| PreviewError::Manifest {
        path: path.clone(),
        source: Box::new(source),
    };
    if mode == 0o120000 {
        return Err(failed(ManifestError::Symlink));
    }
    let target = match target {
        Some(v) => v,
        None => registry.latest().ok_or(PreviewError::EmptyRegistry)?,
    };
    let batch = BatchInfo {
        applied_at: batch_time(repo)?,
        base_commit: commit,
        tool: tool_name(),
    };
    let opts = MigrateOptions {
        registry,
        target,
        artifacts_root: &cfg.artifacts_root,
        layouts: &cfg.layouts,
        protected: &cfg.protected,
    };
    match migrate_manifest(&stored, path.as_str(), &opts, &batch).map_err(failed)? {
        Outcome::Current(v) => Ok(Preview {
            commit,
            path: path.clone(),
            served: stored.clone(),
            stored,
            stored_version: v,
            served_version: v,
            steps: Vec::new(),
            changes: Vec::new(),
        }),
        Outcome::Migrated(m) => {
            let m = *m;
            Ok(Preview {
                commit,
                path: path.clone(),
                stored,
                stored_version: m.from,
                served: m.bytes,
                served_version: m.to,
                steps: m.steps,
                changes: m.changes,
            })
        }
    }
}
