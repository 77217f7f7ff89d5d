//! `validate [--staged] [PATHSPEC..]`: check manifests against the JSON Schema of their own
//! version; exit 1 on any failure. `--staged` checks what the next commit would record (the
//! pre-commit hook runs it).

use std::path::PathBuf;

use anyhow::Context as _;

use artifact_migrate::config::normalize_root;
use artifact_migrate::engine::validate::{
    open_index, staged_schemas, validate, ValidateReport, Which,
};
use artifact_migrate::git::Repo;

use crate::cli::output::{classify, print_error, Output};
use crate::cli::progress::Bars;
use crate::cli::{CliError, Ctx};

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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    if !args.staged {
        return run_head(ctx, &args);
    }
    match run_staged(ctx, &args) {
        Ok(code) => Ok(code),
        // Inside the hook an error aborts the commit too: say so, and how to get past it.
        Err(e) if !ctx.out.json => {
            let (kind, path) = classify(&e);
            print_error(
                false,
                ctx.out.color,
                kind,
                path.as_deref(),
                &format!("{e:#}"),
            );
            eprintln!("{HOOK_HINT}");
            Ok(kind.exit_code())
        }
        Err(e) => Err(e),
    }
}

fn run_head(ctx: &Ctx, args: &Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let loaded = ctx.registry(&repo, &cfg)?;
    let bars = Bars::new(ctx.out.progress_enabled());
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

fn run_staged(ctx: &Ctx, args: &Args) -> anyhow::Result<u8> {
    // Not `ctx.open()`: inside `git commit` git holds the index lock, and finishing an
    // interrupted run is for the next ordinary command, not for a hook.
    let repo = Repo::discover(&ctx.cwd)?;
    if repo.workdir().is_none() {
        return Err(CliError::usage(
            "validate --staged: a bare repository has no index; run it in a working tree",
        )
        .into());
    }
    let mut cfg = repo.load_config().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(a) = &ctx.artifacts {
        cfg.artifacts_root = normalize_root(a).map_err(CliError::usage)?;
    }
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let index = open_index(&repo, index_file()?.as_deref())?;
    let schemas = staged_schemas(&repo, &index)?;
    let bars = Bars::new(ctx.out.progress_enabled());
    let report = validate(&repo, &cfg, &schemas, Which::Staged(&index), &specs, &bars)?;
    render(ctx, &report, schemas.is_empty())
}

/// The index git asks for in `GIT_INDEX_FILE` (set for hooks; for `git commit -a` and
/// `git commit PATH` it is a temporary index holding exactly what will be committed).
fn index_file() -> anyhow::Result<Option<PathBuf>> {
    match std::env::var_os("GIT_INDEX_FILE") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                Ok(Some(p))
            } else {
                let cwd = std::env::current_dir().context("read the current directory")?;
                Ok(Some(cwd.join(p)))
            }
        }
        _ => Ok(None),
    }
}

fn render(ctx: &Ctx, report: &ValidateReport, no_schemas: bool) -> anyhow::Result<u8> {
    ctx.out.report(report, |o| text(o, report, no_schemas))?;
    Ok(if report.ok() { 0 } else { 1 })
}

/// The human rendering: one line per violation (or per unreadable manifest), a summary, and
/// for `--staged` the hint a rejected commit shows. A staged check that found nothing to
/// check prints nothing, so the hook is silent on commits that do not touch manifests.
fn text(o: &Output, r: &ValidateReport, no_schemas: bool) -> String {
    let staged = r.source == "staged";
    if staged && r.total == 0 {
        return String::new();
    }
    let mut t = String::new();
    let label = o.paint("error:", "31");
    for f in &r.failures {
        match &f.error {
            Some(e) => t.push_str(&format!("{label} {}: {e}\n", f.path)),
            None => {
                let schema = f.schema.as_deref().unwrap_or("-");
                for v in &f.violations {
                    let at = if v.instance_path.is_empty() {
                        "(the document)"
                    } else {
                        v.instance_path.as_str()
                    };
                    t.push_str(&format!(
                        "{label} {}: {at}: {}: {} (schema {schema})\n",
                        f.path, v.keyword, v.message
                    ));
                }
            }
        }
    }
    let what = if staged {
        format!("{} staged manifest(s)", r.total)
    } else {
        let at = r.commit.as_deref().map(|c| &c[..12]).unwrap_or("HEAD");
        format!("{} manifest(s) at HEAD {at}", r.total)
    };
    let mut summary = format!(
        "{what}: {} checked against their version's schema",
        r.checked
    );
    if r.unchecked > 0 {
        let versions: Vec<String> = r
            .unchecked_versions
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect();
        summary.push_str(&format!(
            ", {} at versions without a schema ({})",
            r.unchecked,
            versions.join(", ")
        ));
    }
    if r.ok() {
        summary.push_str("; ok");
    } else {
        summary.push_str(&format!("; {} failed", r.failures.len()));
    }
    t.push_str(&summary);
    t.push('\n');
    if no_schemas && r.total > 0 {
        t.push_str("no JSON Schemas in .artifact-migrate/schemas/: add <version>.json to check the manifests of a version\n");
    }
    if staged && !r.ok() {
        t.push_str(HOOK_HINT);
        t.push('\n');
    }
    t
}
