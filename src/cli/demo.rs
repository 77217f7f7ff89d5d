//! `demo`: builds a sample artifacts repository from the real-shaped samples and walks
//! through the main job on it by running this very binary, so what it prints is what a
//! user would see.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use artifact_migrate::git::identity::Identity;

use crate::cli::{CliError, Ctx};

// The walk-through's output: a reader that stops early (`| head`) ends it quietly.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

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

fn step(exe: &Path, dir: &Path, args: &[&str], want: i32) -> anyhow::Result<()> {
    outln!("$ artifact-migrate {}", args.join(" "));
    let out = Command::new(exe)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .with_context(|| format!("run {}", exe.display()))?;
    out!("{}", String::from_utf8_lossy(&out.stdout));
    err!("{}", String::from_utf8_lossy(&out.stderr));
    let code = out.status.code().unwrap_or(-1);
    outln!();
    if code != want {
        bail!(
            "`artifact-migrate {}` exited {code}, expected {want}",
            args.join(" ")
        );
    }
    Ok(())
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let dir = match args.dir {
        Some(d) => {
            let d = if d.is_absolute() { d } else { ctx.cwd.join(d) };
            if d.exists()
                && fs::read_dir(&d)
                    .map(|mut r| r.next().is_some())
                    .unwrap_or(true)
            {
                return Err(CliError::usage(format!(
                    "{}: exists and is not empty; name a new directory",
                    d.display()
                ))
                .into());
            }
            fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("artifact-migrate-demo-")
            .tempdir()
            .context("create a temporary directory")?
            .keep(),
    };
    build_sample_repo(&dir)?;
    let exe = std::env::current_exe().context("find this program")?;
    outln!("Built a sample artifacts repository in {}\n", dir.display());
    outln!(
        "Three runs of one job: a one-line 1.0.0 manifest without job_id, a 1.1.0 and a 1.2.0 one;"
    );
    outln!("plus an input snapshot named manifest.json, a staging directory and a legacy symlink, which are never migrated.\n");
    step(&exe, &dir, &["status"], 0)?;
    step(&exe, &dir, &["migrations"], 0)?;
    step(&exe, &dir, &["plan", "--diff"], 0)?;
    step(&exe, &dir, &["apply"], 0)?;
    step(&exe, &dir, &["status", "--check"], 0)?;
    step(&exe, &dir, &["apply"], 0)?;
    step(&exe, &dir, &["log"], 0)?;
    step(&exe, &dir, &["verify"], 0)?;
    step(&exe, &dir, &["rollback"], 0)?;
    step(&exe, &dir, &["status"], 0)?;
    step(
        &exe,
        &dir,
        &[
            "apply",
            "-m",
            "migrate: spring-launch-01 to schema 1.2.0, again",
        ],
        0,
    )?;
    step(&exe, &dir, &["log"], 0)?;
    step(&exe, &dir, &["verify"], 0)?;
    add_legacy_branch(&dir)?;
    outln!("An older run arrives on the branch {LEGACY_BRANCH}, written as the seed's first runs were: a real");
    outln!("directory artifacts/runs/{RUN_LEGACY}/ (beside the alias symlink) holding a 1.0.0 manifest");
    outln!("without job_id. It is migrated and moved into the canonical layout on that branch, for review");
    outln!("like a pull request: main and the working tree are not touched.\n");
    step(&exe, &dir, &["plan", "--branch", LEGACY_BRANCH], 0)?;
    step(&exe, &dir, &["apply", "--branch", LEGACY_BRANCH], 0)?;
    step(&exe, &dir, &["relocate", "--branch", LEGACY_BRANCH], 0)?;
    step(&exe, &dir, &["log", LEGACY_BRANCH], 0)?;
    step(&exe, &dir, &["verify", LEGACY_BRANCH], 0)?;
    outln!(
        "Done. Every step above is one commit or none: `git -C {} log --stat` shows them,",
        dir.display()
    );
    outln!(
        "and `git -C {} log --format='%h %s%n%(trailers)'` their trailers; `git -C {} show --stat -M {LEGACY_BRANCH}`",
        dir.display(),
        dir.display()
    );
    outln!("shows that the relocation only renamed.");
    Ok(0)
}
