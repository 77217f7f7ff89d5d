//! `show`: a committed manifest migrated in memory (lazy migration on read). Writes nothing:
//! a thin renderer over [`artifact_migrate::engine::preview`].

use std::fmt;

use serde::Serialize;

use artifact_migrate::engine::{preview, Preview};
use artifact_migrate::ids::RepoPath;
use artifact_migrate::schema::Version;

use crate::cli::output::Painter;
use crate::cli::{parse_version, CommandError, Ctx};

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
    path: RepoPath,
    from: Version,
    to: Version,
    steps: Vec<String>,
    changes: Vec<String>,
    content: String,
}

impl From<Preview> for ShowReport {
    fn from(p: Preview) -> Self {
        ShowReport {
            path: p.path,
            from: p.stored_version,
            to: p.served_version,
            steps: p.steps.iter().map(|s| s.to_string()).collect(),
            changes: p.changes.into_iter().map(|c| c.detail).collect(),
            content: String::from_utf8_lossy(&p.served).into_owned(),
        }
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, cfg, _) = ctx.open()?;
    let path = ctx
        .pathspecs(&repo, std::slice::from_ref(&args.path))?
        .remove(0);
    let head = repo.head_commit()?;
    let loaded = ctx.registry(&repo, &cfg)?;
    let shown = preview(
        &repo,
        &cfg,
        &loaded.registry,
        head,
        &RepoPath::new(path),
        args.as_version,
    )?;
    let report = ShowReport::from(shown);
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))
}

/// The document itself, as it would be at the version.
fn print_human(out: &mut String, _: Painter, r: &ShowReport) -> fmt::Result {
    out.push_str(&r.content);
    Ok(())
}
