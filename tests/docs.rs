//! The docs' runnable parts, run: the checksum script of docs/formats.md must agree with
//! what apply wrote, on ordinary manifests and on numbers Python would re-spell.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artifact-migrate"));
    c.env("SOURCE_DATE_EPOCH", "1767225600")
        .env("NO_COLOR", "1");
    c
}

/// The ```python block of docs/formats.md, written to a file.
fn script(dir: &Path) -> std::path::PathBuf {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/formats.md")).unwrap();
    let start = doc
        .find("```python\n")
        .expect("formats.md has a python block")
        + "```python\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let path = dir.join("recompute.py");
    std::fs::write(&path, &doc[start..end]).unwrap();
    path
}

fn recompute(script: &Path, repo: &Path, path: &str) -> (bool, String) {
    let out = Command::new("python3")
        .arg(script)
        .arg(repo)
        .arg("HEAD")
        .arg(path)
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn git(repo: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn the_formats_script_recomputes_the_demo_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("demo");
    let out = bin().arg("demo").arg(&repo).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = script(tmp.path());
    for path in [
        "artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json",
        "artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json",
    ] {
        let (ok, text) = recompute(&s, &repo, path);
        assert!(ok, "{path}: {text}");
        assert_eq!(text, "checksum_before ok\nchecksum_after  ok\n");
    }
}

#[test]
fn the_formats_script_agrees_on_numbers_python_would_respell() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r");
    let m = repo.join("artifacts/job-n/run-n/manifest.json");
    std::fs::create_dir_all(m.parent().unwrap()).unwrap();
    std::fs::write(
        &m,
        "{\"schema_version\": \"1.1.0\", \"run_id\": \"run-n\", \"job_id\": \"job-n\", \"input_snapshots\": {}, \"inputs_hash\": null,\n \"n\": [1e-400, 1E+5, -0.0, 1.50, 123456789012345678901234567890], \"s\": \"\\u00fc \\u2028 \\u0001\"}\n",
    )
    .unwrap();
    git(tmp.path(), &["init", "-q", "-b", "main", "r"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "seed"]);
    let out = bin()
        .arg("-C")
        .arg(&repo)
        .arg("apply")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text) = recompute(
        &script(tmp.path()),
        &repo,
        "artifacts/job-n/run-n/manifest.json",
    );
    assert!(ok, "{text}");
}

#[test]
fn the_demo_seed_commit_honours_source_date_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let out = bin()
        .arg("demo")
        .arg(&dir)
        .env("SOURCE_DATE_EPOCH", "1767261600")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["log", "--reverse", "--format=%ct %at"])
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&log.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(first, "1767261600 1767261600");
}
