//! Shallow clones (issue 12): in `git clone --depth N` (what CI checks out) `verify`, `log`
//! and `rollback` notice where history stops, say so and how to fetch more; a batch whose
//! parent was not fetched is not a finding, and what the clone holds is still audited.

mod common;
mod common_audit;

use common::*;
use common_audit::*;
use serde_json::Value;

/// `five_runs` with two batches: to 1.1.0, then to the latest; returns (repo, first, second).
fn two_batches() -> (TestRepo, String, String) {
    let repo = five_runs();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    let first = repo.head();
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();
    assert_ne!(first, second);
    (repo, first, second)
}

fn json(repo: &TestRepo, args: &[&str], code: i32) -> Value {
    let run = repo.cli(args);
    run.expect_code(code);
    run.json()
}

#[test]
fn verify_in_a_depth_1_clone_audits_what_it_holds_and_says_where_history_stops() {
    let (origin, _, second) = two_batches();
    let clone = origin.shallow_clone(1);
    assert_eq!(
        clone.git(["rev-parse", "--is-shallow-repository"]).trim(),
        "true"
    );
    assert_eq!(clone.head(), second);

    let v = json(&clone, &["verify", "--json"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["findings"], serde_json::json!([]));
    assert_eq!(v["shallow"]["boundary"], serde_json::json!([second]));
    assert_eq!(v["shallow"]["not_audited"], serde_json::json!([second]));
    let message = v["shallow"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("history stops at {}", short(&second))),
        "{message}"
    );
    assert!(message.contains("git fetch --deepen=N"), "{message}");
    let human = clone.cli(["verify"]);
    human.expect_code(0);
    assert!(
        human
            .stdout
            .contains("shallow: this clone is shallow: history stops at"),
        "{human}"
    );
    assert!(
        human.stdout.contains(&format!(
            "shallow: not audited (parent not fetched): {}",
            short(&second)
        )),
        "{human}"
    );
    // The same audit in the complete repository: no shallow note.
    let full = json(&origin, &["verify", "--json"], 0);
    assert_eq!(full["shallow"], Value::Null);

    // What the clone holds is still audited: a changed protected field is tampering.
    let p = p_sample100();
    let mut doc: Value = serde_json::from_slice(&clone.file_bytes(&p)).unwrap();
    doc["run_id"] = Value::String("someone-else".into());
    clone.file(&p, doc).commit("edit a migrated manifest");
    let v = json(&clone, &["verify", "--json"], 1);
    let found = findings(&v);
    assert!(
        found.iter().any(|f| f.1.as_deref() == Some(p.as_str())
            && f.2.starts_with("tampering: protected field \"/run_id\"")),
        "{v:#}"
    );
}

#[test]
fn in_a_depth_2_clone_the_newer_batch_is_audited_in_full() {
    let (origin, first, second) = two_batches();
    let clone = origin.shallow_clone(2);
    let v = json(&clone, &["verify", "--json"], 0);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["batches"], 2);
    assert_eq!(v["shallow"]["not_audited"], serde_json::json!([first]));
    // A history entry the audited batch wrote is still checked against it.
    let p = p_sample100();
    let mut doc: Value = serde_json::from_slice(&clone.file_bytes(&p)).unwrap();
    let last = doc["migration_history"].as_array().unwrap().len() - 1;
    doc["migration_history"][last]["applied_at"] = Value::String("2020-01-01T00:00:00Z".into());
    clone.file(&p, doc).commit("rewrite history");
    let v = json(&clone, &["verify", "--json"], 1);
    assert!(
        findings(&v).iter().any(|f| f
            .2
            .contains(&format!("differs from the one batch {}", short(&second)))),
        "{v:#}"
    );
}

#[test]
fn log_marks_the_boundary() {
    let (origin, _, second) = two_batches();
    let clone = origin.shallow_clone(1);
    let entries = json(&clone, &["log", "--json"], 0);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["commit"], second);
    assert_eq!(entries[0]["parent_not_fetched"], true);
    let full = json(&origin, &["log", "--json"], 0);
    assert!(full[0].get("parent_not_fetched").is_none(), "{full:#}");
    let human = clone.cli(["log"]);
    human.expect_code(0);
    assert!(
        human
            .stdout
            .contains("(the shallow clone stops here: its parent was not fetched)"),
        "{human}"
    );
    assert!(
        human.stdout.contains("shallow: this clone is shallow"),
        "{human}"
    );
}

#[test]
fn rollback_says_what_to_fetch_and_works_once_it_is_fetched() {
    let (origin, first, second) = two_batches();
    let clone = origin.shallow_clone(1);
    let git_before = clone.git_dir_snapshot();
    let run = clone.cli(["rollback", "--json"]);
    run.expect_code(3);
    let msg = error_message(&run);
    assert!(
        msg.contains(&format!(
            "{}'s parent {first} was not fetched",
            short(&second)
        )),
        "{msg}"
    );
    assert!(msg.contains("git fetch --deepen=1"), "{msg}");
    assert!(
        clone.git_dir_snapshot() == git_before,
        "a refused rollback changed .git"
    );

    // Fetched as it says: the rollback is the one the complete repository makes.
    clone.git(["fetch", "-q", "--deepen=1"]);
    clone.cli(["rollback"]).expect_code(0);
    origin.cli(["rollback"]).expect_code(0);
    assert_eq!(clone.head(), origin.head());
    assert_eq!(tree(&clone, "HEAD"), tree(&clone, &first));
}
