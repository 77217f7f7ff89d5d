//! `show`: a committed manifest migrated in memory (lazy migration on read). Writes nothing.

use serde::Serialize;

use artifact_migrate::engine::batch::batch_time;
use artifact_migrate::engine::{
    migrate_manifest, tool_name, BatchInfo, ManifestError, MigrateOptions, Outcome,
};
use artifact_migrate::schema::Version;

use crate::cli::{parse_version, CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest, as a path in HEAD's tree (relative to the current directory).
    #[arg(value_name = "PATH")]
    pub path: String,
    /// The version to show it as (default: the latest).
    #[arg(long = "as", value_name = "V", value_parser = parse_version)]
    pub as_version: Option<Version>,
}

#[derive(Debug, Serialize)]
struct ShowReport {
    path: String,
    from: String,
    to: String,
    steps: Vec<String>,
    changes: Vec<String>,
    content: String,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, cfg, _) = ctx.open()?;
    let path = ctx
        .pathspecs(&repo, std::slice::from_ref(&args.path))?
        .remove(0);
    let head = repo.head_commit()?;
    let (bytes, mode) = repo.read_entry(head, &path).ok_or_else(|| {
        CliError::environment(
            format!("{path}: not a file in HEAD's tree; show reads committed manifests"),
            Some(path.clone()),
        )
    })?;
    if mode == 0o120000 {
        let message = format!("{path}: {}", ManifestError::Symlink);
        return Err(CliError {
            kind: crate::cli::ErrorKind::Failed,
            message,
            path: Some(path),
        }
        .into());
    }
    let loaded = ctx.registry(&repo, &cfg)?;
    let registry = &loaded.registry;
    let target = match args.as_version {
        Some(v) => v,
        None => registry
            .latest()
            .ok_or_else(|| CliError::environment("the registry has no migrations", None))?,
    };
    let batch = BatchInfo {
        applied_at: batch_time(&repo)?,
        base_commit: head,
        tool: tool_name(),
    };
    let opts = MigrateOptions {
        registry,
        target,
        artifacts_root: &cfg.artifacts_root,
        layouts: &cfg.layouts,
        protected: &cfg.protected,
    };
    let report = match migrate_manifest(&bytes, &path, &opts, &batch) {
        Ok(Outcome::Current(v)) => ShowReport {
            path,
            from: v.to_string(),
            to: v.to_string(),
            steps: vec![],
            changes: vec![],
            content: String::from_utf8_lossy(&bytes).into_owned(),
        },
        Ok(Outcome::Migrated(m)) => ShowReport {
            path,
            from: m.from.to_string(),
            to: m.to.to_string(),
            steps: m.steps.iter().map(|s| s.to_string()).collect(),
            changes: m.changes.iter().map(|c| c.detail.clone()).collect(),
            content: String::from_utf8_lossy(&m.bytes).into_owned(),
        },
        Err(e) => {
            return Err(CliError {
                kind: crate::cli::ErrorKind::Failed,
                message: format!("{path}: {e}"),
                path: Some(path),
            }
            .into());
        }
    };
    ctx.out.report(&report, |_| report.content.clone())?;
    Ok(0)
}
