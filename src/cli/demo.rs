//! `demo`: builds a sample artifacts repository from the real-shaped samples and walks
//! through the main job on it by running this very binary, so what it prints is what a
//! user would see.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::identity::Identity;

use crate::cli::{CommandError, Ctx, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to build the repository (must not exist or be empty; default: a new temporary directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const V100: &str = include_str!("../../fixtures/samples/v1.0.0-manifest.json");
const V110: &str = include_str!("../../fixtures/samples/v1.1.0-manifest.json");
const V120: &str = include_str!("../../fixtures/samples/v1.2.0-manifest.json");

const JOB: &str = "spring-launch-01";
const RUN_100: &str = "5d1e2c7a-0b3f-4a8e-9c61-2f7d8e4b1a90";
const RUN_110: &str = "7492b68c4e13bb143e5f50cdd0993926";
const RUN_120: &str = "0d5c1a9e3b7f4e2a8c6d1b0f9e8a7c65";
/// A run written in the legacy layout `artifacts/runs/<run_id>/`.
const RUN_LEGACY: &str = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98";
/// The branch the legacy run arrives on.
const LEGACY_BRANCH: &str = "legacy-import";

fn write(root: &Path, rel: &str, text: &str) -> anyhow::Result<()> {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    fs::write(&p, text).with_context(|| format!("write {}", p.display()))
}

/// Lays out the sample repository and commits it.
pub fn build_sample_repo(root: &Path) -> anyhow::Result<()> {
    let a = format!("artifacts/{JOB}");
    write(root, &format!("{a}/{RUN_100}/manifest.json"), V100)?;
    write(
        root,
        &format!("{a}/{RUN_100}/outputs/instagram_captions.md"),
        "Spring is here.\n",
    )?;
    write(root, &format!("{a}/{RUN_110}/manifest.json"), V110)?;
    for (name, body) in [
        ("brief.resolved.json", "{\"brief\": \"spring launch\"}\n"),
        ("model_config.json", "{\"model\": \"text-large\"}\n"),
    ] {
        write(root, &format!("{a}/{RUN_110}/inputs/{name}"), body)?;
    }
    // An input snapshot that happens to be named manifest.json: data, never migrated.
    write(
        root,
        &format!("{a}/{RUN_110}/inputs/manifest.json"),
        "{\"schema_version\": \"0.1\"}\n",
    )?;
    let v120 = V120.replace(
        &format!("\"run_id\": \"{RUN_110}\""),
        &format!("\"run_id\": \"{RUN_120}\""),
    );
    write(root, &format!("{a}/{RUN_120}/manifest.json"), &v120)?;
    // The pipeline's staging area: skipped.
    write(
        root,
        &format!("{a}/.tmp/manifest.json"),
        "{\"partial\": true",
    )?;
    write(
        root,
        "README.md",
        "Sample artifacts repository made by `artifact-migrate demo`.\n",
    )?;
    // The legacy alias runs/<run_id> -> ../<job_id>/<run_id>: never followed.
    fs::create_dir_all(root.join("artifacts/runs")).context("create artifacts/runs")?;
    std::os::unix::fs::symlink(
        format!("../{JOB}/{RUN_100}"),
        root.join(format!("artifacts/runs/{RUN_100}")),
    )
    .context("create the legacy symlink")?;

    let repo = git2::Repository::init_opts(
        root,
        git2::RepositoryInitOptions::new().initial_head("main"),
    )
    .context("git init")?;
    let mut cfg = repo.config().context("open the demo repository's config")?;
    cfg.set_str("user.name", "artifact-migrate demo")
        .context("set user.name")?;
    cfg.set_str("user.email", "demo@example.invalid")
        .context("set user.email")?;
    let mut index = repo.index().context("open the index")?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .context("git add")?;
    index.write().context("write the index")?;
    let tree = repo
        .find_tree(index.write_tree().context("write the tree")?)
        .context("read the tree")?;
    // The demo's own identity, dated like a batch would be (SOURCE_DATE_EPOCH honoured), so
    // a demo run with a fixed epoch gives the same commits every time.
    let wrapped = artifact_migrate::git::Repo::open(root)?;
    let sig = Identity::from_env(&wrapped)
        .context("read the demo identity")?
        .committer;
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "Record three runs of spring-launch-01\n",
        &tree,
        &[],
    )
    .context("commit")?;
    Ok(())
}

/// Commits, on a new branch `legacy-import` from HEAD (the working tree and HEAD's branch
/// untouched), one older run as the seed's first runs were written: a real directory
/// `artifacts/runs/<run_id>/` with a 1.0.0 manifest without `job_id`, and its output.
pub fn add_legacy_branch(root: &Path) -> anyhow::Result<()> {
    let repo = git2::Repository::open(root).context("open the demo repository")?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .context("read HEAD")?;
    let manifest = V100.replace(RUN_100, RUN_LEGACY).replace(
        "\"started_at\": \"2026-03-02T09:14:07",
        "\"started_at\": \"2026-02-27T16:40:07",
    );
    let dir = format!("artifacts/runs/{RUN_LEGACY}");
    let mut update = git2::build::TreeUpdateBuilder::new();
    for (rel, body) in [
        ("manifest.json", manifest.as_str()),
        ("outputs/instagram_captions.md", "An older caption.\n"),
    ] {
        let blob = repo.blob(body.as_bytes()).context("write a blob")?;
        update.upsert(format!("{dir}/{rel}"), blob, git2::FileMode::Blob);
    }
    let base = head.tree().context("read HEAD's tree")?;
    let tree = repo
        .find_tree(
            update
                .create_updated(&repo, &base)
                .context("write the tree")?,
        )
        .context("read the tree")?;
    let wrapped = artifact_migrate::git::Repo::open(root)?;
    let sig = Identity::from_env(&wrapped)
        .context("read the demo identity")?
        .committer;
    let commit = repo
        .commit(
            None,
            &sig,
            &sig,
            "Import an older run, written in the legacy layout\n",
            &tree,
            &[&head],
        )
        .context("commit")?;
    repo.reference(
        &format!("refs/heads/{LEGACY_BRANCH}"),
        commit,
        false,
        "demo: an older run",
    )
    .context("create the legacy-import branch")?;
    Ok(())
}

/// Runs one step of the walk-through and shows what it printed; a step that exits other
/// than `want` is a bug of the demo (or of the command it runs).
fn step(ui: &Ui, exe: &Path, dir: &Path, args: &[&str], want: i32) -> Result<(), CommandError> {
    ui.raw_stdout(format!("$ artifact-migrate {}\n", args.join(" ")).as_bytes());
    let out = Command::new(exe)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| CommandError::io("run", exe, e))?;
    ui.raw_stdout(&out.stdout);
    ui.raw_stderr(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    ui.raw_stdout(b"\n");
    if code != want {
        return Err(CommandError::new(
            ErrorKind::Internal,
            format!(
                "`artifact-migrate {}` exited {code}, expected {want} (this is a bug: please report it)",
                args.join(" ")
            ),
        ));
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let ui = &ctx.ui;
    let dir = match args.dir {
        Some(d) => {
            let d = if d.is_absolute() { d } else { ctx.cwd.join(d) };
            if d.exists()
                && fs::read_dir(&d)
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(true)
            {
                return Err(CommandError::usage(format!(
                    "{}: exists and is not empty; name a new directory",
                    d.display()
                )));
            }
            fs::create_dir_all(&d).map_err(|e| CommandError::io("create", &d, e))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("artifact-migrate-demo-")
            .tempdir()
            .map_err(|e| {
                CommandError::new(
                    ErrorKind::Environment,
                    format!("create a temporary directory: {e}"),
                )
            })?
            .keep(),
    };
    build_sample_repo(&dir).map_err(|e| {
        CommandError::new(
            ErrorKind::Environment,
            format!("build the sample repository in {}: {e:#}", dir.display()),
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        CommandError::new(ErrorKind::Environment, format!("find this program: {e}"))
    })?;
    ui.raw_stdout(
        format!(
            "Built a sample artifacts repository in {}\n\n\
             Three runs of one job: a one-line 1.0.0 manifest without job_id, a 1.1.0 and a 1.2.0 one;\n\
             plus an input snapshot named manifest.json, a staging directory and a legacy symlink, which are never migrated.\n\n",
            dir.display()
        )
        .as_bytes(),
    );
    for (args, want) in STEPS {
        step(ui, &exe, &dir, args, *want)?;
    }
    add_legacy_branch(&dir).map_err(|e| {
        CommandError::new(
            ErrorKind::Environment,
            format!("add the legacy run to {}: {e:#}", dir.display()),
        )
    })?;
    ui.raw_stdout(
        format!(
            "An older run arrives on the branch {LEGACY_BRANCH}, written as the seed's first runs were: a real\n\
             directory artifacts/runs/{RUN_LEGACY}/ (beside the alias symlink) holding a 1.0.0 manifest\n\
             without job_id. It is migrated and moved into the canonical layout on that branch, for review\n\
             like a pull request: main and the working tree are not touched.\n\n"
        )
        .as_bytes(),
    );
    for (args, want) in LEGACY_STEPS {
        step(ui, &exe, &dir, args, *want)?;
    }
    ui.raw_stdout(
        format!(
            "Done. Every step above is one commit or none: `git -C {dir} log --stat` shows them,\n\
             and `git -C {dir} log --format='%h %s%n%(trailers)'` their trailers; `git -C {dir} show --stat -M {LEGACY_BRANCH}`\n\
             shows that the relocation only renamed.\n",
            dir = dir.display()
        )
        .as_bytes(),
    );
    Ok(())
}

/// The walk-through: each command, and the exit code it must give.
const STEPS: &[(&[&str], i32)] = &[
    (&["status"], 0),
    (&["migrations"], 0),
    (&["plan", "--diff"], 0),
    (&["apply"], 0),
    (&["status", "--check"], 0),
    (&["apply"], 0),
    (&["log"], 0),
    (&["verify"], 0),
    (&["rollback"], 0),
    (&["status"], 0),
    (
        &[
            "apply",
            "-m",
            "migrate: spring-launch-01 to schema 1.2.0, again",
        ],
        0,
    ),
    (&["log"], 0),
    (&["verify"], 0),
];

/// The legacy chapter, on the branch [`LEGACY_BRANCH`]: migrate and relocate an older run.
const LEGACY_STEPS: &[(&[&str], i32)] = &[
    (&["plan", "--branch", LEGACY_BRANCH], 0),
    (&["apply", "--branch", LEGACY_BRANCH], 0),
    (&["relocate", "--branch", LEGACY_BRANCH], 0),
    (&["log", LEGACY_BRANCH], 0),
    (&["verify", LEGACY_BRANCH], 0),
];
