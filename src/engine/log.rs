//! `log`: migration batches, rollbacks, relocations and repairs read back from history,
//! newest first.

use std::collections::HashMap;

use serde::Serialize;

use crate::engine::error::EngineError;
use crate::git::history::{records, RecordKind};
use crate::git::message::keys;
use crate::git::shallow::Shallow;
use crate::git::Repo;
use crate::ids::CommitId;

/// One `from -> to` group of a batch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogStep {
    pub from: String,
    pub to: String,
    pub count: usize,
}

/// One batch or rollback.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub commit: CommitId,
    /// `migration`, `rollback`, `relocation` (legacy runs moved into the canonical layout),
    /// or `repair` (an accepted change of a migration definition).
    pub kind: &'static str,
    /// Committer date, RFC 3339 in the committer's offset.
    pub date: String,
    pub author: String,
    pub subject: String,
    pub target: Option<String>,
    pub manifests: Option<usize>,
    pub steps: Vec<LogStep>,
    /// For a batch: the rollback that reverted it, if any.
    pub rolled_back_by: Option<CommitId>,
    /// For a rollback: the batch it reverted, as its `Migration-Rollback-Of` trailer says.
    pub rollback_of: Option<String>,
    /// For a relocation: how many runs it moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relocated: Option<usize>,
    /// In a shallow clone: this commit's parent was not fetched (history stops here).
    /// Only present when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub parent_not_fetched: bool,
}

/// Every batch and rollback reachable from `tip`, newest first, with rollback links.
pub fn log(repo: &Repo, tip: CommitId) -> Result<Vec<LogEntry>, EngineError> {
    let recs = records(repo, tip)?;
    let shallow = Shallow::read(repo, tip)?;
    let rolled_back_by: HashMap<String, CommitId> = recs
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Rollback { of } => Some((of.clone(), r.commit)),
            _ => None,
        })
        .collect();
    Ok(recs
        .iter()
        .map(|r| {
            let date = chrono::FixedOffset::east_opt(r.offset_minutes * 60)
                .and_then(|o| {
                    chrono::DateTime::from_timestamp(r.time, 0)
                        .map(|d| d.with_timezone(&o).to_rfc3339())
                })
                .unwrap_or_default();
            let steps = r
                .trailer_values(keys::STEP)
                .into_iter()
                .filter_map(|v| {
                    let (edge, n) = v.split_once(' ')?;
                    let (from, to) = edge.split_once("->")?;
                    Some(LogStep {
                        from: from.to_string(),
                        to: to.to_string(),
                        count: n.trim().parse().ok()?,
                    })
                })
                .collect();
            let (kind, rollback_of) = match &r.kind {
                RecordKind::Batch => ("migration", None),
                RecordKind::Rollback { of } => ("rollback", Some(of.clone())),
                RecordKind::Accept { .. } => ("repair", None),
                RecordKind::Relocation => ("relocation", None),
            };
            let relocated = match r.kind {
                RecordKind::Relocation => r.trailer(keys::RELOCATE).and_then(|n| n.parse().ok()),
                _ => None,
            };
            LogEntry {
                commit: r.commit,
                kind,
                date,
                author: r.author.clone(),
                subject: r.subject.clone(),
                target: r.trailer(keys::TARGET).map(str::to_string),
                manifests: r.trailer(keys::MANIFESTS).and_then(|n| n.parse().ok()),
                steps,
                rolled_back_by: rolled_back_by.get(&r.commit.to_string()).cloned(),
                rollback_of,
                relocated,
                parent_not_fetched: shallow.as_ref().is_some_and(|s| s.cuts(r.commit)),
            }
        })
        .collect())
}
