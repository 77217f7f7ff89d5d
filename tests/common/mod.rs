//! The test environment: real temporary git repositories, the real binary, plain git to check
//! what it wrote. A test reads like a story:
//!
//! ```ignore
//! let repo = TestRepo::new();
//! repo.manifest("job-a/run-1", json!({"run_id": "run-1"})).commit("record a run");
//! let run = repo.cli(["apply", "--json"]);
//! assert_eq!(run.expect_code(0).json()["migrated"], 1);
//! ```
//!
//! Every command runs with a fixed identity, `SOURCE_DATE_EPOCH`, an empty `HOME` and no
//! system git config, so commit ids are reproducible and nothing of the machine leaks in.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// `SOURCE_DATE_EPOCH` of every CLI run: 2026-01-01T00:00:00Z.
pub const EPOCH: &str = "1767225600";
/// The `applied_at` / committer date `EPOCH` stands for.
pub const APPLIED_AT: &str = "2026-01-01T00:00:00Z";
/// The tool name written into history entries and trailers.
pub const TOOL: &str = "artifact-migrate 0.1.0";

/// The identity the CLI gets through `GIT_*` variables.
pub const AUTHOR_NAME: &str = "Migration Author";
pub const AUTHOR_EMAIL: &str = "author@migrations.example";
pub const COMMITTER_NAME: &str = "Migration Committer";
pub const COMMITTER_EMAIL: &str = "committer@migrations.example";
/// The identity in each test repository's own config (used by the helper's commits).
pub const CONFIG_NAME: &str = "Repo Config User";
pub const CONFIG_EMAIL: &str = "config-user@repo.example";

/// The real-shaped samples (SPEC §3), as committed by the pipeline.
pub const SAMPLE_V100: &[u8] = include_bytes!("../../fixtures/samples/v1.0.0-manifest.json");
pub const SAMPLE_V110: &[u8] = include_bytes!("../../fixtures/samples/v1.1.0-manifest.json");
pub const SAMPLE_V120: &[u8] = include_bytes!("../../fixtures/samples/v1.2.0-manifest.json");

/// Where the samples live in a repository laid out like the pipeline's.
pub const JOB: &str = "spring-launch-01";
pub const RUN_100: &str = "5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90";
pub const RUN_110: &str = "7492b68c4e13bb143e5f50cdd0993926";
pub const RUN_120: &str = "0d5c1a9e3b7f4e2a8c6d1b0f9e8a7c65";

/// `artifacts/<job>/<run>/manifest.json`.
pub fn manifest_path(job_run: &str) -> String {
    format!("artifacts/{job_run}/manifest.json")
}

/// The 1.2.0 sample moved to its own run (the sample shares its run_id with the 1.1.0 one).
pub fn sample_v120_own_run() -> Vec<u8> {
    let text = std::str::from_utf8(SAMPLE_V120).expect("the sample is UTF-8");
    let from = format!("\"run_id\": \"{RUN_110}\"");
    assert!(text.contains(&from), "the 1.2.0 sample changed shape");
    text.replace(&from, &format!("\"run_id\": \"{RUN_120}\""))
        .into_bytes()
}

/// A file under `fixtures/`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("read fixture {}: {e}", p.display()))
}

/// Copies a directory tree (files and directories) from `src` to `dst`.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Content for a file: JSON text, bytes, or a `serde_json::Value` (written pretty, 2 spaces,
/// with a trailing newline).
pub trait IntoContent {
    fn into_content(self) -> Vec<u8>;
}
impl IntoContent for &str {
    fn into_content(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl IntoContent for String {
    fn into_content(self) -> Vec<u8> {
        self.into_bytes()
    }
}
impl IntoContent for &String {
    fn into_content(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl IntoContent for &[u8] {
    fn into_content(self) -> Vec<u8> {
        self.to_vec()
    }
}
impl<const N: usize> IntoContent for &[u8; N] {
    fn into_content(self) -> Vec<u8> {
        self.to_vec()
    }
}
impl IntoContent for Vec<u8> {
    fn into_content(self) -> Vec<u8> {
        self
    }
}
impl IntoContent for &Vec<u8> {
    fn into_content(self) -> Vec<u8> {
        self.clone()
    }
}
impl IntoContent for serde_json::Value {
    fn into_content(self) -> Vec<u8> {
        let mut s = serde_json::to_string_pretty(&self).expect("serialize a test manifest");
        s.push('\n');
        s.into_bytes()
    }
}

/// What one run of the binary printed, and how it exited.
#[derive(Debug, Clone)]
pub struct Run {
    pub args: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
}

impl Run {
    /// Stdout as JSON; panics with the whole run when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Checks the exit code, showing the whole run when it differs; returns the run.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{self}"
        );
        self
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// The run as a transcript, for snapshots: stdout, a `------- stderr -------` line,
    /// stderr, and `[exit status: N]` (each part ends with a newline; one that did not is
    /// marked `[no newline]`).
    pub fn transcript(&self) -> String {
        fn part(out: &mut String, text: &str) {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push_str("[no newline]\n");
            }
        }
        let mut t = String::new();
        part(&mut t, &self.stdout);
        t.push_str("------- stderr -------\n");
        part(&mut t, &self.stderr);
        t.push_str(&format!("[exit status: {}]\n", self.code));
        t
    }

    /// The non-empty lines of stdout and stderr together (the human output).
    pub fn output_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ artifact-migrate {}\nexit code: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// A temporary git repository (with a working tree, or bare) and its own empty `HOME`.
pub struct TestRepo {
    root: PathBuf,
    home: TempDir,
    _dirs: Vec<TempDir>,
}

/// The environment every process of a test gets.
pub fn isolate(cmd: &mut StdCommand, home: &Path) {
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CEILING_DIRECTORIES",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_DATE",
        "GIT_CONFIG",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_COUNT",
        "XDG_CONFIG_HOME",
        "RUST_BACKTRACE",
        "DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .env("LC_ALL", "C")
        .env("TZ", "UTC");
}

fn new_home() -> TempDir {
    tempfile::Builder::new()
        .prefix("am-home-")
        .tempdir()
        .expect("create a temporary HOME")
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRepo {
    /// An empty repository on branch `main` with a local user.name/user.email.
    pub fn new() -> TestRepo {
        TestRepo::new_in(&std::env::temp_dir())
    }

    /// Like [`TestRepo::new`], in a new directory under `parent` (a test's own file system).
    pub fn new_in(parent: &Path) -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("am-repo-")
            .tempdir_in(parent)
            .expect("create a temporary repository directory");
        let repo = TestRepo {
            root: dir.path().to_path_buf(),
            home: new_home(),
            _dirs: vec![dir],
        };
        repo.git(["init", "-q", "-b", "main"]);
        repo.git(["config", "user.name", CONFIG_NAME]);
        repo.git(["config", "user.email", CONFIG_EMAIL]);
        repo
    }

    /// A repository with the three real-shaped samples at their canonical places:
    /// `artifacts/spring-launch-01/<run>/manifest.json` (1.0.0 one-line, 1.1.0, 1.2.0),
    /// committed.
    pub fn with_samples() -> TestRepo {
        let repo = TestRepo::new();
        repo.sample_files().commit("record three runs");
        repo
    }

    /// Writes the three samples (not committed).
    pub fn sample_files(&self) -> &Self {
        self.manifest(&format!("{JOB}/{RUN_100}"), SAMPLE_V100)
            .manifest(&format!("{JOB}/{RUN_110}"), SAMPLE_V110)
            .manifest(&format!("{JOB}/{RUN_120}"), sample_v120_own_run())
    }

    /// A bare clone of this repository (`git clone --bare`); it has no user identity of its own.
    pub fn bare_clone(&self) -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("am-bare-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().join("repo.git");
        let out = self
            .git_command()
            .args(["clone", "-q", "--bare"])
            .arg(&self.root)
            .arg(&root)
            .output()
            .expect("run git clone");
        assert!(
            out.status.success(),
            "git clone --bare failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TestRepo {
            root,
            home: new_home(),
            _dirs: vec![dir],
        }
    }

    /// A shallow clone, as CI checks out: `git clone --depth DEPTH file://<this repo>`,
    /// with this repository's user identity.
    pub fn shallow_clone(&self, depth: usize) -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("am-shallow-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().join("repo");
        let out = self
            .git_command()
            .args(["clone", "-q", "--depth", &depth.to_string()])
            .arg(format!("file://{}", self.root.display()))
            .arg(&root)
            .output()
            .expect("run git clone");
        assert!(
            out.status.success(),
            "git clone --depth failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let clone = TestRepo {
            root,
            home: new_home(),
            _dirs: vec![dir],
        };
        clone.git(["config", "user.name", CONFIG_NAME]);
        clone.git(["config", "user.email", CONFIG_EMAIL]);
        clone
    }

    /// A byte-for-byte copy of the whole repository (`cp -a`), `.git` included.
    pub fn copy(&self) -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("am-copy-")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().join("repo");
        let status = StdCommand::new("cp")
            .arg("-a")
            .arg(&self.root)
            .arg(&root)
            .status()
            .expect("run cp -a");
        assert!(status.success(), "cp -a failed");
        TestRepo {
            root,
            home: new_home(),
            _dirs: vec![dir],
        }
    }

    /// The repository's directory (the work tree, or the bare repository).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The empty `HOME` processes run with.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Writes `artifacts/<job_run>/manifest.json`.
    pub fn manifest(&self, job_run: &str, content: impl IntoContent) -> &Self {
        self.file(&manifest_path(job_run), content)
    }

    /// Writes a file (creating its directories).
    pub fn file(&self, rel: &str, content: impl IntoContent) -> &Self {
        let p = self.root.join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
        }
        fs::write(&p, content.into_content())
            .unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self
    }

    /// Creates a symbolic link `rel -> target`.
    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        let p = self.root.join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
        }
        std::os::unix::fs::symlink(target, &p)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
        self
    }

    /// Stages everything and commits it (through the git binary, with the repository's
    /// config identity and a fixed date).
    pub fn commit(&self, message: &str) -> &Self {
        self.git(["add", "-A"]);
        self.git(["commit", "-q", "--no-verify", "-m", message]);
        self
    }

    /// A `git` command in this repository with the test environment.
    pub fn git_command(&self) -> StdCommand {
        let mut cmd = StdCommand::new("git");
        isolate(&mut cmd, self.home.path());
        cmd.current_dir(&self.root)
            .args(["-c", "core.quotepath=false"])
            .env("GIT_AUTHOR_DATE", "@1767139200 +0000")
            .env("GIT_COMMITTER_DATE", "@1767139200 +0000")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs plain git and returns stdout; panics when git fails.
    #[track_caller]
    pub fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.git_command().args(&args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {:?} failed ({}):\n{}{}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("git printed UTF-8")
    }

    /// Runs plain git with `stdin` and returns stdout; panics when git fails.
    #[track_caller]
    pub fn git_stdin<I, S>(&self, args: I, stdin: &[u8]) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        use std::io::Write;
        let mut child = self
            .git_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run git");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write to git");
        let out = child.wait_with_output().expect("wait for git");
        assert!(
            out.status.success(),
            "git failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("git printed UTF-8")
    }

    /// The binary, configured like every test run: `-C <repo>`, the `GIT_*` identity,
    /// `SOURCE_DATE_EPOCH`, an empty `HOME`, no system config, `NO_COLOR`. Tweak it before
    /// handing it to [`TestRepo::run`].
    pub fn cli_command(&self) -> assert_cmd::Command {
        let mut cmd = self.cli_command_in(self.home.path());
        cmd.arg("-C").arg(&self.root);
        cmd
    }

    /// The binary with the test environment, started in `cwd`, without `-C`.
    pub fn cli_command_in(&self, cwd: &Path) -> assert_cmd::Command {
        let mut std_cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("artifact-migrate"));
        isolate(&mut std_cmd, self.home.path());
        std_cmd
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
            .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
            .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
            .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
            .current_dir(cwd);
        assert_cmd::Command::from_std(std_cmd)
    }

    /// Runs a configured command (see [`TestRepo::cli_command`]).
    #[must_use = "a run's output is to be checked"]
    pub fn run<I, S>(&self, mut cmd: assert_cmd::Command, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let out = cmd.args(&args).output().expect("run artifact-migrate");
        Run {
            args,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Runs `artifact-migrate -C <repo> ARGS` with the test environment.
    #[must_use = "a run's output is to be checked"]
    pub fn cli<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(self.cli_command(), args)
    }

    /// `artifact-migrate -C <repo> ARGS` as a transcript ([`Run::transcript`]) with this
    /// repository's temporary paths written `[REPO]` and `[HOME]`: what snapshots hold.
    #[must_use = "a transcript is to be compared with its snapshot"]
    pub fn transcript<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.redact(&self.cli(args).transcript())
    }

    /// `text` with this repository's directory written `[REPO]` and its `HOME` `[HOME]`
    /// (as given and as the file system resolves them).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (dir, name) in [
            (self.root.as_path(), "[REPO]"),
            (self.home.path(), "[HOME]"),
        ] {
            let mut forms = vec![dir.display().to_string()];
            if let Ok(real) = dir.canonicalize() {
                forms.push(real.display().to_string());
            }
            for f in forms {
                out = out.replace(&f, name);
            }
        }
        out
    }

    /// The commit id HEAD points to.
    pub fn head(&self) -> String {
        self.rev("HEAD")
    }

    /// The full commit id of a revision.
    pub fn rev(&self, rev: &str) -> String {
        self.git(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
            .trim()
            .to_string()
    }

    /// Whether a revision exists.
    pub fn has_rev(&self, rev: &str) -> bool {
        self.git_command()
            .args(["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")])
            .output()
            .expect("run git")
            .status
            .success()
    }

    /// How many commits `rev` has (itself and its ancestors).
    pub fn commit_count(&self, rev: &str) -> usize {
        self.git(["rev-list", "--count", rev])
            .trim()
            .parse()
            .unwrap()
    }

    /// The bytes of `path` in a commit's tree (`git cat-file blob REV:PATH`).
    pub fn show(&self, rev: &str, path: &str) -> Vec<u8> {
        let out = self
            .git_command()
            .args(["cat-file", "blob", &format!("{rev}:{path}")])
            .output()
            .expect("run git cat-file");
        assert!(
            out.status.success(),
            "{rev}:{path} is not a blob: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A file of `path` in a commit's tree, parsed as JSON.
    pub fn show_json(&self, rev: &str, path: &str) -> serde_json::Value {
        let bytes = self.show(rev, path);
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rev}:{path} is not JSON ({e})"))
    }

    /// The bytes of a working-tree file.
    pub fn file_bytes(&self, rel: &str) -> Vec<u8> {
        let p = self.root.join(rel);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// `path -> (mode, type, id)` of every entry of a commit's tree, recursively.
    pub fn ls_tree(&self, rev: &str) -> BTreeMap<String, String> {
        self.git(["ls-tree", "-r", "-z", "--full-tree", rev])
            .split('\0')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (meta, path) = l.split_once('\t').expect("ls-tree line");
                (path.to_string(), meta.to_string())
            })
            .collect()
    }

    /// The paths that differ between two commits (`git diff --name-only`).
    pub fn changed_paths(&self, from: &str, to: &str) -> Vec<String> {
        self.git(["diff", "--no-renames", "--name-only", "-z", from, to])
            .split('\0')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Every ref and what it points to (`git for-each-ref` plus HEAD).
    pub fn refs(&self) -> String {
        let head = fs::read_to_string(self.git_dir().join("HEAD")).unwrap_or_default();
        format!(
            "HEAD: {head}{}",
            self.git(["for-each-ref", "--format=%(refname) %(objectname)"])
        )
    }

    /// The object store's size and every ref (`git count-objects -v` and the ref listing).
    pub fn count_objects(&self) -> String {
        format!("{}{}", self.git(["count-objects", "-v"]), self.refs())
    }

    /// The `.git` directory (the repository itself when bare).
    pub fn git_dir(&self) -> PathBuf {
        let dot = self.root.join(".git");
        if dot.is_dir() {
            dot
        } else {
            self.root.clone()
        }
    }

    /// Every file of the working tree (outside `.git`) with its bytes; symbolic links as
    /// `-> target`.
    pub fn worktree_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        snapshot_dir(&self.root, &self.root, true, &mut out);
        out
    }

    /// Every file under the `.git` directory with its bytes: objects, refs, index, logs.
    pub fn git_dir_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let dir = self.git_dir();
        snapshot_dir(&dir, &dir, false, &mut out);
        out
    }

    /// `git status --porcelain` (untracked files listed one by one).
    pub fn porcelain(&self) -> String {
        self.git(["status", "--porcelain", "--untracked-files=all"])
    }

    /// The full message of a commit.
    pub fn message(&self, rev: &str) -> String {
        self.git(["log", "-1", "--format=%B", rev])
    }

    /// The trailers of a commit as plain git reads them (`git interpret-trailers --parse`).
    pub fn trailers(&self, rev: &str) -> Vec<(String, String)> {
        let msg = self.message(rev);
        self.git_stdin(["interpret-trailers", "--parse"], msg.as_bytes())
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }
}

fn snapshot_dir(root: &Path, dir: &Path, skip_git: bool, out: &mut BTreeMap<String, Vec<u8>>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("read a directory entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("inside the root")
            .to_string_lossy()
            .into_owned();
        if skip_git && rel == ".git" {
            continue;
        }
        let ft = e.file_type().expect("file type");
        if ft.is_symlink() {
            let target = fs::read_link(&p).expect("read a link");
            out.insert(rel, format!("-> {}", target.display()).into_bytes());
        } else if ft.is_dir() {
            snapshot_dir(root, &p, skip_git, out);
        } else {
            out.insert(rel, fs::read(&p).expect("read a file"));
        }
    }
}

/// Runs a prepared command; returns whether it succeeded, and its stdout and stderr together.
pub fn outcome(cmd: &mut StdCommand) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `sha256:<hex>` of bytes, computed here (not by the crate under test).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Runs a Python snippet with `input` on stdin and returns its stdout, trimmed.
pub fn python(script: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = StdCommand::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to python3");
    let out = child.wait_with_output().expect("wait for python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("python printed UTF-8")
        .trim()
        .to_string()
}

/// `checksum_after` as the pipeline computes it, by Python itself: the sha256 of
/// `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` of the
/// document without `migration_history`.
pub fn python_checksum_after(migrated: &[u8]) -> String {
    python(
        "import sys, json, hashlib\n\
         doc = json.loads(sys.stdin.buffer.read().decode('utf-8'))\n\
         doc.pop('migration_history', None)\n\
         text = json.dumps(doc, sort_keys=True, separators=(',', ':'), ensure_ascii=False)\n\
         print('sha256:' + hashlib.sha256(text.encode('utf-8')).hexdigest())",
        migrated,
    )
}

/// `sha256:<hex>` of the exact bytes, by Python's hashlib.
pub fn python_sha256(bytes: &[u8]) -> String {
    python(
        "import sys, hashlib\nprint('sha256:' + hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        bytes,
    )
}

/// The last `migration_history` entry of a manifest.
pub fn last_history(doc: &serde_json::Value) -> &serde_json::Value {
    doc["migration_history"]
        .as_array()
        .and_then(|a| a.last())
        .unwrap_or_else(|| panic!("no migration_history in {doc:#}"))
}

/// The strings of a JSON array of strings.
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// The `path` of every element of a JSON array of objects.
pub fn paths_of(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x["path"].as_str().expect("a path").to_string())
        .collect()
}

/// The old text with its `schema_version` value replaced by "1.2.0" (what a migration may
/// rewrite), or unchanged when it has none.
pub fn normalized_old(old: &str) -> String {
    let Some(k) = old.find("\"schema_version\"") else {
        return old.to_string();
    };
    let rest = &old[k..];
    let v = rest.find(": \"").or_else(|| rest.find(":\"")).unwrap();
    let q = k + v + rest[v..].find('"').unwrap();
    let end = q + 1 + old[q + 1..].find('"').unwrap();
    format!("{}\"1.2.0\"{}", &old[..q], &old[end + 1..])
}

pub fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut it = big.iter();
    small.iter().all(|b| it.any(|c| c == b))
}

/// Lines with their terminators (`\r` kept), the last one possibly unterminated.
pub fn raw_lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

/// Every old line is still in the new file, in order, except the schema_version line (its
/// value may change), a line that only gains a comma (the member before new ones) and a line
/// ending in an empty array that a new item opens up (`"migration_history": [],` becomes
/// `"migration_history": [` ... `],`). Returns the lines that were inserted.
pub fn assert_old_lines_kept_in_order(old: &str, new: &str) -> Vec<String> {
    let new_lines = raw_lines(new);
    let mut at = 0;
    let mut inserted = Vec::new();
    let find = |from: usize, pred: &dyn Fn(&str) -> bool| -> Option<usize> {
        new_lines[from..]
            .iter()
            .position(|l| pred(l))
            .map(|p| from + p)
    };
    for line in raw_lines(&normalized_old(old)) {
        let (body, end) = match line.strip_suffix("\r\n") {
            Some(b) => (b, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            },
        };
        let with_comma = format!("{body},{end}");
        if let Some(pos) = find(at, &|l| l == line || l == with_comma) {
            inserted.extend(new_lines[at..pos].iter().map(|s| s.to_string()));
            at = pos + 1;
            continue;
        }
        // An empty array opened up: `prefix[]suffix` -> `prefix[`, items, `indent]suffix`.
        let opened = body
            .trim_end_matches(',')
            .strip_suffix("[]")
            .and_then(|prefix| {
                let suffix = &body[prefix.len() + 2..];
                let indent = &prefix[..prefix.len() - prefix.trim_start().len()];
                let open = find(at, &|l| l == format!("{prefix}[{end}"))?;
                let close = find(open + 1, &|l| {
                    l == format!("{indent}]{suffix}{end}")
                        || l == format!("{indent}]{suffix},{end}")
                })?;
                Some((open, close))
            });
        let Some((open, close)) = opened else {
            panic!("line {line:?} is gone or rewritten (from line {at}):\n{new}");
        };
        inserted.extend(new_lines[at..open].iter().map(|s| s.to_string()));
        inserted.extend(new_lines[open + 1..close].iter().map(|s| s.to_string()));
        at = close + 1;
    }
    inserted.extend(new_lines[at..].iter().map(|s| s.to_string()));
    inserted
}
