//! The conventions around the CLI: the shipped man page is what `artifact-migrate man`
//! prints, completion scripts are valid, colour follows one rule on both streams (checked
//! on a real terminal), and the pre-commit framework runs the hook of
//! `.pre-commit-hooks.yaml` as docs/migrations.md tells teams to add it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("artifact-migrate")
}

fn source_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn the_shipped_man_page_is_what_the_cli_prints() {
    let repo = TestRepo::new();
    let run = repo.cli(["man"]);
    run.expect_code(0);
    let shipped = source_file("docs/artifact-migrate.1");
    assert!(
        shipped == run.stdout,
        "docs/artifact-migrate.1 differs from `artifact-migrate man`: regenerate it with\n\
         \n    cargo run -q -- man > docs/artifact-migrate.1\n"
    );
    // Every command is in it, with its options, and every exit code.
    for cmd in [
        "status",
        "plan",
        "apply",
        "hook install",
        "completions",
        "man",
    ] {
        assert!(
            run.stdout
                .contains(&format!(".SS \"artifact-migrate {cmd}\"")),
            "{cmd}"
        );
    }
    let codes = ["1", "2", "3", "70"].map(|c| format!(".TP\n\\fB{c}\\fR\n"));
    let missing: Vec<&String> = codes
        .iter()
        .filter(|c| !run.stdout.contains(c.as_str()))
        .collect();
    assert_eq!(
        missing,
        Vec::<&String>::new(),
        "exit codes missing from EXIT STATUS"
    );
    assert!(
        run.stdout.contains("\\-\\-keep\\-going") && run.stdout.contains(".SH \"EXIT STATUS\"")
    );
}

#[test]
fn completion_scripts_are_generated_for_every_shell() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = repo.cli(["completions", shell]);
        run.expect_code(0);
        assert!(run.stdout.contains("artifact-migrate"), "{shell}: {run}");
        assert!(run.stdout.contains("rollback"), "{shell}: {run}");
        assert_eq!(run.stderr, "", "{shell}");
    }
    // bash reads the bash script without a syntax error.
    let run = repo.cli(["completions", "bash"]);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("artifact-migrate.bash");
    fs::write(&script, &run.stdout).expect("write the script");
    let (ok, said) = outcome(Command::new("bash").arg("-n").arg(&script));
    assert!(ok, "bash -n: {said}");
}

/// A repository whose `plan` prints on both streams: a `would migrate` list on stdout and a
/// failed manifest on stderr.
fn both_streams() -> TestRepo {
    let repo = TestRepo::new();
    repo.sample_files()
        .file("artifacts/job-b/run-1/manifest.json", "not json\n")
        .commit("record runs");
    repo
}

const ESC: &str = "\x1b[";

#[test]
fn always_colours_both_streams_even_with_no_color() {
    let repo = both_streams();
    // NO_COLOR=1 is set for every test run; `--color=always` overrides it (no-color.org).
    let run = repo.cli(["--color=always", "plan"]);
    run.expect_code(1);
    assert!(run.stdout.contains(ESC), "{run}");
    assert!(run.stderr.contains("\x1b[31merror:\x1b[0m"), "{run}");
    // An error that stops the command is coloured by the same decision.
    let run = repo.cli(["--color=always", "verify", "nosuch"]);
    run.expect_code(2);
    assert!(run.stderr.starts_with("\x1b[31merror:\x1b[0m "), "{run}");
    // And so is clap's own usage error.
    let run = repo.cli(["--color=always", "plan", "--nosuch"]);
    run.expect_code(2);
    assert!(run.stderr.contains(ESC), "{run}");
    for args in [["--color=never", "plan"], ["--color=auto", "plan"]] {
        let run = repo.cli(args);
        assert!(
            !run.stdout.contains(ESC) && !run.stderr.contains(ESC),
            "{run}"
        );
    }
}

/// Runs `artifact-migrate ARGS 2>ERRFILE` on a pseudo-terminal (util-linux `script`), so
/// stdout is a terminal and stderr a file. Returns (what the terminal got, the file), or
/// `None` when `script` is not there.
fn on_a_terminal(repo: &TestRepo, args: &str, no_color: Option<&str>) -> Option<(String, String)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let err = dir.path().join("stderr");
    let line = format!(
        "'{}' -C '{}' {args} 2>'{}'",
        bin().display(),
        repo.path().display(),
        err.display()
    );
    let mut cmd = Command::new("script");
    isolate(&mut cmd, repo.home());
    cmd.env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = match cmd.args(["-q", "-e", "-c", &line, "/dev/null"]).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("run script: {e}"),
    };
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    Some((String::from_utf8_lossy(&out.stdout).into_owned(), stderr))
}

#[test]
fn auto_colours_the_terminal_and_never_a_redirected_stream() {
    let repo = both_streams();
    let Some((tty, file)) = on_a_terminal(&repo, "plan", None) else {
        eprintln!("SKIPPED: colour on a terminal not checked: `script` (util-linux) not found");
        return;
    };
    assert!(tty.contains("would migrate"), "{tty}");
    assert!(tty.contains(ESC), "stdout is a terminal: coloured\n{tty}");
    assert!(
        file.contains("error: artifacts/job-b/run-1/manifest.json"),
        "{file}"
    );
    assert!(
        !file.contains(ESC),
        "stderr is a file: no escape codes\n{file}"
    );
    // NO_COLOR set (to anything but the empty string) turns colour off...
    let (tty, _) = on_a_terminal(&repo, "plan", Some("1")).expect("script ran before");
    assert!(tty.contains("would migrate") && !tty.contains(ESC), "{tty}");
    // ... and set but empty does not.
    let (tty, _) = on_a_terminal(&repo, "plan", Some("")).expect("script ran before");
    assert!(tty.contains(ESC), "{tty}");
}

/// The `.pre-commit-config.yaml` lines of docs/migrations.md, pointing at `hook_repo`.
fn documented_config(hook_repo: &Path, rev: &str) -> String {
    let doc = source_file("docs/migrations.md");
    let start = doc
        .find("```yaml\nrepos:\n")
        .expect("docs/migrations.md shows a .pre-commit-config.yaml")
        + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("the block ends");
    let block = &doc[start..end];
    assert!(block.contains("id: artifact-migrate-validate"), "{block}");
    block
        .lines()
        .map(|l| {
            let key = l.trim_start().trim_start_matches("- ");
            let indent = &l[..l.len() - l.trim_start().len()];
            let dash = if l.trim_start().starts_with("- ") {
                "- "
            } else {
                ""
            };
            if key.starts_with("repo:") {
                format!("{indent}{dash}repo: {}", hook_repo.display())
            } else if key.starts_with("rev:") {
                format!("{indent}{dash}rev: {rev}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn the_pre_commit_framework_runs_the_hook() {
    let version = Command::new("pre-commit").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: the pre-commit framework hook not checked: `pre-commit` not found (pip install pre-commit)");
        return;
    }
    // The hook repository: this repository's .pre-commit-hooks.yaml, committed.
    let hooks = TestRepo::new();
    hooks
        .file(
            ".pre-commit-hooks.yaml",
            source_file(".pre-commit-hooks.yaml"),
        )
        .commit("the hooks");
    let rev = hooks.head();

    // A team's repository with a schema for 1.2.0, the hook added as the docs say.
    let repo = TestRepo::with_samples();
    repo.file(
        ".artifact-migrate/schemas/1.2.0.json",
        "{\"type\": \"object\", \"required\": [\"run_id\"], \"properties\": {\"status\": {\"enum\": [\"succeeded\", \"failed\"]}}}\n",
    )
    .file(".pre-commit-config.yaml", documented_config(hooks.path(), &rev))
    .commit("add the schema and the pre-commit config");
    let cache = tempfile::tempdir().expect("a temporary directory");
    let bin_dir = bin()
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("a PATH");
    let pre_commit = |args: &[&str]| {
        let mut cmd = Command::new("pre-commit");
        isolate(&mut cmd, repo.home());
        cmd.current_dir(repo.path())
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", cache.path())
            .env("PRE_COMMIT_COLOR", "never")
            .args(args)
            .output()
            .expect("run pre-commit")
    };
    let out = pre_commit(&["install"]);
    assert!(
        out.status.success(),
        "pre-commit install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Commits run the hook through git, with artifact-migrate from PATH.
    let commit = |message: &str| {
        let mut cmd = repo.git_command();
        cmd.env("PATH", &path)
            .env("PRE_COMMIT_HOME", cache.path())
            .env("PRE_COMMIT_COLOR", "never")
            .args(["commit", "-q", "-m", message]);
        outcome(&mut cmd)
    };
    // Stages a new run with this status, and commits it.
    let commit_run = |run: &str, status: &str| {
        let p = format!("artifacts/job-g/{run}/manifest.json");
        let doc =
            json!({"schema_version": "1.2.0", "job_id": "job-g", "run_id": run, "status": status});
        repo.file(&p, doc);
        repo.git(["add", &p]);
        let before = repo.head();
        let (ok, output) = commit(&format!("record {run}"));
        (ok, output, before, p)
    };
    let (ok, output, before, _) = commit_run("run-1", "failed");
    assert!(ok, "a valid manifest is committed:\n{output}");
    assert!(
        output.contains("artifact-migrate validate --staged"),
        "{output}"
    );
    assert!(output.contains("Passed"), "{output}");
    assert_ne!(repo.head(), before);

    let (ok, output, before, bad) = commit_run("run-2", "maybe");
    assert!(!ok, "an invalid manifest is refused:\n{output}");
    assert!(output.contains("Failed"), "{output}");
    assert!(
        output.contains(&format!("error: {bad}: /status: enum: ")),
        "{output}"
    );
    assert!(
        output.contains("commit aborted by the artifact-migrate pre-commit hook"),
        "{output}"
    );
    assert_eq!(repo.head(), before, "nothing was committed");
}
