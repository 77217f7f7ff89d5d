//! Both layouts (SPEC §2) in every command that reads paths, and `relocate`: a repository
//! laid out like the seed's history (fixtures/seed-history: seven 1.0.0 runs under
//! `artifacts/runs/<uuid>/` without `job_id`, a 1.1.0 run there with real input snapshots)
//! migrates completely in one `apply`; `relocate` moves every run to
//! `artifacts/<job_id>/<run_id>/` leaving the alias symlink; plain git is the referee
//! (`git show -M` sees only renames and new links, `git fsck`, tree equality after rollback).

mod common;
mod common_audit;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;
use common_audit::*;
use serde_json::{json, Value};

/// The fixture's runs: (run id, job).
const SEED_RUNS: [(&str, &str); 8] = [
    ("0b7c4f2e-5a61-4d3b-8e9f-1c2a3b4d5e6f", "ig-test-001"),
    ("1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", "ig-test-001"),
    ("2a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d", "ig-test-001"),
    ("5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90", "spring-launch-01"),
    ("7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7", "spring-launch-01"),
    ("9e8d7c6b-5a49-4382-8716-05f4e3d2c1b0", "brand-voice-02"),
    ("c4d3e2f1-a0b9-4c8d-97e6-f5a4b3c2d1e0", "brand-voice-02"),
    ("e99e867f0a3a1b77e9a3b895e33ff22d", "ig-test-001"),
];
/// The 1.1.0 run, with input snapshots.
const RUN_SNAP: &str = "e99e867f0a3a1b77e9a3b895e33ff22d";

fn legacy(run: &str) -> String {
    format!("artifacts/runs/{run}")
}

fn canonical(job: &str, run: &str) -> String {
    format!("artifacts/{job}/{run}")
}

/// A repository holding fixtures/seed-history, committed.
fn seed_history() -> TestRepo {
    let repo = TestRepo::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed-history/artifacts");
    copy_dir(&src, &repo.path().join("artifacts"));
    repo.file("README.md", "the seed's history\n")
        .commit("the seed's runs, as its pipeline wrote them");
    repo
}

/// `path -> (mode, id)` below `dir` at `rev`, relative to `dir`.
fn entries_below(repo: &TestRepo, rev: &str, dir: &str) -> BTreeMap<String, String> {
    repo.ls_tree(rev)
        .into_iter()
        .filter_map(|(p, meta)| {
            p.strip_prefix(&format!("{dir}/"))
                .map(|rest| (rest.to_string(), meta))
        })
        .collect()
}

/// Every byte of `.git` and of the working tree.
struct Snapshot {
    git: BTreeMap<String, Vec<u8>>,
    files: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    fn of(repo: &TestRepo) -> Snapshot {
        Snapshot {
            git: repo.git_dir_snapshot(),
            files: repo.worktree_snapshot(),
        }
    }

    #[track_caller]
    fn assert_unchanged(&self, repo: &TestRepo, what: &str) {
        assert!(repo.git_dir_snapshot() == self.git, "{what}: .git changed");
        assert!(
            repo.worktree_snapshot() == self.files,
            "{what}: files changed"
        );
    }
}

fn json_run(repo: &TestRepo, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let run = repo.cli(&all);
    run.expect_code(code);
    run.json()
}

#[test]
fn the_seed_fixture_holds_real_snapshots_and_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed-history/artifacts/runs");
    let mut versions = BTreeMap::new();
    for (run, job) in SEED_RUNS {
        let dir = root.join(run);
        let m: Value =
            serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let v = m["schema_version"].as_str().unwrap_or("1.0.0").to_string();
        *versions.entry(v.clone()).or_insert(0) += 1;
        assert_eq!(m["run_id"], run);
        assert_eq!(m["job_ref"], format!("jobs/{job}/brief.yaml"));
        if v == "1.0.0" {
            assert!(
                m.get("job_id").is_none(),
                "{run}: a 1.0.0 run has no job_id"
            );
        }
        for (rel, a) in m["artifacts"].as_object().unwrap() {
            let bytes = fs::read(dir.join(rel)).unwrap();
            assert_eq!(a["sha256"], sha256_hex(&bytes), "{run}/{rel}");
            assert_eq!(a["bytes"], bytes.len(), "{run}/{rel}");
        }
    }
    assert_eq!(
        versions,
        BTreeMap::from([("1.0.0".into(), 7), ("1.1.0".into(), 1)])
    );
    // The snapshot run: its identity re-derives from its inputs as the pipeline does it.
    let dir = root.join(RUN_SNAP);
    let m: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut names = BTreeMap::new();
    for (name, s) in m["input_snapshots"].as_object().unwrap() {
        let bytes = fs::read(dir.join(s["path"].as_str().unwrap())).unwrap();
        assert_eq!(s["sha256"], sha256_hex(&bytes), "{name}");
        assert_eq!(s["bytes"], bytes.len(), "{name}");
        names.insert(name.clone(), s["sha256"].as_str().unwrap().to_string());
    }
    let inputs_hash = sha256_hex(serde_json::to_string(&names).unwrap().as_bytes());
    assert_eq!(m["inputs_hash"], inputs_hash);
    assert_eq!(RUN_SNAP, &inputs_hash["sha256:".len()..][..32]);
}

#[test]
fn status_counts_the_layouts_and_show_reads_a_legacy_run() {
    let repo = seed_history();
    let s = json_run(&repo, &["status"], 0);
    assert_eq!(s["total"], 8);
    assert_eq!(s["versions"], json!({"1.0.0": 7, "1.1.0": 1}));
    assert_eq!(s["pending"], 8);
    assert_eq!(
        s["layouts"],
        json!({"{job_id}/{run_id}": 0, "runs/{run_id}": 8})
    );
    assert_eq!(s["unplaced"], 0);
    assert_eq!(s["pairs"], json!([]));
    let text = repo.cli(["status"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("layouts: 0 in {job_id}/{run_id}, 8 in runs/{run_id}; `artifact-migrate relocate` moves runs to {job_id}/{run_id}\n"),
        "{text}"
    );
    // A canonical-only repository prints no layout line at all.
    let plain = TestRepo::with_samples();
    let t = plain.cli(["status"]);
    assert!(!t.stdout.contains("layouts:"), "{t}");

    let (run, job) = SEED_RUNS[0];
    let shown = json_run(
        &repo,
        &["show", &format!("{}/manifest.json", legacy(run))],
        0,
    );
    assert_eq!(shown["from"], "1.0.0");
    let doc: Value = serde_json::from_str(shown["content"].as_str().unwrap()).unwrap();
    assert_eq!(doc["job_id"], job);
    assert!(
        strings(&shown["changes"]).contains(&format!("Add job_id \"{job}\" (from job_ref)")),
        "{shown:#}"
    );
}

#[test]
fn the_seed_history_migrates_completely_in_one_apply_and_verifies_clean() {
    let repo = seed_history();
    let p = json_run(&repo, &["plan"], 0);
    assert_eq!(p["migrate"].as_array().unwrap().len(), 8, "{p:#}");
    assert_eq!(p["failed"], json!([]));
    let a = json_run(&repo, &["apply"], 0);
    assert_eq!(a["migrated"], 8);
    assert_eq!(a["failed"], json!([]));
    for (run, job) in SEED_RUNS {
        let m = repo.show_json("HEAD", &format!("{}/manifest.json", legacy(run)));
        assert_eq!(m["schema_version"], "1.2.0");
        assert_eq!(m["job_id"], job, "{run}");
        if run != RUN_SNAP {
            assert!(
                strings(&last_history(&m)["changes"])
                    .contains(&format!("Add job_id \"{job}\" (from job_ref)")),
                "{m:#}"
            );
        }
    }
    // Only manifests changed: every input snapshot and output is as it was.
    for p in repo.changed_paths("HEAD~1", "HEAD") {
        assert!(p.ends_with("/manifest.json"), "{p}");
    }
    let v = json_run(&repo, &["verify"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["manifests"], 8);
    assert_eq!(repo.porcelain(), "");
}

/// The seed history migrated, then relocated; returns (repo, batch, relocation).
fn relocated() -> (TestRepo, String, String) {
    let repo = seed_history();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let r = json_run(&repo, &["relocate"], 0);
    let relocation = repo.head();
    assert_ne!(relocation, batch);
    assert_eq!(r["commit"], relocation);
    assert_eq!(r["relocated"], 8);
    (repo, batch, relocation)
}

#[test]
fn relocate_moves_every_run_byte_for_byte_and_git_sees_only_renames_and_links() {
    let (repo, batch, relocation) = relocated();
    // Every run directory is under its job, identical entry for entry; its old place is the
    // pipeline's relative alias symlink.
    for (run, job) in SEED_RUNS {
        let before = entries_below(&repo, &batch, &legacy(run));
        assert!(!before.is_empty());
        assert_eq!(
            entries_below(&repo, &relocation, &canonical(job, run)),
            before,
            "{run}"
        );
        let tree = repo.ls_tree(&relocation);
        assert!(tree[&legacy(run)].starts_with("120000 blob "), "{run}");
        assert_eq!(
            String::from_utf8(repo.show(&relocation, &legacy(run))).unwrap(),
            format!("../{job}/{run}")
        );
        let on_disk = fs::read_link(repo.path().join(legacy(run))).unwrap();
        assert_eq!(on_disk, Path::new(&format!("../{job}/{run}")));
        // Through the link the run reads as before.
        assert_eq!(
            fs::read(repo.path().join(legacy(run)).join("manifest.json")).unwrap(),
            repo.show(&batch, &format!("{}/manifest.json", legacy(run)))
        );
    }
    // Plain git: only 100% renames and the new links.
    let status = repo.git(["show", "-M", "--name-status", "--format=", &relocation]);
    let mut renames = 0;
    let mut links = Vec::new();
    for line in status.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols[0] {
            "R100" => {
                assert!(cols[1].starts_with("artifacts/runs/"), "{line}");
                renames += 1;
            }
            "A" => links.push(cols[1].to_string()),
            other => panic!("git show lists {other}: {line}\n{status}"),
        }
    }
    let files: usize = SEED_RUNS
        .iter()
        .map(|(r, _)| entries_below(&repo, &batch, &legacy(r)).len())
        .sum();
    assert_eq!(renames, files);
    let mut want: Vec<String> = SEED_RUNS.iter().map(|(r, _)| legacy(r)).collect();
    want.sort();
    assert_eq!(links, want);
    let summary = repo.git(["show", "-M", "--summary", "--format=", &relocation]);
    assert_eq!(
        summary.matches("create mode 120000").count(),
        8,
        "{summary}"
    );
    assert!(!summary.contains("delete mode"), "{summary}");
    let stat = repo.git(["show", "--stat", "-M", "--format=", &relocation]);
    assert!(
        stat.contains(&format!("{} files changed, 8 insertions(+)", files + 8)),
        "{stat}"
    );
    assert_fsck_clean(&repo);
    assert_eq!(repo.porcelain(), "");
    // The message and trailers, as plain git reads them.
    let trailers = repo.trailers(&relocation);
    assert_eq!(
        trailers,
        vec![
            ("Migration-Relocate".to_string(), "8".to_string()),
            (
                "Migration-Layout".to_string(),
                "{job_id}/{run_id}".to_string()
            ),
            ("Migration-Tool".to_string(), TOOL.to_string()),
        ]
    );
    let msg = repo.message(&relocation);
    assert!(
        msg.starts_with("relocate: 8 runs to the canonical layout {job_id}/{run_id}\n\n"),
        "{msg}"
    );
    for (run, job) in SEED_RUNS {
        assert!(
            msg.contains(&format!("\n{} -> {}\n", legacy(run), canonical(job, run))),
            "{msg}"
        );
    }
    // verify: the relocation only renamed, and the history entries written under the old
    // names still belong to their batch.
    let v = json_run(&repo, &["verify"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["relocations"], 1);
    assert_eq!(v["manifests"], 8);
    // status: every run in the canonical layout, nothing pending.
    let s = json_run(&repo, &["status", "--check"], 0);
    assert_eq!(
        s["layouts"],
        json!({"{job_id}/{run_id}": 8, "runs/{run_id}": 0})
    );
    // log lists it.
    let log = json_run(&repo, &["log"], 0);
    assert_eq!(log[0]["kind"], "relocation");
    assert_eq!(log[0]["commit"], relocation);
    assert_eq!(log[0]["relocated"], 8);
    assert_eq!(log[1]["kind"], "migration");
    let text = repo.cli(["log"]);
    assert!(
        text.stdout
            .contains("    relocation: 8 run(s) moved into the canonical layout\n"),
        "{text}"
    );
    // Nothing left to move.
    let again = repo.cli(["relocate"]);
    again.expect_code(0);
    assert_eq!(
        again.stdout,
        "nothing to relocate: every run is in the canonical layout {job_id}/{run_id}\n"
    );
    assert_eq!(repo.head(), relocation);
}

#[test]
fn rollback_of_a_relocation_restores_the_tree_and_the_working_tree_exactly() {
    let repo = seed_history();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let files = repo.worktree_snapshot();
    let index = index_entries(&repo);
    repo.cli(["relocate"]).expect_code(0);
    let relocation = repo.head();
    let r = json_run(&repo, &["rollback"], 0);
    assert_eq!(r["reverted"], relocation);
    assert_eq!(r["relocated"], 8);
    let rb = repo.head();
    assert_eq!(tree(&repo, &rb), tree(&repo, &batch));
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(index_entries(&repo), index);
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
    assert_eq!(repo.message(&rb), format!(
        "Revert \"relocate: 8 runs to the canonical layout {{job_id}}/{{run_id}}\"\n\nThis reverts commit {relocation}.\n\nMigration-Rollback-Of: {relocation}\nMigration-Relocate: 8\nMigration-Tool: {TOOL}\n\n"
    ));
    let v = json_run(&repo, &["verify"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(
        (v["relocations"].clone(), v["rollbacks"].clone()),
        (json!(1), json!(1))
    );
    let log = json_run(&repo, &["log"], 0);
    assert_eq!(log[0]["kind"], "rollback");
    assert_eq!(log[0]["rollback_of"], relocation);
    assert_eq!(log[1]["rolled_back_by"], rb);
    // Rolled back once, not twice; the batch below is next.
    let next = json_run(&repo, &["rollback"], 0);
    assert_eq!(next["reverted"], batch);
}

#[test]
fn relocate_then_apply_in_the_runbooks_order() {
    let repo = seed_history();
    let dry = json_run(&repo, &["relocate", "--dry-run"], 0);
    assert_eq!(dry["commit"], Value::Null);
    assert_eq!(dry["moves"].as_array().unwrap().len(), 8);
    let (run, job) = SEED_RUNS[0];
    let first = &dry["moves"][0];
    assert_eq!(first["from"], legacy(run));
    assert_eq!(first["to"], canonical(job, run));
    assert_eq!(first["job_from"], "job_ref");
    assert_eq!(first["link"], format!("../{job}/{run}"));
    json_run(&repo, &["relocate"], 0);
    let a = json_run(&repo, &["apply"], 0);
    assert_eq!(a["migrated"], 8);
    // Now the path names the job: the derivation says so.
    let m = repo.show_json("HEAD", &format!("{}/manifest.json", canonical(job, run)));
    assert!(
        strings(&last_history(&m)["changes"])
            .contains(&format!("Add job_id \"{job}\" (from the path)")),
        "{m:#}"
    );
    assert_eq!(json_run(&repo, &["verify"], 0)["ok"], true);
    // Rolling back the relocation now would lose the batch: refused, naming it.
    let refused = repo.cli(["rollback", "HEAD~1", "--json"]);
    refused.expect_code(3);
    assert!(
        error_message(&refused).contains(&format!(
            "roll back these batches first, newest first: {}",
            short(&repo.head())
        )),
        "{refused}"
    );
}

#[test]
fn a_run_in_both_layouts_is_reported_and_both_copies_are_migrated() {
    let repo = TestRepo::new();
    let run = RUN_100;
    let legacy_path = format!("artifacts/runs/{run}/manifest.json");
    let canonical_path = manifest_path(&format!("{JOB}/{run}"));
    let newer = String::from_utf8(SAMPLE_V100.to_vec())
        .unwrap()
        .replace("\"status\": \"succeeded\"", "\"status\": \"failed\"");
    repo.file(&legacy_path, SAMPLE_V100)
        .file(&canonical_path, newer)
        .commit("a run copied, not moved");
    let pair = json!([{
        "run_id": run,
        "canonical": canonical_path,
        "other": legacy_path,
        "other_layout": "runs/{run_id}",
        "same_content": false,
    }]);
    let s = json_run(&repo, &["status"], 0);
    assert_eq!(s["pairs"], pair);
    let text = repo.cli(["status"]);
    assert!(text.stdout.contains(&format!("in both layouts: run {run}: {canonical_path} (canonical) and {legacy_path} (runs/{{run_id}}, different content)\n")), "{text}");
    let p = json_run(&repo, &["plan"], 0);
    assert_eq!(p["pairs"], pair);
    assert_eq!(
        paths_of(&p["migrate"]),
        vec![legacy_path.clone(), canonical_path.clone()]
    );
    let plan_text = repo.cli(["plan"]);
    assert!(
        plan_text.stdout.starts_with("in both layouts: run "),
        "{plan_text}"
    );
    assert_eq!(json_run(&repo, &["apply"], 0)["migrated"], 2);
    let v = json_run(&repo, &["verify"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["pairs"], pair);
    let vt = repo.cli(["verify"]);
    assert!(vt.stdout.contains(&format!("in two layouts: run {run}: {canonical_path} is the canonical copy, {legacy_path} the runs/{{run_id}} one (different content)\n")), "{vt}");
    // relocate refuses: the canonical place holds different content; both are named.
    let before = repo.git_dir_snapshot();
    let r = repo.cli(["relocate", "--json"]);
    r.expect_code(3);
    assert_eq!(r.json()["error"]["kind"], "refused");
    let msg = error_message(&r);
    assert!(
        msg.contains(&format!(
            "artifacts/runs/{run} -> artifacts/{JOB}/{run} (taken)"
        )),
        "{msg}"
    );
    assert!(
        repo.git_dir_snapshot() == before,
        "a refused relocate changed .git"
    );
}

#[test]
fn a_legacy_copy_identical_to_its_canonical_run_is_replaced_by_the_alias() {
    let repo = TestRepo::new();
    for dir in [
        format!("artifacts/runs/{RUN_110}"),
        format!("artifacts/{JOB}/{RUN_110}"),
    ] {
        repo.file(&format!("{dir}/manifest.json"), SAMPLE_V110)
            .file(&format!("{dir}/inputs/brief.resolved.json"), "{}\n");
    }
    repo.commit("a run in both layouts, identical");
    assert_eq!(
        json_run(&repo, &["status"], 0)["pairs"][0]["same_content"],
        true
    );
    let r = json_run(&repo, &["relocate"], 0);
    assert_eq!(r["moves"][0]["already_there"], true);
    let status = repo.git(["show", "--name-status", "--format=", "HEAD"]);
    assert_eq!(
        status,
        format!("A\tartifacts/runs/{RUN_110}\nD\tartifacts/runs/{RUN_110}/inputs/brief.resolved.json\nD\tartifacts/runs/{RUN_110}/manifest.json\n")
    );
    assert_eq!(json_run(&repo, &["verify"], 0)["ok"], true);
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
}

#[test]
fn relocate_refuses_runs_that_are_not_as_committed() {
    let repo = seed_history();
    let (run, job) = SEED_RUNS[0];
    let out = format!("{}/outputs/instagram_captions.md", legacy(run));
    /// What a case does to the working tree, and how it is undone.
    type Step<'a> = Box<dyn Fn(&TestRepo) + 'a>;
    let cases: Vec<(&str, Step, Step, String)> = vec![
        (
            "a modified output",
            Box::new(|r: &TestRepo| {
                r.file(&out, "edited\n");
            }),
            Box::new(|r: &TestRepo| {
                r.git(["checkout", "--", &out]);
            }),
            out.clone(),
        ),
        (
            "an untracked file in the run",
            Box::new(|r: &TestRepo| {
                r.file(&format!("{}/notes.txt", legacy(run)), "x\n");
            }),
            Box::new(|r: &TestRepo| {
                fs::remove_file(r.path().join(format!("{}/notes.txt", legacy(run)))).unwrap()
            }),
            format!("{}/notes.txt", legacy(run)),
        ),
        (
            "a staged new file in the run",
            Box::new(|r: &TestRepo| {
                r.file(&format!("{}/extra.json", legacy(run)), "{}\n");
                r.git(["add", &format!("{}/extra.json", legacy(run))]);
            }),
            Box::new(|r: &TestRepo| {
                r.git([
                    "rm",
                    "-q",
                    "--cached",
                    &format!("{}/extra.json", legacy(run)),
                ]);
                fs::remove_file(r.path().join(format!("{}/extra.json", legacy(run)))).unwrap();
            }),
            format!("{}/extra.json", legacy(run)),
        ),
        (
            "something at the canonical place",
            Box::new(|r: &TestRepo| {
                r.file(&format!("{}/manifest.json", canonical(job, run)), "{}\n");
            }),
            Box::new(|r: &TestRepo| {
                fs::remove_dir_all(r.path().join(format!("artifacts/{job}"))).unwrap()
            }),
            format!("{}/manifest.json", canonical(job, run)),
        ),
    ];
    for (what, make, undo, named) in cases {
        make(&repo);
        let before = Snapshot::of(&repo);
        let r = repo.cli(["relocate", "--json"]);
        r.expect_code(3);
        let msg = error_message(&r);
        assert!(
            msg.contains("not as committed") && msg.contains(&named),
            "{what}: {msg}"
        );
        before.assert_unchanged(&repo, what);
        // The dry run refuses the same way.
        repo.cli(["relocate", "--dry-run"]).expect_code(3);
        undo(&repo);
    }
    assert_eq!(repo.porcelain(), "");
    json_run(&repo, &["relocate"], 0);
}

#[test]
fn relocate_fails_a_run_it_cannot_name_and_commits_nothing() {
    let repo = TestRepo::new();
    repo.file(
        "artifacts/runs/r-ok/manifest.json",
        r#"{"run_id": "r-ok", "job_ref": "jobs/j/brief.yaml"}"#,
    )
    .file(
        "artifacts/runs/r-nojob/manifest.json",
        r#"{"run_id": "r-nojob", "job_ref": "brief.yaml"}"#,
    )
    .file(
        "artifacts/runs/r-other/manifest.json",
        r#"{"run_id": "r-else", "job_id": "j"}"#,
    )
    .file(
        "artifacts/runs/r-dot/manifest.json",
        r#"{"run_id": "r-dot", "job_id": ".hidden"}"#,
    )
    .file("artifacts/runs/r-bad/manifest.json", "{not json")
    .commit("runs");
    let head = repo.head();
    let r = json_run(&repo, &["relocate"], 1);
    assert_eq!(r["commit"], Value::Null);
    assert_eq!(
        paths_of(&r["failed"]),
        vec![
            "artifacts/runs/r-bad/manifest.json",
            "artifacts/runs/r-dot/manifest.json",
            "artifacts/runs/r-nojob/manifest.json",
            "artifacts/runs/r-other/manifest.json",
        ]
    );
    let errors: Vec<String> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap().to_string())
        .collect();
    assert!(
        errors[1].contains("job_id \".hidden\" cannot be a directory name"),
        "{errors:?}"
    );
    assert!(errors[2].contains("cannot derive job_id"), "{errors:?}");
    assert!(
        errors[3].contains("the path says run \"r-other\" but run_id is \"r-else\""),
        "{errors:?}"
    );
    assert_eq!(repo.head(), head);
    let text = repo.cli(["relocate"]);
    text.expect_code(1);
    assert!(
        text.stdout
            .contains("nothing committed: 4 run(s) cannot move as they are (1 could)"),
        "{text}"
    );
    // Narrowed to the run that can move, it moves.
    let one = json_run(&repo, &["relocate", "artifacts/runs/r-ok"], 0);
    assert_eq!(one["relocated"], 1);
    assert_eq!(
        repo.ls_tree("HEAD")["artifacts/runs/r-ok"]
            .split(' ')
            .next(),
        Some("120000")
    );
    assert!(repo
        .ls_tree("HEAD")
        .contains_key("artifacts/j/r-ok/manifest.json"));
    assert!(repo
        .ls_tree("HEAD")
        .contains_key("artifacts/runs/r-bad/manifest.json"));
}

#[test]
fn a_dry_run_writes_nothing() {
    let repo = seed_history();
    let before = Snapshot::of(&repo);
    let r = repo.cli(["relocate", "--dry-run"]);
    r.expect_code(0);
    // The 1.1.0 run names its job; a 1.0.0 one only through job_ref.
    let (run, job) = SEED_RUNS[0];
    for line in [
        format!(
            "would move {} -> {} (6 file(s))\n",
            legacy(RUN_SNAP),
            canonical("ig-test-001", RUN_SNAP)
        ),
        format!(
            "would move {} -> {} (2 file(s); job_id from job_ref)\n",
            legacy(run),
            canonical(job, run)
        ),
    ] {
        assert!(r.stdout.contains(&line), "{line}\n{r}");
    }
    assert!(
        r.stdout
            .contains("relocate would commit on refs/heads/main (base "),
        "{r}"
    );
    assert!(r.stdout.contains("    Migration-Relocate: 8\n"), "{r}");
    before.assert_unchanged(&repo, "a dry run");
}

#[test]
fn relocate_in_a_bare_repository_and_on_another_branch() {
    let repo = seed_history();
    let bare = repo.bare_clone();
    let r = json_run(&bare, &["relocate"], 0);
    assert_eq!(r["relocated"], 8);
    assert_fsck_clean(&bare);
    assert_eq!(json_run(&bare, &["verify"], 0)["ok"], true);
    // --branch: commits there, leaves HEAD's branch and the working tree alone.
    let files = repo.worktree_snapshot();
    let head = repo.head();
    let r = json_run(&repo, &["relocate", "--branch", "relocated"], 0);
    assert_eq!(r["branch"], "refs/heads/relocated");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(tree(&repo, "relocated"), tree(&bare, "HEAD"));
}

#[test]
fn verify_names_the_places_a_manifest_was_expected() {
    let repo = TestRepo::new();
    repo.file(
        "artifacts/a/b/r1/manifest.json",
        r#"{"schema_version": "1.2.0", "run_id": "r1", "job_id": "j"}"#,
    )
    .file(
        "artifacts/runs/r2/manifest.json",
        r#"{"schema_version": "1.2.0", "run_id": "r9", "job_id": "j"}"#,
    )
    .file(
        "artifacts/j/r3/manifest.json",
        r#"{"schema_version": "1.2.0", "run_id": "r3", "job_id": "j"}"#,
    )
    .file(
        "artifacts/runs/r4/manifest.json",
        r#"{"schema_version": "1.2.0", "run_id": "r4", "job_id": "j"}"#,
    )
    .commit("manifests in and out of the layouts");
    let v = json_run(&repo, &["verify"], 1);
    let problems: BTreeMap<String, String> = findings(&v)
        .into_iter()
        .map(|(_, path, problem)| (path.unwrap_or_default(), problem))
        .collect();
    assert_eq!(problems.len(), 2, "{v:#}");
    assert_eq!(problems["artifacts/a/b/r1/manifest.json"], "the path fits no configured layout ({job_id}/{run_id} or runs/{run_id}); expected artifacts/j/r1/manifest.json or artifacts/runs/r1/manifest.json");
    assert_eq!(problems["artifacts/runs/r2/manifest.json"], "the path says run \"r2\" but run_id is \"r9\"; expected artifacts/j/r9/manifest.json or artifacts/runs/r9/manifest.json");
    // Configured layouts are what verify reads.
    repo.file(
        ".artifact-migrate.toml",
        "layouts = [\"{job_id}/{run_id}\", \"a/b/{run_id}\", \"runs/{run_id}\"]\n",
    );
    let v = json_run(&repo, &["verify"], 1);
    assert_eq!(v["findings"].as_array().unwrap().len(), 1, "{v:#}");
}

#[test]
fn verify_finds_a_relocation_that_did_more_than_rename() {
    let (repo, _, relocation) = relocated();
    // A forged "relocation": it moves nothing but claims to and edits an input.
    let (run, job) = SEED_RUNS[7];
    let input = format!("{}/inputs/model_config.json", canonical(job, run));
    repo.file(&input, "{\"model\": \"other\"}\n");
    repo.git(["add", "-A"]);
    repo.git(["commit", "-q", "-m", &format!("relocate: 1 run\n\nMoved byte for byte (each old place is now a symbolic link to the new one):\nartifacts/runs/x -> artifacts/j/x\n\nMigration-Relocate: 2\nMigration-Tool: {TOOL}")]);
    let forged = repo.head();
    let v = json_run(&repo, &["verify"], 1);
    let f: Vec<(String, Option<String>, String)> =
        findings(&v).into_iter().filter(|f| f.0 == forged).collect();
    let problems: Vec<&str> = f.iter().map(|x| x.2.as_str()).collect();
    assert!(
        problems.contains(&"Migration-Relocate is \"2\" but the message lists 1 moved run(s)"),
        "{problems:#?}"
    );
    assert!(problems.contains(&"the relocation did not only rename: artifacts/runs/x was not a run directory before the relocation"), "{problems:#?}");
    assert!(
        problems.iter().any(|p| p
            == &format!(
            "the relocation did not only rename: {input} changed, and is not part of a moved run"
        )),
        "{problems:#?}"
    );
    // The genuine relocation below it is still clean.
    let below = json_run(&repo, &["verify", &relocation], 0);
    assert_eq!(below["ok"], true);
}

/// A kill at `point` of `relocate` (or of its rollback); the next command finishes the
/// working tree, which ends exactly as an uninterrupted run leaves it.
fn interrupted(rollback: bool, point: &str, moved: bool) {
    let victim = seed_history();
    victim.cli(["apply"]).expect_code(0);
    if rollback {
        victim.cli(["relocate"]).expect_code(0);
    }
    let old = victim.head();
    let reference = victim.copy();
    let op = if rollback { "rollback" } else { "relocate" };
    reference.cli([op]).expect_code(0);
    let new = reference.head();
    let mut child = spawn(&victim, &[("ARTIFACT_MIGRATE_FAULT", point)], &[op]);
    child.expect_line(&format!("fault-point: {point}"));
    child.kill();
    assert_eq!(
        victim.head(),
        if moved { new.clone() } else { old.clone() },
        "{point}"
    );
    assert_fsck_clean(&victim);
    let status = victim.cli(["status"]);
    status.expect_code(0);
    if moved {
        assert!(
            status.stderr.contains(&format!(
                "note: finished the interrupted {op} of {}",
                short(&new)
            )),
            "{status}"
        );
    }
    assert_eq!(journal_files(&victim), Vec::<String>::new());
    if !moved {
        victim.cli([op]).expect_code(0);
    }
    assert_eq!(victim.head(), new);
    assert_eq!(
        victim.worktree_snapshot(),
        reference.worktree_snapshot(),
        "{point}"
    );
    assert_eq!(index_entries(&victim), index_entries(&reference), "{point}");
    assert_eq!(victim.porcelain(), "", "{point}");
    assert_eq!(stray_tmp_files(&victim), Vec::<String>::new());
    victim.cli(["verify"]).expect_code(0);
}

#[test]
fn an_interrupted_relocate_is_finished_by_the_next_command() {
    for (point, moved) in [
        ("after-objects", false),
        ("before-cas", false),
        ("after-cas", true),
        ("files:1", true),
        ("files:12", true),
        ("files:30", true),
        ("before-index", true),
    ] {
        interrupted(false, point, moved);
    }
}

#[test]
fn an_interrupted_rollback_of_a_relocation_is_finished_by_the_next_command() {
    for (point, moved) in [
        ("after-cas", true),
        ("files:5", true),
        ("files:40", true),
        ("before-index", true),
    ] {
        interrupted(true, point, moved);
    }
}

#[test]
fn validate_reads_both_layouts() {
    let repo = seed_history();
    let v = json_run(&repo, &["validate"], 0);
    assert_eq!(v["total"], 8, "{v:#}");
}

#[test]
fn the_demo_shows_a_legacy_run_relocated_on_its_own_branch() {
    let repo = TestRepo::new();
    fs::remove_dir_all(repo.path().join(".git")).unwrap();
    let run = repo.run(
        repo.cli_command_in(repo.home()),
        [std::ffi::OsStr::new("demo"), repo.path().as_os_str()],
    );
    run.expect_code(0);
    for line in [
        "$ artifact-migrate plan --branch legacy-import\n",
        "$ artifact-migrate relocate --branch legacy-import\n",
        "$ artifact-migrate verify legacy-import\n",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{run}");
    }
    let legacy_run = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98";
    // On the branch: migrated (job_id from job_ref), then moved with only renames and a link.
    let m = repo.show_json(
        "legacy-import",
        &format!("artifacts/{JOB}/{legacy_run}/manifest.json"),
    );
    assert_eq!(m["job_id"], JOB);
    assert_eq!(
        repo.git(["show", "-M", "--name-status", "--format=", "legacy-import"]),
        format!(
            "A\tartifacts/runs/{legacy_run}\n\
             R100\tartifacts/runs/{legacy_run}/manifest.json\tartifacts/{JOB}/{legacy_run}/manifest.json\n\
             R100\tartifacts/runs/{legacy_run}/outputs/instagram_captions.md\tartifacts/{JOB}/{legacy_run}/outputs/instagram_captions.md\n"
        )
    );
    // main and the working tree are the walk-through's, untouched.
    assert!(!repo.ls_tree("main").keys().any(|p| p.contains(legacy_run)));
    assert_eq!(repo.rev("legacy-import~3"), repo.rev("main"));
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
}

#[test]
fn relocate_refuses_files_git_would_filter_on_checkout() {
    let repo = seed_history();
    repo.file(".gitattributes", "*.md text eol=crlf\n")
        .commit("outputs are CRLF on checkout");
    let before = Snapshot::of(&repo);
    let r = repo.cli(["relocate", "--json"]);
    r.expect_code(3);
    assert!(
        error_message(&r).contains("git would convert this file on checkout"),
        "{r}"
    );
    before.assert_unchanged(&repo, "a refused relocate");
    // Without a working tree to keep in step, nothing can differ from the blobs.
    assert_eq!(
        json_run(&repo, &["relocate", "--branch", "review"], 0)["relocated"],
        8
    );
}

#[test]
fn two_runs_bound_for_one_canonical_place_both_fail() {
    let repo = TestRepo::new();
    repo.file(
        ".artifact-migrate.toml",
        "layouts = [\"{job_id}/{run_id}\", \"runs/{run_id}\", \"old/{run_id}\"]\n",
    )
    .file(
        "artifacts/runs/r/manifest.json",
        r#"{"run_id": "r", "job_id": "j"}"#,
    )
    .file(
        "artifacts/old/r/manifest.json",
        r#"{"run_id": "r", "job_id": "j", "status": "older"}"#,
    )
    .file(
        "artifacts/old/s/manifest.json",
        r#"{"run_id": "s", "job_id": "j"}"#,
    )
    .commit("one run in two legacy layouts");
    let r = json_run(&repo, &["relocate"], 1);
    assert_eq!(
        paths_of(&r["failed"]),
        vec![
            "artifacts/old/r/manifest.json",
            "artifacts/runs/r/manifest.json"
        ]
    );
    assert!(
        r["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("also goes to or lies in artifacts/j/r"),
        "{r:#}"
    );
    // The run that can move does, narrowed to it.
    assert_eq!(
        json_run(&repo, &["relocate", "artifacts/old/s"], 0)["relocated"],
        1
    );
    assert_eq!(json_run(&repo, &["verify"], 0)["ok"], true);
}
