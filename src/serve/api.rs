//! The routes: each handler checks its parameters, then answers from one snapshot
//! ([`Shared::snapshot`]) on a blocking thread, bounded in time and in number.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiError, Shared, Snapshot};
use crate::engine::preview_bytes;
use crate::error::ErrorKind;
use crate::git::diff::tree_changes;
use crate::git::scan::is_manifest_path;
use crate::ids::RepoPath;
use crate::index::query::{hex, unhex};
use crate::index::{BatchRow, Cursor, RunFilter, RunRecord};
use crate::schema::Version;

/// The OpenAPI 3.1 document of this API (docs/openapi.json, embedded).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// The longest path parameter accepted, in characters (as the OpenAPI `maxLength` counts).
pub const MAX_PARAM: usize = 256;
/// The longest cursor accepted, in characters.
pub const MAX_CURSOR: usize = 4096;
/// The longest request target (path and query) accepted, in bytes: room for the longest
/// request the OpenAPI document allows (a 256-character id of 4-byte characters,
/// percent-encoded, and a cursor of `MAX_CURSOR`).
pub const MAX_TARGET: usize = 8192;
/// The page size when none is asked for, and the largest one.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/schemas/versions", get(versions))
        .route("/jobs/{id}", get(job_or_run))
        .route("/jobs/{job_id}/runs/{run_id}", get(manifest))
        .route("/migrations", get(migrations))
        .route("/migrations/{commit}", get(migration))
        .route("/schemas/timeline", get(super::timeline::timeline))
        .route("/", get(super::dashboard::page))
        .route("/assets/{name}", get(super::dashboard::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(limits))
        .with_state(shared)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"kind": self.kind.name(), "message": self.message}});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        r
    }
}

/// Refuses other methods than GET and HEAD on any path, and overlong request targets,
/// before routing.
async fn limits(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed().await.into_response();
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().len())
        .unwrap_or(0);
    if target > MAX_TARGET {
        return ApiError::usage(format!(
            "the request target is {target} bytes long; at most {MAX_TARGET} are accepted"
        ))
        .into_response();
    }
    next.run(req).await
}

async fn method_not_allowed() -> ApiError {
    let mut e = ApiError::usage("only GET and HEAD are answered: this API never changes anything");
    e.status = Some(405);
    e
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: see /openapi.json for the ones there are")
}

/// Runs `f` on a snapshot on a blocking thread: at most `concurrency` at once, each bounded
/// by the request timeout.
pub(super) async fn answer<T: Send + 'static>(
    shared: Arc<Shared>,
    f: impl FnOnce(&mut Snapshot<'_, '_>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let timeout = shared.opts.request_timeout;
    let late = || {
        ApiError::new(
            ErrorKind::Environment,
            format!(
                "the request took longer than {} ms and was abandoned; try again, or ask for a smaller page",
                timeout.as_millis()
            ),
        )
    };
    let work = async {
        let _permit = shared
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::new(ErrorKind::Environment, "the server is stopping"))?;
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.snapshot(f))
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Internal,
                    format!("a request failed: {e}; please report this bug"),
                )
            })?
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(late()))
}

/// A path parameter, checked: not empty, at most [`MAX_PARAM`] characters, no NUL or other
/// control character, no `/` or `\`, not `.` or `..`.
pub fn check_param(name: &str, value: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::usage(format!("{name}: {why}")));
    if value.is_empty() {
        return bad("is empty");
    }
    let chars = value.chars().count();
    if chars > MAX_PARAM {
        return bad(&format!(
            "is {chars} characters long; at most {MAX_PARAM} are accepted"
        ));
    }
    if value.chars().any(char::is_control) {
        return bad("holds a control character (NUL, a newline, ...)");
    }
    if value.contains(['/', '\\']) || value == "." || value == ".." {
        return bad("is not an id: it holds a path separator or names a directory");
    }
    Ok(())
}

fn path_params<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::usage(format!("bad path parameter: {}", e.body_text())))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::usage(format!("bad query: {}", e.body_text())))
}

/// `?limit=N&cursor=C`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Page {
    limit: Option<String>,
    cursor: Option<String>,
}

impl Page {
    fn limit(&self) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            // Digits only: `parse` alone would take "+5".
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(n)
                }
                _ => Err(ApiError::usage(format!(
                    "limit: {s:?} is not a page size: use 1 to {MAX_LIMIT}"
                ))),
            },
        }
    }

    /// The cursor as the text it encodes (`decode`: how this list encodes its cursors). An
    /// empty or overlong one is refused whatever the list.
    fn cursor<C>(&self, decode: impl Fn(&str) -> Option<C>) -> Result<Option<C>, ApiError> {
        match &self.cursor {
            None => Ok(None),
            Some(c) if !c.is_empty() && c.len() <= MAX_CURSOR => {
                decode(c).map(Some).ok_or_else(bad_cursor)
            }
            Some(_) => Err(bad_cursor()),
        }
    }
}

/// A batch list's page: its size, and its cursor (the full commit id of the last batch given).
pub(super) fn batch_page(
    page: Result<Query<Page>, QueryRejection>,
) -> Result<(usize, Option<String>), ApiError> {
    let page = query(page)?;
    let after = page.cursor(|c| check_commit(c).ok().filter(|c| c.len() == 40))?;
    Ok((page.limit()?, after))
}

/// Where a batch list resumes after the batch `after` (its cursor). A well-formed cursor
/// naming no batch of this history (made up, or the branch was reset since) is a batch not
/// found (404); `commit` is the snapshot's, for the message.
pub(super) fn after_batch(
    all: &[BatchRow],
    after: Option<&str>,
    commit: &str,
) -> Result<usize, ApiError> {
    match after {
        None => Ok(0),
        Some(c) => all
            .iter()
            .position(|b| b.commit == c)
            .map(|i| i + 1)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "cursor: {c} is no batch in the history of {commit}; start again without a cursor"
                ))
            }),
    }
}

/// A cursor naming a key (a run_id, a path): the hex of a text without control characters,
/// as [`hex`] made it.
fn key_cursor(c: &str) -> Option<String> {
    unhex(c).filter(|t| !t.chars().any(char::is_control))
}

fn bad_cursor() -> ApiError {
    ApiError::usage("cursor: not a cursor this server gave out; start again without one")
}

pub(super) fn json_ok(v: &impl Serialize) -> Response {
    axum::Json(v).into_response()
}

async fn healthz(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let v = answer(s, |snap| {
        let st = snap.reader.state();
        Ok(json!({"status": "ok", "commit": st.commit, "refname": st.refname, "indexed_at": st.indexed_at}))
    })
    .await?;
    Ok(json_ok(&v))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn versions(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let v = answer(s, |snap| {
        let latest = snap.latest()?;
        let c = snap.version_counts(latest)?;
        Ok(json!({
            "commit": c.commit,
            "latest": latest.to_string(),
            "total": c.total + c.invalid,
            "pending": c.pending,
            "versions": c.versions,
            "invalid": c.invalid,
        }))
    })
    .await?;
    Ok(json_ok(&v))
}

/// The fields of a run listed under its job.
#[derive(Debug, Serialize)]
struct JobRun {
    run_id: String,
    schema_version: String,
    status: Option<String>,
    path: String,
}

async fn job_or_run(
    State(s): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_params(id)?;
    check_param("id", &id)?;
    let page = query(page)?;
    let limit = page.limit()?;
    // The job is in the path: the cursor names the last run given (any run_id is a place
    // in the list, whether or not it is there).
    let after = page.cursor(key_cursor)?.map(|run_id| Cursor {
        job_id: id.clone(),
        run_id,
    });
    let v = answer(s, move |snap| {
        let filter = RunFilter {
            job_id: Some(id.clone()),
            ..RunFilter::default()
        };
        let p = snap.reader.runs(&filter, after.as_ref(), limit)?;
        let commit = snap.commit.to_string();
        if !p.runs.is_empty() || after.is_some() {
            let runs: Vec<JobRun> = p
                .runs
                .into_iter()
                .map(|r| JobRun {
                    run_id: r.run_id,
                    schema_version: r.schema_version,
                    status: r.status,
                    path: r.path,
                })
                .collect();
            return Ok(json!({
                "commit": commit,
                "job_id": id,
                "runs": runs,
                "next": p.next.map(|c| hex(&c.run_id)),
            }));
        }
        let mut runs = snap.reader.runs_by_id(&id)?;
        match runs.len() {
            0 => Err(ApiError::not_found(format!(
                "no job or run {id:?} at {}",
                snap.commit.short()
            ))),
            1 => Ok(run_json(&commit, runs.remove(0))),
            _ => Err(ApiError::usage(format!(
                "run {id:?} is in several jobs ({}): ask for /jobs/{{job_id}}/runs/{id}",
                runs.iter()
                    .map(|r| r.job_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    })
    .await?;
    Ok(json_ok(&v))
}

fn run_json(commit: &str, r: RunRecord) -> Value {
    json!({
        "commit": commit,
        "job_id": r.job_id,
        "run_id": r.run_id,
        "job_ref": r.job_ref,
        "job_type": r.job_type,
        "status": r.status,
        "inputs_hash": r.inputs_hash,
        "artifact_dir": r.artifact_dir,
        "schema_version": r.schema_version,
        "path": r.path,
        "blob_id": r.blob_id,
        "last_batch": r.last_batch,
    })
}

#[derive(Debug, Default, Deserialize)]
struct As {
    #[serde(rename = "as")]
    version: Option<String>,
}

/// A manifest's bytes and what to say about them.
struct Served {
    commit: String,
    bytes: Vec<u8>,
    stored: String,
    served: String,
    /// The blob id, when the bytes are the stored ones.
    blob: Option<String>,
}

async fn manifest(
    State(s): State<Arc<Shared>>,
    ids: Result<Path<(String, String)>, PathRejection>,
    asked: Result<Query<As>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (job_id, run_id) = path_params(ids)?;
    check_param("job_id", &job_id)?;
    check_param("run_id", &run_id)?;
    let target: Option<Option<Version>> = match query(asked)?.version.as_deref() {
        None => None,
        Some("latest") => Some(None),
        Some(v) => Some(Some(v.parse::<Version>().map_err(|e| {
            ApiError::usage(format!("as: {e}; use latest or MAJOR.MINOR.PATCH"))
        })?)),
    };
    let served = answer(s, move |snap| {
        let Some(run) = snap.reader.run(&job_id, &run_id)? else {
            return Err(ApiError::not_found(format!(
                "no run {run_id:?} in job {job_id:?} at {}",
                snap.commit.short()
            )));
        };
        let commit = snap.commit.to_string();
        let oid = git2::Oid::from_str(&run.blob_id).map_err(|_| {
            ApiError::new(
                ErrorKind::Environment,
                format!("{}: the index holds no blob id for it; rebuild it with `artifact-migrate index --rebuild`", run.path),
            )
        })?;
        let bytes = snap
            .repo
            .blob(oid, &run.path)
            .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let Some(target) = target else {
            return Ok(Served {
                commit,
                bytes,
                stored: run.schema_version.clone(),
                served: run.schema_version,
                blob: Some(run.blob_id),
            });
        };
        let registry = snap.registry()?;
        // The blob the index names, read as above (the index holds runs of regular files
        // only: a symlink is an invalid manifest there).
        let p = preview_bytes(
            snap.repo,
            snap.cfg(),
            &registry,
            snap.commit,
            &RepoPath::new(run.path.clone()),
            (bytes, 0o100644),
            target,
        )
        .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
        let same = p.steps.is_empty() && p.served == p.stored;
        Ok(Served {
            commit,
            stored: p.stored_version.to_string(),
            served: p.served_version.to_string(),
            bytes: p.served,
            blob: same.then_some(run.blob_id),
        })
    })
    .await?;
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut h, "content-type", "application/json");
    put(&mut h, "x-commit", &served.commit);
    put(&mut h, "x-schema-version-stored", &served.stored);
    put(&mut h, "x-schema-version-served", &served.served);
    put(
        &mut h,
        "x-migrated-on-read",
        if served.stored == served.served {
            "false"
        } else {
            "true"
        },
    );
    match &served.blob {
        Some(blob) => {
            let tag = format!("\"{blob}\"");
            put(&mut h, "etag", &tag);
            put(&mut h, "cache-control", "no-cache");
            if none_match(&headers, &tag) {
                return Ok((StatusCode::NOT_MODIFIED, h).into_response());
            }
        }
        // Migrated bytes carry the time of the preview in their history: never cached.
        None => put(&mut h, "cache-control", "no-store"),
    }
    Ok((h, Body::from(served.bytes)).into_response())
}

/// Whether `If-None-Match` names `tag` (or is `*`).
fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// A commit id or a prefix of one: 4 to 40 hex digits.
fn check_commit(c: &str) -> Result<String, ApiError> {
    if (4..=40).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(c.to_ascii_lowercase())
    } else {
        Err(ApiError::usage(format!(
            "commit: {:?} is not a commit id: use 4 to 40 hex digits",
            c.chars().take(64).collect::<String>()
        )))
    }
}

async fn migrations(
    State(s): State<Arc<Shared>>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (limit, after) = batch_page(page)?;
    let v = answer(s, move |snap| {
        let all = snap.reader.batches()?;
        let start = after_batch(&all, after.as_deref(), &snap.commit.short())?;
        let rest = &all[start.min(all.len())..];
        let batches: Vec<&BatchRow> = rest.iter().take(limit).collect();
        let next = (rest.len() > limit)
            .then(|| batches.last().map(|b| b.commit.clone()))
            .flatten();
        Ok(json!({"commit": snap.commit.to_string(), "batches": batches, "next": next}))
    })
    .await?;
    Ok(json_ok(&v))
}

async fn migration(
    State(s): State<Arc<Shared>>,
    commit: Result<Path<String>, PathRejection>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let commit = check_commit(&path_params(commit)?)?;
    let page = query(page)?;
    let limit = page.limit()?;
    let after = page.cursor(key_cursor)?;
    let v = answer(s, move |snap| {
        let found: Vec<BatchRow> = if commit.len() == 40 {
            snap.reader.batch(&commit)?.into_iter().collect()
        } else {
            snap.reader
                .batches()?
                .into_iter()
                .filter(|b| b.commit.starts_with(&commit))
                .collect()
        };
        let batch = match <[BatchRow; 1]>::try_from(found) {
            Ok([b]) => b,
            Err(v) if v.is_empty() => {
                return Err(ApiError::not_found(format!(
                    "no batch, rollback or repair {commit} in the history of {}",
                    snap.commit.short()
                )))
            }
            Err(v) => {
                return Err(ApiError::usage(format!(
                    "commit {commit} is ambiguous: {} batches start with it; give more digits",
                    v.len()
                )))
            }
        };
        let id = super::parse_commit(&batch.commit)?;
        let parent = snap
            .repo
            .raw()
            .find_commit(id.0)
            .ok()
            .and_then(|c| c.parent_ids().next())
            .map(crate::ids::CommitId);
        let mut paths: Vec<String> = tree_changes(snap.repo, parent, id)
            .map_err(|e| ApiError::new(e.kind(), e.to_string()))?
            .into_iter()
            .map(|c| c.path)
            .filter(|p| is_manifest_path(p, snap.cfg()))
            .collect();
        paths.sort();
        paths.dedup();
        let total = paths.len();
        let start = match &after {
            None => 0,
            Some(a) => paths.partition_point(|p| p <= a),
        };
        let page: Vec<&String> = paths[start..].iter().take(limit).collect();
        let next = (paths.len() - start > limit)
            .then(|| page.last().map(|p| hex(p)))
            .flatten();
        let mut v = serde_json::to_value(&batch)
            .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.insert("paths_total".into(), json!(total));
            m.insert("paths".into(), json!(page));
            m.insert("next".into(), json!(next));
            m.insert("indexed_commit".into(), json!(snap.commit.to_string()));
        }
        Ok(v)
    })
    .await?;
    Ok(json_ok(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_ids_not_paths() {
        assert!(check_param("id", "job-1").is_ok());
        assert!(check_param("id", "5d1e2c7a-0b3f.v2").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b", "a\nb"] {
            let e = check_param("id", bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
        assert!(check_param("id", &"x".repeat(MAX_PARAM)).is_ok());
        assert!(check_param("id", &"x".repeat(MAX_PARAM + 1)).is_err());
        // Counted in characters, as the OpenAPI document's maxLength counts them.
        assert!(check_param("id", &"é".repeat(MAX_PARAM)).is_ok());
        assert!(check_param("id", &"é".repeat(MAX_PARAM + 1)).is_err());
    }

    #[test]
    fn commits_are_hex_prefixes() {
        assert_eq!(check_commit("ABCD").unwrap(), "abcd");
        assert!(check_commit("abc").is_err());
        assert!(check_commit("xyz1").is_err());
        assert!(check_commit(&"a".repeat(41)).is_err());
    }

    #[test]
    fn etags_match_as_rfc_9110_says() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(none_match(&h, "\"a\""));
        assert!(none_match(&h, "\"b\""));
        assert!(!none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, "\"c\""));
    }

    #[test]
    fn path_cursors_round_trip() {
        let p = "artifacts/job ä/run/manifest.json";
        assert_eq!(unhex(&hex(p)).as_deref(), Some(p));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn key_cursors_are_hex_text_without_control_characters() {
        assert_eq!(key_cursor(&hex("run-1")).as_deref(), Some("run-1"));
        assert_eq!(key_cursor("00"), None);
        assert_eq!(key_cursor("c285"), None);
        assert_eq!(key_cursor("RUN"), None);
        let page = |limit: &str| Page {
            limit: Some(limit.into()),
            cursor: None,
        };
        assert_eq!(page("5").limit().ok(), Some(5));
        for bad in ["+5", "0", "1001", " 5", "5.0"] {
            assert!(page(bad).limit().is_err(), "{bad:?}");
        }
        let empty = Page {
            limit: None,
            cursor: Some(String::new()),
        };
        assert!(empty.cursor(key_cursor).is_err());
    }
}
