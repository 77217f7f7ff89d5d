//! The kinds of failure, shared by every front end: the CLI turns a kind into an exit code,
//! the HTTP server into a status. Every typed error of the library says which kind it is
//! (`kind()`, an exhaustive match, so a new variant must be classified to compile); front
//! ends never guess a kind from a message.

use serde::Serialize;

/// What went wrong, in the terms a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Some manifests failed, or an audit or check found problems: the work was done and
    /// the report says what is wrong with the data.
    Failed,
    /// A bad flag or argument: a version that is not `MAJOR.MINOR.PATCH`, a branch name git
    /// refuses, an ambiguous revision.
    Usage,
    /// A revision, commit, path or manifest (or a named migration) that does not exist.
    NotFound,
    /// The surroundings: not a repository, no commits, no identity, a config or definition
    /// file that cannot be used, an I/O error.
    Environment,
    /// Refused for safety: dirty manifests, a branch that moved, a rollback that would lose
    /// something, a file that is not ours to replace.
    Refused,
    /// A bug in artifact-migrate: a check that should never fire did. Please report it.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Failed,
        ErrorKind::Usage,
        ErrorKind::NotFound,
        ErrorKind::Environment,
        ErrorKind::Refused,
        ErrorKind::Internal,
    ];

    /// The process exit code (SPEC §9: 1 failed, 2 usage or environment, 3 refused; 70 is
    /// `EX_SOFTWARE` of sysexits(3), "an internal software error").
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage | ErrorKind::NotFound | ErrorKind::Environment => 2,
            ErrorKind::Refused => 3,
            ErrorKind::Internal => 70,
        }
    }

    /// The HTTP status a server answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Failed => 422,
            ErrorKind::Usage => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Environment | ErrorKind::Internal => 500,
            ErrorKind::Refused => 409,
        }
    }

    /// The stable name used in `--json` errors (`{"error": {"kind": ...}}`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::Usage => "usage",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Environment => "environment",
            ErrorKind::Refused => "refused",
            ErrorKind::Internal => "internal",
        }
    }

    /// One line for people (the man page's EXIT STATUS lists these).
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Failed => "some manifests failed, or verify, validate or a --check found problems",
            ErrorKind::Usage => "a bad flag or argument",
            ErrorKind::NotFound => "a revision, commit, path, manifest or migration that does not exist",
            ErrorKind::Environment => "not a repository, no commits, no identity, an unusable config or definition file, an I/O error",
            ErrorKind::Refused => "refused for safety (dirty manifests, a moved branch, a rollback that is not possible, a file that is not ours)",
            ErrorKind::Internal => "a bug in artifact-migrate: please report it",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_spec_exit_codes_and_distinct_names() {
        let codes: Vec<u8> = ErrorKind::ALL.iter().map(|k| k.exit_code()).collect();
        assert_eq!(codes, [1, 2, 2, 2, 3, 70]);
        let statuses: Vec<u16> = ErrorKind::ALL.iter().map(|k| k.http_status()).collect();
        assert_eq!(statuses, [422, 400, 404, 500, 409, 500]);
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for k in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(k).expect("serialize"),
                serde_json::Value::String(k.name().to_string())
            );
        }
    }
}
