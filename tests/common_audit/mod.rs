//! Helpers for the rollback, verify, crash and race tests, on top of `common::TestRepo`:
//! a small repository of five manifests that all need migrating, a way to start the binary
//! as a child process and follow its stderr line by line (fault and pause points), and
//! checks of a repository's state as plain git sees it.
//!
//! A test file that uses it declares `mod common;` and `mod common_audit;`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::thread::JoinHandle;

use crate::common::*;

/// The 1.0.0 sample (one line) at its canonical place.
pub fn p_sample100() -> String {
    manifest_path(&format!("{JOB}/{RUN_100}"))
}
/// The 1.1.0 sample (2-space, sorted keys) at its canonical place.
pub fn p_sample110() -> String {
    manifest_path(&format!("{JOB}/{RUN_110}"))
}
pub const P_FOUR: &str = "artifacts/job-x/run-4sp/manifest.json";
pub const P_CRLF: &str = "artifacts/job-x/run-crlf/manifest.json";
pub const P_ONELINE: &str = "artifacts/job-y/run-1line/manifest.json";
pub const P_INPUT: &str = "artifacts/job-x/run-4sp/inputs/brief.resolved.json";
pub const P_OUTPUT: &str = "artifacts/job-x/run-4sp/outputs/result.md";

const FOUR_SPACES: &str = "{\n    \"schema_version\": \"1.0.0\",\n    \"run_id\": \"run-4sp\",\n    \"job_ref\": \"jobs/job-x/brief.yaml\",\n    \"status\": \"succeeded\",\n    \"meta\": {\n        \"note\": \"four spaces\"\n    }\n}\n";
const CRLF: &str = "{\r\n  \"run_id\": \"run-crlf\",\r\n  \"status\": \"succeeded\"\r\n}\r\n";
const ONE_LINE: &str =
    "{\"run_id\":\"run-1line\",\"status\":\"failed\",\"error\":{\"message\":\"boom\"}}";

/// Every manifest of [`five_runs`], sorted; all five need migrating to 1.2.0 (four are
/// 1.0.0, one is 1.1.0), four of them to 1.1.0.
pub fn five_paths() -> Vec<String> {
    let mut v = vec![
        p_sample100(),
        p_sample110(),
        P_FOUR.to_string(),
        P_CRLF.to_string(),
        P_ONELINE.to_string(),
    ];
    v.sort();
    v
}

/// A repository of five manifests in different styles (one-line sample, 2-space sorted
/// sample, 4-space, CRLF without `schema_version`, minified without trailing newline), an
/// input snapshot, an output and a README, committed as one commit on `main`.
pub fn five_runs() -> TestRepo {
    five_runs_in(&std::env::temp_dir())
}

/// [`five_runs`] in a new directory under `parent`.
pub fn five_runs_in(parent: &Path) -> TestRepo {
    let repo = TestRepo::new_in(parent);
    repo.manifest(&format!("{JOB}/{RUN_100}"), SAMPLE_V100)
        .manifest(&format!("{JOB}/{RUN_110}"), SAMPLE_V110)
        .file(P_FOUR, FOUR_SPACES)
        .file(P_CRLF, CRLF)
        .file(P_ONELINE, ONE_LINE)
        .file(P_INPUT, "{\"brief\": \"spring launch\"}\n")
        .file(P_OUTPUT, "result\n")
        .file("README.md", "artifacts\n")
        .commit("record five runs");
    repo
}

/// The path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_artifact-migrate")
}

/// The binary as a `std::process::Command`, with the same environment as
/// `TestRepo::cli_command` (fixed identity, `SOURCE_DATE_EPOCH`, empty `HOME`, no system
/// config, no colour) and `-C <repo>`.
pub fn std_cli(repo: &TestRepo) -> Command {
    let mut cmd = Command::new(bin());
    isolate(&mut cmd, repo.home());
    // Fault injection and thread counts only where a test asks for them.
    for var in [
        "ARTIFACT_MIGRATE_FAULT",
        "ARTIFACT_MIGRATE_PAUSE",
        "RAYON_NUM_THREADS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("SOURCE_DATE_EPOCH", EPOCH)
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
        .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
        .current_dir(repo.home())
        .arg("-C")
        .arg(repo.path())
        .stdin(Stdio::null());
    cmd
}

/// Runs the binary with extra environment variables to completion.
pub fn cli_env<I, S>(repo: &TestRepo, env: &[(&str, &str)], args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = repo.cli_command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    repo.run(cmd, args)
}

/// A running child process of the binary whose stderr is read line by line.
pub struct Spawned {
    pub args: Vec<String>,
    child: Child,
    stderr: BufReader<ChildStderr>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    /// The stderr lines read so far.
    pub seen: Vec<String>,
}

/// Starts `artifact-migrate -C <repo> ARGS` with `env` on top of the test environment.
pub fn spawn(repo: &TestRepo, env: &[(&str, &str)], args: &[&str]) -> Spawned {
    let mut cmd = std_cli(repo);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start artifact-migrate");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut out = child.stdout.take().expect("stdout");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    Spawned {
        args: args.iter().map(|s| s.to_string()).collect(),
        child,
        stderr,
        stdout: Some(stdout),
        seen: Vec::new(),
    }
}

impl Spawned {
    /// Reads stderr until a line equal to `line` arrives (true) or stderr closes (false:
    /// the process ended without reaching it). Blocks on the pipe: no sleeping, no polling.
    pub fn wait_for_line(&mut self, line: &str) -> bool {
        self.wait_until(|l| l == line)
    }

    /// Reads stderr until a line starting with `prefix` arrives (true) or stderr closes.
    pub fn wait_for_prefix(&mut self, prefix: &str) -> bool {
        self.wait_until(|l| l.starts_with(prefix))
    }

    fn wait_until(&mut self, hit: impl Fn(&str) -> bool) -> bool {
        loop {
            let mut buf = String::new();
            match self.stderr.read_line(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {
                    let l = buf.trim_end_matches(['\n', '\r']).to_string();
                    let found = hit(&l);
                    self.seen.push(l);
                    if found {
                        return true;
                    }
                }
            }
        }
    }

    /// Like [`Spawned::wait_for_line`], but panics (after reaping the process) with what it
    /// printed when the line never comes.
    #[track_caller]
    pub fn expect_line(&mut self, line: &str) {
        if !self.wait_for_line(line) {
            let _ = self.child.kill();
            let status = self.child.wait().expect("wait");
            let stdout = self
                .stdout
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default();
            panic!(
                "artifact-migrate {:?} ended ({status}) without printing {line:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.args,
                String::from_utf8_lossy(&stdout),
                self.seen.join("\n")
            );
        }
    }

    /// Sends SIGKILL and reaps the process (so its pid is gone before the next command).
    pub fn kill(mut self) {
        self.child.kill().expect("send SIGKILL");
        let status = self.child.wait().expect("wait for the killed process");
        assert!(
            status.code().is_none(),
            "the process exited by itself ({status}) instead of being killed"
        );
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
    }

    /// Sends a signal by name (`INT`, `TERM`) with kill(1).
    pub fn send(&self, signal: &str) {
        let st = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -s {signal} failed");
    }

    /// Waits for the process to end and returns everything it printed.
    pub fn finish(self) -> Run {
        self.finish_status().0
    }

    /// Like [`Spawned::finish`], with how the process ended.
    pub fn finish_status(mut self) -> (Run, std::process::ExitStatus) {
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait for artifact-migrate");
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let mut stderr = self.seen.join("\n");
        if !stderr.is_empty() {
            stderr.push('\n');
        }
        stderr.push_str(&rest);
        let run = Run {
            args: self.args.clone(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
            code: status.code().unwrap_or(-1),
        };
        (run, status)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A test that panicked half-way must not leave a hanging process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `git fsck --strict` finds nothing (no output at all, exit 0).
#[track_caller]
pub fn assert_fsck_clean(repo: &TestRepo) {
    let out = repo
        .git_command()
        .args(["fsck", "--strict", "--no-progress", "--no-dangling"])
        .output()
        .expect("run git fsck");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "git fsck --strict is not clean:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tree id of a revision.
pub fn tree(repo: &TestRepo, rev: &str) -> String {
    repo.git(["rev-parse", &format!("{rev}^{{tree}}")])
        .trim()
        .to_string()
}

/// `git ls-files --stage` (the index entries: mode, blob, stage, path).
pub fn index_entries(repo: &TestRepo) -> String {
    repo.git(["ls-files", "--stage"])
}

/// The journals (and half-written temporary files) in `.git/artifact-migrate/`, sorted;
/// the version cache, the SQLite index and the working-tree lock beside them are not
/// journals.
pub fn journal_files(repo: &TestRepo) -> Vec<String> {
    let dir = repo.git_dir().join("artifact-migrate");
    let mut v: Vec<String> = match fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "versions" && n != "worktree.flock" && !n.starts_with("index.sqlite"))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Lock files git or the tool could leave behind.
pub fn lock_files(repo: &TestRepo) -> Vec<PathBuf> {
    let mut out = Vec::new();
    find_locks(&repo.git_dir(), &mut out);
    out
}

fn find_locks(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd {
        let e = e.expect("entry");
        let p = e.path();
        if e.file_type().expect("type").is_dir() {
            if e.file_name() != "objects" {
                find_locks(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "lock") {
            out.push(p);
        }
    }
}

/// Files in the working tree that are neither tracked nor expected: temporary files the
/// tool writes beside a manifest (`.manifest.json.artifact-migrate-<pid>.tmp`).
pub fn stray_tmp_files(repo: &TestRepo) -> Vec<String> {
    repo.worktree_snapshot()
        .into_keys()
        .filter(|p| p.contains(".artifact-migrate-") || p.ends_with(".tmp"))
        .collect()
}

/// The bytes of each of `paths` at `rev`.
pub fn blobs_at(repo: &TestRepo, rev: &str, paths: &[String]) -> BTreeMap<String, Vec<u8>> {
    paths
        .iter()
        .map(|p| (p.clone(), repo.show(rev, p)))
        .collect()
}

/// Stdout of a run that printed `{"error": {...}}`: the message.
pub fn error_message(run: &Run) -> String {
    let v = run.json();
    v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message:\n{run}"))
        .to_string()
}

/// The findings of a `verify --json` report as `(commit, path, problem)`.
pub fn findings(report: &serde_json::Value) -> Vec<(String, Option<String>, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["commit"].as_str().unwrap().to_string(),
                f["path"].as_str().map(str::to_string),
                f["problem"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The first 12 hex digits of a commit id, as the tool prints them.
pub fn short(id: &str) -> &str {
    &id[..12]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Apply,
    Rollback,
}

impl Op {
    pub fn cmd(self) -> &'static str {
        match self {
            Op::Apply => "apply",
            Op::Rollback => "rollback",
        }
    }
}

/// A repository ready for one operation, and what that operation makes when nothing
/// interrupts it (run on a byte-for-byte copy with the same epoch and identity).
pub struct Scenario {
    pub victim: TestRepo,
    pub reference: TestRepo,
    /// HEAD before the operation.
    pub old: String,
    /// HEAD after the uninterrupted operation.
    pub new: String,
    pub old_blobs: BTreeMap<String, Vec<u8>>,
    pub new_blobs: BTreeMap<String, Vec<u8>>,
}

/// The scenario with the victim repository in a temporary directory.
pub fn scenario(op: Op) -> Scenario {
    scenario_of(op, five_runs())
}

/// The scenario on a given [`five_runs`] repository (e.g. one on a small tmpfs).
pub fn scenario_of(op: Op, victim: TestRepo) -> Scenario {
    let pre_batch = victim.head();
    if op == Op::Rollback {
        victim.cli(["apply"]).expect_code(0);
    }
    let old = victim.head();
    let reference = victim.copy();
    reference.cli([op.cmd()]).expect_code(0);
    let new = reference.head();
    assert_ne!(old, new);
    assert_eq!(reference.rev(&format!("{new}^")), old);
    if op == Op::Rollback {
        assert_eq!(tree(&reference, &new), tree(&reference, &pre_batch));
    }
    let paths = five_paths();
    let old_blobs = blobs_at(&victim, &old, &paths);
    let new_blobs = blobs_at(&reference, &new, &paths);
    for p in &paths {
        assert_ne!(
            old_blobs[p], new_blobs[p],
            "{p} must change in the operation"
        );
    }
    Scenario {
        victim,
        reference,
        old,
        new,
        old_blobs,
        new_blobs,
    }
}

impl Scenario {
    /// Every manifest on disk parses and is the old or the new blob; returns how many are new.
    #[track_caller]
    pub fn assert_files_whole(&self) -> usize {
        let mut new = 0;
        for (p, old) in &self.old_blobs {
            let bytes = self.victim.file_bytes(p);
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                panic!(
                    "{p} on disk is not JSON ({e}):\n{}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            if bytes == self.new_blobs[p] {
                new += 1;
            } else {
                assert_eq!(
                    &bytes, old,
                    "{p} on disk is neither the old nor the new version"
                );
            }
        }
        new
    }

    /// The repository is exactly what the uninterrupted run made.
    #[track_caller]
    pub fn assert_like_reference(&self) {
        let (v, r) = (&self.victim, &self.reference);
        assert_eq!(
            v.head(),
            self.new,
            "HEAD is not the uninterrupted run's commit"
        );
        assert_eq!(tree(v, "HEAD"), tree(r, "HEAD"));
        assert_eq!(v.porcelain(), "", "git status is not clean");
        assert_eq!(v.worktree_snapshot(), r.worktree_snapshot());
        assert_eq!(index_entries(v), index_entries(r));
        assert_eq!(v.refs(), r.refs());
        assert_eq!(journal_files(v), Vec::<String>::new(), "a journal was left");
        assert_eq!(lock_files(v), Vec::<std::path::PathBuf>::new());
        assert_eq!(stray_tmp_files(v), Vec::<String>::new());
        assert_fsck_clean(v);
        v.cli(["verify"]).expect_code(0);
    }
}

/// How far an operation that was stopped (a fault, a signal) got.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Left {
    /// Stopped before the ref move: nothing was committed.
    Nothing,
    /// Stopped after the ref move; `new_files` files were already replaced.
    Landed { new_files: usize },
    /// Nothing was left to do: the command finished.
    Finished,
}

/// Temporary files the tool may write inside `.git`: half-written packs and pack indexes,
/// journals, the version cache's and the probe's scratch files.
pub fn stray_git_tmp_files(repo: &TestRepo) -> Vec<String> {
    repo.git_dir_snapshot()
        .into_keys()
        .filter(|p| p.contains("tmp_") || p.ends_with(".tmp") || p.contains("-probe-"))
        .collect()
}

impl Scenario {
    /// What a stopped operation must leave: HEAD on one side of the ref move, `git fsck`
    /// clean, whole files (exactly `new_files` of them new), the journal exactly when the
    /// commit landed, no lock and no temporary file.
    #[track_caller]
    pub fn assert_left(&self, left: Left, what: &str) {
        let v = &self.victim;
        let landed = left != Left::Nothing;
        assert_eq!(
            &v.head(),
            if landed { &self.new } else { &self.old },
            "{what}: HEAD"
        );
        assert_fsck_clean(v);
        let new_on_disk = self.assert_files_whole();
        let (new_files, journals) = match left {
            Left::Nothing => (0, 0),
            Left::Landed { new_files } => (new_files, 1),
            Left::Finished => (self.old_blobs.len(), 0),
        };
        assert_eq!(new_on_disk, new_files, "{what}: files already new");
        assert_eq!(journal_files(v).len(), journals, "{what}: journals");
        assert_eq!(lock_files(v), Vec::<PathBuf>::new(), "{what}: locks");
        assert_eq!(stray_tmp_files(v), Vec::<String>::new(), "{what}");
        assert_eq!(stray_git_tmp_files(v), Vec::<String>::new(), "{what}");
    }

    /// The next command finishes what `op` left (`status` says so when the commit landed;
    /// otherwise `op` runs again), and the repository is the uninterrupted run's.
    #[track_caller]
    pub fn assert_next_command_finishes(&self, op: Op, left: Left) {
        let v = &self.victim;
        match left {
            Left::Nothing => {
                let again = v.cli([op.cmd()]);
                again.expect_code(0);
            }
            Left::Landed { new_files } => {
                let status = v.cli(["status"]);
                status.expect_code(0);
                assert!(
                    status.stderr.contains(&format!(
                        "note: finished the interrupted {} of {}: updated {} working-tree file(s)",
                        op.cmd(),
                        short(&self.new),
                        self.old_blobs.len() - new_files
                    )),
                    "{status}"
                );
            }
            Left::Finished => {}
        }
        self.assert_like_reference();
    }
}
