//! Rollback: a git revert of one migration batch, built from trees (never a text merge of
//! JSON), landed with the same transaction as `apply`.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Delta, Oid};

use crate::config::Config;
use crate::engine::batch::EngineError;
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
use crate::git::worktree::{dirty_paths, PendingFile, WorktreeReport};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};

/// What to roll back.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// The batch (any revision); `None` = the newest batch on the branch not rolled back yet.
    pub commit: Option<String>,
    /// Work on this branch instead of HEAD's.
    pub branch: Option<String>,
}

/// What `rollback` did.
#[derive(Debug, Clone)]
pub struct RollbackReport {
    pub commit: CommitId,
    pub reverted: CommitId,
    pub restored: Vec<RepoPath>,
    pub target_ref: Target,
    pub worktree: Option<WorktreeReport>,
}

fn refused(msg: String) -> EngineError {
    EngineError::RollbackRefused(msg)
}

fn short(c: CommitId) -> String {
    c.short()
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
            .find(|r| {
                r.kind == RecordKind::Batch && !rolled_back.contains_key(&r.commit.to_string())
            })
            .ok_or_else(|| {
                refused(format!(
                    "no migration batch on {} is left to roll back",
                    target.refname
                ))
            });
    };
    let id = repo.resolve_commit(rev)?;
    match recs.iter().find(|r| r.commit == id) {
        Some(r) if r.kind == RecordKind::Batch => match rolled_back.get(&id.to_string()) {
            Some(by) => Err(refused(format!("batch {} was already rolled back by {}; to migrate again run `artifact-migrate apply`", short(id), short(*by)))),
            None => Ok(r),
        },
        Some(_) => Err(refused(format!("{} is a rollback, not a migration batch; to redo the migration run `artifact-migrate apply`", short(id)))),
        None => {
            let message = repo.git.find_commit(id.0).map(|c| String::from_utf8_lossy(c.message_bytes()).into_owned()).unwrap_or_default();
            if crate::git::history::classify(&message).is_some() {
                Err(refused(format!("{} is not on {}: roll it back on the branch it belongs to (--branch)", short(id), target.refname)))
            } else {
                Err(refused(format!("{} is not a migration batch (it has no Migration-Target trailer); `artifact-migrate log` lists the batches", short(id))))
            }
        }
    }
}

/// One path of the batch: what the batch's parent had and what the batch wrote.
struct Restore {
    path: RepoPath,
    before: Oid,
    after: Oid,
    mode: i32,
}

/// Rolls back one batch: refuses when it is not a batch, was rolled back already, or when
/// later commits changed its manifests (naming them and the batches to roll back first);
/// otherwise commits git's revert of it and lands it like `apply`.
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
        return Err(refused(format!(
            "batch {} has {} parents; only a batch with one parent can be reverted",
            short(batch.commit),
            batch.parents.len()
        )));
    };
    progress.start("compare trees", 0);
    let mut restores = Vec::new();
    for c in tree_changes(repo, Some(parent), batch.commit)? {
        if c.status != Delta::Modified {
            return Err(refused(format!(
                "batch {} does not only modify files ({} is {:?}); revert it by hand with `git revert`",
                short(batch.commit),
                c.path,
                c.status
            )));
        }
        restores.push(Restore {
            path: RepoPath::new(c.path),
            before: c.old_id,
            after: c.new_id,
            mode: c.new_mode,
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
        return Err(refused(later_changes_message(
            repo, batch, tip, &recs, &changed,
        )?));
    }
    if target.checked_out {
        progress.start("check dirty", 0);
        let in_scope: Vec<(RepoPath, Oid)> =
            restores.iter().map(|r| (r.path.clone(), r.after)).collect();
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
    let message = format!(
        "Revert \"{}\"\n\nThis reverts commit {}.\n\n{}: {}\n{}: {}\n{}: {}\n",
        batch.subject,
        batch.commit,
        keys::ROLLBACK_OF,
        batch.commit,
        keys::MANIFESTS,
        restores.len(),
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
        target_ref: target,
        worktree,
    })
}

/// Names the paths later commits changed, the commits, and the batches to roll back first.
fn later_changes_message(
    repo: &Repo,
    batch: &Record,
    tip: CommitId,
    recs: &[Record],
    changed: &[&Restore],
) -> Result<String, GitError> {
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
    let later_batches: Vec<String> = recs
        .iter()
        .filter(|r| {
            touching.contains(&r.commit)
                && r.kind == RecordKind::Batch
                && !rolled_back.contains(r.commit.to_string().as_str())
        })
        .map(|r| short(r.commit))
        .collect();
    let mut msg = format!("cannot roll back {}: {} of its manifest(s) changed in later commits (nothing was changed):", short(batch.commit), changed.len());
    const SHOWN: usize = 50;
    for (p, cs) in by_path.iter().take(SHOWN) {
        let names: Vec<String> = cs.iter().map(|c| short(*c)).collect();
        msg.push_str(&format!("\n  {p}: changed by {}", names.join(", ")));
    }
    if by_path.len() > SHOWN {
        let all: Vec<String> = touching.iter().map(|c| short(*c)).collect();
        msg.push_str(&format!(
            "\n  ... and {} more path(s), changed by {}",
            by_path.len() - SHOWN,
            all.join(", ")
        ));
    }
    if later_batches.is_empty() {
        msg.push_str("\nrevert or redo those commits first, then roll back again");
    } else {
        msg.push_str(&format!(
            "\nroll back these batches first, newest first: {}",
            later_batches.join(", ")
        ));
    }
    Ok(msg)
}
