//! Unified diffs of a manifest's old and new bytes, as `git diff` shows them.

use git2::{DiffFormat, DiffOptions, Patch};

use crate::git::GitError;

/// The unified diff (`--- a/PATH`, `+++ b/PATH`, hunks with 3 lines of context).
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> Result<String, GitError> {
    let mut opts = DiffOptions::new();
    opts.context_lines(3).force_text(true);
    let mut patch = Patch::from_buffers(
        old,
        Some(path.as_ref()),
        new,
        Some(path.as_ref()),
        Some(&mut opts),
    )
    .map_err(GitError::git(format!("diff {path}")))?;
    let mut out = String::new();
    patch
        .print(&mut |_delta, _hunk, line| {
            let origin = line.origin();
            if matches!(origin, '+' | '-' | ' ') {
                out.push(origin);
            }
            out.push_str(&String::from_utf8_lossy(line.content()));
            true
        })
        .map_err(GitError::git(format!("diff {path}")))?;
    let _ = DiffFormat::Patch;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_changed_lines_with_context() {
        let d = unified_diff(
            "m.json",
            b"{\n  \"a\": 1\n}\n",
            b"{\n  \"a\": 1,\n  \"b\": 2\n}\n",
        )
        .unwrap();
        assert!(d.contains("--- a/m.json\n+++ b/m.json\n"), "{d}");
        assert!(
            d.contains("-  \"a\": 1\n+  \"a\": 1,\n+  \"b\": 2\n"),
            "{d}"
        );
    }
}

/// One path that differs between two trees.
#[derive(Debug, Clone)]
pub struct TreeChange {
    pub path: String,
    pub status: git2::Delta,
    pub old_id: git2::Oid,
    pub new_id: git2::Oid,
    pub old_mode: i32,
    pub new_mode: i32,
}

/// The paths that differ between two commits' trees (`old` = `None`: an empty tree), as
/// libgit2's tree-to-tree diff reports them (no rename detection, no content read; a file
/// whose type changes is a deletion and an addition), in the same order.
///
/// A walk of our own rather than libgit2's diff: it merges the two trees' sorted entries and
/// descends only where a subtree's id differs, with no delta list or path index to build.
/// On a batch of 100k manifests libgit2's diff was half of `write objects` (the batch check).
/// `libgit2_tree_changes` in the tests is the referee it is compared with.
pub fn tree_changes(
    repo: &crate::git::Repo,
    old: Option<crate::ids::CommitId>,
    new: crate::ids::CommitId,
) -> Result<Vec<TreeChange>, GitError> {
    let old_tree = match old {
        Some(c) => Some(repo.tree_of(c)?),
        None => None,
    };
    let new_tree = repo.tree_of(new)?;
    let mut out = Vec::new();
    let mut walk = Walk {
        repo: &repo.git,
        out: &mut out,
        what: new,
    };
    walk.trees(old_tree.as_ref(), Some(&new_tree), &mut Vec::new())?;
    Ok(out)
}

use crate::git::objects::{git_tree_order, MODE_TREE};

/// The type bits of a git mode (regular file, link, tree, gitlink).
const MODE_TYPE: i32 = 0o170000;

/// One side of an entry: its name, mode and id.
#[derive(Clone, Copy)]
struct Side<'a> {
    name: &'a [u8],
    mode: i32,
    id: git2::Oid,
}

impl<'a> Side<'a> {
    fn of(e: &'a git2::TreeEntry<'_>) -> Side<'a> {
        Side {
            name: e.name_bytes(),
            mode: e.filemode(),
            id: e.id(),
        }
    }

    fn is_tree(&self) -> bool {
        self.mode == MODE_TREE
    }
}

struct Walk<'r, 'o> {
    repo: &'r git2::Repository,
    out: &'o mut Vec<TreeChange>,
    what: crate::ids::CommitId,
}

impl<'r> Walk<'r, '_> {
    fn tree(&self, id: git2::Oid) -> Result<git2::Tree<'r>, GitError> {
        self.repo.find_tree(id).map_err(GitError::git(format!(
            "compare {} with its parent",
            self.what
        )))
    }

    /// The changes below two trees (either may be absent), `prefix` being their directory.
    fn trees(
        &mut self,
        old: Option<&git2::Tree<'_>>,
        new: Option<&git2::Tree<'_>>,
        prefix: &mut Vec<u8>,
    ) -> Result<(), GitError> {
        let count = |t: Option<&git2::Tree<'_>>| t.map_or(0, |t| t.len());
        let (olen, nlen) = (count(old), count(new));
        let (mut i, mut j) = (0, 0);
        while i < olen || j < nlen {
            let (oe, ne) = (old.and_then(|t| t.get(i)), new.and_then(|t| t.get(j)));
            let (o, n) = (oe.as_ref().map(Side::of), ne.as_ref().map(Side::of));
            let order = match (&o, &n) {
                (Some(a), Some(b)) => git_tree_order((a.name, a.mode), (b.name, b.mode)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                // Both past their end: only a tree shorter than its count stops here.
                (None, None) => break,
            };
            match order {
                std::cmp::Ordering::Less => {
                    i += 1;
                    self.entry(o, None, prefix)?;
                }
                std::cmp::Ordering::Greater => {
                    j += 1;
                    self.entry(None, n, prefix)?;
                }
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    self.entry(o, n, prefix)?;
                }
            }
        }
        Ok(())
    }

    /// One name present on one side or both (then both trees, or both not trees).
    fn entry(
        &mut self,
        old: Option<Side<'_>>,
        new: Option<Side<'_>>,
        prefix: &mut Vec<u8>,
    ) -> Result<(), GitError> {
        let Some(name) = old.or(new).map(|s| s.name) else {
            return Ok(());
        };
        if old.is_some_and(|o| new.is_some_and(|n| o.id == n.id && o.mode == n.mode)) {
            return Ok(());
        }
        let len = prefix.len();
        prefix.extend_from_slice(name);
        let result = if old.or(new).is_some_and(|s| s.is_tree()) {
            prefix.push(b'/');
            let o = old.map(|s| self.tree(s.id)).transpose()?;
            let n = new.map(|s| self.tree(s.id)).transpose()?;
            self.trees(o.as_ref(), n.as_ref(), prefix)
        } else {
            let path = String::from_utf8_lossy(prefix).into_owned();
            match (old, new) {
                (Some(o), Some(n)) if o.mode & MODE_TYPE == n.mode & MODE_TYPE => {
                    self.change(path, git2::Delta::Modified, Some(o), Some(n));
                }
                (Some(o), Some(n)) => {
                    self.change(path.clone(), git2::Delta::Deleted, Some(o), None);
                    self.change(path, git2::Delta::Added, None, Some(n));
                }
                (Some(o), None) => self.change(path, git2::Delta::Deleted, Some(o), None),
                (None, n) => self.change(path, git2::Delta::Added, None, n),
            }
            Ok(())
        };
        prefix.truncate(len);
        result
    }

    fn change(
        &mut self,
        path: String,
        status: git2::Delta,
        old: Option<Side<'_>>,
        new: Option<Side<'_>>,
    ) {
        let id = |s: Option<Side<'_>>| s.map_or(git2::Oid::ZERO_SHA1, |s| s.id);
        let mode = |s: Option<Side<'_>>| s.map_or(0, |s| s.mode);
        self.out.push(TreeChange {
            path,
            status,
            old_id: id(old),
            new_id: id(new),
            old_mode: mode(old),
            new_mode: mode(new),
        });
    }
}

/// libgit2's tree-to-tree diff, the referee [`tree_changes`] is tested against.
#[cfg(test)]
pub(crate) fn libgit2_tree_changes(
    repo: &crate::git::Repo,
    old: Option<crate::ids::CommitId>,
    new: crate::ids::CommitId,
) -> Result<Vec<TreeChange>, GitError> {
    let old_tree = match old {
        Some(c) => Some(repo.tree_of(c)?),
        None => None,
    };
    let new_tree = repo.tree_of(new)?;
    let diff = repo
        .git
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
        .map_err(GitError::git(format!("compare {new} with its parent")))?;
    Ok(diff
        .deltas()
        .map(|d| TreeChange {
            path: d
                .new_file()
                .path()
                .or(d.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
            status: d.status(),
            old_id: d.old_file().id(),
            new_id: d.new_file().id(),
            old_mode: u32::from(d.old_file().mode()) as i32,
            new_mode: u32::from(d.new_file().mode()) as i32,
        })
        .collect())
}

#[cfg(test)]
mod walk_tests {
    use super::*;
    use crate::git::Repo;
    use crate::ids::CommitId;
    use git2::build::TreeUpdateBuilder;
    use git2::{FileMode, Repository, Signature};
    use proptest::prelude::*;

    /// One file of a generated tree: its path, mode and content.
    type File = (String, FileMode, u8);

    fn commit(git: &Repository, files: &[File]) -> CommitId {
        let empty = git
            .find_tree(git.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let mut b = TreeUpdateBuilder::new();
        for (path, mode, content) in files {
            let blob = git.blob(&[*content]).unwrap();
            b.upsert(path.as_str(), blob, *mode);
        }
        let tree = git
            .find_tree(b.create_updated(git, &empty).unwrap())
            .unwrap();
        let sig = Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        CommitId(git.commit(None, &sig, &sig, "m\n", &tree, &[]).unwrap())
    }

    /// The fields a caller reads, in order.
    fn rows(
        changes: Vec<TreeChange>,
    ) -> Vec<(String, git2::Delta, git2::Oid, git2::Oid, i32, i32)> {
        changes
            .into_iter()
            .map(|c| (c.path, c.status, c.old_id, c.new_id, c.old_mode, c.new_mode))
            .collect()
    }

    /// Names chosen so that git's tree order and byte order disagree (`a` as a directory
    /// sorts after `a.b` and `a-`, as a file before them), and so that one path is a file in
    /// one tree and a directory in the other.
    fn files() -> impl Strategy<Value = Vec<File>> {
        let name = prop::sample::select(vec!["a", "a.b", "a-", "b", "ab", "m.json"]);
        let path = prop::collection::vec(name, 1..4).prop_map(|p| p.join("/"));
        let mode = prop::sample::select(vec![
            FileMode::Blob,
            FileMode::BlobExecutable,
            FileMode::Link,
        ]);
        prop::collection::vec((path, mode, 0u8..3), 0..12).prop_map(|fs| {
            // A path that is a file cannot also have files below it.
            let mut kept: Vec<File> = Vec::new();
            for f in fs {
                let clash = kept.iter().any(|k| {
                    k.0 == f.0
                        || k.0.starts_with(&format!("{}/", f.0))
                        || f.0.starts_with(&format!("{}/", k.0))
                });
                if !clash {
                    kept.push(f);
                }
            }
            kept
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Our walk reports what libgit2's diff reports, in the same order.
        #[test]
        fn the_walk_matches_libgit2s_diff(old in files(), new in files(), from_empty in any::<bool>()) {
            let dir = tempfile::tempdir().unwrap();
            let git = Repository::init_bare(dir.path()).unwrap();
            let a = commit(&git, &old);
            let b = commit(&git, &new);
            let repo = Repo { git };
            let base = (!from_empty).then_some(a);
            let ours = rows(tree_changes(&repo, base, b).unwrap());
            let theirs = rows(libgit2_tree_changes(&repo, base, b).unwrap());
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn a_file_that_becomes_a_directory_is_a_deletion_then_additions() {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init_bare(dir.path()).unwrap();
        let a = commit(
            &git,
            &[
                ("a".into(), FileMode::Blob, 0),
                ("a.b".into(), FileMode::Blob, 0),
            ],
        );
        let b = commit(
            &git,
            &[
                ("a/x".into(), FileMode::Blob, 1),
                ("a.b".into(), FileMode::BlobExecutable, 0),
            ],
        );
        let repo = Repo { git };
        let got: Vec<(String, git2::Delta)> = tree_changes(&repo, Some(a), b)
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.status))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), git2::Delta::Deleted),
                ("a.b".to_string(), git2::Delta::Modified),
                ("a/x".to_string(), git2::Delta::Added),
            ]
        );
    }
}
