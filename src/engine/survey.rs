//! The survey behind `status`: every committed manifest's version, read-only.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::config::Config;
use crate::engine::batch::{EngineError, Failure};
use crate::engine::migrate::{parse_manifest, read_version, ManifestError};
use crate::engine::progress::Progress;
use crate::git::scan::{matches_pathspec, scan_commit};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::schema::{Registry, Version};

/// The versions of the manifests of one commit.
#[derive(Debug, Clone)]
pub struct Survey {
    pub commit: CommitId,
    pub latest: Version,
    pub total: usize,
    pub versions: BTreeMap<Version, usize>,
    /// Manifests below the latest version with a path to it.
    pub pending: usize,
    /// Manifests that cannot be migrated as they are.
    pub invalid: Vec<Failure>,
}

/// Reads every manifest of `commit` (restricted to `pathspecs`) and counts versions.
pub fn survey(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    commit: CommitId,
    pathspecs: &[String],
    progress: &dyn Progress,
) -> Result<Survey, EngineError> {
    let latest = registry.latest().ok_or(EngineError::EmptyRegistry)?;
    progress.start("scan", 0);
    let scan = scan_commit(repo, commit, cfg)?;
    progress.finish();
    let mut invalid: Vec<Failure> = scan
        .symlinks
        .iter()
        .filter(|p| matches_pathspec(p.as_str(), pathspecs))
        .map(|p| Failure {
            path: p.to_string(),
            kind: ManifestError::Symlink.kind(),
            error: ManifestError::Symlink.to_string(),
        })
        .collect();
    let links = invalid.len();
    let entries: Vec<_> = scan
        .manifests
        .into_iter()
        .filter(|m| matches_pathspec(m.path.as_str(), pathspecs))
        .collect();
    progress.start("read", entries.len() as u64);
    let mut blobs = Vec::with_capacity(entries.len());
    for e in &entries {
        let blob = repo
            .git
            .find_blob(e.blob)
            .map_err(GitError::git(format!("read {}", e.path)))?;
        blobs.push(blob.content().to_vec());
        progress.inc(1);
    }
    progress.finish();
    let results: Vec<Result<Version, ManifestError>> = blobs
        .par_iter()
        .map(|b| {
            let (_, value) = parse_manifest(b)?;
            let v = read_version(&value)?;
            registry.path(v, latest)?;
            Ok(v)
        })
        .collect();
    let mut versions = BTreeMap::new();
    let mut pending = 0;
    for (e, r) in entries.iter().zip(results) {
        match r {
            Ok(v) => {
                *versions.entry(v).or_insert(0) += 1;
                if v < latest {
                    pending += 1;
                }
            }
            Err(err) => invalid.push(Failure {
                path: e.path.to_string(),
                kind: err.kind(),
                error: err.to_string(),
            }),
        }
    }
    invalid.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Survey {
        commit,
        latest,
        total: entries.len() + links,
        versions,
        pending,
        invalid,
    })
}
