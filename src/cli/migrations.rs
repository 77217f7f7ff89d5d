//! `migrations`: the registry's versions, edges and chosen paths; `--check` lints it.

use std::fmt::{self, Write as _};

use serde::Serialize;

use artifact_migrate::engine::branch_check::{check_branch, BranchCheck};
use artifact_migrate::engine::registry::{load_registry, Source};
use artifact_migrate::engine::EngineError;
use artifact_migrate::git::Repo;
use artifact_migrate::schema::{LintFinding, Registry};

use crate::cli::output::{Painter, Style};
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lint the registry (cycles, unreachable versions, duplicate edges, ambiguous paths); exit 1 on any finding.
    #[arg(long)]
    pub check: bool,
    /// With --check: also compare this branch's definitions with those at REV (and their
    /// merge base): edges both sides added or changed differently, two latest versions, a
    /// definition changed here that REV's batches applied. Exit 1 naming the files.
    #[arg(long, value_name = "REV", requires = "check")]
    pub base: Option<String>,
}

#[derive(Debug, Serialize)]
struct Edge {
    /// `FROM->TO` (text only: JSON has `from` and `to`).
    #[serde(skip)]
    id: String,
    from: String,
    to: String,
    changes: Vec<String>,
    /// The definition file of a declarative migration (`null` for a built-in).
    file: Option<String>,
    checksum: String,
    lossy: bool,
}

#[derive(Debug, Serialize)]
struct PathTo {
    from: String,
    steps: Vec<String>,
    /// Why there is no path (text only: JSON has empty `steps`).
    #[serde(skip)]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct MigrationsReport {
    versions: Vec<String>,
    latest: Option<String>,
    migrations: Vec<Edge>,
    paths: Vec<PathTo>,
    findings: Vec<LintFinding>,
    /// `--base REV`: the comparison with REV's definitions (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    branches: Option<BranchCheck>,
    /// Whether the lint was asked for (the text then says what it found).
    #[serde(skip)]
    check: bool,
}

/// `migrations --check` on definitions that do not load: each problem is a finding.
#[derive(Debug, Serialize)]
struct BrokenReport {
    findings: Vec<LintFinding>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    // Inside a repository: its declarative migrations too; elsewhere the built-ins.
    let loaded = match Repo::discover(&ctx.cwd) {
        Ok(_) => {
            let (repo, cfg, _) = ctx.open()?;
            match load_registry(&repo, &cfg, Source::Worktree) {
                Ok(l) => Some(l),
                // Broken definitions are what --check is for: report them as findings.
                Err(EngineError::Definitions(problems)) if args.check => {
                    let report = BrokenReport {
                        findings: problems
                            .iter()
                            .map(|problem| LintFinding {
                                severity: "error",
                                problem: problem.to_string(),
                            })
                            .collect(),
                    };
                    ctx.ui
                        .report(&report, |out, p| print_broken(out, p, &report))?;
                    return CommandError::failed_if(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(_) => None,
    };
    let builtins;
    let registry = match &loaded {
        Some(l) => &l.registry,
        None => {
            builtins = Registry::with_builtins();
            &builtins
        }
    };
    // In a repository the declarative lint covers the whole graph (built-ins included) and
    // locates problems at file:line; its errors already refused the load above.
    let findings: Vec<LintFinding> = match &loaded {
        Some(l) => l.lint.iter().cloned().map(LintFinding::from).collect(),
        None => registry.lint(),
    };
    let mut report = report(registry, findings, args.check);
    if let Some(base) = &args.base {
        let (repo, cfg, _) = ctx.open()?;
        let rev = repo.resolve_commit(base)?;
        let head = repo.head_commit()?;
        let check = check_branch(&repo, &cfg, head, rev, base)?;
        report
            .findings
            .extend(check.conflicts.iter().map(|c| LintFinding {
                severity: "error",
                problem: c.problem.clone(),
            }));
        report.branches = Some(check);
    }
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))?;
    CommandError::failed_if(args.check && !report.findings.is_empty())
}

fn report(registry: &Registry, findings: Vec<LintFinding>, check: bool) -> MigrationsReport {
    let latest = registry.latest();
    let paths = match latest {
        Some(l) => registry
            .versions()
            .into_iter()
            .filter(|v| *v != l)
            .map(|v| match registry.path(v, l) {
                Ok(p) => PathTo {
                    from: v.to_string(),
                    steps: p.iter().map(|m| m.id().to_string()).collect(),
                    error: None,
                },
                Err(e) => PathTo {
                    from: v.to_string(),
                    steps: Vec::new(),
                    error: Some(e.to_string()),
                },
            })
            .collect(),
        None => Vec::new(),
    };
    MigrationsReport {
        branches: None,
        versions: registry.versions().iter().map(|v| v.to_string()).collect(),
        latest: latest.map(|v| v.to_string()),
        migrations: registry
            .migrations()
            .iter()
            .map(|m| Edge {
                id: m.id().to_string(),
                from: m.from().to_string(),
                to: m.to().to_string(),
                changes: m.describe(),
                file: m.source().map(str::to_string),
                checksum: m.checksum(),
                lossy: m.lossy(),
            })
            .collect(),
        paths,
        findings,
        check,
    }
}

fn print_human(out: &mut String, p: Painter, r: &MigrationsReport) -> fmt::Result {
    let versions: Vec<String> = r
        .versions
        .iter()
        .map(|v| p.paint(Style::Version, v).to_string())
        .collect();
    writeln!(out, "versions: {}", versions.join(", "))?;
    match &r.latest {
        Some(l) => writeln!(out, "latest: {}", p.paint(Style::Version, l))?,
        None => writeln!(out, "latest: none")?,
    }
    writeln!(out, "\nmigrations:")?;
    for m in &r.migrations {
        let source = match &m.file {
            Some(f) => format!(
                " ({}{})",
                p.paint(Style::Path, f),
                if m.lossy { ", lossy" } else { "" }
            ),
            None => String::new(),
        };
        writeln!(out, "  {}{source}  {}", m.id, m.checksum)?;
        for c in &m.changes {
            writeln!(out, "    - {c}")?;
        }
    }
    if let Some(l) = &r.latest {
        writeln!(out, "\npaths to {}:", p.paint(Style::Version, l))?;
        for path in &r.paths {
            let how = match &path.error {
                Some(e) => e.clone(),
                None => path.steps.join(", "),
            };
            writeln!(out, "  {}: {how}", p.paint(Style::Version, &path.from))?;
        }
    }
    if r.check {
        if r.findings.is_empty() {
            writeln!(out, "\ncheck: no problems found")?;
        }
        if let Some(b) = &r.branches {
            writeln!(
                out,
                "check --base: {} conflict(s) with the definitions at {} (merge base {})",
                b.conflicts.len(),
                p.paint(Style::Commit, b.base.short()),
                b.merge_base.map_or("none".to_string(), |m| m.short())
            )?;
        }
        for f in &r.findings {
            let style = if f.severity == "error" {
                Style::Error
            } else {
                Style::Warning
            };
            writeln!(
                out,
                "{} {}",
                p.paint(style, format!("{}:", f.severity)),
                f.problem
            )?;
        }
    }
    Ok(())
}

fn print_broken(out: &mut String, p: Painter, r: &BrokenReport) -> fmt::Result {
    for f in &r.findings {
        writeln!(out, "{} {}", p.paint(Style::Error, "error:"), f.problem)?;
    }
    Ok(())
}
