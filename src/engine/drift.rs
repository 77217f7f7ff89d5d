//! Drift an auditor can read: every change to a manifest since its last batch, attributed
//! to the commits that made it.
//!
//! `verify` hands over the manifests at the audited revision whose content no longer
//! matches their last history entry ([`Drifted`]). One walk along first parents from the
//! revision compares, for each drifted path still pending, its blob in each commit's tree
//! with its first parent's (a lookup per path, not a whole-tree diff) and collects the
//! commits that changed it, until the path reaches the commit that last
//! recorded it: a batch or rollback that changed it, or the state the last batch wrote
//! (a batch merged in from another branch is found that way too). Relocations rename the
//! path as the walk passes them. The manifest as recorded is then compared with the
//! manifest now: a protected field changed or removed, or a history entry altered or
//! removed, is tampering ([`Finding`]); any other change is a [`Warning`] of kind `drift`
//! naming the members changed and the commits. [`strict`] makes warnings findings.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::config::Config;
use crate::engine::invariants::{check_history_kept, check_protected, HISTORY_KEY};
use crate::engine::migrate::read_manifest;
use crate::engine::verify::{Finding, VerifyReport};
use crate::git::history::{Record, RecordKind};
use crate::git::message::RelocationMessage;
use crate::git::shallow::Shallow;
use crate::git::{GitError, Repo};
use crate::ids::CommitId;
use crate::manifest::Json;

/// A commit that changed a manifest: serialized as an element of `commits[]` in
/// `verify --json`'s findings and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub commit: CommitId,
    /// `Name <email>`.
    pub author: String,
    /// The author date, RFC 3339 in the author's offset.
    pub date: String,
    pub subject: String,
}

/// A change that is not tampering: serialized as an element of `verify --json`'s
/// `warnings[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `drift`.
    pub kind: &'static str,
    /// The newest commit that changed the manifest (the audited revision when none is known).
    pub commit: CommitId,
    pub path: String,
    pub problem: String,
    /// The tool commit whose content the change is measured from.
    pub since: Option<CommitId>,
    /// The commits that changed the manifest since, newest first.
    pub commits: Vec<Attribution>,
}

/// A manifest at the audited revision whose content differs from what its last history
/// entry recorded (or whose history is gone although a batch wrote it).
#[derive(Debug, Clone)]
pub struct Drifted {
    pub path: String,
    pub now: Json,
    /// The batch that wrote its last history entry, when one is known.
    pub last_batch: Option<CommitId>,
}

/// Where a drifted path's walk ended.
#[derive(Default)]
struct Trail {
    /// The name the path has at the commit the walk is at.
    name: String,
    commits: Vec<Attribution>,
    /// The tool commit and blob the change is measured from.
    reference: Option<(CommitId, git2::Oid, &'static str)>,
    /// The blob the last batch wrote: the walk stops when a commit's parent holds it.
    recorded: Option<git2::Oid>,
    /// The walk reached a shallow clone's boundary or the root before the reference.
    cut_short: bool,
}

fn attribution(c: &git2::Commit<'_>) -> Attribution {
    let a = c.author();
    let when = a.when();
    let date = chrono::FixedOffset::east_opt(when.offset_minutes() * 60)
        .and_then(|o| {
            chrono::DateTime::from_timestamp(when.seconds(), 0)
                .map(|d| d.with_timezone(&o).to_rfc3339())
        })
        .unwrap_or_default();
    Attribution {
        commit: CommitId(c.id()),
        author: format!(
            "{} <{}>",
            String::from_utf8_lossy(a.name_bytes()),
            String::from_utf8_lossy(a.email_bytes())
        ),
        date,
        subject: String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).into_owned(),
    }
}

/// The blob at `path` in `commit`'s tree.
fn blob_at(repo: &Repo, commit: CommitId, path: &str) -> Option<git2::Oid> {
    entry_id(&repo.tree_of(commit).ok()?, path)
}

/// The id of the entry at `path` in a tree.
fn entry_id(tree: &git2::Tree<'_>, path: &str) -> Option<git2::Oid> {
    tree.get_path(std::path::Path::new(path))
        .ok()
        .map(|e| e.id())
}

/// `path`'s name before a relocation that moved directory `from` to `to`.
fn before_move(path: &str, moves: &[(String, String)]) -> Option<String> {
    moves.iter().find_map(|(from, to)| {
        path.strip_prefix(to.as_str())
            .filter(|rest| rest.starts_with('/'))
            .map(|rest| format!("{from}{rest}"))
    })
}

/// Attributes each drifted manifest's change to its commits and classifies it: tampering
/// findings and drift warnings. `names_at` gives, for a manifest and a batch, the path it
/// had at that batch (through relocations).
pub fn attribute(
    repo: &Repo,
    cfg: &Config,
    rev: CommitId,
    recs: &[Record],
    shallow: Option<&Shallow>,
    drifted: Vec<Drifted>,
    names_at: &dyn Fn(&str, CommitId) -> Option<String>,
) -> Result<(Vec<Finding>, Vec<Warning>), GitError> {
    if drifted.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let kinds: HashMap<CommitId, &Record> = recs.iter().map(|r| (r.commit, r)).collect();
    let mut trails: Vec<Trail> = drifted
        .iter()
        .map(|d| Trail {
            name: d.path.clone(),
            recorded: d
                .last_batch
                .and_then(|b| names_at(&d.path, b).and_then(|name| blob_at(repo, b, &name))),
            ..Trail::default()
        })
        .collect();
    // Pending paths by their name at the commit the walk is at.
    let mut pending: HashMap<String, usize> = trails
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut at = rev;
    while !pending.is_empty() {
        let commit = repo
            .git
            .find_commit(at.0)
            .map_err(GitError::git(format!("read commit {at}")))?;
        let cut = shallow.is_some_and(|s| s.cuts(at));
        let parent = if cut {
            None
        } else {
            commit.parent_id(0).ok().map(CommitId)
        };
        let record = kinds.get(&at).copied();
        let tree = repo.tree_of(at)?;
        let parent_tree = parent.map(|p| repo.tree_of(p)).transpose()?;
        // Only the pending paths are looked up (a whole-tree diff of a batch reads every
        // run's tree): (path, blob before, blob after) where they differ.
        let changes: Vec<(String, Option<git2::Oid>, git2::Oid)> = pending
            .keys()
            .filter_map(|path| {
                let now = entry_id(&tree, path)?;
                let before = parent_tree.as_ref().and_then(|t| entry_id(t, path));
                (before != Some(now)).then(|| (path.clone(), before, now))
            })
            .collect();
        if let Some(r) = record.filter(|r| r.kind == RecordKind::Relocation) {
            // A relocation only renames (audited elsewhere): follow each path to its old name.
            let moves = RelocationMessage::parse_moves(&r.message);
            let renamed: Vec<(String, usize)> = pending.drain().collect();
            for (name, i) in renamed {
                let old = before_move(&name, &moves).unwrap_or(name);
                trails[i].name = old.clone();
                pending.insert(old, i);
            }
        } else {
            for (path, old_id, new_id) in changes {
                let Some(&i) = pending.get(&path) else {
                    continue;
                };
                let t = &mut trails[i];
                let tool = record.and_then(|r| match r.kind {
                    RecordKind::Batch => Some("batch"),
                    RecordKind::Rollback { .. } => Some("rollback"),
                    _ => None,
                });
                if let Some(kind) = tool {
                    t.reference = Some((at, new_id, kind));
                    pending.remove(&path);
                    continue;
                }
                t.commits.push(attribution(&commit));
                // The last batch came in through another parent of this merge: along first
                // parents there is nothing more to attribute.
                let batch_elsewhere = match (drifted[i].last_batch, parent) {
                    (Some(b), Some(p)) if p != b => {
                        !repo.git.graph_descendant_of(p.0, b.0).unwrap_or(true)
                    }
                    _ => false,
                };
                if batch_elsewhere {
                    t.reference = drifted[i]
                        .last_batch
                        .zip(t.recorded)
                        .map(|(b, r)| (b, r, "batch"));
                    pending.remove(&path);
                    continue;
                }
                match old_id {
                    // The file was created here: there is nothing older to follow.
                    None => {
                        pending.remove(&path);
                        t.cut_short = true;
                    }
                    // Before this commit the file held what the last batch wrote.
                    Some(old) if t.recorded == Some(old) => {
                        t.reference = drifted[i].last_batch.map(|b| (b, old, "batch"));
                        pending.remove(&path);
                    }
                    Some(_) => {}
                }
            }
        }
        match parent {
            Some(p) => at = p,
            None => {
                for (_, i) in pending.drain() {
                    trails[i].cut_short = true;
                }
            }
        }
    }
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    for (d, mut t) in drifted.into_iter().zip(trails) {
        if t.reference.is_none() {
            // The walk did not reach the batch (a shallow clone, or history rewritten):
            // measure from what the last batch wrote, when the clone holds it.
            t.reference = d
                .last_batch
                .and_then(|b| t.recorded.map(|blob| (b, blob, "batch")));
        }
        classify(repo, cfg, rev, shallow, d, t, &mut findings, &mut warnings)?;
    }
    Ok((findings, warnings))
}

fn list(commits: &[Attribution]) -> String {
    if commits.is_empty() {
        return "no commit along first parents".to_string();
    }
    let each: Vec<String> = commits
        .iter()
        .map(|c| {
            format!(
                "{} ({}, {}, {:?})",
                c.commit.short(),
                c.author,
                c.date,
                c.subject
            )
        })
        .collect();
    format!("{} commit(s): {}", commits.len(), each.join("; "))
}

/// The top-level members that differ between two documents (history aside), sorted.
fn changed_members(before: &Json, now: &Json) -> Vec<String> {
    let (Json::Object(b), Json::Object(n)) = (before, now) else {
        return vec!["the document".to_string()];
    };
    let mut keys: BTreeSet<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(n.iter().map(|(k, _)| k.as_str()));
    keys.into_iter()
        .filter(|k| *k != HISTORY_KEY)
        .filter(|k| match (before.get(k), now.get(k)) {
            (Some(x), Some(y)) => !x.deep_eq(y),
            _ => true,
        })
        .map(str::to_string)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn classify(
    repo: &Repo,
    cfg: &Config,
    rev: CommitId,
    shallow: Option<&Shallow>,
    d: Drifted,
    t: Trail,
    findings: &mut Vec<Finding>,
    warnings: &mut Vec<Warning>,
) -> Result<(), GitError> {
    let newest = t.commits.first().map_or(rev, |c| c.commit);
    let by = list(&t.commits);
    let Some((since, blob, kind)) = t.reference else {
        let why = if shallow.is_some() && t.cut_short {
            "history stops at the shallow boundary before it"
        } else {
            "no batch along first parents holds it"
        };
        findings.push(Finding {
            commit: newest,
            path: Some(d.path),
            problem: format!(
                "drift: the content changed since its last recorded migration and the manifest as recorded cannot be found ({why}); changed by {by}"
            ),
            commits: t.commits,
        });
        return Ok(());
    };
    let bytes = repo.blob(blob, &d.path)?;
    let before = match read_manifest(&bytes) {
        Ok(doc) => doc,
        Err(e) => {
            findings.push(Finding {
                commit: newest,
                path: Some(d.path),
                problem: format!(
                    "drift: the manifest as batch {} recorded it does not parse ({e})",
                    since.short()
                ),
                commits: t.commits,
            });
            return Ok(());
        }
    };
    let tamper = check_protected(&before, &d.now, &cfg.protected)
        .map_err(|v| format!("protected field {:?} {}", v.field, v.how))
        .and_then(|()| {
            check_history_kept(&before, &d.now)
                .map_err(|_| "a history entry was altered or removed".to_string())
        });
    if let Err(what) = tamper {
        findings.push(Finding {
            commit: newest,
            path: Some(d.path),
            problem: format!(
                "tampering: {what} since {} {}; changed by {by}",
                kind,
                since.short()
            ),
            commits: t.commits,
        });
        return Ok(());
    }
    let members = changed_members(&before, &d.now);
    if members.is_empty() && t.commits.is_empty() {
        // Nothing changed since the batch: its own record is wrong, which the batch's audit
        // reports.
        return Ok(());
    }
    let what = if members.is_empty() {
        "the formatting".to_string()
    } else {
        members.join(", ")
    };
    warnings.push(Warning {
        kind: "drift",
        commit: newest,
        path: d.path,
        problem: format!(
            "drift: {what} changed since {} {}; changed by {by}",
            kind,
            since.short()
        ),
        since: Some(since),
        commits: t.commits,
    });
    Ok(())
}

/// `verify --strict`: every warning becomes a finding, so the audit fails.
pub fn strict(report: &mut VerifyReport) {
    for w in report.warnings.drain(..) {
        report.findings.push(Finding {
            commit: w.commit,
            path: Some(w.path),
            problem: format!("{} (--strict)", w.problem),
            commits: w.commits,
        });
    }
    report.ok = report.findings.is_empty();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Json {
        read_manifest(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_members_changed_leave_history_aside() {
        let before = doc(r#"{"a": 1, "status": "ok", "migration_history": []}"#);
        let now = doc(r#"{"a": 1, "status": "failed", "extra": true, "migration_history": [1]}"#);
        assert_eq!(changed_members(&before, &now), vec!["extra", "status"]);
        assert!(changed_members(&before, &before).is_empty());
    }

    #[test]
    fn a_path_is_followed_back_through_a_move() {
        let moves = vec![("artifacts/runs/r".to_string(), "artifacts/j/r".to_string())];
        assert_eq!(
            before_move("artifacts/j/r/manifest.json", &moves).as_deref(),
            Some("artifacts/runs/r/manifest.json")
        );
        assert_eq!(before_move("artifacts/j/rx/manifest.json", &moves), None);
    }
}
