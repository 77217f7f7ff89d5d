//! Landing a commit that is already written: journal, compare-and-swap on the branch,
//! working-tree files, index, journal removed (§7). Shared by `apply` and `rollback`.

use crate::engine::error::EngineError;
use crate::engine::progress::Progress;
use crate::fault;
use crate::git::refs::compare_and_swap;
use crate::git::worktree::{
    clear_journal, update_files, write_journal, Journal, PendingFile, WorktreeReport,
};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};

/// Moves `target` to `commit` if it is still at its base, then brings the working tree
/// along when the branch is checked out. A SIGKILL anywhere leaves the branch at the old
/// or the new commit; the journal lets the next command finish the files.
pub fn land(
    repo: &Repo,
    target: &Target,
    commit: CommitId,
    operation: &str,
    subject: &str,
    files: &[PendingFile],
    progress: &dyn Progress,
) -> Result<Option<WorktreeReport>, EngineError> {
    let journal = Journal {
        operation: operation.to_string(),
        refname: target.refname.clone(),
        old: target.base.to_string(),
        new: commit.to_string(),
        pid: std::process::id(),
    };
    if target.checked_out {
        write_journal(repo, &journal)?;
        fault::point("after-journal");
    }
    fault::point("before-cas");
    if let Err(e) = compare_and_swap(
        repo,
        target,
        commit,
        &format!("artifact-migrate: {subject}"),
    ) {
        if target.checked_out {
            clear_journal(repo, &journal)?;
        }
        return Err(e.into());
    }
    fault::point("after-cas");
    if !target.checked_out {
        return Ok(None);
    }
    progress.start("update files", files.len() as u64);
    let report = update_files(repo, files)?;
    fault::point("after-index");
    clear_journal(repo, &journal)?;
    progress.finish();
    Ok(Some(report))
}

/// Refuses to update a working tree whose manifests git would filter (eol, text, filter,
/// ident): their working-tree bytes would not be the committed bytes.
pub fn check_no_filters<'a>(
    repo: &Repo,
    paths: impl Iterator<Item = &'a RepoPath> + Clone,
    tree_has_gitattributes: bool,
) -> Result<(), GitError> {
    let autocrlf = repo
        .git
        .config()
        .and_then(|c| c.get_bool("core.autocrlf"))
        .unwrap_or(false);
    if autocrlf {
        if let Some(p) = paths.clone().next() {
            return Err(GitError::Filtered {
                path: p.to_string(),
                attr: "core.autocrlf=true".into(),
            });
        }
    }
    let info = repo.git_dir().join("info").join("attributes").exists();
    let global = repo
        .git
        .config()
        .and_then(|c| c.get_path("core.attributesFile"))
        .map(|p| p.exists())
        .unwrap_or(false)
        || std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
            })
            .is_some_and(|d| d.join("git").join("attributes").exists());
    let worktree_root = repo
        .workdir()
        .is_some_and(|w| w.join(".gitattributes").exists());
    if !(tree_has_gitattributes || info || global || worktree_root) {
        // No source of attributes at all: nothing can filter the manifests.
        return Ok(());
    }
    for p in paths {
        for attr in ["filter", "text", "eol", "ident", "working-tree-encoding"] {
            let v = repo
                .git
                .get_attr(
                    std::path::Path::new(p.as_str()),
                    attr,
                    git2::AttrCheckFlags::FILE_THEN_INDEX,
                )
                .map_err(GitError::git("read git attributes"))?;
            let set = match attr {
                "text" => v.is_some() && v != Some("false") && v != Some("auto"),
                _ => v.is_some() && v != Some("false"),
            };
            if set {
                return Err(GitError::Filtered {
                    path: p.to_string(),
                    attr: attr.to_string(),
                });
            }
        }
    }
    Ok(())
}
