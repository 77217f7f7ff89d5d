//! The batch commit as plain git sees it: fsck, trailers, a clean status, only manifests in
//! the diff, inputs untouched, dirty manifests refused, `--branch`, bare repositories,
//! identity and dates, `-C`, pathspecs, `--keep-going`, `-m`, JSON errors, `demo`.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};

const P_FOUR: &str = "artifacts/job-b/run-4/manifest.json";
const P_CRLF: &str = "artifacts/job-c/run-crlf/manifest.json";
const P_ONELINE: &str = "artifacts/job-d/run-1line/manifest.json";
const P_INPUT_MANIFEST: &str =
    "artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/inputs/manifest.json";
const P_INPUT_BRIEF: &str =
    "artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/inputs/brief.resolved.json";
const P_STAGING: &str = "artifacts/job-b/.tmp/manifest.json";
const P_OUTPUT: &str = "artifacts/job-b/run-4/outputs/result.md";

const FOUR_SPACES: &str = "{\n    \"schema_version\": \"1.0.0\",\n    \"run_id\": \"run-4\",\n    \"job_ref\": \"jobs/job-b/brief.yaml\",\n    \"status\": \"succeeded\",\n    \"meta\": {\n        \"note\": \"four spaces\"\n    }\n}\n";
const CRLF: &str = "{\r\n  \"job_id\": \"job-c\",\r\n  \"run_id\": \"run-crlf\",\r\n  \"schema_version\": \"1.1.0\",\r\n  \"status\": \"succeeded\"\r\n}\r\n";
const ONE_LINE: &str =
    "{\"run_id\":\"run-1line\",\"status\":\"failed\",\"error\":{\"message\":\"boom\"}}";
const INPUT_MANIFEST: &str = "{\"schema_version\": \"0.1\"}\n";
const STAGING: &str = "{\"partial\": true";

fn p100() -> String {
    manifest_path(&format!("{JOB}/{RUN_100}"))
}
fn p110() -> String {
    manifest_path(&format!("{JOB}/{RUN_110}"))
}
fn p120() -> String {
    manifest_path(&format!("{JOB}/{RUN_120}"))
}

/// The manifests `populated()` has that need migrating, sorted.
fn pending_paths() -> Vec<String> {
    let mut v = vec![
        p100(),
        p110(),
        P_FOUR.to_string(),
        P_CRLF.to_string(),
        P_ONELINE.to_string(),
    ];
    v.sort();
    v
}

/// A repository like the pipeline's: the three samples in their real shapes, a 4-space
/// 1.0.0 manifest, a CRLF 1.1.0 one, a minified one-line one without `schema_version`, input
/// snapshots (one of them named manifest.json), a staging directory, outputs, a README.
fn populated() -> TestRepo {
    let repo = TestRepo::new();
    repo.sample_files()
        .file(P_FOUR, FOUR_SPACES)
        .file(P_CRLF, CRLF)
        .file(P_ONELINE, ONE_LINE)
        .file(P_INPUT_MANIFEST, INPUT_MANIFEST)
        .file(P_INPUT_BRIEF, "{\"brief\": \"spring launch\"}\n")
        .file(P_STAGING, STAGING)
        .file(P_OUTPUT, "result\n")
        .file("README.md", "artifacts\n")
        .commit("record runs");
    repo
}

/// Checks a manifest's diff: lines are only added, except the `schema_version` line and a
/// last member that gains its comma.
fn assert_diff_only_adds(diff: &str) -> (Vec<String>, Vec<String>) {
    // split('\n'), not lines(): lines() would eat the \r of CRLF lines.
    let removed: Vec<String> = diff
        .split('\n')
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .map(|l| l[1..].to_string())
        .collect();
    let added: Vec<String> = diff
        .split('\n')
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| l[1..].to_string())
        .collect();
    assert!(!added.is_empty(), "nothing added:\n{diff}");
    for r in &removed {
        let r_trim = r.trim_end_matches('\r');
        let ok = r.contains("\"schema_version\"")
            || added
                .iter()
                .any(|a| a.trim_end_matches('\r') == format!("{r_trim},"));
        assert!(ok, "line {r:?} was removed or rewritten:\n{diff}");
    }
    (removed, added)
}

#[test]
fn the_batch_commit_passes_git_fsck_strict() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);
    let out = repo
        .git_command()
        .args(["fsck", "--strict", "--full", "--no-progress"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "git fsck failed:\n{text}");
    assert!(
        !text.contains("error") && !text.contains("warning") && !text.contains("dangling"),
        "git fsck found problems:\n{text}"
    );
    // The new commit and its trees and blobs are readable objects.
    let objects = repo.git(["rev-list", "--objects", "HEAD~1..HEAD"]);
    assert!(objects.lines().count() > 5, "{objects}");
}

/// The `Migration-Registry` checksum of the built-in migrations alone.
static BUILTIN_REGISTRY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let r = artifact_migrate::schema::Registry::with_builtins();
    artifact_migrate::schema::checksum::registry_checksum(&r.migrations())
});

#[test]
fn plain_git_reads_the_trailers() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);

    let trailers = repo.trailers("HEAD");
    let expect: Vec<(String, String)> = [
        ("Migration-Target", "1.2.0"),
        ("Migration-Manifests", "5"),
        ("Migration-Step", "1.0.0->1.2.0 3"),
        ("Migration-Step", "1.1.0->1.2.0 2"),
        ("Migration-Registry", BUILTIN_REGISTRY.as_str()),
        ("Migration-Applied-At", APPLIED_AT),
        ("Migration-Tool", TOOL),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(trailers, expect);

    let target = repo.git([
        "log",
        "-1",
        "--format=%(trailers:key=Migration-Target,valueonly)",
    ]);
    assert_eq!(target.trim(), "1.2.0");
    let steps = repo.git([
        "log",
        "-1",
        "--format=%(trailers:key=Migration-Step,valueonly,separator=%x2C)",
    ]);
    assert_eq!(steps.trim(), "1.0.0->1.2.0 3,1.1.0->1.2.0 2");

    let subject = repo.git(["log", "-1", "--format=%s"]);
    assert_eq!(subject.trim(), "migrate: 5 manifests to schema 1.2.0");
    let body = repo.message("HEAD");
    assert!(body.contains("\nAlready current: 1.\n"), "{body}");
    assert!(
        body.contains("1.0.0 -> 1.2.0 (3 manifests)\n"),
        "the body groups by step:\n{body}"
    );
}

#[test]
fn working_tree_and_index_are_clean_after_apply() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);
    assert_eq!(repo.porcelain(), "");
    assert_eq!(repo.git(["diff", "--cached", "--name-only"]), "");
    // The index has the new blobs, and every migrated file on disk is the committed blob.
    let tree = repo.ls_tree("HEAD");
    let index = repo.git(["ls-files", "-s", "-z"]);
    for entry in index.split('\0').filter(|e| !e.is_empty()) {
        let (meta, path) = entry.split_once('\t').unwrap();
        let mut m = meta.split(' ');
        let (mode, id) = (m.next().unwrap(), m.next().unwrap());
        assert_eq!(
            tree[path],
            format!("{mode} blob {id}"),
            "index entry of {path}"
        );
    }
    for path in pending_paths() {
        assert_eq!(repo.file_bytes(&path), repo.show("HEAD", &path), "{path}");
    }
}

#[test]
fn only_manifest_paths_change_in_the_batch() {
    let repo = populated();
    let before = repo.ls_tree("HEAD");
    repo.cli(["apply"]).expect_code(0);
    assert_eq!(repo.changed_paths("HEAD~1", "HEAD"), pending_paths());
    let after = repo.ls_tree("HEAD");
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no path added or removed"
    );
    assert_eq!(
        after[&p120()],
        before[&p120()],
        "the current one is the same blob"
    );
    let summary = repo.git(["diff", "--summary", "HEAD~1", "HEAD"]);
    assert_eq!(summary, "", "no mode changes, creations or deletions");
    for (path, meta) in &before {
        if !pending_paths().contains(path) {
            assert_eq!(&after[path], meta, "{path} changed");
        } else {
            assert!(meta.starts_with("100644 blob "), "{path}: {meta}");
            assert!(after[path].starts_with("100644 blob "), "{path} mode kept");
        }
    }
}

#[test]
fn inputs_staging_and_outputs_are_untouched() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);
    for (path, bytes) in [
        (P_INPUT_MANIFEST, INPUT_MANIFEST.as_bytes()),
        (
            P_INPUT_BRIEF,
            b"{\"brief\": \"spring launch\"}\n".as_slice(),
        ),
        (P_STAGING, STAGING.as_bytes()),
        (P_OUTPUT, b"result\n".as_slice()),
    ] {
        assert_eq!(repo.file_bytes(path), bytes, "{path} on disk");
        assert_eq!(repo.show("HEAD", path), bytes, "{path} in HEAD");
    }
    // status agrees: they are not manifests at all.
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["total"], 6, "{status:#}");
    assert_eq!(status["invalid"], json!([]));
}

#[test]
fn the_diff_of_a_migrated_manifest_only_adds_lines() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);

    // Sorted keys: new members go to their sorted places; only schema_version is rewritten.
    let diff = repo.git(["diff", "HEAD~1", "HEAD", "--", &p110()]);
    let (removed, added) = assert_diff_only_adds(&diff);
    assert_eq!(removed, ["  \"schema_version\": \"1.1.0\","], "{diff}");
    assert!(added.contains(&"  \"schema_version\": \"1.2.0\",".to_string()));
    assert!(
        added.contains(&"  \"chain_metadata\": {".to_string()),
        "{diff}"
    );
    assert!(
        added.contains(&"  \"migration_history\": [".to_string()),
        "{diff}"
    );

    // Unsorted 4-space: new members after the last one, which gains a comma.
    let diff = repo.git(["diff", "HEAD~1", "HEAD", "--", P_FOUR]);
    let (removed, added) = assert_diff_only_adds(&diff);
    assert_eq!(
        removed,
        ["    \"schema_version\": \"1.0.0\",", "    }"],
        "{diff}"
    );
    assert!(
        added.contains(&"    \"job_id\": \"job-b\",".to_string()),
        "{diff}"
    );
    assert!(
        added
            .iter()
            .all(|l| (l.len() - l.trim_start().len()) % 4 == 0),
        "4-space indentation:\n{diff}"
    );

    // CRLF: the added lines end in CRLF too.
    let diff = repo.git(["diff", "HEAD~1", "HEAD", "--", P_CRLF]);
    let (removed, added) = assert_diff_only_adds(&diff);
    // Its keys are sorted: new members go to their sorted places.
    assert_eq!(removed, ["  \"schema_version\": \"1.1.0\",\r"], "{diff:?}");
    assert!(added.iter().all(|l| l.ends_with('\r')), "{diff:?}");
}

#[test]
fn a_dirty_manifest_is_refused_and_nothing_is_committed() {
    let repo = populated();
    let head = repo.head();
    let mut edited = SAMPLE_V110.to_vec();
    edited.extend_from_slice(b"\n");
    repo.file(&p110(), &edited);
    let files = repo.worktree_snapshot();
    let objects = repo.count_objects();

    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["dirty"], json!([p110()]));

    let run = repo.cli(["apply"]);
    run.expect_code(3);
    assert_eq!(run.stderr_lines().len(), 1, "{run}");
    assert!(run.stderr.starts_with("error: "), "{run}");
    assert!(run.stderr.contains(&p110()), "names the file:\n{run}");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files, "the user's edit is kept");
    assert_eq!(repo.count_objects(), objects);

    let json = repo.cli(["apply", "--json"]);
    let err = json.expect_code(3).json();
    assert_eq!(err["error"]["kind"], "refused");
    assert_eq!(err["error"]["path"], p110());
    assert!(err["error"]["message"].as_str().unwrap().contains(&p110()));

    // Staged counts as dirty too.
    repo.git(["add", &p110()]);
    repo.cli(["apply"]).expect_code(3);
    assert_eq!(repo.head(), head);

    // A pathspec that leaves the dirty manifest out is fine.
    let other = repo.cli(["apply", "--json", "artifacts/job-b"]);
    assert_eq!(other.expect_code(0).json()["migrated"], 1);
    assert_eq!(repo.changed_paths("HEAD~1", "HEAD"), [P_FOUR]);
    assert_eq!(repo.file_bytes(&p110()), edited);
}

#[test]
fn unrelated_dirty_and_untracked_files_are_left_alone() {
    let repo = populated();
    repo.file("README.md", "edited by hand\n")
        .file("notes.txt", "scratch\n")
        .file(P_OUTPUT, "regenerated\n")
        .manifest("job-new/run-1", json!({"run_id": "run-1"}));
    let untracked_manifest = manifest_path("job-new/run-1");
    let untracked_bytes = repo.file_bytes(&untracked_manifest);

    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["untracked"], json!([untracked_manifest]));
    assert_eq!(status["dirty"], json!([]));

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 5);
    assert_eq!(repo.changed_paths("HEAD~1", "HEAD"), pending_paths());
    assert_eq!(repo.file_bytes("README.md"), b"edited by hand\n");
    assert_eq!(repo.file_bytes(P_OUTPUT), b"regenerated\n");
    assert_eq!(repo.file_bytes("notes.txt"), b"scratch\n");
    assert_eq!(repo.file_bytes(&untracked_manifest), untracked_bytes);
    let porcelain: BTreeSet<String> = repo.porcelain().lines().map(str::to_string).collect();
    let expect: BTreeSet<String> = [
        " M README.md".to_string(),
        format!(" M {P_OUTPUT}"),
        "?? notes.txt".to_string(),
        format!("?? {untracked_manifest}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(porcelain, expect);
}

#[test]
fn branch_commits_without_touching_the_working_tree_or_head() {
    let repo = populated();
    let main = repo.head();
    let files = repo.worktree_snapshot();
    let index = std::fs::read(repo.git_dir().join("index")).unwrap();

    let report = repo
        .cli(["apply", "--branch", "review", "--json"])
        .expect_code(0)
        .json();
    let commit = report["commit"].as_str().unwrap().to_string();
    assert_eq!(report["branch"], "refs/heads/review");
    assert_eq!(report["migrated"], 5);
    assert_eq!(repo.rev("refs/heads/review"), commit);
    assert_eq!(repo.rev("review~1"), main);
    assert_eq!(repo.head(), main);
    assert_eq!(repo.rev("refs/heads/main"), main);
    assert_eq!(
        std::fs::read_to_string(repo.git_dir().join("HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(std::fs::read(repo.git_dir().join("index")).unwrap(), index);
    assert_eq!(repo.porcelain(), "");
    assert_eq!(repo.changed_paths("main", "review"), pending_paths());
    assert_eq!(repo.show_json("review", &p100())["schema_version"], "1.2.0");

    // Again on the same branch: it is now current there.
    let again = repo
        .cli(["apply", "--branch", "review", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(again["commit"], Value::Null);
    assert_eq!(repo.rev("review"), commit);
}

#[test]
fn apply_in_a_bare_repository() {
    let src = populated();
    let bare = src.bare_clone();
    let main = bare.rev("main");

    let report = bare.cli(["apply", "--json"]).expect_code(0).json();
    let commit = report["commit"].as_str().unwrap();
    assert_eq!(report["branch"], "refs/heads/main");
    assert_eq!(bare.rev("main"), commit);
    assert_eq!(bare.rev("main~1"), main);
    assert_eq!(bare.changed_paths("main~1", "main"), pending_paths());
    assert_eq!(
        bare.trailers("main")[0],
        ("Migration-Target".into(), "1.2.0".into())
    );
    let fsck = bare.git(["fsck", "--strict", "--no-progress"]);
    assert!(!fsck.contains("error"), "{fsck}");
    // Nothing that looks like a working tree appeared in the bare repository.
    assert!(!bare.path().join("artifacts").exists());
}

#[test]
fn apply_with_branch_in_a_bare_repository() {
    let src = populated();
    let bare = src.bare_clone();
    let main = bare.rev("main");

    let report = bare
        .cli(["apply", "--branch", "review", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(report["branch"], "refs/heads/review");
    assert_eq!(bare.rev("main"), main, "main did not move");
    assert_eq!(bare.rev("review"), report["commit"].as_str().unwrap());
    assert_eq!(bare.rev("review~1"), main);
    assert_eq!(bare.changed_paths("main", "review"), pending_paths());
}

#[test]
fn author_and_committer_come_from_git_env() {
    let repo = populated();
    repo.cli(["apply"]).expect_code(0);
    let who = repo.git(["log", "-1", "--format=%an|%ae|%cn|%ce|%at|%ct"]);
    assert_eq!(
        who.trim(),
        format!("{AUTHOR_NAME}|{AUTHOR_EMAIL}|{COMMITTER_NAME}|{COMMITTER_EMAIL}|{EPOCH}|{EPOCH}")
    );
}

#[test]
fn author_and_committer_come_from_git_config_without_env() {
    let repo = populated();
    let mut cmd = repo.cli_command();
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ] {
        cmd.env_remove(var);
    }
    repo.run(cmd, ["apply"]).expect_code(0);
    let who = repo.git(["log", "-1", "--format=%an|%ae|%cn|%ce"]);
    assert_eq!(
        who.trim(),
        format!("{CONFIG_NAME}|{CONFIG_EMAIL}|{CONFIG_NAME}|{CONFIG_EMAIL}")
    );
}

#[test]
fn no_identity_is_an_environment_error_and_commits_nothing() {
    let src = populated();
    // A bare clone has no user.name of its own, and HOME is empty.
    let bare = src.bare_clone();
    let main = bare.rev("main");
    let objects = bare.count_objects();
    let mut cmd = bare.cli_command();
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ] {
        cmd.env_remove(var);
    }
    let run = bare.run(cmd, ["apply", "--json"]);
    let err = run.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "environment");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("user.name"), "{message}");
    assert_eq!(bare.rev("main"), main);
    assert_eq!(bare.count_objects(), objects, "no object was written");
}

#[test]
fn source_date_epoch_makes_the_commit_reproducible() {
    let repo = populated();
    let a = repo.copy();
    let b = repo.copy();
    let c = repo.copy();

    let ca = a.cli(["apply", "--json"]).expect_code(0).json()["commit"].clone();
    let cb = b.cli(["apply", "--json"]).expect_code(0).json()["commit"].clone();
    assert!(ca.is_string());
    assert_eq!(ca, cb, "same tree, identity and epoch: same commit");
    assert_eq!(a.worktree_snapshot(), b.worktree_snapshot());

    let mut cmd = c.cli_command();
    cmd.env("SOURCE_DATE_EPOCH", "1767225601");
    let cc = c.run(cmd, ["apply", "--json"]).expect_code(0).json()["commit"].clone();
    assert_ne!(cc, ca, "the epoch is part of the commit");
    assert_eq!(
        last_history(&c.show_json("HEAD", &p100()))["applied_at"],
        "2026-01-01T00:00:01Z"
    );
    assert_eq!(
        c.git([
            "log",
            "-1",
            "--format=%(trailers:key=Migration-Applied-At,valueonly)"
        ])
        .trim(),
        "2026-01-01T00:00:01Z"
    );
}

#[test]
fn dash_c_works_from_another_directory() {
    let repo = populated();
    // cli_command runs in the empty HOME, which is not a repository, with -C <repo>.
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 5);
    assert_eq!(repo.head(), report["commit"].as_str().unwrap());
}

#[test]
fn relative_pathspecs_resolve_from_a_subdirectory() {
    let repo = populated();
    let base = repo.head();
    let cmd = repo.cli_command_in(&repo.path().join("artifacts/job-b"));
    let run = repo.run(cmd, ["apply", "--json", "run-4"]);
    let report = run.expect_code(0).json();
    assert_eq!(report["migrated"], 1, "{report:#}");
    assert_eq!(repo.changed_paths(&base, "HEAD"), [P_FOUR]);
}

#[test]
fn a_pathspec_limits_the_batch() {
    let repo = populated();
    let base = repo.head();
    let report = repo
        .cli(["apply", "--json", "artifacts/spring-launch-01", P_CRLF])
        .expect_code(0)
        .json();
    assert_eq!(report["migrated"], 3, "{report:#}");
    assert_eq!(report["already_current"], 1);
    let mut expect = vec![p100(), p110(), P_CRLF.to_string()];
    expect.sort();
    assert_eq!(repo.changed_paths(&base, "HEAD"), expect);
    assert_eq!(
        repo.trailers("HEAD")[1],
        ("Migration-Manifests".into(), "3".into())
    );

    // The rest is still pending.
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["pending"], 2);
    // A prefix that is not a whole directory name matches nothing.
    let none = repo
        .cli(["apply", "--json", "artifacts/job"])
        .expect_code(0)
        .json();
    assert_eq!(none["commit"], Value::Null);
    assert_eq!(none["migrated"], 0);
}

#[test]
fn keep_going_commits_the_good_ones_and_exits_1() {
    let repo = populated();
    let broken = manifest_path("job-e/run-bad");
    repo.file(&broken, "{\"run_id\": \"run-bad\",}\n")
        .commit("a broken manifest");
    let base = repo.head();

    let strict = repo.cli(["apply", "--json"]);
    let report = strict.expect_code(1).json();
    assert_eq!(report["commit"], Value::Null);
    assert_eq!(paths_of(&report["failed"]), std::slice::from_ref(&broken));
    assert_eq!(repo.head(), base);

    let run = repo.cli(["apply", "--keep-going", "--json"]);
    let report = run.expect_code(1).json();
    let commit = report["commit"].as_str().expect("a commit").to_string();
    assert_eq!(report["migrated"], 5);
    assert_eq!(paths_of(&report["failed"]), std::slice::from_ref(&broken));
    assert_eq!(repo.head(), commit);
    assert_eq!(repo.rev("HEAD~1"), base);
    assert_eq!(repo.changed_paths(&base, "HEAD"), pending_paths());
    assert_eq!(repo.file_bytes(&broken), b"{\"run_id\": \"run-bad\",}\n");
    let body = repo.message("HEAD");
    assert!(
        body.contains("Failed and left unchanged (--keep-going): 1."),
        "{body}"
    );
    assert_eq!(
        repo.trailers("HEAD")[1],
        ("Migration-Manifests".into(), "5".into())
    );
    assert_eq!(repo.porcelain(), "");
}

#[test]
fn message_flag_sets_the_subject_and_keeps_the_trailers() {
    let repo = populated();
    repo.cli(["apply", "-m", "Schema 1.2.0 for Q1"])
        .expect_code(0);
    assert_eq!(
        repo.git(["log", "-1", "--format=%s"]).trim(),
        "Schema 1.2.0 for Q1"
    );
    let keys: Vec<String> = repo.trailers("HEAD").into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "Migration-Target",
            "Migration-Manifests",
            "Migration-Step",
            "Migration-Step",
            "Migration-Registry",
            "Migration-Applied-At",
            "Migration-Tool"
        ]
    );
}

#[test]
fn not_a_repository_is_a_json_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let repo = populated();
    let mut cmd = repo.cli_command_in(dir.path());
    cmd.arg("-C").arg(dir.path());
    let run = repo.run(cmd, ["status", "--json"]);
    let err = run.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "environment");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a git repository"),
        "{run}"
    );
    assert_eq!(run.stderr, "");

    // Without -C, started in a directory that is not in a repository.
    let human = repo.run(repo.cli_command_in(dir.path()), ["apply"]);
    human.expect_code(2);
    assert_eq!(human.stdout, "");
    assert_eq!(human.stderr_lines().len(), 1, "{human}");
    assert!(
        human.stderr.starts_with("error: not a git repository"),
        "{human}"
    );
}

#[test]
fn usage_errors_are_exit_2_with_json() {
    let repo = populated();
    let head = repo.head();
    let unknown = repo.cli(["apply", "--to", "9.9.9", "--json"]);
    let err = unknown.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "usage");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("9.9.9") && message.contains("1.2.0"),
        "{message}"
    );

    let bad_flag = repo.cli(["apply", "--no-such-flag", "--json"]);
    assert_eq!(bad_flag.expect_code(2).json()["error"]["kind"], "usage");
    let bad_version = repo.cli(["plan", "--to", "one", "--json"]);
    assert_eq!(bad_version.expect_code(2).json()["error"]["kind"], "usage");
    assert_eq!(repo.head(), head);
}

#[test]
fn status_reports_versions_and_check_gates_ci() {
    let repo = populated();
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["head"], repo.head());
    assert_eq!(status["branch"], "main");
    assert_eq!(status["latest"], "1.2.0");
    assert_eq!(status["total"], 6);
    assert_eq!(
        status["versions"],
        json!({"1.0.0": 3, "1.1.0": 2, "1.2.0": 1})
    );
    assert_eq!(status["pending"], 5);
    assert_eq!(status["dirty"], json!([]));
    assert_eq!(status["untracked"], json!([]));
    repo.cli(["status", "--check"]).expect_code(1);

    repo.cli(["apply"]).expect_code(0);
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["versions"], json!({"1.2.0": 6}));
    assert_eq!(status["pending"], 0);
    let check = repo.cli(["status", "--check", "--json"]);
    assert_eq!(check.expect_code(0).json()["pending"], 0);
}

#[test]
fn show_migrates_in_memory_what_apply_then_commits() {
    let repo = populated();
    let files = repo.worktree_snapshot();
    let objects = repo.count_objects();

    let shown = repo.cli(["show", P_FOUR, "--json"]).expect_code(0).json();
    assert_eq!(shown["path"], P_FOUR);
    assert_eq!(shown["from"], "1.0.0");
    assert_eq!(shown["to"], "1.2.0");
    assert_eq!(strings(&shown["steps"]), ["1.0.0->1.2.0"]);
    let raw = repo.cli(["show", P_FOUR]);
    raw.expect_code(0);
    assert_eq!(raw.stdout, shown["content"].as_str().unwrap());
    let as_110 = repo.cli(["show", P_FOUR, "--as", "1.1.0", "--json"]);
    assert_eq!(as_110.expect_code(0).json()["to"], "1.1.0");
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(repo.count_objects(), objects);

    repo.cli(["apply"]).expect_code(0);
    assert_eq!(
        repo.show("HEAD", P_FOUR),
        shown["content"].as_str().unwrap().as_bytes(),
        "same base, same epoch: show's bytes are apply's bytes"
    );
}

#[test]
fn demo_builds_a_repository_and_migrates_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let repo = TestRepo::new();
    let run = repo.cli(["demo", target.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout.contains("$ artifact-migrate apply"), "{run}");

    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&target)
            .args(args)
            .env("HOME", repo.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(git(&["status", "--porcelain", "--untracked-files=all"]), "");
    // The walk-through: the sample runs, a batch, its rollback, the batch again.
    let subjects = git(&["log", "--format=%s"]);
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        [
            "migrate: spring-launch-01 to schema 1.2.0, again",
            "Revert \"migrate: 2 manifests to schema 1.2.0\"",
            "migrate: 2 manifests to schema 1.2.0",
            "Record three runs of spring-launch-01",
        ]
    );
    let trailer = |key: &str, rev: &str| {
        git(&[
            "log",
            "-1",
            &format!("--format=%(trailers:key={key},valueonly)"),
            rev,
        ])
        .trim()
        .to_string()
    };
    for rev in ["HEAD", "HEAD~2"] {
        assert_eq!(trailer("Migration-Target", rev), "1.2.0", "{rev}");
        assert_eq!(trailer("Migration-Manifests", rev), "2", "{rev}");
        let changed = git(&["diff", "--name-only", &format!("{rev}~1"), rev]);
        assert_eq!(changed.lines().count(), 2, "{rev}: {changed}");
        assert!(
            changed.lines().all(|l| l.ends_with("/manifest.json")
                && !l.contains("/inputs/")
                && !l.contains("/.tmp/")),
            "{changed}"
        );
    }
    let batch = git(&["rev-parse", "HEAD~2"]);
    assert_eq!(trailer("Migration-Rollback-Of", "HEAD~1"), batch.trim());
    // The rollback restored the batch's parent tree byte for byte.
    assert_eq!(
        git(&["rev-parse", "HEAD~1^{tree}"]),
        git(&["rev-parse", "HEAD~3^{tree}"])
    );

    // A second demo into a non-empty directory is a usage error.
    repo.cli(["demo", target.to_str().unwrap()]).expect_code(2);
}

#[test]
fn identical_run_directories_migrate_in_one_batch() {
    // Two runs whose directories hold byte-identical manifests (a copied run): after the
    // migration their blobs and their directory trees are identical too, and the pack must
    // hold each object once.
    let repo = TestRepo::new();
    let manifest = "{\n  \"job_id\": \"job-a\",\n  \"run_id\": \"run-1\",\n  \"schema_version\": \"1.1.0\"\n}\n";
    repo.file("artifacts/job-a/run-1/manifest.json", manifest)
        .file("artifacts/job-a-copy/run-1/manifest.json", manifest)
        .commit("a run and its copy");
    let base = repo.head();

    let run = repo.cli(["apply", "--json"]);
    let report = run.expect_code(0).json();
    assert_eq!(report["migrated"], 2, "{run}");
    assert_eq!(
        repo.changed_paths(&base, "HEAD"),
        [
            "artifacts/job-a-copy/run-1/manifest.json",
            "artifacts/job-a/run-1/manifest.json"
        ]
    );
    let fsck = repo.git(["fsck", "--strict", "--no-progress"]);
    assert!(!fsck.contains("error"), "{fsck}");
    assert_eq!(repo.porcelain(), "");
}

#[test]
fn a_detached_head_moves_alone() {
    let repo = populated();
    let base = repo.head();
    repo.git(["checkout", "-q", "--detach", "HEAD"]);
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["branch"], "HEAD");
    let commit = report["commit"].as_str().unwrap().to_string();
    assert_eq!(repo.head(), commit);
    assert_eq!(repo.rev("HEAD~1"), base);
    assert_eq!(repo.rev("refs/heads/main"), base, "main did not move");
    let head_file = std::fs::read_to_string(repo.git_dir().join("HEAD")).unwrap();
    assert_eq!(head_file.trim(), commit, "HEAD stays detached");
    assert_eq!(repo.porcelain(), "");
}

#[test]
fn an_executable_manifest_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let repo = populated();
    let abs = repo.path().join(P_FOUR);
    std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.commit("an executable manifest (it happens)");
    repo.cli(["apply"]).expect_code(0);
    assert!(repo.ls_tree("HEAD")[P_FOUR].starts_with("100755 blob "));
    let mode = std::fs::metadata(&abs).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "still executable on disk");
    assert_eq!(repo.porcelain(), "");
}

#[test]
fn an_unrelated_staged_change_stays_staged_and_out_of_the_batch() {
    let repo = populated();
    repo.file("README.md", "staged by the user\n");
    repo.git(["add", "README.md"]);
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 5, "{report:#}");
    assert_eq!(repo.changed_paths("HEAD~1", "HEAD"), pending_paths());
    assert_eq!(repo.show("HEAD", "README.md"), b"artifacts\n");
    assert_eq!(repo.porcelain(), "M  README.md\n");
    assert_eq!(
        repo.git(["diff", "--cached", "--name-only"]),
        "README.md\n",
        "the user's staged change is still staged, nothing else is"
    );
}

#[test]
fn dash_c_with_a_relative_path() {
    let repo = populated();
    let parent = repo.path().parent().unwrap().to_path_buf();
    let name = repo.path().file_name().unwrap().to_owned();
    let mut cmd = repo.cli_command_in(&parent);
    cmd.arg("-C").arg(&name);
    let report = repo.run(cmd, ["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 5);
    assert_eq!(report["commit"].as_str(), Some(repo.head().as_str()));
}

#[test]
fn the_artifacts_root_comes_from_the_flag_or_the_config_file() {
    let repo = TestRepo::new();
    repo.file(
        "records/job-a/run-1/manifest.json",
        "{\"run_id\": \"run-1\"}\n",
    )
    .file(
        "artifacts/job-b/run-2/manifest.json",
        "{\"run_id\": \"run-2\"}\n",
    )
    .commit("two roots");

    let default = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(default["total"], 1);
    let flagged = repo
        .cli(["--artifacts", "records", "plan", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        paths_of(&flagged["migrate"]),
        ["records/job-a/run-1/manifest.json"]
    );

    repo.file(".artifact-migrate.toml", "artifacts_root = \"records\"\n")
        .commit("configure the root");
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 1);
    assert_eq!(
        repo.changed_paths("HEAD~1", "HEAD"),
        ["records/job-a/run-1/manifest.json"]
    );
    let after = repo.show_json("HEAD", "records/job-a/run-1/manifest.json");
    assert_eq!(
        after["job_id"], "job-a",
        "the path below the configured root"
    );
}

#[test]
fn a_sparse_checkout_migrates_manifests_that_are_not_checked_out() {
    // Big artifact repositories are often sparse: a manifest outside the sparse cone is
    // neither modified nor staged (git status is clean), so it is not dirty.
    let repo = populated();
    repo.git([
        "sparse-checkout",
        "set",
        "artifacts/job-b",
        "artifacts/job-c",
    ]);
    assert!(!repo.path().join(p100()).exists());
    assert_eq!(repo.porcelain(), "");

    let run = repo.cli(["apply", "--json"]);
    let report = run.expect_code(0).json();
    assert_eq!(report["migrated"], 5, "{run}");
    assert_eq!(repo.changed_paths("HEAD~1", "HEAD"), pending_paths());
    assert_eq!(
        repo.porcelain(),
        "",
        "the index follows HEAD, sparse entries too"
    );
    assert_eq!(repo.git(["diff", "--cached", "--name-only"]), "");
    assert!(!repo.path().join(p100()).exists(), "still not checked out");
    assert_eq!(repo.file_bytes(P_FOUR), repo.show("HEAD", P_FOUR));
}

/// Found by the trailers fuzz target: `-m "---"` made a message whose trailers plain git
/// does not read (a `---` line starts a patch), so `log` lost the batch.
#[test]
fn a_subject_like_a_patch_separator_keeps_the_batch_readable() {
    let repo = TestRepo::with_samples();
    repo.cli(["apply", "--message=--- schema bump"])
        .expect_code(0);
    assert_eq!(
        repo.message("HEAD").lines().next(),
        Some("migrate: --- schema bump")
    );
    let trailers = repo.trailers("HEAD");
    assert!(
        trailers.contains(&("Migration-Target".to_string(), "1.2.0".to_string())),
        "{trailers:?}"
    );
    let log = repo.cli(["log", "--json"]);
    assert_eq!(
        log.expect_code(0).json().as_array().map(Vec::len),
        Some(1),
        "{log}"
    );
}

/// The versions git holds at HEAD: each manifest's `schema_version` as `git show` prints it
/// (`inputs/` and dot-directories are not runs), and the manifests that are not JSON.
fn versions_by_git(repo: &TestRepo) -> (Value, Vec<String>) {
    let mut versions = serde_json::Map::new();
    let mut invalid = Vec::new();
    let names = repo.git(["ls-tree", "-r", "--name-only", "HEAD", "artifacts"]);
    for path in names
        .lines()
        .filter(|p| p.ends_with("/manifest.json") && !p.contains("/inputs/") && !p.contains("/."))
    {
        match serde_json::from_slice::<Value>(&repo.show("HEAD", path)) {
            Ok(doc) => {
                let v = doc["schema_version"].as_str().unwrap().to_string();
                let n = versions.entry(v).or_insert(json!(0));
                *n = json!(n.as_u64().unwrap() + 1);
            }
            Err(_) => invalid.push(path.to_string()),
        }
    }
    (Value::Object(versions), invalid)
}

/// The manifests `git status` reports: modified, deleted or staged ones, and untracked ones.
fn manifest_status_by_git(repo: &TestRepo, pathspec: &str) -> (Vec<String>, Vec<String>) {
    let porcelain = repo.git([
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--",
        pathspec,
    ]);
    let (mut dirty, mut untracked) = (Vec::new(), Vec::new());
    for line in porcelain.lines() {
        let (code, path) = line.split_at(3);
        if !path.ends_with("/manifest.json") {
            continue;
        }
        if code == "?? " {
            untracked.push(path.to_string());
        } else {
            dirty.push(path.to_string());
        }
    }
    dirty.sort();
    untracked.sort();
    (dirty, untracked)
}

#[test]
fn status_of_a_packed_repository_agrees_with_git() {
    // status reads the blobs in pack order while another thread walks the working tree and
    // compares it with the scan: both halves must still be git's answer, cold and warm.
    let repo = TestRepo::new();
    for i in 0..40 {
        let job = format!("job-{}", i % 5);
        let run = format!("run-{i:03}");
        let version = ["1.0.0", "1.1.0", "1.2.0"][(i * 7) % 3];
        repo.manifest(
            &format!("{job}/{run}"),
            json!({"schema_version": version, "run_id": run, "job_id": job, "status": "succeeded"}),
        );
    }
    repo.file(
        "artifacts/job-9/run-bad/manifest.json",
        "{\"schema_version\": ",
    )
    .file(".gitignore", "artifacts/job-ignored/\n")
    .commit("forty runs");
    repo.git(["gc", "-q"]);
    let late = manifest_path("job-7/run-late");
    repo.manifest(
        "job-7/run-late",
        json!({"schema_version": "1.0.0", "run_id": "run-late", "job_id": "job-7", "status": "failed"}),
    )
    .commit("a late run, its objects loose");

    repo.file(
        &manifest_path("job-1/run-001"),
        "{\"schema_version\": \"1.0.0\"}\n",
    )
    .manifest("job-2/run-new", json!({"run_id": "run-new"}))
    .manifest("job-1/run-staged", json!({"run_id": "run-staged"}))
    .manifest("job-ignored/run-1", json!({"run_id": "run-1"}));
    std::fs::remove_file(repo.path().join(manifest_path("job-3/run-003"))).unwrap();
    repo.git(["add", &manifest_path("job-1/run-staged")]);

    let (versions, invalid) = versions_by_git(&repo);
    assert_eq!(invalid, ["artifacts/job-9/run-bad/manifest.json"]);
    let (dirty, untracked) = manifest_status_by_git(&repo, "artifacts");
    assert_eq!(dirty.len(), 3, "{dirty:?}");
    assert_eq!(untracked, [manifest_path("job-2/run-new")]);
    for pass in ["cold", "warm"] {
        let status = repo.cli(["status", "--json"]).expect_code(0).json();
        assert_eq!(status["versions"], versions, "{pass}");
        assert_eq!(status["total"], 42, "{pass}");
        assert_eq!(paths_of(&status["invalid"]), invalid, "{pass}");
        assert_eq!(strings(&status["dirty"]), dirty, "{pass}");
        assert_eq!(strings(&status["untracked"]), untracked, "{pass}");
    }
    let scoped = repo
        .cli(["status", "--json", "artifacts/job-1"])
        .expect_code(0)
        .json();
    let (dirty1, untracked1) = manifest_status_by_git(&repo, "artifacts/job-1");
    assert_eq!(dirty1.len(), 2, "{dirty1:?}");
    assert_eq!(strings(&scoped["dirty"]), dirty1);
    assert_eq!(strings(&scoped["untracked"]), untracked1);

    let bare = repo.bare_clone();
    let status = bare.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(status["versions"], versions);
    assert_eq!(
        (status["dirty"].clone(), status["untracked"].clone()),
        (json!([]), json!([]))
    );

    // A blob that cannot be read fails the survey, with its path, whatever the other thread
    // found; the version cache is removed so the blob must be read.
    let blob = repo.git(["rev-parse", &format!("HEAD:{late}")]);
    let blob = blob.trim();
    let objects = repo.git_dir().join("objects");
    std::fs::remove_file(objects.join(&blob[..2]).join(&blob[2..])).expect("a loose blob");
    std::fs::remove_file(repo.git_dir().join("artifact-migrate").join("versions")).unwrap();
    let run = repo.cli(["status"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains(&late), "{run}");
}
