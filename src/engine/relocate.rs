//! `relocate`: moves runs from a legacy layout (the seed's `runs/<run_id>/`) into the
//! canonical one (`<job_id>/<run_id>/`) in one audited commit, leaving at each old place the
//! relative alias symbolic link the pipeline makes (`runs/<run_id> -> ../<job_id>/<run_id>`).
//!
//! A run moves whole: its directory's tree object is reused under the new name, so every
//! file (manifest, inputs, outputs) is byte for byte what it was. The commit is built
//! objects-first from the branch's tree, checked by [`audit_relocation`] (the same check
//! `verify` runs on every relocation in history), then landed like a batch
//! ([`crate::engine::land`]: journal, compare-and-swap, working tree). A run whose canonical
//! place holds other content is refused, naming both; runs with uncommitted changes are
//! refused as `apply` refuses dirty manifests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};
use serde::Serialize;

use crate::config::Config;
use crate::engine::history::tool_name;
use crate::engine::land::{check_no_filters, land};
use crate::engine::migrate::{read_manifest, ManifestError};
use crate::engine::progress::Progress;
use crate::engine::{EngineError, Failure};
use crate::error::ErrorKind;
use crate::fault;
use crate::git::diff::tree_changes;
use crate::git::identity::Identity;
use crate::git::message::RelocationMessage;
use crate::git::objects::{
    build_commit, pack_dir, CommitRequest, FileUpdate, MODE_LINK, MODE_TREE,
};
use crate::git::pack::PackWriter;
use crate::git::scan::{matches_pathspec, scan_commit};
use crate::git::sign::{SignMode, Signer};
use crate::git::worktree::{changed_files, dirty_dirs, WorktreeReport};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};
use crate::layout::{alias_target, derive_job_id};
use crate::manifest::Json;

/// What to relocate.
#[derive(Debug, Clone, Default)]
pub struct RelocateOptions {
    /// Legacy run directories (or their manifests, or directories above them); empty = every
    /// run outside the canonical layout.
    pub pathspecs: Vec<String>,
    /// Commit to this branch instead of HEAD's (created from HEAD if missing).
    pub branch: Option<String>,
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// Whether to sign the commit (default: as `commit.gpgsign` says).
    pub sign: SignMode,
}

/// A run whose canonical place already holds something else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taken {
    /// The run directory outside the canonical layout.
    pub legacy: String,
    /// Its canonical place, which holds different content.
    pub canonical: String,
}

/// Why `relocate` stopped. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{} run(s) cannot move: the canonical place holds different content (nothing was changed):\n  {}\ncompare the two copies, keep one (git rm -r the other), commit, then run again", .0.len(), .0.iter().map(|t| format!("{} -> {} (taken)", t.legacy, t.canonical)).collect::<Vec<_>>().join("\n  "))]
    Taken(Vec<Taken>),
    #[error("{} file(s) of the runs to move are not as committed; commit, stash or remove them first (nothing was changed): {}", .paths.len(), .paths.join(", "))]
    DirtyRuns { paths: Vec<String> },
    #[error("the relocation commit would not only rename: {path}: {problem}; nothing was committed (this is a bug: please report it)")]
    NotARename { path: String, problem: String },
}

impl RelocateError {
    /// The kind of failure (and so the exit code or HTTP status): a canonical place taken
    /// or runs not as committed are refusals; a commit that would not only rename is a bug.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RelocateError::Git(e) => e.kind(),
            RelocateError::Engine(e) => e.kind(),
            RelocateError::Taken(_) | RelocateError::DirtyRuns { .. } => ErrorKind::Refused,
            RelocateError::NotARename { .. } => ErrorKind::Internal,
        }
    }

    /// The file to blame, where one is.
    pub fn path(&self) -> Option<String> {
        match self {
            RelocateError::Git(e) => e.path(),
            RelocateError::Engine(e) => e.path(),
            RelocateError::Taken(t) => t.first().map(|t| t.canonical.clone()),
            RelocateError::DirtyRuns { paths } => paths.first().cloned(),
            RelocateError::NotARename { path, .. } => Some(path.clone()),
        }
    }
}

/// One run directory to move.
#[derive(Debug, Clone, Serialize)]
pub struct RunMove {
    pub run_id: String,
    pub job_id: String,
    /// Where the job came from: the manifest's `job_id`, its `job_ref`, or the path.
    pub job_from: String,
    /// The run directory now (repository-relative).
    pub from: RepoPath,
    /// Its canonical place.
    pub to: RepoPath,
    /// The target of the alias symbolic link left at `from`, relative to its directory.
    pub link: String,
    /// Files in the run directory: manifest, inputs, outputs.
    pub files: usize,
    /// The canonical place already holds exactly this directory: only the legacy copy goes.
    pub already_there: bool,
    /// The run directory's tree.
    #[serde(skip)]
    pub tree: Oid,
}

/// What `relocate` did (or, with `dry_run` or failures, would do).
#[derive(Debug, Clone)]
pub struct RelocateReport {
    /// The relocation commit, or `None` (dry run, nothing to move, or failures).
    pub commit: Option<CommitId>,
    pub target_ref: Target,
    /// The canonical layout, e.g. `{job_id}/{run_id}`.
    pub layout: String,
    pub moves: Vec<RunMove>,
    /// Runs that cannot move as they are (no job to name, an identity the path contradicts...).
    pub failed: Vec<Failure>,
    pub message: RelocationMessage,
    pub worktree: Option<WorktreeReport>,
}

/// `p` and the directories above it, deepest last (`a`, `a/b`, `a/b/c` for `a/b/c`).
fn self_and_ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/')
        .map(move |(i, _)| &p[..i])
        .chain(std::iter::once(p))
}

/// Whether `p` is one of `dirs` or lies below one.
fn under_any(p: &str, dirs: &BTreeSet<&str>) -> bool {
    self_and_ancestors(p).any(|a| dirs.contains(a))
}

/// The blobs below a tree, as repository paths under `prefix`; `Err` names a submodule.
fn tree_files(
    repo: &Repo,
    tree: Oid,
    prefix: &str,
) -> Result<Result<Vec<(RepoPath, Oid)>, String>, GitError> {
    let tree = repo
        .git
        .find_tree(tree)
        .map_err(GitError::git(format!("read {prefix}")))?;
    let mut files = Vec::new();
    let mut submodule = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, e| {
        let path = format!("{prefix}/{dir}{}", e.name().unwrap_or_default());
        match e.kind() {
            Some(ObjectType::Blob) => files.push((RepoPath::new(path), e.id())),
            Some(ObjectType::Commit) => submodule = Some(path),
            _ => {}
        }
        TreeWalkResult::Ok
    })
    .map_err(GitError::git(format!("walk {prefix}")))?;
    Ok(match submodule {
        Some(p) => Err(format!("holds a submodule ({p}); move this run by hand")),
        None => Ok(files),
    })
}

fn failure(path: &str, error: ManifestError) -> Failure {
    Failure {
        path: RepoPath::new(path),
        error,
    }
}

fn identity(path: &str, problem: impl Into<String>) -> Failure {
    failure(path, ManifestError::Identity(problem.into()))
}

/// The runs outside the canonical layout under the pathspecs, each with its job and its
/// canonical place; the ones that cannot move as they are; and whether `.gitattributes`
/// files could apply to them.
fn plan_moves(
    repo: &Repo,
    cfg: &Config,
    base: CommitId,
    pathspecs: &[String],
) -> Result<(Vec<RunMove>, Vec<Failure>, bool), GitError> {
    let scan = scan_commit(repo, base, cfg)?;
    let tree = repo.tree_of(base)?;
    let mut moves = Vec::new();
    let mut failed = Vec::new();
    for m in &scan.manifests {
        let path = m.path.as_str();
        let Some(place) = cfg.layouts.place(&cfg.artifacts_root, path) else {
            continue;
        };
        let Some((from, _)) = path.rsplit_once('/') else {
            continue;
        };
        if place.is_canonical() || !matches_pathspec(path, pathspecs) {
            continue;
        }
        let doc = match read_manifest(&repo.blob(m.blob, path)?) {
            Ok(doc) => doc,
            Err(e) => {
                failed.push(failure(path, e));
                continue;
            }
        };
        let field = |k: &str| doc.get(k).and_then(Json::as_str);
        let run_id = place.run_id;
        if let Some(r) = field("run_id").filter(|r| *r != run_id) {
            failed.push(identity(path, format!("the path says run {run_id:?} but run_id is {r:?}: fix one of them by hand before relocating")));
            continue;
        }
        let (job_id, job_from) = match field("job_id") {
            Some(j) => (j.to_string(), "job_id".to_string()),
            None => match derive_job_id(Some(place), Some(run_id), field("job_ref")) {
                Ok((j, source)) => (j, source.to_string()),
                Err(e) => {
                    failed.push(identity(path, e));
                    continue;
                }
            },
        };
        let to = match cfg.layouts.canonical_dir(
            &cfg.artifacts_root,
            &cfg.manifest_name,
            &job_id,
            run_id,
        ) {
            Ok(d) => d,
            Err(e) => {
                failed.push(identity(path, e));
                continue;
            }
        };
        let dir = tree
            .get_path(Path::new(from))
            .map_err(GitError::git(format!("read {from}")))?
            .id();
        let files = match tree_files(repo, dir, from)? {
            Ok(f) => f.len(),
            Err(e) => {
                failed.push(identity(path, e));
                continue;
            }
        };
        moves.push(RunMove {
            run_id: run_id.to_string(),
            link: alias_target(from, &to),
            job_id,
            job_from,
            from: RepoPath::new(from),
            to: RepoPath::new(to),
            files,
            already_there: false,
            tree: dir,
        });
    }
    // Two runs bound for one place, or one run's new place inside another's old one.
    let mut bound: BTreeMap<&str, usize> = BTreeMap::new();
    for mv in &moves {
        *bound.entry(mv.to.as_str()).or_default() += 1;
    }
    let froms: BTreeSet<&str> = moves.iter().map(|m| m.from.as_str()).collect();
    let around_froms: BTreeSet<&str> = froms.iter().flat_map(|f| self_and_ancestors(f)).collect();
    let mut clash = BTreeSet::new();
    for (i, mv) in moves.iter().enumerate() {
        let to = mv.to.as_str();
        let inside = under_any(to, &froms) || around_froms.contains(to);
        if bound[to] > 1 || inside {
            clash.insert(i);
            failed.push(identity(
                &format!("{}/{}", mv.from, cfg.manifest_name),
                format!("another run to move also goes to or lies in {to}: move these by hand"),
            ));
        }
    }
    let moves = moves
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !clash.contains(i))
        .map(|(_, m)| m)
        .collect();
    failed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((moves, failed, scan.has_gitattributes))
}

/// Moves the legacy runs under the pathspecs into the canonical layout as one commit on the
/// target branch (see the module docs). With failures, or `dry_run`, nothing is written.
pub fn relocate(
    repo: &Repo,
    cfg: &Config,
    opts: &RelocateOptions,
    progress: &dyn Progress,
) -> Result<RelocateReport, RelocateError> {
    let target = repo.target(opts.branch.as_deref())?;
    progress.start("scan", 0);
    let (mut moves, failed, has_gitattributes) =
        plan_moves(repo, cfg, target.base, &opts.pathspecs)?;
    progress.finish();
    let tree = repo.tree_of(target.base)?;
    let mut taken = Vec::new();
    for mv in &mut moves {
        if let Ok(e) = tree.get_path(Path::new(mv.to.as_str())) {
            if e.filemode() == MODE_TREE && e.id() == mv.tree {
                mv.already_there = true;
            } else {
                taken.push(Taken {
                    legacy: mv.from.to_string(),
                    canonical: mv.to.to_string(),
                });
            }
        }
    }
    if !taken.is_empty() {
        return Err(RelocateError::Taken(taken));
    }
    if target.checked_out && !moves.is_empty() {
        progress.start("check dirty", moves.len() as u64);
        let mut paths = Vec::new();
        let mut dirs: Vec<&str> = Vec::new();
        let mut committed: Vec<(RepoPath, Oid)> = Vec::new();
        for mv in &moves {
            let files = tree_files(repo, mv.tree, mv.from.as_str())?.unwrap_or_default();
            dirs.extend([mv.from.as_str(), mv.to.as_str()]);
            for (p, id) in files {
                let rest = &p.as_str()[mv.from.as_str().len()..];
                let at_to = RepoPath::new(format!("{}{rest}", mv.to));
                if mv.already_there {
                    committed.push((at_to.clone(), id));
                } else {
                    // Checked for filters only: nothing is committed at the new place yet.
                    paths.push(at_to);
                }
                committed.push((p, id));
            }
            progress.inc(1);
        }
        let dirty = dirty_dirs(repo, &dirs, &committed)?;
        progress.finish();
        if !dirty.is_empty() {
            return Err(RelocateError::DirtyRuns { paths: dirty });
        }
        paths.extend(committed.into_iter().map(|(p, _)| p));
        check_no_filters(repo, paths.iter(), has_gitattributes)?;
    }
    let layout = cfg.layouts.canonical().pattern().to_string();
    let message = RelocationMessage {
        layout: layout.clone(),
        moves: moves
            .iter()
            .map(|m| (m.from.to_string(), m.to.to_string()))
            .collect(),
        tool: tool_name(),
    };
    let mut report = RelocateReport {
        commit: None,
        target_ref: target.clone(),
        layout,
        moves,
        failed,
        message,
        worktree: None,
    };
    if opts.dry_run || report.moves.is_empty() || !report.failed.is_empty() {
        return Ok(report);
    }
    let identity = Identity::from_env(repo)?;
    let signer = Signer::from_config(repo, opts.sign).map_err(GitError::from)?;
    let text = report.message.render();
    progress.start("write objects", 0);
    let mut pack = PackWriter::create(&pack_dir(repo))?;
    let mut updates = Vec::new();
    for mv in &report.moves {
        if !mv.already_there {
            updates.push(FileUpdate {
                path: mv.to.clone(),
                blob: mv.tree,
                mode: MODE_TREE,
            });
        }
        updates.push(FileUpdate {
            path: mv.from.clone(),
            blob: pack.add_object(ObjectType::Blob, mv.link.as_bytes())?,
            mode: MODE_LINK,
        });
    }
    updates.sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    let req = CommitRequest {
        base: target.base,
        updates: &updates,
        message: &text,
        author: &identity.author,
        committer: &identity.committer,
        signer: signer.as_ref(),
    };
    let commit = build_commit(repo, pack, &req)?;
    if let Some((path, problem)) =
        audit_relocation(repo, target.base, commit, &report.message.moves)?
            .into_iter()
            .next()
    {
        return Err(RelocateError::NotARename { path, problem });
    }
    progress.finish();
    fault::point("after-objects");
    let files = if target.checked_out {
        changed_files(repo, target.base, commit)?
    } else {
        Vec::new()
    };
    let subject = text.lines().next().unwrap_or_default();
    report.worktree = land(repo, &target, commit, "relocate", subject, &files, progress)?;
    report.commit = Some(commit);
    Ok(report)
}

/// Checks that `commit`, a child of `parent`, only moved the run directories `moves` lists
/// (`(from, to)`): at the parent each `from` is a directory and `to` is absent (or that same
/// directory); at the commit `to` is that directory, every blob identical under its new
/// path, and `from` is the symbolic link to it that the pipeline makes; and no other path
/// changed. Returns `(path, problem)` for each thing that is not so. `relocate` runs it
/// before its commit lands, `verify` on every relocation in history.
pub fn audit_relocation(
    repo: &Repo,
    parent: CommitId,
    commit: CommitId,
    moves: &[(String, String)],
) -> Result<Vec<(String, String)>, GitError> {
    let before = repo.tree_of(parent)?;
    let after = repo.tree_of(commit)?;
    let entry = |t: &git2::Tree<'_>, p: &str| {
        t.get_path(Path::new(p))
            .ok()
            .map(|e| (e.id(), e.filemode()))
    };
    let mut out = Vec::new();
    for (from, to) in moves {
        let Some((dir, MODE_TREE)) = entry(&before, from) else {
            out.push((
                from.clone(),
                "was not a run directory before the relocation".to_string(),
            ));
            continue;
        };
        match entry(&before, to) {
            None => {}
            Some((id, MODE_TREE)) if id == dir => {}
            Some(_) => out.push((
                to.clone(),
                format!("held other content than {from} before the relocation"),
            )),
        }
        if entry(&after, to) != Some((dir, MODE_TREE)) {
            out.push((
                to.clone(),
                format!("is not byte for byte the run directory {from} was"),
            ));
        }
        let link = alias_target(from, to);
        let is_link = match entry(&after, from) {
            Some((id, MODE_LINK)) => repo.blob(id, from)? == link.as_bytes(),
            _ => false,
        };
        if !is_link {
            out.push((
                from.clone(),
                format!("is not the alias symbolic link -> {link}"),
            ));
        }
    }
    let froms: BTreeSet<&str> = moves.iter().map(|(f, _)| f.as_str()).collect();
    let tos: BTreeSet<&str> = moves.iter().map(|(_, t)| t.as_str()).collect();
    for c in tree_changes(repo, Some(parent), commit)? {
        let p = c.path.as_str();
        let explained = match c.status {
            git2::Delta::Deleted => under_any(p, &froms),
            git2::Delta::Added => {
                under_any(p, &tos) || (froms.contains(p) && c.new_mode == MODE_LINK)
            }
            _ => false,
        };
        if !explained {
            out.push((
                c.path.clone(),
                "changed, and is not part of a moved run".to_string(),
            ));
        }
    }
    Ok(out)
}
