//! The stress run (issue 14, part 4): concurrent applies, rollbacks, index updates, index
//! readers, `serve` readers and plain `git commit`s on one repository, bounded in count and
//! time.
//!
//! Each worker is a thread that runs the real binary (or plain git) in a loop until it has
//! done its count or the time is up. What must hold:
//! - every HTTP answer of `serve` is 200 and consistent in itself (one commit's numbers);
//! - every `artifact-migrate` command either succeeded (exit 0) or refused with exit 3
//!   (the branch moved, the index is busy, nothing left to roll back); anything else fails
//!   the test with the command's transcript;
//! - nothing is lost: every commit a command or a person made is an ancestor of the final
//!   HEAD, and every run a person committed is in its tree;
//! - at the end, once one more `apply` has run: `verify` clean, `git fsck --strict` clean,
//!   a clean `git status`, no journal, no lock file, and the index equal to one rebuilt from
//!   nothing.
//!
//! `ARTIFACT_MIGRATE_STRESS_SECS` (default 20) and `ARTIFACT_MIGRATE_STRESS_OPS` (default 40
//! per worker) bound the run; the figures of a run are printed as one `stress:` line
//! (docs/reliability.md).

mod common;
mod common_audit;
mod common_serve;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use common_audit::*;
use common_serve::Server;

/// The first of the distinct commit dates the commands get (one per command).
const EPOCH_BASE: u64 = 1_767_225_600;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A 1.0.0 manifest of a run a person adds while everything else runs.
fn person_run(i: u64) -> (String, String) {
    let path = format!("artifacts/job-s/stress-{i:04}/manifest.json");
    let body = format!(
        "{{\n  \"schema_version\": \"1.0.0\",\n  \"run_id\": \"stress-{i:04}\",\n  \"job_ref\": \"jobs/job-s/brief.yaml\",\n  \"status\": \"succeeded\"\n}}\n"
    );
    (path, body)
}

/// What the workers saw: outcomes per command and exit code, and every commit made.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, u64>,
    /// Commits made by the tool's commands (apply, rollback) and by the person.
    commits: Vec<String>,
    /// Manifests the person committed.
    person_paths: Vec<String>,
    /// Transcripts of commands that neither succeeded nor refused.
    failures: Vec<String>,
}

struct Stress<'a> {
    repo: &'a TestRepo,
    deadline: Instant,
    ops: u64,
    epoch: AtomicU64,
    tally: Mutex<Tally>,
}

impl Stress<'_> {
    fn next_epoch(&self) -> String {
        (EPOCH_BASE + self.epoch.fetch_add(1, Ordering::SeqCst)).to_string()
    }

    fn count(&self, what: &str) {
        let mut t = self.tally.lock().unwrap();
        *t.outcomes.entry(what.to_string()).or_default() += 1;
    }

    /// Runs the tool; exit 0 and 3 are fine, anything else is recorded as a failure.
    fn tool(&self, args: &[&str]) -> Option<serde_json::Value> {
        let epoch = self.next_epoch();
        let run = cli_env(self.repo, &[("SOURCE_DATE_EPOCH", &epoch)], args);
        self.count(&format!("{} exit {}", args[0], run.code));
        match run.code {
            0 => serde_json::from_str(&run.stdout).ok(),
            3 => None,
            _ => {
                self.tally.lock().unwrap().failures.push(run.to_string());
                None
            }
        }
    }

    /// Loops `step` until the worker's count is done or the time is up.
    fn worker(&self, mut step: impl FnMut(u64)) {
        for i in 0..self.ops {
            if Instant::now() >= self.deadline {
                break;
            }
            step(i);
        }
    }

    fn applier(&self) {
        self.worker(|_| {
            if let Some(r) = self.tool(&["apply", "--json"]) {
                if let Some(c) = r["commit"].as_str() {
                    self.tally.lock().unwrap().commits.push(c.to_string());
                }
            }
        });
    }

    fn roller(&self) {
        self.worker(|_| {
            if let Some(r) = self.tool(&["rollback", "--json"]) {
                if let Some(c) = r["commit"].as_str() {
                    self.tally.lock().unwrap().commits.push(c.to_string());
                }
            }
        });
    }

    fn indexer(&self) {
        self.worker(|_| {
            self.tool(&["index", "--json"]);
        });
    }

    fn reader(&self) {
        self.worker(|_| {
            self.tool(&["runs", "--json"]);
            self.tool(&["status", "--json"]);
        });
    }

    /// Reads the server while everything moves under it: every answer is 200, and the
    /// version counts of one answer add up (they come from one commit).
    fn http_reader(&self, server: &Server) {
        self.worker(|_| {
            for target in ["/schemas/versions", "/migrations?limit=5"] {
                let r = server.get(target);
                let path = target.split('?').next().unwrap_or(target);
                self.count(&format!("GET {path} {}", r.status));
                let body: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
                let consistent = body.as_ref().is_some_and(|v| {
                    if path != "/schemas/versions" {
                        return v.is_object();
                    }
                    let sum: u64 = v["versions"]
                        .as_object()
                        .map(|m| m.values().filter_map(|n| n.as_u64()).sum())
                        .unwrap_or(0);
                    v["total"].as_u64() == Some(sum)
                        && v["pending"].as_u64().is_some_and(|p| p <= sum)
                        && v["commit"].is_string()
                });
                if r.status != 200 || !consistent {
                    self.tally.lock().unwrap().failures.push(format!(
                        "GET {target}: {} {}",
                        r.status,
                        r.text()
                    ));
                }
            }
        });
    }

    /// A person adding runs with plain git: `git add` and `git commit`, tried again while
    /// another command holds `index.lock` (git's own refusal).
    fn person(&self, worker: u64) {
        self.worker(|i| {
            let n = worker * 1000 + i;
            let (path, body) = person_run(n);
            self.repo.file(&path, body.as_str());
            let epoch = self.next_epoch();
            let mut tries = 0;
            loop {
                tries += 1;
                let mut add = self.repo.git_command();
                add.args(["add", "--", &path]);
                let (added, add_out) = outcome(&mut add);
                let mut commit = self.repo.git_command();
                commit
                    .env("GIT_AUTHOR_DATE", format!("@{epoch} +0000"))
                    .env("GIT_COMMITTER_DATE", format!("@{epoch} +0000"))
                    .args([
                        "commit",
                        "-q",
                        "-m",
                        &format!("add run stress-{n:04}"),
                        "--",
                        &path,
                    ]);
                let (committed, commit_out) = if added {
                    outcome(&mut commit)
                } else {
                    (false, add_out)
                };
                if committed {
                    // The commit that added the run (HEAD may have moved on already).
                    let head = self
                        .repo
                        .git([
                            "log",
                            "-1",
                            "--format=%H",
                            "--diff-filter=A",
                            "HEAD",
                            "--",
                            &path,
                        ])
                        .trim()
                        .to_string();
                    let mut t = self.tally.lock().unwrap();
                    *t.outcomes.entry("git commit ok".into()).or_default() += 1;
                    t.commits.push(head);
                    t.person_paths.push(path.clone());
                    break;
                }
                // git's own refusals, which a person meets and answers by trying again:
                // another process holds `index.lock` or the ref, or `git gc --auto` (which
                // git commit starts once the batches' packs pass gc.autoPackLimit) removed
                // an empty objects/xx/ directory as git was writing a loose object there.
                let gc_race = commit_out.contains("unable to create temporary file");
                self.count(if gc_race {
                    "git commit refused (git gc --auto race)"
                } else {
                    "git commit refused"
                });
                if !commit_out.contains("index.lock")
                    && !commit_out.contains("cannot lock ref")
                    && !gc_race
                {
                    self.tally.lock().unwrap().failures.push(format!(
                        "git add/commit of {path} (try {tries}):\n{commit_out}"
                    ));
                    break;
                }
                if tries >= 100 {
                    self.tally
                        .lock()
                        .unwrap()
                        .failures
                        .push(format!("git commit of {path} never got index.lock"));
                    break;
                }
                std::thread::yield_now();
            }
        });
    }
}

#[test]
fn concurrent_applies_rollbacks_index_updates_readers_and_git_commits_lose_nothing() {
    let repo = five_runs();
    // `git commit` starts `git gc --auto` once the batches' packs pass gc.autoPackLimit: in
    // the foreground, so that nothing this test starts outlives it.
    repo.git(["config", "gc.autoDetach", "false"]);
    repo.git(["config", "maintenance.autoDetach", "false"]);
    // A run for each person step to start from: more manifests, more work per batch.
    for i in 0..20 {
        let (path, body) = person_run(9000 + i);
        repo.file(&path, body.as_str());
    }
    repo.commit("twenty more runs");
    let first = repo.head();
    repo.cli(["index"]).expect_code(0);

    let secs = env_or("ARTIFACT_MIGRATE_STRESS_SECS", 20);
    let ops = env_or("ARTIFACT_MIGRATE_STRESS_OPS", 40);
    let stress = Stress {
        repo: &repo,
        deadline: Instant::now() + Duration::from_secs(secs),
        ops,
        epoch: AtomicU64::new(0),
        tally: Mutex::new(Tally::default()),
    };
    let server = Server::start(&repo);
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| stress.http_reader(&server));
        s.spawn(|| stress.applier());
        s.spawn(|| stress.applier());
        s.spawn(|| stress.roller());
        s.spawn(|| stress.indexer());
        s.spawn(|| stress.reader());
        s.spawn(|| stress.person(1));
    });
    let took = started.elapsed();
    let stopped = server.stop();
    let tally = stress.tally.into_inner().unwrap();
    let summary: Vec<String> = tally
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    eprintln!(
        "stress: {:.1} s, at most {ops} per worker within {secs} s; {}; {} commit(s) made",
        took.as_secs_f64(),
        summary.join(", "),
        tally.commits.len()
    );
    assert!(
        tally.failures.is_empty(),
        "commands that neither succeeded nor refused with exit 3:\n{}",
        tally.failures.join("\n----\n")
    );
    let total: u64 = tally.outcomes.values().sum();
    assert!(total >= 7, "every worker ran: {summary:?}");
    assert!(
        !stopped.stderr.contains("panicked"),
        "the server after the run:\n{stopped}"
    );

    // Nothing lost: every commit made is in the final history, every run in the tree.
    // git's own race, not the tool's: `git commit -- PATH` reads the index before it takes
    // `index.lock` and writes back what it read, so an index entry another process wrote
    // in between (a landing's, here) can come back stale. Such an entry differs from HEAD
    // while the file on disk is HEAD's, byte for byte; `git reset -- PATH` is the mend.
    // Anything else dirty fails below.
    let mut stale_entries = 0;
    for line in repo.git(["status", "--porcelain"]).lines() {
        let p = line.get(3..).unwrap_or_default();
        if line.starts_with('M') && repo.file_bytes(p) == repo.show("HEAD", p) {
            repo.git(["reset", "-q", "--", p]);
            stale_entries += 1;
        }
    }
    eprintln!("stress: {stale_entries} index entr(ies) left stale by git commit --only");
    repo.cli(["apply"]).expect_code(0);
    let head = repo.head();
    for c in tally.commits.iter().chain(std::iter::once(&first)) {
        let mut is = repo.git_command();
        is.args(["merge-base", "--is-ancestor", c, &head]);
        let (ok, out) = outcome(&mut is);
        assert!(ok, "commit {c} is not in the history of HEAD {head}: {out}");
    }
    let tree = repo.ls_tree("HEAD");
    for p in tally.person_paths.iter().chain(five_paths().iter()) {
        assert!(tree.contains_key(p), "{p} is missing from HEAD's tree");
    }

    // And everything is as one careful run at a time would leave it.
    let verify = repo.cli(["verify", "--json"]);
    verify.expect_code(0);
    assert_fsck_clean(&repo);
    assert_eq!(repo.porcelain(), "", "git status is clean");
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    assert_eq!(lock_files(&repo), Vec::<std::path::PathBuf>::new());
    let status = repo.cli(["status", "--json"]);
    status.expect_code(0);
    assert_eq!(status.json()["pending"], 0, "{status}");

    let index = repo.cli(["index", "--json"]);
    index.expect_code(0);
    let reference = repo.copy();
    let rebuilt = reference.cli(["index", "--rebuild", "--json"]);
    rebuilt.expect_code(0);
    let rows = |r: &TestRepo| {
        let out = r.cli(["runs", "--json"]);
        out.expect_code(0);
        let mut v = out.json();
        strip_indexed_at(&mut v);
        v
    };
    assert_eq!(rows(&repo), rows(&reference), "incremental index = rebuilt");
    for key in ["commit", "manifests", "invalid", "batches"] {
        assert_eq!(index.json()[key], rebuilt.json()[key], "{key}");
    }
}

/// `indexed_at` is when a row was written: the one column an incremental index and a
/// rebuilt one may differ in.
fn strip_indexed_at(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("indexed_at");
            m.values_mut().for_each(strip_indexed_at);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_indexed_at),
        _ => {}
    }
}
