//! A batch: which manifests, which path, the transformed bytes, the commit message; then
//! objects, commit, compare-and-swap and the working tree.

use std::collections::BTreeMap;

use git2::Oid;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::engine::history::{tool_name, BatchInfo};
use crate::engine::land::{check_no_filters, land};
use crate::engine::migrate::{
    migrate_manifest, ChangeNote, ManifestError, MigrateOptions, Outcome,
};
use crate::engine::progress::Progress;
use crate::fault;
use crate::git::identity::Identity;
use crate::git::message::{BatchMessage, StepGroup};
use crate::git::objects::{write_commit, BlobContent, CommitRequest, FileUpdate};
use crate::git::scan::{matches_pathspec, scan_commit};
use crate::git::worktree::{dirty_paths, PendingFile, WorktreeReport};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};
use crate::schema::{Registry, StepId, Version};

/// An error that stops a whole command (as opposed to one manifest failing).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("unknown target version {target}; the registry knows {known}")]
    UnknownTarget { target: Version, known: String },
    #[error("the registry has no migrations")]
    EmptyRegistry,
    #[error("{} manifest(s) have uncommitted changes; commit or stash them first (nothing was changed): {}", paths.len(), paths.join(", "))]
    DirtyManifests { paths: Vec<String> },
    /// A rollback that would lose or mangle something: not a batch, already rolled back,
    /// manifests changed since. The message says what to do instead.
    #[error("{0}")]
    RollbackRefused(String),
}

/// What to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The target version; `None` = the registry's latest.
    pub target: Option<Version>,
    /// Repository-relative files or directories; empty = every manifest.
    pub pathspecs: Vec<String>,
    /// Commit to this branch instead of HEAD's (created from HEAD if missing).
    pub branch: Option<String>,
}

/// What to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    pub plan: PlanOptions,
    /// Commit the manifests that succeeded even if some failed.
    pub keep_going: bool,
    /// Replaces the commit's subject line.
    pub message: Option<String>,
}

/// A manifest that one failed to migrate, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub path: String,
    pub kind: &'static str,
    pub error: String,
}

impl Failure {
    fn new(path: &RepoPath, e: &ManifestError) -> Self {
        Failure {
            path: path.to_string(),
            kind: e.kind(),
            error: e.to_string(),
        }
    }
}

/// One manifest the batch migrates.
#[derive(Debug, Clone)]
pub struct PlannedManifest {
    pub path: RepoPath,
    pub old_blob: Oid,
    pub new_blob: Oid,
    pub mode: i32,
    pub from: Version,
    pub to: Version,
    pub steps: Vec<StepId>,
    pub changes: Vec<ChangeNote>,
    pub old_bytes: Vec<u8>,
    pub new_bytes: Vec<u8>,
}

/// A manifest already at the target.
#[derive(Debug, Clone)]
pub struct CurrentManifest {
    pub path: RepoPath,
    pub blob: Oid,
    pub version: Version,
}

/// Everything `plan` shows and `apply` commits.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub target: Version,
    pub target_ref: Target,
    pub migrate: Vec<PlannedManifest>,
    pub current: Vec<CurrentManifest>,
    /// Whether `.gitattributes` files could apply to the manifests.
    pub has_gitattributes: bool,
    pub failed: Vec<Failure>,
    pub message: BatchMessage,
}

/// The batch's one timestamp: the committer date (honouring `SOURCE_DATE_EPOCH`); for a
/// plan without a configured identity, now.
pub fn batch_time(repo: &Repo) -> Result<String, GitError> {
    match Identity::from_env(repo) {
        Ok(id) => Ok(id.applied_at),
        Err(GitError::NoIdentity) => {
            Ok(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
        }
        Err(e) => Err(e),
    }
}

/// Plans a batch: reads the manifests of the target ref's commit, migrates each in memory
/// with every check `apply` runs, and writes the commit message. Writes nothing.
pub fn plan(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    opts: &PlanOptions,
    progress: &dyn Progress,
) -> Result<BatchPlan, EngineError> {
    plan_at(repo, cfg, registry, opts, batch_time(repo)?, progress)
}

/// [`plan`] with the batch's timestamp decided by the caller (apply: the committer date).
fn plan_at(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    opts: &PlanOptions,
    applied_at: String,
    progress: &dyn Progress,
) -> Result<BatchPlan, EngineError> {
    let latest = registry.latest().ok_or(EngineError::EmptyRegistry)?;
    let target = opts.target.unwrap_or(latest);
    if !registry.knows(target) {
        let known: Vec<String> = registry.versions().iter().map(|v| v.to_string()).collect();
        return Err(EngineError::UnknownTarget {
            target,
            known: known.join(", "),
        });
    }
    let target_ref = repo.target(opts.branch.as_deref())?;
    progress.start("scan", 0);
    let scan = scan_commit(repo, target_ref.base, cfg)?;
    progress.finish();
    let mut failed: Vec<Failure> = scan
        .symlinks
        .iter()
        .filter(|p| matches_pathspec(p.as_str(), &opts.pathspecs))
        .map(|p| Failure::new(p, &ManifestError::Symlink))
        .collect();
    let entries: Vec<_> = scan
        .manifests
        .into_iter()
        .filter(|m| matches_pathspec(m.path.as_str(), &opts.pathspecs))
        .collect();
    progress.start("read", entries.len() as u64);
    let mut inputs = Vec::with_capacity(entries.len());
    for e in entries {
        let blob = repo
            .git
            .find_blob(e.blob)
            .map_err(GitError::git(format!("read {}", e.path)))?;
        inputs.push((e, blob.content().to_vec()));
        progress.inc(1);
    }
    progress.finish();
    let batch = BatchInfo {
        applied_at,
        base_commit: target_ref.base,
        tool: tool_name(),
    };
    let mopts = MigrateOptions {
        registry,
        target,
        artifacts_root: &cfg.artifacts_root,
        protected: &cfg.protected,
    };
    progress.start("transform", inputs.len() as u64);
    let outcomes: Vec<_> = inputs
        .into_par_iter()
        .map(|(e, bytes)| {
            let r = migrate_manifest(&bytes, e.path.as_str(), &mopts, &batch).map(|o| {
                let id = match &o {
                    Outcome::Migrated(m) => Oid::hash_object(git2::ObjectType::Blob, &m.bytes).ok(),
                    Outcome::Current(_) => None,
                };
                (o, id)
            });
            progress.inc(1);
            (e, bytes, r)
        })
        .collect();
    progress.finish();
    let mut migrate = Vec::new();
    let mut current = Vec::new();
    for (e, old_bytes, r) in outcomes {
        match r {
            Ok((Outcome::Current(v), _)) => current.push(CurrentManifest {
                path: e.path,
                blob: e.blob,
                version: v,
            }),
            Ok((Outcome::Migrated(_), None)) => {
                return Err(GitError::Git {
                    op: format!("hash the new blob of {}", e.path),
                    source: git2::Error::from_str("hashing failed"),
                }
                .into())
            }
            Ok((Outcome::Migrated(m), Some(new_blob))) => migrate.push(PlannedManifest {
                path: e.path,
                old_blob: e.blob,
                new_blob,
                mode: e.mode,
                from: m.from,
                to: m.to,
                steps: m.steps,
                changes: m.changes,
                old_bytes,
                new_bytes: m.bytes,
            }),
            Err(err) => failed.push(Failure::new(&e.path, &err)),
        }
    }
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    let message = BatchMessage {
        target,
        groups: group(&migrate),
        already_current: current.len(),
        failed: failed.len(),
        applied_at: batch.applied_at,
        tool: batch.tool,
        subject: None,
    };
    Ok(BatchPlan {
        has_gitattributes: scan.has_gitattributes,
        target,
        target_ref,
        migrate,
        current,
        failed,
        message,
    })
}

/// Groups migrated manifests by (from, to, steps) for the message and the trailers, in
/// version order, with each change counted.
/// Manifests of one (from, to, steps) group: how many, and each change with its count.
type GroupCounts = (usize, Vec<(String, usize)>);

fn group(migrate: &[PlannedManifest]) -> Vec<StepGroup> {
    let mut groups: BTreeMap<(Version, Version, Vec<StepId>), GroupCounts> = BTreeMap::new();
    for m in migrate {
        let g = groups.entry((m.from, m.to, m.steps.clone())).or_default();
        g.0 += 1;
        for c in &m.changes {
            match g.1.iter_mut().find(|(s, _)| *s == c.summary) {
                Some((_, n)) => *n += 1,
                None => g.1.push((c.summary.clone(), 1)),
            }
        }
    }
    groups
        .into_iter()
        .map(|((from, to, steps), (count, changes))| StepGroup {
            from,
            to,
            steps: steps.iter().map(|s| s.to_string()).collect(),
            count,
            changes,
        })
        .collect()
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// The new commit, or `None` when nothing was committed.
    pub commit: Option<CommitId>,
    pub plan: BatchPlan,
    pub worktree: Option<WorktreeReport>,
}

/// Applies a batch: plans it, refuses dirty manifests, writes the objects and the commit,
/// moves the branch by compare-and-swap, then updates the working tree when the branch is
/// checked out. With failures and without `keep_going`, nothing is committed.
pub fn apply(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplyReport, EngineError> {
    // One identity and one timestamp for the whole batch: history entries, trailer and
    // committer date must agree to the second.
    let identity = Identity::from_env(repo)?;
    let mut plan = plan_at(
        repo,
        cfg,
        registry,
        &opts.plan,
        identity.applied_at.clone(),
        progress,
    )?;
    plan.message.subject = opts.message.clone();
    if plan.target_ref.checked_out {
        progress.start("check attributes", 0);
        check_no_filters(
            repo,
            plan.migrate.iter().map(|m| &m.path),
            plan.has_gitattributes,
        )?;
        progress.finish();
    }
    if plan.target_ref.checked_out {
        progress.start("check dirty", 0);
        let in_scope: Vec<(RepoPath, Oid)> = plan
            .migrate
            .iter()
            .map(|m| (m.path.clone(), m.old_blob))
            .chain(plan.current.iter().map(|c| (c.path.clone(), c.blob)))
            .collect();
        let dirty = dirty_paths(repo, &in_scope)?;
        progress.finish();
        if !dirty.is_empty() {
            return Err(EngineError::DirtyManifests { paths: dirty });
        }
    }
    if plan.migrate.is_empty() || (!plan.failed.is_empty() && !opts.keep_going) {
        return Ok(ApplyReport {
            commit: None,
            plan,
            worktree: None,
        });
    }
    let text = plan.message.render();
    progress.start("write objects", plan.migrate.len() as u64);
    let updates = plan
        .migrate
        .iter()
        .map(|m| FileUpdate {
            path: &m.path,
            content: BlobContent::Bytes(&m.new_bytes),
            mode: m.mode,
        })
        .collect();
    let req = CommitRequest {
        base: plan.target_ref.base,
        updates,
        message: &text,
        author: &identity.author,
        committer: &identity.committer,
    };
    let commit = write_commit(repo, &req)?;
    progress.finish();
    fault::point("after-objects");
    let files: Vec<(PendingFile, &[u8])> = plan
        .migrate
        .iter()
        .map(|m| {
            let f = PendingFile {
                path: m.path.clone(),
                old: m.old_blob,
                new: m.new_blob,
                mode: m.mode,
            };
            (f, m.new_bytes.as_slice())
        })
        .collect();
    let subject = text.lines().next().unwrap_or_default();
    let worktree = land(
        repo,
        &plan.target_ref,
        commit,
        "apply",
        subject,
        &files,
        progress,
    )?;
    Ok(ApplyReport {
        commit: Some(commit),
        plan,
        worktree,
    })
}
