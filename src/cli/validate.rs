//! `validate [--staged] [PATHSPEC..]`: check manifests against the JSON Schema of their own
//! version; exit 1 on any failure. `--staged` checks what the next commit would record (the
//! pre-commit hook runs it).

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use artifact_migrate::engine::validate::{
    open_index, staged_schemas, validate, ValidateReport, Which,
};
use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::Repo;

use crate::cli::output::{Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{CommandError, Ctx};

/// The last line of a failed `validate --staged`: it is what a rejected `git commit` shows.
pub const HOOK_HINT: &str = "commit aborted by the artifact-migrate pre-commit hook; fix the manifest, or skip the check with git commit --no-verify";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check the manifests staged for the next commit (new or changed from HEAD) against the
    /// staged schemas, instead of HEAD's manifests against the working tree's schemas.
    #[arg(long)]
    pub staged: bool,
    /// Limit to these files or directories.
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    if !args.staged {
        return run_head(ctx, &args);
    }
    // Inside the hook an error aborts the commit too: say so, and how to get past it.
    run_staged(ctx, &args).map_err(|e| match e.message() {
        Some(_) => e.hinted(HOOK_HINT),
        None => e,
    })
}

fn run_head(ctx: &Ctx, args: &Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let loaded = ctx.registry(&repo, &cfg)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let report = validate(
        &repo,
        &cfg,
        loaded.registry.schemas(),
        Which::Head,
        &specs,
        &bars,
    )?;
    let no_schemas = loaded.registry.schemas().is_empty();
    render(ctx, &report, no_schemas)
}

fn run_staged(ctx: &Ctx, args: &Args) -> Result<(), CommandError> {
    // Not `ctx.open()`: inside `git commit` git holds the index lock, and finishing an
    // interrupted run is for the next ordinary command, not for a hook.
    let repo = Repo::discover(&ctx.cwd)?;
    if repo.workdir().is_none() {
        return Err(CommandError::usage(
            "validate --staged: a bare repository has no index; run it in a working tree",
        ));
    }
    let cfg = ctx.config(&repo)?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let index = open_index(&repo, index_file()?.as_deref())?;
    let schemas = staged_schemas(&repo, &index)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let report = validate(&repo, &cfg, &schemas, Which::Staged(&index), &specs, &bars)?;
    render(ctx, &report, schemas.is_empty())
}

/// The index git asks for in `GIT_INDEX_FILE` (set for hooks; for `git commit -a` and
/// `git commit PATH` it is a temporary index holding exactly what will be committed).
fn index_file() -> Result<Option<PathBuf>, CommandError> {
    match std::env::var_os("GIT_INDEX_FILE") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                Ok(Some(p))
            } else {
                let cwd = std::env::current_dir().map_err(|e| {
                    CommandError::new(
                        ErrorKind::Environment,
                        format!("read the current directory: {e}"),
                    )
                })?;
                Ok(Some(cwd.join(p)))
            }
        }
        _ => Ok(None),
    }
}

fn render(ctx: &Ctx, report: &ValidateReport, no_schemas: bool) -> Result<(), CommandError> {
    ctx.ui
        .report(report, |out, p| print_human(out, p, report, no_schemas))?;
    CommandError::failed_if(!report.ok())
}

/// The human rendering: one line per violation (or per unreadable manifest), a summary, and
/// for `--staged` the hint a rejected commit shows. A staged check that found nothing to
/// check prints nothing, so the hook is silent on commits that do not touch manifests.
fn print_human(out: &mut String, p: Painter, r: &ValidateReport, no_schemas: bool) -> fmt::Result {
    let staged = r.source == "staged";
    if staged && r.total == 0 {
        return Ok(());
    }
    let label = p.paint(Style::Error, "error:");
    for f in &r.failures {
        let path = p.paint(Style::Path, &f.path);
        match &f.error {
            Some(e) => writeln!(out, "{label} {path}: {e}")?,
            None => {
                let schema = f.schema.as_deref().unwrap_or("-");
                for v in &f.violations {
                    let at = if v.instance_path.is_empty() {
                        "(the document)"
                    } else {
                        v.instance_path.as_str()
                    };
                    writeln!(
                        out,
                        "{label} {path}: {at}: {}: {} (schema {schema})",
                        v.keyword, v.message
                    )?;
                }
            }
        }
    }
    if staged {
        write!(out, "{} staged manifest(s)", r.total)?;
    } else {
        let at = match r.commit {
            Some(c) => p.paint(Style::Commit, c.short()).to_string(),
            None => "HEAD".to_string(),
        };
        write!(out, "{} manifest(s) at HEAD {at}", r.total)?;
    }
    write!(
        out,
        ": {} checked against their version's schema",
        r.checked
    )?;
    if r.unchecked > 0 {
        let versions: Vec<String> = r
            .unchecked_versions
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect();
        write!(
            out,
            ", {} at versions without a schema ({})",
            r.unchecked,
            versions.join(", ")
        )?;
    }
    if r.ok() {
        writeln!(out, "; ok")?;
    } else {
        writeln!(out, "; {} failed", r.failures.len())?;
    }
    if no_schemas && r.total > 0 {
        writeln!(out, "no JSON Schemas in .artifact-migrate/schemas/: add <version>.json to check the manifests of a version")?;
    }
    if staged && !r.ok() {
        writeln!(out, "{HOOK_HINT}")?;
    }
    Ok(())
}
