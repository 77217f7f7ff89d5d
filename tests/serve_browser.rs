//! The dashboard end to end in a real browser: Debian's Chromium driven by playwright-core
//! (tests/browser/dashboard.test.mjs) against the real `serve` over a real repository with
//! three schema versions, batches and a rollback. The page's numbers are checked against
//! `status --json`; an `apply` runs while the page is open and the page must show it without
//! a reload. Needs `node`, `/usr/bin/chromium` and `npm ci --prefix tests/browser`; without
//! one of them it prints one SKIPPED line.
//!
//! `ARTIFACT_MIGRATE_SCREENSHOT=docs/dashboard.png cargo test --test serve_browser` writes
//! the screenshot the docs show (a path relative to the crate); otherwise it goes to a
//! temporary directory.

mod common;
mod common_audit;
mod common_serve;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;
use common_serve::Server;

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node not found".into());
    }
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} not found (apt-get install chromium)"));
    }
    if !Path::new(BROWSER_DIR)
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Some("playwright-core not installed (npm ci --prefix tests/browser)".into());
    }
    None
}

/// `node dashboard.test.mjs`, killed with its browser if the test ends early: SIGTERM first
/// (playwright-core then closes the browser it started), SIGKILL if it lingers.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn start(config: &Path) -> Node {
        let mut child = Command::new("node")
            .arg(Path::new(BROWSER_DIR).join("dashboard.test.mjs"))
            .arg(config)
            .current_dir(BROWSER_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("node's stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Node {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one is `want` (true), or the script failed or ended (false).
    fn until(&mut self, want: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("dashboard.test.mjs: {line}");
                    let done = line == want;
                    let failed = line.starts_with("FAIL");
                    self.seen.push(line);
                    if done {
                        return true;
                    }
                    if failed {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Writes `config` (plus a fresh Chromium profile) under `scratch`, starts the script on
    /// it and waits for it to print `pause`: the point where the Rust test acts.
    fn until_pause(scratch: &Path, mut config: Value, pause: &str) -> Node {
        config["profile"] = json!(scratch.join("chromium-profile"));
        let path = scratch.join("config.json");
        std::fs::write(&path, config.to_string()).expect("write the config");
        let mut node = Node::start(&path);
        assert!(
            node.until(pause, Duration::from_secs(120)),
            "the dashboard test failed before {pause}: {:?}",
            node.seen
        );
        node
    }

    /// Tells the script to go on (`line`), then asserts it passed and ended.
    fn passes(mut self, line: &str) {
        self.say(line);
        assert!(
            self.until("pass", Duration::from_secs(60)),
            "the dashboard test failed: {:?}",
            self.seen
        );
        let exit = self.wait(Duration::from_secs(30));
        assert!(exit.is_some_and(|s| s.success()), "node: {exit:?}");
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("node's stdin");
        writeln!(stdin, "{line}").expect("write to node");
        stdin.flush().expect("flush node's stdin");
    }

    /// Waits for the exit (bounded); `None` when it did not end in time.
    fn wait(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stdin.take();
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &self.child.id().to_string()])
                .status();
            if self.wait(Duration::from_secs(10)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Runs of `job` at `version`, `n` of them.
fn runs(repo: &TestRepo, job: &str, n: usize, version: &str) {
    for i in 1..=n {
        let outcome = if i % 4 == 0 { "failed" } else { "succeeded" };
        repo.manifest(
            &format!("{job}/{job}-run-{i}"),
            json!({
                "schema_version": version,
                "job_id": job,
                "run_id": format!("{job}-run-{i}"),
                "status": outcome,
            }),
        );
    }
}

fn status(repo: &TestRepo) -> Value {
    repo.cli(["status", "--json"]).expect_code(0).json()
}

fn batches(repo: &TestRepo) -> usize {
    repo.cli(["log", "--json"])
        .expect_code(0)
        .json()
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("am-browser-")
        .tempdir()
        .expect("a temporary directory")
}

fn screenshot_path(dir: &Path) -> PathBuf {
    match std::env::var("ARTIFACT_MIGRATE_SCREENSHOT") {
        Ok(p) if !p.is_empty() => Path::new(env!("CARGO_MANIFEST_DIR")).join(p),
        _ => dir.join("dashboard.png"),
    }
}

#[test]
fn the_dashboard_shows_the_migration_and_follows_the_branch() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: the dashboard browser test did not run: {why}");
        return;
    }
    // Three versions, two migration batches, a rollback, and a batch again.
    let repo = TestRepo::new();
    repo.sample_files();
    runs(&repo, "train-model", 12, "1.0.0");
    runs(&repo, "evaluate", 8, "1.0.0");
    runs(&repo, "export-report", 6, "1.1.0");
    repo.commit("record the runs");
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/train-model"])
        .expect_code(0);
    repo.cli(["apply", "-q", "artifacts/evaluate"])
        .expect_code(0);
    repo.cli(["rollback", "-q"]).expect_code(0);
    repo.cli(["apply", "--to", "1.1.0", "-q", "artifacts/evaluate"])
        .expect_code(0);
    repo.cli(["apply", "-q", "artifacts/export-report"])
        .expect_code(0);

    let server = Server::start(&repo);
    let scratch = scratch();
    let shot = screenshot_path(scratch.path());
    let _ = std::fs::remove_file(&shot);
    let run = "evaluate-run-3";
    let path = manifest_path(&format!("evaluate/{run}"));
    let stored_text = String::from_utf8(repo.show("HEAD", &path)).expect("UTF-8");
    let before = status(&repo);
    let config = json!({
        "url": format!("http://{}/", server.addr),
        "screenshot": shot,
        "status": before,
        "batches": batches(&repo),
        "search": {
            "job_id": "evaluate",
            "job_runs": 8,
            "run_id": run,
            "stored": "1.1.0",
            "latest": before["latest"],
            "stored_text": stored_text,
        },
    });
    let node = Node::until_pause(scratch.path(), config, "ready-for-apply");
    // Another "terminal": a batch lands while the page is open.
    repo.cli(["apply", "-q", "artifacts/train-model"])
        .expect_code(0);
    let after = status(&repo);
    assert_ne!(after["pending"], before["pending"]);
    node.passes(&json!({"status": after, "batches": batches(&repo)}).to_string());
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {shot:?}");
    server.stop();
}

#[test]
fn the_dashboard_of_an_empty_branch_and_of_a_server_gone() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: the dashboard browser test (empty branch) did not run: {why}");
        return;
    }
    let repo = TestRepo::new();
    repo.file("README.md", "no runs yet\n").commit("start");
    let server = Server::start(&repo);
    let scratch = scratch();
    let config = json!({
        "mode": "empty",
        "url": format!("http://{}/", server.addr),
        "screenshot": scratch.path().join("empty.png"),
        "status": status(&repo),
    });
    assert_eq!(config["status"]["total"], 0);
    let node = Node::until_pause(scratch.path(), config, "ready-for-stop");
    server.stop();
    node.passes("stopped");
}
