//! `new FROM TO`: scaffold a declarative migration, `.artifact-migrate/migrations/FROM-TO.toml`
//! in the working tree: a version bump that edits nothing yet, with every kind of op shown in
//! comments, ready to uncomment.

use std::fmt::{self, Write as _};
use std::fs;
use std::io::Write as _;

use serde::Serialize;

use artifact_migrate::schema::declarative::MIGRATIONS_DIR;
use artifact_migrate::schema::Version;

use crate::cli::output::{Painter, Style};
use crate::cli::{parse_version, CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The version the migration starts at, e.g. 1.2.0.
    #[arg(value_name = "FROM", value_parser = parse_version)]
    pub from: Version,
    /// The version it leads to, above FROM, e.g. 1.3.0.
    #[arg(value_name = "TO", value_parser = parse_version)]
    pub to: Version,
}

#[derive(Debug, Serialize)]
struct NewReport {
    /// The file written, relative to the repository root.
    path: String,
    from: String,
    to: String,
}

/// The scaffold for `FROM -> TO`. It loads as a migration that edits nothing; each commented
/// `[[ops]]` block loads too once uncommented (the tests check both).
pub fn template(from: Version, to: Version) -> String {
    format!(
        r#"# Migration {from} -> {to}, as data: artifact-migrate runs it like a built-in migration,
# checks the invariants after it and records it in each manifest's migration_history.
#
# As scaffolded it is a version bump that edits nothing: manifests at {from} get
# "schema_version": "{to}" and a history entry. Add ops (uncomment and edit the examples
# below), then:
#   artifact-migrate plan --diff          preview each manifest's diff (writes nothing)
#   git add <this file> && git commit     apply only runs committed definitions
#   artifact-migrate apply                migrate, and commit the batch
# Reference: docs/migrations.md.

from = "{from}"
to = "{to}"
# description = "What {to} changes, in one line"

# Ops run in order, each on the document as the ops before it left it. Every op has `op` and
# a `description`: it is what each manifest's migration_history and the commit message say
# was done, so say what changes. Paths are JSON pointers: "/a/b" (~1 stands for "/", ~0 for
# "~"). An op with nothing to do in a manifest is skipped there, and not recorded.
#
# The ops, and the keys each takes:
#   add     path, value   write value where nothing is at path (an existing value is kept)
#   set     path, value   write value at path, replacing what is there (lossy: plan warns)
#   remove  path          remove the member or array element (lossy: plan warns)
#   rename  path, to      rename the member at path to the key `to`, in place
#   move    from, path    move the value at `from` to `path` (fails where `path` exists)
#   copy    from, path    copy the value at `from` to `path` where nothing is there
# `value` is any TOML value; for JSON null write value_json = 'null' instead.
# schema_version, migration_history and the protected fields (job_id, run_id, job_ref,
# doctrine, inputs_hash, input_snapshots, or the list in .artifact-migrate.toml) cannot be
# changed: an op that could is refused, with its line, when the file is loaded.
#
# An example, ready to uncomment:
#
# [[ops]]
# op = "add"
# path = "/review_status"
# value = "unreviewed"
# description = "Add review_status (\"unreviewed\")"
#
# The other kinds:
#
# [[ops]]
# op = "set"
# path = "/meta/retention_days"
# value = 90
# description = "Set meta.retention_days to 90"
#
# [[ops]]
# op = "remove"
# path = "/langfuse_trace_id"
# description = "Remove langfuse_trace_id (no longer recorded)"
#
# [[ops]]
# op = "rename"
# path = "/generation_metadata/model"
# to = "model_name"
# description = "Rename generation_metadata.model to generation_metadata.model_name"
#
# [[ops]]
# op = "move"
# from = "/queue_job_id"
# path = "/meta/queue_job_id"
# description = "Move queue_job_id into meta"
#
# [[ops]]
# op = "copy"
# from = "/status"
# path = "/meta/final_status"
# description = "Copy status to meta.final_status"
"#
    )
}

fn refused(message: String, path: &str) -> CommandError {
    CommandError::refused(message, path)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    let (from, to) = (args.from, args.to);
    if from == to {
        return Err(CommandError::usage(format!(
            "FROM and TO are both {from}: a migration leads to a higher version; name the next one, e.g. `artifact-migrate new {from} {}.{}.0`",
            to.major,
            to.minor + 1
        )));
    }
    if from > to {
        return Err(CommandError::usage(format!(
            "{to} is below {from}: a migration leads up, downgrades are rollbacks (use `artifact-migrate rollback`); did you mean `artifact-migrate new {to} {from}`?"
        )));
    }
    let (repo, cfg, _) = ctx.open()?;
    let Some(workdir) = repo.workdir() else {
        return Err(CommandError::usage(
            "new: a bare repository has no working tree to write the migration file in; run it in a clone",
        ));
    };
    let rel = format!("{MIGRATIONS_DIR}/{from}-{to}.toml");
    let abs = workdir.join(&rel);
    if fs::symlink_metadata(&abs).is_ok() {
        return Err(refused(
            format!(
                "{rel} already exists; nothing was written: edit it, or remove it to start over"
            ),
            &rel,
        ));
    }
    // Another definition of the same edge (a built-in, or a file named otherwise) would make
    // the registry refuse to load: say where it is instead.
    match ctx.registry(&repo, &cfg) {
        Ok(loaded) => {
            let existing = loaded
                .registry
                .migrations()
                .into_iter()
                .find(|m| m.from() == from && m.to() == to)
                .map(|m| m.source().map(str::to_string));
            if let Some(source) = existing {
                let what = match source {
                    Some(file) => format!("{file} already defines {from}->{to}; nothing was written: edit that file"),
                    None => format!("a built-in migration already defines {from}->{to}; nothing was written: scaffold a migration from {to} to a new version"),
                };
                return Err(refused(what, &rel));
            }
            if !loaded.registry.knows(from) {
                ctx.ui.note(format_args!(
                    "no migration leads to or from {from} yet (the registry knows {}): manifests at other versions cannot reach {to} until one does",
                    loaded
                        .registry
                        .versions()
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Err(e) => ctx.ui.note(format_args!(
            "the existing migration definitions do not load, so the scaffold was not checked against them: {e}"
        )),
    }
    let dir = workdir.join(MIGRATIONS_DIR);
    fs::create_dir_all(&dir).map_err(|e| CommandError::io("create", &dir, e))?;
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&abs)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(refused(
                format!(
                "{rel} already exists; nothing was written: edit it, or remove it to start over"
            ),
                &rel,
            ))
        }
        Err(e) => return Err(CommandError::io("create", &abs, e)),
    };
    file.write_all(template(from, to).as_bytes())
        .map_err(|e| CommandError::io("write", &abs, e))?;
    let report = NewReport {
        path: rel,
        from: from.to_string(),
        to: to.to_string(),
    };
    ctx.ui
        .report(&report, |out, p| print_human(out, p, &report))
}

fn print_human(out: &mut String, p: Painter, r: &NewReport) -> fmt::Result {
    let (from, to) = (&r.from, &r.to);
    writeln!(
        out,
        "created {}: a migration from {from} to {to} that edits nothing yet",
        p.paint(Style::Path, &r.path)
    )?;
    writeln!(out)?;
    writeln!(out, "next:")?;
    writeln!(out, "  1. edit it: add ops (the comments in it show every kind; docs/migrations.md is the reference)")?;
    writeln!(out, "  2. optionally add .artifact-migrate/schemas/{to}.json, the JSON Schema manifests at {to} must satisfy")?;
    writeln!(out, "  3. preview: artifact-migrate plan --diff")?;
    writeln!(out, "  4. commit it: git add .artifact-migrate && git commit -m \"Add the {from} -> {to} migration\"")?;
    writeln!(out, "  5. apply: artifact-migrate apply")
}

#[cfg(test)]
mod tests {
    use super::*;
    use artifact_migrate::schema::declarative::{load, OpKind};
    use artifact_migrate::schema::Migration as _;

    fn v(s: &str) -> Version {
        s.parse().expect("a version")
    }

    fn default_protected() -> Vec<String> {
        artifact_migrate::config::Config::default().protected
    }

    const FILE: &str = ".artifact-migrate/migrations/1.2.0-1.3.0.toml";

    #[test]
    fn the_scaffold_loads_as_a_version_bump_that_edits_nothing() {
        let text = template(v("1.2.0"), v("1.3.0"));
        let loaded = load(&[(FILE.to_string(), text)], &default_protected())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(loaded.len(), 1);
        let m = &loaded[0];
        assert_eq!(m.id().to_string(), "1.2.0->1.3.0");
        assert!(m.ops().is_empty());
        assert!(!m.lossy());
    }

    /// Each commented `[[ops]]` block, uncommented on its own, loads as that one op.
    #[test]
    fn every_commented_op_loads_once_uncommented() {
        let text = template(v("1.2.0"), v("1.3.0"));
        let lines: Vec<&str> = text.lines().collect();
        let starts: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i] == "# [[ops]]")
            .collect();
        let mut kinds = Vec::new();
        for &start in &starts {
            let end = (start..lines.len())
                .find(|&i| lines[i] == "#")
                .unwrap_or(lines.len());
            let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            for line in edited.iter_mut().take(end).skip(start) {
                *line = line
                    .strip_prefix("# ")
                    .expect("a commented line")
                    .to_string();
            }
            let file = edited.join("\n") + "\n";
            let loaded = load(&[(FILE.to_string(), file.clone())], &default_protected())
                .unwrap_or_else(|e| panic!("{e:?}\n{file}"));
            let ops = loaded[0].ops();
            assert_eq!(ops.len(), 1, "{file}");
            kinds.push(ops[0].kind.name());
            if let OpKind::Add { path, .. } = &ops[0].kind {
                assert_eq!(path, "/review_status");
            }
        }
        assert_eq!(kinds, ["add", "set", "remove", "rename", "move", "copy"]);
    }

    #[test]
    fn the_scaffold_names_the_versions_it_was_made_for() {
        let text = template(v("2.0.0"), v("10.1.3"));
        assert!(text.contains("\nfrom = \"2.0.0\"\nto = \"10.1.3\"\n"));
        let file = ".artifact-migrate/migrations/2.0.0-10.1.3.toml".to_string();
        assert!(load(&[(file, text)], &default_protected()).is_ok());
    }
}
