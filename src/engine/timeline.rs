//! The version distribution of the manifests at earlier commits: what the dashboard draws
//! as one stacked bar per batch. Read-only, like `status`: it reads trees and blobs and
//! writes nothing (not even the version cache).
//!
//! A distribution counts every manifest file of a commit (the files `status` counts) by the
//! `schema_version` it states (absent: 1.0.0); one that cannot be read as a manifest with a
//! version counts as unreadable. It is exact at every commit, not estimated from trailers:
//! starting from a commit whose distribution is known (the indexed one, [`Distribution`]
//! from the index), the distribution at an older commit is that one minus the versions of
//! the manifests the two trees disagree on, as the newer tree has them, plus their versions
//! as the older tree has them. libgit2's tree diff skips subtrees whose ids are equal, so a
//! step reads only the blobs that changed (a batch of K manifests: 2K blobs at most), and a
//! commit's distribution never changes, so [`History`] computes each one once.

use std::collections::{BTreeMap, HashMap};

use git2::Oid;
use serde::Serialize;

use crate::config::Config;
use crate::engine::migrate::{read_manifest, read_version, ManifestError};
use crate::error::ErrorKind;
use crate::git::diff::tree_changes;
use crate::git::scan::is_manifest_path;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::schema::Version;

const SYMLINK: i32 = 0o120000;

/// How many manifests of one commit state each version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// Manifests per stated `schema_version`.
    pub versions: BTreeMap<Version, u64>,
    /// Manifest files that are not a readable manifest with a version (bad JSON, a version
    /// that is not `MAJOR.MINOR.PATCH`, a symbolic link, ...).
    pub unreadable: u64,
}

impl Distribution {
    /// Every manifest file counted.
    pub fn total(&self) -> u64 {
        self.versions.values().sum::<u64>() + self.unreadable
    }

    /// Counts one manifest (`None`: unreadable).
    pub fn add(&mut self, v: Option<Version>) {
        match v {
            Some(v) => *self.versions.entry(v).or_insert(0) += 1,
            None => self.unreadable += 1,
        }
    }

    /// Uncounts one manifest; `false` when it was not counted (the starting distribution
    /// did not belong to the newer commit).
    fn remove(&mut self, v: Option<Version>) -> bool {
        let slot = match v {
            Some(v) => match self.versions.get_mut(&v) {
                Some(n) => n,
                None => return false,
            },
            None => &mut self.unreadable,
        };
        if *slot == 0 {
            return false;
        }
        *slot -= 1;
        if let Some(v) = v {
            if self.versions.get(&v) == Some(&0) {
                self.versions.remove(&v);
            }
        }
        true
    }
}

impl Distribution {
    /// The distribution of the indexed commit from what the index holds: the number of runs
    /// per version (`runs`), and the manifests it holds no version for (invalid ones and
    /// legacy duplicates, `(path, blob id)`), whose stated versions are read from git here —
    /// a legacy duplicate states a version, an invalid manifest may (it can be invalid for
    /// another reason than its version).
    pub fn indexed<'a>(
        repo: &Repo,
        runs: impl IntoIterator<Item = (&'a str, u64)>,
        unversioned: &[(String, String)],
    ) -> Result<Distribution, TimelineError> {
        let mut d = Distribution::default();
        for (v, n) in runs {
            match v.parse::<Version>() {
                Ok(v) => *d.versions.entry(v).or_insert(0) += n,
                Err(_) => d.unreadable += n,
            }
        }
        for (path, blob) in unversioned {
            let v = match Oid::from_str(blob) {
                Ok(id) => stated_version(&repo.blob(id, path)?).ok(),
                Err(_) => None,
            };
            d.add(v);
        }
        d.versions.retain(|_, n| *n > 0);
        Ok(d)
    }

    /// How many manifests state a version below `latest` (unreadable ones are not counted).
    pub fn below(&self, latest: Version) -> u64 {
        self.versions
            .iter()
            .filter(|(v, _)| **v < latest)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Why a distribution cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error(transparent)]
    Git(#[from] GitError),
    /// The distribution a walk started from is not the one of its commit (a bug of the caller).
    #[error("{path}: the distribution given for {commit} does not count this manifest; please report this bug")]
    Mismatch { path: String, commit: String },
    #[error("no distribution is known at {0}; please report this bug")]
    Unknown(String),
}

impl TimelineError {
    /// What kind of failure this is (exhaustive: a new variant must be classified here).
    pub fn kind(&self) -> ErrorKind {
        match self {
            TimelineError::Git(g) => g.kind(),
            TimelineError::Mismatch { .. } | TimelineError::Unknown(_) => ErrorKind::Internal,
        }
    }
}

/// The version a manifest's bytes state, or why they are not a manifest with one.
pub fn stated_version(bytes: &[u8]) -> Result<Version, ManifestError> {
    let value = read_manifest(bytes)?;
    read_version(&value)
}

/// Distributions of commits, each computed once; and the stated version of each blob read
/// (bounded: forgotten past [`History::BLOB_MEMORY`] blobs).
#[derive(Debug, Default)]
pub struct History {
    known: HashMap<CommitId, Distribution>,
    blobs: HashMap<Oid, Option<Version>>,
}

impl History {
    /// How many blob versions are remembered between steps.
    pub const BLOB_MEMORY: usize = 400_000;

    pub fn new() -> History {
        History::default()
    }

    /// Records the distribution of a commit (from the index, or counted).
    pub fn know(&mut self, commit: CommitId, d: Distribution) {
        self.known.insert(commit, d);
    }

    /// The distribution of a commit, if computed.
    pub fn get(&self, commit: CommitId) -> Option<&Distribution> {
        self.known.get(&commit)
    }

    /// The distribution at each of `commits` (newest first, as `log` lists batches), walking
    /// from `start`, whose distribution must be known ([`History::know`]): each one from the
    /// one before it in the list (the first from `start`).
    pub fn walk(
        &mut self,
        repo: &Repo,
        cfg: &Config,
        start: CommitId,
        commits: &[CommitId],
    ) -> Result<Vec<Distribution>, TimelineError> {
        let mut newer = start;
        let mut out = Vec::with_capacity(commits.len());
        for &c in commits {
            if !self.known.contains_key(&c) {
                let d = self.step(repo, cfg, newer, c)?;
                self.known.insert(c, d);
            }
            out.push(self.known[&c].clone());
            newer = c;
        }
        Ok(out)
    }

    /// The distribution at `older` from the known one at `newer`.
    fn step(
        &mut self,
        repo: &Repo,
        cfg: &Config,
        newer: CommitId,
        older: CommitId,
    ) -> Result<Distribution, TimelineError> {
        let mut d = self
            .known
            .get(&newer)
            .cloned()
            .ok_or_else(|| TimelineError::Unknown(newer.to_string()))?;
        if newer == older {
            return Ok(d);
        }
        if self.blobs.len() > Self::BLOB_MEMORY {
            self.blobs.clear();
        }
        for c in tree_changes(repo, Some(older), newer)? {
            if !is_manifest_path(&c.path, cfg) {
                continue;
            }
            // `tree_changes(older, newer)`: `new_*` is the newer tree's side.
            if let Some(v) = self.version(repo, &c.path, c.new_id, c.new_mode)? {
                if !d.remove(v) {
                    return Err(TimelineError::Mismatch {
                        path: c.path,
                        commit: newer.short(),
                    });
                }
            }
            if let Some(v) = self.version(repo, &c.path, c.old_id, c.old_mode)? {
                d.add(v);
            }
        }
        Ok(d)
    }

    /// `None` when the side holds no file (absent, or a directory); else the file's stated
    /// version (`Some(None)`: unreadable).
    fn version(
        &mut self,
        repo: &Repo,
        path: &str,
        id: Oid,
        mode: i32,
    ) -> Result<Option<Option<Version>>, TimelineError> {
        let file = matches!(mode, 0o100644 | 0o100755 | SYMLINK);
        if id.is_zero() || !file {
            return Ok(None);
        }
        if mode == SYMLINK {
            return Ok(Some(None));
        }
        if let Some(v) = self.blobs.get(&id) {
            return Ok(Some(*v));
        }
        let v = stated_version(&repo.blob(id, path)?).ok();
        self.blobs.insert(id, v);
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().expect("a version")
    }

    #[test]
    fn a_distribution_counts_and_uncounts() {
        let mut d = Distribution::default();
        d.add(Some(v("1.0.0")));
        d.add(Some(v("1.0.0")));
        d.add(None);
        assert_eq!(d.total(), 3);
        assert!(d.remove(Some(v("1.0.0"))));
        assert!(d.remove(Some(v("1.0.0"))));
        assert!(!d.remove(Some(v("1.0.0"))), "nothing left to uncount");
        assert!(d.versions.is_empty(), "an emptied version is no key");
        assert!(!d.remove(Some(v("1.2.0"))));
        assert!(d.remove(None));
        assert!(!d.remove(None));
    }

    #[test]
    fn pending_counts_the_versions_below_latest_only() {
        let mut d = Distribution::default();
        for ver in ["1.0.0", "1.1.0", "1.1.0", "1.2.0", "2.0.0"] {
            d.add(Some(v(ver)));
        }
        d.add(None);
        assert_eq!(d.below(v("1.2.0")), 3);
        assert_eq!(d.below(v("1.0.0")), 0);
        assert_eq!(
            d.below(v("9.0.0")),
            5,
            "an unreadable manifest is not pending"
        );
    }

    #[test]
    fn stated_versions_are_read_as_the_index_reads_them() {
        assert_eq!(stated_version(b"{}").unwrap(), v("1.0.0"));
        assert_eq!(
            stated_version(br#"{"schema_version": "1.2.0"}"#).unwrap(),
            v("1.2.0")
        );
        assert!(stated_version(br#"{"schema_version": 1}"#).is_err());
        assert!(stated_version(br#"{"schema_version": "one"}"#).is_err());
        assert!(stated_version(b"[]").is_err());
        assert!(stated_version(b"{").is_err());
    }
}
