//! `plan`: what `apply` would do, with every check it runs; writes nothing.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::{plan, BatchPlan, Failure, PlanOptions};
use artifact_migrate::git::diff::unified_diff;
use artifact_migrate::git::scan::RunPair;
use artifact_migrate::ids::CommitId;
use artifact_migrate::schema::Version;

use crate::cli::output::{print_would_commit, Painter, Style};
use crate::cli::progress::Bars;
use crate::cli::{parse_version, CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Target schema version (default: the latest).
    #[arg(long, value_name = "V", value_parser = parse_version)]
    pub to: Option<Version>,
    /// Show each manifest's unified diff, history entry included.
    #[arg(long)]
    pub diff: bool,
    /// Plan for this branch instead of HEAD's (as `apply --branch` would).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Limit to these files or directories.
    #[arg(value_name = "PATHSPEC")]
    pub pathspecs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlannedItem {
    pub path: String,
    pub from: Version,
    pub to: Version,
    pub steps: Vec<String>,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Serialize)]
struct PlanReport {
    target: Version,
    base: CommitId,
    branch: String,
    migrate: Vec<PlannedItem>,
    already_current: usize,
    failed: Vec<Failure>,
    /// Lossy migrations this batch would run, one line per op that drops data.
    warnings: Vec<String>,
    message: String,
    /// Whether the text shows each diff instead of one line per manifest.
    #[serde(skip)]
    diff: bool,
    /// Runs in the canonical layout and in another one: both copies are migrated.
    pairs: Vec<RunPair>,
}

/// How many manifests the text lists one by one (`--json` lists them all).
const LISTED: usize = 20;

/// The per-manifest items of a plan, with diffs when asked.
pub fn items(p: &BatchPlan, diff: bool) -> Result<Vec<PlannedItem>, CommandError> {
    p.migrate
        .iter()
        .map(|m| {
            Ok(PlannedItem {
                path: m.path.to_string(),
                from: m.from,
                to: m.to,
                steps: m.steps.iter().map(|s| s.to_string()).collect(),
                changes: m.changes.iter().map(|c| c.detail.clone()).collect(),
                diff: if diff {
                    Some(unified_diff(m.path.as_str(), &m.old_bytes, &m.new_bytes)?)
                } else {
                    None
                },
            })
        })
        .collect()
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.ui.progress_enabled());
    let opts = PlanOptions {
        target: args.to,
        pathspecs: specs,
        branch: args.branch,
    };
    let loaded = ctx.registry(&repo, &cfg)?;
    let p = plan(&repo, &cfg, &loaded.registry, &opts, &bars)?;
    let used: std::collections::BTreeSet<_> = p
        .migrate
        .iter()
        .flat_map(|m| m.steps.iter().copied())
        .collect();
    let warnings: Vec<String> = used
        .iter()
        .filter_map(|id| loaded.declared(*id))
        .flat_map(|d| {
            d.lossy_reasons
                .iter()
                .map(move |r| format!("migration {} is lossy: {r}", d.id))
        })
        .collect();
    let report = PlanReport {
        target: p.target,
        base: p.target_ref.base,
        branch: p.target_ref.refname.clone(),
        migrate: items(&p, args.diff)?,
        already_current: p.current.len(),
        failed: p.failed.clone(),
        warnings,
        message: p.message.render(),
        diff: args.diff,
        pairs: p.pairs.clone(),
    };
    ctx.ui.failures(&report.failed);
    for w in &report.warnings {
        ctx.ui.warning(w);
    }
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    CommandError::failed_if(!report.failed.is_empty())
}

fn print_human(out: &mut String, p: Painter, r: &PlanReport) -> fmt::Result {
    out.push_str(&crate::cli::relocate::pairs_text(&r.pairs));
    if r.migrate.is_empty() && r.failed.is_empty() {
        return writeln!(
            out,
            "nothing to migrate: {} manifest(s) already at {}",
            r.already_current,
            p.paint(Style::Version, r.target)
        );
    }
    if r.diff {
        for item in &r.migrate {
            out.push_str(item.diff.as_deref().unwrap_or_default());
        }
    } else {
        for item in r.migrate.iter().take(LISTED) {
            writeln!(
                out,
                "would migrate {} ({} -> {})",
                p.paint(Style::Path, &item.path),
                p.paint(Style::Version, item.from),
                p.paint(Style::Version, item.to)
            )?;
        }
        if r.migrate.len() > LISTED {
            writeln!(
                out,
                "... and {} more (--json lists them all)",
                r.migrate.len() - LISTED
            )?;
        }
    }
    if !r.migrate.is_empty() {
        print_would_commit(out, p, "apply", &r.branch, &r.base, &r.message)?;
    }
    if !r.failed.is_empty() {
        writeln!(
            out,
            "\n{} manifest(s) failed: apply would commit nothing (or only the others with --keep-going)",
            r.failed.len()
        )?;
    }
    Ok(())
}
