//! One manifest's row in the index: bytes in, a row or the reason there is none out. Pure
//! (no git, no database), so the rules are tested here and shared by every backend.

use crate::config::Config;
use crate::engine::invariants::HISTORY_KEY;
use crate::engine::migrate::{parse_manifest, read_version, ManifestError};
use crate::layout::derive_job_id;
use crate::manifest::{canonical_json, Json};

/// The identity of a run: the primary key of `run_index`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub job_id: String,
    pub run_id: String,
}

/// A manifest that names its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub key: Key,
    pub job_ref: Option<String>,
    pub job_type: Option<String>,
    pub status: Option<String>,
    pub inputs_hash: Option<String>,
    /// The run's directory, repository-relative (the manifest's path without its file name).
    pub artifact_dir: String,
    /// The manifest's exact text.
    pub manifest_json: String,
    pub schema_version: String,
    pub path: String,
    pub blob_id: String,
    /// The newest history entry's `base_commit` and `applied_at` (seconds since the epoch):
    /// what finds the batch that wrote it.
    pub last_entry: Option<(String, Option<i64>)>,
}

/// What the index makes of one manifest blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extracted {
    Run(Box<RunRow>),
    /// Not indexable: `kind` as in `status --json` (`parse`, `lfs_pointer`, `not_an_object`,
    /// `bad_version`, `symlink`) or `identity` (no run_id, or no job_id to derive).
    Invalid {
        kind: String,
        error: String,
    },
}

/// A member as text: a string as it is, `null` or absent as nothing, anything else as its
/// canonical JSON.
fn text_of(v: Option<&Json>) -> Option<String> {
    match v {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => Some(canonical_json(other)),
    }
}

/// The row of the manifest at `path` (blob `blob_id`) with content `bytes`.
pub fn extract(path: &str, blob_id: &str, bytes: &[u8], cfg: &Config) -> Extracted {
    let invalid = |e: ManifestError| Extracted::Invalid {
        kind: e.kind().to_string(),
        error: e.to_string(),
    };
    let (doc, value) = match parse_manifest(bytes) {
        Ok(p) => p,
        Err(e) => return invalid(e),
    };
    let version = match read_version(&value) {
        Ok(v) => v,
        Err(e) => return invalid(e),
    };
    let identity = |error: String| Extracted::Invalid {
        kind: "identity".into(),
        error,
    };
    let placement = cfg.layouts.place(&cfg.artifacts_root, path);
    let run_id = match value.get("run_id") {
        Some(Json::String(r)) => r.clone(),
        None | Some(Json::Null) => match placement {
            Some(p) => p.run_id.to_string(),
            None => {
                return identity(format!(
                    "has no run_id and its path fits no layout ({}); add run_id and commit it",
                    cfg.layouts.describe()
                ))
            }
        },
        Some(other) => {
            return identity(format!(
                "run_id must be a string, found {}",
                other.type_name()
            ))
        }
    };
    let job_ref = text_of(value.get("job_ref"));
    let job_id = match value.get("job_id") {
        Some(Json::String(j)) => j.clone(),
        None | Some(Json::Null) => {
            let own_run = value.get("run_id").and_then(Json::as_str);
            match derive_job_id(
                placement,
                own_run,
                value.get("job_ref").and_then(Json::as_str),
            ) {
                Ok((j, _)) => j,
                Err(e) => return identity(e),
            }
        }
        Some(other) => {
            return identity(format!(
                "job_id must be a string, found {}",
                other.type_name()
            ))
        }
    };
    let last_entry = match value.get(HISTORY_KEY) {
        Some(Json::Array(entries)) => entries.last().and_then(|e| {
            let base = e.get("base_commit")?.as_str()?.to_string();
            let at = e
                .get("applied_at")
                .and_then(Json::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp());
            Some((base, at))
        }),
        _ => None,
    };
    Extracted::Run(Box::new(RunRow {
        key: Key { job_id, run_id },
        job_ref,
        job_type: text_of(value.get("job_type")),
        status: text_of(value.get("status")),
        inputs_hash: text_of(value.get("inputs_hash")),
        artifact_dir: path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default(),
        manifest_json: doc.as_str().to_string(),
        schema_version: version.to_string(),
        path: path.to_string(),
        blob_id: blob_id.to_string(),
        last_entry,
    }))
}

/// How strongly a path holds the run `key`, lowest first: 0 the run's own place in the
/// canonical layout, 1 its place in another layout (`runs/<run_id>/`), 2 any other path;
/// then the layout's position and the path itself, so the order is total and a rebuild
/// picks what an incremental update picks.
pub fn rank<'p>(cfg: &Config, key: &Key, path: &'p str) -> (u8, usize, &'p str) {
    match cfg.layouts.place(&cfg.artifacts_root, path) {
        Some(p) if p.run_id == key.run_id && p.job_id.is_none_or(|j| j == key.job_id) => {
            let class = if p.is_canonical() && p.job_id.is_some() {
                0
            } else {
                1
            };
            (class, p.layout, path)
        }
        _ => (2, usize::MAX, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, text: &str) -> RunRow {
        match extract(path, "b", text.as_bytes(), &Config::default()) {
            Extracted::Run(r) => *r,
            other => panic!("{other:?}"),
        }
    }

    fn invalid(path: &str, text: &str) -> (String, String) {
        match extract(path, "b", text.as_bytes(), &Config::default()) {
            Extracted::Invalid { kind, error } => (kind, error),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_manifest_gives_the_seed_columns() {
        let r = run(
            "artifacts/j/r1/manifest.json",
            r#"{"schema_version": "1.1.0", "job_id": "j", "run_id": "r1", "job_ref": "jobs/j/b.yaml", "job_type": "copy", "status": "succeeded", "inputs_hash": null, "meta": {}}"#,
        );
        assert_eq!(
            r.key,
            Key {
                job_id: "j".into(),
                run_id: "r1".into()
            }
        );
        assert_eq!(r.job_type.as_deref(), Some("copy"));
        assert_eq!(r.inputs_hash, None);
        assert_eq!(r.artifact_dir, "artifacts/j/r1");
        assert_eq!(r.schema_version, "1.1.0");
        assert!(r.manifest_json.starts_with(r#"{"schema_version""#));
        assert_eq!(r.last_entry, None);
    }

    #[test]
    fn a_missing_job_id_is_the_one_the_migration_would_derive() {
        // From the path in the canonical layout...
        let r = run("artifacts/j/r1/manifest.json", r#"{"run_id": "r1"}"#);
        assert_eq!(
            (r.key.job_id.as_str(), r.schema_version.as_str()),
            ("j", "1.0.0")
        );
        // ...from job_ref in the legacy one, where the path names no job.
        let r = run(
            "artifacts/runs/r1/manifest.json",
            r#"{"run_id": "r1", "job_ref": "jobs/ig-7/brief.yaml"}"#,
        );
        assert_eq!(r.key.job_id, "ig-7");
        // A run_id missing is the run directory's.
        let r = run("artifacts/j/r9/manifest.json", r#"{"job_id": "j"}"#);
        assert_eq!(r.key.run_id, "r9");
        let (kind, error) = invalid("artifacts/runs/r1/manifest.json", r#"{"run_id": "r1"}"#);
        assert_eq!(kind, "identity");
        assert!(error.contains("cannot derive job_id"), "{error}");
    }

    #[test]
    fn unreadable_manifests_say_why_as_status_does() {
        assert_eq!(invalid("artifacts/j/r/manifest.json", "{").0, "parse");
        assert_eq!(
            invalid("artifacts/j/r/manifest.json", "[]").0,
            "not_an_object"
        );
        assert_eq!(
            invalid("artifacts/j/r/manifest.json", r#"{"schema_version": 1}"#).0,
            "bad_version"
        );
        assert_eq!(
            invalid(
                "artifacts/j/r/manifest.json",
                r#"{"run_id": 7, "job_id": "j"}"#
            )
            .0,
            "identity"
        );
    }

    #[test]
    fn the_newest_history_entry_is_remembered() {
        let r = run(
            "artifacts/j/r/manifest.json",
            r#"{"job_id": "j", "run_id": "r", "migration_history": [
                {"base_commit": "aaa", "applied_at": "2026-01-01T00:00:00Z"},
                {"base_commit": "bbb", "applied_at": "2026-01-01T00:00:10Z"}]}"#,
        );
        assert_eq!(r.last_entry, Some(("bbb".into(), Some(1767225610))));
    }

    #[test]
    fn the_canonical_place_holds_a_run_most_strongly() {
        let cfg = Config::default();
        let k = Key {
            job_id: "j".into(),
            run_id: "r".into(),
        };
        let canonical = rank(&cfg, &k, "artifacts/j/r/manifest.json");
        let legacy = rank(&cfg, &k, "artifacts/runs/r/manifest.json");
        let elsewhere = rank(&cfg, &k, "artifacts/j/copy/manifest.json");
        let deep = rank(&cfg, &k, "artifacts/a/b/c/manifest.json");
        assert_eq!((canonical.0, legacy.0, elsewhere.0, deep.0), (0, 1, 2, 2));
        assert!(canonical < legacy && legacy < elsewhere && deep < elsewhere);
    }
}
