//! The library seams a second front end (the HTTP server) relies on, called without the
//! CLI: the preview `show` renders (and the API will serve), the refusal of uncommitted
//! definitions inside `engine::apply`, and errors that carry their kind, their file and
//! their cause.

mod common;

use std::error::Error as _;

use artifact_migrate::config::{ConfigProblem, CONFIG_FILE};
use artifact_migrate::engine::registry::{load_registry, Source};
use artifact_migrate::engine::{
    apply, preview, ApplyOptions, EngineError, NoProgress, PreviewError,
};
use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::{GitError, Repo};
use artifact_migrate::ids::RepoPath;
use artifact_migrate::schema::{Registry, Version};
use common::*;

fn open(repo: &TestRepo) -> Repo {
    Repo::open(repo.path()).expect("open the test repository")
}

#[test]
fn preview_serves_what_apply_writes_and_writes_nothing() {
    let repo = TestRepo::with_samples();
    let r = open(&repo);
    let cfg = r.load_config().expect("the default config");
    let loaded = load_registry(&r, &cfg, Source::Worktree).expect("the built-ins");
    let head = r.head_commit().expect("HEAD");
    let p = manifest_path(&format!("{JOB}/{RUN_100}"));
    let path = RepoPath::new(p.clone());
    let preview_at =
        |commit| preview(&r, &cfg, &loaded.registry, commit, &path, None).expect("a preview");
    let before = (repo.git_dir_snapshot(), repo.worktree_snapshot());
    let shown = preview_at(head);
    assert_eq!((repo.git_dir_snapshot(), repo.worktree_snapshot()), before);
    assert_eq!(shown.commit, head);
    assert_eq!(shown.stored, repo.show("HEAD", &p));
    assert_eq!(shown.stored_version.to_string(), "1.0.0");
    assert_eq!(shown.served_version.to_string(), "1.2.0");
    let steps: Vec<String> = shown.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(steps, ["1.0.0->1.2.0"]);
    assert!(!shown.changes.is_empty());

    // apply, run now, writes the same bytes (but for the moment of the batch: this process
    // has no SOURCE_DATE_EPOCH, the CLI run has).
    repo.cli(["apply"]).expect_code(0);
    let served = String::from_utf8(shown.served).expect("UTF-8");
    let doc: serde_json::Value = serde_json::from_str(&served).expect("JSON");
    let at = last_history(&doc)["applied_at"]
        .as_str()
        .expect("applied_at")
        .to_string();
    let written = String::from_utf8(repo.show("HEAD", &p)).expect("UTF-8");
    assert_eq!(served.replace(&at, APPLIED_AT), written);

    // Already at the version: served as stored.
    let current = preview_at(r.head_commit().expect("HEAD"));
    assert_eq!(current.served, current.stored);
    assert!(current.steps.is_empty());
}

#[test]
fn preview_errors_say_what_is_missing_or_wrong() {
    let repo = TestRepo::new();
    repo.sample_files()
        .file("artifacts/job-b/run-1/manifest.json", "not json\n")
        .commit("record runs");
    let r = open(&repo);
    let cfg = r.load_config().expect("the default config");
    let registry = Registry::with_builtins();
    let head = r.head_commit().expect("HEAD");
    let missing = RepoPath::new("artifacts/nothing/manifest.json");
    let e = preview(&r, &cfg, &registry, head, &missing, None).expect_err("no such file");
    assert!(matches!(e, PreviewError::NotFound { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.kind().http_status(), 404);
    assert_eq!(e.path().as_deref(), Some("artifacts/nothing/manifest.json"));
    let broken = RepoPath::new("artifacts/job-b/run-1/manifest.json");
    let e = preview(&r, &cfg, &registry, head, &broken, None).expect_err("not JSON");
    assert_eq!(e.kind(), ErrorKind::Failed);
    assert!(e.source().is_some(), "the manifest error is kept: {e:?}");
}

#[test]
fn engine_apply_refuses_uncommitted_definitions() {
    let repo = TestRepo::with_samples();
    repo.file(
        ".artifact-migrate/migrations/1.2.0-1.3.0.toml",
        "from = \"1.2.0\"\nto = \"1.3.0\"\n",
    );
    let objects = repo.count_objects();
    let r = open(&repo);
    let cfg = r.load_config().expect("the default config");
    // Even with a registry that does not come from those files: a batch must name
    // definitions that are in git. On the checked-out branch and on another one (where the
    // check runs on a thread of its own beside the scan), and answered before any other
    // refusal of the batch (here a target version no migration reaches).
    let unreachable: Version = "9.9.9".parse().expect("a version");
    for branch in [None, Some("side".to_string())] {
        for target in [None, Some(unreachable)] {
            let mut opts = ApplyOptions::default();
            opts.plan.branch = branch.clone();
            opts.plan.target = target;
            let e = apply(&r, &cfg, &Registry::with_builtins(), &opts, &NoProgress)
                .expect_err("refused");
            match &e {
                EngineError::UncommittedDefinitions(paths) => {
                    assert_eq!(paths, &[".artifact-migrate/migrations/1.2.0-1.3.0.toml"])
                }
                other => panic!("{branch:?} {target:?}: {other:?}"),
            }
            assert_eq!(e.kind(), ErrorKind::Refused);
            assert_eq!(repo.count_objects(), objects, "nothing was written");
        }
    }
    // Committed, the definitions no longer stop a batch on another branch.
    repo.commit("add the migration");
    let mut opts = ApplyOptions::default();
    opts.plan.branch = Some("side".to_string());
    apply(&r, &cfg, &Registry::with_builtins(), &opts, &NoProgress).expect("applied");
}

#[test]
fn config_errors_are_typed_and_name_their_file() {
    let repo = TestRepo::with_samples();
    repo.file(CONFIG_FILE, "artifact_root = 1\n");
    let e = open(&repo).load_config().expect_err("an unknown key");
    assert_eq!(e.file, CONFIG_FILE);
    assert!(matches!(e.problem, ConfigProblem::Syntax(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Environment);
    assert!(e.to_string().starts_with(".artifact-migrate.toml: "), "{e}");

    // A config that cannot be read at all names the path that was read.
    std::fs::remove_file(repo.path().join(CONFIG_FILE)).expect("remove the file");
    std::fs::create_dir(repo.path().join(CONFIG_FILE)).expect("a directory in its place");
    let e = open(&repo).load_config().expect_err("a directory");
    assert!(matches!(e.problem, ConfigProblem::Unreadable(_)), "{e:?}");
    assert!(
        e.file.ends_with(CONFIG_FILE) && e.file.starts_with('/'),
        "{e}"
    );
}

#[test]
fn bad_revisions_keep_git_s_cause() {
    let repo = TestRepo::with_samples();
    let r = open(&repo);
    let e = r.resolve_commit("no-such-rev").expect_err("unknown");
    assert!(matches!(e, GitError::UnknownRevision { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let cause = e.source().expect("git2's error is the source");
    assert!(cause.to_string().contains("no-such-rev"), "{cause}");
    let e = r.resolve_commit("HEAD^{tree}").expect_err("a tree");
    assert!(matches!(e, GitError::NotACommit { .. }), "{e:?}");
    assert!(e.source().is_some());
    assert_eq!(e.kind(), ErrorKind::Usage);
}
