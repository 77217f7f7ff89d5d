//! Crash safety (SPEC §7): a SIGKILL at any point of `apply` or `rollback` leaves HEAD at
//! the old commit or the whole new one, `git fsck --strict` clean and every manifest on disk
//! whole (the old or the new blob); the next command finishes the interrupted work and says
//! so; afterwards the repository is exactly what an uninterrupted run makes (same HEAD, same
//! tree, same working tree, same index, a clean `git status`).
//!
//! Debug builds honour `ARTIFACT_MIGRATE_FAULT=<point>`: the process prints
//! `fault-point: <point>` on stderr and hangs there; the test reads stderr line by line until
//! it sees that line (no sleeps), then kills the process with SIGKILL and reaps it.
//! `files:K` points run with `RAYON_NUM_THREADS=1` so that exactly K-1 files were replaced.

mod common;
mod common_audit;

use common::*;
use common_audit::*;

/// Exactly one journal is waiting in `.git/artifact-migrate/`, and it names `commit`.
#[track_caller]
fn assert_one_journal_for(repo: &TestRepo, commit: &str) {
    let j = journal_files(repo);
    assert!(
        j.len() == 1 && j[0].starts_with(&format!("journal-{commit}")) && j[0].ends_with(".json"),
        "expected one journal for {commit}: {j:?}"
    );
}

/// What the kill at a point must have left.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Landed {
    /// The branch never moved and no journal was written yet.
    NoJournal,
    /// The branch never moved; a journal says it might have.
    NotYet,
    /// The branch moved; `n` files were already new on disk.
    Moved { new_files: usize },
}

fn crash_at(op: Op, point: &str, landed: Landed, threads: Option<&str>) {
    let s = scenario(op);
    let v = &s.victim;
    let mut env = vec![("ARTIFACT_MIGRATE_FAULT", point)];
    if let Some(t) = threads {
        env.push(("RAYON_NUM_THREADS", t));
    }
    let mut child = spawn(v, &env, &[op.cmd()]);
    child.expect_line(&format!("fault-point: {point}"));
    child.kill();

    // What the kill left.
    let moved = matches!(landed, Landed::Moved { .. });
    assert_eq!(
        v.head(),
        *if moved { &s.new } else { &s.old },
        "HEAD after a kill at {point}"
    );
    assert_eq!(v.rev("main"), v.head());
    assert_fsck_clean(v);
    let new_on_disk = s.assert_files_whole();
    match landed {
        Landed::Moved { new_files } => {
            assert_eq!(new_on_disk, new_files, "files already replaced at {point}")
        }
        _ => assert_eq!(new_on_disk, 0, "no file may change before the branch moved"),
    }
    match landed {
        Landed::NoJournal => assert_eq!(journal_files(v), Vec::<String>::new()),
        _ => assert_one_journal_for(v, &s.new),
    }
    assert_eq!(lock_files(v), Vec::<std::path::PathBuf>::new());

    // The next command notices and finishes the work, and says so.
    let status = v.cli(["status"]);
    status.expect_code(0);
    let notes: Vec<&str> = status
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("note:"))
        .collect();
    let op_name = op.cmd();
    match landed {
        Landed::NoJournal => assert_eq!(notes, Vec::<&str>::new(), "{status}"),
        Landed::NotYet => assert_eq!(
            notes,
            vec![format!(
                "note: an interrupted {op_name} never moved its branch: nothing to finish, the repository is as it was"
            )],
            "{status}"
        ),
        Landed::Moved { new_files } => assert_eq!(
            notes,
            vec![format!(
                "note: finished the interrupted {op_name} of {}: updated {} working-tree file(s)",
                short(&s.new),
                s.old_blobs.len() - new_files
            )],
            "{status}"
        ),
    }
    assert_eq!(journal_files(v), Vec::<String>::new(), "{status}");
    assert_eq!(v.porcelain(), "", "git status after the recovery");
    if moved {
        assert_eq!(s.assert_files_whole(), s.old_blobs.len());
        // Nothing left to do: a second command says nothing more.
        let again = v.cli(["status"]);
        again.expect_code(0);
        assert!(!again.stderr.contains("note:"), "{again}");
    } else {
        // The repository is as it was: the same operation runs again, from scratch.
        assert_eq!(v.head(), s.old);
        assert_eq!(s.assert_files_whole(), 0);
        let rerun = v.cli([op_name]);
        rerun.expect_code(0);
        assert!(!rerun.stderr.contains("note:"), "{rerun}");
    }
    s.assert_like_reference();
}

macro_rules! crash_tests {
    ($($name:ident: $op:expr, $point:expr, $landed:expr, $threads:expr;)*) => {
        $(
            #[test]
            fn $name() {
                crash_at($op, $point, $landed, $threads);
            }
        )*
    };
}

use Landed::*;
use Op::*;

crash_tests! {
    apply_killed_after_objects: Apply, "after-objects", NoJournal, None;
    apply_killed_after_journal: Apply, "after-journal", NotYet, None;
    apply_killed_before_cas: Apply, "before-cas", NotYet, None;
    apply_killed_after_cas: Apply, "after-cas", Moved { new_files: 0 }, None;
    apply_killed_before_file_1: Apply, "files:1", Moved { new_files: 0 }, Some("1");
    apply_killed_before_file_2: Apply, "files:2", Moved { new_files: 1 }, Some("1");
    apply_killed_before_file_3: Apply, "files:3", Moved { new_files: 2 }, Some("1");
    apply_killed_before_file_4: Apply, "files:4", Moved { new_files: 3 }, Some("1");
    apply_killed_before_file_5: Apply, "files:5", Moved { new_files: 4 }, Some("1");
    apply_killed_before_index: Apply, "before-index", Moved { new_files: 5 }, None;
    apply_killed_after_index: Apply, "after-index", Moved { new_files: 5 }, None;
    rollback_killed_after_objects: Rollback, "after-objects", NoJournal, None;
    rollback_killed_after_journal: Rollback, "after-journal", NotYet, None;
    rollback_killed_before_cas: Rollback, "before-cas", NotYet, None;
    rollback_killed_after_cas: Rollback, "after-cas", Moved { new_files: 0 }, None;
    rollback_killed_before_file_1: Rollback, "files:1", Moved { new_files: 0 }, Some("1");
    rollback_killed_before_file_2: Rollback, "files:2", Moved { new_files: 1 }, Some("1");
    rollback_killed_before_file_3: Rollback, "files:3", Moved { new_files: 2 }, Some("1");
    rollback_killed_before_file_4: Rollback, "files:4", Moved { new_files: 3 }, Some("1");
    rollback_killed_before_file_5: Rollback, "files:5", Moved { new_files: 4 }, Some("1");
    rollback_killed_before_index: Rollback, "before-index", Moved { new_files: 5 }, None;
    rollback_killed_after_index: Rollback, "after-index", Moved { new_files: 5 }, None;
}

/// With the default thread pool, a kill among the file replacements still leaves only whole
/// files (some new, some old), and the next command finishes the rest.
#[test]
fn apply_killed_among_parallel_file_writes() {
    let s = scenario(Op::Apply);
    let v = &s.victim;
    let mut child = spawn(v, &[("ARTIFACT_MIGRATE_FAULT", "files:3")], &["apply"]);
    child.expect_line("fault-point: files:3");
    child.kill();
    assert_eq!(v.head(), s.new);
    assert_fsck_clean(v);
    let new = s.assert_files_whole();
    assert!(new < s.old_blobs.len(), "the 3rd file was not written yet");
    let status = v.cli(["status"]);
    status.expect_code(0);
    assert!(
        status.stderr.contains(&format!(
            "note: finished the interrupted apply of {}: updated {} working-tree file(s)",
            short(&s.new),
            s.old_blobs.len() - new
        )),
        "{status}"
    );
    s.assert_like_reference();
}

/// The recovery is itself crash-safe: killed half-way through finishing an interrupted
/// apply, the command after it finishes the rest.
#[test]
fn a_recovery_killed_half_way_is_finished_by_the_next_command() {
    let s = scenario(Op::Apply);
    let v = &s.victim;
    let mut child = spawn(v, &[("ARTIFACT_MIGRATE_FAULT", "after-cas")], &["apply"]);
    child.expect_line("fault-point: after-cas");
    child.kill();
    assert_eq!(v.head(), s.new);

    // The recovering `status` is killed before its 3rd file: two files are new.
    let mut rec = spawn(
        v,
        &[
            ("ARTIFACT_MIGRATE_FAULT", "files:3"),
            ("RAYON_NUM_THREADS", "1"),
        ],
        &["status"],
    );
    rec.expect_line("fault-point: files:3");
    rec.kill();
    assert_eq!(v.head(), s.new);
    assert_fsck_clean(v);
    assert_eq!(s.assert_files_whole(), 2);
    assert_one_journal_for(v, &s.new);

    let status = v.cli(["status"]);
    status.expect_code(0);
    assert!(
        status.stderr.contains(&format!(
            "note: finished the interrupted apply of {}: updated 3 working-tree file(s)",
            short(&s.new)
        )),
        "{status}"
    );
    s.assert_like_reference();
}

/// A second `apply` (not only `status`) is a command that finishes the interrupted one, and
/// then finds nothing left to migrate.
#[test]
fn the_next_apply_finishes_the_interrupted_one_and_has_nothing_to_do() {
    let s = scenario(Op::Apply);
    let v = &s.victim;
    let mut child = spawn(
        v,
        &[
            ("ARTIFACT_MIGRATE_FAULT", "files:2"),
            ("RAYON_NUM_THREADS", "1"),
        ],
        &["apply"],
    );
    child.expect_line("fault-point: files:2");
    child.kill();
    let again = v.cli(["apply"]);
    again.expect_code(0);
    assert!(
        again.stderr.contains(&format!(
            "note: finished the interrupted apply of {}: updated 4 working-tree file(s)",
            short(&s.new)
        )),
        "{again}"
    );
    assert!(again.stdout.contains("nothing to migrate"), "{again}");
    assert_eq!(v.commit_count("HEAD"), 2);
    s.assert_like_reference();
}

/// `apply --branch` never touches the working tree and writes no journal: killed after its
/// ref move, the branch holds the whole commit and the checked-out branch is as it was.
#[test]
fn apply_to_another_branch_killed_after_cas() {
    let v = five_runs();
    let reference = v.copy();
    let head = v.head();
    let tree_before = v.worktree_snapshot();
    let index_before = index_entries(&v);
    reference
        .cli(["apply", "--branch", "review"])
        .expect_code(0);
    let mut child = spawn(
        &v,
        &[("ARTIFACT_MIGRATE_FAULT", "after-cas")],
        &["apply", "--branch", "review"],
    );
    child.expect_line("fault-point: after-cas");
    child.kill();
    assert_eq!(v.rev("review"), reference.rev("review"));
    assert_eq!(v.head(), head);
    assert_eq!(journal_files(&v), Vec::<String>::new());
    assert_fsck_clean(&v);
    let status = v.cli(["status"]);
    status.expect_code(0);
    assert!(!status.stderr.contains("note:"), "{status}");
    assert_eq!(v.worktree_snapshot(), tree_before);
    assert_eq!(index_entries(&v), index_before);
    assert_eq!(v.porcelain(), "");
    v.cli(["verify", "review"]).expect_code(0);
}
