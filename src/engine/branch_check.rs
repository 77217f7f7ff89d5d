//! `migrations --check --base REV`: the migration definitions on this branch against those
//! on another revision, before the two are merged (the "multiple heads" failure of
//! schema-migration tools when two branches each add a migration).
//!
//! Compared with the two sides' merge base, a conflict is: an edge both sides added with
//! different definitions (checksums); an edge both sides changed, differently; two edges
//! from one version that the two sides added towards different versions; two different
//! latest versions, each side having moved past the base's; a definition this side changed
//! although a batch reachable from REV applied it with the checksum it had before. Each
//! finding names the definition files.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;
use serde::Serialize;

use crate::config::Config;
use crate::engine::error::EngineError;
use crate::engine::migrate::read_manifest;
use crate::engine::registry::{load_registry, Source};
use crate::git::diff::tree_changes;
use crate::git::history::{records, RecordKind};
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::manifest::Json;
use crate::schema::Registry;

/// One conflict between the two sides' definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchConflict {
    /// The edge (`FROM->TO`) or `latest`.
    pub migration: String,
    pub problem: String,
    /// The definition files involved, this side's first (built-ins have none).
    pub files: Vec<String>,
}

/// What was compared, and the conflicts found.
#[derive(Debug, Clone, Serialize)]
pub struct BranchCheck {
    pub base: CommitId,
    pub merge_base: Option<CommitId>,
    pub conflicts: Vec<BranchConflict>,
}

/// Each edge of a registry: its checksum and definition file.
type Edges = BTreeMap<String, (String, Option<String>)>;

fn edges(reg: &Registry) -> Edges {
    reg.migrations()
        .into_iter()
        .map(|m| {
            (
                m.id().to_string(),
                (m.checksum(), m.source().map(str::to_string)),
            )
        })
        .collect()
}

fn files(a: &Option<String>, b: &Option<String>) -> Vec<String> {
    let mut out: Vec<String> = a.iter().chain(b.iter()).cloned().collect();
    out.dedup();
    out
}

fn file_or_builtin(f: &Option<String>) -> &str {
    f.as_deref().unwrap_or("a built-in")
}

fn from_of(edge: &str) -> &str {
    edge.split_once("->").map_or(edge, |(f, _)| f)
}

/// Compares this branch's definitions (the working tree's, as every command loads them)
/// with those at `base` (and their merge base with HEAD).
pub fn check_branch(
    repo: &Repo,
    cfg: &Config,
    head: CommitId,
    base: CommitId,
    base_name: &str,
) -> Result<BranchCheck, EngineError> {
    let ours = load_registry(repo, cfg, Source::Worktree)?;
    let mut conflicts = Vec::new();
    let theirs = match load_registry(repo, cfg, Source::Commit(base)) {
        Ok(t) => t,
        Err(e) => {
            conflicts.push(BranchConflict {
                migration: String::new(),
                problem: format!("the migration definitions on {base_name} do not load: {e}"),
                files: Vec::new(),
            });
            return Ok(BranchCheck {
                base,
                merge_base: None,
                conflicts,
            });
        }
    };
    let merge_base = repo.git.merge_base(head.0, base.0).ok().map(CommitId);
    // Definitions the merge base holds (none when there is no common history, or they
    // do not load there: then every definition counts as added on both sides).
    let at_base = merge_base
        .and_then(|m| load_registry(repo, cfg, Source::Commit(m)).ok())
        .map(|l| edges(&l.registry))
        .unwrap_or_default();
    let (o, t) = (edges(&ours.registry), edges(&theirs.registry));
    for (edge, (osum, ofile)) in &o {
        let Some((tsum, tfile)) = t.get(edge) else {
            continue;
        };
        if osum == tsum {
            continue;
        }
        match at_base.get(edge) {
            None => conflicts.push(BranchConflict {
                migration: edge.clone(),
                problem: format!(
                    "migration {edge} was added on both sides with different definitions: {} here ({osum}), {} on {base_name} ({tsum})",
                    file_or_builtin(ofile),
                    file_or_builtin(tfile)
                ),
                files: files(ofile, tfile),
            }),
            Some((bsum, _)) if bsum != osum && bsum != tsum => conflicts.push(BranchConflict {
                migration: edge.clone(),
                problem: format!(
                    "migration {edge} was changed differently on both sides: {} here ({osum}), {} on {base_name} ({tsum}), {bsum} at their merge base",
                    file_or_builtin(ofile),
                    file_or_builtin(tfile)
                ),
                files: files(ofile, tfile),
            }),
            // Changed on one side only: the merge takes that change.
            Some(_) => {}
        }
    }
    // Two edges from one version, one added on each side, towards different versions.
    let added = |side: &Edges| -> Vec<String> {
        side.keys()
            .filter(|e| !at_base.contains_key(*e))
            .cloned()
            .collect()
    };
    let (oadd, tadd) = (added(&o), added(&t));
    for oe in &oadd {
        for te in tadd
            .iter()
            .filter(|te| *te != oe && from_of(te) == from_of(oe))
        {
            if o.contains_key(te) || t.contains_key(oe) {
                continue;
            }
            conflicts.push(BranchConflict {
                migration: oe.clone(),
                problem: format!(
                    "both sides added a migration from {}: {oe} here ({}), {te} on {base_name} ({})",
                    from_of(oe),
                    file_or_builtin(&o[oe].1),
                    file_or_builtin(&t[te].1)
                ),
                files: files(&o[oe].1, &t[te].1),
            });
        }
    }
    let latest = |side: &Edges| -> Option<String> {
        let versions: BTreeSet<crate::schema::Version> = side
            .keys()
            .filter_map(|e| e.split_once("->"))
            .flat_map(|(f, t)| [f.parse().ok(), t.parse().ok()])
            .flatten()
            .collect();
        versions.last().map(|v| v.to_string())
    };
    let (ol, tl, bl) = (latest(&o), latest(&t), latest(&at_base));
    if ol != tl && ol != bl && tl != bl {
        let into = |side: &Edges, v: &Option<String>| -> Vec<String> {
            side.iter()
                .filter(|(e, _)| {
                    e.split_once("->").map(|(_, to)| Some(to.to_string())) == Some(v.clone())
                })
                .filter_map(|(_, (_, f))| f.clone())
                .collect()
        };
        let mut fs = into(&o, &ol);
        fs.extend(into(&t, &tl));
        conflicts.push(BranchConflict {
            migration: "latest".to_string(),
            problem: format!(
                "two different latest versions: {} here, {} on {base_name} (the merge base's is {}); after a merge one of them is a dead end",
                ol.as_deref().unwrap_or("none"),
                tl.as_deref().unwrap_or("none"),
                bl.as_deref().unwrap_or("none")
            ),
            files: fs,
        });
    }
    // Definitions this side changed that REV's batches already applied.
    for (step, sums) in applied_on(repo, base)? {
        let Some((osum, ofile)) = o.get(&step) else {
            continue;
        };
        let Some((sum, batch)) = sums.iter().find(|(s, _)| s != osum) else {
            continue;
        };
        if at_base.get(&step).is_some_and(|(b, _)| b == osum) {
            // Unchanged here: REV changed it after applying it, which its own verify reports.
            continue;
        }
        conflicts.push(BranchConflict {
            migration: step.clone(),
            problem: format!(
                "migration {step} was changed here ({}, now {osum}) but batch {} on {base_name} already applied it as {sum}",
                file_or_builtin(ofile),
                batch.short()
            ),
            files: ofile.iter().cloned().collect(),
        });
    }
    Ok(BranchCheck {
        base,
        merge_base,
        conflicts,
    })
}

/// The checksum each step had when batches reachable from `rev` applied it (from their
/// manifests' history entries): step -> [(checksum, newest batch)].
fn applied_on(
    repo: &Repo,
    rev: CommitId,
) -> Result<BTreeMap<String, Vec<(String, CommitId)>>, GitError> {
    let mut out: BTreeMap<String, Vec<(String, CommitId)>> = BTreeMap::new();
    for r in records(repo, rev)? {
        if r.kind != RecordKind::Batch {
            continue;
        }
        let [parent] = r.parents[..] else { continue };
        // Every `Migration-Step` path names where it starts; one manifest per start is
        // enough, as every manifest migrated from there recorded the same checksums.
        let mut starts: BTreeSet<String> = r
            .trailer_values(crate::git::message::keys::STEP)
            .into_iter()
            .filter_map(|v| v.split_once("->").map(|(f, _)| f.to_string()))
            .collect();
        for d in tree_changes(repo, Some(parent), r.commit)? {
            if starts.is_empty() {
                break;
            }
            if d.new_id == Oid::ZERO_SHA1 {
                continue;
            }
            let Ok(bytes) = repo.blob(d.new_id, &d.path) else {
                continue;
            };
            let Ok(doc) = read_manifest(&bytes) else {
                continue;
            };
            let Some(Json::Array(hist)) = doc.get("migration_history") else {
                continue;
            };
            let Some(entry) = hist.last() else { continue };
            let Some(from) = entry.get("from_version").and_then(Json::as_str) else {
                continue;
            };
            if !starts.remove(from) {
                continue;
            }
            if let Some(Json::Object(sums)) = entry.get("migration_checksums") {
                for (step, sum) in sums {
                    if let Json::String(sum) = sum {
                        let v = out.entry(step.clone()).or_default();
                        if !v.iter().any(|(s, _)| s == sum) {
                            v.push((sum.clone(), r.commit));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
