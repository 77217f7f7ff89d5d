//! The human output of every command, success and error, as transcripts: stdout, then
//! `------- stderr -------` and stderr, then `[exit status: N]`, pinned by inline insta
//! snapshots on fixed repositories (identities, dates and so commit ids are fixed by the
//! test environment; temporary paths are written `[REPO]` and `[HOME]`). A reviewer reads
//! what a user sees. JSON output is checked field by field elsewhere; the few JSON errors
//! here are the ones this suite fixes.
//!
//! To update after an intended change: `cargo insta test --accept --test cli_snapshots`
//! (or run the tests with `INSTA_UPDATE=always` and `cargo insta accept`), then read the
//! diff.

mod common;

use common::*;
use insta::assert_snapshot;
use serde_json::json;

const BROKEN: &str = "artifacts/job-b/run-1/manifest.json";

/// The samples, plus a manifest that is not JSON.
fn with_broken() -> TestRepo {
    let repo = TestRepo::new();
    repo.sample_files()
        .file(BROKEN, "{\"run_id\": \"run-1\", \"status\": oops}\n")
        .commit("record four runs, one broken");
    repo
}

/// Commits a small 1.1.0 manifest (so diffs and documents stay short); returns its path.
fn small_manifest(repo: &TestRepo) -> String {
    let p = "artifacts/job-s/run-s/manifest.json";
    repo.file(
        p,
        "{\n  \"schema_version\": \"1.1.0\",\n  \"job_id\": \"job-s\",\n  \"run_id\": \"run-s\",\n  \"status\": \"succeeded\"\n}\n",
    )
    .commit("record a small run");
    p.to_string()
}

/// A declarative migration 1.2.0 -> 1.3.0 and the schema of 1.3.0, committed on the samples.
const MIGRATION_FILE: &str = ".artifact-migrate/migrations/1.2.0-1.3.0.toml";
const MIGRATION: &str = "from = \"1.2.0\"\nto = \"1.3.0\"\n\n[[ops]]\nop = \"add\"\npath = \"/review_status\"\nvalue = \"unreviewed\"\ndescription = \"Add review_status (\\\"unreviewed\\\")\"\n";
const SCHEMA_FILE: &str = ".artifact-migrate/schemas/1.3.0.json";
const SCHEMA: &str = "{\"type\": \"object\", \"required\": [\"review_status\"], \"properties\": {\"review_status\": {\"enum\": [\"unreviewed\", \"approved\"]}}}\n";

fn with_declarative() -> TestRepo {
    let repo = TestRepo::with_samples();
    repo.file(MIGRATION_FILE, MIGRATION)
        .file(SCHEMA_FILE, SCHEMA)
        .commit("add the 1.3.0 migration and schema");
    repo
}

#[test]
fn status() {
    let repo = with_broken();
    assert_snapshot!(repo.transcript(["status"]), @"
    HEAD 43362bb4e106 (main)
    4 manifest(s) under artifacts/, latest schema 1.2.0
           1.0.0  1
           1.1.0  1
           1.2.0  1 (latest)
    pending: 2
    invalid: artifacts/job-b/run-1/manifest.json: not valid JSON: line 1, column 31: unexpected character 'o', expected a value
    ------- stderr -------
    [exit status: 0]
    ");
    repo.file(&manifest_path(&format!("{JOB}/{RUN_110}")), "{}\n")
        .file("artifacts/job-c/run-9/manifest.json", "{}\n");
    assert_snapshot!(repo.transcript(["status", "--check"]), @"
    HEAD 43362bb4e106 (main)
    4 manifest(s) under artifacts/, latest schema 1.2.0
           1.0.0  1
           1.1.0  1
           1.2.0  1 (latest)
    pending: 2
    invalid: artifacts/job-b/run-1/manifest.json: not valid JSON: line 1, column 31: unexpected character 'o', expected a value
    dirty: artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json
    untracked: artifacts/job-c/run-9/manifest.json
    ------- stderr -------
    [exit status: 1]
    ");
}

#[test]
fn status_outside_a_repository() {
    let repo = TestRepo::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = repo.cli_command_in(dir.path());
    cmd.arg("-C").arg(dir.path());
    let run = repo.run(cmd, ["status"]);
    let text = run
        .transcript()
        .replace(&dir.path().display().to_string(), "[DIR]");
    assert_snapshot!(text, @"
    ------- stderr -------
    error: not a git repository (or any parent up to /): [DIR]; run inside a repository or pass -C DIR
    [exit status: 2]
    ");
}

/// A `plan` transcript with the commit message it shows counted, not repeated (the first
/// `plan` snapshot pins what a message looks like).
fn without_message(transcript: &str) -> String {
    let mut out = Vec::new();
    let mut message: Option<usize> = None;
    for line in transcript.lines() {
        if let Some(n) = message.as_mut() {
            if line.is_empty() || line.starts_with("    ") {
                *n += usize::from(!line.is_empty());
                continue;
            }
            out.push(format!("    [{n} line(s) of commit message]"));
            message = None;
        }
        out.push(line.to_string());
        if line.starts_with("apply would commit on ") {
            message = Some(0);
        }
    }
    out.join("\n")
}

#[test]
fn plan() {
    let repo = TestRepo::with_samples();
    let p = manifest_path(&format!("{JOB}/{RUN_100}"));
    assert_snapshot!(repo.transcript(["plan", &p]), @"
    would migrate artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json (1.0.0 -> 1.2.0)

    apply would commit on refs/heads/main (base 8fe09ee1a3b8):

        migrate: 1 manifest to schema 1.2.0

        1.0.0 -> 1.2.0 (1 manifest)
          - Add input_snapshots (empty object)
          - Add inputs_hash (null)
          - Add job_id (from the path)
          - Add chain_metadata

        Already current: 0.

        Migration-Target: 1.2.0
        Migration-Manifests: 1
        Migration-Step: 1.0.0->1.2.0 1
        Migration-Registry: sha256:69c865d21ac94ddd9fdb9e42c5d96fef008cca0428a5b3589c9625a1d4fc6dfc
        Migration-Applied-At: 2026-01-01T00:00:00Z
        Migration-Tool: artifact-migrate 0.1.0
    ------- stderr -------
    [exit status: 0]
    ");
    let small = small_manifest(&repo);
    assert_snapshot!(without_message(&repo.transcript(["plan", "--diff", &small])), @r#"
    diff --git a/artifacts/job-s/run-s/manifest.json b/artifacts/job-s/run-s/manifest.json
    index 42d0bb2..f2c6f83 100644
    --- a/artifacts/job-s/run-s/manifest.json
    +++ b/artifacts/job-s/run-s/manifest.json
    @@ -1,6 +1,30 @@
     {
    -  "schema_version": "1.1.0",
    +  "schema_version": "1.2.0",
       "job_id": "job-s",
       "run_id": "run-s",
    -  "status": "succeeded"
    +  "status": "succeeded",
    +  "chain_metadata": {
    +    "is_chainable_stage": false,
    +    "prior_stages": []
    +  },
    +  "migration_history": [
    +    {
    +      "from_version": "1.1.0",
    +      "to_version": "1.2.0",
    +      "steps": [
    +        "1.1.0->1.2.0"
    +      ],
    +      "migration_checksums": {
    +        "1.1.0->1.2.0": "sha256:4bc9cc82c13f67f2d4248812ef42df5724c5c696cf50936d622a4609797e4c53"
    +      },
    +      "changes": [
    +        "Add chain_metadata"
    +      ],
    +      "applied_at": "2026-01-01T00:00:00Z",
    +      "base_commit": "a4ecdf1a9e6efbc7ea89d8ad7304ae833c59a007",
    +      "checksum_before": "sha256:468b48fc8685da5392611da928c3de656a954785f8da725d4023af0362e96f98",
    +      "checksum_after": "sha256:7822d0e2bc1e50ac3eb9e12cbb708186e9786b122a81f573d938c712dde58eb8",
    +      "tool": "artifact-migrate 0.1.0"
    +    }
    +  ]
     }

    apply would commit on refs/heads/main (base a4ecdf1a9e6e):
        [10 line(s) of commit message]
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["plan", "--to", "9.9.9"]), @"
    ------- stderr -------
    error: unknown target version 9.9.9; the registry knows 1.0.0, 1.1.0, 1.2.0
    [exit status: 2]
    ");
    assert_snapshot!(repo.transcript(["plan", "--to", "one"]), @r#"
    ------- stderr -------
    error: invalid value 'one' for '--to <V>': invalid schema version "one": expected MAJOR.MINOR.PATCH, e.g. "1.2.0"

    For more information, try '--help'.
    [exit status: 2]
    "#);
}

#[test]
fn plan_with_a_broken_manifest() {
    let repo = with_broken();
    assert_snapshot!(without_message(&repo.transcript(["plan"])), @"
    would migrate artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json (1.0.0 -> 1.2.0)
    would migrate artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json (1.1.0 -> 1.2.0)

    apply would commit on refs/heads/main (base 43362bb4e106):
        [17 line(s) of commit message]
    1 manifest(s) failed: apply would commit nothing (or only the others with --keep-going)
    ------- stderr -------
    error: artifacts/job-b/run-1/manifest.json: not valid JSON: line 1, column 31: unexpected character 'o', expected a value
    [exit status: 1]
    ");
}

#[test]
fn apply() {
    let repo = TestRepo::with_samples();
    assert_snapshot!(repo.transcript(["apply"]), @"
    committed 033fc48d0505 on refs/heads/main: 2 manifest(s) migrated to 1.2.0, 1 already current
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["apply"]), @"
    nothing to migrate: 3 manifest(s) already at 1.2.0
    ------- stderr -------
    [exit status: 0]
    ");
}

#[test]
fn apply_with_failures_and_refusals() {
    let repo = with_broken();
    assert_snapshot!(repo.transcript(["apply"]), @"
    nothing committed: 1 manifest(s) failed (2 would have migrated); fix them, narrow the pathspec, or use --keep-going
    ------- stderr -------
    error: artifacts/job-b/run-1/manifest.json: not valid JSON: line 1, column 31: unexpected character 'o', expected a value
    [exit status: 1]
    ");
    assert_snapshot!(repo.transcript(["apply", "--keep-going"]), @"
    committed 508b74fffa97 on refs/heads/main: 2 manifest(s) migrated to 1.2.0, 1 already current, 1 failed and left unchanged
    ------- stderr -------
    error: artifacts/job-b/run-1/manifest.json: not valid JSON: line 1, column 31: unexpected character 'o', expected a value
    [exit status: 1]
    ");
    let repo = TestRepo::with_samples();
    repo.file(&manifest_path(&format!("{JOB}/{RUN_100}")), "{}\n");
    assert_snapshot!(repo.transcript(["apply"]), @"
    ------- stderr -------
    error: 1 manifest(s) have uncommitted changes; commit or stash them first (nothing was changed): artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json
    [exit status: 3]
    ");
}

#[test]
fn apply_refuses_uncommitted_definitions() {
    let repo = TestRepo::with_samples();
    repo.file(MIGRATION_FILE, MIGRATION);
    assert_snapshot!(repo.transcript(["apply"]), @"
    ------- stderr -------
    error: migration definitions have uncommitted changes: commit them first, so the batch names definitions that are in git (nothing was changed): .artifact-migrate/migrations/1.2.0-1.3.0.toml
    [exit status: 3]
    ");
}

#[test]
fn rollback_and_log() {
    let repo = TestRepo::with_samples();
    assert_snapshot!(repo.transcript(["log"]), @"
    no migration batches or rollbacks in this history
    ------- stderr -------
    [exit status: 0]
    ");
    repo.cli(["apply"]).expect_code(0);
    assert_snapshot!(repo.transcript(["rollback"]), @"
    committed b60d2170b187 on refs/heads/main: rolled back batch 033fc48d0505, 2 manifest(s) restored byte for byte
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["log"]), @r#"
    b60d2170b187 2026-01-01T00:00:00+00:00 Revert "migrate: 2 manifests to schema 1.2.0"
        rollback of 033fc48d0505
        by Migration Author <author@migrations.example>
    033fc48d0505 2026-01-01T00:00:00+00:00 migrate: 2 manifests to schema 1.2.0
        migration to 1.2.0: 2 manifest(s) [1.0.0->1.2.0 1, 1.1.0->1.2.0 1], rolled back by b60d2170b187
        by Migration Author <author@migrations.example>
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["rollback"]), @"
    ------- stderr -------
    error: no migration batch on refs/heads/main is left to roll back
    [exit status: 3]
    ");
    assert_snapshot!(repo.transcript(["rollback", "HEAD~2"]), @"
    ------- stderr -------
    error: 8fe09ee1a3b8 is not a migration batch (it has no Migration-Target trailer); `artifact-migrate log` lists the batches
    [exit status: 3]
    ");
}

#[test]
fn verify() {
    let repo = TestRepo::with_samples();
    repo.cli(["apply"]).expect_code(0);
    assert_snapshot!(repo.transcript(["verify"]), @"
    verified 1 batch(es), 0 rollback(s) and 3 manifest(s) at 033fc48d0505: ok
    ------- stderr -------
    [exit status: 0]
    ");
    let p = manifest_path(&format!("{JOB}/{RUN_110}"));
    let mut doc = repo.show_json("HEAD", &p);
    doc["status"] = json!("edited by hand");
    repo.file(&p, doc).commit("edit a migrated manifest");
    assert_snapshot!(repo.transcript(["verify"]), @r#"
    warning: b7344dba2187 artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json: drift: status changed since batch 033fc48d0505; changed by 1 commit(s): b7344dba2187 (Repo Config User <config-user@repo.example>, 2025-12-31T00:00:00+00:00, "edit a migrated manifest")
    verified 1 batch(es), 0 rollback(s) and 3 manifest(s) at b7344dba2187: ok, 1 warning(s)
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["verify", "--strict"]), @r#"
    finding: b7344dba2187 artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json: drift: status changed since batch 033fc48d0505; changed by 1 commit(s): b7344dba2187 (Repo Config User <config-user@repo.example>, 2025-12-31T00:00:00+00:00, "edit a migrated manifest") (--strict)
    verified 1 batch(es), 0 rollback(s) and 3 manifest(s) at b7344dba2187: 1 finding(s)
    ------- stderr -------
    [exit status: 1]
    "#);
    assert_snapshot!(repo.transcript(["verify", "no-such-rev"]), @r#"
    ------- stderr -------
    error: unknown revision "no-such-rev": name a commit, branch or tag
    [exit status: 2]
    "#);
}

#[test]
fn repair() {
    let repo = with_declarative();
    repo.cli(["apply"]).expect_code(0);
    repo.file(
        MIGRATION_FILE,
        MIGRATION.replace("unreviewed\"\n", "pending\"\n"),
    )
    .commit("change the 1.3.0 migration");
    assert_snapshot!(repo.transcript(["verify"]), @"
    finding: b7a096d2ff9a .artifact-migrate/migrations/1.2.0-1.3.0.toml: migration 1.2.0->1.3.0 changed after batch(es) b7a096d2ff9a applied it (recorded sha256:742798ff00ada11a4ad7e8ee1f7410677b3d83eb1838f23e47a7921ae84d5032, now sha256:34cc251c1c29b7ef31829de3fed3bd08f25fab7563045f1c69e5686d78d88a6e); if the change is intended, record it with `artifact-migrate repair --accept 1.2.0->1.3.0`
    verified 1 batch(es), 0 rollback(s) and 3 manifest(s) at 02a82c2753ab: 1 finding(s)
    ------- stderr -------
    [exit status: 1]
    ");
    assert_snapshot!(repo.transcript(["repair", "--accept", "1.2.0->1.3.0"]), @"
    committed d1cc68174465: accepted the current definition of migration 1.2.0->1.3.0 (sha256:34cc251c1c29b7ef31829de3fed3bd08f25fab7563045f1c69e5686d78d88a6e, .artifact-migrate/migrations/1.2.0-1.3.0.toml)
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["verify"]), @"
    verified 1 batch(es), 0 rollback(s) and 3 manifest(s) at d1cc68174465: ok
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["repair", "--accept", "1.3.0->1.4.0"]), @"
    ------- stderr -------
    error: no migration 1.3.0->1.4.0 is defined; the registry has 1.0.0->1.1.0, 1.0.0->1.2.0, 1.1.0->1.2.0, 1.2.0->1.3.0
    [exit status: 2]
    ");
}

#[test]
fn show() {
    let repo = with_broken();
    let p = small_manifest(&repo);
    assert_snapshot!(repo.transcript(["show", &p]), @r#"
    {
      "schema_version": "1.2.0",
      "job_id": "job-s",
      "run_id": "run-s",
      "status": "succeeded",
      "chain_metadata": {
        "is_chainable_stage": false,
        "prior_stages": []
      },
      "migration_history": [
        {
          "from_version": "1.1.0",
          "to_version": "1.2.0",
          "steps": [
            "1.1.0->1.2.0"
          ],
          "migration_checksums": {
            "1.1.0->1.2.0": "sha256:4bc9cc82c13f67f2d4248812ef42df5724c5c696cf50936d622a4609797e4c53"
          },
          "changes": [
            "Add chain_metadata"
          ],
          "applied_at": "2026-01-01T00:00:00Z",
          "base_commit": "6b7e4ca6287a7acfedb3d1b2eda334cd4ffeeaa4",
          "checksum_before": "sha256:468b48fc8685da5392611da928c3de656a954785f8da725d4023af0362e96f98",
          "checksum_after": "sha256:7822d0e2bc1e50ac3eb9e12cbb708186e9786b122a81f573d938c712dde58eb8",
          "tool": "artifact-migrate 0.1.0"
        }
      ]
    }
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["show", &p, "--as", "1.1.0"]), @r#"
    {
      "schema_version": "1.1.0",
      "job_id": "job-s",
      "run_id": "run-s",
      "status": "succeeded"
    }
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["show", "artifacts/nothing/here/manifest.json"]), @"
    ------- stderr -------
    error: artifacts/nothing/here/manifest.json: not a file in the tree of 6b7e4ca6287a; only committed manifests can be shown
    [exit status: 2]
    ");
    let numeric = "artifacts/job-v/run-v/manifest.json";
    repo.file(
        numeric,
        "{\"schema_version\": 1.1, \"run_id\": \"run-v\"}\n",
    )
    .commit("record a run with a numeric version");
    assert_snapshot!(repo.transcript(["show", numeric]), @r#"
    ------- stderr -------
    error: artifacts/job-v/run-v/manifest.json: schema_version must be a string like "1.2.0", found a number
    [exit status: 1]
    "#);
}

#[test]
fn migrations() {
    let repo = with_declarative();
    assert_snapshot!(repo.transcript(["migrations", "--check"]), @r#"
    versions: 1.0.0, 1.1.0, 1.2.0, 1.3.0
    latest: 1.3.0

    migrations:
      1.0.0->1.1.0  sha256:4b0240e3f0b26770d8068ba62717bf9c7927ce81b0a47cb591cecb2d58277ac7
        - Add input_snapshots (empty object) where absent
        - Add inputs_hash (null) where absent
        - Add job_id where absent, from the path <job_id>/<run_id>/manifest.json or from job_ref jobs/<job_id>/...
      1.0.0->1.2.0  sha256:391844d529fc0826ace43c65f7eb220d04a433c91db2cbb94c6eaff0e20d7ca0
        - Add input_snapshots (empty object) where absent
        - Add inputs_hash (null) where absent
        - Add job_id where absent, from the path <job_id>/<run_id>/manifest.json or from job_ref jobs/<job_id>/...
        - Add chain_metadata {"is_chainable_stage": false, "prior_stages": []} where absent
      1.1.0->1.2.0  sha256:4bc9cc82c13f67f2d4248812ef42df5724c5c696cf50936d622a4609797e4c53
        - Add chain_metadata {"is_chainable_stage": false, "prior_stages": []} where absent
      1.2.0->1.3.0 (.artifact-migrate/migrations/1.2.0-1.3.0.toml)  sha256:742798ff00ada11a4ad7e8ee1f7410677b3d83eb1838f23e47a7921ae84d5032
        - Add review_status ("unreviewed")

    paths to 1.3.0:
      1.0.0: 1.0.0->1.2.0, 1.2.0->1.3.0
      1.1.0: 1.1.0->1.2.0, 1.2.0->1.3.0
      1.2.0: 1.2.0->1.3.0

    check: no problems found
    ------- stderr -------
    [exit status: 0]
    "#);
    repo.file(MIGRATION_FILE, "from = \"1.2.0\"\nto = \"1.3.0\"\n\n[[ops]]\nop = \"explode\"\npath = \"/x\"\ndescription = \"?\"\n");
    assert_snapshot!(repo.transcript(["migrations", "--check"]), @"
    error: .artifact-migrate/migrations/1.2.0-1.3.0.toml:5: unknown op `explode`: expected add, set, remove, rename, move or copy
    ------- stderr -------
    [exit status: 1]
    ");
    assert_snapshot!(repo.transcript(["plan"]), @"
    ------- stderr -------
    error: the migration definitions are wrong; fix them and run again:
      .artifact-migrate/migrations/1.2.0-1.3.0.toml:5: unknown op `explode`: expected add, set, remove, rename, move or copy
    [exit status: 2]
    ");
    // Every problem is in one file: the JSON error names it.
    let run = repo.cli(["plan", "--json"]);
    let err = run.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "environment", "{run}");
    assert_eq!(err["error"]["path"], MIGRATION_FILE, "{run}");
}

#[test]
fn validate() {
    let repo = with_declarative();
    assert_snapshot!(repo.transcript(["validate"]), @"
    3 manifest(s) at HEAD d5415529af24: 0 checked against their version's schema, 3 at versions without a schema (1.0.0: 1, 1.1.0: 1, 1.2.0: 1); ok
    ------- stderr -------
    [exit status: 0]
    ");
    repo.cli(["apply"]).expect_code(0);
    assert_snapshot!(repo.transcript(["validate"]), @"
    3 manifest(s) at HEAD b7a096d2ff9a: 3 checked against their version's schema; ok
    ------- stderr -------
    [exit status: 0]
    ");
    let p = manifest_path(&format!("{JOB}/{RUN_110}"));
    let mut doc = repo.show_json("HEAD", &p);
    doc["review_status"] = json!("maybe");
    repo.file(&p, doc);
    repo.git(["add", &p]);
    assert_snapshot!(repo.transcript(["validate", "--staged"]), @r#"
    error: artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json: /review_status: enum: "maybe" is not one of "unreviewed" or "approved" (schema .artifact-migrate/schemas/1.3.0.json)
    1 staged manifest(s): 1 checked against their version's schema; 1 failed
    commit aborted by the artifact-migrate pre-commit hook; fix the manifest, or skip the check with git commit --no-verify
    ------- stderr -------
    [exit status: 1]
    "#);
    repo.commit("commit a manifest that does not validate");
    assert_snapshot!(repo.transcript(["validate"]), @r#"
    error: artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json: /review_status: enum: "maybe" is not one of "unreviewed" or "approved" (schema .artifact-migrate/schemas/1.3.0.json)
    3 manifest(s) at HEAD 8207e61c79bc: 3 checked against their version's schema; 1 failed
    ------- stderr -------
    [exit status: 1]
    "#);
    repo.file(SCHEMA_FILE, "{\"type\": 7}\n");
    repo.git(["add", SCHEMA_FILE]);
    assert_snapshot!(repo.transcript(["validate", "--staged"]), @"
    ------- stderr -------
    error: the migration definitions are wrong; fix them and run again:
      .artifact-migrate/schemas/1.3.0.json: not a valid draft 2020-12 schema: 7 is not valid under any of the schemas listed in the 'anyOf' keyword (at /type); fix the schema (references must stay inside the file)
    commit aborted by the artifact-migrate pre-commit hook; fix the manifest, or skip the check with git commit --no-verify
    [exit status: 2]
    ");
}

#[test]
fn hook() {
    let repo = TestRepo::with_samples();
    let exe = assert_cmd::cargo::cargo_bin("artifact-migrate");
    let redact = |t: String| t.replace(&exe.display().to_string(), "[EXE]");
    assert_snapshot!(redact(repo.transcript(["hook", "install"])), @"
    installed the pre-commit hook at [REPO]/.git/hooks/pre-commit: git commit now rejects staged manifests that do not validate against their version's schema (skip it once with git commit --no-verify)
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["hook", "uninstall"]), @"
    removed the pre-commit hook at [REPO]/.git/hooks/pre-commit
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["hook", "uninstall"]), @"
    no pre-commit hook at [REPO]/.git/hooks/pre-commit: nothing to remove
    ------- stderr -------
    [exit status: 0]
    ");
    repo.file(".git/hooks/pre-commit", "#!/bin/sh\nexit 0\n");
    assert_snapshot!(repo.transcript(["hook", "install"]), @"
    ------- stderr -------
    error: [REPO]/.git/hooks/pre-commit: a pre-commit hook that is not artifact-migrate's is already there; nothing was changed: call `artifact-migrate validate --staged` from it, or replace it with `artifact-migrate hook install --force`
    [exit status: 3]
    ");
    assert_snapshot!(repo.transcript(["hook", "install", "--force"]), @"
    installed the pre-commit hook at [REPO]/.git/hooks/pre-commit: git commit now rejects staged manifests that do not validate against their version's schema (skip it once with git commit --no-verify)
    ------- stderr -------
    note: replaced the pre-commit hook that was at [REPO]/.git/hooks/pre-commit
    [exit status: 0]
    ");
}

#[test]
fn new() {
    let repo = TestRepo::with_samples();
    assert_snapshot!(repo.transcript(["new", "1.2.0", "1.3.0"]), @r#"
    created .artifact-migrate/migrations/1.2.0-1.3.0.toml: a migration from 1.2.0 to 1.3.0 that edits nothing yet

    next:
      1. edit it: add ops (the comments in it show every kind; docs/migrations.md is the reference)
      2. optionally add .artifact-migrate/schemas/1.3.0.json, the JSON Schema manifests at 1.3.0 must satisfy
      3. preview: artifact-migrate plan --diff
      4. commit it: git add .artifact-migrate && git commit -m "Add the 1.2.0 -> 1.3.0 migration"
      5. apply: artifact-migrate apply
    ------- stderr -------
    [exit status: 0]
    "#);
    assert_snapshot!(repo.transcript(["new", "1.2.0", "1.3.0"]), @"
    ------- stderr -------
    error: .artifact-migrate/migrations/1.2.0-1.3.0.toml already exists; nothing was written: edit it, or remove it to start over
    [exit status: 3]
    ");
    assert_snapshot!(repo.transcript(["new", "1.0.0", "1.1.0"]), @"
    ------- stderr -------
    error: a built-in migration already defines 1.0.0->1.1.0; nothing was written: scaffold a migration from 1.1.0 to a new version
    [exit status: 3]
    ");
    assert_snapshot!(repo.transcript(["new", "1.3.0", "1.3.0"]), @"
    ------- stderr -------
    error: FROM and TO are both 1.3.0: a migration leads to a higher version; name the next one, e.g. `artifact-migrate new 1.3.0 1.4.0`
    [exit status: 2]
    ");
    // A version nothing leads to yet: created, with a note (the rest is as above).
    let run = repo.cli(["new", "7.0.0", "8.0.0"]);
    run.expect_code(0);
    assert_snapshot!(run.stderr, @"note: no migration leads to or from 7.0.0 yet (the registry knows 1.0.0, 1.1.0, 1.2.0, 1.3.0): manifests at other versions cannot reach 8.0.0 until one does");
}

/// The demo's own narration with each step's output counted, not repeated: what every
/// step prints is pinned by that command's own snapshots above.
fn condensed(transcript: &str) -> String {
    let mut out = Vec::new();
    let mut step: Option<usize> = None;
    for line in transcript.lines() {
        let ends_steps = line.starts_with("Done.") || line.starts_with("------- stderr");
        if line.starts_with("$ artifact-migrate") || ends_steps {
            if let Some(n) = step.take() {
                out.push(format!("  [{n} line(s) of output]"));
            }
            out.push(line.to_string());
            if !ends_steps {
                step = Some(0);
            }
            continue;
        }
        match step.as_mut() {
            Some(n) if !line.is_empty() => *n += 1,
            Some(_) => {}
            None => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

#[test]
fn demo() {
    let repo = TestRepo::new();
    let dir = repo.path().join("demo");
    let text = repo.transcript([std::ffi::OsStr::new("demo"), dir.as_os_str()]);
    assert_snapshot!(condensed(&text), @"
    Built a sample artifacts repository in [REPO]/demo

    Three runs of one job: a one-line 1.0.0 manifest without job_id, a 1.1.0 and a 1.2.0 one;
    plus an input snapshot named manifest.json, a staging directory and a legacy symlink, which are never migrated.

    $ artifact-migrate status
      [6 line(s) of output]
    $ artifact-migrate migrations
      [17 line(s) of output]
    $ artifact-migrate plan --diff
      [70 line(s) of output]
    $ artifact-migrate apply
      [1 line(s) of output]
    $ artifact-migrate status --check
      [4 line(s) of output]
    $ artifact-migrate apply
      [1 line(s) of output]
    $ artifact-migrate log
      [3 line(s) of output]
    $ artifact-migrate verify
      [1 line(s) of output]
    $ artifact-migrate rollback
      [1 line(s) of output]
    $ artifact-migrate status
      [6 line(s) of output]
    $ artifact-migrate apply -m migrate: spring-launch-01 to schema 1.2.0, again
      [1 line(s) of output]
    $ artifact-migrate log
      [9 line(s) of output]
    $ artifact-migrate verify
      [5 line(s) of output]
    $ artifact-migrate plan --branch legacy-import
      [15 line(s) of output]
    $ artifact-migrate apply --branch legacy-import
      [1 line(s) of output]
    $ artifact-migrate relocate --branch legacy-import
      [2 line(s) of output]
    $ artifact-migrate log legacy-import
      [15 line(s) of output]
    $ artifact-migrate verify legacy-import
      [1 line(s) of output]
    Done. Every step above is one commit or none: `git -C [REPO]/demo log --stat` shows them,
    and `git -C [REPO]/demo log --format='%h %s%n%(trailers)'` their trailers; `git -C [REPO]/demo show --stat -M legacy-import`
    shows that the relocation only renamed.
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["demo", "demo"]), @"
    ------- stderr -------
    error: [REPO]/demo: exists and is not empty; name a new directory
    [exit status: 2]
    ");
}

#[test]
fn completions_and_man() {
    let repo = TestRepo::new();
    let bash = repo.cli(["completions", "bash"]);
    bash.expect_code(0);
    let head: Vec<&str> = bash.stdout.lines().take(3).collect();
    assert_snapshot!(head.join("\n"), @"
    _artifact__migrate() {
        local i cur prev opts cmd
        COMPREPLY=()
    ");
    assert_snapshot!(repo.transcript(["completions", "tcsh"]), @"
    ------- stderr -------
    error: invalid value 'tcsh' for '<SHELL>'
      [possible values: bash, elvish, fish, powershell, zsh]

      tip: a similar value exists: 'zsh'

    For more information, try '--help'.
    [exit status: 2]
    ");
    let man = repo.cli(["man"]);
    man.expect_code(0);
    let head: Vec<&str> = man.stdout.lines().take(6).collect();
    assert_snapshot!(head.join("\n"), @r#"
    .ie \n(.g .ds Aq \(aq
    .el .ds Aq '
    .TH artifact-migrate 1  "artifact-migrate 0.1.0" 
    .SH NAME
    artifact\-migrate \- Migrate JSON run manifests in a git repository to new schema versions, one audited commit per batch
    .SH SYNOPSIS
    "#);
    assert_snapshot!(repo.transcript(["man", "extra"]), @"
    ------- stderr -------
    error: unexpected argument 'extra' found

    Usage: artifact-migrate man [OPTIONS]

    For more information, try '--help'.
    [exit status: 2]
    ");
}

/// A malformed `.artifact-migrate.toml`: the error names the file, in text and in JSON.
#[test]
fn a_malformed_config_names_its_file() {
    let repo = TestRepo::with_samples();
    repo.file(".artifact-migrate.toml", "artifact_root = 1\n");
    assert_snapshot!(repo.transcript(["status"]), @"
    ------- stderr -------
    error: .artifact-migrate.toml: TOML parse error at line 1, column 1
      |
    1 | artifact_root = 1
      | ^^^^^^^^^^^^^
    unknown field `artifact_root`, expected one of `artifacts_root`, `manifest_name`, `protected_fields`, `layouts`, `index`; see docs/cli.md for the keys
    [exit status: 2]
    ");
    let run = repo.cli(["status", "--json"]);
    let err = run.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "environment", "{run}");
    assert_eq!(err["error"]["path"], ".artifact-migrate.toml", "{run}");
    assert_eq!(run.stderr, "");
}

/// Bad revisions are `not_found` when they name nothing (the API answers 404), `usage`
/// when they are not a commit.
#[test]
fn revisions_that_name_nothing_are_not_found() {
    let repo = TestRepo::with_samples();
    for args in [
        ["verify", "no-such-rev", "--json"],
        ["log", "no-such-rev", "--json"],
        ["rollback", "no-such-rev", "--json"],
    ] {
        let run = repo.cli(args);
        let err = run.expect_code(2).json();
        assert_eq!(err["error"]["kind"], "not_found", "{run}");
        assert_eq!(
            err["error"]["message"],
            "unknown revision \"no-such-rev\": name a commit, branch or tag",
            "{run}"
        );
    }
    let run = repo.cli(["verify", "HEAD^{tree}", "--json"]);
    assert_eq!(run.expect_code(2).json()["error"]["kind"], "usage", "{run}");
    let run = repo.cli(["show", "--json", "artifacts/nothing/here/manifest.json"]);
    let err = run.expect_code(2).json();
    assert_eq!(err["error"]["kind"], "not_found", "{run}");
    assert_eq!(
        err["error"]["path"], "artifacts/nothing/here/manifest.json",
        "{run}"
    );
}

/// A legacy run as the seed's first runs were written (`artifacts/runs/<run_id>/`, no job_id).
fn with_legacy_run() -> TestRepo {
    let repo = TestRepo::new();
    repo.file(
        "artifacts/runs/run-l/manifest.json",
        "{\"run_id\": \"run-l\", \"job_ref\": \"jobs/job-l/brief.yaml\", \"status\": \"succeeded\"}\n",
    )
    .file("artifacts/runs/run-l/outputs/caption.md", "An older caption.\n")
    .commit("record a legacy run");
    repo
}

#[test]
fn relocate() {
    let repo = with_legacy_run();
    assert_snapshot!(repo.transcript(["relocate", "--dry-run"]), @"
    would move artifacts/runs/run-l -> artifacts/job-l/run-l (2 file(s); job_id from job_ref)

    relocate would commit on refs/heads/main (base 3010f3ffa029):

        relocate: 1 run to the canonical layout {job_id}/{run_id}

        Moved byte for byte (each old place is now a symbolic link to the new one):
        artifacts/runs/run-l -> artifacts/job-l/run-l

        Migration-Relocate: 1
        Migration-Layout: {job_id}/{run_id}
        Migration-Tool: artifact-migrate 0.1.0
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["relocate"]), @"
    moved artifacts/runs/run-l -> artifacts/job-l/run-l (2 file(s); job_id from job_ref)
    committed 4b32462b1010 on refs/heads/main: 1 run(s) relocated to {job_id}/{run_id}; each old place is now a symbolic link to the new one
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["relocate"]), @"
    nothing to relocate: every run is in the canonical layout {job_id}/{run_id}
    ------- stderr -------
    [exit status: 0]
    ");
    // A canonical place already holding other content is refused, naming both.
    let taken = with_legacy_run();
    taken
        .file(
            "artifacts/job-l/run-l/manifest.json",
            "{\"run_id\": \"run-l\", \"job_id\": \"job-l\", \"status\": \"failed\"}\n",
        )
        .commit("a different run at the canonical place");
    assert_snapshot!(taken.transcript(["relocate"]), @"
    ------- stderr -------
    error: 1 run(s) cannot move: the canonical place holds different content (nothing was changed):
      artifacts/runs/run-l -> artifacts/job-l/run-l (taken)
    compare the two copies, keep one (git rm -r the other), commit, then run again
    [exit status: 3]
    ");
}

#[test]
fn index_and_runs() {
    let repo = TestRepo::with_samples();
    assert_snapshot!(repo.transcript(["index"]), @"
    indexed 8fe09ee1a3b8 (refs/heads/main) in sqlite:[REPO]/.git/artifact-migrate/index.sqlite: built from nothing (a new index)
      3 run(s), 0 invalid, 0 legacy duplicate(s), 0 batch(es)
      read 3, unchanged 0, removed 0
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["runs", "--version", "1.0.0"]), @"
    JOB               RUN                                   VERSION  STATUS     LAST BATCH  PATH
    spring-launch-01  5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90  1.0.0    succeeded  -           artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json
    1 run(s) at 8fe09ee1a3b8
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["apply", "-q"]), @"
    committed 033fc48d0505 on refs/heads/main: 2 manifest(s) migrated to 1.2.0, 1 already current
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["runs"]), @"
    JOB               RUN                                   VERSION  STATUS     LAST BATCH    PATH
    spring-launch-01  0d5c1a9e3b7f4e2a8c6d1b0f9e8a7c65      1.2.0    succeeded  -             artifacts/spring-launch-01/0d5c1a9e3b7f4e2a8c6d1b0f9e8a7c65/manifest.json
    spring-launch-01  5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90  1.2.0    succeeded  033fc48d0505  artifacts/spring-launch-01/5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90/manifest.json
    spring-launch-01  7492b68c4e13bb143e5f50cdd0993926      1.2.0    succeeded  033fc48d0505  artifacts/spring-launch-01/7492b68c4e13bb143e5f50cdd0993926/manifest.json
    3 run(s) at 033fc48d0505
    ------- stderr -------
    [exit status: 0]
    ");
    assert_snapshot!(repo.transcript(["index", "--db", "mysql://nope"]), @r#"
    ------- stderr -------
    error: "mysql://nope" is not a database URL: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE
    [exit status: 2]
    "#);
}
