//! The read side of the index: what `runs` prints and the HTTP API serves. A [`Reader`]
//! lives inside one read-only transaction ([`super::Index::read`]), so every answer it
//! gives is as of the same indexed commit, [`Reader::state`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::backend::{count, Backend, Val};
use super::schema::{self, SCHEMA_VERSION};
use super::update::{read_state, schema_version, IndexState};
use super::IndexError;
use crate::engine::log::LogStep;
use crate::schema::Version;

/// Reads one snapshot of an index.
pub struct Reader<'a> {
    db: &'a mut dyn Backend,
    state: IndexState,
}

/// The version distribution of the indexed runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionCounts {
    pub commit: String,
    /// Rows of `run_index`.
    pub total: u64,
    pub versions: BTreeMap<String, u64>,
    /// Runs below `latest`.
    pub pending: u64,
    /// Rows of `invalid_manifests`.
    pub invalid: u64,
    pub legacy_duplicates: u64,
}

/// One indexed run (`manifest_json` only when asked for one run).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunRecord {
    pub job_id: String,
    pub run_id: String,
    pub job_ref: Option<String>,
    pub job_type: Option<String>,
    pub status: Option<String>,
    pub inputs_hash: Option<String>,
    pub artifact_dir: String,
    pub schema_version: String,
    pub path: String,
    pub blob_id: String,
    pub last_batch: Option<String>,
    pub indexed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_json: Option<String>,
}

/// Which runs: every filter given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub job_id: Option<String>,
    pub schema_version: Option<String>,
    pub status: Option<String>,
    /// The full id of the batch that wrote the run's newest history entry.
    pub last_batch: Option<String>,
}

/// Where a page of runs ends: the next page starts after this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub job_id: String,
    pub run_id: String,
}

impl Cursor {
    /// An opaque token for URLs: both ids in hex, dot-separated.
    pub fn encode(&self) -> String {
        format!("{}.{}", hex(&self.job_id), hex(&self.run_id))
    }

    /// The cursor a token names; `None` for a token [`Cursor::encode`] did not make.
    pub fn decode(token: &str) -> Option<Cursor> {
        let (j, r) = token.split_once('.')?;
        Some(Cursor {
            job_id: unhex(j)?,
            run_id: unhex(r)?,
        })
    }
}

/// A text as lower-case hex digits (cursors in URLs).
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text [`hex`] made; `None` for anything else (odd lengths, upper-case digits, signs,
/// bytes that are not UTF-8).
pub fn unhex(s: &str) -> Option<String> {
    // `from_str_radix` alone would take "+a" and "AB", which `hex` never makes.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One page of runs, and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsPage {
    pub runs: Vec<RunRecord>,
    pub next: Option<Cursor>,
}

/// A manifest the index could not hold as a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvalidRow {
    pub path: String,
    pub blob_id: String,
    pub kind: String,
    pub error: String,
}

/// A batch, rollback or repair: the `log --json` shape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BatchRow {
    pub commit: String,
    pub kind: String,
    pub date: String,
    pub author: String,
    pub subject: String,
    pub target: Option<String>,
    pub manifests: Option<u64>,
    pub steps: Vec<LogStep>,
    pub rolled_back_by: Option<String>,
    pub rollback_of: Option<String>,
}

fn text(row: &[Val], i: usize) -> Option<String> {
    row.get(i).and_then(Val::text)
}

fn run_record(row: &[Val], with_json: bool) -> RunRecord {
    let t = |i: usize| text(row, i).unwrap_or_default();
    RunRecord {
        job_id: t(0),
        run_id: t(1),
        job_ref: text(row, 2),
        job_type: text(row, 3),
        status: text(row, 4),
        inputs_hash: text(row, 5),
        artifact_dir: t(6),
        schema_version: t(7),
        path: t(8),
        blob_id: t(9),
        last_batch: text(row, 10),
        indexed_at: t(11),
        manifest_json: if with_json { text(row, 12) } else { None },
    }
}

fn step(row: &[Val]) -> LogStep {
    LogStep {
        from: text(row, 1).unwrap_or_default(),
        to: text(row, 2).unwrap_or_default(),
        count: row.get(3).and_then(Val::int).unwrap_or(0) as usize,
    }
}

fn batch_row(row: &[Val], steps: Vec<LogStep>) -> BatchRow {
    BatchRow {
        commit: text(row, 0).unwrap_or_default(),
        kind: text(row, 1).unwrap_or_default(),
        date: text(row, 2).unwrap_or_default(),
        author: text(row, 3).unwrap_or_default(),
        subject: text(row, 4).unwrap_or_default(),
        target: text(row, 5),
        manifests: row.get(6).and_then(Val::int).map(|n| n as u64),
        steps,
        rolled_back_by: text(row, 7),
        rollback_of: text(row, 8),
    }
}

impl<'a> Reader<'a> {
    /// Opens the snapshot (inside the read transaction): refuses an index of another schema
    /// version and one that holds no commit yet.
    pub(crate) fn new(db: &'a mut dyn Backend) -> Result<Reader<'a>, IndexError> {
        let found = schema_version(db)?;
        if found < SCHEMA_VERSION {
            return Err(IndexError::Stale {
                db: db.describe(),
                found,
            });
        }
        let Some(state) = read_state(db)? else {
            return Err(IndexError::Missing { db: db.describe() });
        };
        Ok(Reader { db, state })
    }

    /// The indexed commit, the ref it follows, the tool that wrote it and when.
    pub fn state(&self) -> &IndexState {
        &self.state
    }

    /// Runs per schema version, and how many are below `latest`.
    pub fn versions(&mut self, latest: Version) -> Result<VersionCounts, IndexError> {
        let mut versions = BTreeMap::new();
        let mut total = 0;
        let mut pending = 0;
        for row in self.db.query(schema::VERSION_COUNTS, &[])? {
            let v = text(&row, 0).unwrap_or_default();
            let n = row.get(1).and_then(Val::int).unwrap_or(0) as u64;
            total += n;
            if v.parse::<Version>().is_ok_and(|v| v < latest) {
                pending += n;
            }
            versions.insert(v, n);
        }
        Ok(VersionCounts {
            commit: self.state.commit.clone(),
            total,
            versions,
            pending,
            invalid: count(self.db, schema::COUNT_INVALID)?,
            legacy_duplicates: count(self.db, schema::COUNT_LEGACY)?,
        })
    }

    /// One page of the runs matching `filter`, in `(job_id, run_id)` order, after `after`.
    pub fn runs(
        &mut self,
        filter: &RunFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<RunsPage, IndexError> {
        let limit = limit.max(1);
        let mut columns = Vec::new();
        let mut params = Vec::new();
        for (column, value) in [
            ("job_id", &filter.job_id),
            ("schema_version", &filter.schema_version),
            ("status", &filter.status),
            ("last_batch", &filter.last_batch),
        ] {
            if let Some(v) = value {
                columns.push(column);
                params.push(Val::from(v));
            }
        }
        if let Some(c) = after {
            params.push(Val::from(&c.job_id));
            params.push(Val::from(&c.run_id));
        }
        params.push(Val::from(limit + 1));
        let sql = schema::runs_filtered(&columns, after.is_some());
        let mut runs: Vec<RunRecord> = self
            .db
            .query(&sql, &params)?
            .iter()
            .map(|r| run_record(r, false))
            .collect();
        let next = if runs.len() > limit {
            runs.truncate(limit);
            runs.last().map(|r| Cursor {
                job_id: r.job_id.clone(),
                run_id: r.run_id.clone(),
            })
        } else {
            None
        };
        Ok(RunsPage { runs, next })
    }

    /// Every run matching `filter` (all pages).
    pub fn all_runs(&mut self, filter: &RunFilter) -> Result<Vec<RunRecord>, IndexError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.runs(filter, after.as_ref(), 10_000)?;
            out.extend(page.runs);
            match page.next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The run `(job_id, run_id)`, with its manifest's text.
    pub fn run(&mut self, job_id: &str, run_id: &str) -> Result<Option<RunRecord>, IndexError> {
        let rows = self.db.query(
            &schema::run_by_key(),
            &[Val::from(job_id), Val::from(run_id)],
        )?;
        Ok(rows.first().map(|r| run_record(r, true)))
    }

    /// The runs with this run_id, whatever their job (usually one).
    pub fn runs_by_id(&mut self, run_id: &str) -> Result<Vec<RunRecord>, IndexError> {
        let rows = self
            .db
            .query(&schema::runs_by_run_id(), &[Val::from(run_id)])?;
        Ok(rows.iter().map(|r| run_record(r, false)).collect())
    }

    /// The manifests that could not be indexed as runs, by path.
    pub fn invalid(&mut self) -> Result<Vec<InvalidRow>, IndexError> {
        Ok(self
            .db
            .query(schema::INVALID_ALL, &[])?
            .iter()
            .map(|r| InvalidRow {
                path: text(r, 0).unwrap_or_default(),
                blob_id: text(r, 1).unwrap_or_default(),
                kind: text(r, 2).unwrap_or_default(),
                error: text(r, 3).unwrap_or_default(),
            })
            .collect())
    }

    /// The manifest files the index holds without a version: the invalid ones and the legacy
    /// duplicates, as `(path, blob_id)` by path (what a version distribution of the indexed
    /// commit reads from git besides the runs' versions).
    pub fn unversioned(&mut self) -> Result<Vec<(String, String)>, IndexError> {
        Ok(self
            .db
            .query(schema::UNVERSIONED_ALL, &[])?
            .iter()
            .map(|r| {
                (
                    text(r, 0).unwrap_or_default(),
                    text(r, 1).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Every batch, rollback and repair, newest first, as `log --json` lists them.
    pub fn batches(&mut self) -> Result<Vec<BatchRow>, IndexError> {
        let mut steps: BTreeMap<String, Vec<LogStep>> = BTreeMap::new();
        for r in self.db.query(schema::STEPS_ALL, &[])? {
            steps
                .entry(text(&r, 0).unwrap_or_default())
                .or_default()
                .push(step(&r));
        }
        Ok(self
            .db
            .query(schema::BATCHES_ALL, &[])?
            .iter()
            .map(|r| {
                let s = steps
                    .remove(&text(r, 0).unwrap_or_default())
                    .unwrap_or_default();
                batch_row(r, s)
            })
            .collect())
    }

    /// One batch (or rollback, or repair) by its full commit id, with its steps.
    pub fn batch(&mut self, commit: &str) -> Result<Option<BatchRow>, IndexError> {
        let rows = self.db.query(schema::BATCH_ONE, &[Val::from(commit)])?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(batch_row(row, self.steps(commit)?)))
    }

    /// The `from -> to` groups of one batch.
    pub fn steps(&mut self, commit: &str) -> Result<Vec<LogStep>, IndexError> {
        Ok(self
            .db
            .query(schema::STEPS_OF, &[Val::from(commit)])?
            .iter()
            .map(|r| step(r))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_ids() {
        let c = Cursor {
            job_id: "job/ä.1".into(),
            run_id: "r.2".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("zz.00"), None);
        assert_eq!(Cursor::decode("abc"), None);
    }

    #[test]
    fn unhex_takes_only_what_hex_makes() {
        assert_eq!(unhex(&hex("run ä")).as_deref(), Some("run ä"));
        assert_eq!(unhex("").as_deref(), Some(""));
        for bad in ["+a", "4A", "zz", "abc", "ff", "c3"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
    }
}
