//! `GET /schemas/timeline`: the version distribution after each batch, rollback and repair
//! ([`crate::engine::timeline`]), newest first as `/migrations` lists them, from one snapshot.
//! The walk starts at the indexed commit, whose distribution the index gives
//! ([`Distribution::indexed`]); each commit's distribution is computed once per server.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::api::{after_batch, answer, batch_page, json_ok, Page};
use super::{parse_commit, ApiError, Shared};
use crate::engine::timeline::Distribution;
use crate::error::ErrorKind;

/// One bar of the timeline: a batch and the distribution at its commit.
#[derive(Debug, Serialize)]
struct Bar {
    commit: String,
    kind: String,
    date: String,
    subject: String,
    target: Option<String>,
    rolled_back_by: Option<String>,
    rollback_of: Option<String>,
    /// Manifest files at that commit (runs, invalid manifests and legacy duplicates).
    total: u64,
    /// Manifests below the latest version of the indexed commit's registry.
    pending: u64,
    /// Manifests per stated `schema_version`.
    versions: BTreeMap<String, u64>,
    /// Manifest files without a readable version.
    unreadable: u64,
}

pub(super) async fn timeline(
    State(s): State<Arc<Shared>>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (limit, after) = batch_page(page)?;
    let shared = s.clone();
    let v = answer(s, move |snap| {
        let latest = snap.latest()?;
        let all = snap.reader.batches()?;
        let start = after_batch(&all, after.as_deref(), &snap.commit.short())?;
        let end = (start + limit).min(all.len());
        let commits = all[..end]
            .iter()
            .map(|b| parse_commit(&b.commit).map_err(ApiError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let mut history = shared.history.lock().map_err(|_| {
            ApiError::new(
                ErrorKind::Internal,
                "the timeline cache is poisoned; restart the server",
            )
        })?;
        if history.get(snap.commit).is_none() {
            let c = snap.version_counts(latest)?;
            let unversioned = snap.reader.unversioned()?;
            let d = Distribution::indexed(
                snap.repo,
                c.versions.iter().map(|(v, n)| (v.as_str(), *n)),
                &unversioned,
            )
            .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
            history.know(snap.commit, d);
        }
        let dists = history
            .walk(snap.repo, snap.cfg(), snap.commit, &commits)
            .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        drop(history);
        let bars: Vec<Bar> = all[start.min(end)..end]
            .iter()
            .zip(&dists[start.min(end)..])
            .map(|(b, d)| Bar {
                commit: b.commit.clone(),
                kind: b.kind.clone(),
                date: b.date.clone(),
                subject: b.subject.clone(),
                target: b.target.clone(),
                rolled_back_by: b.rolled_back_by.clone(),
                rollback_of: b.rollback_of.clone(),
                total: d.total(),
                pending: d.below(latest),
                versions: d
                    .versions
                    .iter()
                    .map(|(v, n)| (v.to_string(), *n))
                    .collect(),
                unreadable: d.unreadable,
            })
            .collect();
        let next = (all.len() > end)
            .then(|| bars.last().map(|b| b.commit.clone()))
            .flatten();
        Ok(json!({
            "commit": snap.commit.to_string(),
            "latest": latest.to_string(),
            "batches": bars,
            "next": next,
        }))
    })
    .await?;
    Ok(json_ok(&v))
}
