//! `verify`: audits history and a revision against §4–§6, reading only what git holds.
//!
//! For every batch reachable from REV: the batch touched nothing but manifests; its
//! trailers agree with the manifests; each history entry's `checksum_before` is the blob
//! at its `base_commit` and `checksum_after` the migrated document; protected fields and
//! earlier history entries are equal across the batch. Every relocation only moved run
//! directories (every blob identical under its new path, the alias links, nothing else).
//! Every rollback restores exactly its batch's (or relocation's) paths. At REV: each
//! manifest's path fits a configured layout and its identity, its history entries are the
//! ones the batches wrote (under the run's name of the time), and its content has not
//! drifted since; runs present in two layouts are named with their canonical copy.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::engine::registry::{load_registry, Source};
use std::path::Path;

use git2::{Delta, Oid};
use rayon::prelude::*;
use serde::Serialize;

use crate::config::Config;
use crate::engine::drift::{attribute, Attribution, Drifted, Warning};
use crate::engine::error::EngineError;
use crate::engine::history::checksum_after;
use crate::engine::invariants::{check_history_kept, check_protected, HISTORY_KEY};
use crate::engine::migrate::read_manifest;
use crate::engine::progress::Progress;
use crate::engine::relocate::audit_relocation;
use crate::engine::verify_inputs::InputsReport;
use crate::engine::verify_signatures::{check_records, CommitSignature};
use crate::git::diff::tree_changes;
use crate::git::history::{records, Record, RecordKind};
use crate::git::message::keys;
use crate::git::message::RelocationMessage;
use crate::git::pack_order::PackOrder;
use crate::git::rounds::in_rounds;
use crate::git::scan::{is_manifest_path, scan_commit, RunPair};
use crate::git::shallow::Shallow;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::manifest::{sha256_prefixed, Json};

/// One problem: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub commit: CommitId,
    pub path: Option<String>,
    pub problem: String,
    /// For a change made since a manifest's last batch: the commits that made it, newest
    /// first (absent from the JSON otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<Attribution>,
}

/// The result of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub revision: CommitId,
    pub batches: usize,
    pub rollbacks: usize,
    pub relocations: usize,
    /// Manifests at the audited revision.
    pub manifests: usize,
    pub findings: Vec<Finding>,
    /// Changes that are not tampering (drift since a manifest's last batch, with its
    /// commits); [`crate::engine::drift::strict`] makes them findings.
    pub warnings: Vec<Warning>,
    /// Runs at the audited revision in the canonical layout and in another one (not a
    /// finding: both are manifests); `canonical` is the copy readers prefer.
    pub pairs: Vec<RunPair>,
    /// The signature of every batch, rollback, relocation and repair commit, newest first.
    pub signatures: Vec<CommitSignature>,
    /// Set in a shallow clone: where history stops and what was not audited.
    pub shallow: Option<ShallowNote>,
    /// `verify --inputs`: what was re-derived (`None` without it); its findings are in
    /// `findings`.
    pub inputs: Option<InputsReport>,
}

/// What `verify` could not audit in a shallow clone. Serialized as `verify --json`'s
/// `shallow` (`null` in a complete clone).
#[derive(Debug, Clone, Serialize)]
pub struct ShallowNote {
    /// The commits whose parents the clone does not hold.
    pub boundary: Vec<CommitId>,
    /// Batches, rollbacks and relocations at the boundary: their parent was not fetched,
    /// so what they changed is not audited.
    pub not_audited: Vec<CommitId>,
    /// Where history stops and how to fetch more, in one sentence.
    pub message: String,
}

fn history(doc: &Json) -> &[Json] {
    match doc.get(HISTORY_KEY) {
        Some(Json::Array(a)) => a,
        _ => &[],
    }
}

fn s<'a>(entry: &'a Json, key: &str) -> Option<&'a str> {
    entry.get(key).and_then(Json::as_str)
}

/// A manifest a batch modified, before its blobs are read.
struct Modified {
    path: String,
    old: Oid,
    new: Oid,
}

/// A manifest a batch changed: bytes before and after.
struct Changed {
    path: String,
    before: Vec<u8>,
    after: Vec<u8>,
    /// Bytes at the entry's `base_commit` when that is not the parent.
    at_base: Option<Option<Vec<u8>>>,
}

/// Audits everything reachable from `rev`.
pub fn verify(
    repo: &Repo,
    cfg: &Config,
    rev: CommitId,
    progress: &dyn Progress,
) -> Result<VerifyReport, EngineError> {
    progress.start("read history", 0);
    let recs = records(repo, rev)?;
    // In a shallow clone, what lies beyond the boundary is not audited (and not a finding).
    let shallow = Shallow::read(repo, rev)?;
    let cut = |c: CommitId| shallow.as_ref().is_some_and(|s| s.cuts(c));
    progress.finish();
    let mut findings = Vec::new();
    // What each batch wrote into each manifest's history: (path, base_commit) -> (batch, entry).
    let mut written: HashMap<(String, String), (CommitId, Json)> = HashMap::new();
    let by_id: HashMap<CommitId, &Record> = recs.iter().map(|r| (r.commit, r)).collect();
    let batches: Vec<&Record> = recs
        .iter()
        .filter(|r| r.kind == RecordKind::Batch)
        .collect();
    progress.start("audit batches", batches.len() as u64);
    // Each step's checksums as batches recorded them: step -> checksum -> batches (oldest last).
    let mut applied: BTreeMap<String, BTreeMap<String, Vec<CommitId>>> = BTreeMap::new();
    let mut sums = HashMap::new();
    // Where objects lie in the packs, read once for every batch and the revision.
    let packs = PackOrder::read(repo.git_dir());
    for b in &batches {
        if cut(b.commit) {
            progress.inc(1);
            continue;
        }
        let (f, w) = audit_batch(repo, cfg, &packs, b, &mut sums)?;
        findings.extend(f);
        for (_, (_, entry)) in &w {
            if let Some(Json::Object(sums)) = entry.get("migration_checksums") {
                for (step, sum) in sums {
                    if let Json::String(sum) = sum {
                        let batches = applied
                            .entry(step.clone())
                            .or_default()
                            .entry(sum.clone())
                            .or_default();
                        if !batches.contains(&b.commit) {
                            batches.push(b.commit);
                        }
                    }
                }
            }
        }
        written.extend(w);
        progress.inc(1);
    }
    findings.extend(audit_definitions(repo, cfg, rev, &recs, &applied));
    progress.finish();
    let mut rollbacks = 0;
    let mut relocations = 0;
    // Each relocated run's directories, (new, old): a manifest's history entries were
    // written under the name its run had at the time.
    let mut renamed: HashMap<String, String> = HashMap::new();
    for r in &recs {
        match &r.kind {
            RecordKind::Rollback { of } => {
                rollbacks += 1;
                let beyond = shallow.as_ref().is_some_and(|s| s.beyond(of));
                if !cut(r.commit) && !beyond {
                    findings.extend(audit_rollback(repo, r, of, &by_id)?);
                }
            }
            RecordKind::Relocation => {
                relocations += 1;
                let moves = RelocationMessage::parse_moves(&r.message);
                if !cut(r.commit) {
                    findings.extend(audit_relocation_record(repo, r, &moves)?);
                }
                renamed.extend(moves.into_iter().map(|(from, to)| (to, from)));
            }
            _ => {}
        }
    }
    progress.start("audit revision", 0);
    let (manifests, f, pairs, drifted) = audit_revision(
        repo,
        cfg,
        &packs,
        rev,
        &written,
        &renamed,
        shallow.as_ref(),
        &sums,
    )?;
    findings.extend(f);
    progress.finish();
    progress.start("attribute drift", drifted.len() as u64);
    let names_at = |path: &str, batch: CommitId| {
        former_names(path, &renamed)
            .into_iter()
            .find(|name| repo.read_entry(batch, name).is_some())
    };
    let (f, warnings) = attribute(repo, cfg, rev, &recs, shallow.as_ref(), drifted, &names_at)?;
    findings.extend(f);
    progress.finish();
    progress.start("check signatures", 0);
    let signatures = check_records(repo, &recs)?;
    progress.finish();
    Ok(VerifyReport {
        ok: findings.is_empty(),
        revision: rev,
        batches: batches.len(),
        rollbacks,
        relocations,
        manifests,
        findings,
        warnings,
        pairs,
        signatures,
        shallow: shallow.map(|s| ShallowNote {
            not_audited: recs
                .iter()
                .map(|r| r.commit)
                .filter(|c| s.cuts(*c))
                .collect(),
            message: s.describe(),
            boundary: s.boundary,
        }),
        inputs: None,
    })
}

fn finding(commit: CommitId, path: Option<&str>, problem: impl Into<String>) -> Finding {
    Finding {
        commit,
        path: path.map(str::to_string),
        problem: problem.into(),
        commits: Vec::new(),
    }
}

type Written = Vec<((String, String), (CommitId, Json))>;

/// Audits one batch commit. `sums` gathers the `checksum_after` of every manifest it wrote, by
/// blob id, so the audit of the revision need not compute one it already has.
fn audit_batch(
    repo: &Repo,
    cfg: &Config,
    packs: &PackOrder,
    b: &Record,
    sums: &mut HashMap<Oid, String>,
) -> Result<(Vec<Finding>, Written), GitError> {
    let mut out = Vec::new();
    let [parent] = b.parents[..] else {
        out.push(finding(
            b.commit,
            None,
            format!(
                "a batch must have exactly one parent, this one has {}",
                b.parents.len()
            ),
        ));
        return Ok((out, Vec::new()));
    };
    let mut modified = Vec::new();
    for d in tree_changes(repo, Some(parent), b.commit)? {
        let path = d.path.clone();
        if d.status != Delta::Modified {
            out.push(finding(
                b.commit,
                Some(&path),
                format!(
                    "the batch {} this path; a batch may only modify manifests",
                    match d.status {
                        Delta::Added => "added",
                        Delta::Deleted => "deleted",
                        _ => "renamed or retyped",
                    }
                ),
            ));
            continue;
        }
        if !is_manifest_path(&path, cfg) {
            out.push(finding(b.commit, Some(&path), "the batch changed a file that is not a manifest (inputs and outputs must never change)"));
            continue;
        }
        modified.push(Modified {
            path,
            old: d.old_id,
            new: d.new_id,
        });
    }
    let target = b.trailer(keys::TARGET).unwrap_or_default().to_string();
    let applied_at = b.trailer(keys::APPLIED_AT).map(str::to_string);
    let parent_hex = parent.to_string();
    let audit = |c: &Changed| {
        audit_manifest(
            cfg,
            b.commit,
            &parent_hex,
            &target,
            applied_at.as_deref(),
            c,
        )
    };
    let mut steps: BTreeMap<String, usize> = BTreeMap::new();
    let mut written = Vec::new();
    // Read in rounds on this thread while the pool audits the round before, each round in
    // pack order.
    let mut befores = packs.of(modified.iter().map(|m| m.old));
    let mut afters = packs.of(modified.iter().map(|m| m.new));
    in_rounds(
        &modified,
        |round| {
            let before = befores.read(round, |m| repo.blob(m.old, &m.path))?;
            let after = afters.read(round, |m| repo.blob(m.new, &m.path))?;
            Ok(round
                .iter()
                .zip(before.into_iter().zip(after))
                .map(|(m, (before, after))| Changed {
                    before,
                    after,
                    path: m.path.clone(),
                    at_base: None,
                })
                .collect())
        },
        |_, changed| {
            changed
                .into_par_iter()
                .map(|c| {
                    let a = audit(&c);
                    (c, a)
                })
                .collect()
        },
        |round, results| {
            for (m, (mut c, mut a)) in round.iter().zip(results) {
                // An entry whose base_commit is not the parent (a forged or odd batch): audit
                // it again against the manifest at that commit.
                if let Some(base) = a.other_base.take() {
                    c.at_base = Some(
                        Oid::from_str(&base)
                            .ok()
                            .and_then(|o| repo.read_path(CommitId(o), &c.path)),
                    );
                    a = audit(&c);
                }
                out.extend(a.findings);
                written.extend(a.written);
                if let Some((from, to)) = a.step {
                    *steps.entry(format!("{from}->{to}")).or_insert(0) += 1;
                }
                if let Some(sum) = a.checksum_after {
                    sums.insert(m.new, sum);
                }
            }
            Ok::<(), GitError>(())
        },
    )?;
    let changed_count = modified.len();
    // Trailers agree with the manifests.
    match b.trailer(keys::MANIFESTS).map(str::parse::<usize>) {
        Some(Ok(n)) if n == changed_count => {}
        Some(Ok(n)) => out.push(finding(
            b.commit,
            None,
            format!(
                "Migration-Manifests says {n} but the batch changed {changed_count} manifest(s)"
            ),
        )),
        _ => out.push(finding(
            b.commit,
            None,
            "Migration-Manifests is missing or not a number",
        )),
    }
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for v in b.trailer_values(keys::STEP) {
        match v
            .split_once(' ')
            .map(|(k, n)| (k, n.trim().parse::<usize>()))
        {
            Some((k, Ok(n))) => *claimed.entry(k.to_string()).or_insert(0) += n,
            _ => out.push(finding(
                b.commit,
                None,
                format!("Migration-Step {v:?} is not `FROM->TO COUNT`"),
            )),
        }
    }
    if claimed != steps {
        let show = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(finding(
            b.commit,
            None,
            format!(
                "Migration-Step trailers say [{}] but the manifests' history entries say [{}]",
                show(&claimed),
                show(&steps)
            ),
        ));
    }
    if let Some(at) = &applied_at {
        let committed = chrono::DateTime::from_timestamp(b.time, 0)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        if committed.as_deref() != Some(at.as_str()) {
            out.push(finding(
                b.commit,
                None,
                format!(
                    "Migration-Applied-At {at} is not the committer date {}",
                    committed.unwrap_or_default()
                ),
            ));
        }
    }
    Ok((out, written))
}

/// What auditing one manifest of a batch found.
struct ManifestAudit {
    findings: Vec<Finding>,
    /// The history entry the batch wrote, under (path, base_commit).
    written: Option<((String, String), (CommitId, Json))>,
    /// The step the entry records, (from, to).
    step: Option<(String, String)>,
    /// The entry's `base_commit` when it is not the batch's parent and the manifest there was
    /// not read yet ([`Changed::at_base`]).
    other_base: Option<String>,
    /// The migrated manifest's `checksum_after`, as computed here.
    checksum_after: Option<String>,
}

impl ManifestAudit {
    fn findings(findings: Vec<Finding>) -> ManifestAudit {
        ManifestAudit {
            findings,
            written: None,
            step: None,
            other_base: None,
            checksum_after: None,
        }
    }
}

fn audit_manifest(
    cfg: &Config,
    batch: CommitId,
    parent: &str,
    target: &str,
    applied_at: Option<&str>,
    c: &Changed,
) -> ManifestAudit {
    let mut out = Vec::new();
    let p = Some(c.path.as_str());
    let after = match read_manifest(&c.after) {
        Ok(v) => v,
        Err(e) => {
            out.push(finding(
                batch,
                p,
                format!("the migrated manifest is invalid: {e}"),
            ));
            return ManifestAudit::findings(out);
        }
    };
    let before = read_manifest(&c.before).ok();
    let hist = history(&after);
    let Some(entry) = hist.last() else {
        out.push(finding(
            batch,
            p,
            "the batch changed this manifest without adding a history entry",
        ));
        return ManifestAudit::findings(out);
    };
    if let Some(before) = &before {
        if hist.len() != history(before).len() + 1 {
            out.push(finding(
                batch,
                p,
                format!(
                    "the batch should add exactly one history entry, it went from {} to {}",
                    history(before).len(),
                    hist.len()
                ),
            ));
        }
        if let Err(v) = check_history_kept(before, &after) {
            out.push(finding(
                batch,
                p,
                format!("earlier history entries were {} ({})", v.how, v.field),
            ));
        }
        if let Err(v) = check_protected(before, &after, &cfg.protected) {
            out.push(finding(
                batch,
                p,
                format!("protected field {} was {} by the batch", v.field, v.how),
            ));
        }
    }
    let to = s(entry, "to_version").unwrap_or_default();
    if to != target {
        out.push(finding(
            batch,
            p,
            format!("history entry says to_version {to:?} but Migration-Target is {target:?}"),
        ));
    }
    if after.get("schema_version").and_then(Json::as_str) != Some(to) {
        out.push(finding(
            batch,
            p,
            format!("schema_version is not the history entry's to_version {to:?}"),
        ));
    }
    if let Some(at) = applied_at {
        if s(entry, "applied_at") != Some(at) {
            out.push(finding(
                batch,
                p,
                format!(
                    "history entry applied_at {:?} is not Migration-Applied-At {at}",
                    s(entry, "applied_at").unwrap_or_default()
                ),
            ));
        }
    }
    let base = s(entry, "base_commit").unwrap_or_default();
    if base != parent {
        out.push(finding(
            batch,
            p,
            format!("history entry base_commit {base} is not the batch's parent {parent}"),
        ));
    }
    let before_bytes = match &c.at_base {
        None => Some(c.before.as_slice()),
        Some(b) => b.as_deref(),
    };
    match before_bytes {
        Some(b) if s(entry, "checksum_before") == Some(sha256_prefixed(b).as_str()) => {}
        Some(_) => out.push(finding(
            batch,
            p,
            format!(
                "checksum_before does not match the file at base_commit {}",
                &base[..base.len().min(12)]
            ),
        )),
        None => out.push(finding(
            batch,
            p,
            format!("base_commit {base} does not hold this manifest"),
        )),
    }
    let sum = checksum_after(&after);
    if s(entry, "checksum_after") != Some(sum.as_str()) {
        out.push(finding(
            batch,
            p,
            "checksum_after does not match the migrated manifest",
        ));
    }
    let other_base = match s(entry, "base_commit") {
        Some(base) if base != parent && c.at_base.is_none() => Some(base.to_string()),
        _ => None,
    };
    ManifestAudit {
        findings: out,
        written: Some(((c.path.clone(), base.to_string()), (batch, entry.clone()))),
        step: s(entry, "from_version").map(|f| (f.to_string(), to.to_string())),
        other_base,
        checksum_after: Some(sum),
    }
}

fn audit_rollback(
    repo: &Repo,
    r: &Record,
    of: &str,
    by_id: &HashMap<CommitId, &Record>,
) -> Result<Vec<Finding>, GitError> {
    let mut out = Vec::new();
    let batch = Oid::from_str(of)
        .ok()
        .map(CommitId)
        .and_then(|id| by_id.get(&id).copied());
    let Some(batch) = batch.filter(|b| b.kind.is_revertible()) else {
        out.push(finding(
            r.commit,
            None,
            format!("Migration-Rollback-Of {of} is not a migration batch reachable from here"),
        ));
        return Ok(out);
    };
    let ([rparent], [bparent]) = (&r.parents[..], &batch.parents[..]) else {
        out.push(finding(
            r.commit,
            None,
            "a rollback and its batch must each have one parent",
        ));
        return Ok(out);
    };
    let rt = repo.tree_of(r.commit)?;
    let expected: BTreeMap<String, Oid> = tree_changes(repo, Some(*bparent), batch.commit)?
        .into_iter()
        .map(|d| (d.path, d.old_id))
        .collect();
    let diff = tree_changes(repo, Some(*rparent), r.commit)?;
    // A batch's rollback counts the manifests it restores, a relocation's the runs.
    let (key, want, what) = if batch.kind == RecordKind::Relocation {
        let runs = batch
            .trailer(keys::RELOCATE)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_default();
        (keys::RELOCATE, runs, "relocation")
    } else {
        (keys::MANIFESTS, expected.len(), "batch")
    };
    match r.trailer(key).map(str::parse::<usize>) {
        Some(Ok(n)) if n == want => {}
        Some(Ok(n)) if what == "batch" => out.push(finding(
            r.commit,
            None,
            format!(
                "Migration-Manifests says {n} but batch {} changed {} manifest(s)",
                batch.commit.short(),
                expected.len()
            ),
        )),
        Some(Ok(n)) => out.push(finding(
            r.commit,
            None,
            format!(
                "{key} says {n} but relocation {} moved {want} run(s)",
                batch.commit.short()
            ),
        )),
        _ => out.push(finding(
            r.commit,
            None,
            format!("{key} is missing or not a number"),
        )),
    }
    let mut seen = 0;
    for d in &diff {
        let path = d.path.clone();
        match expected.get(&path) {
            // The id before the batch (zero: the path did not exist, for a relocation's links
            // and new places).
            Some(id) if *id == d.new_id => seen += 1,
            Some(_) => out.push(finding(
                r.commit,
                Some(&path),
                format!(
                    "the rollback does not restore the bytes from before batch {}",
                    batch.commit.short()
                ),
            )),
            None => out.push(finding(
                r.commit,
                Some(&path),
                format!(
                    "the rollback changed a path batch {} did not",
                    batch.commit.short()
                ),
            )),
        }
    }
    if seen != expected.len() {
        let restored: std::collections::BTreeSet<&str> =
            diff.iter().map(|d| d.path.as_str()).collect();
        for p in expected.keys().filter(|p| !restored.contains(p.as_str())) {
            // Unchanged because it already had the old bytes is impossible for a clean revert.
            let now = rt
                .get_path(Path::new(p))
                .map(|e| e.id())
                .unwrap_or_else(|_| Oid::ZERO_SHA1);
            if Some(now) != expected.get(p).copied() {
                out.push(finding(
                    r.commit,
                    Some(p),
                    format!(
                        "the rollback did not restore this manifest of batch {}",
                        batch.commit.short()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// A relocation: one parent, `Migration-Relocate` counting the moves its body lists, and
/// [`audit_relocation`]: it only renamed.
fn audit_relocation_record(
    repo: &Repo,
    r: &Record,
    moves: &[(String, String)],
) -> Result<Vec<Finding>, GitError> {
    let [parent] = r.parents[..] else {
        return Ok(vec![finding(
            r.commit,
            None,
            format!(
                "a relocation must have exactly one parent, this one has {}",
                r.parents.len()
            ),
        )]);
    };
    let mut out = Vec::new();
    match r.trailer(keys::RELOCATE).map(str::parse::<usize>) {
        Some(Ok(n)) if n == moves.len() => {}
        _ => out.push(finding(
            r.commit,
            None,
            format!(
                "Migration-Relocate is {:?} but the message lists {} moved run(s)",
                r.trailer(keys::RELOCATE).unwrap_or_default(),
                moves.len()
            ),
        )),
    }
    for (path, problem) in audit_relocation(repo, parent, r.commit, moves)? {
        out.push(finding(
            r.commit,
            Some(&path),
            format!("the relocation did not only rename: {path} {problem}"),
        ));
    }
    Ok(out)
}

/// The names a manifest had before relocations moved its run: `path` itself, then its path
/// under each older name of a directory above it (`renamed`: new directory -> old), older
/// ones after, each once.
fn former_names(path: &str, renamed: &HashMap<String, String>) -> Vec<String> {
    let mut names = vec![path.to_string()];
    let mut i = 0;
    while i < names.len() && names.len() <= renamed.len() + 1 {
        let name = names[i].clone();
        for (at, _) in name.match_indices('/') {
            if let Some(old) = renamed.get(&name[..at]) {
                let former = format!("{old}{}", &name[at..]);
                if !names.contains(&former) {
                    names.push(former);
                }
            }
        }
        i += 1;
    }
    names
}

type RevisionAudit = (usize, Vec<Finding>, Vec<RunPair>, Vec<Drifted>);

#[allow(clippy::too_many_arguments)]
fn audit_revision(
    repo: &Repo,
    cfg: &Config,
    packs: &PackOrder,
    rev: CommitId,
    written: &HashMap<(String, String), (CommitId, Json)>,
    renamed: &HashMap<String, String>,
    shallow: Option<&Shallow>,
    sums: &HashMap<Oid, String>,
) -> Result<RevisionAudit, GitError> {
    let scan = scan_commit(repo, rev, cfg)?;
    let batch_paths: HashSet<&str> = written.keys().map(|(p, _)| p.as_str()).collect();
    let mut out = Vec::new();
    let mut drifted = Vec::new();
    let mut pack_order = packs.of(scan.manifests.iter().map(|m| m.blob));
    in_rounds(
        &scan.manifests,
        |round| pack_order.read(round, |m| repo.blob(m.blob, m.path.as_str())),
        |round, blobs| {
            round
                .par_iter()
                .zip(blobs)
                .map(|(m, bytes)| {
                    let current = Current {
                        path: m.path.as_str(),
                        bytes: &bytes,
                        checksum_after: sums.get(&m.blob).map(String::as_str),
                    };
                    audit_current(cfg, rev, &current, written, &batch_paths, renamed, shallow)
                })
                .collect()
        },
        |_, audited: Vec<(Vec<Finding>, Option<Drifted>)>| {
            for (f, d) in audited {
                out.extend(f);
                drifted.extend(d);
            }
            Ok::<(), GitError>(())
        },
    )?;
    for l in &scan.symlinks {
        out.push(finding(
            rev,
            Some(l.as_str()),
            "a symbolic link named like a manifest (links are never followed)",
        ));
    }
    Ok((scan.manifests.len(), out, scan.pairs(cfg), drifted))
}

/// A manifest at the audited revision, as read.
struct Current<'a> {
    path: &'a str,
    bytes: &'a [u8],
    /// Its `checksum_after`, when a batch's audit computed it for the same blob.
    checksum_after: Option<&'a str>,
}

/// One manifest at the audited revision: its findings, and the manifest when its content
/// drifted from its last history entry (attributed by [`attribute`]).
#[allow(clippy::too_many_arguments)]
fn audit_current(
    cfg: &Config,
    rev: CommitId,
    current: &Current<'_>,
    written: &HashMap<(String, String), (CommitId, Json)>,
    batch_paths: &HashSet<&str>,
    renamed: &HashMap<String, String>,
    shallow: Option<&Shallow>,
) -> (Vec<Finding>, Option<Drifted>) {
    let path = current.path;
    let mut out = Vec::new();
    let p = Some(path);
    let doc = match read_manifest(current.bytes) {
        Ok(d) => d,
        Err(e) => {
            out.push(finding(rev, p, format!("invalid manifest: {e}")));
            return (out, None);
        }
    };
    let job_id = doc.get("job_id").and_then(Json::as_str);
    let run_id = doc.get("run_id").and_then(Json::as_str);
    if let Some(problem) = cfg
        .layouts
        .path_problem(&cfg.artifacts_root, path, job_id, run_id)
    {
        out.push(finding(rev, p, problem));
    }
    let hist = history(&doc);
    // Which batch wrote each entry: the one whose parent is the entry's base_commit.
    let mut last_batch = None;
    for (i, e) in hist.iter().enumerate() {
        let Some(base) = s(e, "base_commit") else {
            continue;
        };
        let by = former_names(path, renamed)
            .into_iter()
            .find_map(|name| written.get(&(name, base.to_string())));
        match by {
            Some((b, we)) => {
                if !we.deep_eq(e) {
                    out.push(finding(rev, p, format!("history entry {} differs from the one batch {} wrote", i + 1, b.short())));
                }
                last_batch = Some(*b);
            }
            // Written by a batch beyond a shallow clone's boundary: not audited here.
            None if shallow.is_some_and(|s| s.beyond(base)) => {}
            None => out.push(finding(rev, p, format!("history entry {} (base_commit {}) was not written by any batch reachable from here", i + 1, &base[..base.len().min(12)]))),
        }
    }
    let drifted = match hist.last() {
        Some(last) => {
            let sum = match current.checksum_after {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(checksum_after(&doc)),
            };
            s(last, "checksum_after") != Some(sum.as_ref())
        }
        // No history although a batch wrote this manifest: its entries were removed.
        None => former_names(path, renamed)
            .iter()
            .any(|n| batch_paths.contains(n.as_str())),
    };
    let drifted = drifted.then(|| Drifted {
        path: path.to_string(),
        now: doc,
        last_batch,
    });
    (out, drifted)
}

/// A migration whose definition changed after batches applied it: the checksum at `rev`
/// differs from the one the batches recorded, and no `repair --accept` reachable from `rev`
/// accepted the new one. One finding per migration, naming its file and the batches.
fn audit_definitions(
    repo: &Repo,
    cfg: &Config,
    rev: CommitId,
    recs: &[Record],
    applied: &BTreeMap<String, BTreeMap<String, Vec<CommitId>>>,
) -> Vec<Finding> {
    if applied.is_empty() {
        return Vec::new();
    }
    let loaded = match load_registry(repo, cfg, Source::Commit(rev)) {
        Ok(l) => l,
        Err(e) => {
            return vec![finding(
                rev,
                None,
                format!("the migration definitions at this revision cannot be loaded: {e}"),
            )]
        }
    };
    let accepted: std::collections::HashSet<(String, String)> = recs
        .iter()
        .filter_map(|r| match &r.kind {
            RecordKind::Accept { accepted } => Some(accepted.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut out = Vec::new();
    for (step, sums) in applied {
        let current = loaded
            .registry
            .migrations()
            .into_iter()
            .find(|m| m.id().to_string() == *step)
            .map(|m| (m.checksum(), m.source().map(str::to_string)));
        let Some((now, file)) = current else {
            let batches: Vec<CommitId> = sums.values().flatten().copied().collect();
            let names: Vec<String> = batches.iter().map(|c| c.short()).collect();
            out.push(finding(batches[0], None, format!("migration {step}, applied by batch(es) {}, is no longer defined at this revision", names.join(", "))));
            continue;
        };
        if accepted.contains(&(step.clone(), now.clone())) {
            continue;
        }
        let changed: Vec<(&String, &Vec<CommitId>)> =
            sums.iter().filter(|(sum, _)| **sum != now).collect();
        if changed.is_empty() {
            continue;
        }
        let batches: Vec<CommitId> = changed
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let names: Vec<String> = batches.iter().map(|c| c.short()).collect();
        let recorded: Vec<&str> = changed.iter().map(|(s, _)| s.as_str()).collect();
        out.push(Finding {
            commit: batches[0],
            commits: Vec::new(),
            path: file.clone(),
            problem: format!(
                "migration {step} changed after batch(es) {} applied it (recorded {}, now {now}); if the change is intended, record it with `artifact-migrate repair --accept {step}`",
                names.join(", "),
                recorded.join(", ")
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_found_under_the_names_its_run_had() {
        let renamed: HashMap<String, String> = [
            ("artifacts/j/r".to_string(), "artifacts/runs/r".to_string()),
            (
                "artifacts/runs/r".to_string(),
                "artifacts/old/r".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            former_names("artifacts/j/r/manifest.json", &renamed),
            vec![
                "artifacts/j/r/manifest.json",
                "artifacts/runs/r/manifest.json",
                "artifacts/old/r/manifest.json"
            ]
        );
        assert_eq!(
            former_names("artifacts/j/rx/manifest.json", &renamed),
            vec!["artifacts/j/rx/manifest.json"]
        );
    }
}
