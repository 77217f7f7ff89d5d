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
/// libgit2's tree-to-tree diff sees them (no rename detection, no content read).
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
