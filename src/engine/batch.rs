//! A batch: which manifests, which path, the transformed bytes, the commit message; then
//! objects, commit, compare-and-swap and the working tree.

use std::collections::BTreeMap;

use git2::Oid;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::engine::history::{tool_name, BatchInfo};
use crate::engine::land::{check_no_filters, land, nothing_committed};
use crate::engine::migrate::{
    migrate_manifest, ChangeNote, ManifestError, MigrateOptions, Outcome,
};
use crate::engine::progress::Progress;
use crate::engine::registry::{uncommitted_definitions, DefinitionsCheck};
use crate::fault;
use crate::git::cache::{CachedVersion, VersionCache};
use crate::git::identity::Identity;
use crate::git::message::{BatchMessage, StepGroup};
use crate::git::objects::{batch_pack, write_commit, CommitRequest, FileUpdate};
use crate::git::pack::{compress_at, Compressed};
use crate::git::pack_order::PackOrder;
use crate::git::rounds::{in_rounds, ROUND};
use crate::git::scan::{matches_pathspec, run_pairs, scan_commit, RunPair, TreeManifest};
use crate::git::sign::{SignMode, Signer};
use crate::git::worktree::{dirty_paths, PendingFile, WorktreeReport};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};
use crate::schema::checksum::registry_checksum;
use crate::schema::{Registry, StepId, Version};

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
    /// Whether to sign the commit (default: as `commit.gpgsign` says).
    pub sign: SignMode,
}

/// A manifest that one failed to migrate, and why. Serialized as
/// `{"path", "kind", "error"}`: the error's [`ManifestError::kind`] and its message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub path: RepoPath,
    pub error: ManifestError,
}

impl Failure {
    pub fn new(path: &RepoPath, e: &ManifestError) -> Self {
        Failure {
            path: path.clone(),
            error: e.clone(),
        }
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Failure", 3)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("kind", self.error.kind())?;
        st.serialize_field("error", &self.error.to_string())?;
        st.end()
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

/// Everything `plan` shows (and `apply` would commit).
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
    /// Runs in scope present in the canonical layout and in another one (both are migrated).
    pub pairs: Vec<RunPair>,
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

/// The target version: the one asked for, known to the registry, or the latest.
fn target_version(registry: &Registry, asked: Option<Version>) -> Result<Version, EngineError> {
    let latest = registry.latest().ok_or(EngineError::EmptyRegistry)?;
    let target = asked.unwrap_or(latest);
    if !registry.knows(target) {
        return Err(EngineError::UnknownTarget {
            target,
            known: registry.versions(),
        });
    }
    Ok(target)
}

/// The manifests a batch looks at: the target ref's committed manifests under the pathspecs,
/// and a failure for each symbolic link named like a manifest.
struct Scope {
    manifests: Vec<TreeManifest>,
    failed: Vec<Failure>,
    has_gitattributes: bool,
}

fn scope(
    repo: &Repo,
    cfg: &Config,
    target_ref: &Target,
    pathspecs: &[String],
    progress: &dyn Progress,
) -> Result<Scope, EngineError> {
    progress.start("scan", 0);
    let scan = scan_commit(repo, target_ref.base, cfg)?;
    progress.finish();
    let failed = scan
        .symlinks
        .iter()
        .filter(|p| matches_pathspec(p.as_str(), pathspecs))
        .map(|p| Failure::new(p, &ManifestError::Symlink))
        .collect();
    let manifests = scan
        .manifests
        .into_iter()
        .filter(|m| matches_pathspec(m.path.as_str(), pathspecs))
        .collect();
    Ok(Scope {
        manifests,
        failed,
        has_gitattributes: scan.has_gitattributes,
    })
}

/// What every manifest of one batch is migrated with.
fn batch_setup<'a>(
    registry: &'a Registry,
    cfg: &'a Config,
    target: Version,
    target_ref: &Target,
    applied_at: String,
) -> (BatchInfo, MigrateOptions<'a>) {
    let batch = BatchInfo {
        applied_at,
        base_commit: target_ref.base,
        tool: tool_name(),
    };
    let mopts = MigrateOptions {
        registry,
        target,
        artifacts_root: &cfg.artifacts_root,
        layouts: &cfg.layouts,
        protected: &cfg.protected,
    };
    (batch, mopts)
}

/// Reads the blobs of some manifests. One thread: measured, per-thread libgit2 handles
/// reading in parallel were slower (7.0 s against 5.3 s for 100k loose objects).
fn read_blobs(repo: &Repo, entries: &[TreeManifest]) -> Result<Vec<Vec<u8>>, GitError> {
    entries
        .iter()
        .map(|e| repo.blob(e.blob, e.path.as_str()))
        .collect()
}

/// Plans a batch: reads the manifests of the target ref's commit, migrates each in memory
/// with every check `apply` runs, and writes the commit message. Writes nothing. Keeps every
/// old and new document (for diffs): for very large corpora `apply` streams instead.
pub fn plan(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    opts: &PlanOptions,
    progress: &dyn Progress,
) -> Result<BatchPlan, EngineError> {
    let target = target_version(registry, opts.target)?;
    let target_ref = repo.target(opts.branch.as_deref())?;
    let Scope {
        manifests,
        mut failed,
        has_gitattributes,
    } = scope(repo, cfg, &target_ref, &opts.pathspecs, progress)?;
    let pairs = run_pairs(cfg, &manifests);
    let (batch, mopts) = batch_setup(registry, cfg, target, &target_ref, batch_time(repo)?);
    let mut migrate = Vec::new();
    let mut current = Vec::new();
    let mut groups = Groups::default();
    progress.start("transform", manifests.len() as u64);
    for chunk in manifests.chunks(ROUND) {
        let blobs = read_blobs(repo, chunk)?;
        let outcomes: Vec<_> = chunk
            .par_iter()
            .zip(blobs)
            .map(|(e, bytes)| {
                let r = migrate_manifest(&bytes, e.path.as_str(), &mopts, &batch);
                (e, bytes, r)
            })
            .collect();
        for (e, old_bytes, r) in outcomes {
            match r {
                Ok(Outcome::Current(v)) => current.push(CurrentManifest {
                    path: e.path.clone(),
                    blob: e.blob,
                    version: v,
                }),
                Ok(Outcome::Migrated(m)) => {
                    groups.add(m.from, m.to, &m.steps, &m.changes);
                    migrate.push(PlannedManifest {
                        path: e.path.clone(),
                        old_blob: e.blob,
                        new_blob: crate::git::pack::object_id(git2::ObjectType::Blob, &m.bytes),
                        mode: e.mode,
                        from: m.from,
                        to: m.to,
                        steps: m.steps,
                        changes: m.changes,
                        old_bytes,
                        new_bytes: m.bytes,
                    })
                }
                Err(err) => failed.push(Failure::new(&e.path, &err)),
            }
        }
        progress.inc(chunk.len() as u64);
        // Between rounds: the pack is unfinished and is removed when dropped.
        crate::interrupt::check().map_err(nothing_committed)?;
    }
    progress.finish();
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    let message = BatchMessage {
        target,
        groups: groups.finish(),
        already_current: current.len(),
        failed: failed.len(),
        applied_at: batch.applied_at,
        tool: batch.tool,
        registry: Some(registry_checksum(&registry.migrations())),
        subject: None,
    };
    Ok(BatchPlan {
        has_gitattributes,
        target,
        target_ref,
        migrate,
        current,
        failed,
        message,
        pairs,
    })
}

/// Manifests grouped by (from, to, steps) for the message and the trailers, in version
/// order, with each change counted; built as manifests come.
#[derive(Default)]
struct Groups(BTreeMap<GroupKey, (usize, Vec<(String, usize)>)>);

/// (from, to, steps) of a group.
type GroupKey = (Version, Version, Vec<StepId>);

impl Groups {
    fn add(&mut self, from: Version, to: Version, steps: &[StepId], changes: &[ChangeNote]) {
        let g = self.0.entry((from, to, steps.to_vec())).or_default();
        g.0 += 1;
        for c in changes {
            match g.1.iter_mut().find(|(s, _)| *s == c.summary) {
                Some((_, n)) => *n += 1,
                None => g.1.push((c.summary.clone(), 1)),
            }
        }
    }

    fn finish(self) -> Vec<StepGroup> {
        self.0
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
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// The new commit, or `None` when nothing was committed.
    pub commit: Option<CommitId>,
    pub target: Version,
    pub target_ref: Target,
    /// Manifests migrated (in the commit, or that would have been without failures).
    pub migrated: usize,
    pub already_current: usize,
    pub failed: Vec<Failure>,
    pub message: BatchMessage,
    pub worktree: Option<WorktreeReport>,
}

/// One manifest's result in the streaming apply: only what the commit and the report need.
enum Streamed {
    Current,
    Migrated {
        blob: Compressed,
        from: Version,
        to: Version,
        steps: Vec<StepId>,
        changes: Vec<ChangeNote>,
    },
    Failed(Failure),
}

/// Migrates and compresses one round of manifests, in parallel.
fn transform_round(
    chunk: &[TreeManifest],
    blobs: Vec<Vec<u8>>,
    mopts: &MigrateOptions<'_>,
    batch: &BatchInfo,
    level: flate2::Compression,
) -> Vec<Result<Streamed, GitError>> {
    chunk
        .par_iter()
        .zip(blobs)
        .map(|(e, bytes)| {
            Ok(
                match migrate_manifest(&bytes, e.path.as_str(), mopts, batch) {
                    Ok(Outcome::Current(_)) => Streamed::Current,
                    Ok(Outcome::Migrated(m)) => {
                        let m = *m;
                        Streamed::Migrated {
                            blob: compress_at(git2::ObjectType::Blob, &m.bytes, level)?,
                            from: m.from,
                            to: m.to,
                            steps: m.steps,
                            changes: m.changes,
                        }
                    }
                    Err(err) => Streamed::Failed(Failure::new(&e.path, &err)),
                },
            )
        })
        .collect()
}

/// Applies a batch: refuses uncommitted migration definitions (a batch must name
/// definitions that are in git) and dirty manifests, then streams the manifests in rounds (read,
/// transform and compress in parallel, append the new blobs to the batch's pack), so memory
/// stays bounded whatever the corpus size; then writes the trees and the commit into the
/// pack, moves the branch by compare-and-swap, and updates the working tree when the branch
/// is checked out. With failures and without `keep_going`, nothing is committed and the
/// pack is discarded.
pub fn apply(
    repo: &Repo,
    cfg: &Config,
    registry: &Registry,
    opts: &ApplyOptions,
    progress: &dyn Progress,
) -> Result<ApplyReport, EngineError> {
    let refuse = |dirty: Vec<String>| match dirty.is_empty() {
        true => Ok(()),
        false => Err(EngineError::UncommittedDefinitions(dirty)),
    };
    let target_ref = repo.target(opts.plan.branch.as_deref());
    // For a batch on a branch that is not checked out, the definitions are checked on a
    // thread of their own while the scan runs; it is still answered first. Otherwise the
    // check reads the index this thread's dirty check then uses.
    let check = match &target_ref {
        Ok(t) if !t.checked_out && repo.workdir().is_some() => Some(DefinitionsCheck::start(repo)?),
        _ => {
            refuse(uncommitted_definitions(repo)?)?;
            None
        }
    };
    // A signal from here on stops at a safe point (crate::interrupt), not in a write.
    let _guard = crate::interrupt::guard();
    let prepared = (|| {
        // One identity and one timestamp for the whole batch: history entries, trailer and
        // committer date must agree to the second.
        let identity = Identity::from_env(repo)?;
        // Git's signing settings are read before any work: a bad one stops the batch here.
        let signer = Signer::from_config(repo, opts.sign).map_err(GitError::from)?;
        let target = target_version(registry, opts.plan.target)?;
        let target_ref = target_ref?;
        let scope = scope(repo, cfg, &target_ref, &opts.plan.pathspecs, progress)?;
        if target_ref.checked_out {
            progress.start("check attributes", 0);
            let paths = scope.manifests.iter().map(|m| &m.path);
            check_no_filters(repo, paths, scope.has_gitattributes)?;
            progress.finish();
            progress.start("check dirty", scope.manifests.len() as u64);
            let in_scope: Vec<(RepoPath, Oid)> = scope
                .manifests
                .iter()
                .map(|m| (m.path.clone(), m.blob))
                .collect();
            let dirty = dirty_paths(repo, &in_scope)?;
            progress.finish();
            if !dirty.is_empty() {
                return Err(EngineError::DirtyManifests { paths: dirty });
            }
        }
        Ok::<_, EngineError>((identity, signer, target, target_ref, scope))
    })();
    if let Some(check) = check {
        refuse(check.finish()?)?;
    }
    let (identity, signer, target, target_ref, scope) = prepared?;
    let Scope {
        manifests,
        mut failed,
        ..
    } = scope;
    let (batch, mopts) = batch_setup(
        registry,
        cfg,
        target,
        &target_ref,
        identity.applied_at.clone(),
    );
    let mut pack = batch_pack(repo)?;
    let level = pack.level();
    let mut updates: Vec<FileUpdate> = Vec::new();
    let mut pending: Vec<PendingFile> = Vec::new();
    let mut groups = Groups::default();
    // Manifests the version cache knows to be at the target need not be read at all (a second
    // apply, or one after `status`, reads nothing it does not have to).
    let mut cache = VersionCache::load(repo);
    let target_text = target.to_string();
    let (known_current, manifests): (Vec<TreeManifest>, Vec<TreeManifest>) = manifests
        .into_iter()
        .partition(|m| matches!(cache.get(m.blob), Some(CachedVersion::Version(Some(v))) if v == target_text));
    let mut already_current = known_current.len();
    progress.start("transform", manifests.len() as u64);
    // Pipelined: while the pool transforms one round, this thread reads the next round's
    // blobs (libgit2 reads stay on this thread).
    // Each manifest's place in the packs, so a round is read in pack order; the indexes are
    // dropped once read (at 1M manifests one is 113 MB).
    let mut pack_order = PackOrder::read(repo.git_dir()).of(manifests.iter().map(|m| m.blob));
    in_rounds(
        &manifests,
        |round| {
            pack_order
                .read(round, |e| repo.blob(e.blob, e.path.as_str()))
                .map_err(EngineError::from)
        },
        |round, blobs| transform_round(round, blobs, &mopts, &batch, level),
        |round, results| {
            for (e, r) in round.iter().zip(results) {
                match r? {
                    Streamed::Current => already_current += 1,
                    Streamed::Migrated {
                        blob,
                        from,
                        to,
                        steps,
                        changes,
                    } => {
                        pack.add(&blob)?;
                        groups.add(from, to, &steps, &changes);
                        updates.push(FileUpdate {
                            path: e.path.clone(),
                            blob: blob.id,
                            mode: e.mode,
                        });
                        if target_ref.checked_out {
                            pending.push(PendingFile {
                                path: e.path.clone(),
                                old: e.blob,
                                new: blob.id,
                                mode: e.mode,
                            });
                        }
                    }
                    Streamed::Failed(f) => failed.push(f),
                }
            }
            progress.inc(round.len() as u64);
            // Between rounds: the pack is unfinished and is removed when dropped.
            Ok(crate::interrupt::check().map_err(nothing_committed)?)
        },
    )?;
    progress.finish();
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    let message = BatchMessage {
        target,
        groups: groups.finish(),
        already_current,
        failed: failed.len(),
        applied_at: batch.applied_at,
        tool: batch.tool,
        registry: Some(registry_checksum(&registry.migrations())),
        subject: opts.message.clone(),
    };
    for u in &updates {
        cache.insert(u.blob, CachedVersion::Version(Some(target_text.clone())));
    }
    cache.save();
    let mut report = ApplyReport {
        commit: None,
        target,
        target_ref: target_ref.clone(),
        migrated: updates.len(),
        already_current,
        failed,
        message,
        worktree: None,
    };
    if updates.is_empty() || (!report.failed.is_empty() && !opts.keep_going) {
        // `pack` is dropped unfinished: nothing of this batch stays on disk.
        return Ok(report);
    }
    let text = report.message.render();
    progress.start("write objects", 0);
    let req = CommitRequest {
        base: target_ref.base,
        updates: &updates,
        message: &text,
        author: &identity.author,
        committer: &identity.committer,
        signer: signer.as_ref(),
    };
    let commit = write_commit(repo, pack, &req)?;
    progress.finish();
    fault::point("after-objects");
    let subject = text.lines().next().unwrap_or_default();
    report.worktree = land(
        repo,
        &target_ref,
        commit,
        "apply",
        subject,
        &pending,
        progress,
    )?;
    report.commit = Some(commit);
    Ok(report)
}
