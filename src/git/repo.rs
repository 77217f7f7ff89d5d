//! Opening the repository and deciding which ref a batch goes to.

use std::path::Path;

use git2::{Oid, Repository};

use crate::config::{Config, ConfigError, ConfigProblem, CONFIG_FILE};
use crate::git::GitError;
use crate::ids::CommitId;

/// An open repository.
pub struct Repo {
    pub(crate) git: Repository,
}

/// The ref a batch is committed to and the commit it is built on.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full ref name (`refs/heads/main`), or `HEAD` when HEAD is detached.
    pub refname: String,
    /// The commit the batch is built on (the ref's tip, or HEAD's for a new branch).
    pub base: CommitId,
    /// Whether the ref exists yet (`--branch NAME` may name a new branch).
    pub exists: bool,
    /// Whether the working tree follows this ref (it is HEAD's branch in a non-bare repository).
    pub checked_out: bool,
}

impl Repo {
    /// Finds the repository containing `dir`, like git does.
    pub fn discover(dir: &Path) -> Result<Repo, GitError> {
        match Repository::discover(dir) {
            Ok(git) => Ok(Repo { git }),
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                Err(GitError::NotARepo(dir.to_path_buf()))
            }
            Err(e) => Err(GitError::Git {
                op: format!("open repository at {}", dir.display()),
                source: e,
            }),
        }
    }

    /// Opens the repository at exactly this path (`.git` directory or work tree).
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        Repository::open(path)
            .map(|git| Repo { git })
            .map_err(GitError::git(format!(
                "open repository at {}",
                path.display()
            )))
    }

    /// Another handle on this repository (the same `.git` directory and working tree), for
    /// another thread: a libgit2 handle serves one thread at a time.
    pub fn reopen(&self) -> Result<Repo, GitError> {
        let other = Repo::open(self.git_dir())?;
        if let Some(workdir) = self.workdir() {
            if other.workdir() != Some(workdir) {
                other
                    .git
                    .set_workdir(workdir, false)
                    .map_err(GitError::git("set the working tree"))?;
            }
        }
        Ok(other)
    }

    /// The libgit2 handle, for callers that need more than this layer offers.
    pub fn raw(&self) -> &Repository {
        &self.git
    }

    /// The working tree, or `None` for a bare repository.
    pub fn workdir(&self) -> Option<&Path> {
        self.git.workdir()
    }

    /// The `.git` directory.
    pub fn git_dir(&self) -> &Path {
        self.git.path()
    }

    /// The commit HEAD points to.
    pub fn head_commit(&self) -> Result<CommitId, GitError> {
        match self.git.head() {
            Ok(r) => r
                .peel_to_commit()
                .map(|c| CommitId(c.id()))
                .map_err(GitError::git("read HEAD")),
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
                ) =>
            {
                Err(GitError::Unborn)
            }
            Err(e) => Err(GitError::Git {
                op: "read HEAD".into(),
                source: e,
            }),
        }
    }

    /// The full name of the branch HEAD is on, or `None` when detached.
    pub fn head_branch(&self) -> Option<String> {
        let head = self.git.find_reference("HEAD").ok()?;
        head.symbolic_target().ok().flatten().map(|s| s.to_string())
    }

    /// Resolves a revision (`HEAD`, a branch, a commit id) to a commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<CommitId, GitError> {
        let obj = self.git.revparse_single(rev).map_err(|source| {
            let rev = rev.to_string();
            match source.code() {
                git2::ErrorCode::NotFound => GitError::UnknownRevision { rev, source },
                _ => GitError::BadRevision { rev, source },
            }
        })?;
        let commit = obj
            .peel_to_commit()
            .map_err(|source| GitError::NotACommit {
                rev: rev.to_string(),
                source,
            })?;
        Ok(CommitId(commit.id()))
    }

    /// Decides where a batch goes: `--branch NAME` (created from HEAD when it does not exist)
    /// or HEAD's branch (HEAD itself when detached).
    pub fn target(&self, branch: Option<&str>) -> Result<Target, GitError> {
        let head_branch = self.head_branch();
        let bare = self.git.is_bare();
        let refname = match branch {
            Some(b) => {
                let full = if b.starts_with("refs/") {
                    b.to_string()
                } else {
                    format!("refs/heads/{b}")
                };
                if !git2::Reference::is_valid_name(&full) {
                    return Err(GitError::BadBranchName {
                        name: b.to_string(),
                    });
                }
                full
            }
            None => head_branch.clone().unwrap_or_else(|| "HEAD".to_string()),
        };
        let checked_out = !bare
            && (head_branch.as_deref() == Some(refname.as_str())
                || (refname == "HEAD" && head_branch.is_none()));
        if !checked_out && refname != "HEAD" {
            if let Some(path) = self.worktree_with_branch(&refname) {
                return Err(GitError::CheckedOutElsewhere {
                    refname,
                    worktree: path,
                });
            }
        }
        match self.git.refname_to_id(&refname) {
            Ok(id) => Ok(Target {
                refname,
                base: CommitId(self.commit_of(id)?),
                exists: true,
                checked_out,
            }),
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                // A new branch starts at HEAD; HEAD's own unborn branch has nothing to migrate.
                let base = self.head_commit()?;
                if branch.is_none() {
                    return Err(GitError::Unborn);
                }
                Ok(Target {
                    refname,
                    base,
                    exists: false,
                    checked_out,
                })
            }
            Err(e) => Err(GitError::Git {
                op: format!("read {refname}"),
                source: e,
            }),
        }
    }

    /// The linked worktree (other than this one) that has `refname` checked out, if any:
    /// moving that branch from here would leave its files stale.
    fn worktree_with_branch(&self, refname: &str) -> Option<String> {
        let names = self.git.worktrees().ok()?;
        let mut paths: Vec<std::path::PathBuf> = names
            .iter()
            .filter_map(|n| {
                let n: &str = n.ok().flatten()?;
                self.git
                    .find_worktree(n)
                    .ok()
                    .map(|w| w.path().to_path_buf())
            })
            .collect();
        // The main worktree, when this handle is a linked one.
        if self.git.is_worktree() {
            if let Some(common) = self.git.commondir().parent() {
                paths.push(common.to_path_buf());
            }
        }
        let here = self.workdir().and_then(|w| w.canonicalize().ok());
        paths.into_iter().find_map(|p| {
            if p.canonicalize().ok() == here {
                return None;
            }
            let r = Repository::open(&p).ok()?;
            let head = r.find_reference("HEAD").ok()?;
            let target = head.symbolic_target().ok().flatten()?.to_string();
            (target == refname).then(|| p.display().to_string())
        })
    }

    fn commit_of(&self, id: Oid) -> Result<Oid, GitError> {
        let obj = self
            .git
            .find_object(id, None)
            .map_err(GitError::git(format!("read {id}")))?;
        obj.peel_to_commit()
            .map(|c| c.id())
            .map_err(GitError::git(format!("{id} is not a commit")))
    }

    /// The settings: `.artifact-migrate.toml` from the working tree, or from HEAD's tree in
    /// a bare repository; the defaults when there is none.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let text = match self.workdir() {
            Some(wd) => match std::fs::read_to_string(wd.join(CONFIG_FILE)) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(ConfigError {
                        file: wd.join(CONFIG_FILE).display().to_string(),
                        problem: ConfigProblem::Unreadable(e),
                    })
                }
            },
            None => self
                .head_commit()
                .ok()
                .and_then(|c| self.read_path(c, CONFIG_FILE))
                .and_then(|b| String::from_utf8(b).ok()),
        };
        match text {
            Some(t) => Config::from_toml(&t),
            None => Ok(Config::default()),
        }
    }

    /// The bytes of a blob; `what` names it in the error (a path, usually).
    pub fn blob(&self, id: Oid, what: &str) -> Result<Vec<u8>, GitError> {
        self.git
            .find_blob(id)
            .map(|b| b.content().to_vec())
            .map_err(GitError::git(format!("read {what}")))
    }

    /// The tree of a commit.
    pub fn tree_of(&self, commit: CommitId) -> Result<git2::Tree<'_>, GitError> {
        self.git
            .find_commit(commit.0)
            .and_then(|c| c.tree())
            .map_err(GitError::git(format!("read the tree of {commit}")))
    }

    /// The bytes of a file in a commit's tree, if it is a blob there.
    pub fn read_path(&self, commit: CommitId, path: &str) -> Option<Vec<u8>> {
        self.read_entry(commit, path).map(|(bytes, _)| bytes)
    }

    /// The bytes and git file mode of a blob in a commit's tree (a symbolic link is a blob
    /// of mode 0o120000 holding the link's target).
    pub fn read_entry(&self, commit: CommitId, path: &str) -> Option<(Vec<u8>, i32)> {
        let tree = self.git.find_commit(commit.0).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = self.git.find_blob(entry.id()).ok()?;
        Some((blob.content().to_vec(), entry.filemode()))
    }
}
