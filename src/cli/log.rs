//! `log`: migration batches and rollbacks, newest first.

use artifact_migrate::engine::log::log;

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start from this revision (default: HEAD).
    #[arg(value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<u8> {
    let (repo, _, _) = ctx.open()?;
    let tip = match &args.rev {
        Some(r) => repo.resolve_commit(r)?,
        None => repo.head_commit()?,
    };
    let entries = log(&repo, tip)?;
    ctx.out.report(&entries, |o| {
        if entries.is_empty() {
            return "no migration batches or rollbacks in this history\n".to_string();
        }
        let mut t = String::new();
        for e in &entries {
            t.push_str(&format!(
                "{} {} {}\n",
                o.paint(&e.commit[..12], "33"),
                e.date,
                e.subject
            ));
            match e.kind {
                "migration" => {
                    let steps: Vec<String> = e
                        .steps
                        .iter()
                        .map(|s| format!("{}->{} {}", s.from, s.to, s.count))
                        .collect();
                    t.push_str(&format!(
                        "    migration to {}: {} manifest(s) [{}]{}\n",
                        e.target.as_deref().unwrap_or("?"),
                        e.manifests
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".into()),
                        steps.join(", "),
                        e.rolled_back_by
                            .as_deref()
                            .map(|r| format!(", rolled back by {}", &r[..12]))
                            .unwrap_or_default()
                    ));
                }
                "repair" => t.push_str("    repair: accepts a changed migration definition (see the commit's Migration-Accept trailer)\n"),
                "relocation" => t.push_str(&format!(
                    "    relocation: {} run(s) moved into the canonical layout{}\n",
                    e.relocated.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                    e.rolled_back_by
                        .as_deref()
                        .map(|r| format!(", rolled back by {}", &r[..12]))
                        .unwrap_or_default()
                )),
                _ => t.push_str(&format!(
                    "    rollback of {}\n",
                    e.rollback_of
                        .as_deref()
                        .map(|r| &r[..12.min(r.len())])
                        .unwrap_or("?")
                )),
            }
            t.push_str(&format!("    by {}\n", e.author));
        }
        t
    })?;
    Ok(0)
}
