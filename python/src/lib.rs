//! The Python binding of nasheed (`nasheed._nasheed`, re-exported by the `nasheed` package):
//! [`fingerprint`] (a recording as a one-track pack), [`Index`] (add, scan, list, remove),
//! [`Match`] and [`Reference`] (the fields of the JSON output contract), `NasheedError`.
//!
//! Every call runs the library's own pipeline (`engine::scan::scan_inputs`, the one the CLI and
//! the service run), so a scan here reports what `nasheed scan --format jsonl` reports. Decoding,
//! fingerprinting, matching and index work run with the interpreter released (`Python::detach`,
//! pyo3's name for `allow_threads`), so other Python threads go on, and scans from several
//! threads run side by side on an index file. A panic below is caught and raised as
//! `NasheedError`: hostile input never takes the interpreter down.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use nasheed::engine::inputs::Spool;
use nasheed::engine::report::MatchRecord;
use nasheed::engine::scan::{scan_input, ScanInput};
use nasheed::engine::{self, Budget, Fingerprint, Scanner};
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::{self as store_index, Access, IndexError, SqliteStore, Store, TrackRef};
use nasheed::matching::MatchParams;
use nasheed::pack;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

pyo3::create_exception!(
    nasheed,
    NasheedError,
    PyException,
    "A nasheed failure: one line naming the input, and `kind` (undecodable, unreadable, \
     over_budget, timeout, bad_pack, index, empty_index, internal)."
);

/// The location that means a private index in memory, gone when the `Index` is.
const MEMORY: &str = ":memory:";
/// The name errors and records give an input handed in as bytes.
const BYTES_NAME: &str = "<bytes>";

/// A failure on its way to Python: a kind a caller can route on, and one line.
#[derive(Debug)]
struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// `NasheedError(message)` with its `kind` attribute set.
    fn into_py_err(self, py: Python<'_>) -> PyErr {
        let err = NasheedError::new_err(self.message);
        if let Err(e) = err.value(py).setattr("kind", self.kind) {
            return e;
        }
        err
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Self {
        let kind = match &e {
            engine::Error::Index(_) => "index",
            other => other.input_kind().as_str(),
        };
        Failure::new(kind, e.to_string())
    }
}

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Self {
        Failure::new("index", e.to_string())
    }
}

impl From<pack::PackError> for Failure {
    fn from(e: pack::PackError) -> Self {
        match e {
            pack::PackError::Index(e) => e.into(),
            other => Failure::new("bad_pack", format!("fingerprint: {other}")),
        }
    }
}

/// Runs `work` with the interpreter released; a panic in it becomes a `NasheedError`.
fn released<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, Failure> + Send,
) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Failure::new(
                "internal",
                format!("internal error (please report it): {why}"),
            ))
        })
    })
    .map_err(|f| f.into_py_err(py))
}

/// What a caller hands in: a path (`str` or `os.PathLike`), or the bytes of a file.
enum Source {
    Path(PathBuf),
    Bytes(PyBackedBytes),
}

impl Source {
    fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        // Bytes first: os.fspath would take them as a path.
        if let Ok(b) = obj.extract::<PyBackedBytes>() {
            return Ok(Source::Bytes(b));
        }
        match obj.extract::<PathBuf>() {
            Ok(p) => Ok(Source::Path(p)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "expected a path (str or os.PathLike) or bytes, got {}",
                obj.get_type().name()?
            ))),
        }
    }

    /// The name records and errors give this input.
    fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes(_) => BYTES_NAME.to_string(),
        }
    }

    /// A file the decoder can seek in: the path itself, or the bytes in a private temporary
    /// file (removed when the returned spool is dropped).
    fn file(&self) -> Result<(PathBuf, Option<Spool>), Failure> {
        match self {
            Source::Path(p) => Ok((p.clone(), None)),
            Source::Bytes(b) => {
                let mut bytes: &[u8] = b;
                let spool = Spool::copy_from(&mut bytes, BYTES_NAME, b.len() as u64)
                    .map_err(|e| Failure::new(e.kind.as_str(), e.message))?;
                Ok((spool.path().to_path_buf(), Some(spool)))
            }
        }
    }
}

/// A `min_confidence` argument checked, as the CLI checks `--min-confidence`.
fn match_params(min_confidence: Option<f64>) -> PyResult<MatchParams> {
    let mut mp = MatchParams::default();
    if let Some(c) = min_confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(PyValueError::new_err(format!(
                "min_confidence: expected a number from 0 to 1, got {c}"
            )));
        }
        mp.min_confidence = c;
    }
    Ok(mp)
}

/// One match: a stretch of the input that is a stretch of a reference recording. The fields of
/// a match in `nasheed scan --format jsonl`, with the same names, units and rounding.
#[pyclass(module = "nasheed", frozen, get_all, eq)]
#[derive(Debug, Clone, PartialEq)]
struct Match {
    /// The reference's local id in this index.
    ref_id: i64,
    /// The reference's title.
    title: String,
    /// The reference's path as it was indexed.
    ref_path: String,
    /// SHA-256 of the reference's audio file: its identity in every index and pack.
    ref_sha256: String,
    /// The reference's metadata (`{}` when it has none).
    meta: BTreeMap<String, String>,
    /// Start of the match in the input (s).
    query_start_s: f64,
    /// End of the match in the input (s).
    query_end_s: f64,
    /// Start of the match in the reference (s).
    ref_start_s: f64,
    /// End of the match in the reference (s).
    ref_end_s: f64,
    /// Reference seconds per input second.
    speed: f64,
    /// The input's pitch shift in cents, when pitch and tempo moved independently.
    pitch_cents: Option<f64>,
    /// Landmark hashes aligned at the match's offset.
    score: u32,
    /// Probability that the alignment is not chance.
    confidence: f64,
    /// The numbers behind the confidence (the contract's optional `evidence` object) as JSON
    /// text; [`Match::evidence`] gives it as a dict.
    evidence_json: Option<String>,
}

impl From<MatchRecord> for Match {
    fn from(m: MatchRecord) -> Self {
        Match {
            ref_id: m.ref_id,
            title: m.title,
            ref_path: m.ref_path,
            ref_sha256: m.ref_sha256,
            meta: m.meta,
            query_start_s: m.query_start_s,
            query_end_s: m.query_end_s,
            ref_start_s: m.ref_start_s,
            ref_end_s: m.ref_end_s,
            speed: m.speed,
            pitch_cents: m.pitch_cents,
            score: m.score,
            confidence: m.confidence,
            evidence_json: m
                .evidence
                .as_ref()
                .and_then(|e| serde_json::to_string(e).ok()),
        }
    }
}

#[pymethods]
impl Match {
    /// The numbers behind the confidence as a dict (the contract's `evidence` object), or
    /// `None` for an unverified alignment.
    #[getter]
    fn evidence<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.evidence_json
            .as_ref()
            .map(|j| py.import("json")?.call_method1("loads", (j,)))
            .transpose()
    }

    /// The match as the JSON contract's object (`pitch_cents` and `evidence` only when present).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("ref_id", self.ref_id)?;
        d.set_item("title", &self.title)?;
        d.set_item("ref_path", &self.ref_path)?;
        d.set_item("ref_sha256", &self.ref_sha256)?;
        d.set_item("meta", &self.meta)?;
        d.set_item("query_start_s", self.query_start_s)?;
        d.set_item("query_end_s", self.query_end_s)?;
        d.set_item("ref_start_s", self.ref_start_s)?;
        d.set_item("ref_end_s", self.ref_end_s)?;
        d.set_item("speed", self.speed)?;
        if let Some(c) = self.pitch_cents {
            d.set_item("pitch_cents", c)?;
        }
        d.set_item("score", self.score)?;
        d.set_item("confidence", self.confidence)?;
        if let Some(e) = self.evidence(py)? {
            d.set_item("evidence", e)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Match(ref_id={}, title={:?}, query={:.3}-{:.3}s, ref={:.3}-{:.3}s, speed={}, score={}, confidence={})",
            self.ref_id,
            self.title,
            self.query_start_s,
            self.query_end_s,
            self.ref_start_s,
            self.ref_end_s,
            self.speed,
            self.score,
            self.confidence
        )
    }
}

/// A reference stored in an index: the fields of `nasheed list --format json`.
#[pyclass(module = "nasheed", frozen, get_all, eq)]
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    /// Local id (differs between an index and one its pack was imported into).
    id: i64,
    /// Source path as indexed.
    path: String,
    /// SHA-256 of the original file, the same everywhere.
    sha256: String,
    /// Title.
    title: String,
    /// Metadata.
    meta: BTreeMap<String, String>,
    /// Duration (s).
    duration_s: f64,
    /// Landmark hashes stored.
    n_hashes: u64,
    /// When it was indexed (UTC, `YYYY-MM-DD HH:MM:SS`).
    indexed_at: String,
}

#[pymethods]
impl Reference {
    fn __repr__(&self) -> String {
        format!(
            "Reference(id={}, title={:?}, sha256={:?}, duration_s={})",
            self.id, self.title, self.sha256, self.duration_s
        )
    }
}

/// What a fingerprint pack says of one recording it carries (no index involved).
#[pyclass(module = "nasheed", frozen, get_all, eq)]
#[derive(Debug, Clone, PartialEq)]
struct PackEntry {
    /// SHA-256 of the original audio file.
    sha256: String,
    /// Title.
    title: String,
    /// File name of the original (no folders).
    file: String,
    /// Duration (s).
    duration_s: f64,
    /// Metadata.
    meta: BTreeMap<String, String>,
    /// Landmark hashes carried.
    n_hashes: usize,
}

#[pymethods]
impl PackEntry {
    fn __repr__(&self) -> String {
        format!(
            "PackEntry(title={:?}, sha256={:?}, duration_s={}, n_hashes={})",
            self.title, self.sha256, self.duration_s, self.n_hashes
        )
    }
}

/// `fingerprint(source, title=None, meta=None, name=None) -> bytes`: a recording (a path or
/// the bytes of a file) fingerprinted as a reference, as a one-track fingerprint pack (no audio
/// in it). `name` is the file name the pack records (default: the source's); with `name=""`
/// and `title=""` the pack is a function of the content alone.
#[pyfunction]
#[pyo3(signature = (source, title=None, meta=None, name=None))]
fn fingerprint<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    title: Option<String>,
    meta: Option<BTreeMap<String, String>>,
    name: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let source = Source::from_py(source)?;
    let params = FingerprintParams::default();
    let bytes = released(py, || {
        let (file, _spool) = source.file()?;
        // Errors name the source whatever the pack is to record.
        let (mut track, fp) = engine::read_reference(
            &file,
            &source.name(),
            title,
            meta.unwrap_or_default(),
            &params,
            &Budget::default(),
        )?;
        if let Some(name) = name {
            track.path = name;
        }
        Ok(engine::pack_reference(&track, &fp, &params))
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// `read_fingerprint(pack) -> list[PackEntry]`: the recordings a fingerprint pack carries,
/// after checking it whole (checksum, format, this build's fingerprint parameters).
#[pyfunction]
fn read_fingerprint(py: Python<'_>, pack: PyBackedBytes) -> PyResult<Vec<PackEntry>> {
    let params_id = FingerprintParams::default().id();
    released(py, || {
        let tracks = pack::read(&pack, &params_id)?;
        Ok(tracks
            .into_iter()
            .map(|t| PackEntry {
                sha256: t.sha256,
                title: t.info.title,
                file: t.info.file,
                duration_s: t.info.duration_s,
                meta: t.info.meta,
                n_hashes: t.prints.landmarks.len(),
            })
            .collect())
    })
}

/// A store to scan with: a spare reader connection (put back when done), or the index's own
/// store, locked, where no second connection can be had (memory, packs).
enum Lease<'a> {
    Reader(&'a Index, Option<Box<dyn Store + Send>>),
    Main(MutexGuard<'a, Box<dyn Store + Send>>),
}

impl Lease<'_> {
    fn store(&mut self) -> Result<&mut Box<dyn Store + Send>, Failure> {
        match self {
            Lease::Reader(_, Some(s)) => Ok(s),
            Lease::Reader(_, None) => Err(Failure::new("internal", "a lease without a store")),
            Lease::Main(guard) => Ok(guard),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Lease::Reader(index, store) = self {
            if let (Some(store), Ok(mut pool)) = (store.take(), index.readers.lock()) {
                pool.push(store);
            }
        }
    }
}

/// `Index(location)`: a nasheed index. `location` is an SQLite file (created when missing),
/// a `postgres://` URL, a fingerprint pack or a folder of packs (read-only), or `":memory:"`
/// (private, gone with the object). The methods release the interpreter while they work;
/// scans from several threads run side by side on a file or PostgreSQL index.
#[pyclass(module = "nasheed", frozen)]
struct Index {
    /// The location as given.
    location: String,
    /// Where more reader connections can be opened: `None` in memory and for packs.
    reopen: Option<PathBuf>,
    /// Set for packs (loaded into memory, never written back): writes are refused.
    read_only: Option<PathBuf>,
    /// The connection that writes (and scans, when no reader can be opened).
    store: Mutex<Box<dyn Store + Send>>,
    /// Spare reader connections, one per scan in flight at most.
    readers: Mutex<Vec<Box<dyn Store + Send>>>,
    params: FingerprintParams,
}

impl Index {
    /// The store, locked for a write; refused for a pack, whose copy in memory is never saved.
    fn writer(&self) -> Result<MutexGuard<'_, Box<dyn Store + Send>>, Failure> {
        if let Some(path) = &self.read_only {
            return Err(IndexError::ReadOnly(path.clone()).into());
        }
        self.main()
    }

    fn main(&self) -> Result<MutexGuard<'_, Box<dyn Store + Send>>, Failure> {
        self.store
            .lock()
            .map_err(|_| Failure::new("internal", "the index lock is poisoned"))
    }

    /// A store for one scan: a spare reader, a new one, or the main store.
    fn lease(&self) -> Result<Lease<'_>, Failure> {
        let Some(location) = &self.reopen else {
            return Ok(Lease::Main(self.main()?));
        };
        let spare = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        let reader = match spare {
            Some(r) => r,
            None => store_index::open(location, &self.params.id(), Access::Read)?,
        };
        Ok(Lease::Reader(self, Some(reader)))
    }

    /// Refuses to scan an index without references, as the CLI and the service do: every
    /// input would come back clean.
    fn refuse_empty(&self, store: &dyn Store) -> Result<(), Failure> {
        if store.stats()?.tracks == 0 {
            return Err(Failure::new(
                "empty_index",
                format!(
                    "the index {} holds no references: every input would be reported clean",
                    self.location
                ),
            ));
        }
        Ok(())
    }

    /// The id of the track with this SHA-256 (stored just now, or before).
    fn id_of(store: &dyn Store, sha256: &str) -> Result<i64, Failure> {
        store
            .find_sha(sha256)?
            .map(|id| id.0)
            .ok_or_else(|| Failure::new("index", format!("track {sha256} vanished after storing")))
    }
}

#[pymethods]
impl Index {
    #[new]
    fn new(py: Python<'_>, location: &Bound<'_, PyAny>) -> PyResult<Self> {
        let location: PathBuf = location.extract().map_err(|_| {
            PyTypeError::new_err(
                "Index(location): expected a path, a postgres:// URL or \":memory:\"",
            )
        })?;
        let params = FingerprintParams::default();
        let shown = location.display().to_string();
        let (store, reopen, read_only) = released(py, || {
            let id = params.id();
            if location.as_os_str() == MEMORY {
                let store: Box<dyn Store + Send> = Box::new(SqliteStore::in_memory(&id)?);
                return Ok((store, None, None));
            }
            let is_pack = location.is_dir() || pack::is_pack_source(&location);
            let access = if is_pack {
                Access::Read
            } else {
                Access::Create
            };
            let store = store_index::open(&location, &id, access)?;
            let reopen = (!is_pack).then(|| location.clone());
            Ok((store, reopen, is_pack.then(|| location.clone())))
        })?;
        Ok(Index {
            location: shown,
            reopen,
            read_only,
            store: Mutex::new(store),
            readers: Mutex::new(Vec::new()),
            params,
        })
    }

    /// The fingerprint-parameter id this index holds (packs must carry the same).
    #[getter]
    fn params_id(&self) -> String {
        self.params.id()
    }

    /// `add(source, title=None, meta=None) -> int`: fingerprints a recording and stores it as
    /// a reference; returns its id (that of the stored copy when the same content is there).
    #[pyo3(signature = (source, title=None, meta=None))]
    fn add(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        title: Option<String>,
        meta: Option<BTreeMap<String, String>>,
    ) -> PyResult<i64> {
        let source = Source::from_py(source)?;
        released(py, || {
            let (file, _spool) = source.file()?;
            // Refused before the work, for a pack; read outside the lock: only the insert holds it.
            drop(self.writer()?);
            let (track, fp) = engine::read_reference(
                &file,
                &source.name(),
                title,
                meta.unwrap_or_default(),
                &self.params,
                &Budget::default(),
            )?;
            let mut store = self.writer()?;
            let (id, _) = engine::add_reference(&mut **store, &track, &fp)?;
            Ok(id.0)
        })
    }

    /// `add_fingerprint(pack, title=None, meta=None) -> list[int]`: stores the recordings of a
    /// fingerprint pack (one transaction); returns their ids. `title` renames a one-track
    /// pack's recording; `meta` is merged into each recording's metadata.
    #[pyo3(signature = (pack, title=None, meta=None))]
    fn add_fingerprint(
        &self,
        py: Python<'_>,
        pack: PyBackedBytes,
        title: Option<String>,
        meta: Option<BTreeMap<String, String>>,
    ) -> PyResult<Vec<i64>> {
        released(py, || {
            let mut tracks = pack::read(&pack, &self.params.id())?;
            if title.is_some() && tracks.len() != 1 {
                return Err(Failure::new(
                    "bad_pack",
                    format!(
                        "fingerprint: title applies to a one-track pack, this one has {} tracks",
                        tracks.len()
                    ),
                ));
            }
            for t in &mut tracks {
                if let Some(title) = &title {
                    t.info.title = title.clone();
                }
                if let Some(meta) = &meta {
                    t.info.meta.extend(meta.clone());
                }
            }
            let shas: Vec<String> = tracks.iter().map(|t| t.sha256.clone()).collect();
            let mut store = self.writer()?;
            pack::add(&mut **store, tracks)?;
            shas.iter().map(|sha| Self::id_of(&**store, sha)).collect()
        })
    }

    /// `scan(source, min_confidence=None) -> list[Match]`: the matches of a recording (a path
    /// or the bytes of a file), by start; raises `NasheedError` when it cannot be read.
    #[pyo3(signature = (source, min_confidence=None))]
    fn scan(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        min_confidence: Option<f64>,
    ) -> PyResult<Vec<Match>> {
        let source = Source::from_py(source)?;
        let mp = match_params(min_confidence)?;
        let record = released(py, || {
            let (file, _spool) = source.file()?;
            let input = ScanInput {
                name: PathBuf::from(source.name()),
                file: Ok(file),
            };
            let mut lease = self.lease()?;
            let store = lease.store()?;
            self.refuse_empty(&**store)?;
            scan_input(
                std::slice::from_mut(store),
                &input,
                &self.params,
                &mp,
                &Budget::default(),
            )
            .map_err(|e| Failure::new("index", e.to_string()))?
            .ok_or_else(|| Failure::new("internal", "the scan ended without a record"))
        })?;
        if let Some(message) = record.error {
            let kind = record.error_kind.map_or("unreadable", |k| k.as_str());
            return Err(Failure::new(kind, message).into_py_err(py));
        }
        Ok(record.matches.into_iter().map(Match::from).collect())
    }

    /// `scan_fingerprint(pack, min_confidence=None) -> list[Match]`: the matches of a recording
    /// known only by its one-track fingerprint pack (a shared signal: no audio).
    #[pyo3(signature = (pack, min_confidence=None))]
    fn scan_fingerprint(
        &self,
        py: Python<'_>,
        pack: PyBackedBytes,
        min_confidence: Option<f64>,
    ) -> PyResult<Vec<Match>> {
        let mp = match_params(min_confidence)?;
        released(py, || {
            let mut tracks = pack::read(&pack, &self.params.id())?;
            if tracks.len() != 1 {
                return Err(Failure::new(
                    "bad_pack",
                    format!(
                        "fingerprint: expected a one-track pack, this one has {} tracks",
                        tracks.len()
                    ),
                ));
            }
            let track = tracks.remove(0);
            let fp = Fingerprint::of_pack_track(track, &self.params);
            let mut lease = self.lease()?;
            let store = lease.store()?;
            self.refuse_empty(&**store)?;
            let found = Scanner::new(&**store, &self.params, &mp).scan(&fp)?;
            Ok(found
                .iter()
                .map(|f| Match::from(MatchRecord::from(f)))
                .collect())
        })
    }

    /// `references() -> list[Reference]`: every reference, by id.
    fn references(&self, py: Python<'_>) -> PyResult<Vec<Reference>> {
        released(py, || {
            let tracks = self.main()?.tracks()?;
            Ok(tracks
                .into_iter()
                .map(|t| Reference {
                    id: t.id.0,
                    path: t.path,
                    sha256: t.sha256,
                    title: t.title,
                    meta: t.meta,
                    duration_s: t.duration_s,
                    n_hashes: t.n_hashes,
                    indexed_at: t.indexed_at,
                })
                .collect())
        })
    }

    /// `remove(id) -> bool`: removes a reference by id (int) or SHA-256 (a unique prefix of 8+
    /// hex digits); False when there is none.
    fn remove(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let named: TrackRef = match id.extract::<i64>() {
            Ok(n) => TrackRef::Id(nasheed::index::TrackId(n)),
            Err(_) => {
                let s: String = id.extract().map_err(|_| {
                    PyTypeError::new_err("remove(id): expected an int id or a SHA-256 (prefix)")
                })?;
                s.parse().map_err(PyValueError::new_err)?
            }
        };
        released(py, || {
            let mut store = self.writer()?;
            match store_index::resolve(&**store, &named) {
                Ok(track) => Ok(store.remove(track)?),
                Err(IndexError::NoSuchTrack(_)) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn __repr__(&self) -> String {
        format!("Index({:?})", self.location)
    }
}

/// The extension module `nasheed._nasheed`.
#[pymodule]
fn _nasheed(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NasheedError", m.py().get_type::<NasheedError>())?;
    m.add("PARAMS_ID", FingerprintParams::default().id())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(read_fingerprint, m)?)?;
    m.add_class::<Index>()?;
    m.add_class::<Match>()?;
    m.add_class::<Reference>()?;
    m.add_class::<PackEntry>()?;
    Ok(())
}
