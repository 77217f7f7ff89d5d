//! `migrations --check --base REV` on real branches made with plain git (issue 12, item 6):
//! conflicting definitions exit 1 naming the files; definitions that merge cleanly exit 0
//! (and plain `git merge` is the referee of what "cleanly" means for the files themselves).

mod common;
mod common_audit;

use common::*;
use common_audit::*;
use serde_json::Value;

const M130: &str = ".artifact-migrate/migrations/1.2.0-1.3.0.toml";
const M140: &str = ".artifact-migrate/migrations/1.2.0-1.4.0.toml";

fn migration(from: &str, to: &str, value: &str) -> String {
    format!(
        "from = \"{from}\"\nto = \"{to}\"\ndescription = \"add review_status\"\n\n[[ops]]\nop = \"add\"\npath = \"/review_status\"\nvalue = \"{value}\"\ndescription = \"Add review_status ({value})\"\n"
    )
}

/// `five_runs` migrated to 1.2.0, then a branch `feature` from there; main checked out.
fn forked() -> TestRepo {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    repo.git(["branch", "feature"]);
    repo
}

/// [`forked`], with main adding 1.2.0 -> 1.3.0; `feature` checked out.
fn main_adds_1_3_0() -> TestRepo {
    let repo = forked();
    repo.file(M130, migration("1.2.0", "1.3.0", "unreviewed"))
        .commit("add 1.2.0 -> 1.3.0");
    repo.git(["checkout", "-q", "feature"]);
    repo
}

fn check(repo: &TestRepo, base: &str, code: i32) -> Value {
    let run = repo.cli(["migrations", "--check", "--base", base, "--json"]);
    run.expect_code(code);
    run.json()
}

fn problems(v: &Value) -> Vec<String> {
    v["branches"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["problem"].as_str().unwrap().to_string())
        .collect()
}

/// Changes this side's 1.2.0 -> 1.3.0 and checks against main: exit 1, one conflict.
fn change_here_and_check(repo: &TestRepo) -> (Value, Vec<String>) {
    repo.file(M130, migration("1.2.0", "1.3.0", "pending"))
        .commit("start review_status as pending");
    let v = check(repo, "main", 1);
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{v:#}");
    (v, p)
}

#[test]
fn two_branches_each_adding_a_migration_from_one_version_conflict() {
    let repo = main_adds_1_3_0();
    repo.file(M140, migration("1.2.0", "1.4.0", "pending"))
        .commit("add 1.2.0 -> 1.4.0");
    // Plain git merges the two files without a conflict: only the definitions conflict.
    let (merged, out) =
        outcome(
            repo.git_command()
                .args(["merge-tree", "--write-tree", "main", "feature"]),
        );
    assert!(merged, "{out}");

    let v = check(&repo, "main", 1);
    assert_eq!(v["branches"]["base"], repo.rev("main").as_str());
    assert_eq!(
        v["branches"]["merge_base"],
        repo.git(["merge-base", "main", "feature"]).trim()
    );
    let p = problems(&v);
    assert_eq!(
        p,
        vec![
            format!("both sides added a migration from 1.2.0: 1.2.0->1.4.0 here ({M140}), 1.2.0->1.3.0 on main ({M130})"),
            "two different latest versions: 1.4.0 here, 1.3.0 on main (the merge base's is 1.2.0); after a merge one of them is a dead end".to_string(),
        ],
        "{v:#}"
    );
    assert_eq!(
        v["branches"]["conflicts"][0]["files"],
        serde_json::json!([M140, M130])
    );
    // The human form names the files and exits 1; the lint of each side alone is clean.
    let text = repo.cli(["migrations", "--check", "--base", "main"]);
    text.expect_code(1);
    assert!(
        text.stdout.contains(&format!(
            "error: both sides added a migration from 1.2.0: 1.2.0->1.4.0 here ({M140})"
        )),
        "{text}"
    );
    assert!(
        text.stdout.contains(&format!(
            "check --base: 2 conflict(s) with the definitions at {}",
            short(&repo.rev("main"))
        )),
        "{text}"
    );
    repo.cli(["migrations", "--check"]).expect_code(0);
}

#[test]
fn one_edge_added_on_both_sides_differently_conflicts_and_identically_does_not() {
    let repo = main_adds_1_3_0();
    // The same definition on both sides: no conflict (git merges it too).
    repo.file(M130, migration("1.2.0", "1.3.0", "unreviewed"))
        .commit("add 1.2.0 -> 1.3.0 here too");
    let v = check(&repo, "main", 0);
    assert_eq!(v["branches"]["conflicts"], serde_json::json!([]), "{v:#}");
    assert!(repo
        .cli(["migrations", "--check", "--base", "main"])
        .expect_code(0)
        .stdout
        .contains("check --base: 0 conflict(s)"));
    // A different definition of the same edge.
    let (v, p) = change_here_and_check(&repo);
    assert!(
        p[0].starts_with(&format!("migration 1.2.0->1.3.0 was added on both sides with different definitions: {M130} here (sha256:")),
        "{p:?}"
    );
    assert_eq!(
        v["branches"]["conflicts"][0]["files"],
        serde_json::json!([M130])
    );
}

#[test]
fn a_definition_changed_here_that_the_base_already_applied_conflicts() {
    let repo = forked();
    // Both sides start from a commit that defines 1.2.0 -> 1.3.0.
    repo.file(M130, migration("1.2.0", "1.3.0", "unreviewed"))
        .commit("add 1.2.0 -> 1.3.0");
    repo.git(["branch", "-f", "feature", "main"]);
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    repo.git(["checkout", "-q", "feature"]);
    // Changed on this branch only: the merge would take it, but main applied the old one.
    let (_, p) = change_here_and_check(&repo);
    assert!(
        p[0].starts_with(&format!(
            "migration 1.2.0->1.3.0 was changed here ({M130}, now sha256:"
        )),
        "{p:?}"
    );
    assert!(
        p[0].contains(&format!(
            "but batch {} on main already applied it as sha256:",
            short(&batch)
        )),
        "{p:?}"
    );
    // Against a base that applied nothing, the same change is only a change.
    let v = check(&repo, "feature~1", 0);
    assert_eq!(v["branches"]["conflicts"], serde_json::json!([]), "{v:#}");
}

#[test]
fn an_edge_added_on_one_side_only_is_no_conflict() {
    let repo = forked();
    repo.git(["checkout", "-q", "feature"]);
    repo.file(M130, migration("1.2.0", "1.3.0", "unreviewed"))
        .commit("add 1.2.0 -> 1.3.0");
    let v = check(&repo, "main", 0);
    assert_eq!(v["branches"]["conflicts"], serde_json::json!([]), "{v:#}");
    // --base needs --check.
    repo.cli(["migrations", "--base", "main"]).expect_code(2);
}
