//! Reading migration batches and rollbacks back from history, by their trailers.

use git2::{Oid, Sort};

use crate::git::message::{keys, trailer, trailers};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;

/// What a commit of ours is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// A migration batch.
    Batch,
    /// A rollback of the batch named.
    Rollback { of: String },
    /// `repair --accept`: the changed definitions it accepts, `(step, checksum)`.
    Accept { accepted: Vec<(String, String)> },
    /// `relocate`: run directories moved into the canonical layout.
    Relocation,
}

impl RecordKind {
    /// Whether `rollback` can revert a commit of this kind: a batch or a relocation.
    pub fn is_revertible(&self) -> bool {
        matches!(self, RecordKind::Batch | RecordKind::Relocation)
    }
}

/// A migration batch or rollback commit, as read from history.
#[derive(Debug, Clone)]
pub struct Record {
    pub commit: CommitId,
    pub parents: Vec<CommitId>,
    pub kind: RecordKind,
    pub subject: String,
    pub message: String,
    pub trailers: Vec<(String, String)>,
    /// Committer time, seconds since the epoch, and offset in minutes.
    pub time: i64,
    pub offset_minutes: i32,
    pub author: String,
}

impl Record {
    /// The value of a trailer.
    pub fn trailer(&self, key: &str) -> Option<&str> {
        trailer(&self.trailers, key)
    }
    /// Every value of a trailer, in order.
    pub fn trailer_values(&self, key: &str) -> Vec<&str> {
        self.trailers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Classifies one commit message: a batch has `Migration-Target`, a rollback
/// `Migration-Rollback-Of`, a relocation `Migration-Relocate`, a repair `Migration-Accept`;
/// anything else is not ours.
pub fn classify(message: &str) -> Option<(RecordKind, Vec<(String, String)>)> {
    if !message.contains("Migration-") {
        return None;
    }
    let t = trailers(message);
    if let Some(of) = trailer(&t, keys::ROLLBACK_OF) {
        let of = of.to_string();
        return Some((RecordKind::Rollback { of }, t));
    }
    if trailer(&t, keys::TARGET).is_some() {
        return Some((RecordKind::Batch, t));
    }
    if trailer(&t, keys::RELOCATE).is_some() {
        return Some((RecordKind::Relocation, t));
    }
    let accepted: Vec<(String, String)> = t
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(keys::ACCEPT))
        .filter_map(|(_, v)| {
            v.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.trim().to_string()))
        })
        .collect();
    if !accepted.is_empty() {
        return Some((RecordKind::Accept { accepted }, t));
    }
    None
}

/// Reads one commit as a record, if it is ours.
pub fn record(repo: &Repo, id: Oid) -> Result<Option<Record>, GitError> {
    let c = repo
        .git
        .find_commit(id)
        .map_err(GitError::git(format!("read commit {id}")))?;
    let message = String::from_utf8_lossy(c.message_bytes()).into_owned();
    let Some((kind, trailers)) = classify(&message) else {
        return Ok(None);
    };
    let author = c.author();
    let when = c.committer().when();
    Ok(Some(Record {
        commit: CommitId(id),
        parents: c.parent_ids().map(CommitId).collect(),
        kind,
        subject: message.lines().next().unwrap_or_default().to_string(),
        trailers,
        time: when.seconds(),
        offset_minutes: when.offset_minutes(),
        author: format!(
            "{} <{}>",
            String::from_utf8_lossy(author.name_bytes()),
            String::from_utf8_lossy(author.email_bytes())
        ),
        message,
    }))
}

/// Every batch and rollback reachable from `tip`, newest first (topological order).
pub fn records(repo: &Repo, tip: CommitId) -> Result<Vec<Record>, GitError> {
    let mut walk = repo.git.revwalk().map_err(GitError::git("walk history"))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(GitError::git("walk history"))?;
    walk.push(tip.0).map_err(GitError::git("walk history"))?;
    let odb = repo
        .git
        .odb()
        .map_err(GitError::git("open the object database"))?;
    let mut out = Vec::new();
    for id in walk {
        let id = id.map_err(GitError::git("walk history"))?;
        // Read the raw message cheaply first: most commits are not ours.
        let odb_obj = odb
            .read(id)
            .map_err(GitError::git(format!("read commit {id}")))?;
        if !odb_obj.data().windows(10).any(|w| w == b"Migration-") {
            continue;
        }
        if let Some(r) = record(repo, id)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Commits reachable from `tip` but not from `base`, newest first.
pub fn commits_since(
    repo: &Repo,
    tip: CommitId,
    base: CommitId,
) -> Result<Vec<CommitId>, GitError> {
    let mut walk = repo.git.revwalk().map_err(GitError::git("walk history"))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(GitError::git("walk history"))?;
    walk.push(tip.0).map_err(GitError::git("walk history"))?;
    walk.hide(base.0).map_err(GitError::git("walk history"))?;
    walk.map(|r| r.map(CommitId).map_err(GitError::git("walk history")))
        .collect()
}
