//! The index (`index`, `runs`, the refresh after `apply`/`rollback`/`repair`), run against
//! both backends by one suite: every case is a function of a [`Backend`], and
//! `both_backends!` makes a SQLite test and a PostgreSQL test of each. The referee is not
//! the crate: `sqlite3` and `psql` read the tables, plain `git` reads the manifests.

mod common;
mod common_audit;
#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use common::*;
use common_audit::{spawn, Spawned};

/// Where a test's index lives.
enum Db {
    /// The default: `.git/artifact-migrate/index.sqlite`, no flag, no variable.
    Sqlite,
    /// A database of the shared test server, given as `DATABASE_URL`.
    Postgres(String),
}

struct Backend {
    db: Db,
}

impl Backend {
    fn sqlite(test: &str) -> Option<Backend> {
        if !has_client("sqlite3", test) {
            return None;
        }
        Some(Backend { db: Db::Sqlite })
    }

    fn postgres(test: &str) -> Option<Backend> {
        if !has_client("psql", test) {
            return None;
        }
        pg::fresh_database(test).map(|url| Backend {
            db: Db::Postgres(url),
        })
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        match &self.db {
            Db::Sqlite => vec![],
            Db::Postgres(url) => vec![("DATABASE_URL", url.clone())],
        }
    }

    fn cli<const N: usize>(&self, repo: &TestRepo, args: [&str; N]) -> Run {
        let mut cmd = repo.cli_command();
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        repo.run(cmd, args)
    }

    fn spawn(&self, repo: &TestRepo, extra: &[(&str, &str)], args: &[&str]) -> Spawned {
        let env = self.env();
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        spawn(repo, &all, args)
    }

    fn sqlite_file(repo: &TestRepo) -> std::path::PathBuf {
        repo.git_dir().join("artifact-migrate").join("index.sqlite")
    }

    /// Whether an index exists at all.
    fn exists(&self, repo: &TestRepo) -> bool {
        match &self.db {
            Db::Sqlite => Self::sqlite_file(repo).exists(),
            Db::Postgres(_) => !self
                .rows(
                    repo,
                    "SELECT table_name FROM information_schema.tables WHERE table_name = 'index_schema'",
                )
                .is_empty(),
        }
    }

    /// The rows of a query, as the database's own client prints them in JSON.
    fn rows(&self, repo: &TestRepo, sql: &str) -> Vec<Value> {
        let out = match &self.db {
            Db::Sqlite => Command::new("sqlite3")
                .arg("-json")
                .arg(Self::sqlite_file(repo))
                .arg(sql)
                .output(),
            Db::Postgres(url) => Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    url,
                    "-c",
                ])
                .arg(format!(
                    "SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t"
                ))
                .output(),
        }
        .expect("run the database's client (sqlite3 / psql)");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        if text.trim().is_empty() {
            return vec![];
        }
        serde_json::from_str::<Value>(&text)
            .unwrap_or_else(|e| panic!("{sql}: not JSON ({e}): {text}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Runs a statement with the database's own client.
    fn exec(&self, repo: &TestRepo, sql: &str) {
        let out = match &self.db {
            Db::Sqlite => Command::new("sqlite3")
                .arg(Self::sqlite_file(repo))
                .arg(sql)
                .output(),
            Db::Postgres(url) => Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
                .output(),
        }
        .expect("run the database's client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every row of every table, `indexed_at` aside, in key order.
    fn snapshot(&self, repo: &TestRepo) -> BTreeMap<&'static str, Vec<Value>> {
        let queries = [
            ("run_index", "SELECT job_id, run_id, job_ref, job_type, status, inputs_hash, artifact_dir, manifest_json, schema_version, path, blob_id, last_batch FROM run_index ORDER BY job_id, run_id"),
            ("invalid_manifests", "SELECT path, blob_id, kind, error, job_id, run_id FROM invalid_manifests ORDER BY path"),
            ("legacy_duplicates", "SELECT * FROM legacy_duplicates ORDER BY path"),
            ("migration_batches", "SELECT * FROM migration_batches ORDER BY position"),
            ("batch_steps", "SELECT * FROM batch_steps ORDER BY \"commit\", from_version, to_version"),
            ("index_state", "SELECT \"commit\", refname, tool, settings FROM index_state"),
            ("index_schema", "SELECT version FROM index_schema"),
        ];
        queries
            .into_iter()
            .map(|(t, q)| (t, self.rows(repo, q)))
            .collect()
    }

    /// `SELECT count(*) FROM <from>`.
    fn count(&self, repo: &TestRepo, from: &str) -> u64 {
        self.rows(repo, &format!("SELECT count(*) AS n FROM {from}"))[0]["n"]
            .as_u64()
            .expect("a count")
    }

    fn indexed_commit(&self, repo: &TestRepo) -> String {
        self.rows(repo, "SELECT \"commit\" FROM index_state")[0]["commit"]
            .as_str()
            .expect("a commit")
            .to_string()
    }
}

/// Whether the database's own client (the referee) is installed; says SKIPPED when not.
fn has_client(client: &str, test: &str) -> bool {
    let ok = Command::new(client)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: index test {test} not run: `{client}` not found (apt-get install sqlite3 postgresql)");
    }
    ok
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() {
                let Some(b) = super::Backend::sqlite(stringify!($name)) else { return };
                super::$name(&b)
            } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                let Some(b) = super::Backend::postgres(stringify!($name)) else { return };
                super::$name(&b)
            } )*
        }
    };
}

both_backends!(
    indexes_every_manifest_with_the_seed_columns,
    apply_and_rollback_are_read_incrementally_and_equal_a_rebuild,
    history_rewritten_under_the_index_is_followed,
    a_run_in_both_layouts_is_indexed_once_from_the_canonical_place,
    commands_refresh_an_existing_index_and_never_fail_for_it,
    two_updates_at_once_wait_for_each_other,
    a_kill_mid_update_leaves_the_previous_index,
    schema_versions_are_upgraded_or_rebuilt_never_misread,
    runs_answers_from_the_index,
    the_library_answers_as_of_one_commit,
    a_full_build_reads_in_pack_order_and_keeps_its_indexes,
    a_reader_in_a_transaction_does_not_hold_up_a_build,
);

/// A small corpus in the pipeline's shape: `n` runs over a few jobs, mostly 1.0.0 (half of
/// those without job_id, as the seed's first runs), some 1.1.0 and 1.2.0.
fn corpus(n: usize) -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..n {
        let job = format!("job-{}", i % 4);
        let run = format!("run-{i:04}");
        let version = match i % 10 {
            0..=7 => "1.0.0",
            8 => "1.1.0",
            _ => "1.2.0",
        };
        let mut m = json!({
            "schema_version": version,
            "run_id": run,
            "job_ref": format!("jobs/{job}/brief.yaml"),
            "job_type": "instagram_copy",
            "status": if i % 7 == 0 { "failed" } else { "succeeded" },
        });
        if version != "1.0.0" || i % 2 == 0 {
            m["job_id"] = json!(job);
        }
        if version != "1.0.0" {
            m["input_snapshots"] = json!({});
            m["inputs_hash"] = json!(format!("sha256:{i:064x}"));
        }
        if version == "1.2.0" {
            m["chain_metadata"] = json!({"is_chainable_stage": false, "prior_stages": []});
        }
        repo.manifest(&format!("{job}/{run}"), m);
        repo.file(
            &format!("artifacts/{job}/{run}/inputs/brief.yaml"),
            format!("job: {job}\n"),
        );
    }
    repo.commit("record the runs");
    repo
}

/// Every manifest path of HEAD's tree with its blob id, as plain git lists it.
fn manifests_in_git(repo: &TestRepo) -> BTreeMap<String, String> {
    repo.ls_tree("HEAD")
        .into_iter()
        .filter(|(p, _)| {
            p.starts_with("artifacts/") && p.ends_with("/manifest.json") && !p.contains("/inputs/")
        })
        .map(|(p, meta)| (p, meta.split(' ').nth(2).unwrap_or_default().to_string()))
        .collect()
}

/// The index agrees with `status --json` and with the manifests themselves, as git shows them.
#[track_caller]
fn assert_agrees_with_git(b: &Backend, repo: &TestRepo) {
    let status = repo.cli(["status", "--json"]).expect_code(0).json();
    assert_eq!(b.indexed_commit(repo), status["head"].as_str().unwrap());
    let by_version: BTreeMap<String, u64> = b
        .rows(
            repo,
            "SELECT schema_version, count(*) AS n FROM run_index GROUP BY schema_version",
        )
        .iter()
        .map(|r| {
            (
                r["schema_version"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, u64> = status["versions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(by_version, expected, "versions differ from status --json");
    let rows = b.rows(
        repo,
        "SELECT path, blob_id, manifest_json, schema_version, job_id, run_id FROM run_index ORDER BY path",
    );
    let git = manifests_in_git(repo);
    assert_eq!(
        rows.len() as u64,
        status["total"].as_u64().unwrap(),
        "every manifest is a run here"
    );
    assert_eq!(rows.len(), git.len());
    for row in &rows {
        let path = row["path"].as_str().unwrap();
        assert_eq!(
            row["blob_id"].as_str(),
            git.get(path).map(String::as_str),
            "{path}"
        );
        let bytes = repo.show("HEAD", path);
        assert_eq!(
            row["manifest_json"].as_str().unwrap().as_bytes(),
            &bytes[..],
            "{path}"
        );
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            row["schema_version"],
            doc.get("schema_version").cloned().unwrap_or(json!("1.0.0")),
            "{path}"
        );
        assert_eq!(row["run_id"], doc["run_id"], "{path}");
        let job_dir = path.split('/').nth(1).unwrap();
        assert_eq!(
            row["job_id"],
            doc.get("job_id").cloned().unwrap_or(json!(job_dir)),
            "{path}"
        );
    }
}

/// `index --rebuild` makes exactly the rows the updates made (`indexed_at` aside).
#[track_caller]
fn assert_rebuild_equals(b: &Backend, repo: &TestRepo) {
    let before = b.snapshot(repo);
    let r = b
        .cli(repo, ["index", "--rebuild", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(r["rebuilt"], "--rebuild");
    assert_eq!(
        b.snapshot(repo),
        before,
        "a rebuild differs from the incremental index"
    );
}

fn no_refresh(repo: &TestRepo) {
    repo.file(
        ".artifact-migrate.toml",
        "[index]\nupdate_after_commit = false\n",
    )
    .commit("index by hand");
}

fn indexes_every_manifest_with_the_seed_columns(b: &Backend) {
    let repo = TestRepo::with_samples();
    repo.manifest("job-b/broken", "{\"run_id\": ")
        .symlink(
            "artifacts/job-b/link/manifest.json",
            "../broken/manifest.json",
        )
        .file("artifacts/job-b/r1/inputs/manifest.json", "{}")
        .commit("a broken manifest, a link, an input");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (
            &r["manifests"],
            &r["invalid"],
            &r["read"],
            &r["unchanged"],
            &r["mode"]
        ),
        (&json!(3), &json!(2), &json!(4), &json!(0), &json!("full"))
    );
    assert_eq!(r["commit"], repo.head());
    let rows = b.rows(
        &repo,
        "SELECT job_id, run_id, job_ref, job_type, status, inputs_hash, artifact_dir, schema_version, last_batch FROM run_index ORDER BY schema_version",
    );
    // The 1.0.0 sample has no job_id: the one the 1.1.0 migration would derive (the path's).
    assert_eq!(
        rows[0],
        json!({"job_id": JOB, "run_id": RUN_100, "job_ref": "jobs/spring-launch-01/brief.yaml",
               "job_type": "instagram_copy", "status": "succeeded", "inputs_hash": null,
               "artifact_dir": format!("artifacts/{JOB}/{RUN_100}"), "schema_version": "1.0.0",
               "last_batch": null})
    );
    let v110: Value = serde_json::from_slice(SAMPLE_V110).unwrap();
    assert_eq!(rows[1]["inputs_hash"], v110["inputs_hash"]);
    assert_eq!(rows[2]["schema_version"], "1.2.0");
    let invalid = b.rows(
        &repo,
        "SELECT path, blob_id, kind, error FROM invalid_manifests ORDER BY path",
    );
    let kinds: Vec<(&str, &str)> = invalid
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("artifacts/job-b/broken/manifest.json", "parse"),
            ("artifacts/job-b/link/manifest.json", "symlink")
        ]
    );
    let link_blob = repo.git(["rev-parse", "HEAD:artifacts/job-b/link/manifest.json"]);
    assert_eq!(invalid[1]["blob_id"], link_blob.trim());
    // status lists the same two as invalid.
    let status = repo.cli(["status", "--json"]).json();
    assert_eq!(paths_of(&status["invalid"]).len(), 2);
    assert_eq!(status["total"], 5);
    let state = b.rows(&repo, "SELECT \"commit\", refname, tool FROM index_state");
    assert_eq!(
        state,
        [json!({"commit": repo.head(), "refname": "refs/heads/main", "tool": TOOL})]
    );
    // Human output names the database and the counts.
    let text = b.cli(&repo, ["index"]).expect_code(0).stdout.clone();
    assert!(text.contains("already at"), "{text}");
    assert!(text.contains("3 run(s), 2 invalid"), "{text}");
}

fn apply_and_rollback_are_read_incrementally_and_equal_a_rebuild(b: &Backend) {
    let repo = corpus(60);
    no_refresh(&repo);
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!((&r["read"], &r["manifests"]), (&json!(60), &json!(60)));
    assert_agrees_with_git(b, &repo);
    let applied = repo.cli(["apply", "--json"]).expect_code(0).json();
    let migrated = applied["migrated"].as_u64().unwrap();
    assert_eq!(migrated, 54);
    assert!(
        !b.indexed_commit(&repo).eq(&repo.head()),
        "the refresh is off"
    );
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (
            &r["mode"],
            &r["read"],
            &r["unchanged"],
            &r["removed"],
            &r["batches"]
        ),
        (
            &json!("incremental"),
            &json!(migrated),
            &json!(60 - migrated),
            &json!(0),
            &json!(1)
        )
    );
    assert_agrees_with_git(b, &repo);
    let batch = repo.head();
    let linked = b.count(&repo, &format!("run_index WHERE last_batch = '{batch}'"));
    assert_eq!(linked, migrated);
    let steps = b.rows(
        &repo,
        "SELECT from_version, to_version, count FROM batch_steps ORDER BY from_version",
    );
    assert_eq!(
        steps,
        [
            json!({"from_version": "1.0.0", "to_version": "1.2.0", "count": 48}),
            json!({"from_version": "1.1.0", "to_version": "1.2.0", "count": 6})
        ]
    );
    assert_rebuild_equals(b, &repo);
    repo.cli(["rollback"]).expect_code(0);
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!((&r["read"], &r["batches"]), (&json!(migrated), &json!(2)));
    assert_agrees_with_git(b, &repo);
    let batches = b.rows(&repo, "SELECT \"commit\", kind, rolled_back_by, rollback_of FROM migration_batches ORDER BY position");
    assert_eq!(
        batches,
        [
            json!({"commit": repo.head(), "kind": "rollback", "rolled_back_by": null, "rollback_of": batch}),
            json!({"commit": batch, "kind": "migration", "rolled_back_by": repo.head(), "rollback_of": null})
        ]
    );
    // The rolled-back manifests are back to no batch.
    assert_eq!(b.count(&repo, "run_index WHERE last_batch IS NOT NULL"), 0);
    assert_rebuild_equals(b, &repo);
    // A 3-manifest commit: 3 read, the rest untouched.
    for i in [1, 2, 3] {
        let p = format!("artifacts/job-{}/run-{i:04}/manifest.json", i % 4);
        let mut doc = repo.show_json("HEAD", &p);
        doc["status"] = json!("reviewed");
        repo.file(&p, doc);
    }
    repo.commit("review three runs");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!((&r["read"], &r["unchanged"]), (&json!(3), &json!(57)));
    assert_eq!(b.count(&repo, "run_index WHERE status = 'reviewed'"), 3);
    assert_agrees_with_git(b, &repo);
}

fn history_rewritten_under_the_index_is_followed(b: &Backend) {
    let repo = corpus(20);
    no_refresh(&repo);
    let base = repo.head();
    repo.cli(["apply"]).expect_code(0);
    b.cli(&repo, ["index"]).expect_code(0);
    // A reset under the index: the indexed commit still exists, the trees are compared.
    repo.git(["reset", "-q", "--hard", &base]);
    repo.git(["rm", "-q", "artifacts/job-1/run-0001/manifest.json"]);
    repo.commit("drop one run");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (&r["mode"], &r["removed"], &r["batches"]),
        (&json!("incremental"), &json!(1), &json!(0))
    );
    assert_agrees_with_git(b, &repo);
    assert_eq!(b.count(&repo, "run_index WHERE last_batch IS NOT NULL"), 0);
    assert_rebuild_equals(b, &repo);
    // Rewritten and collected: the indexed commit is gone; every path is compared by blob.
    let indexed = repo.head();
    repo.git(["reset", "-q", "--hard", &base]);
    repo.manifest(
        "job-0/run-new",
        json!({"run_id": "run-new", "job_id": "job-0"}),
    );
    repo.commit("another run");
    repo.git(["reflog", "expire", "--expire=now", "--all"]);
    repo.git(["gc", "-q", "--prune=now"]);
    assert!(!repo.has_rev(&indexed), "the indexed commit must be gone");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (&r["mode"], &r["read"], &r["removed"]),
        (&json!("rescan"), &json!(2), &json!(0))
    );
    assert_agrees_with_git(b, &repo);
    assert_rebuild_equals(b, &repo);
}

fn a_run_in_both_layouts_is_indexed_once_from_the_canonical_place(b: &Backend) {
    let repo = TestRepo::new();
    let m = |run: &str| json!({"job_id": "job-a", "run_id": run, "status": "succeeded"});
    repo.manifest("job-a/r1", m("r1"))
        .manifest("runs/r1", m("r1"))
        .manifest("job-a/r1-copy", m("r1"))
        .manifest(
            "runs/r2",
            json!({"run_id": "r2", "job_ref": "jobs/job-b/brief.yaml"}),
        )
        .commit("a run in both layouts, a copy, a legacy run");
    no_refresh(&repo);
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (&r["manifests"], &r["invalid"], &r["legacy_duplicates"]),
        (&json!(2), &json!(1), &json!(1))
    );
    let runs = b.rows(
        &repo,
        "SELECT job_id, run_id, path FROM run_index ORDER BY path",
    );
    assert_eq!(
        runs,
        [
            json!({"job_id": "job-a", "run_id": "r1", "path": "artifacts/job-a/r1/manifest.json"}),
            json!({"job_id": "job-b", "run_id": "r2", "path": "artifacts/runs/r2/manifest.json"})
        ]
    );
    assert_eq!(
        b.rows(
            &repo,
            "SELECT path, job_id, run_id, canonical_path FROM legacy_duplicates"
        ),
        [
            json!({"path": "artifacts/runs/r1/manifest.json", "job_id": "job-a", "run_id": "r1",
                "canonical_path": "artifacts/job-a/r1/manifest.json"})
        ]
    );
    let dup = b.rows(&repo, "SELECT path, kind, error FROM invalid_manifests");
    assert_eq!(dup[0]["path"], "artifacts/job-a/r1-copy/manifest.json");
    assert_eq!(dup[0]["kind"], "duplicate");
    assert!(
        dup[0]["error"]
            .as_str()
            .unwrap()
            .contains("indexed from artifacts/job-a/r1/manifest.json"),
        "{dup:?}"
    );
    // The canonical one goes: the legacy one holds the run now, and the copy names it.
    repo.git(["rm", "-q", "artifacts/job-a/r1/manifest.json"]);
    repo.commit("drop the canonical run");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (
            &r["manifests"],
            &r["invalid"],
            &r["legacy_duplicates"],
            &r["read"]
        ),
        (&json!(2), &json!(1), &json!(0), &json!(1))
    );
    let held = b.rows(&repo, "SELECT path FROM run_index WHERE run_id = 'r1'");
    assert_eq!(held, [json!({"path": "artifacts/runs/r1/manifest.json"})]);
    let dup = b.rows(&repo, "SELECT error FROM invalid_manifests");
    assert!(dup[0]["error"]
        .as_str()
        .unwrap()
        .contains("indexed from artifacts/runs/r1/manifest.json"));
    assert_rebuild_equals(b, &repo);
    // And back.
    repo.manifest("job-a/r1", m("r1"))
        .commit("the canonical run again");
    b.cli(&repo, ["index"]).expect_code(0);
    assert_eq!(
        b.rows(&repo, "SELECT path FROM run_index WHERE run_id = 'r1'"),
        [json!({"path": "artifacts/job-a/r1/manifest.json"})]
    );
    assert_eq!(b.count(&repo, "legacy_duplicates"), 1);
    assert_rebuild_equals(b, &repo);
}

fn commands_refresh_an_existing_index_and_never_fail_for_it(b: &Backend) {
    let repo = corpus(12);
    // No index: apply does not make one.
    repo.cli(["apply", "--", "artifacts/job-0"]).expect_code(0);
    let run = b.cli(&repo, ["rollback"]);
    run.expect_code(0);
    assert!(!b.exists(&repo), "a commit must not create an index");
    // An index: apply, rollback and repair each bring it to their commit.
    b.cli(&repo, ["index"]).expect_code(0);
    let run = b.cli(&repo, ["apply"]);
    run.expect_code(0);
    assert!(run.stderr.contains("brought to"), "{run}");
    assert!(run.stderr.contains("(read 11, removed 0)"), "{run}");
    assert_eq!(b.indexed_commit(&repo), repo.head());
    assert_agrees_with_git(b, &repo);
    b.cli(&repo, ["rollback"]).expect_code(0);
    assert_eq!(b.indexed_commit(&repo), repo.head());
    assert_agrees_with_git(b, &repo);
    // An index that follows another revision is left alone.
    let here = repo.head();
    b.cli(&repo, ["index", "--rev", "HEAD~1"]).expect_code(0);
    b.cli(&repo, ["apply"]).expect_code(0);
    assert_eq!(b.indexed_commit(&repo), repo.rev(&format!("{here}~1")));
    b.cli(&repo, ["rollback"]).expect_code(0);
    b.cli(&repo, ["index"]).expect_code(0);
    // Switched off in the config: not refreshed.
    no_refresh(&repo);
    b.cli(&repo, ["index"]).expect_code(0);
    let before = repo.head();
    b.cli(&repo, ["apply", "--json"]).expect_code(0);
    assert_eq!(b.indexed_commit(&repo), before);
    b.cli(&repo, ["rollback"]).expect_code(0);
    repo.git(["rm", "-q", "--cached", ".artifact-migrate.toml"]);
    std::fs::remove_file(repo.path().join(".artifact-migrate.toml")).unwrap();
    repo.commit("refresh again");
    b.cli(&repo, ["index"]).expect_code(0);
    // A broken index: the migration still lands (exit 0), with one warning naming the fix.
    b.exec(&repo, "DROP TABLE index_state");
    let run = b.cli(&repo, ["apply", "--json"]);
    run.expect_code(0);
    assert!(run.json()["commit"].is_string());
    let warning: Vec<&str> = run.stderr_lines();
    assert_eq!(warning.len(), 1, "{run}");
    assert!(
        warning[0]
            .starts_with("warning: the commit landed, but the index was not brought up to date: "),
        "{run}"
    );
    assert!(
        warning[0].ends_with("; run `artifact-migrate index`"),
        "{run}"
    );
}

fn two_updates_at_once_wait_for_each_other(b: &Backend) {
    let repo = corpus(30);
    let gate = repo.home().join("go");
    let pause = format!("index-locked:{}", gate.display());
    let mut first = b.spawn(
        &repo,
        &[("ARTIFACT_MIGRATE_PAUSE", &pause)],
        &["index", "--json"],
    );
    first.expect_line("paused: index-locked");
    let mut second = b.spawn(&repo, &[], &["index"]);
    assert!(
        second.wait_for_prefix("note: waiting for another update of "),
        "{:?}",
        second.seen
    );
    std::fs::write(&gate, "").unwrap();
    let one = first.finish();
    let two = second.finish();
    let one = one.expect_code(0).json();
    assert_eq!((&one["mode"], &one["read"]), (&json!("full"), &json!(30)));
    // The second waited for the first to commit, then found nothing to do.
    let two = two.expect_code(0);
    assert!(two.stdout.contains(": already at "), "{two}");
    assert!(
        two.stdout.contains("read 0, unchanged 30, removed 0"),
        "{two}"
    );
    assert_agrees_with_git(b, &repo);
}

fn a_kill_mid_update_leaves_the_previous_index(b: &Backend) {
    let repo = corpus(30);
    no_refresh(&repo);
    b.cli(&repo, ["index"]).expect_code(0);
    let before = b.snapshot(&repo);
    repo.cli(["apply"]).expect_code(0);
    let mut victim = b.spawn(
        &repo,
        &[("ARTIFACT_MIGRATE_FAULT", "index-before-commit")],
        &["index"],
    );
    victim.expect_line("fault-point: index-before-commit");
    victim.kill();
    assert_eq!(
        b.snapshot(&repo),
        before,
        "a killed update must leave the previous index"
    );
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        (&r["mode"], &r["read"]),
        (&json!("incremental"), &json!(27))
    );
    assert_agrees_with_git(b, &repo);
}

fn schema_versions_are_upgraded_or_rebuilt_never_misread(b: &Backend) {
    let repo = corpus(8);
    b.cli(&repo, ["index"]).expect_code(0);
    let fresh = b.snapshot(&repo);
    // Older: rebuilt (there is no upgrade step from version 0).
    b.exec(&repo, "UPDATE index_schema SET version = 0");
    let r = b.cli(&repo, ["index", "--json"]).expect_code(0).json();
    assert_eq!(
        r["rebuilt"],
        "the index had schema 0, this artifact-migrate writes 1"
    );
    assert_eq!(b.snapshot(&repo), fresh);
    // Newer: refused, by every command that reads it.
    b.exec(&repo, "UPDATE index_schema SET version = 99");
    for args in [["index", "--json"], ["runs", "--json"]] {
        let run = b.cli(&repo, args);
        run.expect_code(3);
        let msg = run.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            msg.contains("made by a newer artifact-migrate (index schema 99"),
            "{msg}"
        );
        assert!(msg.contains("index --rebuild"), "{msg}");
    }
    b.cli(&repo, ["index", "--rebuild"]).expect_code(0);
    assert_eq!(b.snapshot(&repo), fresh);
    // A table of the same name that is not ours is never taken over silently.
    for t in artifact_migrate::index::schema::TABLES {
        b.exec(&repo, &format!("DROP TABLE {t}"));
    }
    b.exec(&repo, "CREATE TABLE run_index (job_id TEXT, run_id TEXT)");
    let run = b.cli(&repo, ["index"]);
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("holds a table run_index that artifact-migrate did not create"),
        "{run}"
    );
    b.cli(&repo, ["index", "--rebuild"]).expect_code(0);
    assert_eq!(b.snapshot(&repo), fresh);
}

/// The secondary indexes of `run_index`, as the database lists them.
/// The names of every secondary index of `run_index`, sorted as [`run_indexes`] lists them.
fn all_run_indexes() -> Vec<String> {
    let mut names: Vec<String> = artifact_migrate::index::schema::RUN_INDEXES
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    names.sort();
    names
}

fn run_indexes(b: &Backend, repo: &TestRepo) -> Vec<String> {
    let sql = match b.db {
        Db::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run_index' AND name LIKE 'run_index_by%' ORDER BY name",
        Db::Postgres(_) => "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'run_index' AND indexname LIKE 'run_index_by%' ORDER BY indexname",
    };
    b.rows(repo, sql)
        .iter()
        .map(|r| r["name"].as_str().expect("a name").to_string())
        .collect()
}

/// A full build makes the secondary indexes after its rows and reads the blobs on a thread
/// of its own, in pack order: whichever way the index is built (new, `--rebuild`,
/// incrementally), the indexes are there and the rows are git's. A blob that cannot be read
/// stops the build with its path, and the index stays as it was.
fn a_full_build_reads_in_pack_order_and_keeps_its_indexes(b: &Backend) {
    let repo = corpus(12);
    no_refresh(&repo);
    // Packed, so the reads are reordered (a loose object has no place in a pack).
    repo.git(["gc", "-q"]);
    let want = all_run_indexes();
    b.cli(&repo, ["index"]).expect_code(0);
    assert_agrees_with_git(b, &repo);
    assert_eq!(run_indexes(b, &repo), want);
    if let Db::Sqlite = b.db {
        assert_eq!(b.rows(&repo, "PRAGMA page_size")[0]["page_size"], 16384);
    }
    assert_rebuild_equals(b, &repo);
    assert_eq!(run_indexes(b, &repo), want);
    repo.cli(["apply", "-q"]).expect_code(0);
    b.cli(&repo, ["index"]).expect_code(0);
    assert_agrees_with_git(b, &repo);
    assert_eq!(run_indexes(b, &repo), want);

    let before = b.snapshot(&repo);
    let path = "artifacts/job-9/run-late/manifest.json";
    repo.manifest(
        "job-9/run-late",
        json!({"schema_version": "1.0.0", "run_id": "run-late", "job_id": "job-9", "status": "succeeded"}),
    )
    .commit("one more run");
    let blob = repo.git(["rev-parse", &format!("HEAD:{path}")]);
    let blob = blob.trim();
    let loose = repo
        .git_dir()
        .join("objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    std::fs::remove_file(&loose).expect("the new blob is a loose object");
    let run = b.cli(&repo, ["index", "--rebuild"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains(path), "{run}");
    assert_eq!(
        b.snapshot(&repo),
        before,
        "a failed build changed the index"
    );
    assert_eq!(run_indexes(b, &repo), want);
}

fn runs_answers_from_the_index(b: &Backend) {
    let repo = corpus(16);
    // runs brings the index up to date first (here: creates it).
    let all = b.cli(&repo, ["runs", "--json"]).expect_code(0).json();
    assert_eq!(all.as_array().unwrap().len(), 16);
    assert_eq!(
        all[0],
        json!({"job_id": "job-0", "run_id": "run-0000", "job_ref": "jobs/job-0/brief.yaml",
               "job_type": "instagram_copy", "status": "failed", "inputs_hash": null,
               "artifact_dir": "artifacts/job-0/run-0000", "schema_version": "1.0.0",
               "path": "artifacts/job-0/run-0000/manifest.json",
               "blob_id": repo.git(["rev-parse", "HEAD:artifacts/job-0/run-0000/manifest.json"]).trim(),
               "last_batch": null, "indexed_at": all[0]["indexed_at"]})
    );
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    let job1 = b
        .cli(&repo, ["runs", "--job", "job-1", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(ids(&job1), ["run-0001", "run-0005", "run-0009", "run-0013"]);
    let v110 = b
        .cli(&repo, ["runs", "--version", "1.1.0", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(ids(&v110), ["run-0008"]);
    let failed = b
        .cli(
            &repo,
            ["runs", "--status", "failed", "--job", "job-3", "--json"],
        )
        .expect_code(0)
        .json();
    assert_eq!(ids(&failed), ["run-0007"]);
    // After apply (the refresh keeps the index current), by batch.
    repo.cli(["apply", "--", "artifacts/job-2"]).expect_code(0);
    let batch = b
        .cli(&repo, ["runs", "--batch", "HEAD", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        ids(&batch),
        ["run-0002", "run-0006", "run-0010", "run-0014"]
    );
    let text = b
        .cli(&repo, ["runs", "--batch", "HEAD"])
        .expect_code(0)
        .stdout
        .clone();
    let short = &repo.head()[..12];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["JOB", "RUN", "VERSION", "STATUS", "LAST", "BATCH", "PATH"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "job-2",
            "run-0002",
            "1.2.0",
            "succeeded",
            short,
            "artifacts/job-2/run-0002/manifest.json"
        ]
    );
    assert_eq!(lines.last().unwrap(), &format!("4 run(s) at {short}"));
    let run = b.cli(&repo, ["runs", "--batch", "nope"]);
    run.expect_code(2);
}

fn the_library_answers_as_of_one_commit(b: &Backend) {
    use artifact_migrate::index::{Cursor, DbLocation, Index, RunFilter};
    let repo = corpus(25);
    repo.cli(["apply", "--", "artifacts/job-0"]).expect_code(0);
    b.cli(&repo, ["index"]).expect_code(0);
    let loc = match &b.db {
        Db::Sqlite => DbLocation::Sqlite(Backend::sqlite_file(&repo)),
        Db::Postgres(url) => DbLocation::Postgres(url.clone()),
    };
    let mut index = Index::open(&loc).unwrap();
    let latest = "1.2.0".parse().unwrap();
    let status = repo.cli(["status", "--json"]).json();
    let log = repo.cli(["log", "--json"]).json();
    index
        .read(|r| {
            assert_eq!(r.state().commit, repo.head());
            let v = r.versions(latest)?;
            assert_eq!(v.commit, repo.head());
            assert_eq!(v.total, 25);
            assert_eq!(json!(v.pending), status["pending"]);
            assert_eq!(json!(v.versions), status["versions"]);
            // Pages of 7 cover every run once, in key order.
            let mut seen = Vec::new();
            let mut after: Option<Cursor> = None;
            loop {
                let page = r.runs(&RunFilter::default(), after.as_ref(), 7)?;
                assert!(page.runs.len() <= 7);
                seen.extend(
                    page.runs
                        .iter()
                        .map(|x| (x.job_id.clone(), x.run_id.clone())),
                );
                match page.next {
                    Some(c) => after = Cursor::decode(&c.encode()),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!((seen.len(), &seen), (25, &sorted));
            let job0 = r.runs(
                &RunFilter {
                    job_id: Some("job-0".into()),
                    ..Default::default()
                },
                None,
                100,
            )?;
            assert_eq!(job0.runs.len(), 7);
            assert!(job0
                .runs
                .iter()
                .all(|x| x.last_batch.as_deref() == Some(log[0]["commit"].as_str().unwrap())));
            let one = r.run("job-1", "run-0005")?.expect("run-0005");
            let path = "artifacts/job-1/run-0005/manifest.json";
            assert_eq!(one.path, path);
            assert_eq!(
                one.manifest_json.as_deref().map(str::as_bytes),
                Some(&repo.show("HEAD", path)[..])
            );
            assert_eq!(r.run("job-0", "run-0005")?, None);
            let by_id = r.runs_by_id("run-0005")?;
            assert_eq!((by_id.len(), by_id[0].job_id.as_str()), (1, "job-1"));
            // Batches in the `log --json` shape.
            let batches = serde_json::to_value(r.batches()?).unwrap();
            for (got, want) in batches
                .as_array()
                .unwrap()
                .iter()
                .zip(log.as_array().unwrap())
            {
                for k in [
                    "commit",
                    "kind",
                    "date",
                    "author",
                    "subject",
                    "target",
                    "manifests",
                    "steps",
                    "rolled_back_by",
                    "rollback_of",
                ] {
                    assert_eq!(got[k], want[k], "{k}");
                }
            }
            let commit = log[0]["commit"].as_str().unwrap();
            assert_eq!(json!(r.steps(commit)?), log[0]["steps"]);
            assert_eq!(r.batch(commit)?.map(|x| x.commit), Some(commit.to_string()));
            assert!(r.invalid()?.is_empty());
            Ok(())
        })
        .unwrap();
}

/// The same history indexed into SQLite and into PostgreSQL gives the same rows.
#[test]
fn both_backends_make_the_same_rows() {
    let Some(pg) = Backend::postgres("both_backends_make_the_same_rows") else {
        return;
    };
    let Some(lite) = Backend::sqlite("both_backends_make_the_same_rows") else {
        return;
    };
    let repo = corpus(40);
    repo.manifest(
        "runs/run-0001",
        repo.show_json("HEAD", "artifacts/job-1/run-0001/manifest.json"),
    )
    .manifest("job-z/broken", "{")
    .commit("a legacy copy and a broken one");
    let strip = |mut s: BTreeMap<&'static str, Vec<Value>>| {
        // The databases are different places: the state's settings are equal, its commit too.
        s.remove("index_schema");
        s
    };
    for step in ["index", "apply", "index", "rollback", "index"] {
        match step {
            "index" => {
                lite.cli(&repo, ["index"]).expect_code(0);
                pg.cli(&repo, ["index"]).expect_code(0);
            }
            "apply" => {
                repo.cli(["apply", "--", "artifacts/job-1", "artifacts/runs"])
                    .expect_code(0);
            }
            other => {
                repo.cli([other]).expect_code(0);
            }
        }
        if step == "index" {
            let (a, b) = (strip(lite.snapshot(&repo)), strip(pg.snapshot(&repo)));
            for (table, rows) in &a {
                assert!(rows == &b[table], "{table} differs between the backends");
            }
        }
    }
    let status = repo.cli(["status", "--json"]).json();
    let count = |t: &str| pg.count(&repo, t);
    assert_eq!(
        count("run_index") + count("invalid_manifests") + count("legacy_duplicates"),
        status["total"].as_u64().unwrap()
    );
}

/// The check script of docs/index.md, run as the page runs it, passes on a real index.
#[test]
fn the_walkthrough_check_script_passes() {
    if Backend::sqlite("the_walkthrough_check_script_passes").is_none() {
        return;
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/index.md"))
        .expect("read docs/index.md");
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let repo = corpus(30);
    let script = repo.home().join("check_index.py");
    std::fs::write(&script, &doc[start..end]).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_artifact-migrate"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    repo.cli(["index"]).expect_code(0);
    repo.cli(["apply"]).expect_code(0);
    let out = Command::new("python3")
        .arg(&script)
        .arg(repo.path())
        .env("PATH", path)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run python3");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!(
            "sqlite: 30 runs at {}, versions {{'1.2.0': 30}}",
            &repo.head()[..12]
        )),
        "{text}"
    );
}

/// A reader's open transaction on `run_index`, as the server holds one per request: begun,
/// one query answered, held until dropped.
enum Reader {
    Sqlite(rusqlite::Connection),
    Postgres(::postgres::Client),
}

impl Reader {
    fn open(b: &Backend, repo: &TestRepo) -> (Reader, i64) {
        let mut reader = match &b.db {
            Db::Sqlite => {
                let c = rusqlite::Connection::open(Backend::sqlite_file(repo)).unwrap();
                c.execute_batch("BEGIN").unwrap();
                Reader::Sqlite(c)
            }
            Db::Postgres(url) => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                    .unwrap();
                Reader::Postgres(c)
            }
        };
        // The first query takes the snapshot the transaction keeps.
        let n = reader.count();
        (reader, n)
    }

    /// What the reader's snapshot still holds.
    fn count(&mut self) -> i64 {
        let sql = "SELECT count(*) FROM run_index";
        match self {
            Reader::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Reader::Postgres(c) => c.query_one(sql, &[]).unwrap().get(0),
        }
    }
}

/// An update that rewrites most rows drops and remakes `run_index`'s secondary indexes
/// (the phase `create indexes`) only where readers do not wait for that: SQLite, whose
/// readers keep their snapshot; not PostgreSQL, where `DROP INDEX` locks every reader out
/// until the commit. Either way a reader with an open transaction (the server's, during
/// the refresh after a batch) does not hold the update up and keeps its snapshot.
fn a_reader_in_a_transaction_does_not_hold_up_a_build(b: &Backend) {
    let repo = corpus(20);
    no_refresh(&repo);
    b.cli(&repo, ["index"]).expect_code(0);
    repo.manifest(
        "job-9/run-late",
        json!({"schema_version": "1.0.0", "run_id": "run-late", "job_id": "job-9", "status": "succeeded"}),
    )
    .commit("one more run");
    repo.cli(["apply", "-q"]).expect_code(0);
    let (mut reader, before) = Reader::open(b, &repo);
    let update = b.spawn(
        &repo,
        &[("ARTIFACT_MIGRATE_TIMINGS", "1")],
        &["index", "--json"],
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(update.finish());
    });
    let done = rx.recv_timeout(std::time::Duration::from_secs(60));
    // What the reader saw before the update committed; then its transaction ends, which
    // also frees an update that waited for it, so a failure reports instead of hanging.
    let during = reader.count();
    drop(reader);
    let run = done.unwrap_or_else(|_| panic!("the update waited for a reader's open transaction"));
    let report = run.expect_code(0).json();
    assert_eq!(report["mode"], "incremental", "{run}");
    // Every manifest but the two already at the latest version: most of the rows.
    assert_eq!(
        (&report["read"], &report["manifests"]),
        (&json!(19), &json!(21)),
        "{run}"
    );
    assert_eq!(during, before, "the reader's snapshot changed under it");
    let remade = run
        .stderr
        .lines()
        .any(|l| l.starts_with("timing: create indexes: "));
    assert_eq!(remade, matches!(b.db, Db::Sqlite), "{run}");
    assert_agrees_with_git(b, &repo);
    let want = all_run_indexes();
    assert_eq!(run_indexes(b, &repo), want);
}
