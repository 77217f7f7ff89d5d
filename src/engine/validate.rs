//! `validate`: checks manifests against the JSON Schema of their own version (§11, validation
//! per version and on write). Read-only: it never writes an object, a ref, the index or a file.
//!
//! Two sources of manifests:
//! - [`Which::Head`]: every manifest committed at HEAD (restricted by pathspecs), as `status`
//!   reads them.
//! - [`Which::Staged`]: the manifests a commit is about to record: index entries at manifest
//!   paths whose blob is new or differs from HEAD's. This is what the pre-commit hook checks,
//!   so a commit that does not touch manifests checks nothing. Entries added with
//!   `git add -N` (intent to add), unmerged entries, symbolic links and submodules are not
//!   manifests being committed and are skipped. The caller opens the index to read with
//!   [`open_index`] (inside a hook git names it in `GIT_INDEX_FILE`: for `git commit -a` or
//!   `git commit PATH` it is a temporary one).
//!
//! Each manifest is parsed (a manifest that cannot be read is a failure, with the reason), its
//! `schema_version` read (absent = 1.0.0), and the value checked against that version's schema.
//! A version without a schema has nothing to check: the manifest is counted as `unchecked`.
//! Blobs are read in rounds and checked in parallel, as the survey does.
//!
//! Which schemas to check against is the caller's choice: [`staged_schemas`] reads the ones
//! in the index (what the commit will contain), the registry loader the working tree's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::Oid;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::engine::migrate::{read_manifest, read_version, ManifestError};
use crate::engine::progress::Progress;
use crate::engine::registry::DefinitionProblem;
use crate::git::scan::{is_manifest_path, matches_pathspec, scan_commit};
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};
use crate::schema::validation::{SchemaSet, SchemaViolation, SCHEMAS_DIR};
use crate::schema::Version;

/// Which manifests to check.
#[derive(Clone, Copy)]
pub enum Which<'a> {
    /// The manifests committed at HEAD.
    Head,
    /// The manifests staged in this index (see [`open_index`]): new, or changed from HEAD.
    Staged(&'a git2::Index),
}

/// Git's flag for an entry added with `git add -N` (`GIT_INDEX_ENTRY_INTENT_TO_ADD`).
const INTENT_TO_ADD: u16 = 1 << 13;
/// The stage bits of an index entry's flags (non-zero: unmerged).
const STAGE_MASK: u16 = 0x3000;

/// One manifest that failed: it could not be read, or it breaks its version's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationFailure {
    pub path: String,
    /// `schema` when the manifest breaks its schema; else why it could not be checked
    /// (`parse`, `lfs_pointer`, `not_an_object`, `bad_version`).
    pub kind: String,
    /// The manifest's version (`null` when it could not be read).
    pub version: Option<String>,
    /// The schema file it was checked against (`null` when it could not be read).
    pub schema: Option<String>,
    /// Why it could not be checked (`null` for schema violations).
    pub error: Option<String>,
    /// Every violation, in the order the validator finds them.
    pub violations: Vec<SchemaViolation>,
}

/// The result of a validation.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// `head` or `staged`.
    pub source: &'static str,
    /// HEAD's commit (`null` on an unborn branch).
    pub commit: Option<CommitId>,
    /// Manifests looked at.
    pub total: usize,
    /// Manifests checked against a schema (valid or not).
    pub checked: usize,
    /// Manifests at a version that has no schema: nothing to check.
    pub unchecked: usize,
    /// The versions without a schema, with how many manifests are at each.
    pub unchecked_versions: BTreeMap<String, usize>,
    /// Ascending by path.
    pub failures: Vec<ValidationFailure>,
}

impl ValidateReport {
    /// Whether every manifest passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What checking one manifest found.
enum Checked {
    Valid,
    Unchecked(Version),
    Invalid(Version, Vec<SchemaViolation>),
    Unreadable(ManifestError),
}

fn check(bytes: &[u8], schemas: &SchemaSet) -> Checked {
    let value = match read_manifest(bytes) {
        Ok(value) => value,
        Err(e) => return Checked::Unreadable(e),
    };
    let version = match read_version(&value) {
        Ok(v) => v,
        Err(e) => return Checked::Unreadable(e),
    };
    if schemas.file(version).is_none() {
        return Checked::Unchecked(version);
    }
    match schemas.validate(version, &value) {
        Ok(()) => Checked::Valid,
        Err(v) => Checked::Invalid(version, v),
    }
}

fn head_or_unborn(repo: &Repo) -> Result<Option<CommitId>, GitError> {
    match repo.head_commit() {
        Ok(c) => Ok(Some(c)),
        Err(GitError::Unborn) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the index to check: `path` (inside a hook, git's `GIT_INDEX_FILE`), or the
/// repository's own.
pub fn open_index(repo: &Repo, path: Option<&Path>) -> Result<git2::Index, GitError> {
    match path {
        Some(p) => {
            git2::Index::open(p).map_err(GitError::git(format!("read the index {}", p.display())))
        }
        None => repo.git.index().map_err(GitError::git("read the index")),
    }
}

/// Whether an index entry is a file staged for the next commit: stage 0, not intent-to-add,
/// a regular file (not a symbolic link or a submodule).
fn staged_file(e: &git2::IndexEntry) -> bool {
    e.flags & STAGE_MASK == 0
        && e.flags_extended & INTENT_TO_ADD == 0
        && e.mode & 0o170000 == 0o100000
}

/// The staged manifests: index entries at manifest paths (within `pathspecs`) whose blob is
/// new or differs from HEAD's, sorted by path. HEAD's manifests are listed once (as `status`
/// lists them) rather than looked up path by path: measured on 100k manifests, that is faster
/// than libgit2's tree-to-index diff, which walks every tree under the root as well.
fn staged_manifests(
    repo: &Repo,
    cfg: &Config,
    head: Option<CommitId>,
    index: &git2::Index,
    pathspecs: &[String],
) -> Result<Vec<(RepoPath, Oid)>, GitError> {
    let candidates: Vec<(String, Oid)> = index
        .iter()
        .filter(staged_file)
        .filter_map(|e| {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            (is_manifest_path(&path, cfg) && matches_pathspec(&path, pathspecs))
                .then_some((path, e.id))
        })
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let committed: HashMap<String, Oid> = match head {
        Some(c) => scan_commit(repo, c, cfg)?
            .manifests
            .into_iter()
            .map(|m| (m.path.as_str().to_string(), m.blob))
            .collect(),
        None => HashMap::new(),
    };
    let mut out: Vec<(RepoPath, Oid)> = candidates
        .into_iter()
        .filter(|(p, id)| committed.get(p) != Some(id))
        .map(|(p, id)| (RepoPath::new(p), id))
        .collect();
    out.sort_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
    Ok(out)
}

/// The schemas as staged in `index` (`.artifact-migrate/schemas/<version>.json`): what the
/// commit being made will contain. A schema that does not load is an error naming its file.
pub fn staged_schemas(repo: &Repo, index: &git2::Index) -> Result<SchemaSet, EngineError> {
    let prefix = format!("{SCHEMAS_DIR}/");
    let mut files = Vec::new();
    if let Ok(start) = index.find_prefix(prefix.as_str()) {
        for e in (start..index.len()).map_while(|i| index.get(i)) {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            let Some(name) = path.strip_prefix(&prefix) else {
                break;
            };
            if name.contains('/') || !name.ends_with(".json") || !staged_file(&e) {
                continue;
            }
            let bytes = repo.blob(e.id, &format!("{path} from the index"))?;
            files.push((path, bytes));
        }
    }
    SchemaSet::load(&files).map_err(|errors| {
        EngineError::Definitions(errors.into_iter().map(DefinitionProblem::from).collect())
    })
}

/// Checks the manifests `which` names (restricted to `pathspecs`: repository-relative files
/// or directories) against `schemas`. Failures are in the report; an `Err` is a repository
/// that cannot be read.
pub fn validate(
    repo: &Repo,
    cfg: &Config,
    schemas: &SchemaSet,
    which: Which<'_>,
    pathspecs: &[String],
    progress: &dyn Progress,
) -> Result<ValidateReport, EngineError> {
    progress.start("scan", 0);
    let (source, head, entries) = match which {
        Which::Head => {
            let head = repo.head_commit()?;
            let scan = scan_commit(repo, head, cfg)?;
            let entries: Vec<(RepoPath, Oid)> = scan
                .manifests
                .into_iter()
                .filter(|m| matches_pathspec(m.path.as_str(), pathspecs))
                .map(|m| (m.path, m.blob))
                .collect();
            ("head", Some(head), entries)
        }
        Which::Staged(index) => {
            let head = head_or_unborn(repo)?;
            let entries = staged_manifests(repo, cfg, head, index, pathspecs)?;
            ("staged", head, entries)
        }
    };
    progress.finish();
    let mut report = ValidateReport {
        source,
        commit: head,
        total: entries.len(),
        checked: 0,
        unchecked: 0,
        unchecked_versions: BTreeMap::new(),
        failures: Vec::new(),
    };
    progress.start("validate", entries.len() as u64);
    for chunk in entries.chunks(4096) {
        let mut blobs = Vec::with_capacity(chunk.len());
        for (path, id) in chunk {
            blobs.push(repo.blob(*id, path.as_str())?);
        }
        let results: Vec<Checked> = blobs.par_iter().map(|b| check(b, schemas)).collect();
        for ((path, _), r) in chunk.iter().zip(results) {
            match r {
                Checked::Valid => report.checked += 1,
                Checked::Unchecked(v) => {
                    report.unchecked += 1;
                    *report.unchecked_versions.entry(v.to_string()).or_insert(0) += 1;
                }
                Checked::Invalid(v, violations) => {
                    report.checked += 1;
                    report.failures.push(ValidationFailure {
                        path: path.to_string(),
                        kind: "schema".into(),
                        version: Some(v.to_string()),
                        schema: schemas.file(v).map(str::to_string),
                        error: None,
                        violations,
                    });
                }
                Checked::Unreadable(e) => report.failures.push(ValidationFailure {
                    path: path.to_string(),
                    kind: e.kind().to_string(),
                    version: None,
                    schema: None,
                    error: Some(e.to_string()),
                    violations: Vec::new(),
                }),
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> SchemaSet {
        let files = vec![(
            format!("{SCHEMAS_DIR}/1.3.0.json"),
            br#"{"type": "object", "required": ["review_status"], "properties": {"review_status": {"enum": ["unreviewed", "approved", "rejected"]}}}"#.to_vec(),
        )];
        SchemaSet::load(&files).expect("the schema loads")
    }

    #[test]
    fn each_manifest_is_valid_unchecked_invalid_or_unreadable() {
        let s = schemas();
        assert!(matches!(
            check(
                br#"{"schema_version": "1.3.0", "review_status": "approved"}"#,
                &s
            ),
            Checked::Valid
        ));
        assert!(matches!(
            check(br#"{"schema_version": "1.2.0"}"#, &s),
            Checked::Unchecked(v) if v.to_string() == "1.2.0"
        ));
        // No schema_version: 1.0.0, which has no schema here.
        assert!(matches!(
            check(br#"{"run_id": "r"}"#, &s),
            Checked::Unchecked(v) if v.to_string() == "1.0.0"
        ));
        match check(
            br#"{"schema_version": "1.3.0", "review_status": "maybe"}"#,
            &s,
        ) {
            Checked::Invalid(_, v) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].instance_path, "/review_status");
                assert_eq!(v[0].keyword, "enum");
            }
            _ => panic!("expected a violation"),
        }
        for (bytes, kind) in [
            (&b"{\"schema_version\": \"1.3.0\""[..], "parse"),
            (b"[]", "not_an_object"),
            (b"{\"schema_version\": 3}", "bad_version"),
            (
                b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n",
                "lfs_pointer",
            ),
        ] {
            match check(bytes, &s) {
                Checked::Unreadable(e) => assert_eq!(e.kind(), kind),
                _ => panic!("expected {kind}"),
            }
        }
    }
}
