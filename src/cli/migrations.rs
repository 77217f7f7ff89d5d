//! `migrations`: the registry's versions, edges and chosen paths; `--check` lints it.

use serde::Serialize;

use artifact_migrate::engine::EngineError;
use artifact_migrate::schema::{describe_path, LintFinding};

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Lint the registry (cycles, unreachable versions, duplicate edges, ambiguous paths); exit 1 on any finding.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Serialize)]
struct Edge {
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
}

#[derive(Debug, Serialize)]
struct MigrationsReport {
    versions: Vec<String>,
    latest: Option<String>,
    migrations: Vec<Edge>,
    paths: Vec<PathTo>,
    findings: Vec<LintFinding>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    // Inside a repository: its declarative migrations too; elsewhere the built-ins.
    let loaded = match artifact_migrate::git::Repo::discover(&ctx.cwd) {
        Ok(_) => {
            let (repo, cfg, _) = ctx.open()?;
            match ctx.registry(&repo, &cfg) {
                Ok(l) => Some(l),
                Err(e) if args.check => {
                    // Broken definitions are what --check is for: report them as findings.
                    let problems = match e.downcast_ref::<EngineError>() {
                        Some(EngineError::Definitions(p)) => p.clone(),
                        _ => return Err(e),
                    };
                    let findings: Vec<LintFinding> = problems
                        .into_iter()
                        .map(|problem| LintFinding {
                            severity: "error",
                            problem,
                        })
                        .collect();
                    ctx.out
                        .report(&serde_json::json!({ "findings": findings }), |o| {
                            findings
                                .iter()
                                .map(|f| format!("{} {}\n", o.paint("error:", "31"), f.problem))
                                .collect()
                        })?;
                    return Ok(1);
                }
                Err(e) => return Err(e),
            }
        }
        Err(_) => None,
    };
    let builtins;
    let registry = match &loaded {
        Some(l) => &l.registry,
        None => {
            builtins = artifact_migrate::schema::Registry::with_builtins();
            &builtins
        }
    };
    // In a repository the declarative lint covers the whole graph (built-ins included) and
    // locates problems at file:line; its errors already refused the load above.
    let findings: Vec<LintFinding> = match &loaded {
        Some(l) => l.lint.iter().cloned().map(LintFinding::from).collect(),
        None => registry.lint(),
    };
    let latest = registry.latest();
    let paths = match latest {
        Some(l) => registry
            .versions()
            .into_iter()
            .filter(|v| *v != l)
            .map(|v| PathTo {
                from: v.to_string(),
                steps: registry
                    .path(v, l)
                    .map(|p| p.iter().map(|m| m.id().to_string()).collect())
                    .unwrap_or_default(),
            })
            .collect(),
        None => Vec::new(),
    };
    let report = MigrationsReport {
        versions: registry.versions().iter().map(|v| v.to_string()).collect(),
        latest: latest.map(|v| v.to_string()),
        migrations: registry
            .migrations()
            .iter()
            .map(|m| Edge {
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
    };
    ctx.out.report(&report, |o| {
        let mut t = format!(
            "versions: {}\nlatest: {}\n\nmigrations:\n",
            report.versions.join(", "),
            report.latest.as_deref().unwrap_or("none")
        );
        for m in registry.migrations() {
            let source = m
                .source()
                .map(|f| format!(" ({f}{})", if m.lossy() { ", lossy" } else { "" }))
                .unwrap_or_default();
            t.push_str(&format!("  {}{source}  {}\n", m.id(), m.checksum()));
            for c in m.describe() {
                t.push_str(&format!("    - {c}\n"));
            }
        }
        if let Some(l) = latest {
            t.push_str(&format!("\npaths to {l}:\n"));
            for v in registry.versions().into_iter().filter(|v| *v != l) {
                match registry.path(v, l) {
                    Ok(p) => t.push_str(&format!("  {v}: {}\n", describe_path(&p))),
                    Err(e) => t.push_str(&format!("  {v}: {e}\n")),
                }
            }
        }
        if args.check {
            if report.findings.is_empty() {
                t.push_str("\ncheck: no problems found\n");
            }
            for f in &report.findings {
                t.push_str(&format!(
                    "{} {}\n",
                    o.paint(&format!("{}:", f.severity), "33"),
                    f.problem
                ));
            }
        }
        t
    })?;
    Ok(if args.check && !report.findings.is_empty() {
        1
    } else {
        0
    })
}
