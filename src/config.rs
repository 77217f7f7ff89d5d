//! Settings: `.artifact-migrate.toml` at the repository root, overridden by CLI flags.

use serde::Deserialize;

use crate::engine::invariants::DEFAULT_PROTECTED;
use crate::error::ErrorKind;
use crate::layout::{LayoutError, Layouts};

/// The settings one run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Directory (repository-relative, no trailing slash) under which manifests live.
    pub artifacts_root: String,
    /// File name of a manifest.
    pub manifest_name: String,
    /// Protected fields, as JSON pointers.
    pub protected: Vec<String>,
    /// Where runs live under the artifacts root; the first is the canonical layout.
    pub layouts: Layouts,
    /// The `[index]` table: which database, and whether commits refresh it.
    pub index: IndexConfig,
}

/// The `[index]` table of `.artifact-migrate.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// `index.db`: `sqlite:PATH` or `postgres://...` (default: the SQLite file in `.git`).
    pub db: Option<String>,
    /// `index.update_after_commit`: whether `apply`, `rollback`, `repair` and `relocate` bring an
    /// existing index up to date after their commit lands (default true).
    pub update_after_commit: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            db: None,
            update_after_commit: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            artifacts_root: "artifacts".into(),
            manifest_name: "manifest.json".into(),
            protected: DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect(),
            layouts: Layouts::default(),
            index: IndexConfig::default(),
        }
    }
}

/// The file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    artifacts_root: Option<String>,
    manifest_name: Option<String>,
    protected_fields: Option<Vec<String>>,
    layouts: Option<Vec<String>>,
    index: Option<IndexConfig>,
}

/// A config file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ConfigError {
    /// The file: [`CONFIG_FILE`] (repository-relative) for its content, the path read for
    /// an I/O error.
    pub file: String,
    pub problem: ConfigProblem,
}

/// What is wrong with a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("{0}")]
    Unreadable(#[source] std::io::Error),
    #[error("{}; see docs/cli.md for the keys", .0.to_string().trim_end())]
    Syntax(#[source] toml::de::Error),
    #[error(transparent)]
    ArtifactsRoot(#[from] RootError),
    #[error("manifest_name {name:?} must be a plain file name")]
    ManifestName { name: String },
    #[error("protected field {field:?} must be a JSON pointer such as \"/run_id\"")]
    ProtectedField { field: String },
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

impl ConfigError {
    /// Every config error is the surroundings' (exit 2), and names its file.
    pub fn kind(&self) -> ErrorKind {
        match self.problem {
            ConfigProblem::Unreadable(_)
            | ConfigProblem::Syntax(_)
            | ConfigProblem::ArtifactsRoot(_)
            | ConfigProblem::ManifestName { .. }
            | ConfigProblem::ProtectedField { .. }
            | ConfigProblem::Layout(_) => ErrorKind::Environment,
        }
    }

    /// The file to blame.
    pub fn path(&self) -> Option<String> {
        Some(self.file.clone())
    }
}

/// An artifacts root outside the repository (from the config file or `--artifacts`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("artifacts root {root:?} must be a path inside the repository")]
pub struct RootError {
    pub root: String,
}

impl RootError {
    /// As a flag (`--artifacts`) it is a usage error; inside the config file it is a
    /// [`ConfigError`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

/// The name of the config file at the repository root.
pub const CONFIG_FILE: &str = ".artifact-migrate.toml";

impl Config {
    /// Reads settings from the text of a `.artifact-migrate.toml` on top of the defaults.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let err = |problem: ConfigProblem| ConfigError {
            file: CONFIG_FILE.into(),
            problem,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| err(ConfigProblem::Syntax(e)))?;
        let mut cfg = Config::default();
        if let Some(root) = file.artifacts_root {
            cfg.artifacts_root = normalize_root(&root).map_err(|e| err(e.into()))?;
        }
        if let Some(name) = file.manifest_name {
            if name.is_empty() || name.contains('/') {
                return Err(err(ConfigProblem::ManifestName { name }));
            }
            cfg.manifest_name = name;
        }
        if let Some(fields) = file.protected_fields {
            for f in &fields {
                if !f.starts_with('/') {
                    return Err(err(ConfigProblem::ProtectedField { field: f.clone() }));
                }
            }
            cfg.protected = fields;
        }
        if let Some(layouts) = file.layouts {
            cfg.layouts = Layouts::new(&layouts).map_err(|e| err(e.into()))?;
        }
        if let Some(index) = file.index {
            cfg.index = index;
        }
        Ok(cfg)
    }
}

/// `./artifacts/` → `artifacts`; `.` or empty → the repository root (`""`).
pub fn normalize_root(root: &str) -> Result<String, RootError> {
    let parts: Vec<&str> = root
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || root.starts_with('/') {
        return Err(RootError {
            root: root.to_string(),
        });
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults() {
        let c =
            Config::from_toml("artifacts_root = \"./runs/\"\nprotected_fields = [\"/run_id\"]\n")
                .unwrap();
        assert_eq!(c.artifacts_root, "runs");
        assert_eq!(c.manifest_name, "manifest.json");
        assert_eq!(c.protected, vec!["/run_id".to_string()]);
    }

    #[test]
    fn bad_files_name_the_file() {
        let e = Config::from_toml("artifact_root = 1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(".artifact-migrate.toml: "), "{e}");
        assert!(Config::from_toml("artifacts_root = \"../x\"").is_err());
        assert!(Config::from_toml("protected_fields = [\"run_id\"]").is_err());
        let e = Config::from_toml("layouts = [\"runs/{run_id}\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must contain {job_id}"), "{e}");
    }

    #[test]
    fn the_index_table_is_optional_and_strict() {
        assert_eq!(Config::default().index, IndexConfig::default());
        let c = Config::from_toml("[index]\nupdate_after_commit = false\n").unwrap();
        assert_eq!(c.index.db, None);
        assert!(!c.index.update_after_commit);
        let c = Config::from_toml("[index]\ndb = \"postgres://am@db/idx\"\n").unwrap();
        assert_eq!(c.index.db.as_deref(), Some("postgres://am@db/idx"));
        assert!(c.index.update_after_commit);
        assert!(Config::from_toml("[index]\nurl = \"x\"\n").is_err());
    }

    #[test]
    fn layouts_are_read_in_order() {
        let c = Config::from_toml("layouts = [\"{job_id}/{run_id}\", \"old/{run_id}\"]\n").unwrap();
        assert_eq!(c.layouts.describe(), "{job_id}/{run_id} or old/{run_id}");
        assert_eq!(
            Config::default().layouts.describe(),
            "{job_id}/{run_id} or runs/{run_id}"
        );
    }
}
