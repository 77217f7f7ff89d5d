//! Everything that touches the repository or the disk: reading trees, writing objects and
//! commits, the compare-and-swap on the branch, working-tree updates with the journal that
//! lets the next command finish an interrupted one, and commit messages with their trailers.

pub mod cache;
pub mod diff;
pub mod history;
pub mod identity;
pub mod merge_driver;
pub mod message;
pub mod objects;
pub mod pack;
pub(crate) mod pack_order;
pub mod refs;
pub mod repo;
pub(crate) mod rounds;
pub mod scan;
pub mod shallow;
pub mod sign;
pub mod worktree;

pub use repo::{Repo, Target};

use std::path::PathBuf;

use crate::error::ErrorKind;

/// An error of the git layer, naming the object, path or operation involved.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "not a git repository (or any parent up to /): {0}; run inside a repository or pass -C DIR"
    )]
    NotARepo(PathBuf),
    #[error("the repository has no commits yet: commit the manifests first")]
    Unborn,
    /// A revision that names nothing (git2's own error kept as the source).
    #[error("unknown revision {rev:?}: name a commit, branch or tag")]
    UnknownRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    /// A revision git cannot use as written: ambiguous, or not revision syntax.
    #[error("revision {rev:?} cannot be used: {}; name a commit, branch or tag", .source.message())]
    BadRevision {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("{rev:?} does not name a commit")]
    NotACommit {
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("{name:?} is not a valid branch name")]
    BadBranchName { name: String },
    #[error("branch moved during migration: {refname} is no longer at {expected}; nothing was changed, run the command again")]
    BranchMoved { refname: String, expected: String },
    #[error("{refname} is checked out in the worktree at {worktree}; moving it from here would leave that worktree's files stale: run the command there instead")]
    CheckedOutElsewhere { refname: String, worktree: String },
    #[error("tell git who you are: set user.name and user.email (git config user.name \"Your Name\") or GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL")]
    NoIdentity,
    /// A date variable (`SOURCE_DATE_EPOCH`, `GIT_AUTHOR_DATE`, ...) that cannot be used.
    #[error("{var}={value:?} {problem}")]
    BadDate {
        var: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("the batch would change {path}, which is not a migrated manifest; nothing was committed (this is a bug: please report it)")]
    BatchTouchesOther { path: String },
    #[error("the batch would update {path}, which is not in the base tree; nothing was committed (this is a bug: please report it)")]
    NotInBaseTree { path: String },
    #[error("{path}: git would convert this file on checkout ({attr}), so the working tree would differ from the committed blob; unset that for manifests, or use --branch")]
    Filtered { path: String, attr: String },
    // The CLI and the server print an error's own message, not its chain: the cause is
    // written here, once.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op}: {}", .source.message())]
    Git { op: String, source: git2::Error },
    /// A file the tool writes (a pack, the journal, the index, a manifest) could not be
    /// written: the cause is the file system's (`No space left on device`, `Read-only file
    /// system`, `Operation not permitted`), never a guess.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process holds git's lock on the index.
    #[error("{path} exists: another git process has been writing the index for 10 s; wait for it to finish (or remove the file if no git process is running), then run the command again")]
    IndexLocked { path: PathBuf },
    /// Another artifact-migrate command has been bringing the working tree to its commit
    /// for longer than a command waits.
    #[error("another artifact-migrate command has been updating the working tree for {waited} s (it holds {path}); nothing was changed: run the command again once it is done")]
    WorktreeBusy { path: PathBuf, waited: u64 },
    /// The branch moved to the new commit, but the working tree could not follow.
    #[error("{operation} committed {commit} on {refname}, but updating the working tree failed; fix the cause below, then run any artifact-migrate command to finish the update: {source}")]
    WorktreeBehind {
        operation: String,
        commit: String,
        refname: String,
        source: Box<GitError>,
    },
    /// The commit could not be signed (nothing was committed).
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    /// SIGINT or SIGTERM stopped a writing command at a safe point; `state` says what it left.
    #[error("{by}: {state}")]
    Interrupted {
        by: crate::interrupt::Interrupted,
        state: String,
    },
}

impl GitError {
    /// What kind of failure this is (exhaustive: a new variant must be classified here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            GitError::NotARepo(_)
            | GitError::Unborn
            | GitError::NoIdentity
            | GitError::BadDate { .. }
            | GitError::Io { .. }
            | GitError::Git { .. }
            | GitError::Write { .. }
            | GitError::Interrupted { .. } => ErrorKind::Environment,
            // The commit landed: not a refusal even when a lock stopped the files.
            GitError::WorktreeBehind { source, .. } => match source.kind() {
                ErrorKind::Refused => ErrorKind::Environment,
                other => other,
            },
            GitError::Sign(e) => e.kind(),
            GitError::UnknownRevision { .. } => ErrorKind::NotFound,
            GitError::BadRevision { .. }
            | GitError::NotACommit { .. }
            | GitError::BadBranchName { .. } => ErrorKind::Usage,
            GitError::BranchMoved { .. }
            // Another process's lock, still held after a wait: a refusal, like a race.
            | GitError::IndexLocked { .. }
            | GitError::WorktreeBusy { .. }
            | GitError::CheckedOutElsewhere { .. }
            | GitError::Filtered { .. } => ErrorKind::Refused,
            GitError::BatchTouchesOther { .. } | GitError::NotInBaseTree { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// The one file to blame, if there is one.
    pub fn path(&self) -> Option<String> {
        match self {
            GitError::Io { path, .. }
            | GitError::Write { path, .. }
            | GitError::IndexLocked { path }
            | GitError::WorktreeBusy { path, .. } => Some(path.display().to_string()),
            GitError::Filtered { path, .. } => Some(path.clone()),
            GitError::WorktreeBehind { source, .. } => source.path(),
            GitError::NotARepo(_)
            | GitError::Unborn
            | GitError::UnknownRevision { .. }
            | GitError::BadRevision { .. }
            | GitError::NotACommit { .. }
            | GitError::BadBranchName { .. }
            | GitError::BranchMoved { .. }
            | GitError::CheckedOutElsewhere { .. }
            | GitError::NoIdentity
            | GitError::BadDate { .. }
            | GitError::BatchTouchesOther { .. }
            | GitError::NotInBaseTree { .. }
            | GitError::Git { .. }
            | GitError::Sign(_)
            | GitError::Interrupted { .. } => None,
        }
    }

    /// Wraps a libgit2 error with what we were doing.
    pub fn git(op: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let op = op.into();
        move |source| GitError::Git { op, source }
    }
    /// Wraps an I/O error with the path involved.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GitError {
        let path = path.into();
        move |source| GitError::Io { path, source }
    }
    /// Wraps the I/O error of writing `path`.
    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> GitError {
        let path = path.into();
        move |source| GitError::Write { path, source }
    }
}
