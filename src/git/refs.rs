//! The one ref move of a batch: a compare-and-swap, so a concurrent run or a user's commit
//! is never overwritten. No lock file of our own: git's ref lock is taken and released by
//! libgit2 within the call.

use git2::ErrorCode;

use crate::git::worktree::probe_write;
use crate::git::{GitError, Repo, Target};
use crate::ids::CommitId;

/// Moves `target.refname` from `target.base` to `new` if it still points at `target.base`
/// (or creates it if it did not exist and still does not).
pub fn compare_and_swap(
    repo: &Repo,
    target: &Target,
    new: CommitId,
    log_message: &str,
) -> Result<(), GitError> {
    let moved = || GitError::BranchMoved {
        refname: target.refname.clone(),
        expected: target.base.to_string(),
    };
    let result = if target.exists {
        repo.git
            .reference_matching(&target.refname, new.0, true, target.base.0, log_message)
            .map(|_| ())
    } else {
        repo.git
            .reference(&target.refname, new.0, false, log_message)
            .map(|_| ())
    };
    match result {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked | ErrorCode::NotFound
            ) =>
        {
            Err(moved())
        }
        Err(e) => {
            // libgit2's message is its own ("failed to write out file"); the file system's
            // reason, and the file, come from writing beside the ref ourselves.
            let path = repo.git_dir().join(&target.refname);
            let dir = path.parent().unwrap_or(repo.git_dir());
            match probe_write(dir, 4096) {
                Some(cause) => Err(GitError::Write {
                    path,
                    source: cause,
                }),
                None => Err(GitError::Git {
                    op: format!("move {}", target.refname),
                    source: e,
                }),
            }
        }
    }
}
