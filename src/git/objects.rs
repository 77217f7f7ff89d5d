//! A batch's trees and commit, built from the base commit's tree and written into the
//! batch's pack (objects first, §7): no ref moves here.
//!
//! Each new tree is its base tree with some entries set or removed: we write the trees
//! ourselves, level by level, straight into the pack, without holding the whole tree in an
//! object database, descending only where something changes. After the pack is on disk the
//! new tree is compared with the base tree through libgit2: for `apply` and `rollback`, a path
//! that is not one of the updates means a bug, and the batch is not landed (`relocate` checks
//! its own invariant, that it only renamed).

use std::collections::{BTreeMap, BTreeSet};

use git2::{ObjectType, Oid, Signature, Tree};

use crate::git::diff::tree_changes;

use crate::git::pack::{configured_level, PackQueue, PackWriter};
use crate::git::sign::{add_signature_header, Signer};
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};

/// The git mode of a directory entry.
pub const MODE_TREE: i32 = 0o040000;
/// The git mode of a symbolic link.
pub const MODE_LINK: i32 = 0o120000;

/// One entry of a batch: its path, its new object (a blob, or a tree with mode
/// [`MODE_TREE`], already in the pack or the repository) and mode. A zero id removes the
/// entry (and directories left empty by it). Missing directories are created.
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
    /// Signs the commit object (a `gpgsig` header, as git writes it); `None`: unsigned.
    pub signer: Option<&'a Signer>,
}

/// Writes the new trees and the commit into `pack`, finishes the pack (durably), checks that
/// the new tree differs from the base exactly at the updates and returns the new commit.
/// Nothing points to it yet.
pub fn write_commit(
    repo: &Repo,
    pack: PackWriter,
    req: &CommitRequest<'_>,
) -> Result<CommitId, GitError> {
    let commit = build_commit(repo, pack, req)?;
    check_only_updates_changed(repo, req.base, commit, req.updates)?;
    Ok(commit)
}

/// [`write_commit`] without its check: for a caller that checks the new tree against its
/// own invariant before anything points to it (`relocate` moves whole directories).
pub fn build_commit(
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
    let mut queue = PackQueue::new(&mut pack);
    let tree = match rebuild(repo, &mut queue, Some(&base_tree), &updates, "")? {
        Some(t) => t,
        None => queue.add_object(ObjectType::Tree, Vec::new())?,
    };
    queue.flush()?;
    let mut data = commit_object(tree, req.base.0, req.author, req.committer, req.message);
    if let Some(signer) = req.signer {
        // Before the pack is finished: a signing failure drops it, leaving nothing behind.
        let signature = signer.sign(&data, req.committer)?;
        data = add_signature_header(&data, &signature);
    }
    let commit = pack.add_object(ObjectType::Commit, &data)?;
    pack.finish()?;
    let odb = repo
        .git
        .odb()
        .map_err(GitError::git("open the object database"))?;
    odb.refresh().map_err(GitError::git("read the new pack"))?;
    Ok(CommitId(commit))
}

/// Git's order of tree entries: by name, a directory (`mode` [`MODE_TREE`]) compared as if its
/// name ended in `/`.
pub(crate) fn git_tree_order(
    (a, a_mode): (&[u8], i32),
    (b, b_mode): (&[u8], i32),
) -> std::cmp::Ordering {
    let dir = |mode: i32| (mode == MODE_TREE).then_some(b'/');
    let ka = a.iter().copied().chain(dir(a_mode));
    ka.cmp(b.iter().copied().chain(dir(b_mode)))
}

fn tree_order(a: &(Vec<u8>, i32, Oid), b: &(Vec<u8>, i32, Oid)) -> std::cmp::Ordering {
    git_tree_order((&a.0, a.1), (&b.0, b.1))
}

/// The new version of `tree` (at `dir`, `""` for the root; `None`: a directory that does
/// not exist yet) with the updates below it; `None` when it ends up empty.
fn rebuild(
    repo: &Repo,
    pack: &mut PackQueue<'_>,
    tree: Option<&Tree<'_>>,
    updates: &[(&[u8], &FileUpdate)],
    dir: &str,
) -> Result<Option<Oid>, GitError> {
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
    let sub_dir = |name: &[u8]| format!("{dir}{}/", String::from_utf8_lossy(name));
    let mut entries: Vec<(Vec<u8>, i32, Oid)> = Vec::with_capacity(tree.map_or(0, |t| t.len()));
    let mut seen: BTreeSet<&[u8]> = BTreeSet::new();
    let mut retyped = false;
    for entry in tree.into_iter().flat_map(|t| t.iter()) {
        let name = entry.name_bytes();
        let (mut id, mut mode) = (entry.id(), entry.filemode());
        if let Some((key, sub)) = subdirs.get_key_value(name) {
            seen.insert(key);
            // A file replaced by a directory starts from nothing (its removal is an update too).
            let t = match (files.get(name), entry.kind()) {
                (Some(u), _) if !u.blob.is_zero() => return Err(missing(name)),
                (None, Some(ObjectType::Tree)) => {
                    Some(repo.git.find_tree(id).map_err(|_| missing(name))?)
                }
                _ => None,
            };
            match rebuild(repo, pack, t.as_ref(), sub, &sub_dir(name))? {
                Some(new) => (id, mode) = (new, MODE_TREE),
                None => continue,
            }
        } else if let Some((key, u)) = files.get_key_value(name) {
            seen.insert(key);
            if u.blob.is_zero() {
                continue;
            }
            (id, mode) = (u.blob, u.mode);
        }
        // A file that became a directory or back may sort elsewhere.
        retyped |= (mode == MODE_TREE) != (entry.filemode() == MODE_TREE);
        entries.push((name.to_vec(), mode, id));
    }
    // Entries that are new at this level.
    let mut added = false;
    for (name, u) in &files {
        if seen.contains(name) || subdirs.contains_key(name) {
            continue;
        }
        if u.blob.is_zero() {
            return Err(missing(name));
        }
        entries.push((name.to_vec(), u.mode, u.blob));
        added = true;
    }
    for (name, sub) in &subdirs {
        if seen.contains(name) {
            continue;
        }
        if let Some(id) = rebuild(repo, pack, None, sub, &sub_dir(name))? {
            entries.push((name.to_vec(), MODE_TREE, id));
            added = true;
        }
    }
    if added || retyped {
        entries.sort_by(tree_order);
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut data = Vec::with_capacity(entries.len() * 48);
    for (name, mode, id) in &entries {
        data.extend_from_slice(format!("{mode:o} ").as_bytes());
        data.extend_from_slice(name);
        data.push(0);
        data.extend_from_slice(id.as_bytes());
    }
    pack.add_object(ObjectType::Tree, data).map(Some)
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
/// updated paths, each now holding exactly the update's object and mode (or gone, for a
/// removal).
fn check_only_updates_changed(
    repo: &Repo,
    base: CommitId,
    new: CommitId,
    updates: &[FileUpdate],
) -> Result<(), GitError> {
    let allowed: BTreeMap<&str, &FileUpdate> =
        updates.iter().map(|u| (u.path.as_str(), u)).collect();
    for c in tree_changes(repo, Some(base), new)? {
        let ok = allowed
            .get(c.path.as_str())
            .is_some_and(|u| c.new_id == u.blob && (u.blob.is_zero() || c.new_mode == u.mode));
        if !ok {
            return Err(GitError::BatchTouchesOther { path: c.path });
        }
    }
    Ok(())
}

/// A new pack for a batch in `repo`, at the zlib level its git configuration names
/// (`pack.compression`, else `core.compression`; see [`configured_level`]).
pub fn batch_pack(repo: &Repo) -> Result<PackWriter, GitError> {
    let level = match repo.git.config() {
        Ok(c) => configured_level(
            c.get_i32("pack.compression").ok(),
            c.get_i32("core.compression").ok(),
        ),
        Err(_) => configured_level(None, None),
    };
    Ok(PackWriter::create(&pack_dir(repo))?.with_level(level))
}

/// The `objects/pack` directory of a repository.
pub fn pack_dir(repo: &Repo) -> std::path::PathBuf {
    // The common directory: a linked worktree shares the main repository's objects.
    repo.git.commondir().join("objects").join("pack")
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::build::TreeUpdateBuilder;
    use git2::FileMode;

    /// A bare repository with one commit of `files`, its tree built by libgit2.
    fn repo_with(files: &[&str]) -> (tempfile::TempDir, Repo, CommitId) {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init_bare(dir.path()).unwrap();
        let empty = git
            .find_tree(git.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let mut b = TreeUpdateBuilder::new();
        for f in files {
            let blob = git.blob(format!("content of {f}\n").as_bytes()).unwrap();
            b.upsert(*f, blob, FileMode::Blob);
        }
        let tree = git
            .find_tree(b.create_updated(&git, &empty).unwrap())
            .unwrap();
        let sig = Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        let commit = git.commit(None, &sig, &sig, "base\n", &tree, &[]).unwrap();
        drop(tree);
        drop(empty);
        (dir, Repo { git }, CommitId(commit))
    }

    /// Our tree for `updates` on `base`, and libgit2's (TreeUpdateBuilder, which will not
    /// replace a directory by a file in one pass: removals first, then the upserts).
    fn both(repo: &Repo, base: CommitId, updates: &[FileUpdate]) -> (Oid, Oid) {
        let sig = Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        let req = CommitRequest {
            base,
            updates,
            message: "m\n",
            author: &sig,
            committer: &sig,
            signer: None,
        };
        let pack = PackWriter::create(&pack_dir(repo)).unwrap();
        let ours = build_commit(repo, pack, &req).unwrap();
        let ours = repo.tree_of(ours).unwrap().id();
        let base_tree = repo.tree_of(base).unwrap();
        let mut removals = TreeUpdateBuilder::new();
        for u in updates {
            if u.blob.is_zero()
                || base_tree
                    .get_path(std::path::Path::new(u.path.as_str()))
                    .is_ok()
            {
                removals.remove(u.path.as_str());
            }
        }
        let between = removals.create_updated(&repo.git, &base_tree).unwrap();
        let mut upserts = TreeUpdateBuilder::new();
        for u in updates.iter().filter(|u| !u.blob.is_zero()) {
            let mode = match u.mode {
                MODE_TREE => FileMode::Tree,
                MODE_LINK => FileMode::Link,
                _ => FileMode::Blob,
            };
            upserts.upsert(u.path.as_str(), u.blob, mode);
        }
        let theirs = upserts
            .create_updated(&repo.git, &repo.git.find_tree(between).unwrap())
            .unwrap();
        (ours, theirs)
    }

    fn entry(repo: &Repo, commit: CommitId, path: &str) -> (Oid, i32) {
        let e = repo
            .tree_of(commit)
            .unwrap()
            .get_path(std::path::Path::new(path))
            .unwrap();
        (e.id(), e.filemode())
    }

    #[test]
    fn a_directory_moves_and_a_link_takes_its_place_as_libgit2_would() {
        let (_d, repo, base) = repo_with(&[
            "a/runs/r1/manifest.json",
            "a/runs/r1/inputs/x.json",
            "a/runs/r2/manifest.json",
            "a/j/other/manifest.json",
            "a/runs.txt",
        ]);
        let (dir, _) = entry(&repo, base, "a/runs/r1");
        let link = repo.git.blob(b"../j/r1").unwrap();
        let updates = vec![
            // A new directory in an existing one, a new top-level job, a dir -> link.
            FileUpdate {
                path: RepoPath::new("a/j/r1"),
                blob: dir,
                mode: MODE_TREE,
            },
            FileUpdate {
                path: RepoPath::new("a/k/r1"),
                blob: dir,
                mode: MODE_TREE,
            },
            FileUpdate {
                path: RepoPath::new("a/runs/r1"),
                blob: link,
                mode: MODE_LINK,
            },
        ];
        let (ours, theirs) = both(&repo, base, &updates);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn removals_prune_empty_directories_and_a_link_becomes_a_directory_again() {
        let (_d, repo, base) = repo_with(&[
            "a/j/r1/manifest.json",
            "a/j/r1/inputs/x.json",
            "a/runs/r1",
            "a/keep.txt",
        ]);
        let blob = |p: &str| entry(&repo, base, p).0;
        let updates = vec![
            FileUpdate {
                path: RepoPath::new("a/j/r1/inputs/x.json"),
                blob: Oid::ZERO_SHA1,
                mode: 0o100644,
            },
            FileUpdate {
                path: RepoPath::new("a/j/r1/manifest.json"),
                blob: Oid::ZERO_SHA1,
                mode: 0o100644,
            },
            FileUpdate {
                path: RepoPath::new("a/runs/r1"),
                blob: Oid::ZERO_SHA1,
                mode: MODE_LINK,
            },
            FileUpdate {
                path: RepoPath::new("a/runs/r1/inputs/x.json"),
                blob: blob("a/j/r1/inputs/x.json"),
                mode: 0o100644,
            },
            FileUpdate {
                path: RepoPath::new("a/runs/r1/manifest.json"),
                blob: blob("a/j/r1/manifest.json"),
                mode: 0o100644,
            },
        ];
        let (ours, theirs) = both(&repo, base, &updates);
        assert_eq!(ours, theirs);
        // `a/j` held only the removed run: it is gone, not left as an empty tree.
        let tree = repo.git.find_tree(ours).unwrap();
        assert!(tree.get_path(std::path::Path::new("a/j")).is_err());
        let e = tree.get_path(std::path::Path::new("a/runs/r1")).unwrap();
        assert_eq!(e.filemode(), MODE_TREE);
    }

    #[test]
    fn a_batch_pack_takes_gits_compression_level() {
        let (_d, repo, _) = repo_with(&["a.json"]);
        repo.git
            .config()
            .unwrap()
            .set_i32("core.compression", 9)
            .unwrap();
        assert_eq!(batch_pack(&repo).unwrap().level().level(), 9);
        repo.git
            .config()
            .unwrap()
            .set_i32("pack.compression", 0)
            .unwrap();
        assert_eq!(batch_pack(&repo).unwrap().level().level(), 0);
    }

    #[test]
    fn the_check_refuses_a_change_that_is_not_an_update() {
        let (_d, repo, base) = repo_with(&["a/j/r/manifest.json", "a/j/r/inputs/x.json"]);
        let (dir, _) = entry(&repo, base, "a/j/r");
        let updates = vec![FileUpdate {
            path: RepoPath::new("a/k/r"),
            blob: dir,
            mode: MODE_TREE,
        }];
        let sig = Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        let req = CommitRequest {
            base,
            updates: &updates,
            message: "m\n",
            author: &sig,
            committer: &sig,
            signer: None,
        };
        let e =
            write_commit(&repo, PackWriter::create(&pack_dir(&repo)).unwrap(), &req).unwrap_err();
        assert!(matches!(e, GitError::BatchTouchesOther { .. }), "{e}");
        let missing = vec![FileUpdate {
            path: RepoPath::new("a/nope.json"),
            blob: Oid::ZERO_SHA1,
            mode: 0o100644,
        }];
        let req = CommitRequest {
            base,
            updates: &missing,
            message: "m\n",
            author: &sig,
            committer: &sig,
            signer: None,
        };
        assert!(build_commit(&repo, PackWriter::create(&pack_dir(&repo)).unwrap(), &req).is_err());
    }
}
