//! The command line: one file per command, a shared output layer. A thin layer over the
//! library: parse arguments, open the repository, call the engine, render the report.

pub mod apply;
pub mod completions;
pub mod demo;
pub mod error;
pub mod hook;
pub mod index;
pub mod log;
pub mod man;
pub mod merge_driver;
pub mod migrations;
pub mod new;
pub mod output;
pub mod plan;
pub mod progress;
pub mod relocate;
pub mod repair;
pub mod rollback;
pub mod runs;
pub mod serve;
pub mod show;
pub mod status;
pub mod validate;
pub mod verify;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use artifact_migrate::config::{normalize_root, Config};
use artifact_migrate::engine::registry::{load_registry, LoadedRegistry, Source};
use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::worktree::{finish_interrupted, Recovery};
use artifact_migrate::git::Repo;
use artifact_migrate::schema::Version;

pub use error::CommandError;
pub use output::Ui;

#[derive(Debug, Parser)]
#[command(
    name = "artifact-migrate",
    version,
    about = "Migrate JSON run manifests in a git repository to new schema versions, one audited commit per batch"
)]
pub struct Cli {
    /// Run as if started in DIR (like git -C).
    #[arg(short = 'C', id = "chdir", value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,
    /// The artifacts root, relative to the repository root (default: artifacts, or .artifact-migrate.toml).
    #[arg(long, value_name = "DIR", global = true)]
    pub artifacts: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress and no notes on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour the output (always: even with NO_COLOR set; auto: terminals, unless NO_COLOR is set).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Version distribution, latest, pending, dirty and untracked manifests.
    Status(status::Args),
    /// Dry run: what apply would do, with every check; writes nothing.
    Plan(plan::Args),
    /// Migrate and commit the batch as one commit.
    Apply(apply::Args),
    /// Revert a migration batch (default: the newest on the branch).
    Rollback(rollback::Args),
    /// Migration batches and rollbacks from history.
    Log(log::Args),
    /// Audit history and HEAD against the invariants, checksums and trailers.
    Verify(verify::Args),
    /// Record an intended change of an applied migration's definition (verify accepts it).
    Repair(repair::Args),
    /// Move legacy runs (runs/<run_id>/) into the canonical layout <job_id>/<run_id>/, as one commit.
    Relocate(relocate::Args),
    /// A manifest migrated in memory; writes nothing.
    Show(show::Args),
    /// The registry: versions, edges, the path from each version to the latest.
    Migrations(migrations::Args),
    /// Check manifests against the JSON Schema of their own version (HEAD's, or the staged ones).
    Validate(validate::Args),
    /// Install or remove the git pre-commit hook that validates staged manifests.
    Hook(hook::Args),
    /// The member-level merge of manifests for git merge, rebase and cherry-pick.
    MergeDriver(merge_driver::Args),
    /// Scaffold a declarative migration file FROM-TO.toml, with every kind of op in comments.
    New(new::Args),
    /// Bring the SQLite (default) or PostgreSQL index of every manifest and batch up to date.
    Index(index::Args),
    /// Runs answered from the index (brought up to date with HEAD first).
    Runs(runs::Args),
    /// Serve the read-only HTTP API over the index (loopback 127.0.0.1:8080 by default).
    Serve(serve::Args),
    /// Build a sample artifacts repository and walk through the main job on it.
    Demo(demo::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
    /// Print the manual page (roff), e.g. `artifact-migrate man | man -l -`.
    Man(man::Args),
}

/// What every command gets: where it runs, how to print.
pub struct Ctx {
    pub cwd: PathBuf,
    pub artifacts: Option<String>,
    pub ui: Ui,
}

impl Ctx {
    /// Opens the repository around the working directory, finishes an interrupted run if
    /// one left the working tree behind (and says so), and loads the settings.
    pub fn open(&self) -> Result<(Repo, Config, Vec<Recovery>), CommandError> {
        let repo = Repo::discover(&self.cwd)?;
        let mut recovery = Vec::new();
        if repo.workdir().is_some() {
            recovery = finish_interrupted(&repo)?;
            for r in &recovery {
                self.ui.note(r.describe());
            }
        }
        let cfg = self.config(&repo)?;
        Ok((repo, cfg, recovery))
    }

    /// The settings: `.artifact-migrate.toml`, then `--artifacts`.
    pub fn config(&self, repo: &Repo) -> Result<Config, CommandError> {
        let mut cfg = repo.load_config()?;
        if let Some(a) = &self.artifacts {
            cfg.artifacts_root = normalize_root(a)?;
        }
        Ok(cfg)
    }

    /// The registry of this repository: built-ins, `.artifact-migrate/migrations/*.toml`
    /// and `.artifact-migrate/schemas/*.json` (from the working tree, or HEAD in a bare one).
    pub fn registry(&self, repo: &Repo, cfg: &Config) -> Result<LoadedRegistry, CommandError> {
        Ok(load_registry(repo, cfg, Source::Worktree)?)
    }

    /// Turns command-line pathspecs (relative to the working directory) into
    /// repository-relative ones.
    pub fn pathspecs(&self, repo: &Repo, specs: &[String]) -> Result<Vec<String>, CommandError> {
        let Some(workdir) = repo.workdir() else {
            return Ok(specs.to_vec());
        };
        let workdir = workdir
            .canonicalize()
            .map_err(|e| CommandError::io("resolve", workdir, e))?;
        let cwd = self.cwd.canonicalize().unwrap_or_else(|_| self.cwd.clone());
        let prefix = cwd
            .strip_prefix(&workdir)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        specs
            .iter()
            .map(|s| {
                let p = Path::new(s);
                let joined = if p.is_absolute() {
                    p.strip_prefix(&workdir)
                        .map(Path::to_path_buf)
                        .map_err(|_| {
                            CommandError::usage(format!(
                                "{s}: outside the repository at {}",
                                workdir.display()
                            ))
                        })?
                } else {
                    prefix.join(p)
                };
                let mut parts: Vec<String> = Vec::new();
                for c in joined.components() {
                    match c {
                        std::path::Component::Normal(n) => {
                            parts.push(n.to_string_lossy().into_owned())
                        }
                        std::path::Component::ParentDir if parts.pop().is_none() => {
                            return Err(CommandError::usage(format!(
                                "{s}: outside the repository"
                            )));
                        }
                        _ => {}
                    }
                }
                Ok(parts.join("/"))
            })
            .collect()
    }
}

/// `--sign` / `--no-sign` of every command that commits (as `git commit -S` / `--no-gpg-sign`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct SignArgs {
    /// Sign the commit (openpgp or ssh, as gpg.format and user.signingkey say), whatever commit.gpgsign says.
    #[arg(long, conflicts_with = "no_sign")]
    pub sign: bool,
    /// Do not sign the commit, even with commit.gpgsign=true.
    #[arg(long)]
    pub no_sign: bool,
}

impl SignArgs {
    pub fn mode(self) -> artifact_migrate::git::sign::SignMode {
        artifact_migrate::git::sign::SignMode::from_flags(self.sign, self.no_sign)
    }
}

/// Parses `--to V`.
pub fn parse_version(s: &str) -> Result<Version, String> {
    s.parse::<Version>().map_err(|e| e.to_string())
}

/// Runs the parsed command, printing through `ui`: its report, or the error that stopped it.
pub fn run(cli: Cli, ui: Ui) -> Result<(), CommandError> {
    let base = std::env::current_dir().map_err(|e| {
        CommandError::new(
            ErrorKind::Environment,
            format!("read the current directory: {e}"),
        )
    })?;
    let cwd = match &cli.chdir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => base.join(d),
        None => base,
    };
    if cli.chdir.is_some() && !cwd.is_dir() {
        return Err(CommandError::usage(format!(
            "cannot change to {}: no such directory",
            cwd.display()
        )));
    }
    let ctx = Ctx {
        cwd,
        artifacts: cli.artifacts,
        ui,
    };
    match cli.command {
        Command::Status(a) => status::run(&ctx, a),
        Command::Plan(a) => plan::run(&ctx, a),
        Command::Apply(a) => apply::run(&ctx, a),
        Command::Rollback(a) => rollback::run(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Verify(a) => verify::run(&ctx, a),
        Command::Repair(a) => repair::run(&ctx, a),
        Command::Relocate(a) => relocate::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Migrations(a) => migrations::run(&ctx, a),
        Command::Validate(a) => validate::run(&ctx, a),
        Command::Hook(a) => hook::run(&ctx, a),
        Command::New(a) => new::run(&ctx, a),
        Command::MergeDriver(a) => merge_driver::run(&ctx, a),
        Command::Index(a) => index::run(&ctx, a),
        Command::Runs(a) => runs::run(&ctx, a),
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Completions(a) => completions::run(&ctx, a),
        Command::Man(a) => man::run(&ctx, a),
    }
}
