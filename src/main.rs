//! The `artifact-migrate` binary: parse arguments, run, and map errors to exit codes here
//! and nowhere else (0 success, 1 failures found, 2 usage or environment, 3 refused).

mod cli;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::output::{classify, print_error};
use crate::cli::{Cli, ErrorKind};

/// Bounds libgit2's own memory: how much of the pack files it keeps mapped and how many
/// objects it caches. Its defaults (8 GiB of mappings on 64-bit, 256 MiB of cache) let a
/// million-manifest batch grow past a gigabyte of resident memory.
fn limit_libgit2_memory() {
    // SAFETY: these set global libgit2 options; they run first in main, before any thread or
    // repository exists, which is the usage libgit2 documents.
    unsafe {
        let _ = git2::opts::set_mwindow_mapped_limit(256 << 20);
        let _ = git2::opts::set_mwindow_size(32 << 20);
        let _ = git2::opts::set_cache_max_size(96 << 20);
    }
}

fn main() -> ExitCode {
    limit_libgit2_memory();
    // SIGINT/SIGTERM stop a writing command at its next safe point (docs/reliability.md).
    if let Err(e) = artifact_migrate::interrupt::install() {
        eprintln!(
            "warning: cannot handle SIGINT and SIGTERM ({e}); they will stop the process at once"
        );
    }
    let argv: Vec<String> = std::env::args().collect();
    let json = argv.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if json {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string();
                print_error(true, false, ErrorKind::Usage, None, &first);
            } else {
                let _ = e.print();
            }
            return ExitCode::from(2);
        }
    };
    let json = cli.json;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && cli.color != cli::ColorWhen::Never
        && (cli.color == cli::ColorWhen::Always
            || std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let code = match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (kind, path) = classify(&e);
            let message = format!("{e:#}");
            print_error(json, color, kind, path.as_deref(), &message);
            ExitCode::from(kind.exit_code())
        }
    };
    // Stopped (or finished) after a SIGINT/SIGTERM: end by that signal, as the parent expects.
    artifact_migrate::interrupt::exit_if_requested();
    code
}
