//! `log`: migration batches and rollbacks, newest first.

use std::fmt::{self, Write as _};

use artifact_migrate::engine::log::{log, LogEntry};
use artifact_migrate::git::shallow::Shallow;

use crate::cli::output::{Painter, Style};
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start from this revision (default: HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (repo, _, _) = ctx.open()?;
    let tip = match &args.rev {
        Some(r) => repo.resolve_commit(r)?,
        None => repo.head_commit()?,
    };
    let entries = log(&repo, tip)?;
    let shallow = Shallow::read(&repo, tip)?;
    ctx.ui.report(&entries, |out, p| {
        print_human(out, p, &entries)?;
        match &shallow {
            Some(s) => writeln!(out, "shallow: {}", s.describe()),
            None => Ok(()),
        }
    })
}

fn print_human(out: &mut String, p: Painter, entries: &[LogEntry]) -> fmt::Result {
    if entries.is_empty() {
        return writeln!(out, "no migration batches or rollbacks in this history");
    }
    for e in entries {
        writeln!(
            out,
            "{} {} {}",
            p.paint(Style::Commit, e.commit.short()),
            e.date,
            e.subject
        )?;
        match e.kind {
            "migration" => {
                let steps: Vec<String> = e
                    .steps
                    .iter()
                    .map(|s| format!("{}->{} {}", s.from, s.to, s.count))
                    .collect();
                write!(
                    out,
                    "    migration to {}: {} manifest(s) [{}]",
                    p.paint(Style::Version, e.target.as_deref().unwrap_or("?")),
                    e.manifests
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into()),
                    steps.join(", ")
                )?;
                if let Some(by) = e.rolled_back_by {
                    write!(out, ", rolled back by {}", p.paint(Style::Commit, by.short()))?;
                }
                writeln!(out)?;
            }
            "repair" => writeln!(
                out,
                "    repair: accepts a changed migration definition (see the commit's Migration-Accept trailer)"
            )?,
            "relocation" => {
                write!(
                    out,
                    "    relocation: {} run(s) moved into the canonical layout",
                    e.relocated
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into())
                )?;
                if let Some(by) = e.rolled_back_by {
                    write!(out, ", rolled back by {}", p.paint(Style::Commit, by.short()))?;
                }
                writeln!(out)?;
            }
            _ => writeln!(
                out,
                "    rollback of {}",
                p.paint(
                    Style::Commit,
                    e.rollback_of.as_deref().map(short_text).unwrap_or("?")
                )
            )?,
        }
        writeln!(out, "    by {}", e.author)?;
        if e.parent_not_fetched {
            writeln!(
                out,
                "    (the shallow clone stops here: its parent was not fetched)"
            )?;
        }
    }
    Ok(())
}

/// The first 12 characters of a commit id read from a trailer (which may be shorter).
fn short_text(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}
