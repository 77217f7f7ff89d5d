//! The manifest merge driver (issue 12 item 5) with plain git as the referee: a branch made
//! before a batch that edits a manifest's last member conflicts textually with the batch; with
//! `merge-driver install` the same `git merge`, `git rebase` and `git cherry-pick` merge cleanly
//! with both changes, and a real conflict is left as git leaves one, naming the member.

mod common;

use std::process::Output;

use artifact_migrate::manifest::{render, Document, Style};
use common::*;
use serde_json::Value;

const RUN: &str = "spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90";

fn path() -> String {
    manifest_path(RUN)
}

/// The 1.0.0 sample written pretty with its own (unsorted) key order: a batch appends its new
/// members after the last one, `error`.
fn pretty_sample() -> String {
    let value = Document::parse(SAMPLE_V100).unwrap().value();
    render(&value, &Style::pretty("  ")) + "\n"
}

/// Runs plain git, returning the whole output whatever the exit status.
fn git_any(repo: &TestRepo, args: &[&str]) -> Output {
    repo.git_command().args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `main` has the run, then a batch; branch `annotate`, made before the batch, sets `error`
/// (the last member). Checked out: `annotate`.
fn batch_and_branch() -> (TestRepo, String, String) {
    let repo = TestRepo::new();
    repo.file(&path(), pretty_sample()).commit("record a run");
    repo.git(["checkout", "-q", "-b", "annotate"]);
    let edited = pretty_sample().replace("\"error\": null", "\"error\": \"caption 3 truncated\"");
    repo.file(&path(), edited)
        .commit("record the error the run hit");
    let edit = repo.head();
    repo.git(["checkout", "-q", "main"]);
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    repo.git(["checkout", "-q", "annotate"]);
    (repo, batch, edit)
}

/// Both changes are in the work tree's manifest: the batch's version and history, the branch's
/// `error`.
fn assert_both(repo: &TestRepo) {
    let doc: Value = serde_json::from_slice(&repo.file_bytes(&path())).unwrap();
    assert_eq!(doc["schema_version"], "1.2.0", "{doc:#}");
    assert_eq!(doc["migration_history"].as_array().unwrap().len(), 1);
    assert_eq!(doc["job_id"], "spring-launch-01");
    assert_eq!(doc["error"], "caption 3 truncated", "{doc:#}");
    assert_eq!(repo.porcelain(), "", "the work tree is clean");
}

fn install(repo: &TestRepo) {
    repo.cli(["merge-driver", "install"]).expect_code(0);
}

#[test]
fn merge_conflicts_without_the_driver_and_merges_with_it() {
    let (repo, batch, _) = batch_and_branch();
    let without = git_any(&repo, &["merge", "-q", "--no-edit", "main"]);
    assert!(!without.status.success(), "{}", text(&without));
    assert!(
        text(&without).contains("CONFLICT (content)"),
        "{}",
        text(&without)
    );
    repo.git(["merge", "--abort"]);

    install(&repo);
    let with = git_any(&repo, &["merge", "--no-edit", "main"]);
    assert!(with.status.success(), "{}", text(&with));
    assert_both(&repo);
    assert_eq!(
        repo.commit_count("HEAD^@"),
        3,
        "a merge commit with two parents"
    );

    // verify: the branch's edit reaches the batch's manifest through the merge, so it is drift
    // attributed to the merge commit (a warning, exit 0).
    let merge = repo.head();
    let run = repo.cli(["verify", "--json"]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["findings"], serde_json::json!([]), "{v:#}");
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["kind"], "drift");
    assert_eq!(w[0]["since"], batch.as_str());
    assert_eq!(w[0]["commits"][0]["commit"], merge.as_str(), "{v:#}");
    assert!(w[0]["problem"]
        .as_str()
        .unwrap()
        .starts_with("drift: error changed"));
}

#[test]
fn merge_the_other_way_round_keeps_the_batch_bytes() {
    let (repo, batch, _) = batch_and_branch();
    install(&repo);
    repo.git(["checkout", "-q", "main"]);
    let out = git_any(&repo, &["merge", "--no-edit", "annotate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_both(&repo);
    // Only the branch's line differs from the batch's file.
    let diff = repo.git(["diff", "--unified=0", &batch, "HEAD", "--", &path()]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-  \"error\": null,",
            "+  \"error\": \"caption 3 truncated\","
        ],
        "{diff}"
    );
}

#[test]
fn rebase_conflicts_without_the_driver_and_replays_with_it() {
    let (repo, _, _) = batch_and_branch();
    let without = git_any(&repo, &["rebase", "main"]);
    assert!(!without.status.success(), "{}", text(&without));
    repo.git(["rebase", "--abort"]);

    install(&repo);
    let with = git_any(&repo, &["rebase", "main"]);
    assert!(with.status.success(), "{}", text(&with));
    assert_both(&repo);
    assert_eq!(
        repo.rev("HEAD~1"),
        repo.rev("main"),
        "the edit replayed on the batch"
    );
}

#[test]
fn cherry_pick_conflicts_without_the_driver_and_applies_with_it() {
    let (repo, _, edit) = batch_and_branch();
    repo.git(["checkout", "-q", "main"]);
    let without = git_any(&repo, &["cherry-pick", &edit]);
    assert!(!without.status.success(), "{}", text(&without));
    repo.git(["cherry-pick", "--abort"]);

    install(&repo);
    let with = git_any(&repo, &["cherry-pick", &edit]);
    assert!(with.status.success(), "{}", text(&with));
    assert_both(&repo);
}

#[test]
fn a_real_conflict_is_left_as_git_leaves_one_naming_the_member() {
    let repo = TestRepo::new();
    repo.file(&path(), pretty_sample()).commit("record a run");
    repo.git(["checkout", "-q", "-b", "other"]);
    repo.file(
        &path(),
        pretty_sample().replace("\"succeeded\"", "\"failed\""),
    )
    .commit("the run failed");
    repo.git(["checkout", "-q", "main"]);
    repo.file(
        &path(),
        pretty_sample()
            .replace("\"succeeded\"", "\"cancelled\"")
            .replace("\"meta\": {}", "\"meta\": {\"by\": \"ops\"}"),
    )
    .commit("the run was cancelled");
    install(&repo);

    let out = git_any(&repo, &["merge", "--no-edit", "other"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "{}: 1 member(s) changed differently on both sides",
            path()
        )),
        "{said}"
    );
    assert!(
        said.contains("  /status: changed differently on both sides"),
        "{said}"
    );

    assert_eq!(
        repo.git(["status", "--porcelain"]),
        format!("UU {}\n", path())
    );
    let diff = repo.git(["diff"]);
    // Markers around the one member; the rest of the file merged (ours's `meta` edit kept).
    let markers: Vec<&str> = diff
        .lines()
        .filter(|l| {
            l.starts_with("++<<<<<<<") || l.starts_with("++=======") || l.starts_with("++>>>>>>>")
        })
        .collect();
    assert_eq!(markers.len(), 3, "{diff}");
    assert!(diff.contains(" +  \"status\": \"cancelled\","), "{diff}");
    assert!(diff.contains("+   \"status\": \"failed\","), "{diff}");
    let file = String::from_utf8(repo.file_bytes(&path())).unwrap();
    assert_eq!(file.matches("<<<<<<< ").count(), 1, "{file}");
    assert!(file.contains("\"meta\": {\"by\": \"ops\"}"), "{file}");
    // git's own resolution commands work on it.
    repo.git(["checkout", "--theirs", "--", &path()]);
    repo.git(["add", &path()]);
    repo.git(["commit", "-q", "--no-edit"]);
    let doc: Value = serde_json::from_slice(&repo.file_bytes(&path())).unwrap();
    assert_eq!(doc["status"], "failed");
}

#[test]
fn install_is_idempotent_and_shared_writes_gitattributes() {
    let repo = TestRepo::new();
    repo.file(&path(), pretty_sample()).commit("record a run");
    let first = repo.cli(["merge-driver", "install", "--json"]);
    first.expect_code(0);
    let r = first.json();
    assert_eq!(r["config_changed"], true);
    assert_eq!(r["attribute_added"], true);
    assert_eq!(
        r["attribute_line"],
        "artifacts/**/manifest.json merge=artifact-migrate"
    );
    let attributes = repo.git_dir().join("info").join("attributes");
    let before = std::fs::read_to_string(&attributes).unwrap();
    let config = repo.git(["config", "--local", "--get-regexp", "^merge\\."]);

    let again = repo.cli(["merge-driver", "install", "--json"]);
    again.expect_code(0);
    assert_eq!(again.json()["config_changed"], false);
    assert_eq!(again.json()["attribute_added"], false);
    assert_eq!(std::fs::read_to_string(&attributes).unwrap(), before);
    assert_eq!(
        before,
        "artifacts/**/manifest.json merge=artifact-migrate\n"
    );
    assert_eq!(
        repo.git(["config", "--local", "--get-regexp", "^merge\\."]),
        config
    );
    assert!(
        config.contains("merge.artifact-migrate.driver am="),
        "{config}"
    );
    // git itself reads the attribute for a manifest and not for another file.
    assert_eq!(
        repo.git(["check-attr", "merge", "--", &path(), "notes.json"]),
        format!(
            "{}: merge: artifact-migrate\nnotes.json: merge: unspecified\n",
            path()
        )
    );

    let shared = repo.cli(["merge-driver", "install", "--shared"]);
    shared.expect_code(0);
    assert!(
        shared.stdout.contains("commit .gitattributes to share it"),
        "{shared}"
    );
    assert_eq!(
        String::from_utf8(repo.file_bytes(".gitattributes")).unwrap(),
        "artifacts/**/manifest.json merge=artifact-migrate\n"
    );
    repo.cli(["merge-driver", "install", "--shared"])
        .expect_code(0);
    assert_eq!(
        repo.file_bytes(".gitattributes"),
        b"artifacts/**/manifest.json merge=artifact-migrate\n"
    );
}

#[test]
fn install_follows_the_configured_artifacts_root_and_manifest_name() {
    let repo = TestRepo::new();
    repo.file(
        ".artifact-migrate.toml",
        "artifacts_root = \"runs\"\nmanifest_name = \"run.json\"\n",
    )
    .commit("settings");
    let run = repo.cli(["merge-driver", "install", "--json"]);
    run.expect_code(0);
    assert_eq!(
        run.json()["attribute_line"],
        "runs/**/run.json merge=artifact-migrate"
    );
}

/// The three files git hands the driver (`%O %A %B`), in a temporary directory.
struct Three {
    dir: tempfile::TempDir,
}

impl Three {
    fn new(base: &str, ours: &str, theirs: &str) -> Three {
        let three = Three {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(three.file("o"), base).unwrap();
        three.sides(ours, theirs);
        three
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn sides(&self, ours: &str, theirs: &str) {
        std::fs::write(self.file("a"), ours).unwrap();
        std::fs::write(self.file("b"), theirs).unwrap();
    }

    /// `merge-driver run O A B [P]`.
    fn args(&self, path: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = vec!["merge-driver".into(), "run".into()];
        for f in ["o", "a", "b"] {
            args.push(self.file(f).display().to_string());
        }
        args.extend(path.map(str::to_string));
        args
    }

    /// What the driver left in `%A`.
    fn ours(&self) -> String {
        std::fs::read_to_string(self.file("a")).unwrap()
    }
}

#[test]
fn a_file_that_is_not_json_is_merged_line_by_line_with_a_warning() {
    let repo = TestRepo::new();
    let three = Three::new(
        "one\ntwo\nthree\n",
        "ONE\ntwo\nthree\n",
        "one\ntwo\nTHREE\n",
    );
    let run = repo.cli(three.args(Some("x/manifest.json")));
    run.expect_code(0);
    assert!(
        run.stderr.contains(
            "warning: x/manifest.json: merged line by line: the base version is not valid json"
        ),
        "{run}"
    );
    assert_eq!(three.ours(), "ONE\ntwo\nTHREE\n");

    three.sides("ONE\ntwo\nthree\n", "uno\ntwo\nthree\n");
    let run = repo.cli(three.args(Some("x/manifest.json")));
    run.expect_code(1);
    assert!(
        run.stderr.contains("x/manifest.json: conflicting lines"),
        "{run}"
    );
    assert!(three.ours().contains(
        "<<<<<<< ours:x/manifest.json\nONE\n=======\nuno\n>>>>>>> theirs:x/manifest.json\n"
    ));
}

#[test]
fn run_keeps_the_mode_of_ours() {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::new();
    let three = Three::new(
        r#"{"a": 1, "b": 1}"#,
        r#"{"a": 2, "b": 1}"#,
        r#"{"a": 1, "b": 2}"#,
    );
    std::fs::set_permissions(three.file("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
    repo.cli(three.args(None)).expect_code(0);
    assert_eq!(three.ours(), r#"{"a": 2, "b": 2}"#);
    assert_eq!(
        std::fs::metadata(three.file("a"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::read_dir(three.dir.path()).unwrap().count(),
        3,
        "no temporary file left"
    );
}

#[test]
fn human_output_of_install_and_of_a_conflict() {
    let repo = TestRepo::new();
    repo.file(&path(), r#"{"a": 1, "b": 1}"#)
        .commit("record a run");
    insta::assert_snapshot!(repo.transcript(["merge-driver", "install"]), @r"
    set merge.artifact-migrate.driver in the repository's git config
    added artifacts/**/manifest.json merge=artifact-migrate in [REPO]/.git/info/attributes
    ------- stderr -------
    [exit status: 0]
    ");
    insta::assert_snapshot!(repo.transcript(["merge-driver", "install", "--shared"]), @r"
    already set merge.artifact-migrate.driver in the repository's git config
    added artifacts/**/manifest.json merge=artifact-migrate in [REPO]/.gitattributes
    commit .gitattributes to share it; each clone runs `artifact-migrate merge-driver install` once to configure the driver
    ------- stderr -------
    [exit status: 0]
    ");
    let three = Three::new(
        "{\n  \"a\": 1,\n  \"b\": 1\n}\n",
        "{\n  \"a\": 2,\n  \"b\": 2\n}\n",
        "{\n  \"a\": 3,\n  \"b\": 1,\n  \"c\": 1\n}\n",
    );
    insta::assert_snapshot!(repo.transcript(three.args(Some("x/manifest.json"))), @r"
    ------- stderr -------
    error: x/manifest.json: 1 member(s) changed differently on both sides, left with conflict markers:
      /a: changed differently on both sides
    resolve the markers, `git add` the file and continue the merge (or keep one side with `git checkout --ours/--theirs`)
    [exit status: 1]
    ");
    insta::assert_snapshot!(three.ours(), @r#"
    {
    <<<<<<< ours:x/manifest.json
      "a": 2,
    =======
      "a": 3,
    >>>>>>> theirs:x/manifest.json
      "b": 2,
      "c": 1
    }
    "#);
}
