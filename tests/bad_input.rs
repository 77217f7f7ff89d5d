//! Bad input (SPEC §7): each broken manifest fails alone with a one-line error naming the
//! file, never a panic; nothing is committed and no file is written. The inputs are in
//! `fixtures/broken/` (see its README); the too-deep one and the symlink are made here.

mod common;

use common::*;
use serde_json::{json, Value};

const GOOD: &str = "artifacts/job-ok/run-1/manifest.json";
const BAD: &str = "artifacts/job-x/run-bad/manifest.json";

/// What a case must say about the bad manifest.
struct Expect<'a> {
    /// The `kind` in `--json` output.
    kind: &'a str,
    /// Fragments the error message must contain (case-insensitive).
    says: &'a [&'a str],
    /// Whether `status` (which only reads versions, it does not transform) can see it.
    status_sees_it: bool,
}

/// A repository with one good 1.0.0 manifest and the bad file at `bad_path`, committed.
fn repo_with(bad_path: &str, bad: Option<&[u8]>) -> TestRepo {
    let repo = TestRepo::new();
    repo.file(
        GOOD,
        "{\"schema_version\": \"1.0.0\", \"run_id\": \"run-1\"}\n",
    );
    if let Some(bytes) = bad {
        repo.file(bad_path, bytes);
    }
    repo
}

/// Runs every command on a committed repository whose `bad_path` is broken and checks the
/// failure is reported, isolated and harmless.
fn assert_rejected(repo: &TestRepo, bad_path: &str, expect: Expect<'_>) {
    let head = repo.head();
    let files = repo.worktree_snapshot();
    let objects = repo.count_objects();
    let fragments_ok = |msg: &str| {
        let lower = msg.to_lowercase();
        expect
            .says
            .iter()
            .all(|f| lower.contains(&f.to_lowercase()))
    };

    // Human output: one line naming the file, one summary line; nothing else.
    let run = repo.cli(["apply"]);
    run.expect_code(1);
    assert!(!run.stderr.contains("panicked"), "{run}");
    let lines = run.output_lines();
    let naming: Vec<&&str> = lines.iter().filter(|l| l.contains(bad_path)).collect();
    assert_eq!(naming.len(), 1, "exactly one line names the file:\n{run}");
    assert!(naming[0].starts_with("error: "), "{run}");
    assert!(fragments_ok(naming[0]), "says {:?}:\n{run}", expect.says);
    assert_eq!(lines.len(), 2, "the error and the summary line:\n{run}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("nothing committed: 1 manifest(s) failed")),
        "{run}"
    );
    assert_eq!(repo.head(), head, "nothing committed");
    assert_eq!(repo.worktree_snapshot(), files, "no file written");
    assert_eq!(repo.count_objects(), objects, "no object written");

    // --json: the failure with its path and kind.
    let report = repo.cli(["apply", "--json"]).expect_code(1).json();
    assert_eq!(report["commit"], Value::Null);
    assert_eq!(report["migrated"], 0);
    let failed = report["failed"].as_array().expect("failed[]");
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["path"], bad_path);
    assert_eq!(failed[0]["kind"], expect.kind, "{report:#}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(!error.contains('\n'), "one line: {error:?}");
    assert!(fragments_ok(error), "says {:?}: {error}", expect.says);

    // plan reports the same, and still plans the good manifest.
    let plan = repo.cli(["plan", "--json"]).expect_code(1).json();
    assert_eq!(paths_of(&plan["failed"]), [bad_path]);
    assert_eq!(plan["failed"][0]["kind"], expect.kind);
    assert_eq!(paths_of(&plan["migrate"]), [GOOD]);

    // status lists it as invalid (or pending), and --check fails on it.
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    if expect.status_sees_it {
        assert_eq!(paths_of(&status["invalid"]), [bad_path], "{status:#}");
        assert_eq!(status["invalid"][0]["kind"], expect.kind);
        assert_eq!(status["pending"], 1, "only the good one is pending");
    } else {
        assert_eq!(status["invalid"], json!([]), "{status:#}");
        assert_eq!(status["pending"], 2, "{status:#}");
    }
    repo.cli(["status", "--check"]).expect_code(1);

    // show (lazy migration on read) fails it the same way, naming it (for a symlink, see
    // show_says_a_symlink_is_a_symlink).
    if expect.kind != "symlink" {
        assert_show_fails(repo, bad_path, expect.says);
    }

    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(repo.count_objects(), objects);

    // --keep-going commits the good one and leaves the bad one as it is.
    let kept = repo.cli(["apply", "--keep-going", "--json"]);
    let report = kept.expect_code(1).json();
    assert!(report["commit"].is_string(), "{kept}");
    assert_eq!(report["migrated"], 1);
    assert_eq!(repo.changed_paths(&head, "HEAD"), [GOOD]);
    assert_eq!(repo.worktree_snapshot().get(bad_path), files.get(bad_path));
}

/// `show PATH --json` exits 1 with an error naming the path and saying `says`.
fn assert_show_fails(repo: &TestRepo, bad_path: &str, says: &[&str]) {
    let shown = repo.cli(["show", bad_path, "--json"]);
    let err = shown.expect_code(1).json();
    assert_eq!(err["error"]["path"], bad_path, "{shown}");
    let message = err["error"]["message"].as_str().unwrap().to_lowercase();
    for f in says {
        assert!(
            message.contains(&f.to_lowercase()),
            "show says {f:?}: {message}"
        );
    }
}

fn check_fixture(name: &str, expect: Expect<'_>) {
    let repo = repo_with(BAD, Some(&fixture(&format!("broken/{name}"))));
    repo.commit("a broken manifest");
    assert_rejected(&repo, BAD, expect);
}

#[test]
fn malformed_json() {
    check_fixture(
        "malformed.json",
        Expect {
            kind: "parse",
            says: &["not valid JSON", "line 4"],
            status_sees_it: true,
        },
    );
}

#[test]
fn truncated_json() {
    check_fixture(
        "truncated.json",
        Expect {
            kind: "parse",
            says: &["unexpected end"],
            status_sees_it: true,
        },
    );
}

#[test]
fn empty_file() {
    check_fixture(
        "empty.json",
        Expect {
            kind: "parse",
            says: &["empty"],
            status_sees_it: true,
        },
    );
}

#[test]
fn non_object_root() {
    check_fixture(
        "array-root.json",
        Expect {
            kind: "not_an_object",
            says: &["not a JSON object", "array"],
            status_sees_it: true,
        },
    );
}

#[test]
fn invalid_utf8() {
    check_fixture(
        "invalid-utf8.json",
        Expect {
            kind: "parse",
            says: &["utf-8"],
            status_sees_it: true,
        },
    );
}

#[test]
fn duplicate_keys() {
    check_fixture(
        "duplicate-keys.json",
        Expect {
            kind: "parse",
            says: &["duplicate key", "run_id"],
            status_sees_it: true,
        },
    );
}

#[test]
fn numeric_schema_version() {
    check_fixture(
        "numeric-version.json",
        Expect {
            kind: "bad_version",
            says: &["schema_version", "number"],
            status_sees_it: true,
        },
    );
}

#[test]
fn unknown_schema_version() {
    check_fixture(
        "unknown-version.json",
        Expect {
            kind: "unknown_version",
            says: &["9.9.9", "1.0.0, 1.1.0, 1.2.0"],
            status_sees_it: true,
        },
    );
}

#[test]
fn git_lfs_pointer() {
    check_fixture(
        "lfs-pointer.json",
        Expect {
            kind: "lfs_pointer",
            says: &["git lfs"],
            status_sees_it: true,
        },
    );
}

#[test]
fn trailing_comma() {
    check_fixture(
        "trailing-comma.json",
        Expect {
            kind: "parse",
            says: &["trailing comma"],
            status_sees_it: true,
        },
    );
}

#[test]
fn byte_order_mark() {
    check_fixture(
        "byte-order-mark.json",
        Expect {
            kind: "parse",
            says: &["byte order mark"],
            status_sees_it: true,
        },
    );
}

#[test]
fn nan_is_not_json() {
    check_fixture(
        "nan.json",
        Expect {
            kind: "parse",
            says: &["not valid JSON"],
            status_sees_it: true,
        },
    );
}

#[test]
fn two_documents_in_one_file() {
    check_fixture(
        "two-documents.json",
        Expect {
            kind: "parse",
            says: &["after the json value"],
            status_sees_it: true,
        },
    );
}

#[test]
fn nesting_far_too_deep() {
    let depth = 10_000;
    let mut text =
        String::from("{\"schema_version\": \"1.0.0\", \"run_id\": \"run-bad\", \"deep\": ");
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    text.push_str("}\n");
    let repo = repo_with(BAD, Some(text.as_bytes()));
    repo.commit("a very deep manifest");
    assert_rejected(
        &repo,
        BAD,
        Expect {
            kind: "parse",
            says: &["nesting deeper than"],
            status_sees_it: true,
        },
    );
}

#[test]
fn nesting_that_is_deep_but_sane_migrates() {
    // 100 levels inside the root object: real documents never go near it, but it is legal.
    let depth = 100;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let text =
        format!("{{\"schema_version\": \"1.1.0\", \"run_id\": \"run-deep\", \"deep\": {deep}}}\n");
    let path = "artifacts/job-x/run-deep/manifest.json";
    let repo = repo_with(path, Some(text.as_bytes()));
    repo.commit("a deep manifest");
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 2, "{report:#}");
    let after = String::from_utf8(repo.show("HEAD", path)).unwrap();
    assert!(after.contains(&format!("\"deep\": {deep}")), "{after}");
}

#[test]
fn symlink_named_manifest_json() {
    let repo = repo_with(BAD, None);
    repo.symlink(
        "artifacts/job-x/run-link/manifest.json",
        "../../job-ok/run-1/manifest.json",
    );
    repo.commit("a linked manifest");
    let tree = repo.ls_tree("HEAD");
    assert!(
        tree["artifacts/job-x/run-link/manifest.json"].starts_with("120000 "),
        "committed as a link"
    );
    assert_rejected(
        &repo,
        "artifacts/job-x/run-link/manifest.json",
        Expect {
            kind: "symlink",
            says: &["symbolic link"],
            status_sees_it: true,
        },
    );
    // The link is still a link, to the same target.
    assert_eq!(
        std::fs::read_link(repo.path().join("artifacts/job-x/run-link/manifest.json")).unwrap(),
        std::path::Path::new("../../job-ok/run-1/manifest.json")
    );
}

#[test]
fn job_id_that_cannot_be_derived() {
    // Not <job_id>/<run_id>/manifest.json, and no job_ref: there is no job_id to add.
    let path = "artifacts/run-bad/manifest.json";
    let repo = repo_with(
        path,
        Some(b"{\"schema_version\": \"1.0.0\", \"run_id\": \"run-bad\"}\n"),
    );
    repo.commit("a manifest in the wrong place");
    assert_rejected(
        &repo,
        path,
        Expect {
            kind: "transform",
            says: &["cannot derive job_id", "1.0.0->1.2.0"],
            status_sees_it: false,
        },
    );
}

#[test]
fn a_symlinked_run_directory_is_never_followed() {
    // The legacy alias runs/<run_id> -> ../<job_id>/<run_id>: the run migrates once.
    let repo = repo_with(BAD, None);
    repo.symlink("artifacts/runs/run-1", "../job-ok/run-1");
    repo.commit("a legacy alias");
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 1, "{report:#}");
    assert_eq!(report["failed"], json!([]));
    let head = repo.head();
    assert_eq!(repo.changed_paths("HEAD~1", &head), [GOOD]);
    assert_eq!(
        repo.ls_tree("HEAD")["artifacts/runs/run-1"],
        repo.ls_tree("HEAD~1")["artifacts/runs/run-1"]
    );
}

#[test]
fn failure_lines_go_to_stderr() {
    // The brief for these tests: "stderr has exactly one line naming the file for that
    // failure (plus the summary line)"; stdout stays for the report a script would read.
    let repo = repo_with(BAD, Some(&fixture("broken/malformed.json")));
    repo.commit("a broken manifest");
    let run = repo.cli(["apply"]);
    run.expect_code(1);
    let naming: Vec<&str> = run
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains(BAD))
        .collect();
    assert_eq!(naming.len(), 1, "one stderr line names the file:\n{run}");
    assert!(
        !run.stdout.contains(BAD),
        "the error is not on stdout:\n{run}"
    );
}

#[test]
fn show_says_a_symlink_is_a_symlink() {
    // show must not read the link's target text as if it were the manifest.
    let repo = repo_with(BAD, None);
    repo.symlink(
        "artifacts/job-x/run-link/manifest.json",
        "../../job-ok/run-1/manifest.json",
    );
    repo.commit("a linked manifest");
    assert_show_fails(
        &repo,
        "artifacts/job-x/run-link/manifest.json",
        &["symbolic link"],
    );
}
