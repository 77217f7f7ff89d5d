//! `verify --inputs`: re-derives each run's identity from its input snapshots, as the
//! artifact pipeline does (its `reindex --verify`), reading only REV's tree.
//!
//! For each manifest at REV whose `inputs_hash` is a string:
//! - every `input_snapshots` entry's file (its `path`, relative to the run directory) exists
//!   with the recorded `sha256` and `bytes`;
//! - `inputs_hash` is the sha256 (written `sha256:<hex>`) of the canonical JSON of
//!   `{name: sha256}` over the entries;
//! - `run_id` is the first 32 hex digits of `inputs_hash`, or that plus `-N` with N ≥ 2;
//! - where `inputs/doctrine.resolved.json` exists, each of its `doctrine_id`, `version` and
//!   `sha256` that it holds equals the manifest's `doctrine`'s, and the sha256 of its
//!   `content` (when it holds one) equals `doctrine.sha256`.
//!
//! A legacy run whose `inputs_hash` is null (or absent) has nothing to derive: skipped, not
//! failed. Every mismatch is a [`Finding`] naming the file and both values.

use serde::Serialize;

use crate::config::Config;
use crate::engine::migrate::read_manifest;
use crate::engine::verify::{Finding, VerifyReport};
use crate::git::scan::scan_commit;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::manifest::{canonical_json, sha256_prefixed, Json};

/// What `verify --inputs` checked. Serialized as `verify --json`'s `inputs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InputsReport {
    /// Runs whose identity was re-derived.
    pub checked: usize,
    /// Legacy runs with a null `inputs_hash`: nothing to derive.
    pub skipped_legacy: usize,
    /// Input snapshot files read and hashed.
    pub snapshots: usize,
}

/// Where the pipeline keeps the resolved doctrine of a run.
pub const DOCTRINE_FILE: &str = "inputs/doctrine.resolved.json";

/// Re-derives the identity of every run at `rev`.
pub fn verify_inputs(
    repo: &Repo,
    cfg: &Config,
    rev: CommitId,
) -> Result<(InputsReport, Vec<Finding>), GitError> {
    let scan = scan_commit(repo, rev, cfg)?;
    let mut report = InputsReport::default();
    let mut findings = Vec::new();
    for m in &scan.manifests {
        let path = m.path.as_str();
        let bytes = repo.blob(m.blob, path)?;
        // An unparsable manifest is verify's own finding already.
        let Ok(doc) = read_manifest(&bytes) else {
            continue;
        };
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let read = |rel: &str| repo.read_path(rev, &join(dir, rel));
        match check_run(path, dir, &doc, &read) {
            Some((n, f)) => {
                report.checked += 1;
                report.snapshots += n;
                findings.extend(f.into_iter().map(|problem| Finding {
                    commit: rev,
                    commits: Vec::new(),
                    path: Some(problem.0),
                    problem: problem.1,
                }));
            }
            None => report.skipped_legacy += 1,
        }
    }
    Ok((report, findings))
}

/// `verify --inputs` on top of an audit: re-derives every run's identity at the audited
/// revision and adds the mismatches to the report's findings.
pub fn add_inputs(repo: &Repo, cfg: &Config, report: &mut VerifyReport) -> Result<(), GitError> {
    let (inputs, findings) = verify_inputs(repo, cfg, report.revision)?;
    report.findings.extend(findings);
    report.inputs = Some(inputs);
    report.ok = report.findings.is_empty();
    Ok(())
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

fn s<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Json::as_str)
}

fn shown(v: Option<&Json>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(v) => canonical_json(v),
    }
}

/// One run's checks: `None` for a legacy run (null `inputs_hash`), else the number of
/// snapshots read and the problems, each `(file, problem)`. `read` gives a file's bytes
/// by its path relative to the run directory. Pure: no git, no disk.
pub fn check_run(
    manifest: &str,
    dir: &str,
    doc: &Json,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Option<(usize, Vec<(String, String)>)> {
    let hash = match doc.get("inputs_hash") {
        None | Some(Json::Null) => return None,
        Some(Json::String(h)) => Some(h.as_str()),
        Some(_) => None,
    };
    let mut out = Vec::new();
    let mut problem = |file: String, text: String| out.push((file, text));
    let Some(hash) = hash else {
        problem(
            manifest.to_string(),
            format!(
                "inputs_hash is {}, not a \"sha256:<hex>\" string",
                shown(doc.get("inputs_hash"))
            ),
        );
        return Some((0, out));
    };
    let mut read_count = 0;
    let mut names: Vec<(String, Json)> = Vec::new();
    match doc.get("input_snapshots") {
        Some(Json::Object(entries)) => {
            for (name, entry) in entries {
                let recorded = entry.get("sha256");
                if let Some(r) = recorded {
                    names.push((name.clone(), r.clone()));
                }
                let Some(rel) = s(entry, "path") else {
                    problem(
                        manifest.to_string(),
                        format!("input_snapshots.{name} has no path"),
                    );
                    continue;
                };
                if rel.starts_with('/') || rel.split('/').any(|c| c == ".." || c.is_empty()) {
                    problem(
                        manifest.to_string(),
                        format!("input_snapshots.{name}.path {rel:?} leaves the run directory"),
                    );
                    continue;
                }
                let file = join(dir, rel);
                let Some(bytes) = read(rel) else {
                    problem(
                        file,
                        format!("input snapshot {name} is missing (recorded in {manifest})"),
                    );
                    continue;
                };
                read_count += 1;
                let actual = sha256_prefixed(&bytes);
                if recorded.and_then(Json::as_str) != Some(actual.as_str()) {
                    problem(
                        file.clone(),
                        format!(
                            "input snapshot {name}: the manifest records sha256 {}, the file has \"{actual}\"",
                            shown(recorded)
                        ),
                    );
                }
                let size = bytes.len().to_string();
                match entry.get("bytes") {
                    Some(Json::Number(n)) if *n == size => {}
                    other => problem(
                        file,
                        format!(
                            "input snapshot {name}: the manifest records bytes {}, the file has {size}",
                            shown(other)
                        ),
                    ),
                }
            }
        }
        other => problem(
            manifest.to_string(),
            format!(
                "input_snapshots is {}, not an object (inputs_hash is set)",
                shown(other)
            ),
        ),
    }
    // The pipeline hashes {name: sha256} in canonical form.
    let derived = sha256_prefixed(canonical_json(&Json::Object(names)).as_bytes());
    if derived != hash {
        problem(
            manifest.to_string(),
            format!("inputs_hash is {hash}, the input snapshots give {derived}"),
        );
    }
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    if let Some(run_id) = s(doc, "run_id") {
        if !run_id_fits(run_id, hex) {
            let want = hex.get(..32).unwrap_or(hex);
            problem(
                manifest.to_string(),
                format!(
                    "run_id is {run_id:?}, inputs_hash gives {want:?} (or {want}-N with N >= 2)"
                ),
            );
        }
    } else {
        problem(manifest.to_string(), "run_id is not a string".to_string());
    }
    if let Some(bytes) = read(DOCTRINE_FILE) {
        check_doctrine(
            manifest,
            &join(dir, DOCTRINE_FILE),
            doc,
            &bytes,
            &mut problem,
        );
    }
    Some((read_count, out))
}

/// `run_id` is the first 32 hex digits of the hash, or that and `-N`, N an integer ≥ 2.
fn run_id_fits(run_id: &str, hex: &str) -> bool {
    let Some(prefix) = hex.get(..32) else {
        return false;
    };
    match run_id.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .filter(|n| {
                !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 2),
        None => false,
    }
}

fn check_doctrine(
    manifest: &str,
    file: &str,
    doc: &Json,
    bytes: &[u8],
    problem: &mut dyn FnMut(String, String),
) {
    let resolved = match read_manifest(bytes) {
        Ok(v) => v,
        Err(e) => {
            problem(file.to_string(), format!("not valid JSON: {e}"));
            return;
        }
    };
    let ours = doc.get("doctrine");
    for key in ["doctrine_id", "version", "sha256"] {
        let Some(theirs) = resolved.get(key) else {
            continue;
        };
        let mine = ours.and_then(|d| d.get(key));
        if mine != Some(theirs) {
            problem(
                file.to_string(),
                format!(
                    "doctrine {key} is {} here, {} in {manifest}",
                    canonical_json(theirs),
                    shown(mine)
                ),
            );
        }
    }
    if let Some(content) = s(&resolved, "content") {
        let actual = sha256_prefixed(content.as_bytes());
        let recorded = ours.and_then(|d| d.get("sha256"));
        if recorded.and_then(Json::as_str) != Some(actual.as_str()) {
            problem(
                file.to_string(),
                format!(
                    "the sha256 of its content is {actual}, {manifest} records doctrine.sha256 {}",
                    shown(recorded)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_is_the_hash_prefix_or_that_with_a_collision_suffix() {
        let hex = "e99e867f0a3a1b77e9a3b895e33ff22de01f4861534a58e73a682fb85743e5b5";
        assert!(run_id_fits("e99e867f0a3a1b77e9a3b895e33ff22d", hex));
        assert!(run_id_fits("e99e867f0a3a1b77e9a3b895e33ff22d-2", hex));
        assert!(run_id_fits("e99e867f0a3a1b77e9a3b895e33ff22d-17", hex));
        for bad in [
            "e99e867f0a3a1b77e9a3b895e33ff22d-1",
            "e99e867f0a3a1b77e9a3b895e33ff22d-0",
            "e99e867f0a3a1b77e9a3b895e33ff22d-02",
            "e99e867f0a3a1b77e9a3b895e33ff22d-",
            "e99e867f0a3a1b77e9a3b895e33ff22dx",
            "e99e867f0a3a1b77e9a3b895e33ff22",
            "f99e867f0a3a1b77e9a3b895e33ff22d",
        ] {
            assert!(!run_id_fits(bad, hex), "{bad}");
        }
        assert!(!run_id_fits("e99e", "e99e"));
    }

    #[test]
    fn a_legacy_run_is_skipped() {
        let doc = read_manifest(br#"{"run_id": "x", "inputs_hash": null}"#).unwrap();
        assert_eq!(check_run("m.json", "", &doc, &|_| None), None);
    }
}
