//! `serve`: a read-only HTTP API over the index and the repository.
//!
//! A thin layer, like the CLI: every answer comes from the index's read queries
//! ([`crate::index::Reader`]), the one-manifest preview ([`crate::engine::preview`]) and git
//! objects; every error's status comes from the library's kind table
//! ([`ErrorKind::http_status`]). It never writes to the repository; it writes only the index
//! (its cache), which a watcher task brings to the branch's tip when the branch moves.
//!
//! **One commit per response.** A request runs inside one read transaction of the index
//! ([`crate::index::Index::read`]): the indexed commit it sees is the commit of the whole
//! answer, and the git objects it reads are that commit's (blobs by the ids the index holds,
//! the tree of that commit for a migration on read, the registry of that commit). An index
//! update is one transaction, so a request sees the commit before it or the one after,
//! never a mix.

mod api;
mod dashboard;
mod timeline;

pub use api::{check_param, MAX_LIMIT, MAX_PARAM, MAX_TARGET, OPENAPI};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Config;
use crate::engine::registry::{load_registry, Source};
use crate::engine::timeline::History;
use crate::engine::NoProgress;
use crate::error::ErrorKind;
use crate::git::Repo;
use crate::ids::CommitId;
use crate::index::{follow, DbLocation, Index, IndexError, Reader, UpdateOptions, VersionCounts};
use crate::schema::{Registry, Version};

/// How a server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The repository (its `.git` directory or work tree).
    pub repo: PathBuf,
    pub cfg: Config,
    /// The index it answers from (and keeps up to date).
    pub db: DbLocation,
    /// How often the branch is checked for a new commit.
    pub poll: Duration,
    /// The longest a request may take before it is answered with an error.
    pub request_timeout: Duration,
    /// How many requests read the index and the repository at once (the others wait).
    pub concurrency: usize,
}

impl ServeOptions {
    /// The defaults: the branch checked every 500 ms, requests limited to 10 s, 16 at once.
    pub fn new(repo: PathBuf, cfg: Config, db: DbLocation) -> ServeOptions {
        ServeOptions {
            repo,
            cfg,
            db,
            poll: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
            concurrency: 16,
        }
    }
}

/// An error as the API answers it: `{"error": {"kind", "message"}}` with the kind's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// A status other than the kind's (405 for a method, which is no failure of the library).
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            status: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    /// The HTTP status: the kind table's, unless overridden.
    pub fn status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.http_status())
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> ApiError {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// A repository handle and an index connection, used by one request at a time.
struct Worker {
    repo: Repo,
    index: Index,
}

/// What every request shares.
pub(crate) struct Shared {
    opts: ServeOptions,
    /// Idle workers (a small pool: at most `concurrency` exist).
    pool: Mutex<Vec<Worker>>,
    /// The registry of the commits seen last (the registry is part of a commit's tree).
    registries: Mutex<Vec<(CommitId, Arc<Registry>)>>,
    permits: tokio::sync::Semaphore,
    /// The version distribution of every commit the timeline was asked about (a commit's
    /// never changes).
    history: Mutex<History>,
    /// The indexed commit's counts by version, as `/schemas/versions` last read them: the
    /// same for every request until the index moves (a count over every run, otherwise read
    /// again on each request: 224 requests/s at 100k, docs/performance.md).
    counts: Mutex<Option<(CommitId, Version, VersionCounts)>>,
}

/// What one request reads: the snapshot of the index, the repository, the indexed commit.
pub(crate) struct Snapshot<'r, 'a> {
    pub repo: &'r Repo,
    pub reader: &'r mut Reader<'a>,
    pub commit: CommitId,
    shared: &'r Shared,
}

impl Snapshot<'_, '_> {
    /// The registry of the snapshot's commit (built-ins plus the migrations in its tree).
    pub fn registry(&self) -> Result<Arc<Registry>, ApiError> {
        self.shared.registry(self.repo, self.commit)
    }

    pub fn cfg(&self) -> &Config {
        &self.shared.opts.cfg
    }

    /// The index's counts by version at the snapshot's commit, `pending` below `latest`
    /// (read once per commit: the index at one commit always holds the same runs).
    pub fn version_counts(&mut self, latest: Version) -> Result<VersionCounts, ApiError> {
        let commit = self.commit;
        let cached = self.shared.counts.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(c, l, _)| *c == commit && *l == latest)
                .map(|(_, _, v)| v.clone())
        });
        if let Some(c) = cached {
            return Ok(c);
        }
        let c = self.reader.versions(latest)?;
        if let Ok(mut cache) = self.shared.counts.lock() {
            *cache = Some((commit, latest, c.clone()));
        }
        Ok(c)
    }

    /// The latest version of the snapshot's registry (what `pending` counts below).
    pub fn latest(&self) -> Result<crate::schema::Version, ApiError> {
        self.registry()?
            .latest()
            .ok_or_else(|| ApiError::new(ErrorKind::Environment, "the registry has no migrations"))
    }
}

impl Shared {
    fn new(opts: ServeOptions) -> Shared {
        let permits = tokio::sync::Semaphore::new(opts.concurrency.max(1));
        Shared {
            opts,
            pool: Mutex::new(Vec::new()),
            registries: Mutex::new(Vec::new()),
            permits,
            history: Mutex::new(History::new()),
            counts: Mutex::new(None),
        }
    }

    fn worker(&self) -> Result<Worker, ApiError> {
        if let Some(w) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(w);
        }
        let repo =
            Repo::open(&self.opts.repo).map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let index = Index::open_existing(&self.opts.db)?.ok_or_else(|| {
            ApiError::from(IndexError::Missing {
                db: self.opts.db.describe(),
            })
        })?;
        Ok(Worker { repo, index })
    }

    fn give_back(&self, w: Worker) {
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < self.opts.concurrency.max(1) {
                p.push(w);
            }
        }
    }

    /// Runs `f` on one snapshot of the index (one indexed commit). A worker whose request
    /// failed in the database is dropped rather than reused.
    pub(crate) fn snapshot<T>(
        &self,
        f: impl FnOnce(&mut Snapshot<'_, '_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut w = self.worker()?;
        let repo = &w.repo;
        let result = w.index.read(|reader| {
            let commit = parse_commit(&reader.state().commit)?;
            let mut s = Snapshot {
                repo,
                reader,
                commit,
                shared: self,
            };
            Ok(f(&mut s))
        });
        match result {
            Ok(answer) => {
                self.give_back(w);
                answer
            }
            Err(e) => Err(e.into()),
        }
    }

    fn registry(&self, repo: &Repo, commit: CommitId) -> Result<Arc<Registry>, ApiError> {
        if let Ok(cache) = self.registries.lock() {
            if let Some((_, r)) = cache.iter().find(|(c, _)| *c == commit) {
                return Ok(r.clone());
            }
        }
        let loaded = load_registry(repo, &self.opts.cfg, Source::Commit(commit))
            .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let r = Arc::new(loaded.registry);
        if let Ok(mut cache) = self.registries.lock() {
            cache.insert(0, (commit, r.clone()));
            cache.truncate(4);
        }
        Ok(r)
    }

    /// Brings the index to the tip of HEAD's branch when it is elsewhere. `Ok(true)` when it
    /// moved the index.
    pub(crate) fn follow_branch(&self) -> Result<bool, ApiError> {
        let repo =
            Repo::open(&self.opts.repo).map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let (commit, refname) =
            follow(&repo, None).map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let mut index = Index::open(&self.opts.db)?;
        // No index yet (or one of an older schema): the update below makes or upgrades it.
        let indexed = index.read(|r| Ok(r.state().clone())).ok();
        if let Some(s) = indexed.as_ref().filter(|s| s.refname == refname) {
            if s.commit == commit.to_string() || ahead_of(&repo, &s.commit) {
                return Ok(false);
            }
        }
        let opts = UpdateOptions {
            commit,
            refname,
            rebuild: false,
            progress: &NoProgress,
            note: &|_| {},
        };
        index.update(&repo, &self.opts.cfg, &opts)?;
        Ok(true)
    }
}

/// Whether the indexed commit is one this clone does not have yet: another instance on the
/// same index updated it from a clone that pulled first. The index is then left alone rather
/// than moved back; a commit this clone has is followed whichever way the branch moved (a
/// reset is followed too).
fn ahead_of(repo: &Repo, indexed: &str) -> bool {
    git2::Oid::from_str(indexed).is_ok_and(|id| repo.raw().find_commit(id).is_err())
}

/// A commit id as the index holds it (its state, a batch row).
pub(super) fn parse_commit(s: &str) -> Result<CommitId, IndexError> {
    git2::Oid::from_str(s)
        .map(CommitId)
        .map_err(|_| IndexError::Inconsistent {
            path: "index state".into(),
            blob: s.to_string(),
            message: "that is not a commit id".into(),
        })
}

/// Serves on `listener` until `shutdown` completes, then finishes the requests under way.
/// Brings the index to the branch first (creating it if needed), then every `opts.poll`.
/// `log` receives one line per event a person running the server wants to see.
pub async fn run(
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<(), ApiError> {
    let poll = opts.poll;
    let shared = Arc::new(Shared::new(opts));
    {
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.follow_branch())
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))??;
    }
    let watcher = {
        let s = shared.clone();
        let log = log.clone();
        tokio::spawn(async move {
            let mut last_error = String::new();
            loop {
                tokio::time::sleep(poll).await;
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || s2.follow_branch()).await {
                    Ok(Ok(_)) => last_error.clear(),
                    Ok(Err(e)) if e.message != last_error => {
                        log(&format!("cannot bring the index up to date: {}", e.message));
                        last_error = e.message;
                    }
                    Ok(Err(_)) => {}
                    Err(_) => return,
                }
            }
        })
    };
    let app = api::router(shared);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Environment, format!("serve: {e}")));
    watcher.abort();
    result
}

/// The address a server answers on, checked: `Ok(true)` when it is a loopback address.
pub fn parse_listen(addr: &str) -> Result<(SocketAddr, bool), ApiError> {
    let a: SocketAddr = addr.parse().map_err(|_| {
        ApiError::usage(format!(
            "{addr:?} is not an address to listen on: use IP:PORT, e.g. 127.0.0.1:8080"
        ))
    })?;
    Ok((a, a.ip().is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_checked() {
        assert_eq!(
            parse_listen("127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".parse().unwrap(), true)
        );
        assert!(parse_listen("[::1]:0").unwrap().1);
        assert!(!parse_listen("0.0.0.0:8080").unwrap().1);
        let e = parse_listen("localhost").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn errors_take_the_kind_tables_status() {
        for k in ErrorKind::ALL {
            assert_eq!(ApiError::new(k, "x").status(), k.http_status());
        }
        let mut e = ApiError::usage("only GET and HEAD");
        e.status = Some(405);
        assert_eq!(e.status(), 405);
    }
}
