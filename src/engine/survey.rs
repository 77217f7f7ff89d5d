//! The survey behind `status`: every committed manifest's version, read-only.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::config::Config;
use crate::engine::batch::Failure;
use crate::engine::error::EngineError;
use crate::engine::migrate::{read_manifest, read_version, ManifestError, IMPLICIT_VERSION};
use crate::engine::progress::Progress;
use crate::git::cache::{CachedVersion, VersionCache};
use crate::git::pack_order::PackOrder;
use crate::git::rounds::in_rounds;
use crate::git::scan::{
    layout_counts, matches_pathspec, run_pairs, scan_commit, RunPair, TreeManifest,
};
use crate::git::worktree::{manifest_files, manifest_state, WorktreeState};
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};
use crate::manifest::Json;
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
    /// Every committed manifest in scope with its blob.
    pub manifests: Vec<(RepoPath, git2::Oid)>,
    /// Manifests per configured layout (every layout, canonical first).
    pub layouts: Vec<(String, usize)>,
    /// Manifests whose path fits no configured layout.
    pub unplaced: usize,
    /// Runs in scope present in the canonical layout and in another one.
    pub pairs: Vec<RunPair>,
}

/// What `status` reports: the survey of a commit and the working tree against it.
#[derive(Debug, Clone)]
pub struct Status {
    pub survey: Survey,
    /// The committed manifests in scope that are dirty, and the untracked ones (in scope).
    pub worktree: WorktreeState,
}

/// The survey of `commit` (every manifest's version) and the working tree's
/// [`manifest_state`] against its manifests in scope (empty for a bare repository), the
/// second on a thread of its own (with its own libgit2 handle) beside the first: it walks
/// the artifacts directory while the commit is scanned, then compares the files with the
/// scan's manifests while their blobs are read (the two took about as long, one after the
/// other). The survey's error comes first, as when they ran in turn; the phase `working
/// tree` is the wait for that thread after the survey.
pub fn status(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    commit: CommitId,
    pathspecs: &[String],
    progress: &dyn Progress,
) -> Result<Status, EngineError> {
    let other = repo.reopen()?;
    let (tx, rx) = std::sync::mpsc::channel::<Vec<(RepoPath, git2::Oid)>>();
    std::thread::scope(|s| {
        let worker = s.spawn(move || -> Result<WorktreeState, GitError> {
            let files = manifest_files(&other, cfg);
            // Closed without a list: the survey failed before its scan was done.
            let Ok(committed) = rx.recv() else {
                return Ok(WorktreeState::default());
            };
            manifest_state(
                &other,
                cfg,
                &committed,
                |p| matches_pathspec(p, pathspecs),
                files,
            )
        });
        let survey = survey(repo, cfg, registry, commit, pathspecs, progress, |m| {
            // A closed channel: the thread panicked, which the join below passes on.
            let _ = tx.send(m.iter().map(|e| (e.path.clone(), e.blob)).collect());
        });
        progress.start("working tree", 0);
        let worktree = match worker.join() {
            Ok(w) => w,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        progress.finish();
        Ok(Status {
            survey: survey?,
            worktree: worktree?,
        })
    })
}

/// Reads every manifest of `commit` (restricted to `pathspecs`) and counts versions,
/// handing `scanned` the commit's manifests in scope as soon as the scan has found them
/// (before their blobs are read).
fn survey(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    commit: CommitId,
    pathspecs: &[String],
    progress: &dyn Progress,
    scanned: impl FnOnce(&[TreeManifest]),
) -> Result<Survey, EngineError> {
    let latest = registry.latest().ok_or(EngineError::EmptyRegistry)?;
    progress.start("scan", 0);
    let scan = scan_commit(repo, commit, cfg)?;
    progress.finish();
    let mut invalid: Vec<Failure> = scan
        .symlinks
        .iter()
        .filter(|p| matches_pathspec(p.as_str(), pathspecs))
        .map(|p| Failure::new(p, &ManifestError::Symlink))
        .collect();
    let links = invalid.len();
    let entries: Vec<_> = scan
        .manifests
        .into_iter()
        .filter(|m| matches_pathspec(m.path.as_str(), pathspecs))
        .collect();
    scanned(&entries);
    // Versions by blob id: from the cache where known, else read and parsed (in rounds).
    progress.start("cache", 0);
    let mut cache = VersionCache::load(repo);
    let mut known: Vec<Option<CachedVersion>> = entries.iter().map(|e| cache.get(e.blob)).collect();
    progress.finish();
    let missing: Vec<usize> = (0..entries.len()).filter(|i| known[*i].is_none()).collect();
    progress.start("read", missing.len() as u64);
    // While the pool parses one round, this thread reads the next, in pack order.
    let mut places = PackOrder::read(repo.git_dir()).of(missing.iter().map(|&i| entries[i].blob));
    in_rounds(
        &missing,
        |round| {
            places.read(round, |&i| {
                repo.blob(entries[i].blob, entries[i].path.as_str())
            })
        },
        |_, blobs| {
            blobs
                .par_iter()
                .map(|b| match stated_version(b) {
                    Ok(v) => CachedVersion::Version(v),
                    Err(e) => CachedVersion::Invalid {
                        kind: e.kind().to_string(),
                        message: e.to_string(),
                    },
                })
                .collect()
        },
        |round, read| {
            for (&i, v) in round.iter().zip(read) {
                cache.insert(entries[i].blob, v.clone());
                known[i] = Some(v);
            }
            progress.inc(round.len() as u64);
            Ok::<(), GitError>(())
        },
    )?;
    progress.finish();
    cache.save();
    let mut versions = BTreeMap::new();
    let mut pending = 0;
    for (e, k) in entries.iter().zip(known) {
        let stated = match k {
            Some(CachedVersion::Version(v)) => Ok(v),
            // The cache keeps only that a manifest is invalid: why is read again (such
            // manifests are few), so the failure carries the typed error.
            Some(CachedVersion::Invalid { .. }) | None => {
                stated_version(&repo.blob(e.blob, e.path.as_str())?)
            }
        };
        match stated.and_then(|v| classify(v, registry, latest)) {
            Ok(v) => {
                *versions.entry(v).or_insert(0) += 1;
                if v < latest {
                    pending += 1;
                }
            }
            Err(err) => invalid.push(Failure::new(&e.path, &err)),
        }
    }
    invalid.sort_by(|a, b| a.path.cmp(&b.path));
    let (layouts, unplaced) = layout_counts(cfg, entries.iter().map(|e| e.path.as_str()));
    let pairs = run_pairs(cfg, &entries);
    Ok(Survey {
        layouts,
        unplaced,
        pairs,
        commit,
        latest,
        total: entries.len() + links,
        versions,
        pending,
        invalid,
        manifests: entries.into_iter().map(|e| (e.path, e.blob)).collect(),
    })
}

/// A manifest's `schema_version` as written (`None` when absent), or why it cannot be read.
fn stated_version(bytes: &[u8]) -> Result<Option<String>, ManifestError> {
    let value = read_manifest(bytes)?;
    match value.get("schema_version") {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => read_version(&value).map(|v| Some(v.to_string())),
    }
}

/// A manifest's version as the registry sees it, or why it cannot be migrated.
fn classify(
    stated: Option<String>,
    registry: &Registry,
    latest: Version,
) -> Result<Version, ManifestError> {
    let version = match stated {
        None => IMPLICIT_VERSION,
        Some(s) => s.parse::<Version>()?,
    };
    registry.path(version, latest)?;
    Ok(version)
}
