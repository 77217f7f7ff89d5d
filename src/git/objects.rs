//! A batch's trees and commit, built from the base commit's tree and written into the
//! batch's pack (objects first, §7): no ref moves here.
//!
//! The batch only ever replaces the content of files that exist in the base tree, so each
//! new tree is its base tree with some entry ids replaced: we write them ourselves, level by
//! level, straight into the pack, without holding the whole tree in an object database. After
//! the pack is on disk the new tree is compared with the base tree through libgit2: a path
//! that is not one of the updates means a bug, and the batch is not landed.

use std::collections::{BTreeMap, BTreeSet};

use git2::{Delta, ObjectType, Oid, Signature, Tree};

use crate::git::diff::tree_changes;

use crate::git::pack::PackWriter;
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};

/// One file of a batch: its path, its new blob (already in the pack or the repository) and mode.
#[derive(Debug, Clone)]
pub struct FileUpdate {
    pub path: RepoPath,
    pub blob: Oid,
    pub mode: i32,
}

/// What to commit.
pub struct CommitRequest<'a> {
    pub base: CommitId,
    /// Sorted by path, bytewise.
    pub updates: &'a [FileUpdate],
    pub message: &'a str,
    pub author: &'a Signature<'static>,
    pub committer: &'a Signature<'static>,
}

/// Writes the new trees and the commit into `pack`, finishes the pack (durably), checks the
/// new tree against the base and returns the new commit. Nothing points to it yet.
pub fn write_commit(
    repo: &Repo,
    mut pack: PackWriter,
    req: &CommitRequest<'_>,
) -> Result<CommitId, GitError> {
    let parent = repo
        .git
        .find_commit(req.base.0)
        .map_err(GitError::git(format!("read commit {}", req.base)))?;
    let base_tree = parent.tree().map_err(GitError::git("read the base tree"))?;
    let updates: Vec<(&[u8], &FileUpdate)> = req
        .updates
        .iter()
        .map(|u| (u.path.as_str().as_bytes(), u))
        .collect();
    let tree = rebuild(repo, &mut pack, &base_tree, &updates, "")?;
    let data = commit_object(tree, req.base.0, req.author, req.committer, req.message);
    let commit = pack.add_object(ObjectType::Commit, &data)?;
    pack.finish()?;
    let odb = repo
        .git
        .odb()
        .map_err(GitError::git("open the object database"))?;
    odb.refresh().map_err(GitError::git("read the new pack"))?;
    let commit = CommitId(commit);
    check_only_updates_changed(repo, req.base, commit, req.updates)?;
    Ok(commit)
}

/// The new version of `tree` (at `dir`, `""` for the root) with the updates below it.
fn rebuild(
    repo: &Repo,
    pack: &mut PackWriter,
    tree: &Tree<'_>,
    updates: &[(&[u8], &FileUpdate)],
    dir: &str,
) -> Result<Oid, GitError> {
    // Group the updates by the first component of what is left of their path.
    let mut files: BTreeMap<&[u8], &FileUpdate> = BTreeMap::new();
    let mut subdirs: BTreeMap<&[u8], Vec<(&[u8], &FileUpdate)>> = BTreeMap::new();
    for (rest, u) in updates {
        match rest.iter().position(|b| *b == b'/') {
            None => {
                files.insert(rest, u);
            }
            Some(i) => subdirs
                .entry(&rest[..i])
                .or_default()
                .push((&rest[i + 1..], u)),
        }
    }
    let missing = |name: &[u8]| GitError::NotInBaseTree {
        path: format!("{dir}{}", String::from_utf8_lossy(name)),
    };
    let mut data = Vec::with_capacity(tree.len() * 48);
    let mut used = 0;
    for entry in tree.iter() {
        let name = entry.name_bytes();
        let mut id = entry.id();
        let mode = entry.filemode();
        if let Some(u) = files.get(name) {
            if entry.kind() != Some(ObjectType::Blob) {
                return Err(missing(name));
            }
            id = u.blob;
            used += 1;
        } else if let Some(sub) = subdirs.get(name) {
            let t = repo.git.find_tree(id).map_err(|_| missing(name))?;
            id = rebuild(
                repo,
                pack,
                &t,
                sub,
                &format!("{dir}{}/", String::from_utf8_lossy(name)),
            )?;
            used += 1;
        }
        data.extend_from_slice(format!("{mode:o} ").as_bytes());
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(id.as_bytes());
    }
    if used != files.len() + subdirs.len() {
        let present: BTreeSet<Vec<u8>> = tree.iter().map(|e| e.name_bytes().to_vec()).collect();
        let first = files
            .keys()
            .chain(subdirs.keys())
            .find(|n| !present.contains(**n))
            .copied()
            .unwrap_or_default();
        return Err(missing(first));
    }
    pack.add_object(ObjectType::Tree, &data)
}

fn signature_line(kind: &str, s: &Signature<'_>) -> Vec<u8> {
    let when = s.when();
    let off = when.offset_minutes();
    let sign = if off < 0 { '-' } else { '+' };
    let mut line = format!("{kind} ").into_bytes();
    line.extend_from_slice(s.name_bytes());
    line.extend_from_slice(b" <");
    line.extend_from_slice(s.email_bytes());
    line.extend_from_slice(
        format!(
            "> {} {sign}{:02}{:02}\n",
            when.seconds(),
            off.abs() / 60,
            off.abs() % 60
        )
        .as_bytes(),
    );
    line
}

/// A commit object exactly as git (and libgit2) write it.
fn commit_object(
    tree: Oid,
    parent: Oid,
    author: &Signature<'_>,
    committer: &Signature<'_>,
    message: &str,
) -> Vec<u8> {
    let mut d = format!("tree {tree}\nparent {parent}\n").into_bytes();
    d.extend(signature_line("author", author));
    d.extend(signature_line("committer", committer));
    d.push(b'\n');
    d.extend_from_slice(message.as_bytes());
    d
}

/// Invariant §4.1 at the batch level: the new tree differs from the base tree only at the
/// updated paths, and only in content.
fn check_only_updates_changed(
    repo: &Repo,
    base: CommitId,
    new: CommitId,
    updates: &[FileUpdate],
) -> Result<(), GitError> {
    let allowed: BTreeSet<&str> = updates.iter().map(|u| u.path.as_str()).collect();
    for c in tree_changes(repo, Some(base), new)? {
        let ok = c.status == Delta::Modified
            && allowed.contains(c.path.as_str())
            && c.old_mode == c.new_mode;
        if !ok {
            return Err(GitError::BatchTouchesOther { path: c.path });
        }
    }
    Ok(())
}

/// The `objects/pack` directory of a repository.
pub fn pack_dir(repo: &Repo) -> std::path::PathBuf {
    // The common directory: a linked worktree shares the main repository's objects.
    repo.git.commondir().join("objects").join("pack")
}
