//! The seed's nine smoke tests, restated for a git repository: each migration, path finding,
//! idempotence, history with checksums checked by an independent implementation (Python),
//! old bytes recoverable from the parent commit, `plan` writing nothing, invariants held.

mod common;

use common::*;
use serde_json::{json, Value};

fn p100() -> String {
    manifest_path(&format!("{JOB}/{RUN_100}"))
}
fn p110() -> String {
    manifest_path(&format!("{JOB}/{RUN_110}"))
}
fn p120() -> String {
    manifest_path(&format!("{JOB}/{RUN_120}"))
}

/// Every member of `before` is in `after` with the same value, except `schema_version`.
fn assert_members_kept(before: &Value, after: &Value) {
    for (k, v) in before.as_object().expect("an object") {
        if k == "schema_version" {
            continue;
        }
        assert_eq!(&after[k], v, "member {k} changed");
    }
}

/// The members `after` has and `before` has not.
fn added_keys(before: &Value, after: &Value) -> Vec<String> {
    let b = before.as_object().expect("an object");
    let mut keys: Vec<String> = after
        .as_object()
        .expect("an object")
        .keys()
        .filter(|k| !b.contains_key(*k))
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[test]
fn migrates_1_0_0_to_1_1_0() {
    let repo = TestRepo::new();
    repo.manifest(&format!("{JOB}/{RUN_100}"), SAMPLE_V100)
        .manifest(&format!("{JOB}/{RUN_110}"), SAMPLE_V110)
        .commit("a 1.0.0 and a 1.1.0 run");
    let base = repo.head();

    let run = repo.cli(["apply", "--to", "1.1.0", "--json"]);
    let report = run.expect_code(0).json();

    assert_eq!(report["target"], "1.1.0");
    assert_eq!(report["migrated"], 1, "{report:#}");
    assert_eq!(report["already_current"], 1, "{report:#}");
    assert_eq!(report["failed"], json!([]));
    assert_eq!(report["commit"].as_str(), Some(repo.head().as_str()));
    assert_eq!(repo.changed_paths(&base, "HEAD"), vec![p100()]);

    let before: Value = serde_json::from_slice(SAMPLE_V100).unwrap();
    let after = repo.show_json("HEAD", &p100());
    assert_eq!(after["schema_version"], "1.1.0");
    assert_eq!(after["input_snapshots"], json!({}));
    assert_eq!(after["inputs_hash"], Value::Null);
    assert_eq!(after["job_id"], JOB, "job_id comes from the path");
    assert_eq!(
        added_keys(&before, &after),
        [
            "input_snapshots",
            "inputs_hash",
            "job_id",
            "migration_history"
        ]
    );
    assert_members_kept(&before, &after);

    let entry = last_history(&after);
    assert_eq!(entry["from_version"], "1.0.0");
    assert_eq!(entry["to_version"], "1.1.0");
    assert_eq!(strings(&entry["steps"]), ["1.0.0->1.1.0"]);
    assert_eq!(
        strings(&entry["changes"]),
        [
            "Add input_snapshots (empty object)",
            "Add inputs_hash (null)",
            "Add job_id \"spring-launch-01\" (from the path)"
        ]
    );
}

#[test]
fn migrates_1_1_0_to_1_2_0() {
    let repo = TestRepo::new();
    repo.manifest(&format!("{JOB}/{RUN_110}"), SAMPLE_V110)
        .commit("one 1.1.0 run");

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["target"], "1.2.0");
    assert_eq!(report["migrated"], 1);

    let before: Value = serde_json::from_slice(SAMPLE_V110).unwrap();
    let after = repo.show_json("HEAD", &p110());
    assert_eq!(after["schema_version"], "1.2.0");
    assert_eq!(
        after["chain_metadata"],
        json!({"is_chainable_stage": false, "prior_stages": []})
    );
    assert_eq!(
        added_keys(&before, &after),
        ["chain_metadata", "migration_history"]
    );
    assert_members_kept(&before, &after);
    let entry = last_history(&after);
    assert_eq!(entry["from_version"], "1.1.0");
    assert_eq!(entry["to_version"], "1.2.0");
    assert_eq!(strings(&entry["steps"]), ["1.1.0->1.2.0"]);
    assert_eq!(strings(&entry["changes"]), ["Add chain_metadata"]);
}

#[test]
fn migrates_1_0_0_directly_to_1_2_0() {
    let repo = TestRepo::with_samples();

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 2);
    assert_eq!(report["already_current"], 1);

    let before: Value = serde_json::from_slice(SAMPLE_V100).unwrap();
    let after = repo.show_json("HEAD", &p100());
    assert_eq!(after["schema_version"], "1.2.0");
    assert_eq!(
        added_keys(&before, &after),
        [
            "chain_metadata",
            "input_snapshots",
            "inputs_hash",
            "job_id",
            "migration_history"
        ]
    );
    assert_members_kept(&before, &after);
    let history = after["migration_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "one direct step, one entry");
    assert_eq!(strings(&history[0]["steps"]), ["1.0.0->1.2.0"]);
    assert_eq!(history[0]["from_version"], "1.0.0");
    assert_eq!(history[0]["to_version"], "1.2.0");
    assert_eq!(
        strings(&history[0]["changes"]),
        [
            "Add input_snapshots (empty object)",
            "Add inputs_hash (null)",
            "Add job_id \"spring-launch-01\" (from the path)",
            "Add chain_metadata"
        ]
    );
}

#[test]
fn two_batches_chain_1_0_0_to_1_1_0_to_1_2_0_and_keep_the_first_entry() {
    let repo = TestRepo::with_samples();
    // The 1.2.0 manifest is past 1.1.0: leave it out of the first batch.
    repo.cli(["apply", "--to", "1.1.0", &p100(), &p110()])
        .expect_code(0);
    let first = repo.show_json("HEAD", &p100());
    let first_entry = last_history(&first).clone();

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    // The 1.0.0 one (now 1.1.0) and the 1.1.0 sample.
    assert_eq!(report["migrated"], 2, "{report:#}");

    let after = repo.show_json("HEAD", &p100());
    let history = after["migration_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[0], first_entry,
        "the earlier entry is kept as it was"
    );
    assert_eq!(strings(&history[1]["steps"]), ["1.1.0->1.2.0"]);
    assert_eq!(strings(&history[1]["changes"]), ["Add chain_metadata"]);
    assert_eq!(history[1]["base_commit"], repo.rev("HEAD~1"));
}

#[test]
fn a_target_below_a_manifests_version_is_a_downgrade_error() {
    let repo = TestRepo::with_samples();
    let head = repo.head();
    let report = repo
        .cli(["apply", "--to", "1.1.0", "--json"])
        .expect_code(1)
        .json();
    assert_eq!(report["commit"], Value::Null);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(paths_of(&report["failed"]), [p120()]);
    assert_eq!(failed[0]["kind"], "downgrade");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("rollback"), "{error}");
    assert_eq!(repo.head(), head);
}

#[test]
fn path_finding_prefers_the_direct_edge() {
    let repo = TestRepo::with_samples();
    let m = repo.cli(["migrations", "--json"]).expect_code(0).json();
    assert_eq!(m["versions"], json!(["1.0.0", "1.1.0", "1.2.0"]));
    assert_eq!(m["latest"], "1.2.0");
    assert_eq!(
        m["paths"],
        json!([
            {"from": "1.0.0", "steps": ["1.0.0->1.2.0"]},
            {"from": "1.1.0", "steps": ["1.1.0->1.2.0"]},
        ])
    );
    let edges: Vec<(String, String)> = m["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            ("1.0.0".to_string(), "1.1.0".to_string()),
            ("1.0.0".to_string(), "1.2.0".to_string()),
            ("1.1.0".to_string(), "1.2.0".to_string()),
        ]
    );
    assert_eq!(m["findings"], json!([]));
    let check = repo.cli(["migrations", "--check", "--json"]);
    assert_eq!(check.expect_code(0).json()["findings"], json!([]));

    // The plan takes the same paths.
    let plan = repo.cli(["plan", "--json"]).expect_code(0).json();
    let steps: Vec<(String, Vec<String>)> = plan["migrate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                strings(&i["steps"]),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (p100(), vec!["1.0.0->1.2.0".to_string()]),
            (p110(), vec!["1.1.0->1.2.0".to_string()]),
        ]
    );
}

#[test]
fn a_second_apply_commits_nothing() {
    let repo = TestRepo::with_samples();
    repo.cli(["apply"]).expect_code(0);
    let head = repo.head();
    let commits = repo.commit_count("HEAD");
    let files = repo.worktree_snapshot();

    let again = repo.cli(["apply", "--json"]);
    let report = again.expect_code(0).json();
    assert_eq!(report["commit"], Value::Null);
    assert_eq!(report["migrated"], 0);
    assert_eq!(report["already_current"], 3);
    assert_eq!(report["failed"], json!([]));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.commit_count("HEAD"), commits);
    assert_eq!(repo.worktree_snapshot(), files);

    let human = repo.cli(["apply"]);
    human.expect_code(0);
    assert!(
        human.stdout.contains("nothing to migrate"),
        "human output says so:\n{human}"
    );
    assert_eq!(repo.head(), head);
}

#[test]
fn history_records_batch_and_checksums_that_python_agrees_with() {
    let repo = TestRepo::with_samples();
    let base = repo.head();
    repo.cli(["apply"]).expect_code(0);
    assert_eq!(repo.rev("HEAD~1"), base);
    let committer_date = repo.git(["log", "-1", "--format=%cd", "--date=unix"]);
    assert_eq!(committer_date.trim(), EPOCH);

    for path in [p100(), p110()] {
        let old = repo.show("HEAD~1", &path);
        let new = repo.show("HEAD", &path);
        let doc: Value = serde_json::from_slice(&new).unwrap();
        let entry = last_history(&doc);
        assert_eq!(entry["base_commit"], base.as_str(), "{path}");
        assert_eq!(entry["applied_at"], APPLIED_AT, "{path}");
        assert_eq!(entry["tool"], TOOL, "{path}");
        assert_eq!(
            entry["checksum_before"].as_str().unwrap(),
            python_sha256(&old),
            "{path}: checksum_before is the sha256 of the parent's blob"
        );
        assert_eq!(entry["checksum_before"].as_str().unwrap(), sha256_hex(&old));
        assert_eq!(
            entry["checksum_after"].as_str().unwrap(),
            python_checksum_after(&new),
            "{path}: checksum_after is the pipeline's canonical JSON"
        );
        // The entry's keys, in the order of SPEC §5.
        let keys: Vec<&str> = {
            // serde_json sorts keys; read the order from the raw text instead.
            let text = std::str::from_utf8(&new).unwrap();
            let start = text.find("\"from_version\"").unwrap();
            let order = [
                "from_version",
                "to_version",
                "steps",
                "changes",
                "applied_at",
                "base_commit",
                "checksum_before",
                "checksum_after",
                "tool",
            ];
            let mut at: Vec<(usize, &str)> = order
                .iter()
                .map(|k| (text[start..].find(&format!("\"{k}\"")).unwrap(), *k))
                .collect();
            at.sort();
            at.into_iter().map(|(_, k)| k).collect()
        };
        assert_eq!(
            keys,
            [
                "from_version",
                "to_version",
                "steps",
                "changes",
                "applied_at",
                "base_commit",
                "checksum_before",
                "checksum_after",
                "tool"
            ]
        );
    }
}

#[test]
fn old_bytes_are_recoverable_from_the_parent_commit() {
    let repo = TestRepo::with_samples();
    repo.cli(["apply"]).expect_code(0);
    assert_eq!(repo.show("HEAD~1", &p100()), SAMPLE_V100);
    assert_eq!(repo.show("HEAD~1", &p110()), SAMPLE_V110);
    assert_eq!(repo.show("HEAD~1", &p120()), sample_v120_own_run());
    // The already-current manifest is the same blob in both commits.
    assert_eq!(repo.show("HEAD", &p120()), sample_v120_own_run());

    // Rolling back is checking out the parent's blobs: byte for byte the originals.
    repo.git(["checkout", "HEAD~1", "--", "artifacts"]);
    assert_eq!(repo.file_bytes(&p100()), SAMPLE_V100);
    assert_eq!(repo.file_bytes(&p110()), SAMPLE_V110);
}

#[test]
fn plan_writes_nothing_at_all() {
    let repo = TestRepo::with_samples();
    let objects = repo.count_objects();
    let git_dir = repo.git_dir_snapshot();
    let files = repo.worktree_snapshot();
    let index = std::fs::read(repo.git_dir().join("index")).unwrap();

    let plan = repo.cli(["plan", "--json"]).expect_code(0).json();
    let diff = repo.cli(["plan", "--diff"]);
    diff.expect_code(0);
    let branch = repo.cli(["plan", "--branch", "review", "--json"]);
    let branch = branch.expect_code(0).json();

    assert_eq!(repo.count_objects(), objects);
    assert_eq!(std::fs::read(repo.git_dir().join("index")).unwrap(), index);
    let after = repo.git_dir_snapshot();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        git_dir.keys().collect::<Vec<_>>(),
        "no file was added to or removed from .git"
    );
    assert!(after == git_dir, "a file under .git changed");
    assert_eq!(repo.worktree_snapshot(), files);
    assert!(!repo.has_rev("refs/heads/review"));

    // And it said what apply would do.
    assert_eq!(plan["target"], "1.2.0");
    assert_eq!(plan["base"], repo.head());
    assert_eq!(plan["branch"], "refs/heads/main");
    assert_eq!(paths_of(&plan["migrate"]), [p100(), p110()]);
    assert_eq!(plan["already_current"], 1);
    assert_eq!(plan["failed"], json!([]));
    let message = plan["message"].as_str().unwrap();
    assert!(
        message.starts_with("migrate: 2 manifests to schema 1.2.0\n"),
        "{message}"
    );
    assert!(message.contains("\nMigration-Manifests: 2\n"), "{message}");
    assert_eq!(branch["branch"], "refs/heads/review");
    assert!(
        diff.stdout.contains("+  \"schema_version\": \"1.2.0\","),
        "{diff}"
    );

    // What plan showed is what apply commits.
    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 2);
    let head_msg = repo.message("HEAD");
    assert_eq!(head_msg.trim_end(), message.trim_end());
}

#[test]
fn protected_fields_are_deep_equal_across_the_batch() {
    let repo = TestRepo::new();
    // Every protected field present, in different shapes, on every version.
    let protected = json!({
        "job_id": "job-a",
        "run_id": "run-1",
        "job_ref": "jobs/job-a/brief.yaml",
        "doctrine": {"doctrine_id": "prompts/x", "version": "v2", "nested": [1, {"a": null}]},
        "inputs_hash": "sha256:0000000000000000000000000000000000000000000000000000000000000001",
        "input_snapshots": {"brief": {"bytes": 3, "path": "inputs/brief.json", "sha256": "sha256:ab"}}
    });
    let with = |version: Option<&str>, run: &str| {
        let mut v = protected.clone();
        v["run_id"] = json!(run);
        if let Some(s) = version {
            v["schema_version"] = json!(s);
        }
        v
    };
    repo.manifest("job-a/run-1", with(Some("1.0.0"), "run-1"))
        .manifest("job-a/run-2", with(None, "run-2"))
        .manifest("job-a/run-3", with(Some("1.1.0"), "run-3"))
        .commit("three runs with every protected field");

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 3, "{report:#}");
    for run in ["run-1", "run-2", "run-3"] {
        let path = manifest_path(&format!("job-a/{run}"));
        let before = repo.show_json("HEAD~1", &path);
        let after = repo.show_json("HEAD", &path);
        for field in [
            "job_id",
            "run_id",
            "job_ref",
            "doctrine",
            "inputs_hash",
            "input_snapshots",
        ] {
            assert_eq!(after[field], before[field], "{path}: {field}");
        }
        assert_eq!(after["schema_version"], "1.2.0");
        // Nothing was listed as added that was already there.
        let changes = strings(&last_history(&after)["changes"]);
        assert_eq!(changes, ["Add chain_metadata"], "{path}");
    }
}

#[test]
fn existing_values_of_added_fields_are_never_overwritten() {
    let repo = TestRepo::new();
    // A 1.2-shaped manifest labelled 1.1.0, as pipelines were seen writing.
    let mislabelled = String::from_utf8(sample_v120_own_run()).unwrap().replace(
        "\"schema_version\": \"1.2.0\"",
        "\"schema_version\": \"1.1.0\"",
    );
    repo.manifest(&format!("{JOB}/{RUN_120}"), &mislabelled)
        // A 1.0.0 manifest whose early writer put a job_id that is not the directory's name,
        // and already had inputs.
        .manifest(
            "job-dir/run-9",
            json!({
                "schema_version": "1.0.0",
                "run_id": "run-9",
                "job_id": "legacy-job-name",
                "inputs_hash": "sha256:99",
                "input_snapshots": {"brief": {"bytes": 1}},
                "chain_metadata": {"is_chainable_stage": true, "prior_stages": [{"stage": "s1"}]}
            }),
        )
        .commit("runs with fields already present");

    let report = repo.cli(["apply", "--json"]).expect_code(0).json();
    assert_eq!(report["migrated"], 2, "{report:#}");

    let path120 = p120();
    let before = repo.show_json("HEAD~1", &path120);
    let after = repo.show_json("HEAD", &path120);
    assert_eq!(after["chain_metadata"], before["chain_metadata"]);
    assert_eq!(after["chain_metadata"]["is_chainable_stage"], true);
    assert_eq!(after["schema_version"], "1.2.0");
    assert_eq!(
        strings(&last_history(&after)["changes"]),
        Vec::<String>::new()
    );

    let path9 = manifest_path("job-dir/run-9");
    let after9 = repo.show_json("HEAD", &path9);
    assert_eq!(after9["job_id"], "legacy-job-name");
    assert_eq!(after9["inputs_hash"], "sha256:99");
    assert_eq!(after9["input_snapshots"], json!({"brief": {"bytes": 1}}));
    assert_eq!(
        after9["chain_metadata"],
        json!({"is_chainable_stage": true, "prior_stages": [{"stage": "s1"}]})
    );
    assert_eq!(
        strings(&last_history(&after9)["changes"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_differently_shaped_existing_field_fails_the_manifest_instead_of_being_overwritten() {
    let repo = TestRepo::new();
    let odd = json!({
        "schema_version": "1.1.0",
        "run_id": "run-1",
        "job_id": "job-a",
        "chain_metadata": {"stages": ["a", "b"]}
    });
    repo.manifest("job-a/run-1", odd.clone())
        .commit("a run with an odd chain_metadata");
    let head = repo.head();
    let files = repo.worktree_snapshot();

    let run = repo.cli(["apply", "--json"]);
    let report = run.expect_code(1).json();
    assert_eq!(report["commit"], Value::Null);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["path"], manifest_path("job-a/run-1"));
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("chain_metadata"), "{error}");
    assert!(
        error.contains("1.1.0->1.2.0"),
        "names the migration: {error}"
    );
    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(repo.show_json("HEAD", &manifest_path("job-a/run-1")), odd);
}

#[test]
fn applied_at_is_the_committer_date_without_source_date_epoch() {
    let repo = TestRepo::with_samples();
    let mut cmd = repo.cli_command();
    cmd.env_remove("SOURCE_DATE_EPOCH");
    repo.run(cmd, ["apply"]).expect_code(0);
    let committer = repo.git([
        "log",
        "-1",
        "--format=%cd",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
    ]);
    let committer = committer.trim();
    for path in [p100(), p110()] {
        let doc = repo.show_json("HEAD", &path);
        assert_eq!(last_history(&doc)["applied_at"], committer, "{path}");
    }
    let trailer = repo.git([
        "log",
        "-1",
        "--format=%(trailers:key=Migration-Applied-At,valueonly)",
    ]);
    assert_eq!(trailer.trim(), committer);
}

#[test]
fn applied_at_follows_git_committer_date() {
    let repo = TestRepo::with_samples();
    let mut cmd = repo.cli_command();
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .env("GIT_COMMITTER_DATE", "@1767229200 +0100")
        .env("GIT_AUTHOR_DATE", "@1767000000 +0000");
    repo.run(cmd, ["apply"]).expect_code(0);
    let dates = repo.git(["log", "-1", "--format=%ct %ci|%at"]);
    assert_eq!(
        dates.trim(),
        "1767229200 2026-01-01 02:00:00 +0100|1767000000"
    );
    let doc = repo.show_json("HEAD", &p100());
    assert_eq!(last_history(&doc)["applied_at"], "2026-01-01T01:00:00Z");
}
