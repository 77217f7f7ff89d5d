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
