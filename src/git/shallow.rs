//! Shallow clones: where the history a clone holds stops.
//!
//! A shallow clone (`git clone --depth N`, CI's checkout) lists in `shallow` (in the common
//! git directory) the commits whose parents it does not hold; git and libgit2 show those
//! commits as having no parents. Commands that read history use [`Shallow`] to tell "this
//! batch has no parent" (a finding) from "this batch's parent was not fetched" (a limit of
//! the clone, said with how to fetch more).

use std::collections::HashSet;

use git2::Oid;

use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// What a shallow clone does not hold; `None` from [`Shallow::read`] in a complete clone.
#[derive(Debug, Clone)]
pub struct Shallow {
    /// The commits whose parents were not fetched (the `shallow` file), sorted.
    pub boundary: Vec<CommitId>,
    set: HashSet<CommitId>,
    /// Every commit reachable from the audited tip inside the clone (hex ids).
    reachable: HashSet<String>,
}

/// The advice every command gives at the boundary.
pub const FETCH_MORE: &str =
    "fetch more history with git fetch --deepen=N (or all of it with git fetch --unshallow)";

impl Shallow {
    /// The boundary of `repo`, with the commits reachable from `tip`; `None` when the clone
    /// is complete.
    pub fn read(repo: &Repo, tip: CommitId) -> Result<Option<Shallow>, GitError> {
        if !repo.git.is_shallow() {
            return Ok(None);
        }
        let file = repo.git.commondir().join("shallow");
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(GitError::io(&file)(e)),
        };
        let mut boundary: Vec<CommitId> = text
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .map(CommitId)
            .collect();
        boundary.sort();
        boundary.dedup();
        let mut walk = repo
            .git
            .revwalk()
            .map_err(GitError::git("walk the shallow history"))?;
        walk.push(tip.0)
            .map_err(GitError::git("walk the shallow history"))?;
        let mut reachable = HashSet::new();
        for id in walk {
            let id = id.map_err(GitError::git("walk the shallow history"))?;
            reachable.insert(id.to_string());
        }
        Ok(Some(Shallow {
            set: boundary.iter().copied().collect(),
            boundary,
            reachable,
        }))
    }

    /// Whether `commit`'s parents were cut off by the clone.
    pub fn cuts(&self, commit: CommitId) -> bool {
        self.set.contains(&commit)
    }

    /// Whether the commit named `hex` (a full or abbreviated id) is not in the clone's
    /// history from the tip: beyond the boundary, as far as this clone can tell.
    pub fn beyond(&self, hex: &str) -> bool {
        let hex = hex.to_ascii_lowercase();
        if hex.len() >= 40 {
            return !self.reachable.contains(&hex);
        }
        !self.reachable.iter().any(|id| id.starts_with(&hex))
    }

    /// One sentence for people: where history stops, and how to fetch more.
    pub fn describe(&self) -> String {
        let at: Vec<String> = self.boundary.iter().map(|c| c.short()).collect();
        format!(
            "this clone is shallow: history stops at {}; what lies beyond is not audited; {FETCH_MORE}",
            if at.is_empty() {
                "an unknown commit".to_string()
            } else {
                at.join(", ")
            }
        )
    }
}
