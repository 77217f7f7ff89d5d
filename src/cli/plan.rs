//! `plan`: what `apply` would do, with every check it runs; writes nothing.

use serde::Serialize;

use artifact_migrate::engine::{plan, BatchPlan, Failure, PlanOptions};
use artifact_migrate::git::diff::unified_diff;
use artifact_migrate::git::scan::RunPair;
use artifact_migrate::schema::Version;

use crate::cli::progress::Bars;
use crate::cli::{parse_version, Ctx};

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
    pub from: String,
    pub to: String,
    pub steps: Vec<String>,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Serialize)]
struct PlanReport {
    target: String,
    base: String,
    branch: String,
    migrate: Vec<PlannedItem>,
    already_current: usize,
    failed: Vec<Failure>,
    /// Lossy migrations this batch would run, one line per op that drops data.
    warnings: Vec<String>,
    message: String,
    /// Runs in the canonical layout and in another one: both copies are migrated.
    pairs: Vec<RunPair>,
}

/// The per-manifest items of a plan, with diffs when asked.
pub fn items(p: &BatchPlan, diff: bool) -> anyhow::Result<Vec<PlannedItem>> {
    p.migrate
        .iter()
        .map(|m| {
            Ok(PlannedItem {
                path: m.path.to_string(),
                from: m.from.to_string(),
                to: m.to.to_string(),
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

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let specs = ctx.pathspecs(&repo, &args.pathspecs)?;
    let bars = Bars::new(ctx.out.progress_enabled());
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
        target: p.target.to_string(),
        base: p.target_ref.base.to_string(),
        branch: p.target_ref.refname.clone(),
        migrate: items(&p, args.diff)?,
        already_current: p.current.len(),
        failed: p.failed.clone(),
        warnings,
        message: p.message.render(),
        pairs: p.pairs.clone(),
    };
    ctx.out.failures(&report.failed);
    if !ctx.out.json {
        for w in &report.warnings {
            eprintln!("{} {w}", ctx.out.paint("warning:", "33"));
        }
    }
    ctx.out.report(&report, |_| {
        let mut t = crate::cli::relocate::pairs_text(&report.pairs);
        if report.migrate.is_empty() && report.failed.is_empty() {
            t.push_str(&format!("nothing to migrate: {} manifest(s) already at {}\n", report.already_current, report.target));
            return t;
        }
        if args.diff {
            for item in &report.migrate {
                t.push_str(item.diff.as_deref().unwrap_or_default());
            }
        } else {
            for item in report.migrate.iter().take(20) {
                t.push_str(&format!("would migrate {} ({} -> {})\n", item.path, item.from, item.to));
            }
            if report.migrate.len() > 20 {
                t.push_str(&format!("... and {} more (--json lists them all)\n", report.migrate.len() - 20));
            }
        }
        if !report.migrate.is_empty() {
            t.push_str(&format!("\napply would commit on {} (base {}):\n\n", report.branch, &report.base[..12]));
            for line in report.message.lines() {
                t.push_str(&format!("    {line}\n").replace("    \n", "\n"));
            }
        }
        if !report.failed.is_empty() {
            t.push_str(&format!("\n{} manifest(s) failed: apply would commit nothing (or only the others with --keep-going)\n", report.failed.len()));
        }
        t
    })?;
    Ok(if report.failed.is_empty() { 0 } else { 1 })
}
