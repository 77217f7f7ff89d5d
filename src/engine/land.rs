//! Landing a commit that is already written: journal, compare-and-swap on the branch,
//! working-tree files, index, journal removed (§7). Shared by `apply` and `rollback`.

use crate::engine::error::EngineError;
use crate::engine::progress::Progress;
use crate::fault;
use crate::git::refs::compare_and_swap;
use crate::git::worktree::{
    clear_journal, interrupted_after_landing, update_files, write_journal, Journal, PendingFile,
    WorktreeLock, WorktreeReport,
};
use crate::git::{GitError, Repo, Target};
use crate::ids::{CommitId, RepoPath};
use crate::interrupt::{self, Interrupted};

/// What a signal at a safe point before the ref move leaves: nothing (the unreferenced pack
/// is git's garbage, like a failed push's).
pub(crate) fn nothing_committed(by: Interrupted) -> GitError {
    GitError::Interrupted {
        by,
        state: "nothing was committed, the repository is as it was".to_string(),
    }
}

/// Moves `target` to `commit` if it is still at its base, then brings the working tree
/// along when the branch is checked out. A SIGKILL anywhere leaves the branch at the old
/// or the new commit; the journal lets the next command finish the files. A SIGINT or
/// SIGTERM (see [`crate::interrupt`]) stops it at the next of the same points, with an
/// error that says which side of the ref move it stopped on.
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
    interrupt::check().map_err(nothing_committed)?;
    if target.checked_out {
        write_journal(repo, &journal)?;
        fault::point("after-journal");
    }
    fault::point("before-cas");
    let mut _worktree_lock = None;
    if target.checked_out {
        // Held until the files follow the ref: another landing waits here.
        let waited = std::cell::Cell::new(false);
        let still_at_base = || {
            repo.git
                .refname_to_id(&target.refname)
                .map(|id| id == target.base.0)
                .unwrap_or(!target.exists)
        };
        let lock = WorktreeLock::take(
            repo,
            &|| {
                waited.set(true);
                progress.start(
                    "wait for another artifact-migrate command to update the files",
                    0,
                );
            },
            &still_at_base,
        );
        if waited.get() {
            progress.finish();
        }
        match lock {
            Ok(l) => _worktree_lock = Some(l),
            Err(e) => {
                let _ = clear_journal(repo, &journal);
                return Err(e.into());
            }
        }
    }
    if let Err(by) = interrupt::check() {
        if target.checked_out {
            // A journal left behind says "never moved": the next command removes it.
            let _ = clear_journal(repo, &journal);
        }
        return Err(nothing_committed(by).into());
    }
    if let Err(e) = compare_and_swap(
        repo,
        target,
        commit,
        &format!("artifact-migrate: {subject}"),
    ) {
        if target.checked_out {
            // The ref move's error is the one to report; a journal that cannot be removed
            // (a read-only disk) says "never moved", and the next command removes it.
            let _ = clear_journal(repo, &journal);
        }
        return Err(e.into());
    }
    fault::point("after-cas");
    if !target.checked_out {
        return Ok(None);
    }
    let landed = (journal.new.as_str(), target.refname.as_str());
    interrupt::check().map_err(|by| interrupted_after_landing(by, Some(landed)))?;
    progress.start("update files", files.len() as u64);
    let report = update_files(repo, files).map_err(|e| match e {
        GitError::Interrupted { by, .. } => interrupted_after_landing(by, Some(landed)),
        other => GitError::WorktreeBehind {
            operation: operation.to_string(),
            commit: journal.new[..12].to_string(),
            refname: target.refname.clone(),
            source: Box::new(other),
        },
    })?;
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
