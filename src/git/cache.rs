//! The version cache: each manifest blob's `schema_version` (or why it cannot be read),
//! keyed by blob id, in `.git/artifact-migrate/versions`.
//!
//! Derived data only (invariant 5: git is authoritative): a blob's id fixes its content, so
//! an entry can never be stale, and a missing, unreadable or deleted cache only costs a
//! re-read. It lets `status` skip reading and parsing every manifest on each call.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use git2::Oid;

use crate::git::Repo;

/// What a blob holds, as far as versions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedVersion {
    /// The `schema_version` string; `None` when the member is absent.
    Version(Option<String>),
    /// The manifest cannot be read: the error's kind and message.
    Invalid { kind: String, message: String },
}

/// The cache, loaded once per command.
pub struct VersionCache {
    path: PathBuf,
    entries: HashMap<Oid, CachedVersion>,
    used: HashMap<Oid, CachedVersion>,
    changed: bool,
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r', '\t'], " ")
}

impl VersionCache {
    /// Loads the cache of this repository (empty if there is none or it cannot be read).
    pub fn load(repo: &Repo) -> VersionCache {
        let path = repo
            .git
            .commondir()
            .join("artifact-migrate")
            .join("versions");
        let mut entries = HashMap::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                let mut parts = line.splitn(3, ' ');
                let (Some(id), Some(tag)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let Ok(id) = Oid::from_str(id) else { continue };
                let rest = parts.next().unwrap_or_default();
                let v = match tag {
                    "v" => CachedVersion::Version(Some(rest.to_string())),
                    "a" => CachedVersion::Version(None),
                    "x" => match rest.split_once('\t').or_else(|| rest.split_once(' ')) {
                        Some((kind, message)) => CachedVersion::Invalid {
                            kind: kind.to_string(),
                            message: message.to_string(),
                        },
                        None => continue,
                    },
                    _ => continue,
                };
                entries.insert(id, v);
            }
        }
        VersionCache {
            path,
            entries,
            used: HashMap::new(),
            changed: false,
        }
    }

    /// The cached answer for a blob.
    pub fn get(&mut self, id: Oid) -> Option<CachedVersion> {
        let v = self.entries.get(&id)?.clone();
        self.used.insert(id, v.clone());
        Some(v)
    }

    /// Records the answer for a blob.
    pub fn insert(&mut self, id: Oid, v: CachedVersion) {
        self.used.insert(id, v);
        self.changed = true;
    }

    /// Writes the entries this command used or learnt (older ones are dropped, so the cache
    /// stays the size of the corpus). Best effort: a cache that cannot be written is only slower.
    pub fn save(self) {
        if !self.changed && self.used.len() == self.entries.len() {
            return;
        }
        let mut text = String::with_capacity(self.used.len() * 56);
        for (id, v) in &self.used {
            match v {
                CachedVersion::Version(Some(s)) => {
                    text.push_str(&format!("{id} v {}\n", one_line(s)))
                }
                CachedVersion::Version(None) => text.push_str(&format!("{id} a\n")),
                CachedVersion::Invalid { kind, message } => {
                    text.push_str(&format!("{id} x {kind}\t{}\n", one_line(message)))
                }
            }
        }
        let Some(dir) = self.path.parent() else {
            return;
        };
        let tmp = dir.join(format!("versions.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            fs::rename(&tmp, &self.path)
        };
        if write().is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}
