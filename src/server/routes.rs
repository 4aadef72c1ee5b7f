//! The endpoints (docs/API.md), their admission, limits and status codes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State as Shared};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use nasheed::engine::inputs::Spool;
use nasheed::engine::report::ErrorKind;
use nasheed::engine::scan::{scan_input, ScanInput};
use nasheed::engine::{self, Budget};
use nasheed::fingerprint::Side;
use nasheed::index::{self, IndexError, Metadata, NewTrack, Store, TrackRef};
use nasheed::pack;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::State;

/// Time a scan may take past its deadline before the answer is given up on: the decoder stops
/// at the deadline, matching what was decoded takes a moment more.
const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Seconds without a successful replica update after which `/healthz` calls the server stale.
const STALE_REPLICA_S: u64 = 30;

/// The routes, each request counted by route and status.
pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/scan", post(scan))
        .route("/v1/references", get(list).post(add_reference))
        .route("/v1/references/{id}", get(one).delete(remove))
        .route("/v1/packs", get(export).post(import))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// The kind of a failed request, carried on its response to the metrics.
#[derive(Clone, Copy)]
struct Kind(&'static str);

/// Counts every answered request by route and status, and failures by kind.
async fn count(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(req).await;
    state.metrics.request(&route, response.status().as_u16());
    if let Some(Kind(kind)) = response.extensions().get::<Kind>() {
        state.metrics.error(kind);
    }
    response
}

/// A request that failed: its status, a kind for metrics and routing, a one-line message.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn internal(message: impl std::fmt::Display) -> Self {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }

    fn busy() -> Self {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many uploads in flight (--max-in-flight): retry shortly",
        )
    }

    fn scan_timeout() -> Self {
        Failure::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "not scanned within the time allowed for one request (--timeout)",
        )
    }
}

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::NoSuchTrack(_) => {
                Failure::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            IndexError::AmbiguousPrefix { .. } => Failure::bad_request(e.to_string()),
            other => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "index",
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.message, "error_kind": self.kind}));
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(Kind(self.kind));
        response
    }
}

type Answer = Result<Response, Failure>;

/// `POST /v1/scan`: the body is the upload; the answer is its scan record, as one line of
/// `scan --format jsonl` (200; 422 when it is not audio or over a budget, 504 past the deadline).
/// Query: `min_confidence` (0 to 1), `name` (the record's `path`; default `upload`).
async fn scan(
    Shared(state): Shared<Arc<State>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let started = Instant::now();
    let deadline = started + state.config.timeout;
    let mut match_params = state.config.match_params.clone();
    let mut name = "upload".to_string();
    for (k, v) in query {
        match k.as_str() {
            "min_confidence" => match v.trim().parse::<f64>() {
                Ok(c) if (0.0..=1.0).contains(&c) => match_params.min_confidence = c,
                _ => {
                    let failure = Failure::bad_request(format!(
                        "min_confidence: expected a number from 0 to 1, got {v}"
                    ));
                    return Err(refuse(body, failure).await);
                }
            },
            "name" => name = v,
            other => {
                let failure = Failure::bad_request(format!("unknown query option {other}"));
                return Err(refuse(body, failure).await);
            }
        }
    }
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return Err(refuse(body, Failure::busy()).await);
    };
    let spool = receive(&state, &headers, body, deadline).await?;
    let slot = tokio::time::timeout_at(deadline.into(), state.reader_slots.clone().acquire_owned())
        .await
        .map_err(|_| Failure::scan_timeout())?
        .map_err(Failure::internal)?;
    let shared = state.clone();
    let task = tokio::task::spawn_blocking(move || {
        // Held until the scan ends, even when the answer has given up on it.
        let _held = (permit, slot);
        let mut lease = Lease::take(&shared)?;
        // Never a silent "clean" for want of references, whatever --allow-empty says.
        if lease.store()?.stats()?.tracks == 0 {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "empty_index",
                format!(
                    "the index {} holds no references: every upload would be reported clean",
                    shared.config.db.display()
                ),
            ));
        }
        let input = ScanInput {
            name: PathBuf::from(&name),
            file: Ok(spool.path().to_path_buf()),
        };
        let budget = Budget {
            deadline: Some(deadline),
            ..shared.config.budget
        };
        scan_input(
            lease.as_matchers(),
            &input,
            &shared.config.params,
            &match_params,
            &budget,
        )
        .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "index", e.to_string()))?
        .ok_or_else(|| Failure::internal("the scan ended without a record"))
    });
    let record = match tokio::time::timeout_at((deadline + GRACE).into(), task).await {
        Err(_) => return Err(Failure::scan_timeout()),
        Ok(Err(panic)) => return Err(Failure::internal(format!("the scan failed: {panic}"))),
        Ok(Ok(record)) => record?,
    };
    let (status, kind) = match record.error_kind {
        None if record.error.is_none() => (StatusCode::OK, None),
        Some(ErrorKind::Timeout) => (StatusCode::GATEWAY_TIMEOUT, Some("timeout")),
        Some(ErrorKind::Unreadable) => (StatusCode::INTERNAL_SERVER_ERROR, Some("unreadable")),
        Some(ErrorKind::OverBudget) => (StatusCode::UNPROCESSABLE_ENTITY, Some("over_budget")),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, Some("undecodable")),
    };
    if status == StatusCode::OK {
        state
            .metrics
            .scan(record.matches.len(), started.elapsed().as_secs_f64());
    }
    let mut response = (status, Json(record)).into_response();
    if let Some(kind) = kind {
        response.extensions_mut().insert(Kind(kind));
    }
    Ok(response)
}

/// A reader connection taken from the pool, put back when dropped (also when a scan panics).
struct Lease<'a> {
    state: &'a State,
    store: Option<Box<dyn Store + Send>>,
}

impl<'a> Lease<'a> {
    /// Takes a reader; the caller holds a reader slot, so one is free.
    fn take(state: &'a State) -> Result<Self, Failure> {
        let store = state
            .readers
            .lock()
            .map_err(|_| Failure::internal("the reader pool is poisoned"))?
            .pop()
            .ok_or_else(Failure::busy)?;
        Ok(Lease {
            state,
            store: Some(store),
        })
    }

    /// The store, as the one-matcher slice the scan pipeline takes.
    fn as_matchers(&mut self) -> &mut [Box<dyn Store + Send>] {
        self.store.as_mut_slice()
    }

    fn store(&self) -> Result<&dyn Store, Failure> {
        match &self.store {
            Some(s) => Ok(&**s),
            None => Err(Failure::internal("a lease without a store")),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(store), Ok(mut pool)) = (self.store.take(), self.state.readers.lock()) {
            pool.push(store);
        }
    }
}

/// Most of a refused request's body read before answering. A client still sending when the
/// answer comes and the connection closes sees a reset, not the answer (and its Retry-After);
/// a body up to this size, an upload's usual size, is read and dropped first.
const DRAIN_CAP: usize = 16 << 20;

/// Refuses a request whose body was not read: drains up to [`DRAIN_CAP`] of it (for at most
/// two seconds) so the client reads the answer, then hands the failure back.
async fn refuse(body: Body, failure: Failure) -> Failure {
    let drain = async {
        let mut body = body;
        let mut read = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > DRAIN_CAP {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
    failure
}

/// Receives a request body into a spool file, within the size limit and the deadline.
async fn receive(
    state: &State,
    headers: &HeaderMap,
    body: Body,
    deadline: Instant,
) -> Result<Spool, Failure> {
    let max = state.config.max_body;
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {max} bytes (--max-body)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let copy = async {
        let (spool, file) = Spool::create("upload").map_err(|e| {
            Failure::internal(format!(
                "cannot spool the upload to {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
        let mut file = tokio::fs::File::from_std(file);
        let mut body = body;
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Failure::bad_request(format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                received += data.len() as u64;
                if received > max {
                    return Err(too_large());
                }
                file.write_all(&data)
                    .await
                    .map_err(|e| Failure::internal(format!("spooling the upload: {e}")))?;
            }
        }
        file.flush()
            .await
            .map_err(|e| Failure::internal(format!("spooling the upload: {e}")))?;
        Ok(spool)
    };
    tokio::time::timeout_at(deadline.into(), copy)
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::REQUEST_TIMEOUT,
                "upload_timeout",
                "the body did not arrive within the time allowed for one request (--timeout)",
            )
        })?
}

/// Write endpoints need the configured bearer token; without one they are off.
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), Failure> {
    let Some(token) = &state.config.token else {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "writes_off",
            "write endpoints are off: start the server with --token-file or NASHEED_TOKEN",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if same_secret(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs Authorization: Bearer TOKEN",
        )),
    }
}

/// Equality in time independent of where the inputs differ (no timing oracle on the token).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs `f` on a blocking thread with the writer, or says the index is read-only.
async fn with_writer<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&mut dyn Store) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    if state.writer.is_none() {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "read_only",
            format!(
                "{} is read-only (a fingerprint pack)",
                state.config.db.display()
            ),
        ));
    }
    let shared = state.clone();
    tokio::task::spawn_blocking(move || {
        let writer = shared
            .writer
            .as_ref()
            .ok_or_else(|| Failure::internal("no writer"))?;
        let mut store = writer
            .lock()
            .map_err(|_| Failure::internal("the writer is poisoned"))?;
        let done = f(&mut **store)?;
        drop(store);
        // The next scan sees the write: a replica is brought up to date before the answer
        // (if that fails the write stands, and the background update catches up).
        if let Err(e) = shared.sync_replica() {
            eprintln!("nasheed: updating the replica after a write: {e}");
        }
        Ok(done)
    })
    .await
    .map_err(|e| Failure::internal(format!("the write failed: {e}")))?
}

/// Runs `f` on a blocking thread with a reader for listings (the meta connection, or one of
/// the scan readers when there is none).
async fn with_reader<T: Send + 'static>(
    state: &Arc<State>,
    f: impl FnOnce(&dyn Store) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let shared = state.clone();
    let slot = match &state.meta {
        Some(_) => None,
        None => Some(
            state
                .reader_slots
                .clone()
                .acquire_owned()
                .await
                .map_err(Failure::internal)?,
        ),
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        match &shared.meta {
            Some(meta) => {
                let store = meta
                    .lock()
                    .map_err(|_| Failure::internal("the reader is poisoned"))?;
                f(&**store)
            }
            None => f(Lease::take(&shared)?.store()?),
        }
    })
    .await
    .map_err(|e| Failure::internal(format!("the read failed: {e}")))?
}

/// `GET /v1/references`: every reference (as `list --format json`).
async fn list(Shared(state): Shared<Arc<State>>) -> Answer {
    let tracks = with_reader(&state, |s| Ok(s.tracks()?)).await?;
    Ok(Json(tracks).into_response())
}

/// `GET /v1/references/{id}`: one reference by local id or SHA-256 (prefix of 8+ digits).
async fn one(Shared(state): Shared<Arc<State>>, UrlPath(id): UrlPath<String>) -> Answer {
    let r: TrackRef = id.parse().map_err(Failure::bad_request)?;
    let track = with_reader(&state, move |s| {
        let id = index::resolve(s, &r)?;
        s.track(id)?
            .ok_or_else(|| IndexError::NoSuchTrack(r.to_string()).into())
    })
    .await?;
    Ok(Json(track).into_response())
}

/// `POST /v1/references?title=T&name=N&KEY=VALUE...`: the body is a reference recording; it is
/// fingerprinted and stored with the title and metadata (every other query pair). 201 with the
/// track when added, 200 when the same content was already indexed.
async fn add_reference(
    Shared(state): Shared<Arc<State>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    if let Err(failure) = authorize(&state, &headers) {
        return Err(refuse(body, failure).await);
    }
    let deadline = Instant::now() + state.config.timeout;
    let mut title = None;
    let mut name = None;
    let mut meta = Metadata::new();
    for (k, v) in query {
        match k.trim() {
            "title" => title = Some(v),
            "name" => name = Some(v),
            "" => return Err(refuse(body, Failure::bad_request("a metadata key is empty")).await),
            key => {
                meta.insert(key.to_string(), v);
            }
        }
    }
    let Ok(permit) = state.writes.clone().try_acquire_owned() else {
        return Err(refuse(body, Failure::busy()).await);
    };
    let spool = receive(&state, &headers, body, deadline).await?;
    // Fingerprinted outside the writer's lock; only the insert takes it.
    let shared = state.clone();
    let fingerprinted = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let shown = name.clone().unwrap_or_else(|| "upload".to_string());
        let renamed = |e: engine::Error| {
            let message = e
                .to_string()
                .replace(&spool.path().display().to_string(), &shown);
            let status = match e.input_kind() {
                ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Failure::new(status, e.input_kind().as_str(), message)
        };
        let sha = engine::sha256_file(spool.path()).map_err(renamed)?;
        let budget = Budget {
            deadline: Some(deadline),
            ..shared.config.budget
        };
        let fp = engine::fingerprint_file(
            spool.path(),
            &shared.config.params,
            Side::Reference,
            &budget,
        )
        .map_err(renamed)?;
        let title = title.unwrap_or_else(|| match &name {
            Some(n) => Path::new(n)
                .file_stem()
                .map_or_else(|| n.clone(), |s| s.to_string_lossy().into_owned()),
            None => sha.chars().take(12).collect(),
        });
        let track = NewTrack {
            path: shown,
            sha256: sha,
            title,
            meta,
            duration_s: fp.duration_s,
        };
        Ok::<_, Failure>((track, fp))
    })
    .await
    .map_err(|e| Failure::internal(format!("fingerprinting failed: {e}")))??;
    let (info, added) = with_writer(&state, move |store| {
        let (track, fp) = fingerprinted;
        let (id, added) = engine::add_reference(store, &track, &fp).map_err(|e| match e {
            engine::Error::Index(e) => Failure::from(e),
            other => Failure::internal(other),
        })?;
        let info = store
            .track(id)?
            .ok_or_else(|| Failure::internal("the track vanished"))?;
        Ok((info, added))
    })
    .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"added": added, "track": info}))).into_response())
}

/// `DELETE /v1/references/{id}`: removes a reference and its fingerprints.
async fn remove(
    Shared(state): Shared<Arc<State>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Answer {
    authorize(&state, &headers)?;
    let r: TrackRef = id.parse().map_err(Failure::bad_request)?;
    let info = with_writer(&state, move |store| {
        let id = index::resolve(store, &r)?;
        let info = store.track(id)?;
        match (store.remove(id)?, info) {
            (true, Some(info)) => Ok(info),
            _ => Err(IndexError::NoSuchTrack(r.to_string()).into()),
        }
    })
    .await?;
    Ok(Json(json!({"removed": info})).into_response())
}

/// `POST /v1/packs`: the body is a fingerprint pack; its tracks are added (all or nothing,
/// tracks already present skipped).
async fn import(Shared(state): Shared<Arc<State>>, headers: HeaderMap, body: Body) -> Answer {
    if let Err(failure) = authorize(&state, &headers) {
        return Err(refuse(body, failure).await);
    }
    let deadline = Instant::now() + state.config.timeout;
    let Ok(permit) = state.writes.clone().try_acquire_owned() else {
        return Err(refuse(body, Failure::busy()).await);
    };
    let spool = receive(&state, &headers, body, deadline).await?;
    let params_id = state.config.params.id();
    let summary = with_writer(&state, move |store| {
        let _permit = permit;
        let bytes = std::fs::read(spool.path())
            .map_err(|e| Failure::internal(format!("reading the spooled pack: {e}")))?;
        let tracks = pack::read(&bytes, &params_id).map_err(|e| {
            Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_pack",
                format!("pack: {e}"),
            )
        })?;
        pack::add(store, tracks).map_err(|e| Failure::internal(format!("pack: {e}")))
    })
    .await?;
    Ok(Json(json!({
        "added": summary.added,
        "skipped": summary.skipped,
        "hashes": summary.hashes,
    }))
    .into_response())
}

/// `GET /v1/packs`: every reference's fingerprints and metadata as one pack (never audio).
async fn export(Shared(state): Shared<Arc<State>>, headers: HeaderMap) -> Answer {
    authorize(&state, &headers)?;
    let bytes = with_reader(&state, |s| {
        let ids: Vec<_> = s.tracks()?.into_iter().map(|t| t.id).collect();
        pack::export(s, &ids).map_err(|e| Failure::internal(format!("pack: {e}")))
    })
    .await?;
    let disposition = format!("attachment; filename=\"nasheed.{}\"", pack::EXTENSION);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /healthz`: 200 when the index can be read and holds references, else 503 (an empty
/// index would report every upload clean: no traffic should reach it).
async fn health(Shared(state): Shared<Arc<State>>) -> Answer {
    let stats = with_reader(&state, |s| Ok(s.stats()?)).await;
    // A replica not brought up to date for a while is stale: scans would miss what was added.
    let synced = state
        .replica_synced
        .load(std::sync::atomic::Ordering::Relaxed);
    let replica_age_s = state.config.replica.as_ref().map(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_sub(synced)
    });
    let (status, body) = match stats {
        Ok(_) if replica_age_s.is_some_and(|age| age > STALE_REPLICA_S) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "stale", "replica_age_s": replica_age_s}),
        ),
        Ok(s) if s.tracks > 0 => (
            StatusCode::OK,
            json!({"status": "ok", "tracks": s.tracks, "params_id": s.params_id,
                   "replica_age_s": replica_age_s}),
        ),
        Ok(s) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "empty", "tracks": 0, "params_id": s.params_id}),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "error", "error": e.message}),
        ),
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(Shared(state): Shared<Arc<State>>) -> Answer {
    let stats = with_reader(&state, |s| Ok(s.stats()?)).await.ok();
    let in_flight = state
        .config
        .max_in_flight
        .saturating_sub(state.in_flight.available_permits());
    let text = state.metrics.render(stats.as_ref(), in_flight);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"x"));
    }
}
