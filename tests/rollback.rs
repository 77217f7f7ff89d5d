//! `rollback` (SPEC §6, §7, §9) and `log`: a rollback is a git revert of one batch that
//! restores its manifests byte for byte; refusals exit 3, change nothing and say what to
//! do; `--branch` and bare repositories leave every working tree alone; `log --json` links
//! batches and their rollbacks.

mod common;
mod common_audit;

use std::fs;

use common::*;
use common_audit::*;
use serde_json::{json, Value};

/// `rollback --json ARGS` that must succeed; returns the report.
fn rollback_json(repo: &TestRepo, args: &[&str]) -> Value {
    let mut all = vec!["rollback", "--json"];
    all.extend_from_slice(args);
    let run = repo.cli(&all);
    run.expect_code(0);
    run.json()
}

/// `rollback --json ARGS` that must be refused with exit 3, changing nothing in `.git` or
/// the working tree; returns the error message.
#[track_caller]
fn refused(repo: &TestRepo, args: &[&str]) -> String {
    let git_before = repo.git_dir_snapshot();
    let files_before = if repo.path().join(".git").is_dir() {
        Some(repo.worktree_snapshot())
    } else {
        None
    };
    let mut all = vec!["rollback", "--json"];
    all.extend_from_slice(args);
    let run = repo.cli(&all);
    run.expect_code(3);
    assert_eq!(run.json()["error"]["kind"], "refused", "{run}");
    assert!(
        repo.git_dir_snapshot() == git_before,
        "a refused rollback changed .git:\n{run}"
    );
    if let Some(files) = files_before {
        assert!(
            repo.worktree_snapshot() == files,
            "a refused rollback changed the working tree:\n{run}"
        );
    }
    // The human form says the same on stderr.
    let text = repo.cli(std::iter::once("rollback").chain(args.iter().copied()));
    text.expect_code(3);
    let msg = error_message(&run);
    assert!(text.stderr.contains(msg.lines().next().unwrap()), "{text}");
    msg
}

#[test]
fn rollback_restores_the_batch_byte_for_byte_as_a_git_revert() {
    let repo = five_runs();
    let base = repo.head();
    let original = repo.worktree_snapshot();
    let index_before = index_entries(&repo);
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let subject = repo.git(["log", "-1", "--format=%s"]).trim().to_string();
    assert_eq!(subject, "migrate: 5 manifests to schema 1.2.0");

    let report = rollback_json(&repo, &[]);
    let commit = repo.head();
    assert_eq!(
        report,
        json!({
            "commit": commit,
            "branch": "refs/heads/main",
            "reverted": batch,
            "restored": 5,
            "paths": five_paths(),
            "skipped": [],
        })
    );
    assert_eq!(repo.rev("HEAD^"), batch);
    assert_eq!(repo.commit_count("HEAD"), 3);
    // The tree is the one before the batch; the working tree and index are as before too.
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &base));
    assert_eq!(repo.changed_paths(&batch, "HEAD"), five_paths());
    assert_eq!(repo.worktree_snapshot(), original);
    assert_eq!(index_entries(&repo), index_before);
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
    assert_eq!(journal_files(&repo), Vec::<String>::new());

    // The message of a git revert, with the trailers plain git reads.
    assert_eq!(
        repo.message("HEAD").trim_end(),
        format!(
            "Revert \"{subject}\"\n\nThis reverts commit {batch}.\n\nMigration-Rollback-Of: {batch}\nMigration-Manifests: 5\nMigration-Tool: {TOOL}"
        )
    );
    assert_eq!(
        repo.trailers("HEAD"),
        vec![
            ("Migration-Rollback-Of".to_string(), batch.clone()),
            ("Migration-Manifests".to_string(), "5".to_string()),
            ("Migration-Tool".to_string(), TOOL.to_string()),
        ]
    );
    // Identity and date like apply: GIT_* env and SOURCE_DATE_EPOCH.
    assert_eq!(
        repo.git(["log", "-1", "--format=%an <%ae>|%cn <%ce>|%ct"])
            .trim(),
        format!("{AUTHOR_NAME} <{AUTHOR_EMAIL}>|{COMMITTER_NAME} <{COMMITTER_EMAIL}>|{EPOCH}")
    );

    // Plain `git revert` of the batch makes the same tree.
    let other = five_runs();
    other.cli(["apply"]).expect_code(0);
    assert_eq!(other.head(), batch, "the batch is reproducible");
    other.git(["revert", "--no-edit", "HEAD"]);
    assert_eq!(tree(&other, "HEAD"), tree(&repo, "HEAD"));

    // The human form.
    let text = five_runs();
    text.cli(["apply"]).expect_code(0);
    let out = text.cli(["rollback"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        format!(
            "committed {} on refs/heads/main: rolled back batch {}, 5 manifest(s) restored byte for byte\n",
            short(&text.head()),
            short(&batch)
        )
    );
}

#[test]
fn the_default_is_the_newest_batch_not_rolled_back_yet() {
    let repo = five_runs();
    let base = repo.head();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    let first = repo.head();
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();

    let r1 = rollback_json(&repo, &[]);
    assert_eq!(r1["reverted"], second.as_str());
    assert_eq!(r1["restored"], 5);
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &first));

    let r2 = rollback_json(&repo, &[]);
    assert_eq!(r2["reverted"], first.as_str());
    assert_eq!(r2["restored"], 4, "the 1.1.0 manifest was already current");
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &base));
    assert_eq!(
        blobs_at(&repo, "HEAD", &five_paths()),
        blobs_at(&repo, &base, &five_paths())
    );
    assert_eq!(repo.porcelain(), "");

    let msg = refused(&repo, &[]);
    assert_eq!(
        msg,
        "no migration batch on refs/heads/main is left to roll back"
    );
    repo.cli(["verify"]).expect_code(0);
}

#[test]
fn a_commit_that_is_not_a_batch_is_refused() {
    let repo = five_runs();
    let plain = repo.head();
    repo.cli(["apply"]).expect_code(0);
    repo.file("README.md", "more\n")
        .commit("docs: a plain commit");
    let docs = repo.head();

    let msg = refused(&repo, &[&plain]);
    assert_eq!(
        msg,
        format!(
            "{} is not a migration batch (it has no Migration-Target trailer); `artifact-migrate log` lists the batches",
            short(&plain)
        )
    );
    let msg = refused(&repo, &["HEAD"]);
    assert!(
        msg.starts_with(&format!("{} is not a migration batch", short(&docs))),
        "{msg}"
    );

    // A rollback commit is not a batch either.
    repo.cli(["rollback"]).expect_code(0);
    let rb = repo.head();
    let msg = refused(&repo, &[&rb]);
    assert_eq!(
        msg,
        format!(
            "{} is a rollback, not a migration batch; to redo the migration run `artifact-migrate apply`",
            short(&rb)
        )
    );
    // Not a revision at all: a revision that does not exist (2, `not_found`).
    let run = repo.cli(["rollback", "--json", "no-such-rev"]);
    run.expect_code(2);
    assert_eq!(run.json()["error"]["kind"], "not_found");
}

#[test]
fn rolling_back_twice_is_refused() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    rollback_json(&repo, &[&batch]);
    let rb = repo.head();
    let msg = refused(&repo, &[&batch]);
    assert_eq!(
        msg,
        format!(
            "batch {} was already rolled back by {}; to migrate again run `artifact-migrate apply`",
            short(&batch),
            short(&rb)
        )
    );
    assert!(msg.contains("already rolled back"));
    // Still refused after the migration was applied again on top.
    repo.cli(["apply"]).expect_code(0);
    let msg = refused(&repo, &[&batch]);
    assert!(msg.contains("already rolled back"), "{msg}");
}

#[test]
fn a_batch_whose_manifests_a_later_batch_changed_is_refused() {
    let repo = five_runs();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    let first = repo.head();
    let first_paths = repo.changed_paths("HEAD^", "HEAD");
    assert_eq!(first_paths.len(), 4);
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();

    let msg = refused(&repo, &[&first]);
    let mut expected = format!(
        "cannot roll back {}: 4 of its manifest(s) changed in later commits (nothing was changed):",
        short(&first)
    );
    for p in &first_paths {
        expected.push_str(&format!("\n  {p}: changed by {}", short(&second)));
    }
    expected.push_str(&format!(
        "\nroll back these batches first, newest first: {}",
        short(&second)
    ));
    assert_eq!(msg, expected);

    // Following the advice works: the second, then the first.
    rollback_json(&repo, &[&second]);
    let r = rollback_json(&repo, &[&first]);
    assert_eq!(r["reverted"], first.as_str());
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &format!("{first}^")));
    repo.cli(["verify"]).expect_code(0);
}

#[test]
fn a_batch_whose_manifest_a_plain_commit_changed_is_refused() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let text = String::from_utf8(repo.file_bytes(P_FOUR)).unwrap();
    repo.file(P_FOUR, text.replace("four spaces", "edited by hand"))
        .commit("edit a manifest by hand");
    let edit = repo.head();
    repo.file("README.md", "unrelated\n").commit("unrelated");

    let msg = refused(&repo, &[]);
    assert_eq!(
        msg,
        format!(
            "cannot roll back {}: 1 of its manifest(s) changed in later commits (nothing was changed):\n  {P_FOUR}: changed by {}\nrevert or redo those commits first, then roll back again",
            short(&batch),
            short(&edit)
        )
    );
}

#[test]
fn apply_rollback_apply_verifies_clean() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let first = repo.head();
    let migrated = blobs_at(&repo, "HEAD", &five_paths());
    repo.cli(["rollback"]).expect_code(0);
    let rb = repo.head();

    let again = repo.cli(["apply", "--json"]);
    again.expect_code(0);
    assert_eq!(again.json()["migrated"], 5);
    assert_eq!(repo.rev("HEAD^"), rb);
    for p in five_paths() {
        let doc = repo.show_json("HEAD", &p);
        let before = serde_json::from_slice::<Value>(&migrated[&p]).unwrap();
        assert_eq!(doc["schema_version"], "1.2.0");
        let h = doc["migration_history"].as_array().unwrap();
        assert_eq!(h.len(), 1, "{p}: the rolled-back entry is gone");
        assert_eq!(h[0]["base_commit"], rb.as_str());
        // The same migration: only base_commit differs from the first time.
        let mut a = h[0].clone();
        let mut b = last_history(&before).clone();
        a["base_commit"] = Value::Null;
        b["base_commit"] = Value::Null;
        assert_eq!(a, b, "{p}");
    }
    assert_eq!(repo.porcelain(), "");
    let v = repo.cli(["verify", "--json"]);
    v.expect_code(0);
    let v = v.json();
    assert_eq!(
        (
            v["ok"].clone(),
            v["batches"].clone(),
            v["rollbacks"].clone()
        ),
        (json!(true), json!(2), json!(1))
    );
    // The re-applied batch can be rolled back too, and the old one still cannot.
    assert!(refused(&repo, &[&first]).contains("already rolled back"));
    rollback_json(&repo, &[]);
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &format!("{first}^")));
}

#[test]
fn log_links_batches_and_rollbacks() {
    let repo = five_runs();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    let first = repo.head();
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();
    repo.cli(["rollback"]).expect_code(0);
    let rb = repo.head();

    let run = repo.cli(["log", "--json"]);
    run.expect_code(0);
    let author = format!("{AUTHOR_NAME} <{AUTHOR_EMAIL}>");
    let date = "2026-01-01T00:00:00+00:00";
    assert_eq!(
        run.json(),
        json!([
            {
                "commit": rb,
                "kind": "rollback",
                "date": date,
                "author": author,
                "subject": "Revert \"migrate: 5 manifests to schema 1.2.0\"",
                "target": null,
                "manifests": 5,
                "steps": [],
                "rolled_back_by": null,
                "rollback_of": second,
            },
            {
                "commit": second,
                "kind": "migration",
                "date": date,
                "author": author,
                "subject": "migrate: 5 manifests to schema 1.2.0",
                "target": "1.2.0",
                "manifests": 5,
                "steps": [{"from": "1.1.0", "to": "1.2.0", "count": 5}],
                "rolled_back_by": rb,
                "rollback_of": null,
            },
            {
                "commit": first,
                "kind": "migration",
                "date": date,
                "author": author,
                "subject": "migrate: 4 manifests to schema 1.1.0",
                "target": "1.1.0",
                "manifests": 4,
                "steps": [{"from": "1.0.0", "to": "1.1.0", "count": 4}],
                "rolled_back_by": null,
                "rollback_of": null,
            },
        ])
    );
    // `log REV` starts from that revision.
    let older = repo.cli(["log", "--json", &first]);
    older.expect_code(0);
    let older = older.json();
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["commit"], first.as_str());
    assert_eq!(older[0]["rolled_back_by"], Value::Null);
    // The human form says who rolled back what.
    let text = repo.cli(["log"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .contains(&format!("rollback of {}", short(&second))),
        "{text}"
    );
    assert!(
        text.stdout.contains(&format!(
            "migration to 1.2.0: 5 manifest(s) [1.1.0->1.2.0 5], rolled back by {}",
            short(&rb)
        )),
        "{text}"
    );
}

#[test]
fn rollback_on_another_branch_leaves_head_and_working_tree_alone() {
    let repo = five_runs();
    let main = repo.head();
    repo.cli(["apply", "--branch", "review"]).expect_code(0);
    let batch = repo.rev("review");
    // Unrelated local changes must survive too.
    repo.file("README.md", "edited, not committed\n")
        .file("scratch.txt", "untracked\n");
    let files = repo.worktree_snapshot();
    let index = fs::read(repo.git_dir().join("index")).unwrap();
    let head_file = fs::read(repo.git_dir().join("HEAD")).unwrap();

    // Named from main without --branch: refused, pointing at --branch.
    let msg = refused(&repo, &[&batch]);
    assert_eq!(
        msg,
        format!(
            "{} is not on refs/heads/main: roll it back on the branch it belongs to (--branch)",
            short(&batch)
        )
    );

    let report = rollback_json(&repo, &["--branch", "review"]);
    let rb = repo.rev("review");
    assert_eq!(report["commit"], rb.as_str());
    assert_eq!(report["branch"], "refs/heads/review");
    assert_eq!(report["reverted"], batch.as_str());
    assert_eq!(report["restored"], 5);
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(repo.rev("review^"), batch);
    assert_eq!(tree(&repo, "review"), tree(&repo, &main));
    // Nothing of the checked-out branch moved.
    assert_eq!(repo.head(), main);
    assert_eq!(fs::read(repo.git_dir().join("HEAD")).unwrap(), head_file);
    assert_eq!(fs::read(repo.git_dir().join("index")).unwrap(), index);
    assert_eq!(repo.worktree_snapshot(), files);
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    let porcelain: Vec<String> = repo.porcelain().lines().map(str::to_string).collect();
    assert_eq!(porcelain, vec![" M README.md", "?? scratch.txt"]);
    repo.cli(["verify", "review"]).expect_code(0);
    // Twice on the branch: refused.
    assert!(refused(&repo, &["--branch", "review", &batch]).contains("already rolled back"));
}

#[test]
fn rollback_in_a_bare_repository() {
    let src = five_runs();
    let base = src.head();
    src.cli(["apply"]).expect_code(0);
    let batch = src.head();
    let bare = src.bare_clone();
    assert_eq!(bare.rev("main"), batch);

    let report = rollback_json(&bare, &[]);
    let rb = bare.rev("main");
    assert_eq!(report["commit"], rb.as_str());
    assert_eq!(report["branch"], "refs/heads/main");
    assert_eq!(report["reverted"], batch.as_str());
    assert_eq!(report["paths"], json!(five_paths()));
    assert_eq!(bare.rev("main^"), batch);
    assert_eq!(tree(&bare, "main"), tree(&bare, &base));
    assert_eq!(
        bare.trailers("main")[0],
        ("Migration-Rollback-Of".to_string(), batch.clone())
    );
    assert!(!bare.path().join("artifacts").exists());
    assert_eq!(journal_files(&bare), Vec::<String>::new());
    assert_fsck_clean(&bare);
    bare.cli(["verify"]).expect_code(0);
    assert!(refused(&bare, &[&batch]).contains("already rolled back"));

    // Apply again in the bare repository, then roll that back with --branch.
    bare.cli(["apply"]).expect_code(0);
    let again = bare.rev("main");
    let r = rollback_json(&bare, &["--branch", "main"]);
    assert_eq!(r["reverted"], again.as_str());
    assert_eq!(tree(&bare, "main"), tree(&bare, &base));
    let log = bare.cli(["log", "--json"]);
    log.expect_code(0);
    let kinds: Vec<String> = log
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["rollback", "migration", "rollback", "migration"]);
}

#[test]
fn a_dirty_manifest_of_the_batch_is_refused() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let text = String::from_utf8(repo.file_bytes(P_FOUR)).unwrap();
    repo.file(P_FOUR, text.replace("four spaces", "local edit"));
    let git_before = repo.git_dir_snapshot();
    let files = repo.worktree_snapshot();
    let run = repo.cli(["rollback", "--json"]);
    run.expect_code(3);
    let msg = error_message(&run);
    assert!(msg.contains(P_FOUR), "{run}");
    assert_eq!(repo.head(), batch);
    assert!(repo.git_dir_snapshot() == git_before);
    assert!(repo.worktree_snapshot() == files);
}

#[test]
fn rollback_leaves_unrelated_dirty_and_untracked_files_alone() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    repo.file("README.md", "local\n")
        .file(P_OUTPUT, "regenerated\n")
        .file("notes.txt", "scratch\n");
    let report = rollback_json(&repo, &[]);
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(repo.file_bytes("README.md"), b"local\n");
    assert_eq!(repo.file_bytes(P_OUTPUT), b"regenerated\n");
    let mut porcelain: Vec<String> = repo.porcelain().lines().map(str::to_string).collect();
    porcelain.sort();
    assert_eq!(
        porcelain,
        vec![
            " M README.md".to_string(),
            format!(" M {P_OUTPUT}"),
            "?? notes.txt".to_string()
        ]
    );
    // The unrelated edits were not committed.
    assert_eq!(repo.show("HEAD", "README.md"), b"artifacts\n");
}

/// `--branch NAME` where NAME is checked out in a linked worktree (`git worktree add`):
/// moving it without updating that worktree leaves its index and files behind its HEAD, so
/// the next `git commit` there silently undoes the rollback. Git itself refuses to move a
/// branch checked out elsewhere. Either the rollback refuses (exit 3, nothing changed) or
/// that worktree ends up clean.
#[test]
fn rollback_of_a_branch_checked_out_in_another_worktree_keeps_it_consistent() {
    let repo = five_runs();
    let wt_dir = tempfile::Builder::new().prefix("am-wt-").tempdir().unwrap();
    let wt = wt_dir.path().join("review");
    repo.git([
        "worktree".as_ref(),
        "add".as_ref(),
        "-q".as_ref(),
        "-b".as_ref(),
        "review".as_ref(),
        wt.as_os_str(),
    ]);
    // The batch is made inside the linked worktree, where review is checked out.
    repo.run(repo.cli_command_in(&wt), ["apply"]).expect_code(0);
    let batch = repo.rev("review");
    let wt_status = |repo: &TestRepo| {
        let out = repo
            .git_command()
            .current_dir(&wt)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        assert!(out.status.success(), "git status in {}", wt.display());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        wt_status(&repo),
        "",
        "apply inside the worktree left it clean"
    );
    let wt_files = blobs_at(&repo, &batch, &five_paths());

    // Rolled back from the main worktree.
    let run = repo.cli(["rollback", "--branch", "review"]);
    match run.code {
        3 => {
            assert_eq!(repo.rev("review"), batch, "{run}");
            for (p, bytes) in &wt_files {
                assert_eq!(&fs::read(wt.join(p)).unwrap(), bytes, "{p}");
            }
        }
        0 => {
            assert_eq!(
                wt_status(&repo),
                "",
                "the rollback moved review but left the worktree at {} behind:\n{run}",
                wt.display()
            );
        }
        _ => panic!("unexpected exit:\n{run}"),
    }
}

/// The advice names only the later batches that still need rolling back: a later batch
/// that was already rolled back cannot be rolled back again (that would be refused), so
/// naming it sends the user in a circle.
#[test]
fn the_advice_skips_later_batches_already_rolled_back() {
    let repo = five_runs();
    repo.cli(["apply", "--to", "1.1.0"]).expect_code(0);
    let first = repo.head();
    repo.cli(["apply"]).expect_code(0);
    let second = repo.head();
    repo.cli(["rollback"]).expect_code(0);
    repo.cli(["apply"]).expect_code(0);
    let third = repo.head();

    let msg = refused(&repo, &[&first]);
    let advice = msg
        .lines()
        .find(|l| l.starts_with("roll back these batches first"))
        .unwrap_or_else(|| panic!("no advice in:\n{msg}"));
    assert_eq!(
        advice,
        format!(
            "roll back these batches first, newest first: {}",
            short(&third)
        ),
        "{} was already rolled back:\n{msg}",
        short(&second)
    );
    // Following the advice works.
    rollback_json(&repo, &[&third]);
    let r = rollback_json(&repo, &[&first]);
    assert_eq!(r["reverted"], first.as_str());
    assert_eq!(tree(&repo, "HEAD"), tree(&repo, &format!("{first}^")));
}
