//! `nasheed serve`: the scan pipeline and the index over HTTP, for moderation pipelines that
//! POST uploads and route on the JSON answer. A front end like the CLI: it only presents what
//! the engine does (`engine::scan::scan_inputs` for every scan, `engine::add_reference`,
//! `pack` for import and export).
//!
//! Design, in the order a request meets it:
//! - **Admission.** A scan takes one of `max_in_flight` slots, a reference or pack upload one
//!   of two slots of its own, or is refused with 503 and `Retry-After`: a burst queues nowhere
//!   unbounded, and scans under load never lock curators out. A refused body is read and dropped
//!   (up to 16 MB) so the client sees the answer, not a reset. A body larger than `max_body` is
//!   refused with 413 (from `Content-Length` before reading, or when the stream passes the
//!   limit).
//! - **Spooling.** The body streams into a private temporary file (the decoder seeks), removed
//!   when the request ends; memory does not grow with the upload.
//! - **Scanning** runs on blocking threads, off the async workers, one per reader connection
//!   (one per core, each its own SQLite connection; a pack is one store in memory; for a
//!   PostgreSQL index, connections to its local replica, brought up to date every second and
//!   after each write). The
//!   request's deadline (`timeout`) bounds the upload (408), the wait for a reader and the
//!   decoding (504: the decoder stops at the deadline, so no worker hangs on a hostile file).
//! - **Writes** (add, remove, import) go through one writer connection under a lock; readers
//!   see whole tracks only (each track is one transaction, SQLite in WAL mode).
//! - **Auth.** Write endpoints and pack export need `Authorization: Bearer TOKEN`; without a
//!   configured token they are off (403). The token is compared in constant time and never
//!   logged.
//! - **Shutdown.** SIGTERM or Ctrl-C stops accepting, lets the requests in flight complete,
//!   then `serve` returns and the process exits 0.

mod metrics;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use nasheed::engine::Budget;
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::Store;
use nasheed::matching::MatchParams;
use tokio::sync::Semaphore;

/// How often the replica of a PostgreSQL index is brought up to date.
const REPLICA_EVERY: Duration = Duration::from_secs(1);

/// Reference and pack uploads accepted at once.
const WRITES_IN_FLIGHT: usize = 2;

/// Everything `serve` needs, resolved from the command line.
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The index as named by `--db` (for messages).
    pub db: PathBuf,
    /// Bearer token of the write endpoints; `None`: they are off.
    pub token: Option<String>,
    /// Largest request body (bytes).
    pub max_body: u64,
    /// Wall-clock limit of one request (upload, wait, decode and match).
    pub timeout: Duration,
    /// Uploads accepted at once.
    pub max_in_flight: usize,
    /// Per-input budget (its deadline is set per request).
    pub budget: Budget,
    /// Fingerprint parameters of this build.
    pub params: FingerprintParams,
    /// Matching thresholds (a request may raise `min_confidence`).
    pub match_params: MatchParams,
    /// The PostgreSQL index whose local replica the readers open: kept current every second
    /// and after each write (`None` for an SQLite index or a pack).
    pub replica: Option<String>,
}

/// The open index: reader connections for scans, one for listings and metrics, one writer.
pub struct Stores {
    /// One per concurrent scan.
    pub readers: Vec<Box<dyn Store + Send>>,
    /// For listings, health and metrics, so they answer while every scan reader is busy
    /// (`None` for a pack: its one store in memory is shared with the scans).
    pub meta: Option<Box<dyn Store + Send>>,
    /// The writer; `None` when the index is read-only (a pack).
    pub writer: Option<Box<dyn Store + Send>>,
}

/// State shared by the handlers.
struct State {
    config: Config,
    readers: Mutex<Vec<Box<dyn Store + Send>>>,
    /// Free reader connections (a permit is a right to pop one).
    reader_slots: Arc<Semaphore>,
    meta: Option<Mutex<Box<dyn Store + Send>>>,
    writer: Option<Mutex<Box<dyn Store + Send>>>,
    /// Scans accepted and not yet answered.
    in_flight: Arc<Semaphore>,
    /// Reference and pack uploads accepted and not yet answered: their own slots, so scans
    /// under load never lock curators out, nor curators the scans.
    writes: Arc<Semaphore>,
    metrics: metrics::Metrics,
    /// When the replica was last brought up to date (seconds since the epoch; 0: never).
    replica_synced: std::sync::atomic::AtomicU64,
}

impl State {
    /// Brings the replica up to date (a PostgreSQL index only), noting when it succeeded.
    fn sync_replica(&self) -> Result<(), nasheed::index::IndexError> {
        let Some(url) = &self.config.replica else {
            return Ok(());
        };
        nasheed::index::replica::update(url, &self.config.params.id(), None)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.replica_synced
            .store(now, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the service until SIGTERM or Ctrl-C, then lets the requests in flight finish.
/// `on_listening` is told the bound address (port 0 picks a free one).
pub fn serve(
    config: Config,
    stores: Stores,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let readers = stores.readers.len().max(1);
    limit_malloc_arenas(readers);
    let state = Arc::new(State {
        reader_slots: Arc::new(Semaphore::new(stores.readers.len())),
        readers: Mutex::new(stores.readers),
        meta: stores.meta.map(Mutex::new),
        writer: stores.writer.map(Mutex::new),
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        writes: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
        metrics: metrics::Metrics::default(),
        replica_synced: std::sync::atomic::AtomicU64::new(0),
        config,
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let syncer = state.config.replica.is_some().then(|| {
        let (state, stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last_error = String::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Said once per new error, not every second.
                match state.sync_replica() {
                    Ok(()) => last_error.clear(),
                    Err(e) if e.to_string() != last_error => {
                        last_error = e.to_string();
                        eprintln!("nasheed: updating the replica: {last_error}");
                    }
                    Err(_) => {}
                }
                std::thread::sleep(REPLICA_EVERY);
            }
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Scans run on blocking threads; the async workers only move bytes.
        .worker_threads(readers.clamp(1, 4))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(state.config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", state.config.listen))?;
        on_listening(listener.local_addr()?);
        let app = routes::router(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = syncer {
        let _ = t.join();
    }
    served
}

/// Caps glibc's malloc arenas at one per scan reader. Every scan runs on threads of its own
/// (matcher, decoder, hash), and glibc gives threads up to 8 arenas per core, each keeping its
/// high-water mark: under the load benchmark (32 clients and a writer, 2 cores) the server's
/// peak RSS was 481 MB with the default, 337 MB with two arenas per reader and 189 MB with
/// one, at the same throughput.
fn limit_malloc_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before the server's
    // threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas.clamp(1, 64) as libc::c_int);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Resolves at SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still stops the server.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
