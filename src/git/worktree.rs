//! The working tree: which manifests are dirty, replacing files atomically after a batch,
//! updating their index entries, and the journal that lets the next command finish an
//! update that a crash interrupted (§7).
//!
//! Order of a batch: objects → journal → ref compare-and-swap → files → index → journal
//! removed. A SIGKILL anywhere leaves HEAD at the old or the whole new commit; the journal
//! says which commit the working tree must catch up with.

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use git2::{IndexEntry, IndexTime, Oid};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::git::objects::MODE_LINK;
use crate::git::scan::is_manifest_path;
use crate::git::{GitError, Repo};
use crate::ids::{CommitId, RepoPath};

/// Manifests that are not as committed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WorktreeState {
    /// Modified, deleted or staged manifests.
    pub dirty: Vec<String>,
    /// Manifests git does not track.
    pub untracked: Vec<String>,
}

/// Every manifest file in the working tree's artifacts directory, as repository paths
/// (none for a bare repository): not `inputs/`, dot-directories or links. It needs nothing
/// from git, so it can run before the commit is scanned; [`manifest_state`] takes its answer.
pub fn manifest_files(repo: &Repo, cfg: &Config) -> Vec<String> {
    let Some(workdir) = repo.workdir() else {
        return Vec::new();
    };
    let root = if cfg.artifacts_root.is_empty() {
        workdir.to_path_buf()
    } else {
        workdir.join(&cfg.artifacts_root)
    };
    let prefix = if cfg.artifacts_root.is_empty() {
        String::new()
    } else {
        format!("{}/", cfg.artifacts_root)
    };
    let mut found = Vec::new();
    walk_manifests(&root, &prefix, &cfg.manifest_name, &mut found);
    found
}

/// The state of the manifests in the working tree and index (nothing for a bare
/// repository): `committed` are HEAD's manifests in scope, with their blobs, and `files` the
/// working tree's manifest files ([`manifest_files`]). Dirty ones are found by git's stat
/// fast path (`dirty_paths`), staged new ones from the index, untracked ones among `files`.
pub fn manifest_state(
    repo: &Repo,
    cfg: &Config,
    committed: &[(RepoPath, Oid)],
    in_scope: impl Fn(&str) -> bool,
    files: Vec<String>,
) -> Result<WorktreeState, GitError> {
    let mut state = WorktreeState::default();
    if repo.workdir().is_none() {
        return Ok(state);
    }
    state.dirty = dirty_paths(repo, committed)?;
    let index = repo.git.index().map_err(GitError::git("read the index"))?;
    let head: std::collections::HashSet<&str> = committed.iter().map(|(p, _)| p.as_str()).collect();
    let mut tracked: std::collections::HashSet<String> = std::collections::HashSet::new();
    let name = cfg.manifest_name.as_bytes();
    for e in index.iter() {
        if !e.path.ends_with(name) {
            continue;
        }
        let path = String::from_utf8_lossy(&e.path).into_owned();
        if is_manifest_path(&path, cfg) && in_scope(&path) && !head.contains(path.as_str()) {
            // In the index but not in HEAD: staged, not committed.
            state.dirty.push(path.clone());
        }
        tracked.insert(path);
    }
    for p in files {
        if !tracked.contains(&p)
            && in_scope(&p)
            && !repo
                .git
                .status_should_ignore(Path::new(&p))
                .unwrap_or(false)
        {
            state.untracked.push(p);
        }
    }
    state.dirty.sort();
    state.dirty.dedup();
    state.untracked.sort();
    Ok(state)
}

/// Every file named `name` below `dir`, as repository paths, skipping `inputs/`,
/// dot-directories and symbolic links; the first level in parallel.
fn walk_manifests(dir: &Path, prefix: &str, name: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        let file_name = e.file_name().to_string_lossy().into_owned();
        if t.is_dir() && !crate::git::scan::skipped_dir(&file_name) {
            subdirs.push((e.path(), format!("{prefix}{file_name}/")));
        } else if t.is_file() && file_name == name {
            out.push(format!("{prefix}{file_name}"));
        }
    }
    let nested: Vec<Vec<String>> = subdirs
        .par_iter()
        .map(|(d, p)| {
            let mut v = Vec::new();
            walk_manifests(d, p, name, &mut v);
            v
        })
        .collect();
    out.extend(nested.into_iter().flatten());
}

/// One file the working tree must take from `old` to `new`. A zero `old` creates it, a
/// zero `new` removes it (and the directories that leaves empty); `mode` is the new mode,
/// [`MODE_LINK`] for a symbolic link (whose blob is the link's target).
#[derive(Debug, Clone)]
pub struct PendingFile {
    pub path: RepoPath,
    pub old: Oid,
    pub new: Oid,
    pub mode: i32,
}

impl PendingFile {
    /// A new content for a regular file that exists before and after: all a migration batch
    /// (or its rollback) does, updated in parallel rounds.
    fn is_content_change(&self) -> bool {
        !self.old.is_zero() && !self.new.is_zero() && self.mode != MODE_LINK
    }
}

/// What a working-tree update did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WorktreeReport {
    pub updated: usize,
    /// Files left alone because they were neither the old nor the new version.
    pub skipped: Vec<String>,
}

fn tmp_path(abs: &Path) -> PathBuf {
    tmp_path_for(abs, std::process::id())
}

fn tmp_path_for(abs: &Path, pid: u32) -> PathBuf {
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    abs.with_file_name(format!(".{name}.artifact-migrate-{pid}.tmp"))
}

/// Replaces one file (or symbolic link, `mode` [`MODE_LINK`], `bytes` its target): write
/// beside it, then rename over it, so a reader (or a crash) sees the old or the new file,
/// never half of one.
fn replace_file(abs: &Path, bytes: &[u8], mode: i32) -> Result<(), GitError> {
    let tmp = tmp_path(abs);
    let write = || -> std::io::Result<()> {
        if mode == MODE_LINK {
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(bytes), &tmp)?;
            return fs::rename(&tmp, abs);
        }
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if mode == 0o100755 {
            let mut p = f.metadata()?.permissions();
            p.set_mode(p.mode() | 0o111);
            f.set_permissions(p)?;
        }
        drop(f);
        fs::rename(&tmp, abs)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        GitError::Write {
            path: abs.to_path_buf(),
            source: e,
        }
    })
}

/// How long a command waits for another process's `index.lock` (git holds it for the
/// moment of one `git add` or `git commit`) before it refuses.
const INDEX_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// git's `index.lock`, taken as git takes it (created exclusively) and removed when
/// dropped unless it was renamed into place.
struct IndexLock {
    path: PathBuf,
    held: bool,
}

impl IndexLock {
    /// Takes the lock, waiting up to [`INDEX_LOCK_WAIT`] for another holder to let go.
    fn take(repo: &Repo) -> Result<IndexLock, GitError> {
        let path = repo.git_dir().join("index.lock");
        let start = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(IndexLock { path, held: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() >= INDEX_LOCK_WAIT {
                        return Err(GitError::IndexLocked { path });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(GitError::Write { path, source: e }),
            }
        }
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        if self.held {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes the index as git does, holding `index.lock` from the read to the rename: the
/// index as it is now (whatever a `git add` or `git commit` made of it meanwhile) with
/// `edits` replayed on it, written to a scratch file that replaces the lock file and then
/// the index. A failure names its real cause: libgit2 reports a failed write of a large
/// index as `no error` (its buffered writer drops the OS's reason), so the cause is found
/// by writing as many bytes beside it ourselves.
fn write_index(repo: &Repo, edits: &[IndexEdit]) -> Result<(), GitError> {
    let path = repo.git_dir().join("index");
    let mut lock = IndexLock::take(repo)?;
    let scratch = repo
        .git_dir()
        .join(format!("index.artifact-migrate-{}.tmp", std::process::id()));
    let written = (|| -> Result<(), GitError> {
        match fs::copy(&path, &scratch) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(GitError::Write {
                    path: path.clone(),
                    source: e,
                })
            }
        }
        let mut index = git2::Index::open(&scratch).map_err(GitError::git("read the index"))?;
        for edit in edits {
            match edit {
                IndexEdit::Add(entry) => index.add(entry),
                IndexEdit::Remove(p) => index.remove_path(Path::new(p)),
            }
            .map_err(GitError::git("update an index entry"))?;
        }
        if let Err(e) = index.write() {
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0).max(4096);
            return Err(match probe_write(repo.git_dir(), size) {
                Some(cause) => GitError::Write {
                    path: path.clone(),
                    source: cause,
                },
                None => GitError::Git {
                    op: format!("write the index {}", path.display()),
                    source: e,
                },
            });
        }
        let rename = |from: &Path, to: &Path| {
            fs::rename(from, to).map_err(|e| GitError::Write {
                path: path.clone(),
                source: e,
            })
        };
        rename(&scratch, &lock.path)?;
        rename(&lock.path, &path)?;
        lock.held = false;
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&scratch);
        let mut stale = scratch.clone().into_os_string();
        stale.push(".lock");
        let _ = fs::remove_file(stale);
    }
    written
}

/// Creates, fills with `size` bytes, syncs and removes a scratch file in `dir`: the
/// file system's own answer to "can this be written now?" (`None` when it can).
pub(crate) fn probe_write(dir: &Path, size: u64) -> Option<std::io::Error> {
    let probe = dir.join(format!(".artifact-migrate-probe-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&probe)?;
        let block = vec![0u8; 64 << 10];
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
        f.sync_all()
    })();
    let _ = fs::remove_file(&probe);
    result.err()
}

/// libgit2's `GIT_INDEX_ENTRY_SKIP_WORKTREE`: the path is outside a sparse checkout.
const SKIP_WORKTREE: u16 = 1 << 14;

fn skip_worktree(entry: &IndexEntry) -> bool {
    entry.flags_extended & SKIP_WORKTREE != 0
}

/// The stat data git keeps in an index entry, read from a file's metadata.
fn stat_entry(entry: &mut IndexEntry, meta: &fs::Metadata) {
    entry.file_size = meta.size() as u32;
    entry.mtime = IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32);
    entry.ctime = IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32);
    entry.dev = meta.dev() as u32;
    entry.ino = meta.ino() as u32;
    entry.uid = meta.uid();
    entry.gid = meta.gid();
}

/// The index with the modification time of its file, for git's racy-clean rule: a file
/// modified in the same second the index was written may have changed unseen.
struct IndexSnapshot {
    index: git2::Index,
    written: Option<(i64, i64)>,
}

impl IndexSnapshot {
    fn read(repo: &Repo) -> Result<IndexSnapshot, GitError> {
        let index = repo.git.index().map_err(GitError::git("read the index"))?;
        let written = fs::metadata(repo.git_dir().join("index"))
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec()));
        Ok(IndexSnapshot { index, written })
    }
}

/// Whether the file's metadata matches what the index recorded, so its content is the
/// indexed blob without reading it (git's own fast path, racy entries excluded).
fn stat_clean(entry: &IndexEntry, meta: &fs::Metadata, index_written: Option<(i64, i64)>) -> bool {
    let same = u64::from(entry.file_size) == (meta.size() & 0xffff_ffff)
        && entry.mtime.seconds() == meta.mtime() as i32
        && entry.mtime.nanoseconds() == meta.mtime_nsec() as u32
        && entry.ino == meta.ino() as u32
        && meta.file_type().is_file();
    let racy = index_written.is_none_or(|(s, ns)| (meta.mtime(), meta.mtime_nsec()) >= (s, ns));
    same && !racy
}

/// The blob id of a working-tree file (of a symbolic link: of its target, as git stores
/// it), `None` if it does not exist (or is a directory or something else).
fn file_blob_id(abs: &Path) -> Result<Option<Oid>, GitError> {
    match fs::symlink_metadata(abs) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(m) if m.file_type().is_symlink() => {
            let target = fs::read_link(abs).map_err(GitError::io(abs))?;
            return Oid::hash_object(git2::ObjectType::Blob, target.as_os_str().as_bytes())
                .map(Some)
                .map_err(GitError::git("hash a link"));
        }
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(GitError::Io {
                path: abs.to_path_buf(),
                source: e,
            })
        }
    }
    let bytes = fs::read(abs).map_err(GitError::io(abs))?;
    Oid::hash_object(git2::ObjectType::Blob, &bytes)
        .map(Some)
        .map_err(GitError::git("hash a file"))
}

/// Which of these committed manifests are modified, deleted or staged in the working tree
/// and index. Reads only these paths (git's stat fast path, content hash otherwise), in
/// parallel; an empty answer for a bare repository.
pub fn dirty_paths(repo: &Repo, manifests: &[(RepoPath, Oid)]) -> Result<Vec<String>, GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(Vec::new());
    };
    let snap = IndexSnapshot::read(repo)?;
    let conflicts = snap.index.has_conflicts();
    let work: Vec<(&RepoPath, Oid, Option<IndexEntry>)> = manifests
        .iter()
        .map(|(p, blob)| (p, *blob, snap.index.get_path(Path::new(p.as_str()), 0)))
        .collect();
    let mut dirty: Vec<String> = work
        .par_iter()
        .map(|(path, blob, entry)| -> Result<Option<String>, GitError> {
            let Some(entry) = entry else {
                return Ok(Some(path.to_string()));
            };
            if entry.id != *blob {
                return Ok(Some(path.to_string()));
            }
            if skip_worktree(entry) {
                // Outside a sparse checkout: no file to compare, the index entry is the truth.
                return Ok(None);
            }
            let abs = workdir.join(path.as_str());
            let meta = match fs::symlink_metadata(&abs) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Some(path.to_string()))
                }
                Err(e) => {
                    return Err(GitError::Io {
                        path: abs,
                        source: e,
                    })
                }
            };
            if stat_clean(entry, &meta, snap.written) {
                return Ok(None);
            }
            Ok((file_blob_id(&abs)? != Some(*blob)).then(|| path.to_string()))
        })
        .filter_map(|r| r.transpose())
        .collect::<Result<_, _>>()?;
    if conflicts {
        for (p, _) in manifests {
            if (1..=3).any(|stage| snap.index.get_path(Path::new(p.as_str()), stage).is_some()) {
                dirty.push(p.to_string());
            }
        }
    }
    dirty.sort();
    dirty.dedup();
    Ok(dirty)
}

/// What is not as committed in the working tree under `dirs` (run directories, repository
/// relative): tracked files modified, deleted or staged (`committed` are the files the tree
/// holds below them, with their blobs), index entries below them that are not committed, and
/// anything on disk below them that git does not track, ignored files too (moving a run
/// would leave them behind). Reads the index once. Nothing for a bare repository.
pub fn dirty_dirs(
    repo: &Repo,
    dirs: &[&str],
    committed: &[(RepoPath, Oid)],
) -> Result<Vec<String>, GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(Vec::new());
    };
    let mut out = dirty_paths(repo, committed)?;
    let known: std::collections::HashSet<&str> =
        committed.iter().map(|(p, _)| p.as_str()).collect();
    let wanted: std::collections::HashSet<&str> = dirs.iter().copied().collect();
    // A path is below one of the directories when it or one of its ancestors is one.
    let below =
        |p: &str| wanted.contains(p) || p.match_indices('/').any(|(i, _)| wanted.contains(&p[..i]));
    let index = repo.git.index().map_err(GitError::git("read the index"))?;
    for e in index.iter() {
        let p = String::from_utf8_lossy(&e.path);
        if below(&p) && !known.contains(p.as_ref()) {
            out.push(p.into_owned());
        }
    }
    for dir in dirs {
        let mut found = Vec::new();
        walk_all(&workdir.join(dir), dir, &mut found)?;
        out.extend(found.into_iter().filter(|p| !known.contains(p.as_str())));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every entry below `abs` (repository path `rel`) that is not a directory, links not
/// followed; `abs` itself when it is no directory.
fn walk_all(abs: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), GitError> {
    let meta = match fs::symlink_metadata(abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(GitError::Io {
                path: abs.to_path_buf(),
                source: e,
            })
        }
    };
    if !meta.is_dir() {
        out.push(rel.to_string());
        return Ok(());
    }
    for e in fs::read_dir(abs).map_err(GitError::io(abs))? {
        let e = e.map_err(GitError::io(abs))?;
        let name = e.file_name().to_string_lossy().into_owned();
        walk_all(&e.path(), &format!("{rel}/{name}"), out)?;
    }
    Ok(())
}

/// What updating one file did, for the index.
#[allow(clippy::large_enum_variant)] // built and consumed once per file, never stored
enum Done {
    Updated {
        entry: IndexEntry,
        meta: fs::Metadata,
        new: Oid,
        mode: i32,
        wrote: bool,
    },
    IndexOnly(IndexEntry),
    /// Removed (`wrote`: the file was still there); `indexed`: it has an index entry.
    Removed {
        path: String,
        wrote: bool,
        indexed: bool,
    },
    Skipped(String),
}

/// A fresh index entry for a file git did not track yet (its stat data comes later).
fn new_index_entry(path: &RepoPath, mode: i32, id: Oid) -> IndexEntry {
    let zero = IndexTime::new(0, 0);
    IndexEntry {
        ctime: zero,
        mtime: zero,
        dev: 0,
        ino: 0,
        mode: mode as u32,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: path.as_str().len().min(0xfff) as u16,
        flags_extended: 0,
        path: path.as_str().as_bytes().to_vec(),
    }
}

/// Brings one file from its old version (or absence) to its new one: written when it is the
/// old version, only re-indexed when it is already the new one, left alone (and reported)
/// when it is neither or when its index entry was staged by someone else.
fn update_one(
    workdir: &Path,
    f: &PendingFile,
    bytes: &[u8],
    entry: Option<IndexEntry>,
    written: Option<(i64, i64)>,
    counter: &std::sync::atomic::AtomicUsize,
) -> Result<Done, GitError> {
    let abs = workdir.join(f.path.as_str());
    let old = (!f.old.is_zero()).then_some(f.old);
    let skipped = || Ok(Done::Skipped(f.path.to_string()));
    let entry = match entry {
        // Not checked out (sparse checkout): move the index entry, write no file.
        Some(mut e) if skip_worktree(&e) => {
            if Some(e.id) != old && e.id != f.new {
                return skipped();
            }
            e.id = f.new;
            e.mode = f.mode as u32;
            return Ok(Done::IndexOnly(e));
        }
        other => other,
    };
    let meta = fs::symlink_metadata(&abs).ok();
    // Fast path: the file is exactly what the index says, and the index says old.
    let known_old = matches!((&entry, &meta, old), (Some(e), Some(m), Some(o)) if e.id == o && stat_clean(e, m, written));
    let current = if known_old { old } else { file_blob_id(&abs)? };
    let entry = match entry {
        Some(e) => e,
        None if old.is_none() => new_index_entry(&f.path, f.mode, f.new),
        None => return skipped(),
    };
    let wrote = current == old;
    if wrote {
        if old.is_none() {
            if meta.is_some() {
                // A directory (or something else that is no file) is in the way.
                return skipped();
            }
            if let Some(dir) = abs.parent() {
                fs::create_dir_all(dir).map_err(GitError::io(dir))?;
            }
        }
        crate::fault::counted("files", counter);
        // A safe point: every file so far is whole, the journal finishes the rest.
        crate::interrupt::check().map_err(|by| interrupted_after_landing(by, None))?;
        replace_file(&abs, bytes, f.mode)?;
    } else if current != Some(f.new) {
        return skipped();
    }
    if Some(entry.id) != old && entry.id != f.new {
        // Staged by someone else meanwhile: not ours to change.
        return skipped();
    }
    let meta = fs::symlink_metadata(&abs).map_err(GitError::io(&abs))?;
    Ok(Done::Updated {
        entry,
        meta,
        new: f.new,
        mode: f.mode,
        wrote,
    })
}

/// Removes one file that is still its old version (already gone is fine); leaves it alone
/// (and reports it) when it is anything else.
fn remove_one(
    workdir: &Path,
    f: &PendingFile,
    entry: Option<IndexEntry>,
    written: Option<(i64, i64)>,
    counter: &std::sync::atomic::AtomicUsize,
) -> Result<Done, GitError> {
    let abs = workdir.join(f.path.as_str());
    let path = f.path.to_string();
    let indexed = entry.is_some();
    if let Some(e) = &entry {
        if e.id != f.old {
            return Ok(Done::Skipped(path));
        }
        if skip_worktree(e) {
            return Ok(Done::Removed {
                path,
                wrote: false,
                indexed,
            });
        }
    }
    if non_dir_ancestor(workdir, f.path.as_str()) {
        // A link (or file) stands where its directory was: the file is not there any more,
        // and what the path reaches through the link is not ours to remove.
        return Ok(Done::Removed {
            path,
            wrote: false,
            indexed,
        });
    }
    let meta = fs::symlink_metadata(&abs).ok();
    let known_old = matches!((&entry, &meta), (Some(e), Some(m)) if stat_clean(e, m, written));
    let current = if known_old {
        Some(f.old)
    } else {
        file_blob_id(&abs)?
    };
    match current {
        Some(c) if c == f.old => {
            crate::fault::counted("files", counter);
            crate::interrupt::check().map_err(|by| interrupted_after_landing(by, None))?;
            fs::remove_file(&abs).map_err(GitError::io(&abs))?;
            Ok(Done::Removed {
                path,
                wrote: true,
                indexed,
            })
        }
        None if meta.is_none() => Ok(Done::Removed {
            path,
            wrote: false,
            indexed,
        }),
        _ => Ok(Done::Skipped(path)),
    }
}

/// One change to git's index, replayed on the index as it is when it is written.
enum IndexEdit {
    Add(IndexEntry),
    Remove(String),
}

/// Records one file's result in the index snapshot, the edits to write, and the report.
fn record(
    index: &mut git2::Index,
    edits: &mut Vec<IndexEdit>,
    done: Done,
    report: &mut WorktreeReport,
) -> Result<(), GitError> {
    match done {
        Done::Updated {
            mut entry,
            meta,
            new,
            mode,
            wrote,
        } => {
            report.updated += usize::from(wrote);
            entry.id = new;
            entry.mode = mode as u32;
            stat_entry(&mut entry, &meta);
            index
                .add(&entry)
                .map_err(GitError::git("update an index entry"))?;
            edits.push(IndexEdit::Add(entry));
        }
        Done::IndexOnly(entry) => {
            index
                .add(&entry)
                .map_err(GitError::git("update an index entry"))?;
            edits.push(IndexEdit::Add(entry));
        }
        Done::Removed {
            path,
            wrote,
            indexed,
        } => {
            report.updated += usize::from(wrote);
            if indexed {
                index
                    .remove_path(Path::new(&path))
                    .map_err(GitError::git(format!("remove the index entry of {path}")))?;
                edits.push(IndexEdit::Remove(path));
            }
        }
        Done::Skipped(p) => report.skipped.push(p),
    }
    Ok(())
}

/// Whether a directory above `path` (below the working tree's root) is a symbolic link or a
/// file on disk: writing there would go through a link, or fail.
fn non_dir_ancestor(workdir: &Path, path: &str) -> bool {
    let mut at = workdir.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// Removes the directories above `path` that its removal left empty, deepest first.
fn prune_dirs(workdir: &Path, path: &str) {
    let mut dir = workdir.join(path);
    while dir.pop() && dir.starts_with(workdir) && dir != workdir {
        if fs::remove_dir(&dir).is_err() {
            break;
        }
    }
}

/// Brings each file from its old to its new version (files already new are only
/// re-indexed; files that are neither are left alone and reported), then writes the index
/// once, under git's own `index.lock`. Content changes go in rounds of a few thousand read
/// from the object database and written in parallel; files created or removed (a
/// relocation, or its rollback) go one by one, creations first, so a crash leaves a run in
/// both places rather than in none, except where a removal must come first (a directory
/// that becomes a link, or a link that becomes a directory).
pub fn update_files(repo: &Repo, files: &[PendingFile]) -> Result<WorktreeReport, GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(WorktreeReport::default());
    };
    let mut snap = IndexSnapshot::read(repo)?;
    let written = snap.written;
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let mut report = WorktreeReport::default();
    let mut edits = Vec::new();
    let (content, structure): (Vec<&PendingFile>, Vec<&PendingFile>) =
        files.iter().partition(|f| f.is_content_change());
    let read_new = |f: &PendingFile| -> Result<Vec<u8>, GitError> {
        if f.new.is_zero() {
            return Ok(Vec::new());
        }
        repo.git
            .find_blob(f.new)
            .map(|b| b.content().to_vec())
            .map_err(GitError::git(format!("read the new blob of {}", f.path)))
    };
    // Index entries are looked up on this thread before any is changed (each file changes
    // only its own), so the rounds can read one round of blobs while the pool writes the
    // round before.
    let mut entries = content
        .iter()
        .map(|f| snap.index.get_path(Path::new(f.path.as_str()), 0))
        .collect::<Vec<_>>()
        .into_iter();
    super::rounds::in_rounds(
        &content,
        |round| {
            round
                .iter()
                .map(|f| Ok((read_new(f)?, entries.next().flatten())))
                .collect()
        },
        |round, inputs: Vec<(Vec<u8>, Option<IndexEntry>)>| {
            round
                .par_iter()
                .zip(inputs)
                .map(|(f, (bytes, entry))| update_one(workdir, f, &bytes, entry, written, &counter))
                .collect()
        },
        |_, results: Vec<Result<Done, GitError>>| {
            for r in results {
                record(&mut snap.index, &mut edits, r?, &mut report)?;
            }
            Ok::<(), GitError>(())
        },
    )?;
    if !structure.is_empty() {
        let removals: std::collections::BTreeSet<&str> = structure
            .iter()
            .filter(|f| f.new.is_zero())
            .map(|f| f.path.as_str())
            .collect();
        // The directories above each removal: a file (or link) created at one of them must
        // wait until the removals below it are done, or a removal would go through it.
        let removal_dirs: std::collections::BTreeSet<&str> = removals
            .iter()
            .flat_map(|r| r.match_indices('/').map(move |(i, _)| &r[..i]))
            .collect();
        let waits = |p: &str| {
            removals.contains(p)
                || removal_dirs.contains(p)
                || p.match_indices('/')
                    .any(|(i, _)| removals.contains(&p[..i]))
        };
        let (now, later): (Vec<&PendingFile>, Vec<&PendingFile>) = structure
            .iter()
            .filter(|f| !f.new.is_zero())
            .partition(|f| {
                let p = f.path.as_str();
                !waits(p)
                    && !non_dir_ancestor(workdir, p)
                    && !fs::symlink_metadata(workdir.join(p)).is_ok_and(|m| m.is_dir())
            });
        let entry = |snap: &IndexSnapshot, f: &PendingFile| {
            snap.index.get_path(Path::new(f.path.as_str()), 0)
        };
        for f in now {
            let done = update_one(
                workdir,
                f,
                &read_new(f)?,
                entry(&snap, f),
                written,
                &counter,
            )?;
            record(&mut snap.index, &mut edits, done, &mut report)?;
        }
        for f in structure.iter().filter(|f| f.new.is_zero()) {
            let done = remove_one(workdir, f, entry(&snap, f), written, &counter)?;
            if matches!(done, Done::Removed { .. }) {
                prune_dirs(workdir, f.path.as_str());
            }
            record(&mut snap.index, &mut edits, done, &mut report)?;
        }
        for f in later {
            let p = f.path.as_str();
            let abs = workdir.join(p);
            if fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir()) {
                // The directory the removals emptied (else someone else's files are in it).
                let _ = fs::remove_dir(&abs);
            }
            let done = if non_dir_ancestor(workdir, p) {
                Done::Skipped(p.to_string())
            } else {
                update_one(
                    workdir,
                    f,
                    &read_new(f)?,
                    entry(&snap, f),
                    written,
                    &counter,
                )?
            };
            record(&mut snap.index, &mut edits, done, &mut report)?;
        }
    }
    crate::fault::point("before-index");
    crate::interrupt::check().map_err(|by| interrupted_after_landing(by, None))?;
    write_index(repo, &edits)?;
    // The repository's cached index is the snapshot: bring it to what was written.
    snap.index
        .read(true)
        .map_err(GitError::git("read the index back"))?;
    Ok(report)
}

/// The record of a ref move whose working-tree update has not finished yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Journal {
    /// `apply`, `rollback` or `relocate`.
    pub operation: String,
    pub refname: String,
    pub old: String,
    pub new: String,
    /// The process that wrote it: a journal of a live process is its own business.
    pub pid: u32,
}

fn journal_dir(repo: &Repo) -> PathBuf {
    repo.git_dir().join("artifact-migrate")
}

/// The tool's own lock on bringing the working tree to a commit, held from before a ref
/// move until the files and the index follow it: a second command that would land a
/// commit waits, so two landings never update the files at the same time (a rollback's
/// files overwritten by the apply it reverts, still finishing its own). An advisory lock
/// (`flock`) on `.git/artifact-migrate/worktree.flock`: the system releases it when the
/// process ends, however it ends, so a SIGKILL leaves nothing to clean up. git does not
/// know it; git's own commands are kept out by `index.lock` as ever.
pub struct WorktreeLock {
    _file: Option<fs::File>,
}

impl WorktreeLock {
    /// Takes the lock, calling `waiting` once if another command holds it, for as long as
    /// `needed` says the lock is still worth having (the branch is still where this
    /// command's commit expects it: once it moved, the compare-and-swap will refuse
    /// anyway, and the command goes on without the lock to say so), and at most
    /// [`WORKTREE_LOCK_WAIT`]. Where the file cannot be opened (a read-only file system)
    /// no lock is needed: nothing will be written.
    pub fn take(
        repo: &Repo,
        waiting: &dyn Fn(),
        needed: &dyn Fn() -> bool,
    ) -> Result<WorktreeLock, GitError> {
        let dir = journal_dir(repo);
        let path = dir.join("worktree.flock");
        if !path.exists() {
            let _ = fs::create_dir_all(&dir).and_then(|()| {
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
            });
        }
        // Held open for reading only (flock needs no more), so the file system can still
        // be remounted read-only under a waiting or a failing command.
        let Ok(file) = fs::File::open(&path) else {
            return Ok(WorktreeLock { _file: None });
        };
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WorktreeLock { _file: Some(file) }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(GitError::Io { path, source: e }),
            }
            if !needed() {
                return Ok(WorktreeLock { _file: None });
            }
            if start.elapsed() >= WORKTREE_LOCK_WAIT {
                return Err(GitError::WorktreeBusy {
                    path,
                    waited: start.elapsed().as_secs(),
                });
            }
            if !told {
                waiting();
                told = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// How long a command waits for another one to bring the working tree to its commit.
pub const WORKTREE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

fn journal_path(repo: &Repo, j: &Journal) -> PathBuf {
    // The pid too: two runs making the same commit (same tree, epoch and identity) must
    // never remove each other's journal.
    journal_dir(repo).join(format!("journal-{}-{}.json", j.new, j.pid))
}

/// Writes the journal (before the ref moves). One file per new commit, so two runs racing
/// on one repository never overwrite each other's.
pub fn write_journal(repo: &Repo, j: &Journal) -> Result<(), GitError> {
    let path = journal_path(repo, j);
    let dir = journal_dir(repo);
    fs::create_dir_all(&dir).map_err(GitError::io(&dir))?;
    let text = serde_json::to_vec_pretty(j).map_err(|e| GitError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    let tmp = path.with_extension(format!("{}.tmp", j.pid));
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            GitError::Write { path, source: e }
        })
}

/// What a signal at a safe point after the ref move leaves: the commit is in, some files may
/// still be old, and the journal lets the next command finish them. `landed` names the
/// commit and branch when the caller knows them.
pub fn interrupted_after_landing(
    by: crate::interrupt::Interrupted,
    landed: Option<(&str, &str)>,
) -> GitError {
    let what = match landed {
        Some((commit, refname)) => format!(
            " after {} landed on {refname}",
            &commit[..12.min(commit.len())]
        ),
        None => " after the commit landed".to_string(),
    };
    GitError::Interrupted {
        by,
        state: format!("stopped{what}, before the working tree was up to date; run any artifact-migrate command to finish updating it"),
    }
}

/// Removes the journal (after the working tree caught up, or when the ref did not move).
pub fn clear_journal(repo: &Repo, j: &Journal) -> Result<(), GitError> {
    let path = journal_path(repo, j);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(GitError::Io { path, source: e }),
    }
}

/// What the start of a command found of an interrupted run.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    pub operation: String,
    pub commit: CommitId,
    /// `completed`: the ref had moved and the working tree was brought up to it;
    /// `not_landed`: the ref never moved, nothing to do; `superseded`: the commit landed
    /// but the branch has moved on since, so the working tree was left to git.
    pub outcome: &'static str,
    pub updated: usize,
    pub skipped: Vec<String>,
}

impl Recovery {
    /// One line for a person.
    pub fn describe(&self) -> String {
        let short = self.commit.short();
        match self.outcome {
            "completed" => {
                let mut s = format!("finished the interrupted {} of {short}: updated {} working-tree file(s)", self.operation, self.updated);
                if !self.skipped.is_empty() {
                    s.push_str(&format!("; left {} file(s) you changed: {}", self.skipped.len(), self.skipped.join(", ")));
                }
                s
            }
            "superseded" => format!("an interrupted {} committed {short}, but the branch has moved on since; check `git status`", self.operation),
            _ => format!("an interrupted {} never moved its branch: nothing to finish, the repository is as it was", self.operation),
        }
    }
}

/// Whether `pid` is another live artifact-migrate process (a recycled pid of some other
/// program does not count).
fn process_alive(pid: u32) -> bool {
    pid != std::process::id()
        && fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.starts_with("artifact-migr"))
}

/// Finishes working-tree updates that a crash interrupted. Called at the start of every
/// command on a repository with a working tree. Journals of a process that is still
/// running are left to it.
pub fn finish_interrupted(repo: &Repo) -> Result<Vec<Recovery>, GitError> {
    // Writes files and the index: a signal stops it at a safe point, not in a write.
    let _guard = crate::interrupt::guard();
    let dir = journal_dir(repo);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(GitError::Io {
                path: dir,
                source: e,
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with("journal-") {
            continue;
        }
        if !name.ends_with(".json") {
            // A journal cut short while being written: its ref move never happened.
            let pid = name.rsplit('.').nth(1).and_then(|p| p.parse::<u32>().ok());
            if !pid.is_some_and(process_alive) {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        let text = match fs::read(&path) {
            Ok(t) => t,
            // Its run finished and removed it since the directory was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(GitError::Io { path, source: e }),
        };
        let Ok(j) = serde_json::from_slice::<Journal>(&text) else {
            let _ = fs::remove_file(&path);
            continue;
        };
        if process_alive(j.pid) {
            continue;
        }
        // Not while a live command lands a commit; then look again, it may have moved on.
        let _lock = WorktreeLock::take(repo, &|| {}, &|| true)?;
        if !path.exists() {
            continue;
        }
        out.push(finish_one(repo, &j)?);
    }
    Ok(out)
}

fn finish_one(repo: &Repo, j: &Journal) -> Result<Recovery, GitError> {
    let parse = |s: &str| Oid::from_str(s).map_err(GitError::git("read the journal"));
    let (old, new) = (parse(&j.old)?, parse(&j.new)?);
    let current = repo.git.refname_to_id(&j.refname).ok();
    let recovery = |outcome, updated, skipped| Recovery {
        operation: j.operation.clone(),
        commit: CommitId(new),
        outcome,
        updated,
        skipped,
    };
    if current != Some(new) {
        let landed = current.is_some_and(|c| repo.git.graph_descendant_of(c, new).unwrap_or(false));
        clear_journal(repo, j)?;
        return Ok(recovery(
            if landed { "superseded" } else { "not_landed" },
            0,
            Vec::new(),
        ));
    }
    let files = changed_files(repo, CommitId(old), CommitId(new))?;
    let report = update_files(repo, &files)?;
    // A kill in the middle of a replacement leaves the file beside it: remove those.
    if let Some(workdir) = repo.workdir() {
        for f in &files {
            let _ = fs::remove_file(tmp_path_for(&workdir.join(f.path.as_str()), j.pid));
        }
    }
    clear_journal(repo, j)?;
    Ok(recovery("completed", report.updated, report.skipped))
}

/// The files that differ between two commits' trees: new contents, and files created or
/// removed (a relocation's, or its rollback's), each as the working tree must take it.
pub fn changed_files(
    repo: &Repo,
    old: CommitId,
    new: CommitId,
) -> Result<Vec<PendingFile>, GitError> {
    Ok(crate::git::diff::tree_changes(repo, Some(old), new)?
        .into_iter()
        .filter(|c| {
            matches!(
                c.status,
                git2::Delta::Modified | git2::Delta::Added | git2::Delta::Deleted
            )
        })
        .map(|c| PendingFile {
            path: RepoPath::new(c.path),
            old: c.old_id,
            new: c.new_id,
            mode: if c.new_id.is_zero() {
                c.old_mode
            } else {
                c.new_mode
            },
        })
        .collect())
}
