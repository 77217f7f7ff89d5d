//! Writing a batch's objects: blobs, trees and the commit go to an in-memory object store,
//! then out to disk as one pack, before any ref moves (objects first, §7).
//!
//! One pack instead of one loose file per object: loose writes are the slowest part of a
//! large batch on this kind of disk, and thousands of loose objects trigger `git gc --auto`
//! in the user's next git command. The mempack backend has no locking, so this module uses
//! its own `Repository` handle, from one thread, and drops it when the pack is written.

use std::collections::{BTreeSet, HashSet};

use git2::build::TreeUpdateBuilder;
use git2::{Delta, DiffOptions, FileMode, ObjectType, Oid, Repository, Signature, Tree};

use crate::git::pack::{write_pack, PackObject};
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};

/// One file of a batch: its path, new content and mode.
pub struct FileUpdate<'a> {
    pub path: &'a RepoPath,
    pub content: BlobContent<'a>,
    pub mode: i32,
}

/// The new content of a file: bytes to write, or a blob that already exists.
pub enum BlobContent<'a> {
    Bytes(&'a [u8]),
    Existing(Oid),
}

/// What to commit.
pub struct CommitRequest<'a> {
    pub base: CommitId,
    pub updates: Vec<FileUpdate<'a>>,
    pub message: &'a str,
    pub author: &'a Signature<'static>,
    pub committer: &'a Signature<'static>,
}

fn file_mode(mode: i32) -> FileMode {
    if mode == 0o100755 {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    }
}

/// Writes the blobs, trees and commit of a batch as one pack and returns the new commit.
/// No ref moves here. Before the commit is made, the new tree is compared with the base
/// tree: a path that is not one of the updates means a bug, and nothing is committed.
pub fn write_commit(repo: &Repo, req: &CommitRequest<'_>) -> Result<CommitId, GitError> {
    let git = Repository::open(repo.git_dir())
        .map_err(GitError::git("open the repository for writing"))?;
    let odb = git
        .odb()
        .map_err(GitError::git("open the object database"))?;
    let mempack = odb
        .add_new_mempack_backend(1000)
        .map_err(GitError::git("add an in-memory object store"))?;
    let result = (|| {
        let parent = git
            .find_commit(req.base.0)
            .map_err(GitError::git(format!("read commit {}", req.base)))?;
        let base_tree = parent.tree().map_err(GitError::git("read the base tree"))?;
        let mut builder = TreeUpdateBuilder::new();
        for u in &req.updates {
            let id = match u.content {
                BlobContent::Bytes(b) => {
                    let id = odb
                        .write(ObjectType::Blob, b)
                        .map_err(GitError::git(format!("write the blob of {}", u.path)))?;
                    id
                }
                BlobContent::Existing(id) => id,
            };
            builder.upsert(u.path.as_str(), id, file_mode(u.mode));
        }
        let tree_id = builder
            .create_updated(&git, &base_tree)
            .map_err(GitError::git("build the new tree"))?;
        let tree = git
            .find_tree(tree_id)
            .map_err(GitError::git("read the new tree"))?;
        check_only_updates_changed(&git, &base_tree, &tree, &req.updates)?;
        let commit = git
            .commit(
                None,
                req.author,
                req.committer,
                req.message,
                &tree,
                &[&parent],
            )
            .map_err(GitError::git("create the commit"))?;
        let mut trees = Vec::new();
        new_trees(
            &git,
            &tree,
            Some(&base_tree),
            &mut trees,
            &mut HashSet::new(),
        )?;
        let mut objects: Vec<PackObject<'_>> =
            Vec::with_capacity(1 + trees.len() + req.updates.len());
        let mut seen = BTreeSet::new();
        for id in std::iter::once(commit).chain(trees) {
            let obj = odb
                .read(id)
                .map_err(GitError::git(format!("read the new object {id}")))?;
            objects.push(PackObject {
                kind: obj.kind(),
                data: obj.data().to_vec().into(),
            });
        }
        for u in &req.updates {
            if let BlobContent::Bytes(b) = u.content {
                // Two manifests may migrate to the same bytes: one object in the pack.
                let id =
                    Oid::hash_object(ObjectType::Blob, b).map_err(GitError::git("hash a blob"))?;
                if !seen.insert(id) {
                    continue;
                }
                objects.push(PackObject {
                    kind: ObjectType::Blob,
                    data: b.into(),
                });
            }
        }
        // The caller's handle has no in-memory backend: the pack goes to disk.
        let disk = repo
            .git
            .odb()
            .map_err(GitError::git("open the object database"))?;
        write_pack(&disk, &objects)?;
        Ok(CommitId(commit))
    })();
    // Forget the in-memory copies whatever happened; the pack on disk is what counts.
    let _ = mempack.reset();
    drop(odb);
    drop(git);
    if result.is_ok() {
        // Let the caller's handle see the new pack.
        if let Ok(odb) = repo.git.odb() {
            let _ = odb.refresh();
        }
    }
    result
}

/// Collects the trees of `new` that differ from `old`, descending only where ids differ.
fn new_trees(
    git: &Repository,
    new: &Tree<'_>,
    old: Option<&Tree<'_>>,
    out: &mut Vec<Oid>,
    seen: &mut HashSet<Oid>,
) -> Result<(), GitError> {
    // Identical directories (two runs with the same content) are one object: pack it once.
    if old.map(|o| o.id()) == Some(new.id()) || !seen.insert(new.id()) {
        return Ok(());
    }
    out.push(new.id());
    for entry in new.iter() {
        if entry.kind() != Some(ObjectType::Tree) {
            continue;
        }
        let Ok(name) = entry.name() else { continue };
        let old_sub = old
            .and_then(|o| o.get_name(name))
            .filter(|e| e.kind() == Some(ObjectType::Tree));
        if old_sub.as_ref().map(|e| e.id()) == Some(entry.id()) {
            continue;
        }
        let sub = git
            .find_tree(entry.id())
            .map_err(GitError::git("read a new tree"))?;
        let old_tree = match old_sub {
            Some(e) => Some(
                git.find_tree(e.id())
                    .map_err(GitError::git("read a base tree"))?,
            ),
            None => None,
        };
        new_trees(git, &sub, old_tree.as_ref(), out, seen)?;
    }
    Ok(())
}

/// Invariant §4.1 at the batch level: the new tree differs from the base tree only at the
/// updated paths, and only in content.
fn check_only_updates_changed(
    git: &Repository,
    base: &Tree<'_>,
    new: &Tree<'_>,
    updates: &[FileUpdate<'_>],
) -> Result<(), GitError> {
    let allowed: BTreeSet<&str> = updates.iter().map(|u| u.path.as_str()).collect();
    let mut opts = DiffOptions::new();
    opts.skip_binary_check(true);
    let diff = git
        .diff_tree_to_tree(Some(base), Some(new), Some(&mut opts))
        .map_err(GitError::git("compare the new tree with its parent"))?;
    for d in diff.deltas() {
        let path = d
            .new_file()
            .path()
            .or(d.old_file().path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ok = d.status() == Delta::Modified
            && allowed.contains(path.as_str())
            && d.old_file().mode() == d.new_file().mode();
        if !ok {
            return Err(GitError::BatchTouchesOther { path });
        }
    }
    Ok(())
}
