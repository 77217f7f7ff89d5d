//! File-system faults during `apply`, `rollback`, `repair`, `index` and the merge driver (issue 14): a full disk, an
//! unwritable file or directory, a read-only file system, each at a known moment.
//!
//! The repository lives on the test's own small tmpfs (8 MiB; root may mount one). The
//! command runs with `ARTIFACT_MIGRATE_PAUSE=<point>:<file>`: it stops at the point, the
//! test breaks the file system (fills it, `chattr +i` on a file or directory, remounts it
//! read-only), then lets it go on. What every fault must leave, checked with plain git:
//! HEAD at the old commit or the whole new one, `git fsck --strict` clean, every manifest
//! whole (the old or the new version), no lock file, no temporary file, and an error that
//! names the cause in the system's words and the path. Once the fault is gone, the next
//! command finishes the job, and the repository is exactly what an unbroken run makes.
//!
//! Without root (or without tmpfs or chattr) each test prints one `SKIPPED` line and returns.

mod common;
mod common_audit;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use common_audit::*;

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or prints the `SKIPPED` line and returns `None`.
    fn mount(test: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("am-tmpfs-")
            .tempdir()
            .expect("create a mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        eprintln!("SKIPPED: {test} not run: cannot mount a tmpfs (needs root): {why}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last page.
    fn fill(&self) {
        let mut f = fs::File::create(self.path().join("fill")).expect("create the filler");
        let block = vec![0u8; 1 << 16];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }

    fn unfill(&self) {
        fs::remove_file(self.path().join("fill")).expect("remove the filler");
    }

    fn remount(&self, mode: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// Sets or clears the immutable attribute (`chattr +i`), which even root cannot write past.
fn chattr(flag: &str, path: &Path) {
    let st = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("run chattr");
    assert!(st.success(), "chattr {flag} {} failed", path.display());
}

/// What breaks, and how it is mended afterwards.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The file system is full.
    Full,
    /// This path (relative to the work tree) is immutable.
    Immutable(&'static str),
    /// The file system is read-only.
    ReadOnly,
}

impl Fault {
    fn inject(self, fs: &Tmpfs, repo: &TestRepo) {
        match self {
            Fault::Full => fs.fill(),
            Fault::Immutable(rel) => chattr("+i", &resolve(repo, rel)),
            Fault::ReadOnly => fs.remount("ro"),
        }
    }

    fn mend(self, fs: &Tmpfs, repo: &TestRepo) {
        match self {
            Fault::Full => fs.unfill(),
            Fault::Immutable(rel) => chattr("-i", &resolve(repo, rel)),
            Fault::ReadOnly => fs.remount("rw"),
        }
    }

    /// How the system says it.
    fn cause(self) -> &'static str {
        match self {
            Fault::Full => "No space left on device",
            Fault::Immutable(_) => "Operation not permitted",
            Fault::ReadOnly => "Read-only file system",
        }
    }
}

fn resolve(repo: &TestRepo, rel: &str) -> PathBuf {
    match rel.strip_prefix(".git/") {
        Some(r) => repo.git_dir().join(r),
        None if rel == ".git" => repo.git_dir(),
        None => repo.path().join(rel),
    }
}

/// Runs `args`; with a point, pauses there, injects the fault, and lets it go on.
fn run_with(repo: &TestRepo, fs: &Tmpfs, fault: Fault, point: Option<&str>, args: &[&str]) -> Run {
    let Some(point) = point else {
        fault.inject(fs, repo);
        return cli_env(repo, &[("RAYON_NUM_THREADS", "1")], args);
    };
    let go = repo.home().join("go");
    let pause = format!("{point}:{}", go.display());
    let mut child = spawn(
        repo,
        &[
            ("ARTIFACT_MIGRATE_PAUSE", &pause),
            ("RAYON_NUM_THREADS", "1"),
        ],
        args,
    );
    child.expect_line(&format!("paused: {point}"));
    fault.inject(fs, repo);
    fs::write(&go, "").expect("let the command go on");
    child.finish()
}

/// One fault at one moment of `apply` or `rollback`, then the recovery.
fn fault_case(op: Op, fault: Fault, point: Option<&str>, left: Left, path_part: &str) {
    let name = format!("{op:?} with {fault:?} at {point:?}");
    let Some(tmpfs) = Tmpfs::mount(&name) else {
        return;
    };
    let s = scenario_of(op, five_runs_in(tmpfs.path()));
    let v = &s.victim;
    let run = run_with(v, &tmpfs, fault, point, &[op.cmd()]);

    // What the fault left.
    if left == Left::Finished {
        run.expect_code(0);
    } else {
        run.expect_code(2);
        // Only the error: the pause announcement is the test's own.
        let lines: Vec<&str> = run
            .stderr_lines()
            .into_iter()
            .filter(|l| !l.starts_with("paused: "))
            .collect();
        let err = lines.join("\n");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "one error line:\n{run}"
        );
        assert!(err.contains(fault.cause()), "{name}: the cause:\n{run}");
        assert!(
            err.contains(path_part),
            "{name}: the path {path_part}:\n{run}"
        );
        assert!(!err.contains("no error"), "{name}:\n{run}");
        assert_eq!(
            err.matches(fault.cause()).count(),
            1,
            "the cause said once:\n{run}"
        );
        if let Left::Landed { .. } = left {
            assert!(
                err.contains("run any artifact-migrate command to finish the update"),
                "{name}: what to do:\n{run}"
            );
        }
    }
    s.assert_left(left, &name);

    // The fault is gone: the next command finishes the job.
    fault.mend(&tmpfs, v);
    s.assert_next_command_finishes(op, left);
}

macro_rules! fault_tests {
    ($($name:ident: $op:expr, $fault:expr, $point:expr, $left:expr, $path:expr;)*) => {
        $(
            #[test]
            fn $name() {
                fault_case($op, $fault, $point, $left, $path);
            }
        )*
    };
}

use Fault::*;
use Left::*;
use Op::*;

const RUN_4SP: &str = "artifacts/job-x/run-4sp";

fault_tests! {
    // A full disk at every phase of apply: objects, journal, ref, files, index, the end.
    apply_disk_full_from_the_start: Apply, Full, None, Nothing, "objects/pack/tmp_pack_artifact-migrate-";
    apply_disk_full_after_the_objects: Apply, Full, Some("after-objects"), Nothing, ".git/artifact-migrate/journal-";
    apply_disk_full_before_the_ref_move: Apply, Full, Some("before-cas"), Nothing, "refs/heads/main";
    apply_disk_full_after_the_ref_move: Apply, Full, Some("after-cas"), Landed { new_files: 0 }, "manifest.json";
    apply_disk_full_before_the_third_file: Apply, Full, Some("files:3"), Landed { new_files: 2 }, "manifest.json";
    apply_disk_full_before_the_index: Apply, Full, Some("before-index"), Landed { new_files: 5 }, ".git/index";
    apply_disk_full_after_the_index: Apply, Full, Some("after-index"), Finished, "";
    rollback_disk_full_from_the_start: Rollback, Full, None, Nothing, "objects/pack/tmp_pack_artifact-migrate-";
    rollback_disk_full_before_the_ref_move: Rollback, Full, Some("before-cas"), Nothing, "refs/heads/main";
    rollback_disk_full_before_the_second_file: Rollback, Full, Some("files:2"), Landed { new_files: 1 }, "manifest.json";
    rollback_disk_full_before_the_index: Rollback, Full, Some("before-index"), Landed { new_files: 5 }, ".git/index";

    // Unwritable files and directories (chattr +i: root too is refused).
    apply_pack_directory_unwritable: Apply, Immutable(".git/objects/pack"), None, Nothing, "objects/pack/tmp_pack_artifact-migrate-";
    apply_journal_directory_unwritable: Apply, Immutable(".git/artifact-migrate"), Some("after-objects"), Nothing, ".git/artifact-migrate/journal-";
    apply_branch_directory_unwritable: Apply, Immutable(".git/refs/heads"), Some("before-cas"), Nothing, "refs/heads/main";
    apply_run_directory_unwritable: Apply, Immutable(RUN_4SP), None, Landed { new_files: 4 }, "artifacts/job-x/run-4sp/manifest.json";
    apply_manifest_unwritable: Apply, Immutable("artifacts/job-x/run-4sp/manifest.json"), None, Landed { new_files: 4 }, "artifacts/job-x/run-4sp/manifest.json";
    apply_git_directory_unwritable_at_the_index: Apply, Immutable(".git"), Some("before-index"), Landed { new_files: 5 }, ".git/index";
    rollback_run_directory_unwritable: Rollback, Immutable(RUN_4SP), None, Landed { new_files: 4 }, "artifacts/job-x/run-4sp/manifest.json";

    // A read-only file system.
    apply_read_only_from_the_start: Apply, ReadOnly, None, Nothing, "objects/pack/tmp_pack_artifact-migrate-";
    apply_read_only_after_the_ref_move: Apply, ReadOnly, Some("after-cas"), Landed { new_files: 0 }, "manifest.json";
    apply_read_only_before_the_index: Apply, ReadOnly, Some("before-index"), Landed { new_files: 5 }, ".git/index";
    rollback_read_only_after_the_ref_move: Rollback, ReadOnly, Some("after-cas"), Landed { new_files: 0 }, "manifest.json";
}

/// `repair --accept` writes a commit and moves the branch (no file of the working tree):
/// a fault before or at the ref move leaves the branch where it was, the error says why, and
/// the same command succeeds once the fault is gone.
fn repair_case(fault: Fault, point: Option<&str>, path_part: &str) {
    let name = format!("repair with {fault:?} at {point:?}");
    let Some(tmpfs) = Tmpfs::mount(&name) else {
        return;
    };
    let v = five_runs_in(tmpfs.path());
    let args = ["repair", "--accept", "1.1.0->1.2.0"];
    let reference = v.copy();
    reference.cli(args).expect_code(0);
    let old = v.head();
    let run = run_with(&v, &tmpfs, fault, point, &args);
    run.expect_code(2);
    assert!(run.stderr.contains(fault.cause()), "{name}:\n{run}");
    assert!(run.stderr.contains(path_part), "{name}:\n{run}");
    assert_eq!(v.head(), old, "{name}: HEAD");
    assert_fsck_clean(&v);
    assert_eq!(lock_files(&v), Vec::<PathBuf>::new());
    assert_eq!(stray_git_tmp_files(&v), Vec::<String>::new());
    fault.mend(&tmpfs, &v);
    // A journal a read-only disk kept says the branch never moved; the next command says so.
    v.cli(args).expect_code(0);
    assert_eq!(journal_files(&v), Vec::<String>::new());
    assert_eq!(v.head(), reference.head());
    assert_eq!(v.porcelain(), "");
    assert_fsck_clean(&v);
}

#[test]
fn repair_disk_full_from_the_start() {
    repair_case(Full, None, "objects/pack/tmp_pack_artifact-migrate-");
}

#[test]
fn repair_read_only_before_the_ref_move() {
    repair_case(ReadOnly, Some("before-cas"), "refs/heads/main");
}

#[test]
fn repair_branch_directory_unwritable() {
    repair_case(Immutable(".git/refs/heads"), None, "refs/heads/main");
}

/// The report that started issue 14: a full disk while a large index is written made
/// libgit2 say `no error: no error`. The index here is well past libgit2's write buffer.
#[test]
fn a_full_disk_while_writing_a_large_index_names_the_cause() {
    let Some(tmpfs) = Tmpfs::mount("a_full_disk_while_writing_a_large_index_names_the_cause")
    else {
        return;
    };
    let v = five_runs_in(tmpfs.path());
    for i in 0..300 {
        v.file(&format!("{RUN_4SP}/outputs/part-{i:03}.txt"), "x\n");
    }
    v.commit("many outputs");
    let run = run_with(&v, &tmpfs, Full, Some("before-index"), &["apply"]);
    run.expect_code(2);
    let index = v.git_dir().join("index");
    assert_eq!(
        run.stderr_lines().last().copied().unwrap_or_default(),
        format!(
            "error: apply committed {} on refs/heads/main, but updating the working tree failed; fix the cause below, then run any artifact-migrate command to finish the update: cannot write {}: No space left on device (os error 28)",
            short(&v.head()),
            index.display()
        ),
        "{run}"
    );
    tmpfs.unfill();
    let status = v.cli(["status"]);
    status.expect_code(0);
    assert!(
        status
            .stderr
            .contains("note: finished the interrupted apply"),
        "{status}"
    );
    assert_eq!(v.porcelain(), "");
    assert_fsck_clean(&v);
}

// The index (issue 14, round 2). The index is a cache of the files (SPEC §4.5): a fault
// while it is brought up to date leaves the last one it committed, whole and readable, an
// error names the cause in the system's words and the database file, and the next `index`
// finishes the job. `sqlite3` is the referee of what the database holds.

/// What `sqlite3` reads from the index: its commit, then one line per run.
fn index_rows(repo: &TestRepo) -> Option<String> {
    let db = repo.git_dir().join("artifact-migrate/index.sqlite");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(
            "PRAGMA integrity_check; SELECT \"commit\" FROM index_state; \
             SELECT job_id, run_id, schema_version, path, blob_id FROM run_index ORDER BY 1, 2;",
        )
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "sqlite3 reads {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An index of the five runs at their 1.1.0 commit, and the applied batch above it
/// (`index.update_after_commit` had no index to update).
fn indexed_one_batch_behind(parent: &Path) -> TestRepo {
    let v = five_runs_in(parent);
    v.cli(["apply"]).expect_code(0);
    v.cli(["index", "--rev", "HEAD~1"]).expect_code(0);
    v
}

fn index_fault_case(fault: Fault, point: Option<&str>, args: &[&str]) {
    let name = format!("{args:?} with {fault:?} at {point:?}");
    let Some(tmpfs) = Tmpfs::mount(&name) else {
        return;
    };
    if Command::new("sqlite3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: {name} not run: the sqlite3 client is not installed");
        return;
    }
    let v = indexed_one_batch_behind(tmpfs.path());
    let head = v.head();
    let before = index_rows(&v).expect("sqlite3 ran");
    let run = run_with(&v, &tmpfs, fault, point, args);
    run.expect_code(2);
    let lines: Vec<&str> = run
        .stderr_lines()
        .into_iter()
        .filter(|l| !l.starts_with("paused: "))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{name}: one error line:\n{run}"
    );
    let err = lines[0];
    assert!(err.contains(fault.cause()), "{name}: the cause:\n{run}");
    assert!(err.contains("index.sqlite"), "{name}: the database:\n{run}");
    assert!(!err.contains("disk I/O error:"), "{name}:\n{run}");
    // What the index committed last is still there, whole; the repository is untouched.
    fault.mend(&tmpfs, &v);
    assert_eq!(index_rows(&v).as_deref(), Some(before.as_str()), "{name}");
    assert_eq!(v.head(), head, "{name}: HEAD");
    assert_eq!(v.porcelain(), "", "{name}");
    // The next `index` finishes the job, and equals an index built from nothing.
    let done = v.cli(["index", "--json"]);
    done.expect_code(0);
    let report = done.json();
    assert_eq!(report["commit"], head.as_str(), "{name}: {done}");
    assert_eq!(
        report["read"], 5,
        "{name}: only the batch's manifests: {done}"
    );
    let reference = v.copy();
    reference.cli(["index", "--rebuild"]).expect_code(0);
    assert_eq!(index_rows(&v), index_rows(&reference), "{name}");
}

#[test]
fn index_disk_full_from_the_start() {
    index_fault_case(Full, None, &["index"]);
}

#[test]
fn index_disk_full_while_writing_rows() {
    index_fault_case(Full, Some("index-locked"), &["index"]);
}

#[test]
fn index_disk_full_at_its_commit() {
    index_fault_case(Full, Some("index-before-commit"), &["index"]);
}

/// From the start: the kernel refuses to remount a file system read-only while a process
/// holds a file open for writing, as the paused update holds the database.
#[test]
fn index_read_only_file_system() {
    index_fault_case(ReadOnly, None, &["index"]);
}

#[test]
fn index_database_file_unwritable() {
    index_fault_case(
        Immutable(".git/artifact-migrate/index.sqlite"),
        None,
        &["index"],
    );
}

/// `apply` refreshes an existing index after it commits (`index.update_after_commit`): a
/// fault there does not undo the batch. The batch landed whole, the command says so with
/// a warning naming the cause and what to run, and exits 0; the next `index` catches up.
#[test]
fn apply_lands_when_the_index_refresh_hits_a_full_disk() {
    let name = "apply_lands_when_the_index_refresh_hits_a_full_disk";
    let Some(tmpfs) = Tmpfs::mount(name) else {
        return;
    };
    let v = five_runs_in(tmpfs.path());
    v.cli(["index"]).expect_code(0);
    let reference = v.copy();
    reference.cli(["apply"]).expect_code(0);
    let run = run_with(&v, &tmpfs, Full, Some("index-locked"), &["apply"]);
    run.expect_code(0);
    let warning = run
        .stderr_lines()
        .into_iter()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.contains("the commit landed, but the index was not brought up to date")
            && warning.contains("No space left on device")
            && warning.contains("index.sqlite")
            && warning.ends_with("run `artifact-migrate index`"),
        "{run}"
    );
    tmpfs.unfill();
    assert_eq!(v.head(), reference.head());
    assert_eq!(v.porcelain(), "");
    assert_fsck_clean(&v);
    let done = v.cli(["index", "--json"]);
    done.expect_code(0);
    assert_eq!(done.json()["read"], 5, "{done}");
}

/// A reader of an index that is already up to date (`index`, `runs`, the server) writes
/// nothing, so an unwritable database file does not stop it.
#[test]
fn an_up_to_date_index_is_read_without_writing() {
    let name = "an_up_to_date_index_is_read_without_writing";
    let Some(tmpfs) = Tmpfs::mount(name) else {
        return;
    };
    let v = five_runs_in(tmpfs.path());
    v.cli(["index"]).expect_code(0);
    let fault = Immutable(".git/artifact-migrate/index.sqlite");
    fault.inject(&tmpfs, &v);
    let again = v.cli(["index", "--json"]);
    let runs = v.cli(["runs", "--json"]);
    fault.mend(&tmpfs, &v);
    again.expect_code(0);
    assert_eq!(again.json()["mode"], "unchanged", "{again}");
    assert_eq!(again.json()["read"], 0, "{again}");
    runs.expect_code(0);
}

/// The merge driver (`merge-driver run`, as git calls it) writing its result over `%A` when the
/// disk is full, `%A` is immutable, or the file system is read-only: exit 2, an error naming
/// the cause and `%A`, `%A` whole with its old bytes, no temporary file beside it; once the
/// fault is gone the same run merges.
fn driver_fault_case(fault: Fault) {
    let test = format!("merge driver with {fault:?}");
    let Some(fs) = Tmpfs::mount(&test) else {
        return;
    };
    let repo = TestRepo::new_in(fs.path());
    let base = "{\n  \"a\": 1,\n  \"b\": 1\n}\n";
    let ours = "{\n  \"a\": 2,\n  \"b\": 1\n}\n";
    let theirs = format!("{{\n  \"a\": 1,\n  \"b\": \"{}\"\n}}\n", "x".repeat(20_000));
    repo.file("o.json", base)
        .file("a.json", ours)
        .file("b.json", &theirs);
    let before = repo.worktree_snapshot();
    let args = [
        "merge-driver",
        "run",
        "o.json",
        "a.json",
        "b.json",
        "artifacts/j/r/manifest.json",
    ];
    let a = repo.path().join("a.json");
    fault.inject(&fs, &repo);
    let run = repo.run(repo.cli_command_in(repo.path()), args);
    fault.mend(&fs, &repo);
    run.expect_code(2);
    let want = format!("error: cannot write {}: {}", a.display(), fault.cause());
    assert!(run.stderr.starts_with(&want), "want {want:?}:\n{run}");
    assert_eq!(
        repo.worktree_snapshot(),
        before,
        "a.json keeps its old bytes, nothing else is left"
    );

    let again = repo.run(repo.cli_command_in(repo.path()), args);
    again.expect_code(0);
    let merged = String::from_utf8(repo.file_bytes("a.json")).unwrap();
    assert_eq!(merged, theirs.replace("\"a\": 1", "\"a\": 2"));
}

#[test]
fn merge_driver_disk_full() {
    driver_fault_case(Fault::Full);
}

#[test]
fn merge_driver_output_file_immutable() {
    driver_fault_case(Fault::Immutable("a.json"));
}

#[test]
fn merge_driver_read_only_file_system() {
    driver_fault_case(Fault::ReadOnly);
}
