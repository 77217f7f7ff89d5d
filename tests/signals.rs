//! SIGINT and SIGTERM during `apply`, `rollback`, `repair` and the recovery of an
//! interrupted run (issue 14): the command stops at its next safe point, never in a write.
//! It keeps every SIGKILL guarantee (HEAD the old commit or the whole new one, every file
//! whole, `git fsck --strict` clean), leaves no temporary file and no `index.lock`, says on
//! stderr which side of the ref move it stopped on, and ends by the signal (a shell sees
//! 130 or 143). The next command finishes what is left.
//!
//! Each test starts the real binary with `ARTIFACT_MIGRATE_FAULT=<point>` (debug builds
//! stop there, see src/fault.rs), waits for `fault-point: <point>` on stderr, and sends a
//! real signal with kill(1).

mod common;
mod common_audit;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use common::TestRepo;
use common_audit::*;

fn signal_number(name: &str) -> i32 {
    match name {
        "INT" => 2,
        "TERM" => 15,
        _ => panic!("no such signal in these tests: {name}"),
    }
}

fn signal_at(op: Op, point: &str, signal: &str, left: Left) {
    let s = scenario(op);
    let v = &s.victim;
    let mut env = vec![("ARTIFACT_MIGRATE_FAULT", point)];
    if point.starts_with("files:") {
        env.push(("RAYON_NUM_THREADS", "1"));
    }
    let mut child = spawn(v, &env, &[op.cmd()]);
    child.expect_line(&format!("fault-point: {point}"));
    child.send(signal);
    let (run, status) = child.finish_status();
    assert_eq!(
        status.signal(),
        Some(signal_number(signal)),
        "ended by the signal:\n{run}"
    );
    assert!(!run.stderr.contains("panicked"), "{run}");
    let sig = format!("SIG{signal}");
    let errors: Vec<&str> = run
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("error:"))
        .collect();
    match left {
        Left::Nothing => assert_eq!(
            errors,
            vec![format!(
                "error: interrupted by {sig}: nothing was committed, the repository is as it was"
            )],
            "{run}"
        ),
        Left::Landed { .. } => assert_eq!(
            errors,
            vec![format!(
                "error: interrupted by {sig}: stopped after {} landed on refs/heads/main, before the working tree was up to date; run any artifact-migrate command to finish updating it",
                short(&s.new)
            )],
            "{run}"
        ),
        Left::Finished => {
            assert_eq!(errors, Vec::<&str>::new(), "{run}");
            assert!(run.stdout.starts_with("committed "), "{run}");
        }
    }

    // What it left: the SIGKILL guarantees, and no litter; then the next command.
    s.assert_left(left, &format!("{op:?} stopped by SIG{signal} at {point}"));
    s.assert_next_command_finishes(op, left);
}

macro_rules! signal_tests {
    ($($name:ident: $op:expr, $point:expr, $signal:expr, $left:expr;)*) => {
        $(
            #[test]
            fn $name() {
                signal_at($op, $point, $signal, $left);
            }
        )*
    };
}

use Left::*;
use Op::*;

signal_tests! {
    apply_sigint_after_objects: Apply, "after-objects", "INT", Nothing;
    apply_sigterm_after_journal: Apply, "after-journal", "TERM", Nothing;
    apply_sigint_before_cas: Apply, "before-cas", "INT", Nothing;
    apply_sigterm_after_cas: Apply, "after-cas", "TERM", Landed { new_files: 0 };
    apply_sigint_before_file_3: Apply, "files:3", "INT", Landed { new_files: 2 };
    apply_sigterm_before_index: Apply, "before-index", "TERM", Landed { new_files: 5 };
    apply_sigint_after_index: Apply, "after-index", "INT", Finished;
    rollback_sigterm_after_objects: Rollback, "after-objects", "TERM", Nothing;
    rollback_sigint_before_cas: Rollback, "before-cas", "INT", Nothing;
    rollback_sigint_after_cas: Rollback, "after-cas", "INT", Landed { new_files: 0 };
    rollback_sigterm_before_file_2: Rollback, "files:2", "TERM", Landed { new_files: 1 };
    rollback_sigint_before_index: Rollback, "before-index", "INT", Landed { new_files: 5 };
}

/// `repair --accept` stopped before its ref move commits nothing; the same command then
/// succeeds.
#[test]
fn repair_sigint_before_cas() {
    let v = five_runs();
    let old = v.head();
    let args = ["repair", "--accept", "1.1.0->1.2.0"];
    let mut child = spawn(&v, &[("ARTIFACT_MIGRATE_FAULT", "before-cas")], &args);
    child.expect_line("fault-point: before-cas");
    child.send("INT");
    let (run, status) = child.finish_status();
    assert_eq!(status.signal(), Some(2), "{run}");
    assert!(
        run.stderr.contains(
            "error: interrupted by SIGINT: nothing was committed, the repository is as it was"
        ),
        "{run}"
    );
    assert_eq!(v.head(), old);
    assert_fsck_clean(&v);
    assert_eq!(journal_files(&v), Vec::<String>::new());
    assert_eq!(stray_git_tmp_files(&v), Vec::<String>::new());
    v.cli(args).expect_code(0);
    assert_eq!(v.rev("HEAD^"), old);
}

/// The recovery that any command runs first is guarded too: a SIGTERM while `status`
/// finishes an interrupted apply stops it between files, and the command after finishes.
#[test]
fn a_recovery_stopped_by_sigterm_is_finished_by_the_next_command() {
    let s = scenario(Op::Apply);
    let v = &s.victim;
    let mut child = spawn(v, &[("ARTIFACT_MIGRATE_FAULT", "after-cas")], &["apply"]);
    child.expect_line("fault-point: after-cas");
    child.kill();
    let mut rec = spawn(
        v,
        &[
            ("ARTIFACT_MIGRATE_FAULT", "files:3"),
            ("RAYON_NUM_THREADS", "1"),
        ],
        &["status"],
    );
    rec.expect_line("fault-point: files:3");
    rec.send("TERM");
    let (run, status) = rec.finish_status();
    assert_eq!(status.signal(), Some(15), "{run}");
    assert!(
        run.stderr
            .contains("error: interrupted by SIGTERM: stopped after the commit landed"),
        "{run}"
    );
    assert_eq!(s.assert_files_whole(), 2);
    assert_eq!(lock_files(v), Vec::<PathBuf>::new());
    assert_eq!(stray_tmp_files(v), Vec::<String>::new());
    let next = v.cli(["status"]);
    next.expect_code(0);
    assert!(
        next.stderr.contains(&format!(
            "note: finished the interrupted apply of {}: updated 3 working-tree file(s)",
            short(&s.new)
        )),
        "{next}"
    );
    s.assert_like_reference();
}

/// `merge-driver run` (what git calls during a merge) stopped by SIGINT or SIGTERM while it
/// writes the merged file: `%A` keeps its bytes, no temporary file is left beside it, the
/// process ends by the signal (git then treats the file as conflicted), and the same call
/// merges once nothing interrupts it.
#[test]
fn merge_driver_stopped_before_its_rename_leaves_ours_whole() {
    for signal in ["INT", "TERM"] {
        let repo = TestRepo::new();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = |n: &str| dir.path().join(n);
        let ours = r#"{"a": 2, "b": 1}"#;
        for (name, bytes) in [
            ("o", r#"{"a": 1, "b": 1}"#),
            ("a", ours),
            ("b", r#"{"a": 1, "b": 2}"#),
        ] {
            std::fs::write(file(name), bytes).expect("write a side");
        }
        let sides: Vec<String> = ["o", "a", "b"]
            .iter()
            .map(|n| file(n).display().to_string())
            .collect();
        let args = ["merge-driver", "run", &sides[0], &sides[1], &sides[2]];
        let point = "merge-before-rename";
        let mut child = spawn(&repo, &[("ARTIFACT_MIGRATE_FAULT", point)], &args);
        child.expect_line(&format!("fault-point: {point}"));
        child.send(signal);
        let (run, status) = child.finish_status();
        assert_eq!(status.signal(), Some(signal_number(signal)), "{run}");
        assert!(!run.stderr.contains("panicked"), "{run}");
        assert!(
            run.stderr.contains(&format!("interrupted by SIG{signal}"))
                && run.stderr.contains("was left as it was"),
            "{run}"
        );
        assert_eq!(std::fs::read_to_string(file("a")).expect("%A"), ours);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list the directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 3, "a temporary file was left: {left:?}");
        repo.cli(args).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(file("a")).expect("%A"),
            r#"{"a": 2, "b": 2}"#
        );
    }
}
