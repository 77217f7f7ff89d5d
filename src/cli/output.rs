//! The output layer: every command builds a report struct; text and `--json` are two
//! renderings of it. Errors have one exit-code map (in `main.rs` via [`classify`]).

use std::io::{IsTerminal, Write};

use serde::Serialize;

use artifact_migrate::config::ConfigError;
use artifact_migrate::engine::EngineError;
use artifact_migrate::git::GitError;

use crate::cli::ColorWhen;

/// How to print.
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub color: bool,
}

impl Output {
    pub fn new(json: bool, quiet: bool, when: ColorWhen) -> Self {
        let color = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Output { json, quiet, color }
    }

    /// Whether progress bars may be drawn: a terminal on stderr, no `-q`, no `--json`.
    pub fn progress_enabled(&self) -> bool {
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }

    /// Prints the report: as JSON with `--json`, else as the text `human` renders.
    pub fn report<T: Serialize>(
        &self,
        report: &T,
        human: impl FnOnce(&Self) -> String,
    ) -> anyhow::Result<()> {
        let mut text = if self.json {
            serde_json::to_string_pretty(report)?
        } else {
            human(self)
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        match std::io::stdout().lock().write_all(text.as_bytes()) {
            // A reader that stopped early (`| head`) is not an error of ours.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            r => Ok(r?),
        }
    }

    /// A note for a person on stderr (none with `-q` or `--json`).
    pub fn note(&self, text: &str) {
        if !self.quiet && !self.json {
            eprintln!("{} {text}", self.paint("note:", "36"));
        }
    }

    /// One `error: PATH: REASON` line per failed manifest, on stderr (text mode only: with
    /// `--json` the failures are in the report). Shown even with `-q`: they are the result.
    pub fn failures(&self, failed: &[artifact_migrate::engine::Failure]) {
        if self.json {
            return;
        }
        let mut err = std::io::stderr().lock();
        for f in failed {
            let _ = writeln!(
                err,
                "{} {}: {}",
                self.paint("error:", "31"),
                f.path,
                f.error
            );
        }
    }

    /// `label` in an ANSI colour when colour is on.
    pub fn paint(&self, label: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{label}\x1b[0m")
        } else {
            label.to_string()
        }
    }
}

/// The classes of failure, each with its exit code (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 1: some manifests failed, or verify found problems.
    Failed,
    /// 2: bad flag or argument.
    Usage,
    /// 2: not a repository, no identity, unreadable config...
    Environment,
    /// 3: refused for safety.
    Refused,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage | ErrorKind::Environment => 2,
            ErrorKind::Refused => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::Usage => "usage",
            ErrorKind::Environment => "environment",
            ErrorKind::Refused => "refused",
        }
    }
}

/// An error raised by the CLI itself.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
    pub path: Option<String>,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            kind: ErrorKind::Usage,
            message: message.into(),
            path: None,
        }
    }
    pub fn environment(message: impl Into<String>, path: Option<String>) -> Self {
        CliError {
            kind: ErrorKind::Environment,
            message: message.into(),
            path,
        }
    }
}

/// Decides the kind (and so the exit code) of any error that reaches `main`.
pub fn classify(err: &anyhow::Error) -> (ErrorKind, Option<String>) {
    if let Some(e) = err.downcast_ref::<CliError>() {
        return (e.kind, e.path.clone());
    }
    let git_kind = |e: &GitError| match e {
        GitError::BranchMoved { .. } | GitError::CheckedOutElsewhere { .. } => {
            (ErrorKind::Refused, None)
        }
        GitError::BadRevision(_) => (ErrorKind::Usage, None),
        GitError::Io { path, .. } => (ErrorKind::Environment, Some(path.display().to_string())),
        GitError::Write { .. } | GitError::IndexLocked { .. } | GitError::WorktreeBehind { .. } => {
            (
                ErrorKind::Environment,
                e.path().map(|p| p.display().to_string()),
            )
        }
        GitError::Filtered { path, .. } => (ErrorKind::Refused, Some(path.clone())),
        _ => (ErrorKind::Environment, None),
    };
    if let Some(e) = err.downcast_ref::<EngineError>() {
        return match e {
            EngineError::DirtyManifests { paths } => (ErrorKind::Refused, paths.first().cloned()),
            EngineError::RollbackRefused(_) | EngineError::UncommittedDefinitions(_) => {
                (ErrorKind::Refused, None)
            }
            EngineError::Definitions(_) => (ErrorKind::Environment, None),
            EngineError::UnknownTarget { .. } | EngineError::Usage(_) => (ErrorKind::Usage, None),
            EngineError::EmptyRegistry => (ErrorKind::Environment, None),
            EngineError::Git(g) => git_kind(g),
        };
    }
    if let Some(e) = err.downcast_ref::<GitError>() {
        return git_kind(e);
    }
    if let Some(e) = err.downcast_ref::<ConfigError>() {
        return (ErrorKind::Environment, Some(e.file.clone()));
    }
    (ErrorKind::Environment, None)
}

/// Prints an error the way the output mode asks: `{"error": {...}}` on stdout with
/// `--json`, one `error:` line on stderr otherwise.
pub fn print_error(json: bool, color: bool, kind: ErrorKind, path: Option<&str>, message: &str) {
    if json {
        let mut e = serde_json::json!({ "kind": kind.name(), "message": message });
        if let Some(p) = path {
            e["path"] = serde_json::Value::String(p.to_string());
        }
        let _ = writeln!(std::io::stdout(), "{}", serde_json::json!({ "error": e }));
    } else {
        let label = if color {
            "\x1b[31merror:\x1b[0m".to_string()
        } else {
            "error:".to_string()
        };
        let _ = writeln!(std::io::stderr(), "{label} {message}");
    }
}
