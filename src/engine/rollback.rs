//! Rollback: a git revert of one migration batch or relocation, built from trees (never a
//! text merge of JSON), landed with the same transaction as `apply`.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Delta, Oid};

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::engine::land::{check_no_filters, land};
use crate::engine::progress::Progress;
use crate::fault;
use crate::git::diff::tree_changes;
use crate::git::history::{commits_since, records, Record, RecordKind};
use crate::git::identity::Identity;
use crate::git::message::keys;
use crate::git::objects::{pack_dir, write_commit, CommitRequest, FileUpdate};
use crate::git::pack::PackWriter;
use crate::git::scan::scan_commit;
use crate::git::shallow::Shallow;
use crate::git::sign::{SignMode, Signer};
use crate::git::worktree::{dirty_paths, PendingFile, WorktreeReport};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};

/// What to roll back.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// The batch or relocation (any revision); `None` = the newest one on the branch not
    /// rolled back yet.
    pub commit: Option<String>,
    /// Work on this branch instead of HEAD's.
    pub branch: Option<String>,
    /// Whether to sign the commit (default: as `commit.gpgsign` says).
    pub sign: SignMode,
}

/// What `rollback` did.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    pub commit: CommitId,
    pub reverted: CommitId,
    pub restored: Vec<RepoPath>,
    /// For a relocation: how many runs went back to their old place.
    pub relocated: Option<usize>,
    pub target_ref: Target,
    pub worktree: Option<WorktreeReport>,
}

/// Why a rollback is refused (nothing was changed); each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no migration batch on {branch} is left to roll back")]
    NothingLeft { branch: String },
    #[error("batch {} was already rolled back by {}; to migrate again run `artifact-migrate apply`", .batch.short(), .by.short())]
    AlreadyRolledBack { batch: CommitId, by: CommitId },
    #[error("{} is a rollback, not a migration batch; to redo the migration run `artifact-migrate apply`", .commit.short())]
    IsARollback { commit: CommitId },
    #[error("{} is not on {branch}: roll it back on the branch it belongs to (--branch)", .commit.short())]
    NotOnBranch { commit: CommitId, branch: String },
    #[error("{} is not a migration batch (it has no Migration-Target trailer); `artifact-migrate log` lists the batches", .commit.short())]
    NotABatch { commit: CommitId },
    #[error("batch {} has {parents} parents; only a batch with one parent can be reverted", .batch.short())]
    NotOneParent { batch: CommitId, parents: usize },
    #[error("batch {}'s parent {parent} was not fetched: this clone is shallow and a rollback restores the parent's files; fetch it with `git fetch --deepen=1` (or all history with `git fetch --unshallow`), then roll back again", .batch.short())]
    ParentNotFetched { batch: CommitId, parent: String },
    #[error("batch {} does not only modify files ({path} is {status:?}); revert it by hand with `git revert`", .batch.short())]
    NotOnlyModified {
        batch: CommitId,
        path: String,
        status: Delta,
    },
    #[error(transparent)]
    LaterChanges(LaterChanges),
}

/// A batch whose manifests later commits changed: which paths, by which commits, and the
/// batches to roll back first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LaterChanges {
    pub batch: CommitId,
    /// How many of the batch's manifests differ at the tip.
    pub changed: usize,
    /// Each changed path with the later commits that changed it, by path.
    pub paths: Vec<(String, Vec<CommitId>)>,
    /// Every later commit that changed one of them.
    pub commits: Vec<CommitId>,
    /// The later batches (not rolled back yet) among them, newest first.
    pub later_batches: Vec<CommitId>,
}

/// How many changed paths the message names one by one.
const SHOWN: usize = 50;

impl std::fmt::Display for LaterChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shorts = |cs: &[CommitId]| {
            cs.iter()
                .map(CommitId::short)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "cannot roll back {}: {} of its manifest(s) changed in later commits (nothing was changed):", self.batch.short(), self.changed)?;
        for (p, cs) in self.paths.iter().take(SHOWN) {
            write!(f, "\n  {p}: changed by {}", shorts(cs))?;
        }
        if self.paths.len() > SHOWN {
            write!(
                f,
                "\n  ... and {} more path(s), changed by {}",
                self.paths.len() - SHOWN,
                shorts(&self.commits)
            )?;
        }
        if self.later_batches.is_empty() {
            write!(
                f,
                "\nrevert or redo those commits first, then roll back again"
            )
        } else {
            write!(
                f,
                "\nroll back these batches first, newest first: {}",
                shorts(&self.later_batches)
            )
        }
    }
}

fn refused(r: Refusal) -> EngineError {
    EngineError::RollbackRefused(r)
}

/// Chooses the batch: the one named, or the newest not rolled back yet.
fn choose<'a>(
    repo: &Repo,
    recs: &'a [Record],
    rolled_back: &BTreeMap<String, CommitId>,
    opts: &RollbackOptions,
    target: &Target,
) -> Result<&'a Record, EngineError> {
    let Some(rev) = &opts.commit else {
        return recs
            .iter()
            .find(|r| r.kind.is_revertible() && !rolled_back.contains_key(&r.commit.to_string()))
            .ok_or_else(|| {
                refused(Refusal::NothingLeft {
                    branch: target.refname.clone(),
                })
            });
    };
    let id = repo.resolve_commit(rev)?;
    match recs.iter().find(|r| r.commit == id) {
        Some(r) if r.kind.is_revertible() => match rolled_back.get(&id.to_string()) {
            Some(by) => Err(refused(Refusal::AlreadyRolledBack { batch: id, by: *by })),
            None => Ok(r),
        },
        Some(_) => Err(refused(Refusal::IsARollback { commit: id })),
        None => {
            let message = repo
                .git
                .find_commit(id.0)
                .map(|c| String::from_utf8_lossy(c.message_bytes()).into_owned())
                .unwrap_or_default();
            if crate::git::history::classify(&message).is_some() {
                Err(refused(Refusal::NotOnBranch {
                    commit: id,
                    branch: target.refname.clone(),
                }))
            } else {
                Err(refused(Refusal::NotABatch { commit: id }))
            }
        }
    }
}

/// One path of the batch: what the batch's parent had and what the batch wrote (a zero id:
/// nothing, for the paths a relocation created or removed).
struct Restore {
    path: RepoPath,
    before: Oid,
    after: Oid,
    mode: i32,
}

/// Rolls back one batch or relocation: refuses when it is neither, was rolled back already,
/// or when later commits changed its paths (naming them and the batches to roll back first);
/// otherwise commits git's revert of it and lands it like `apply`. A relocation's revert
/// puts every run directory back in its old place and removes the alias links: the tree is
/// exactly the relocation's parent's at those paths.
pub fn rollback(
    repo: &Repo,
    cfg: &Config,
    opts: &RollbackOptions,
    progress: &dyn Progress,
) -> Result<RollbackReport, EngineError> {
    // A signal from here on stops at a safe point (crate::interrupt), not in a write.
    let _guard = crate::interrupt::guard();
    let target = repo.target(opts.branch.as_deref())?;
    let tip = target.base;
    progress.start("read history", 0);
    let recs = records(repo, tip)?;
    progress.finish();
    let rolled_back: BTreeMap<String, CommitId> = recs
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Rollback { of } => Some((of.clone(), r.commit)),
            _ => None,
        })
        .collect();
    let batch = choose(repo, &recs, &rolled_back, opts, &target)?;
    let [parent] = batch.parents[..] else {
        if let Some(parent) = unfetched_parent(repo, batch.commit)? {
            return Err(refused(Refusal::ParentNotFetched {
                batch: batch.commit,
                parent,
            }));
        }
        return Err(refused(Refusal::NotOneParent {
            batch: batch.commit,
            parents: batch.parents.len(),
        }));
    };
    progress.start("compare trees", 0);
    let mut restores = Vec::new();
    let relocation = batch.kind == RecordKind::Relocation;
    for c in tree_changes(repo, Some(parent), batch.commit)? {
        let moved = relocation && matches!(c.status, Delta::Added | Delta::Deleted);
        if c.status != Delta::Modified && !moved {
            return Err(refused(Refusal::NotOnlyModified {
                batch: batch.commit,
                path: c.path,
                status: c.status,
            }));
        }
        restores.push(Restore {
            path: RepoPath::new(c.path),
            before: c.old_id,
            after: c.new_id,
            mode: if c.old_id.is_zero() {
                c.new_mode
            } else {
                c.old_mode
            },
        });
    }
    // Later changes: a path of the batch whose blob at the tip is not the batch's. One diff of
    // the batch's tree against the tip's (nothing at all when the batch is the tip).
    let since: BTreeSet<String> = if tip == batch.commit {
        BTreeSet::new()
    } else {
        tree_changes(repo, Some(batch.commit), tip)?
            .into_iter()
            .map(|c| c.path)
            .collect()
    };
    let changed: Vec<&Restore> = restores
        .iter()
        .filter(|r| since.contains(r.path.as_str()))
        .collect();
    progress.finish();
    if !changed.is_empty() {
        return Err(refused(Refusal::LaterChanges(later_changes(
            repo, batch, tip, &recs, &changed,
        )?)));
    }
    if target.checked_out {
        progress.start("check dirty", 0);
        let in_scope: Vec<(RepoPath, Oid)> = restores
            .iter()
            .filter(|r| !r.after.is_zero())
            .map(|r| (r.path.clone(), r.after))
            .collect();
        let scan = scan_commit(repo, tip, cfg)?;
        check_no_filters(
            repo,
            restores.iter().map(|r| &r.path),
            scan.has_gitattributes,
        )?;
        let dirty = dirty_paths(repo, &in_scope)?;
        progress.finish();
        if !dirty.is_empty() {
            return Err(EngineError::DirtyManifests { paths: dirty });
        }
    }
    let identity = Identity::from_env(repo)?;
    let signer = Signer::from_config(repo, opts.sign).map_err(GitError::from)?;
    // A relocation's rollback counts the runs it moves back, a batch's the manifests.
    let relocated = relocation.then(|| {
        batch
            .trailer(keys::RELOCATE)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_default()
    });
    let (count_key, count) = match relocated {
        Some(n) => (keys::RELOCATE, n),
        None => (keys::MANIFESTS, restores.len()),
    };
    let message = format!(
        "Revert \"{}\"\n\nThis reverts commit {}.\n\n{}: {}\n{}: {}\n{}: {}\n",
        batch.subject,
        batch.commit,
        keys::ROLLBACK_OF,
        batch.commit,
        count_key,
        count,
        keys::TOOL,
        crate::engine::tool_name()
    );
    progress.start("write objects", restores.len() as u64);
    let updates: Vec<FileUpdate> = restores
        .iter()
        .map(|r| FileUpdate {
            path: r.path.clone(),
            blob: r.before,
            mode: r.mode,
        })
        .collect();
    let req = CommitRequest {
        base: tip,
        updates: &updates,
        message: &message,
        author: &identity.author,
        committer: &identity.committer,
        signer: signer.as_ref(),
    };
    // The restored blobs exist already; only trees and the commit are new.
    let commit = write_commit(repo, PackWriter::create(&pack_dir(repo))?, &req)?;
    progress.finish();
    fault::point("after-objects");
    let files: Vec<PendingFile> = if target.checked_out {
        restores
            .iter()
            .map(|r| PendingFile {
                path: r.path.clone(),
                old: r.after,
                new: r.before,
                mode: r.mode,
            })
            .collect()
    } else {
        Vec::new()
    };
    let worktree = land(
        repo,
        &target,
        commit,
        "rollback",
        &format!("Revert \"{}\"", batch.subject),
        &files,
        progress,
    )?;
    Ok(RollbackReport {
        commit,
        reverted: batch.commit,
        restored: restores.into_iter().map(|r| r.path).collect(),
        relocated,
        target_ref: target,
        worktree,
    })
}

/// The paths later commits changed, the commits, and the batches to roll back first.
fn later_changes(
    repo: &Repo,
    batch: &Record,
    tip: CommitId,
    recs: &[Record],
    changed: &[&Restore],
) -> Result<LaterChanges, GitError> {
    let wanted: BTreeSet<&str> = changed.iter().map(|r| r.path.as_str()).collect();
    let mut by_path: BTreeMap<String, Vec<CommitId>> = BTreeMap::new();
    let mut touching: BTreeSet<CommitId> = BTreeSet::new();
    for c in commits_since(repo, tip, batch.commit)? {
        let parent = repo
            .git
            .find_commit(c.0)
            .ok()
            .and_then(|commit| commit.parent_id(0).ok())
            .map(CommitId);
        for change in tree_changes(repo, parent, c)? {
            if wanted.contains(change.path.as_str()) {
                by_path.entry(change.path).or_default().push(c);
                touching.insert(c);
            }
        }
    }
    // Batches already rolled back need no rolling back again.
    let rolled_back: BTreeSet<&str> = recs
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Rollback { of } => Some(of.as_str()),
            _ => None,
        })
        .collect();
    let later_batches: Vec<CommitId> = recs
        .iter()
        .filter(|r| {
            touching.contains(&r.commit)
                && r.kind.is_revertible()
                && !rolled_back.contains(r.commit.to_string().as_str())
        })
        .map(|r| r.commit)
        .collect();
    Ok(LaterChanges {
        batch: batch.commit,
        changed: changed.len(),
        paths: by_path.into_iter().collect(),
        commits: touching.into_iter().collect(),
        later_batches,
    })
}

/// In a shallow clone, the parent a boundary commit names in its object but the clone does
/// not hold (git shows such a commit without parents); `None` otherwise.
fn unfetched_parent(repo: &Repo, commit: CommitId) -> Result<Option<String>, GitError> {
    let Some(shallow) = Shallow::read(repo, commit)? else {
        return Ok(None);
    };
    if !shallow.cuts(commit) {
        return Ok(None);
    }
    let odb = repo
        .git
        .odb()
        .map_err(GitError::git("open the object database"))?;
    let object = odb
        .read(commit.0)
        .map_err(GitError::git(format!("read commit {commit}")))?;
    let data = object.data();
    let headers = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(data, |end| &data[..end]);
    let parents: Vec<String> = String::from_utf8_lossy(headers)
        .lines()
        .filter_map(|l| l.strip_prefix("parent ").map(str::to_string))
        .collect();
    Ok(match &parents[..] {
        [one] => Some(one.clone()),
        _ => None,
    })
}
