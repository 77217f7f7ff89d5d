//! Finding the manifests in a committed tree (§2): what gets migrated is what is committed.

use std::path::Path;

use git2::{ObjectType, Oid, Tree, TreeWalkMode, TreeWalkResult};
use serde::Serialize;

use crate::config::Config;
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};

/// A manifest blob in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeManifest {
    pub path: RepoPath,
    pub blob: Oid,
    /// The git file mode (0o100644 or 0o100755).
    pub mode: i32,
}

/// The manifests of a tree, and entries named like a manifest that are not files.
#[derive(Debug, Default)]
pub struct Scan {
    /// Sorted bytewise by path.
    pub manifests: Vec<TreeManifest>,
    /// Symbolic links named like a manifest: reported, never followed.
    pub symlinks: Vec<RepoPath>,
    /// Whether a `.gitattributes` file lies under the artifacts root or in a directory
    /// above it (attributes could make working-tree bytes differ from blobs).
    pub has_gitattributes: bool,
}

/// A run found in the canonical layout and in another one (a legacy `runs/<run_id>/`
/// directory beside `<job_id>/<run_id>/`). Both are manifests and both are migrated;
/// readers that want one copy per run (the index, as the seed's reindex does) take the
/// canonical one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunPair {
    pub run_id: String,
    /// The copy in the canonical layout: the one readers prefer.
    pub canonical: RepoPath,
    /// The copy in another layout.
    pub other: RepoPath,
    /// The other copy's layout, e.g. `runs/{run_id}`.
    pub other_layout: String,
    /// Whether both manifests are the same blob.
    pub same_content: bool,
}

impl Scan {
    /// The runs present in the canonical layout and in another one, in path order.
    pub fn pairs(&self, cfg: &Config) -> Vec<RunPair> {
        run_pairs(cfg, &self.manifests)
    }

    /// How many manifests each configured layout places (every layout listed, canonical
    /// first), and how many fit none.
    pub fn layout_counts(&self, cfg: &Config) -> (Vec<(String, usize)>, usize) {
        layout_counts(cfg, self.manifests.iter().map(|m| m.path.as_str()))
    }
}

/// [`Scan::pairs`] over any list of manifests.
pub fn run_pairs(cfg: &Config, manifests: &[TreeManifest]) -> Vec<RunPair> {
    let paths: Vec<&str> = manifests.iter().map(|m| m.path.as_str()).collect();
    cfg.layouts
        .pairs(&cfg.artifacts_root, &paths)
        .into_iter()
        .map(|(c, o)| {
            let (canonical, other) = (&manifests[c], &manifests[o]);
            let place = cfg.layouts.place(&cfg.artifacts_root, other.path.as_str());
            RunPair {
                run_id: place.map(|p| p.run_id.to_string()).unwrap_or_default(),
                canonical: canonical.path.clone(),
                other: other.path.clone(),
                other_layout: place
                    .and_then(|p| cfg.layouts.get(p.layout))
                    .map(|l| l.pattern().to_string())
                    .unwrap_or_default(),
                same_content: canonical.blob == other.blob,
            }
        })
        .collect()
}

/// [`Scan::layout_counts`] over any list of manifest paths.
pub fn layout_counts<'a>(
    cfg: &Config,
    paths: impl Iterator<Item = &'a str>,
) -> (Vec<(String, usize)>, usize) {
    let mut counts = vec![0usize; cfg.layouts.all().len()];
    let mut unplaced = 0;
    for p in paths {
        match cfg.layouts.place(&cfg.artifacts_root, p) {
            Some(place) => counts[place.layout] += 1,
            None => unplaced += 1,
        }
    }
    let named = cfg
        .layouts
        .all()
        .iter()
        .zip(counts)
        .map(|(l, n)| (l.pattern().to_string(), n))
        .collect();
    (named, unplaced)
}

/// Whether a directory is skipped: input snapshots and dot-directories (staging areas).
pub fn skipped_dir(name: &str) -> bool {
    name == "inputs" || name.starts_with('.')
}

/// Whether a repository path is a manifest path under the config's rules (used for working-tree files).
pub fn is_manifest_path(path: &str, cfg: &Config) -> bool {
    let rest = if cfg.artifacts_root.is_empty() {
        path
    } else {
        match path
            .strip_prefix(cfg.artifacts_root.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(r) => r,
            None => return false,
        }
    };
    let mut parts: Vec<&str> = rest.split('/').collect();
    let Some(file) = parts.pop() else {
        return false;
    };
    file == cfg.manifest_name && !parts.iter().any(|d| skipped_dir(d))
}

/// Lists the manifests under the artifacts root of a commit's tree.
pub fn scan_commit(repo: &Repo, commit: CommitId, cfg: &Config) -> Result<Scan, GitError> {
    let tree = repo
        .git
        .find_commit(commit.0)
        .and_then(|c| c.tree())
        .map_err(GitError::git(format!("read the tree of {commit}")))?;
    scan_tree(repo, &tree, cfg)
}

/// Lists the manifests under the artifacts root of a tree.
pub fn scan_tree(repo: &Repo, tree: &Tree<'_>, cfg: &Config) -> Result<Scan, GitError> {
    let mut scan = Scan::default();
    let mut dir = String::new();
    for part in std::iter::once("").chain(cfg.artifacts_root.split('/').filter(|p| !p.is_empty())) {
        if !part.is_empty() {
            dir = if dir.is_empty() {
                part.to_string()
            } else {
                format!("{dir}/{part}")
            };
        }
        let candidate = if dir.is_empty() {
            ".gitattributes".to_string()
        } else {
            format!("{dir}/.gitattributes")
        };
        if tree.get_path(Path::new(&candidate)).is_ok() {
            scan.has_gitattributes = true;
        }
    }
    let root_tree;
    let (walk_tree, prefix) = if cfg.artifacts_root.is_empty() {
        (tree, String::new())
    } else {
        match tree.get_path(Path::new(&cfg.artifacts_root)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => {
                root_tree = repo
                    .git
                    .find_tree(e.id())
                    .map_err(GitError::git(format!("read {}", cfg.artifacts_root)))?;
                (&root_tree, format!("{}/", cfg.artifacts_root))
            }
            _ => return Ok(scan),
        }
    };
    walk_tree
        .walk(TreeWalkMode::PreOrder, |dir, entry| {
            let Ok(name) = entry.name() else {
                return TreeWalkResult::Skip;
            };
            match entry.kind() {
                Some(ObjectType::Tree) if skipped_dir(name) => TreeWalkResult::Skip,
                Some(ObjectType::Blob) if name == cfg.manifest_name => {
                    let path = RepoPath::new(format!("{prefix}{dir}{name}"));
                    if entry.filemode() == 0o120000 {
                        scan.symlinks.push(path);
                    } else {
                        scan.manifests.push(TreeManifest {
                            path,
                            blob: entry.id(),
                            mode: entry.filemode(),
                        });
                    }
                    TreeWalkResult::Ok
                }
                Some(ObjectType::Blob) if name == ".gitattributes" => {
                    scan.has_gitattributes = true;
                    TreeWalkResult::Ok
                }
                _ => TreeWalkResult::Ok,
            }
        })
        .map_err(GitError::git("walk the tree"))?;
    scan.manifests
        .sort_by(|a, b| a.path.as_str().as_bytes().cmp(b.path.as_str().as_bytes()));
    scan.symlinks.sort();
    Ok(scan)
}

/// Keeps the paths a pathspec names: each spec is a repository-relative file or directory
/// (`artifacts/job-a` takes everything below it). No specs: everything.
pub fn matches_pathspec(path: &str, specs: &[String]) -> bool {
    specs.is_empty()
        || specs.iter().any(|s| {
            let s = s.trim_end_matches('/');
            s.is_empty()
                || path == s
                || (path.starts_with(s) && path.as_bytes().get(s.len()) == Some(&b'/'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_skip_inputs_and_dot_dirs() {
        let cfg = Config::default();
        assert!(is_manifest_path("artifacts/j/r/manifest.json", &cfg));
        assert!(is_manifest_path("artifacts/manifest.json", &cfg));
        assert!(!is_manifest_path(
            "artifacts/j/r/inputs/manifest.json",
            &cfg
        ));
        assert!(!is_manifest_path("artifacts/j/.tmp/manifest.json", &cfg));
        assert!(!is_manifest_path("other/j/r/manifest.json", &cfg));
        assert!(!is_manifest_path("artifacts/j/r/other.json", &cfg));
    }

    #[test]
    fn pathspecs_match_files_and_directories() {
        let specs = vec!["artifacts/job-a".to_string()];
        assert!(matches_pathspec("artifacts/job-a/r/manifest.json", &specs));
        assert!(!matches_pathspec(
            "artifacts/job-ab/r/manifest.json",
            &specs
        ));
        assert!(matches_pathspec("x", &[]));
        assert!(matches_pathspec(
            "artifacts/j/manifest.json",
            &["artifacts/j/manifest.json".to_string()]
        ));
    }
}
