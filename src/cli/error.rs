//! The command error: what a command returns instead of an exit code. Its kind is chosen
//! where a library error converts (the `From` impls below take the library's own `kind()`,
//! an exhaustive match), never guessed from a message; `main` alone turns it into an exit
//! code.

use std::fmt;
use std::path::Path;

use artifact_migrate::config::{ConfigError, RootError};
use artifact_migrate::engine::relocate::RelocateError;
use artifact_migrate::engine::{EngineError, PreviewError};
use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::GitError;
use artifact_migrate::index::IndexError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a command did not succeed.
#[derive(Debug)]
pub struct CommandError {
    kind: ErrorKind,
    /// `None` when the command's report already says what is wrong (failed manifests,
    /// findings): only the exit status is left to give.
    error: Option<BoxError>,
    /// The one file to blame, if there is one (`path` of the `--json` error).
    path: Option<String>,
    /// Lines printed after the error in text mode.
    hints: Vec<String>,
}

impl CommandError {
    pub fn new(kind: ErrorKind, error: impl Into<BoxError>) -> Self {
        CommandError {
            kind,
            error: Some(error.into()),
            path: None,
            hints: Vec::new(),
        }
    }

    /// A bad flag or argument.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message.into())
    }

    /// Refused for safety, naming the file.
    pub fn refused(message: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message.into()).with_path(path)
    }

    /// An I/O error of the command's own: `WHAT PATH: cause`.
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        Self::new(
            ErrorKind::Environment,
            format!("{what} {}: {source}", path.display()),
        )
        .with_path(path.display().to_string())
    }

    /// What a command returns after rendering a report that shows what failed (failed
    /// manifests, findings): `failed` exits 1 and prints nothing more.
    pub fn failed_if(failed: bool) -> Result<(), Self> {
        if failed {
            Err(Self::reported(ErrorKind::Failed))
        } else {
            Ok(())
        }
    }

    /// The report already rendered says what is wrong; exit with `kind`'s code.
    fn reported(kind: ErrorKind) -> Self {
        CommandError {
            kind,
            error: None,
            path: None,
            hints: Vec::new(),
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Adds a line to print after the error (text mode only).
    pub fn hinted(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }

    /// The message to print, or `None` when the report said it all.
    pub fn message(&self) -> Option<String> {
        self.error.as_ref().map(|e| e.to_string())
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{e}"),
            None => write!(f, "{} (reported above)", self.kind),
        }
    }
}

/// Converts a library error that knows its kind and its file.
macro_rules! from_library_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CommandError {
            fn from(e: $t) -> Self {
                let (kind, path) = (e.kind(), e.path());
                CommandError {
                    kind,
                    error: Some(Box::new(e)),
                    path,
                    hints: Vec::new(),
                }
            }
        }
    )*};
}

from_library_error!(
    GitError,
    EngineError,
    ConfigError,
    PreviewError,
    RelocateError,
    IndexError
);

impl From<RootError> for CommandError {
    fn from(e: RootError) -> Self {
        CommandError::new(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_library_errors() {
        let bug = CommandError::from(GitError::BatchTouchesOther {
            path: "README.md".into(),
        });
        assert_eq!(bug.kind(), ErrorKind::Internal);
        assert_eq!(bug.kind().exit_code(), 70);
        let moved = CommandError::from(EngineError::Git(GitError::BranchMoved {
            refname: "refs/heads/main".into(),
            expected: "0".repeat(40),
        }));
        assert_eq!(moved.kind(), ErrorKind::Refused);
        let dirty = CommandError::from(EngineError::DirtyManifests {
            paths: vec!["a/manifest.json".into(), "b/manifest.json".into()],
        });
        assert_eq!(dirty.path(), Some("a/manifest.json"));
        let config = artifact_migrate::config::Config::from_toml("artifact_root = 1")
            .expect_err("an unknown key");
        let config = CommandError::from(config);
        assert_eq!(config.kind(), ErrorKind::Environment);
        assert_eq!(config.path(), Some(".artifact-migrate.toml"));
    }

    #[test]
    fn a_reported_error_has_no_message_of_its_own() {
        let e = CommandError::failed_if(true).expect_err("failed");
        assert_eq!(e.message(), None);
        assert_eq!(e.kind().exit_code(), 1);
        assert!(CommandError::failed_if(false).is_ok());
    }
}
