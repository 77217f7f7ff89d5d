//! Migrations as data, JSON Schema validation and validation on write (§11), end to end with
//! the real binary on real repositories: the 1.2.0 -> 1.3.0 walk-through of docs/migrations.md
//! on the demo repository (write, preview, apply, verify, roll back, apply again), a semantic
//! edit of an applied migration caught by `verify` and accepted by `repair --accept`, a
//! cosmetic one that is not a change, `validate`, the pre-commit hook run by plain git, `new`,
//! protected-field refusals and lossy warnings.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

/// The migration of the walk-through, exactly as docs/migrations.md shows it.
const MIGRATION: &str = r#"# 1.3.0: generation_metadata.model is now called model_name, and every run gets a
# review status, "unreviewed" until someone looks at it.
from = "1.2.0"
to = "1.3.0"
description = "Rename generation_metadata.model to model_name; add review_status"

[[ops]]
op = "rename"
path = "/generation_metadata/model"
to = "model_name"
description = "Rename generation_metadata.model to generation_metadata.model_name"

[[ops]]
op = "add"
path = "/review_status"
value = "unreviewed"
description = "Add review_status (\"unreviewed\")"
"#;

/// The same definition reformatted: other comments, whitespace, key order, inline tables.
const REFORMATTED: &str = r#"# Reformatted on purpose: the definition is the same, only the bytes differ.
description   =   "Rename generation_metadata.model to model_name; add review_status"
to   = "1.3.0"
from = "1.2.0"   # where it starts

ops = [
  { to = "model_name", op = "rename", description = "Rename generation_metadata.model to generation_metadata.model_name", path = "/generation_metadata/model" },
  { description = 'Add review_status ("unreviewed")', value = "unreviewed", path = "/review_status", op = "add" },
]
"#;

/// The JSON Schema of 1.3.0 the walk-through adds, exactly as docs/migrations.md shows it.
const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Run manifest, schema version 1.3.0",
  "type": "object",
  "required": ["schema_version", "run_id", "job_id", "review_status"],
  "properties": {
    "schema_version": {"const": "1.3.0"},
    "review_status": {"enum": ["unreviewed", "approved", "rejected"]},
    "generation_metadata": {
      "type": "object",
      "properties": {"model_name": {"type": "string"}},
      "not": {"required": ["model"]}
    }
  }
}
"#;

const MIGRATION_FILE: &str = ".artifact-migrate/migrations/1.2.0-1.3.0.toml";
const SCHEMA_FILE: &str = ".artifact-migrate/schemas/1.3.0.json";
const STEP: &str = "1.2.0->1.3.0";

fn demo_paths() -> Vec<String> {
    let mut v: Vec<String> = [RUN_100, RUN_110, RUN_120]
        .iter()
        .map(|r| manifest_path(&format!("{JOB}/{r}")))
        .collect();
    v.sort();
    v
}

/// The demo repository (`artifact-migrate demo DIR`: three runs, all at 1.2.0 after its own
/// walk-through), built in the test repository's directory so the helper works on it.
fn demo_repo() -> TestRepo {
    let repo = TestRepo::new();
    fs::remove_dir_all(repo.path().join(".git")).expect("empty the directory for the demo");
    let run = repo.run(
        repo.cli_command_in(repo.home()),
        [OsStr::new("demo"), repo.path().as_os_str()],
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains("Built a sample artifacts repository"),
        "{run}"
    );
    assert_eq!(repo.porcelain(), "");
    for p in demo_paths() {
        assert_eq!(repo.show_json("HEAD", &p)["schema_version"], "1.2.0", "{p}");
    }
    repo
}

/// The demo with the walk-through's migration and schema committed (by plain git).
fn demo_with_migration() -> TestRepo {
    let repo = demo_repo();
    repo.cli(["new", "1.2.0", "1.3.0"]).expect_code(0);
    repo.file(MIGRATION_FILE, MIGRATION)
        .file(SCHEMA_FILE, SCHEMA)
        .commit("Add the 1.2.0 -> 1.3.0 migration and the 1.3.0 schema");
    repo
}

/// The demo with the migration applied; returns the repository and the batch.
fn migrated_demo() -> (TestRepo, String) {
    let repo = demo_with_migration();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    assert_eq!(verify(&repo)["ok"], true);
    (repo, batch)
}

/// `verify --json`, its exit code checked against `ok`.
fn verify(repo: &TestRepo) -> Value {
    let run = repo.cli(["verify", "--json"]);
    let v = run.json();
    let ok = v["ok"].as_bool().unwrap_or_else(|| panic!("no ok:\n{run}"));
    run.expect_code(if ok { 0 } else { 1 });
    v
}

/// The removed and added lines of a unified diff, without the `---`/`+++` headers.
fn changed_lines(diff: &str) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for l in diff.lines() {
        if l.starts_with("---") || l.starts_with("+++") {
            continue;
        }
        if let Some(r) = l.strip_prefix('-') {
            removed.push(r.to_string());
        } else if let Some(a) = l.strip_prefix('+') {
            added.push(a.to_string());
        }
    }
    (removed, added)
}

/// Whether a pretty-printed line belongs to a history entry (or is an array/object bracket).
fn is_history_line(line: &str) -> bool {
    let t = line.trim();
    let structural = ["{", "}", "},", "[", "]", "],", "\"migration_history\": ["];
    structural.contains(&t)
        || [
            "\"from_version\": \"1.2.0\"",
            "\"to_version\": \"1.3.0\"",
            "\"steps\": [",
            "\"1.2.0->1.3.0\"",
            "\"migration_checksums\": {",
            "\"changes\": [",
            "\"Rename generation_metadata.model to generation_metadata.model_name\"",
            "\"Add review_status (\\\"unreviewed\\\")\"",
            "\"applied_at\": ",
            "\"base_commit\": ",
            "\"checksum_before\": ",
            "\"checksum_after\": ",
            "\"tool\": ",
        ]
        .iter()
        .any(|k| t.starts_with(k))
}

/// What the migration must do to a 1.2.0 manifest (history aside).
fn expected_after(before: &Value) -> Value {
    let mut v = before.clone();
    let obj = v.as_object_mut().expect("an object");
    obj.insert("schema_version".into(), json!("1.3.0"));
    obj.insert("review_status".into(), json!("unreviewed"));
    if let Some(Value::Object(g)) = obj.get_mut("generation_metadata") {
        if let Some(model) = g.remove("model") {
            g.insert("model_name".into(), model);
        }
    }
    v
}

fn without_last_history(doc: &Value) -> Value {
    let mut v = doc.clone();
    let h = v["migration_history"].as_array_mut().expect("a history");
    h.pop();
    if h.is_empty() {
        v.as_object_mut().unwrap().remove("migration_history");
    }
    v
}

#[test]
fn the_1_2_0_to_1_3_0_walk_through_on_the_demo_repository() {
    let repo = demo_repo();

    // Scaffold, then write the migration and the schema, and commit them with plain git.
    let run = repo.cli(["new", "1.2.0", "1.3.0"]);
    run.expect_code(0);
    assert!(run.stdout.contains(MIGRATION_FILE), "{run}");
    assert!(run.stdout.contains("plan --diff"), "{run}");
    repo.cli(["migrations", "--check"]).expect_code(0);
    repo.file(MIGRATION_FILE, MIGRATION)
        .file(SCHEMA_FILE, SCHEMA);
    let listed = repo.cli(["migrations", "--json"]);
    let edge = listed.expect_code(0).json()["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "1.2.0" && m["to"] == "1.3.0")
        .cloned()
        .unwrap_or_else(|| panic!("no 1.2.0->1.3.0 edge:\n{listed}"));
    assert_eq!(edge["file"], MIGRATION_FILE);
    assert_eq!(edge["lossy"], false);
    let checksum = edge["checksum"].as_str().unwrap().to_string();
    repo.commit("Add the 1.2.0 -> 1.3.0 migration and the 1.3.0 schema");
    let before = repo.head();
    let tree_before = repo.git(["rev-parse", "HEAD^{tree}"]);
    let old: Vec<(String, Vec<u8>)> = demo_paths()
        .into_iter()
        .map(|p| {
            let b = repo.show("HEAD", &p);
            (p, b)
        })
        .collect();

    // Preview: only the renamed line, the added member, schema_version and the history entry.
    let plan = repo.cli(["plan", "--diff", "--json"]);
    let report = plan.expect_code(0).json();
    assert_eq!(report["target"], "1.3.0");
    assert_eq!(report["warnings"], json!([]));
    assert_eq!(paths_of(&report["migrate"]), demo_paths());
    for item in report["migrate"].as_array().unwrap() {
        let path = item["path"].as_str().unwrap();
        assert_eq!(strings(&item["steps"]), [STEP]);
        let diff = item["diff"].as_str().unwrap();
        let (removed, added) = changed_lines(diff);
        let old_text = String::from_utf8(repo.show("HEAD", path)).unwrap();
        if old_text.trim_end().lines().count() == 1 {
            // The one-line manifest: its one line changes, so check the new line itself.
            let [old_line] = &removed[..] else {
                panic!("{diff}")
            };
            let [new_line] = &added[..] else {
                panic!("{diff}")
            };
            let prefix = old_line
                .replace(
                    "\"schema_version\": \"1.2.0\"",
                    "\"schema_version\": \"1.3.0\"",
                )
                .strip_suffix("]}")
                .expect("ends with its history")
                .to_string();
            let rest = new_line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{diff}"));
            assert!(rest.starts_with(", {\"from_version\": \"1.2.0\", \"to_version\": \"1.3.0\", \"steps\": [\"1.2.0->1.3.0\"]"), "{rest}");
            assert!(
                rest.ends_with("}], \"review_status\": \"unreviewed\"}"),
                "{rest}"
            );
            continue;
        }
        for l in &removed {
            let t = l.trim();
            assert!(
                t == "\"model\": \"text-large\","
                    || t.starts_with("\"schema_version\": \"1.2.0\"")
                    || is_history_line(l),
                "{path}: unexpected removed line {l:?}:\n{diff}"
            );
        }
        for l in &added {
            let t = l.trim();
            assert!(
                t == "\"model_name\": \"text-large\","
                    || t == "\"review_status\": \"unreviewed\","
                    || t.starts_with("\"schema_version\": \"1.3.0\"")
                    || is_history_line(l),
                "{path}: unexpected added line {l:?}:\n{diff}"
            );
        }
        assert!(
            added
                .iter()
                .any(|l| l.trim() == "\"review_status\": \"unreviewed\","),
            "{diff}"
        );
        assert!(
            added.iter().any(|l| l.contains(&before)),
            "base_commit: {diff}"
        );
        let renamed = old_text.contains("\"model\": ");
        assert_eq!(
            added
                .iter()
                .any(|l| l.trim() == "\"model_name\": \"text-large\","),
            renamed,
            "{diff}"
        );
    }
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("Migration-Step: 1.2.0->1.3.0 3\n"),
        "{report:#}"
    );
    // The human rendering shows the same diffs; plan writes nothing.
    let text = repo.cli(["plan", "--diff"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("+    \"model_name\": \"text-large\",\n"),
        "{text}"
    );
    assert!(
        text.stdout.contains("-    \"model\": \"text-large\",\n"),
        "{text}"
    );
    assert_eq!(repo.head(), before);
    assert_eq!(repo.porcelain(), "");

    // Apply: one commit changing only the manifests, read back by plain git.
    let run = repo.cli(["apply", "--json"]);
    let applied = run.expect_code(0).json();
    assert_eq!(applied["migrated"], 3, "{applied:#}");
    let batch = repo.head();
    assert_eq!(applied["commit"].as_str(), Some(batch.as_str()));
    assert_eq!(repo.git(["rev-parse", "HEAD^"]).trim(), before);
    assert_eq!(repo.changed_paths(&before, &batch), demo_paths());
    repo.git(["fsck", "--strict", "--no-progress"]);
    assert_eq!(repo.porcelain(), "");
    let trailers = repo.trailers("HEAD");
    let has = |k: &str, v: &str| trailers.iter().any(|(a, b)| a == k && b == v);
    assert!(has("Migration-Target", "1.3.0"), "{trailers:?}");
    assert!(has("Migration-Manifests", "3"), "{trailers:?}");
    assert!(has("Migration-Step", "1.2.0->1.3.0 3"), "{trailers:?}");
    assert!(has("Migration-Applied-At", APPLIED_AT), "{trailers:?}");
    assert!(has("Migration-Tool", TOOL), "{trailers:?}");
    assert!(
        trailers
            .iter()
            .any(|(k, v)| k == "Migration-Registry" && v.starts_with("sha256:") && v.len() == 71),
        "{trailers:?}"
    );
    for (path, old_bytes) in &old {
        let old_doc: Value = serde_json::from_slice(old_bytes).unwrap();
        let new_doc = repo.show_json("HEAD", path);
        assert_eq!(
            without_last_history(&new_doc),
            expected_after(&old_doc),
            "{path}"
        );
        let entry = last_history(&new_doc);
        assert_eq!(strings(&entry["steps"]), [STEP]);
        assert_eq!(entry["migration_checksums"][STEP], checksum.as_str());
        assert_eq!(entry["base_commit"], before.as_str());
        assert_eq!(entry["checksum_before"], python_sha256(old_bytes).as_str());
        assert_eq!(
            entry["checksum_after"],
            python_checksum_after(&repo.show("HEAD", path)).as_str()
        );
        assert_eq!(repo.file_bytes(path), repo.show("HEAD", path), "{path}");
    }

    // Verify, and validate against the new schema.
    let v = verify(&repo);
    assert_eq!(v["ok"], true, "{v:#}");
    let valid = repo.cli(["validate", "--json"]);
    let r = valid.expect_code(0).json();
    assert_eq!(
        (r["checked"].as_u64(), r["unchecked"].as_u64()),
        (Some(3), Some(0))
    );

    // Roll back: the tree is the one before the batch again.
    repo.cli(["rollback"]).expect_code(0);
    assert_eq!(repo.git(["rev-parse", "HEAD^{tree}"]), tree_before);
    assert_eq!(repo.porcelain(), "");
    for (path, old_bytes) in &old {
        assert_eq!(&repo.file_bytes(path), old_bytes, "{path}");
    }

    // Apply again, verify again.
    let again = repo.cli(["apply", "--json"]);
    assert_eq!(again.expect_code(0).json()["migrated"], 3);
    assert_ne!(repo.head(), batch);
    let v = verify(&repo);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["batches"], 4, "the demo's two, and ours twice: {v:#}");
}

#[test]
fn editing_the_applied_migrations_meaning_fails_verify_until_repair_accepts_it() {
    let (repo, batch) = migrated_demo();
    let text = String::from_utf8(repo.file_bytes(MIGRATION_FILE)).unwrap();
    repo.file(
        MIGRATION_FILE,
        text.replace("value = \"unreviewed\"", "value = \"pending\""),
    )
    .commit("review_status starts as pending");

    let v = verify(&repo);
    assert_eq!(v["ok"], false);
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v:#}");
    let f = &findings[0];
    assert_eq!(f["path"], MIGRATION_FILE);
    assert_eq!(f["commit"], batch.as_str());
    let problem = f["problem"].as_str().unwrap();
    assert!(problem.contains(&batch[..12]), "{problem}");
    assert!(
        problem.contains("repair --accept 1.2.0->1.3.0"),
        "{problem}"
    );
    let human = repo.cli(["verify"]);
    human.expect_code(1);
    assert!(
        human.stdout.contains(&format!(
            "finding: {} {MIGRATION_FILE}: migration 1.2.0->1.3.0 changed after batch(es) {}",
            &batch[..12],
            &batch[..12]
        )),
        "{human}"
    );

    let before = repo.head();
    let run = repo.cli(["repair", "--accept", STEP, "--json"]);
    let r = run.expect_code(0).json();
    assert_eq!(r["accepted"], STEP);
    assert_eq!(r["file"], MIGRATION_FILE);
    assert_eq!(repo.git(["rev-parse", "HEAD^"]).trim(), before);
    assert_eq!(repo.changed_paths(&before, "HEAD"), Vec::<String>::new());
    let trailers = repo.trailers("HEAD");
    assert!(
        trailers
            .iter()
            .any(|(k, v)| k == "Migration-Accept" && v.starts_with(&format!("{STEP} sha256:"))),
        "{trailers:?}"
    );
    let v = verify(&repo);
    assert_eq!(v["ok"], true, "{v:#}");
}

#[test]
fn a_reformatted_migration_file_is_not_a_change() {
    let (repo, _) = migrated_demo();
    let checksum_of = |repo: &TestRepo| -> String {
        repo.cli(["migrations", "--json"]).expect_code(0).json()["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["file"] == MIGRATION_FILE)
            .map(|m| m["checksum"].as_str().unwrap().to_string())
            .expect("the declarative edge")
    };
    let recorded = checksum_of(&repo);
    repo.file(MIGRATION_FILE, REFORMATTED)
        .commit("Reformat the 1.2.0 -> 1.3.0 migration");
    let reformatted = repo.head();
    assert_eq!(checksum_of(&repo), recorded);
    let v = verify(&repo);
    assert_eq!(v["ok"], true, "{v:#}");
    // No repair was needed, and none was made.
    assert_eq!(repo.head(), reformatted);
    assert!(repo.trailers("HEAD").is_empty());
}

/// A repository with the 1.3.0 schema and one valid 1.3.0 manifest, committed.
fn repo_with_schema() -> TestRepo {
    let repo = TestRepo::new();
    repo.file(SCHEMA_FILE, SCHEMA)
        .manifest(
            "job-b/run-ok",
            json!({"schema_version": "1.3.0", "run_id": "run-ok", "job_id": "job-b", "review_status": "approved"}),
        )
        .commit("a schema and a valid run");
    repo
}

#[test]
fn validate_names_each_failing_path_and_keyword() {
    let repo = repo_with_schema();
    repo.manifest(
        "job-b/run-missing",
        json!({"schema_version": "1.3.0", "run_id": "run-missing", "job_id": "job-b"}),
    )
    .manifest(
        "job-b/run-maybe",
        json!({"schema_version": "1.3.0", "run_id": "run-maybe", "job_id": "job-b", "review_status": "maybe"}),
    )
    .manifest("job-c/run-broken", "{\"schema_version\": \"1.3.0\",")
    .manifest("job-c/run-old", json!({"schema_version": "1.2.0", "run_id": "run-old"}))
    .commit("runs of every kind");

    let run = repo.cli(["validate"]);
    run.expect_code(1);
    let missing = manifest_path("job-b/run-missing");
    let maybe = manifest_path("job-b/run-maybe");
    let broken = manifest_path("job-c/run-broken");
    assert!(
        run.stdout.contains(&format!(
            "error: {missing}: (the document): required: \"review_status\" is a required property (schema {SCHEMA_FILE})\n"
        )),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("error: {maybe}: /review_status: enum: ")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("error: {broken}: not valid JSON")),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "5 manifest(s) at HEAD {}: 3 checked against their version's schema, 1 at versions without a schema (1.2.0: 1); 3 failed\n",
            &repo.head()[..12]
        )),
        "{run}"
    );
    assert!(!run.stdout.contains("commit aborted"), "{run}");

    let report = repo.cli(["validate", "--json"]);
    let r = report.expect_code(1).json();
    assert_eq!(r["source"], "head");
    assert_eq!(r["commit"], repo.head().as_str());
    assert_eq!(
        (
            r["total"].as_u64(),
            r["checked"].as_u64(),
            r["unchecked"].as_u64()
        ),
        (Some(5), Some(3), Some(1))
    );
    assert_eq!(r["unchecked_versions"], json!({"1.2.0": 1}));
    // Sorted by path.
    assert_eq!(
        paths_of(&r["failures"]),
        [maybe.clone(), missing.clone(), broken.clone()]
    );
    let f = &r["failures"][1];
    assert_eq!(f["kind"], "schema");
    assert_eq!(f["version"], "1.3.0");
    assert_eq!(f["schema"], SCHEMA_FILE);
    assert_eq!(f["error"], Value::Null);
    assert_eq!(f["violations"][0]["instance_path"], "");
    assert_eq!(f["violations"][0]["keyword"], "required");
    assert_eq!(r["failures"][0]["violations"][0]["keyword"], "enum");
    assert_eq!(
        r["failures"][0]["violations"][0]["instance_path"],
        "/review_status"
    );
    assert_eq!(r["failures"][2]["kind"], "parse");
    assert_eq!(r["failures"][2]["schema"], Value::Null);
    assert_eq!(r["failures"][2]["version"], Value::Null);

    // A pathspec limits it; a file pathspec relative to a subdirectory too.
    let ok = repo.cli(["validate", "artifacts/job-b/run-ok"]);
    ok.expect_code(0);
    assert!(ok.stdout.contains("1 manifest(s) at HEAD"), "{ok}");
    let sub = repo.run(
        repo.cli_command_in(&repo.path().join("artifacts/job-c")),
        ["validate", "--json", "run-old"],
    );
    let r = sub.expect_code(0).json();
    assert_eq!(
        (r["total"].as_u64(), r["unchecked"].as_u64()),
        (Some(1), Some(1))
    );

    // What is validated is what is committed: fixing the working tree changes nothing.
    repo.manifest(
        "job-b/run-missing",
        json!({"schema_version": "1.3.0", "run_id": "run-missing", "job_id": "job-b", "review_status": "approved"}),
    );
    repo.cli(["validate", "artifacts/job-b/run-missing"])
        .expect_code(1);
    // A repository without schemas has nothing to check, and says so.
    let bare = TestRepo::with_samples();
    let none = bare.cli(["validate"]);
    none.expect_code(0);
    assert!(
        none.stdout
            .contains("no JSON Schemas in .artifact-migrate/schemas/"),
        "{none}"
    );
}

/// `git commit ARGS` through plain git (hooks run); returns success, stdout and stderr.
fn git_commit(repo: &TestRepo, args: &[&str], path_env: Option<&str>) -> (bool, String) {
    let mut cmd = repo.git_command();
    cmd.arg("commit").args(args);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    outcome(&mut cmd)
}

const HINT: &str = "commit aborted by the artifact-migrate pre-commit hook; fix the manifest, or skip the check with git commit --no-verify";

fn bad_run() -> Value {
    json!({"schema_version": "1.3.0", "run_id": "run-bad", "job_id": "job-b"})
}

fn good_run(run: &str) -> Value {
    json!({"schema_version": "1.3.0", "run_id": run, "job_id": "job-b", "review_status": "unreviewed"})
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_pre_commit_hook_rejects_invalid_staged_manifests() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = repo_with_schema();
    let run = repo.cli(["hook", "install", "--json"]);
    let r = run.expect_code(0).json();
    let hook = repo.git_dir().join("hooks/pre-commit");
    assert_eq!(
        canonical(Path::new(r["path"].as_str().unwrap())),
        canonical(&hook)
    );
    assert_eq!(r["installed"], true);
    let script = String::from_utf8(fs::read(&hook).unwrap()).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(
        script.contains("\n# artifact-migrate pre-commit hook\n"),
        "{script}"
    );
    let exe = canonical(&assert_cmd::cargo::cargo_bin("artifact-migrate"));
    assert!(
        script.contains(&format!("am='{}'\n", exe.display())),
        "{script}"
    );
    assert_eq!(
        fs::metadata(&hook).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // Installing again over our own hook is fine.
    repo.cli(["hook", "install"]).expect_code(0);

    // A bad manifest, staged: plain git refuses the commit, with the hint.
    let head = repo.head();
    repo.manifest("job-b/run-bad", bad_run());
    repo.git(["add", "-A"]);
    let (ok, out) = git_commit(&repo, &["-q", "-m", "a bad run"], None);
    assert!(!ok, "the commit went through:\n{out}");
    assert!(
        out.contains(&format!(
            "error: {}: (the document): required: \"review_status\" is a required property (schema {SCHEMA_FILE})",
            manifest_path("job-b/run-bad")
        )),
        "{out}"
    );
    assert!(out.contains(&format!("{HINT}\n")), "{out}");
    assert_eq!(repo.head(), head);

    // `git commit PATH` commits only PATH (git hands the hook a temporary index): a good run
    // goes through while the bad one stays staged.
    repo.manifest("job-b/run-good", good_run("run-good"));
    repo.git(["add", "-A"]);
    let good = manifest_path("job-b/run-good");
    let (ok, out) = git_commit(&repo, &["-q", "-m", "a good run", "--", &good], None);
    assert!(ok, "{out}");
    assert!(
        out.contains("1 staged manifest(s): 1 checked against their version's schema; ok"),
        "{out}"
    );
    assert_eq!(repo.changed_paths(&head, "HEAD"), vec![good.clone()]);

    // `git commit -a` commits the working tree's version: fixed there, it goes through.
    repo.manifest("job-b/run-bad", good_run("run-bad"));
    let (ok, out) = git_commit(&repo, &["-q", "-a", "-m", "fixed"], None);
    assert!(ok, "{out}");

    // --no-verify is git's usual escape.
    let head = repo.head();
    repo.manifest("job-b/run-bad2", bad_run());
    repo.git(["add", "-A"]);
    let (ok, out) = git_commit(&repo, &["-q", "--no-verify", "-m", "bad, on purpose"], None);
    assert!(ok, "{out}");
    assert_ne!(repo.head(), head);

    // A commit that touches no manifest: the hook checks nothing and says nothing, even with
    // a bad manifest announced with `git add -N` (it is not part of the commit).
    repo.manifest("job-b/run-later", "{\"schema_version\": ");
    repo.git(["add", "-N", &manifest_path("job-b/run-later")]);
    repo.file("README.md", "notes\n");
    repo.git(["add", "README.md"]);
    let (ok, out) = git_commit(&repo, &["-q", "-m", "notes"], None);
    assert!(ok, "{out}");
    assert_eq!(out, "");
    repo.git(["rm", "-q", "--cached", &manifest_path("job-b/run-later")]);
    fs::remove_file(repo.path().join(manifest_path("job-b/run-later"))).unwrap();

    // A schema that does not load is staged: the commit is refused, naming the file.
    repo.file(
        ".artifact-migrate/schemas/1.4.0.json",
        "{\"type\": \"objekt\"}",
    );
    repo.manifest("job-b/run-next", good_run("run-next"));
    repo.git(["add", "-A"]);
    let (ok, out) = git_commit(&repo, &["-q", "-m", "a broken schema"], None);
    assert!(!ok, "{out}");
    assert!(
        out.contains(".artifact-migrate/schemas/1.4.0.json: "),
        "{out}"
    );
    assert!(out.contains(HINT), "{out}");

    // Uninstalled, the hook is gone and the commit goes through.
    let run = repo.cli(["hook", "uninstall", "--json"]);
    assert_eq!(run.expect_code(0).json()["installed"], false);
    assert!(!hook.exists());
    let (ok, out) = git_commit(&repo, &["-q", "-m", "no hook"], None);
    assert!(ok, "{out}");
}

#[test]
fn a_bare_repository_has_no_hook_and_no_staged_manifests() {
    let bare = repo_with_schema().bare_clone();
    let run = bare.cli(["hook", "install"]);
    run.expect_code(2);
    assert!(run.stderr.contains("bare repository"), "{run}");
    let run = bare.cli(["validate", "--staged"]);
    run.expect_code(2);
    assert!(run.stderr.contains("bare repository has no index"), "{run}");
    assert!(run.stderr.contains(HINT), "{run}");
    // HEAD's manifests are checked against HEAD's schemas.
    let run = bare.cli(["validate", "--json"]);
    let r = run.expect_code(0).json();
    assert_eq!(
        (r["checked"].as_u64(), r["unchecked"].as_u64()),
        (Some(1), Some(0))
    );
}

#[test]
fn hook_install_refuses_a_foreign_hook_without_force() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = repo_with_schema();
    let hook = repo.git_dir().join("hooks/pre-commit");
    let foreign = "#!/bin/sh\n# the team's own checks\nexit 0\n";
    fs::create_dir_all(hook.parent().unwrap()).unwrap();
    fs::write(&hook, foreign).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();

    let run = repo.cli(["hook", "install"]);
    run.expect_code(3);
    assert!(run.stderr.contains("not artifact-migrate's"), "{run}");
    assert!(run.stderr.contains("--force"), "{run}");
    assert_eq!(fs::read_to_string(&hook).unwrap(), foreign);
    let run = repo.cli(["hook", "uninstall"]);
    run.expect_code(3);
    assert_eq!(fs::read_to_string(&hook).unwrap(), foreign);
    let json = repo.cli(["--json", "hook", "install"]);
    assert_eq!(json.expect_code(3).json()["error"]["kind"], "refused");

    repo.cli(["hook", "install", "--force"]).expect_code(0);
    assert!(fs::read_to_string(&hook)
        .unwrap()
        .contains("# artifact-migrate pre-commit hook"));
    repo.manifest("job-b/run-bad", bad_run());
    repo.git(["add", "-A"]);
    let (ok, out) = git_commit(&repo, &["-q", "-m", "bad"], None);
    assert!(!ok && out.contains(HINT), "{out}");
}

#[test]
fn the_hook_goes_where_git_looks_for_it() {
    // core.hooksPath, relative to the working tree's root.
    let repo = repo_with_schema();
    repo.git(["config", "core.hooksPath", "ci/hooks"]);
    let r = repo
        .cli(["hook", "install", "--json"])
        .expect_code(0)
        .json();
    let hook = repo.path().join("ci/hooks/pre-commit");
    assert_eq!(
        canonical(Path::new(r["path"].as_str().unwrap())),
        canonical(&hook)
    );
    assert!(!repo.git_dir().join("hooks/pre-commit").exists());
    repo.manifest("job-b/run-bad", bad_run());
    repo.git(["add", "artifacts"]);
    let (ok, out) = git_commit(&repo, &["-q", "-m", "bad"], None);
    assert!(!ok && out.contains(HINT), "{out}");
    repo.git(["reset", "-q"]);
    fs::remove_file(repo.path().join(manifest_path("job-b/run-bad"))).unwrap();
    repo.git(["config", "--unset", "core.hooksPath"]);

    // A linked worktree uses the common directory's hooks, as git does.
    let other = tempfile::tempdir().unwrap();
    let wt = other.path().join("wt");
    repo.git([
        OsStr::new("worktree"),
        OsStr::new("add"),
        OsStr::new("-q"),
        OsStr::new("-b"),
        OsStr::new("side"),
        wt.as_os_str(),
    ]);
    let run = repo.run(repo.cli_command_in(&wt), ["hook", "install", "--json"]);
    let r = run.expect_code(0).json();
    let common = repo.git_dir().join("hooks/pre-commit");
    assert_eq!(
        canonical(Path::new(r["path"].as_str().unwrap())),
        canonical(&common)
    );
    let bad = wt.join(manifest_path("job-b/run-bad"));
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::write(&bad, bad_run().to_string()).unwrap();
    let in_wt = |args: &[&str]| {
        let mut cmd = repo.git_command();
        cmd.current_dir(&wt).args(args);
        let out = cmd.output().expect("run git");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(in_wt(&["add", "-A"]).0);
    let (ok, out) = in_wt(&["commit", "-q", "-m", "bad, in the linked worktree"]);
    assert!(!ok && out.contains(HINT), "{out}");
}

#[test]
fn the_hook_falls_back_to_the_program_on_path_when_its_own_is_gone() {
    let repo = repo_with_schema();
    // Install from a copy of the binary (a hard link where possible), then remove the copy.
    let dir = tempfile::Builder::new()
        .prefix("am-bin-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let exe = assert_cmd::cargo::cargo_bin("artifact-migrate");
    let copy = dir.path().join("artifact-migrate-copy");
    if fs::hard_link(&exe, &copy).is_err() {
        fs::copy(&exe, &copy).unwrap();
    }
    let mut cmd = assert_cmd::Command::new(&copy);
    cmd.env("HOME", repo.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("NO_COLOR", "1")
        .arg("-C")
        .arg(repo.path());
    let run = repo.run(cmd, ["hook", "install"]);
    run.expect_code(0);
    let hook = repo.git_dir().join("hooks/pre-commit");
    let script = fs::read_to_string(&hook).unwrap();
    assert!(
        script.contains(&format!("am='{}'", canonical(&copy).display())),
        "{script}"
    );
    fs::remove_file(&copy).unwrap();

    repo.manifest("job-b/run-bad", bad_run());
    repo.git(["add", "-A"]);
    // On PATH: the hook runs it.
    let on_path = dir.path().join("path");
    fs::create_dir_all(&on_path).unwrap();
    std::os::unix::fs::symlink(&exe, on_path.join("artifact-migrate")).unwrap();
    let path_env = format!(
        "{}:{}",
        on_path.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (ok, out) = git_commit(&repo, &["-q", "-m", "bad"], Some(&path_env));
    assert!(!ok && out.contains(HINT), "{out}");
    // Nowhere: the commit is refused with a message saying what to do.
    let git_dir = Path::new(
        &String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", "command -v git"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
    )
    .parent()
    .unwrap()
    .to_path_buf();
    let no_tool = format!("{}:/usr/bin:/bin", git_dir.display());
    let (ok, out) = git_commit(&repo, &["-q", "-m", "bad"], Some(&no_tool));
    assert!(!ok, "{out}");
    assert!(
        out.contains("is gone and artifact-migrate is not on PATH"),
        "{out}"
    );
    assert!(out.contains("git commit --no-verify"), "{out}");
}

#[test]
fn new_scaffolds_a_migration_that_loads_and_refuses_to_overwrite() {
    let repo = TestRepo::with_samples();
    // From a subdirectory: the file goes under the repository's root.
    let run = repo.run(
        repo.cli_command_in(&repo.path().join("artifacts")),
        ["new", "1.2.0", "1.3.0", "--json"],
    );
    let r = run.expect_code(0).json();
    assert_eq!(
        r,
        json!({"path": MIGRATION_FILE, "from": "1.2.0", "to": "1.3.0"})
    );
    let scaffold = repo.file_bytes(MIGRATION_FILE);
    let text = String::from_utf8(scaffold.clone()).unwrap();
    for op in ["add", "set", "remove", "rename", "move", "copy"] {
        assert!(
            text.contains(&format!("# op = \"{op}\"\n")),
            "{op}:\n{text}"
        );
    }

    // It loads: a version bump that edits nothing, and the registry lint is clean.
    let check = repo.cli(["migrations", "--check"]);
    check.expect_code(0);
    assert!(
        check
            .stdout
            .contains(&format!("  1.2.0->1.3.0 ({MIGRATION_FILE})")),
        "{check}"
    );
    let plan = repo.cli(["plan", "--json"]);
    let p = plan.expect_code(0).json();
    assert_eq!(p["target"], "1.3.0");
    assert_eq!(p["migrate"].as_array().unwrap().len(), 3, "{p:#}");
    assert_eq!(p["warnings"], json!([]));

    // Human text: the path and the next steps.
    let other = repo.cli(["new", "1.3.0", "1.4.0"]);
    other.expect_code(0);
    for s in [
        ".artifact-migrate/migrations/1.3.0-1.4.0.toml",
        "plan --diff",
        "git add",
        "artifact-migrate apply",
    ] {
        assert!(other.stdout.contains(s), "{s}:\n{other}");
    }

    // Refusals: an existing file (exit 3, untouched), a built-in edge, bad versions (exit 2).
    let again = repo.cli(["new", "1.2.0", "1.3.0"]);
    again.expect_code(3);
    assert!(
        again
            .stderr
            .contains(&format!("{MIGRATION_FILE} already exists")),
        "{again}"
    );
    assert_eq!(repo.file_bytes(MIGRATION_FILE), scaffold);
    let builtin = repo.cli(["new", "1.1.0", "1.2.0"]);
    builtin.expect_code(3);
    assert!(
        builtin
            .stderr
            .contains("a built-in migration already defines 1.1.0->1.2.0"),
        "{builtin}"
    );
    assert!(!repo
        .path()
        .join(".artifact-migrate/migrations/1.1.0-1.2.0.toml")
        .exists());
    for args in [
        ["new", "1.3.0", "1.2.0"],
        ["new", "1.2.0", "1.2.0"],
        ["new", "1.2", "1.3.0"],
    ] {
        let run = repo.cli(args);
        run.expect_code(2);
    }
    let down = repo.cli(["new", "1.4.0", "1.3.9"]);
    assert!(down.stderr.contains("downgrades are rollbacks"), "{down}");
    assert!(!repo
        .path()
        .join(".artifact-migrate/migrations/1.4.0-1.3.9.toml")
        .exists());
}

#[test]
fn a_migration_writing_a_protected_field_is_refused_at_load_with_file_and_line() {
    let repo = TestRepo::with_samples();
    repo.file(
        MIGRATION_FILE,
        "from = \"1.2.0\"\nto = \"1.3.0\"\n\n[[ops]]\nop = \"add\"\npath = \"/review_status\"\nvalue = \"unreviewed\"\ndescription = \"Add review_status\"\n\n[[ops]]\nop = \"set\"\npath = \"/run_id\"\nvalue = \"run-x\"\ndescription = \"Overwrite the run id\"\n",
    )
    .commit("a migration that overwrites run_id");
    let head = repo.head();
    let plan = repo.cli(["plan"]);
    plan.expect_code(2);
    assert!(
        plan.stderr.contains(&format!(
            "{MIGRATION_FILE}:12: set overwrites /run_id, the protected field /run_id"
        )),
        "{plan}"
    );
    let json = repo.cli(["plan", "--json"]);
    let e = json.expect_code(2).json();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{MIGRATION_FILE}:12:")),
        "{e:#}"
    );
    repo.cli(["apply"]).expect_code(2);
    assert_eq!(repo.head(), head);

    let check = repo.cli(["migrations", "--check", "--json"]);
    let r = check.expect_code(1).json();
    let problems: Vec<String> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["problem"].as_str().unwrap().to_string())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&format!("{MIGRATION_FILE}:12: "))),
        "{problems:?}"
    );
    let text = repo.cli(["migrations", "--check"]);
    text.expect_code(1);
    assert!(
        text.stdout
            .contains(&format!("error: {MIGRATION_FILE}:12: ")),
        "{text}"
    );

    // Removing what is inside a protected field is refused too (and moving one).
    repo.file(
        MIGRATION_FILE,
        "from = \"1.2.0\"\nto = \"1.3.0\"\nops = [\n  { op = \"remove\", path = \"/doctrine/version\", description = \"Drop the doctrine version\" },\n  { op = \"move\", from = \"/job_ref\", path = \"/meta/job_ref\", description = \"Move job_ref\" },\n]\n",
    );
    let plan = repo.cli(["plan"]);
    plan.expect_code(2);
    assert!(
        plan.stderr.contains(&format!("{MIGRATION_FILE}:4: ")),
        "{plan}"
    );
    assert!(
        plan.stderr.contains(&format!("{MIGRATION_FILE}:5: ")),
        "{plan}"
    );
}

#[test]
fn plan_warns_about_a_lossy_migration() {
    let repo = TestRepo::with_samples();
    repo.file(
        MIGRATION_FILE,
        "from = \"1.2.0\"\nto = \"1.3.0\"\n\n[[ops]]\nop = \"remove\"\npath = \"/langfuse_trace_id\"\ndescription = \"Remove langfuse_trace_id\"\n",
    );
    let warning = format!(
        "migration 1.2.0->1.3.0 is lossy: {MIGRATION_FILE}:4: remove /langfuse_trace_id drops its value"
    );
    let plan = repo.cli(["plan"]);
    plan.expect_code(0);
    assert!(
        plan.stderr.contains(&format!("warning: {warning}\n")),
        "{plan}"
    );
    assert!(!plan.stdout.contains("warning:"), "{plan}");
    let json = repo.cli(["plan", "--json"]);
    let r = json.expect_code(0).json();
    assert_eq!(r["warnings"], json!([warning]));
    assert_eq!(json.stderr, "", "{json}");
    let listed = repo.cli(["migrations"]);
    assert!(
        listed
            .expect_code(0)
            .stdout
            .contains(&format!("1.2.0->1.3.0 ({MIGRATION_FILE}, lossy)")),
        "{listed}"
    );

    // A migration that only adds and renames is not lossy: no warning.
    repo.file(MIGRATION_FILE, MIGRATION);
    let plan = repo.cli(["plan", "--json"]);
    assert_eq!(plan.expect_code(0).json()["warnings"], json!([]));
}

#[test]
fn docs_show_the_migration_and_schema_the_walk_through_runs() {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migrations.md"))
        .expect("docs/migrations.md");
    assert!(
        doc.contains(&format!("```toml\n{MIGRATION}```\n")),
        "the migration in docs/migrations.md differs from the test's"
    );
    assert!(
        doc.contains(&format!("```json\n{SCHEMA}```\n")),
        "the schema in docs/migrations.md differs from the test's"
    );
}
