//! Drift an auditor can read (SPEC §9, issue 12): plain git makes every change after a
//! batch; `verify` names the commits (id, author, date, subject, checked against
//! `git log`), warns about an ordinary change (exit 0; `--strict` exit 1) and reports
//! a changed protected field or history entry as tampering (exit 1).

mod common;
mod common_audit;

use common::*;
use common_audit::*;
use serde_json::Value;

fn migrated() -> (TestRepo, String) {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    (repo, batch)
}

/// `verify --json ARGS`, expecting `code`.
fn verify(repo: &TestRepo, args: &[&str], code: i32) -> Value {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let run = repo.cli(&all);
    run.expect_code(code);
    run.json()
}

/// Sets a top-level member of a manifest in the working tree (serde_json re-serializes it).
fn set(repo: &TestRepo, path: &str, key: &str, value: Value) {
    let mut doc: Value = serde_json::from_slice(&repo.file_bytes(path)).unwrap();
    doc[key] = value;
    repo.file(path, serde_json::to_vec_pretty(&doc).unwrap());
}

/// What `git log` says of a commit: `{commit, author, date, subject}` as verify reports it.
fn git_says(repo: &TestRepo, rev: &str) -> Value {
    let line = repo.git(["log", "-1", "--format=%H%x00%an <%ae>%x00%aI%x00%s", rev]);
    let f: Vec<&str> = line.trim_end().split('\0').collect();
    let date = f[2].replace("Z", "+00:00");
    serde_json::json!({"commit": f[0], "author": f[1], "date": date, "subject": f[3]})
}

#[test]
fn an_ordinary_edit_is_a_warning_naming_its_commits() {
    let (repo, batch) = migrated();
    set(&repo, P_FOUR, "status", Value::String("failed".into()));
    repo.commit("pipeline: the run failed after all");
    let first = repo.head();
    // A commit touching another file is not attributed.
    repo.file("README.txt", "notes\n").commit("unrelated notes");
    set(&repo, P_FOUR, "labels", serde_json::json!(["rerun"]));
    repo.commit("label the run for a rerun");
    let second = repo.head();

    let v = verify(&repo, &[], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["findings"], serde_json::json!([]), "{v:#}");
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["kind"], "drift");
    assert_eq!(w[0]["path"], P_FOUR);
    assert_eq!(w[0]["commit"], second.as_str());
    assert_eq!(w[0]["since"], batch.as_str());
    assert_eq!(
        w[0]["commits"],
        serde_json::json!([git_says(&repo, &second), git_says(&repo, &first)]),
        "{v:#}"
    );
    let problem = w[0]["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "drift: labels, status changed since batch {}; changed by 2 commit(s): {} (",
            short(&batch),
            short(&second)
        )),
        "{problem}"
    );
    assert!(
        problem.contains("\"pipeline: the run failed after all\""),
        "{problem}"
    );

    // The human form: one warning line, exit 0, the summary counts it.
    let text = repo.cli(["verify"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains(&format!(
            "warning: {} {P_FOUR}: drift: labels, status",
            short(&second)
        )),
        "{text}"
    );
    assert!(
        text.stdout.trim_end().ends_with(": ok, 1 warning(s)"),
        "{text}"
    );

    // --strict: the warning is a finding, exit 1, with its commits.
    let s = verify(&repo, &["--strict"], 1);
    assert_eq!(s["ok"], false);
    assert_eq!(s["warnings"], serde_json::json!([]));
    let f = s["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{s:#}");
    assert_eq!(f[0]["commits"], w[0]["commits"]);
    assert!(f[0]["problem"].as_str().unwrap().ends_with("(--strict)"));
    // Before the edits the audit is clean, without warnings.
    let before = verify(&repo, &[&batch], 0);
    assert_eq!(before["warnings"], serde_json::json!([]));
}

#[test]
fn a_changed_protected_field_is_tampering() {
    let (repo, batch) = migrated();
    set(
        &repo,
        P_FOUR,
        "job_ref",
        Value::String("someone-else".into()),
    );
    repo.commit("reassign the run");
    let tampered = repo.head();
    let v = verify(&repo, &[], 1);
    let f = v["findings"].as_array().unwrap();
    let t: Vec<&Value> = f
        .iter()
        .filter(|f| f["problem"].as_str().unwrap().starts_with("tampering:"))
        .collect();
    assert_eq!(t.len(), 1, "{v:#}");
    assert_eq!(t[0]["path"], P_FOUR);
    assert_eq!(t[0]["commit"], tampered.as_str());
    assert_eq!(
        t[0]["commits"],
        serde_json::json!([git_says(&repo, &tampered)])
    );
    assert!(
        t[0]["problem"].as_str().unwrap().starts_with(&format!(
            "tampering: protected field \"/job_ref\" changed since batch {}; changed by 1 commit(s): {}",
            short(&batch),
            short(&tampered)
        )),
        "{v:#}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn a_removed_history_entry_is_tampering() {
    let (repo, batch) = migrated();
    // Remove the entry the batch wrote (and with it the only record of the migration).
    let mut doc: Value = serde_json::from_slice(&repo.file_bytes(P_FOUR)).unwrap();
    doc["migration_history"].as_array_mut().unwrap().pop();
    repo.file(P_FOUR, serde_json::to_vec_pretty(&doc).unwrap());
    repo.commit("tidy the manifest");
    let tampered = repo.head();
    let v = verify(&repo, &[], 1);
    let problems: Vec<String> = findings(&v)
        .into_iter()
        .filter(|f| f.1.as_deref() == Some(P_FOUR))
        .map(|f| f.2)
        .collect();
    assert!(
        problems.contains(&format!(
            "tampering: a history entry was altered or removed since batch {}; changed by 1 commit(s): {} ({}, {}, \"tidy the manifest\")",
            short(&batch),
            short(&tampered),
            git_says(&repo, &tampered)["author"].as_str().unwrap(),
            git_says(&repo, &tampered)["date"].as_str().unwrap(),
        )),
        "{problems:?}"
    );
}

#[test]
fn an_edit_merged_from_a_branch_is_attributed_to_the_merge() {
    let (repo, batch) = migrated();
    repo.git(["checkout", "-q", "-b", "pipeline"]);
    set(&repo, P_FOUR, "status", Value::String("archived".into()));
    repo.commit("archive the run");
    let edit = repo.head();
    repo.git(["checkout", "-q", "main"]);
    repo.file("README.txt", "notes\n").commit("notes on main");
    repo.git(["merge", "-q", "--no-ff", "-m", "merge pipeline", "pipeline"]);
    let merge = repo.head();
    let v = verify(&repo, &[], 0);
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    // Along first parents the change arrives with the merge.
    assert_eq!(
        w[0]["commits"],
        serde_json::json!([git_says(&repo, &merge)])
    );
    assert_eq!(w[0]["since"], batch.as_str());
    // On the branch itself, the edit's own commit.
    let b = verify(&repo, &["pipeline"], 0);
    assert_eq!(
        b["warnings"][0]["commits"],
        serde_json::json!([git_says(&repo, &edit)])
    );
}

#[test]
fn a_later_batch_resets_the_measure() {
    // An edit, then a new batch over it: drift is measured from the newest batch only.
    let repo = five_runs();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    set(&repo, P_FOUR, "status", Value::String("failed".into()));
    repo.commit("the run failed");
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();
    let v = verify(&repo, &[], 0);
    assert_eq!(v["warnings"], serde_json::json!([]), "{v:#}");
    set(&repo, P_FOUR, "status", Value::String("succeeded".into()));
    repo.commit("it succeeded on retry");
    let v = verify(&repo, &[], 0);
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["since"], second.as_str());
    assert_eq!(w[0]["commits"].as_array().unwrap().len(), 1);
}

#[test]
fn a_change_is_followed_through_a_relocation_to_the_batch() {
    // The seed's runs in the legacy runs/<run_id> layout: migrated, edited, relocated, edited.
    let repo = TestRepo::new();
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed-history/artifacts");
    copy_dir(&src, &repo.path().join("artifacts"));
    repo.commit("the seed's runs");
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let (run, job) = ("e99e867f0a3a1b77e9a3b895e33ff22d", "ig-test-001");
    let old = format!("artifacts/runs/{run}/manifest.json");
    set(&repo, &old, "status", Value::String("archived".into()));
    repo.commit("archive before the move");
    let before = repo.head();
    repo.cli(["relocate"]).expect_code(0);
    let new = format!("artifacts/{job}/{run}/manifest.json");
    set(&repo, &new, "labels", serde_json::json!(["moved"]));
    repo.commit("label after the move");
    let after = repo.head();
    let v = verify(&repo, &[], 0);
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["path"], new.as_str());
    assert_eq!(w[0]["since"], batch.as_str());
    assert_eq!(
        w[0]["commits"],
        serde_json::json!([git_says(&repo, &after), git_says(&repo, &before)]),
        "{v:#}"
    );
}

#[test]
fn a_batch_and_an_edit_merged_from_a_branch_are_the_merges() {
    // The batch and a later edit were made on a branch; main merges them in.
    let repo = five_runs();
    repo.git(["checkout", "-q", "-b", "migrate"]);
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    set(&repo, P_FOUR, "status", Value::String("failed".into()));
    repo.commit("the run failed");
    repo.git(["checkout", "-q", "main"]);
    repo.file("README.txt", "notes\n").commit("notes on main");
    repo.git([
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge the migration",
        "migrate",
    ]);
    let merge = repo.head();
    let v = verify(&repo, &[], 0);
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["since"], batch.as_str());
    // Along first parents only the merge changed it (not the commit that created the file).
    assert_eq!(
        w[0]["commits"],
        serde_json::json!([git_says(&repo, &merge)]),
        "{v:#}"
    );
}
