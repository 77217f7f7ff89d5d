//! Concurrent runs (SPEC §7): the compare-and-swap on the branch makes two runs on one
//! repository safe without a lock file. One commits, the other exits 3 ("branch moved during
//! migration") having changed nothing; a user's plain `git commit` made while `apply` runs is
//! never lost.
//!
//! Debug builds honour `ARTIFACT_MIGRATE_PAUSE=before-cas:<file>`: the process prints
//! `paused: before-cas` and waits until the file exists. The tests read stderr until every
//! process is paused there (no sleeps), then create the file.

mod common;
mod common_audit;

use std::fs;
use std::path::PathBuf;

use common::*;
use common_audit::*;

const EPOCH_LATER: &str = "1767225660";

fn release_file(repo: &TestRepo, name: &str) -> (PathBuf, String) {
    let file = repo.home().join(name);
    let pause = format!("before-cas:{}", file.display());
    (file, pause)
}

/// Starts `apply --json` with `epoch` paused at before-cas on `pause`.
fn paused_apply(repo: &TestRepo, epoch: &str, pause: &str) -> Spawned {
    let mut p = spawn(
        repo,
        &[
            ("SOURCE_DATE_EPOCH", epoch),
            ("ARTIFACT_MIGRATE_PAUSE", pause),
        ],
        &["apply", "--json"],
    );
    p.expect_line("paused: before-cas");
    p
}

/// Two applies (with these epochs) lined up at before-cas, then released together.
/// Checks that exactly one committed, and that the repository is exactly what that one run
/// alone makes (the loser changed nothing).
fn two_applies(epoch_a: &str, epoch_b: &str) {
    let repo = five_runs();
    let old = repo.head();
    let pristine = repo.copy();
    let (release, pause) = release_file(&repo, "go");
    let a = paused_apply(&repo, epoch_a, &pause);
    let b = paused_apply(&repo, epoch_b, &pause);
    // Both processes have written their journals and neither touched the other's.
    assert!(!journal_files(&repo).is_empty());
    assert_eq!(repo.head(), old);
    fs::write(&release, "").unwrap();
    let runs = [a.finish(), b.finish()];
    let epochs = [epoch_a, epoch_b];

    let winners: Vec<usize> = (0..2).filter(|&i| runs[i].code == 0).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one apply must commit:\n{}\n{}",
        runs[0],
        runs[1]
    );
    let (w, l) = (winners[0], 1 - winners[0]);
    let (winner, loser) = (&runs[w], &runs[l]);
    winner.expect_code(0);
    loser.expect_code(3);
    let err = loser.json();
    assert_eq!(err["error"]["kind"], "refused", "{loser}");
    let msg = error_message(loser);
    assert!(
        msg.contains("branch moved during migration")
            && msg.contains("refs/heads/main")
            && msg.contains(&old),
        "{loser}"
    );
    for r in &runs {
        assert!(!r.stderr.contains("note:"), "{r}");
    }
    let commit = winner.json()["commit"].as_str().unwrap().to_string();
    assert_eq!(winner.json()["migrated"], 5);
    assert_eq!(repo.head(), commit);
    assert_eq!(repo.rev(&format!("{commit}^")), old);
    assert_eq!(repo.commit_count("HEAD"), 2);

    // The loser changed nothing: the repository is what the winner alone makes.
    let reference = pristine;
    let alone = cli_env(
        &reference,
        &[("SOURCE_DATE_EPOCH", epochs[w])],
        ["apply", "--json"],
    );
    alone.expect_code(0);
    assert_eq!(alone.json()["commit"], commit.as_str());
    assert_eq!(repo.refs(), reference.refs());
    assert_eq!(index_entries(&repo), index_entries(&reference));
    assert_eq!(repo.worktree_snapshot(), reference.worktree_snapshot());
    assert_eq!(repo.porcelain(), "");
    assert_eq!(lock_files(&repo), Vec::<PathBuf>::new());
    assert!(!repo.git_dir().join("index.lock").exists());
    assert!(!repo.git_dir().join("refs/heads/main.lock").exists());
    assert_eq!(stray_tmp_files(&repo), Vec::<String>::new());
    assert_fsck_clean(&repo);

    // The next command finds no journal to finish.
    let status = repo.cli(["status"]);
    status.expect_code(0);
    assert!(!status.stderr.contains("note:"), "{status}");
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    repo.cli(["verify"]).expect_code(0);
    // The loser's objects may remain (unreachable), but nothing points at them.
    let other_epoch = epochs[l];
    if other_epoch != epochs[w] {
        assert_eq!(
            repo.git(["log", "--all", "--format=%H"]).lines().count(),
            2,
            "only the winner's commit is reachable"
        );
    }
}

#[test]
fn two_applies_with_different_dates_exactly_one_commits() {
    two_applies(EPOCH, EPOCH_LATER);
}

/// The same inputs, identity and epoch make the same commit id in both runs; the second
/// compare-and-swap still finds the branch moved and must refuse.
#[test]
fn two_applies_making_the_same_commit_exactly_one_commits() {
    two_applies(EPOCH, EPOCH);
}

/// An apply racing a user's plain `git commit` on the same branch: the user's commit is
/// never lost, apply refuses having changed nothing, and a re-run migrates on top of it.
#[test]
fn apply_racing_a_plain_git_commit_never_loses_it() {
    let repo = five_runs();
    let old = repo.head();
    let before = repo.worktree_snapshot();
    let (release, pause) = release_file(&repo, "go");
    let apply = paused_apply(&repo, EPOCH, &pause);

    repo.file("notes/user.txt", "the user's own work\n");
    repo.git(["add", "notes/user.txt"]);
    repo.git(["commit", "-q", "--no-verify", "-m", "user: add notes"]);
    let user = repo.head();
    assert_ne!(user, old);
    let index_after_user = index_entries(&repo);

    fs::write(&release, "").unwrap();
    let run = apply.finish();
    run.expect_code(3);
    assert!(
        error_message(&run).contains("branch moved during migration"),
        "{run}"
    );
    assert_eq!(repo.head(), user, "the user's commit was lost");
    assert_eq!(repo.rev("main"), user);
    assert_eq!(
        repo.show("HEAD", "notes/user.txt"),
        b"the user's own work\n"
    );
    // Nothing else changed: the manifests are the committed ones, the index is the user's.
    let mut expected = before;
    expected.insert(
        "notes/user.txt".to_string(),
        b"the user's own work\n".to_vec(),
    );
    assert_eq!(repo.worktree_snapshot(), expected);
    assert_eq!(index_entries(&repo), index_after_user);
    assert_eq!(repo.porcelain(), "");
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    assert_eq!(lock_files(&repo), Vec::<PathBuf>::new());

    // A re-run migrates on top of the user's commit.
    let again = repo.cli(["apply", "--json"]);
    again.expect_code(0);
    assert!(!again.stderr.contains("note:"), "{again}");
    assert_eq!(again.json()["migrated"], 5);
    assert_eq!(repo.rev("HEAD^"), user);
    assert_eq!(repo.changed_paths("HEAD^", "HEAD"), five_paths());
    assert_eq!(
        repo.show("HEAD", "notes/user.txt"),
        b"the user's own work\n"
    );
    for p in five_paths() {
        let doc = repo.show_json("HEAD", &p);
        assert_eq!(doc["schema_version"], "1.2.0", "{p}");
        assert_eq!(last_history(&doc)["base_commit"], user.as_str(), "{p}");
    }
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
    repo.cli(["verify"]).expect_code(0);
}

/// A rollback racing a user's plain `git commit` refuses the same way and loses nothing.
#[test]
fn rollback_racing_a_plain_git_commit_never_loses_it() {
    let repo = five_runs();
    repo.cli(["apply"]).expect_code(0);
    let batch = repo.head();
    let before = repo.worktree_snapshot();
    let (release, pause) = release_file(&repo, "go");
    let mut rollback = spawn(&repo, &[("ARTIFACT_MIGRATE_PAUSE", &pause)], &["rollback"]);
    rollback.expect_line("paused: before-cas");
    repo.file("notes/user.txt", "mine\n");
    repo.git(["add", "notes/user.txt"]);
    repo.git(["commit", "-q", "--no-verify", "-m", "user: add notes"]);
    let user = repo.head();
    fs::write(&release, "").unwrap();
    let run = rollback.finish();
    run.expect_code(3);
    assert!(
        run.stderr.contains("branch moved during migration"),
        "{run}"
    );
    assert_eq!(repo.head(), user);
    assert_eq!(repo.rev("HEAD^"), batch);
    let mut expected = before;
    expected.insert("notes/user.txt".to_string(), b"mine\n".to_vec());
    assert_eq!(repo.worktree_snapshot(), expected);
    assert_eq!(repo.porcelain(), "");
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    // Rolled back again, it reverts the batch on top of the user's commit.
    repo.cli(["rollback"]).expect_code(0);
    assert_eq!(repo.rev("HEAD^"), user);
    assert_eq!(repo.changed_paths("HEAD^", "HEAD"), five_paths());
    assert_eq!(repo.show("HEAD", "notes/user.txt"), b"mine\n");
    repo.cli(["verify"]).expect_code(0);
}

/// Two identical applies (same epoch, same identity: the same commit id, which is also
/// what two runs started within the same second make). The winner is killed while it
/// updates the working tree, after the loser gave up. The loser must not remove the
/// winner's journal: the next command must still finish the winner's working-tree update.
#[test]
fn the_loser_of_a_race_does_not_take_the_winners_journal_with_it() {
    let repo = five_runs();
    let old = repo.head();
    let (release_a, pause_a) = release_file(&repo, "go-a");
    let (release_b, pause_b) = release_file(&repo, "go-b");
    // A: paused at before-cas, then hangs right after its ref move.
    let mut a = spawn(
        &repo,
        &[
            ("ARTIFACT_MIGRATE_PAUSE", &pause_a),
            ("ARTIFACT_MIGRATE_FAULT", "after-cas"),
        ],
        &["apply"],
    );
    a.expect_line("paused: before-cas");
    let b = paused_apply(&repo, EPOCH, &pause_b);
    fs::write(&release_a, "").unwrap();
    a.expect_line("fault-point: after-cas");
    let new = repo.head();
    assert_ne!(new, old);
    fs::write(&release_b, "").unwrap();
    let lost = b.finish();
    lost.expect_code(3);
    a.kill();

    assert_eq!(repo.head(), new);
    let status = repo.cli(["status"]);
    status.expect_code(0);
    assert!(
        status.stderr.contains(&format!(
            "note: finished the interrupted apply of {}: updated 5 working-tree file(s)",
            short(&new)
        )),
        "the winner's interrupted update was not finished (journals: {:?}):\n{status}\n{}",
        journal_files(&repo),
        repo.porcelain()
    );
    assert_eq!(repo.porcelain(), "");
    assert_eq!(journal_files(&repo), Vec::<String>::new());
    repo.cli(["verify"]).expect_code(0);
}

/// A user's `git add` made after the batch landed, while `apply` is still bringing the
/// working tree up to date: apply writes the index under git's `index.lock`, replaying its
/// own entries on the index as it is then, so the user's staged file stays staged. (It
/// wrote back the index it had read before the files, which unstaged the user's file.)
#[test]
fn a_git_add_during_the_working_tree_update_stays_staged() {
    let repo = five_runs();
    let go = repo.home().join("go");
    let pause = format!("files:3:{}", go.display());
    let mut apply = spawn(
        &repo,
        &[
            ("ARTIFACT_MIGRATE_PAUSE", &pause),
            ("RAYON_NUM_THREADS", "1"),
        ],
        &["apply", "--json"],
    );
    apply.expect_line("paused: files:3");
    let batch = repo.head();
    repo.file("notes/user.txt", "the user's own work\n");
    repo.git(["add", "notes/user.txt"]);
    fs::write(&go, "").unwrap();
    let run = apply.finish();
    run.expect_code(0);
    assert_eq!(repo.head(), batch);
    assert_eq!(
        repo.porcelain(),
        "A  notes/user.txt\n",
        "only the user's file is staged"
    );
    assert_eq!(lock_files(&repo), Vec::<PathBuf>::new());
    repo.git(["commit", "-q", "--no-verify", "-m", "user: add notes"]);
    assert_eq!(repo.changed_paths("HEAD^", "HEAD"), ["notes/user.txt"]);
    assert_eq!(repo.porcelain(), "");
    assert_fsck_clean(&repo);
    repo.cli(["verify"]).expect_code(0);
}
