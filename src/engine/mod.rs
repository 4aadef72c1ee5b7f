//! The pipeline joined up: a file (or any [`AudioSource`]) → landmarks → index or matches.
//!
//! This is the API the CLI, the evaluation harness and any embedding program call; it prints
//! nothing. [`scan::scan_inputs`] is the whole scan pipeline the CLI runs, and [`report`] holds
//! the records it delivers (the JSON output contract). The harness still fingerprints and
//! matches each query through [`Scanner`] directly, to time the stages apart.

pub mod evidence;
pub mod inputs;
pub mod report;
pub mod scan;

pub use inputs::{expand_inputs, Expanded, Input, SkipReason, Skipped};

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::audio::{self, AudioError, AudioSource, Limited, SymphoniaSource};
use crate::fingerprint::{FingerprintParams, Fingerprinter, Prints, Side};
use crate::index::{IndexError, Store, TrackId};
use crate::matching::{self, MatchParams};

/// Errors of the engine, each naming the file it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be decoded.
    #[error("{path}: {source}")]
    Audio {
        /// The input.
        path: String,
        /// Why.
        source: AudioError,
    },
    /// The input could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The input.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl Error {
    /// The kind of input failure this is, as a scan record reports it.
    pub fn input_kind(&self) -> report::ErrorKind {
        use report::ErrorKind;
        match self {
            Error::Audio { source, .. } => match source {
                AudioError::Io(_) => ErrorKind::Unreadable,
                AudioError::TooLong(_) | AudioError::Silence { .. } => ErrorKind::OverBudget,
                AudioError::Deadline(_) => ErrorKind::Timeout,
                _ => ErrorKind::Undecodable,
            },
            Error::Io { .. } | Error::Index(_) => ErrorKind::Unreadable,
        }
    }
}

/// Result alias of the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// The fingerprint of one decoded input.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Landmarks and peaks.
    pub prints: Prints,
    /// Frames analysed.
    pub frames: u32,
    /// Decoded duration in seconds.
    pub duration_s: f64,
    /// Packets skipped as undecodable.
    pub skipped_packets: u64,
}

/// Decodes and fingerprints a source as a stream.
pub fn fingerprint_source(
    source: &mut dyn AudioSource,
    params: &FingerprintParams,
    side: Side,
) -> std::result::Result<Fingerprint, AudioError> {
    let mut prints = Prints::default();
    let mut fp = stream_source(source, params, side, &mut |part, _| prints.append(part))?;
    fp.prints = prints;
    Ok(fp)
}

/// Decodes and fingerprints a source, handing `sink` each piece of prints as it becomes final
/// together with the frame before which everything is final. Memory stays flat: nothing is
/// kept here. The returned [`Fingerprint`] has empty prints (they went to `sink`).
pub fn stream_source(
    source: &mut dyn AudioSource,
    params: &FingerprintParams,
    side: Side,
    sink: &mut dyn FnMut(Prints, u32),
) -> std::result::Result<Fingerprint, AudioError> {
    survive(|| stream_unguarded(source, params, side, sink))
}

/// Runs a decoding step; a panic inside it (a decoder tripping over a malformed file) becomes
/// an error for that file instead of ending the whole run.
fn survive<T>(
    step: impl FnOnce() -> std::result::Result<T, AudioError>,
) -> std::result::Result<T, AudioError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step))
        .unwrap_or_else(|_| Err(AudioError::Corrupt("the decoder crashed on it".into())))
}

fn stream_unguarded(
    source: &mut dyn AudioSource,
    params: &FingerprintParams,
    side: Side,
    sink: &mut dyn FnMut(Prints, u32),
) -> std::result::Result<Fingerprint, AudioError> {
    let mut fp = Fingerprinter::new(params, side);
    let info = audio::stream_mono(source, params.sample_rate, |block| {
        let mut part = Prints::default();
        fp.push(block, &mut part);
        if !part.landmarks.is_empty() || !part.peaks.is_empty() {
            sink(part, fp.done());
        }
    })?;
    let mut part = Prints::default();
    let frames = fp.finish(&mut part);
    sink(part, frames);
    Ok(Fingerprint {
        prints: Prints::default(),
        frames,
        duration_s: info.duration_s,
        skipped_packets: info.skipped_packets,
    })
}

/// Bounds on the work one input may cost: uploads are hostile (a 1 MB file can decode to a
/// day of silence), and every file read by [`stream_file`] is held to them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Most decoded audio one input may hold (s); past it the input is an error.
    pub max_duration_s: f64,
    /// Longest stretch of digital silence (every sample one value) one input may hold (s).
    pub max_silence_s: f64,
    /// Wall-clock time by which decoding must be done (a service's per-request deadline).
    pub deadline: Option<std::time::Instant>,
}

impl Budget {
    /// The default: 4 hours of audio per input.
    pub const DEFAULT_MAX_DURATION_S: f64 = 4.0 * 3600.0;
    /// The default: 10 minutes of unbroken digital silence. Recordings hold seconds of it
    /// between tracks; a file with more is almost always a decompression bomb.
    pub const DEFAULT_MAX_SILENCE_S: f64 = 600.0;

    /// The default budget with another duration limit.
    pub fn with_max_duration(max_duration_s: f64) -> Self {
        Budget {
            max_duration_s,
            ..Budget::default()
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_duration_s: Self::DEFAULT_MAX_DURATION_S,
            max_silence_s: Self::DEFAULT_MAX_SILENCE_S,
            deadline: None,
        }
    }
}

/// Decodes and fingerprints a file.
pub fn fingerprint_file(
    path: &Path,
    params: &FingerprintParams,
    side: Side,
    budget: &Budget,
) -> Result<Fingerprint> {
    let mut prints = Prints::default();
    let mut fp = stream_file(path, params, side, budget, &mut |part, _| {
        prints.append(part)
    })?;
    fp.prints = prints;
    Ok(fp)
}

/// Decodes and fingerprints a file as a stream (see [`stream_source`]), within `budget`.
pub fn stream_file(
    path: &Path,
    params: &FingerprintParams,
    side: Side,
    budget: &Budget,
    sink: &mut dyn FnMut(Prints, u32),
) -> Result<Fingerprint> {
    let err = |source| Error::Audio {
        path: path.display().to_string(),
        source,
    };
    let src = survive(|| SymphoniaSource::open(path)).map_err(err)?;
    let mut src = Limited::new(src, budget.max_duration_s, budget.max_silence_s)
        .with_deadline(budget.deadline);
    stream_source(&mut src, params, side, sink).map_err(err)
}

/// The duration a file's container declares (s), read from its header without decoding: for
/// progress estimates. `None` when the file is not audio or does not say.
pub fn declared_duration_s(path: &Path) -> Option<f64> {
    survive(|| SymphoniaSource::open(path))
        .ok()?
        .declared_duration_s()
}

/// SHA-256 of a file's bytes, lowercase hex (read in blocks: memory stays flat).
pub fn sha256_file(path: &Path) -> Result<String> {
    let err = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Process CPU time (user + system) from /proc; 0 where unavailable.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// A match in seconds, with the reference it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Reference id.
    pub ref_id: TrackId,
    /// Reference title.
    pub title: String,
    /// Reference path as indexed.
    pub ref_path: String,
    /// SHA-256 of the reference's audio file: its identity in every index and pack (local ids
    /// differ between an index and a pack imported elsewhere).
    pub ref_sha256: String,
    /// The reference's metadata (group, language, source, tags...), as stored.
    pub meta: crate::index::Metadata,
    /// Start and end in the upload (s).
    pub query_start_s: f64,
    /// End in the upload (s).
    pub query_end_s: f64,
    /// Start in the reference (s).
    pub ref_start_s: f64,
    /// End in the reference (s).
    pub ref_end_s: f64,
    /// Reference seconds per upload second.
    pub speed: f64,
    /// Pitch shift of the upload in cents, when pitch and tempo were changed independently.
    pub pitch_cents: Option<f64>,
    /// Aligned hits.
    pub score: u32,
    /// Probability that the alignment is not chance.
    pub confidence: f64,
    /// The numbers behind the confidence (`None` only for an unverified alignment).
    pub evidence: Option<evidence::Basis>,
}

/// Scans fingerprints against a store; caches what it learns of references.
pub struct Scanner<'a> {
    store: &'a dyn Store,
    params: FingerprintParams,
    match_params: MatchParams,
    refs: Mutex<HashMap<TrackId, RefInfo>>,
}

/// What a scanner keeps of a reference it met: what a match reports, and its length.
#[derive(Clone)]
struct RefInfo {
    title: String,
    path: String,
    sha256: String,
    meta: crate::index::Metadata,
    frames: u32,
}

impl<'a> Scanner<'a> {
    /// A scanner over `store` (built with `params`); `match_params.fingerprint` is set to `params`.
    pub fn new(
        store: &'a dyn Store,
        params: &FingerprintParams,
        match_params: &MatchParams,
    ) -> Self {
        let match_params = MatchParams {
            fingerprint: params.clone(),
            ..match_params.clone()
        };
        Scanner {
            store,
            params: params.clone(),
            match_params,
            refs: Mutex::new(HashMap::new()),
        }
    }

    /// Matches of one fingerprinted upload, ordered by where they start in it.
    pub fn scan(&self, fp: &Fingerprint) -> Result<Vec<Found>> {
        let mut stream = self.stream();
        stream.push(fp.prints.clone(), fp.frames)?;
        stream.finish(fp.frames, fp.duration_s)
    }

    /// Matches an upload whose fingerprint arrives in pieces (see [`stream_file`]): memory is
    /// bounded by one matching window whatever the upload's length.
    pub fn stream(&self) -> ScanStream<'_> {
        ScanStream {
            scanner: self,
            windows: matching::WindowMatcher::new(self, &self.match_params),
        }
    }

    /// A reference's length in frames (needed for the confidence), fetched once per track.
    fn ref_frames(&self, id: TrackId) -> u32 {
        let frame_s = self.params.frame_seconds();
        if let Ok(cache) = self.refs.lock() {
            if let Some(r) = cache.get(&id) {
                return r.frames;
            }
        }
        match self.store.track(id) {
            Ok(Some(t)) => {
                let frames = (t.duration_s / frame_s) as u32;
                if let Ok(mut cache) = self.refs.lock() {
                    let info = RefInfo {
                        title: t.title,
                        path: t.path,
                        sha256: t.sha256,
                        meta: t.meta,
                        frames,
                    };
                    cache.insert(id, info);
                }
                frames
            }
            // A track removed mid-scan: an average length keeps the estimate sane.
            _ => (240.0 / frame_s) as u32,
        }
    }

    /// Matches in seconds with their references (those removed meanwhile are left out).
    pub(crate) fn found(&self, matches: Vec<matching::Match>, duration_s: f64) -> Vec<Found> {
        let frame_s = self.params.frame_seconds();
        // Held for the loop: only the matched references are copied out.
        let cache = self.refs.lock().ok();
        let mut out = Vec::with_capacity(matches.len());
        for m in matches {
            // Every matched track was looked up for its length; a track removed since is skipped.
            let Some(RefInfo {
                title,
                path: ref_path,
                sha256: ref_sha256,
                meta,
                ..
            }) = cache.as_ref().and_then(|c| c.get(&m.track)).cloned()
            else {
                continue;
            };
            // The window of the last hit's anchor reaches one FFT past its start.
            let q0 = m.query_frames.0 as f64 * frame_s;
            let q1 = ((m.query_frames.1 as f64 * frame_s)
                + self.params.fft_size as f64 / self.params.sample_rate as f64)
                .min(duration_s.max(q0));
            let speed = m.line.time;
            let r0 = m.line.at(m.query_frames.0 as f64) * frame_s;
            out.push(Found {
                ref_id: m.track,
                title,
                ref_path,
                ref_sha256,
                meta,
                query_start_s: q0,
                query_end_s: q1,
                ref_start_s: r0,
                ref_end_s: r0 + (q1 - q0) * speed,
                speed,
                pitch_cents: pitch_cents(speed, m.warp.freq),
                score: m.score,
                confidence: m.confidence,
                evidence: evidence::Basis::of(&m, frame_s),
            });
        }
        out
    }
}

/// How far apart (cents) a found pitch and a found speed may be and still be one speed change,
/// and how near a pitch may be to none: the first pass resolves pitch to about 10 cents.
const PITCH_RESOLUTION_CENTS: f64 = 15.0;

/// The pitch shift to report for an alignment at `speed` with frequency factor `freq`: none for
/// a plain speed change (pitch moved with tempo), else the shift (0 for a tempo-only change).
fn pitch_cents(speed: f64, freq: f64) -> Option<f64> {
    let (pitch, with_speed) = (1200.0 * freq.log2(), 1200.0 * speed.log2());
    if (pitch - with_speed).abs() <= PITCH_RESOLUTION_CENTS {
        None
    } else if pitch.abs() <= PITCH_RESOLUTION_CENTS {
        Some(0.0)
    } else {
        Some(pitch)
    }
}

/// Matching sees the index through the scanner: postings and peaks from the store, lengths from
/// the scanner's cache.
impl matching::References for Scanner<'_> {
    type Error = IndexError;

    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> std::result::Result<(), IndexError> {
        self.store.lookup(hashes, cap, hit)
    }

    fn lookup_triplets(
        &self,
        keys: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(TrackId, crate::fingerprint::triplets::StoredTriplet),
    ) -> std::result::Result<(), IndexError> {
        self.store.lookup_triplets(keys, cap, hit)
    }

    fn peaks(
        &self,
        track: TrackId,
    ) -> std::result::Result<Vec<crate::fingerprint::Peak>, IndexError> {
        self.store.peaks(track)
    }

    fn frames(&self, track: TrackId) -> u32 {
        self.ref_frames(track)
    }
}

/// One upload being matched as its fingerprint streams in (from [`Scanner::stream`]).
pub struct ScanStream<'s> {
    scanner: &'s Scanner<'s>,
    windows: matching::WindowMatcher<'s, Scanner<'s>>,
}

impl ScanStream<'_> {
    /// Adds prints that are final before frame `done`; matches the windows now complete.
    pub fn push(&mut self, prints: Prints, done: u32) -> Result<()> {
        Ok(self.windows.push(prints, done)?)
    }

    /// Ends the upload (`frames` long, `duration_s` seconds): its matches by start.
    pub fn finish(self, frames: u32, duration_s: f64) -> Result<Vec<Found>> {
        let matches = self.windows.finish(frames)?;
        Ok(self.scanner.found(matches, duration_s))
    }
}

/// One file to index, with what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexJob {
    /// The file.
    pub path: PathBuf,
    /// Title (defaults to the file stem).
    pub title: Option<String>,
    /// Metadata stored with the track.
    pub meta: crate::index::Metadata,
}

/// What happened to one file during [`index_files`].
#[derive(Debug)]
pub enum IndexEvent<'a> {
    /// Fingerprinted and stored.
    Indexed {
        /// The file.
        path: &'a Path,
        /// Its new id.
        id: TrackId,
        /// Decoded seconds.
        duration_s: f64,
        /// Hashes stored.
        hashes: usize,
    },
    /// Already in the index (same SHA-256).
    Skipped {
        /// The file.
        path: &'a Path,
        /// The track that has the same content.
        existing: TrackId,
    },
    /// Could not be read or decoded; the run goes on.
    Failed {
        /// The file.
        path: &'a Path,
        /// Why (names the file).
        error: &'a Error,
    },
}

/// Totals of an [`index_files`] run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexSummary {
    /// Files stored.
    pub indexed: usize,
    /// Files already present.
    pub skipped: usize,
    /// Files that failed.
    pub failed: usize,
    /// Seconds of audio decoded and stored.
    pub audio_s: f64,
    /// Set when the index was compacted after the run and that failed (the tracks are stored).
    pub compact_error: Option<String>,
}

/// Share of an index's hashes a run must have added for the index to be compacted afterwards.
/// Compaction rewrites the whole file (~8 % smaller: tracks inserted one after another scatter
/// rows over every page), so it runs only once the index has grown by this much since: its cost
/// stays in proportion to what was added, and adding a file to a large index stays quick.
const COMPACT_GROWTH: f64 = 0.1;

enum Work {
    Done(Box<(IndexJob, String, Fingerprint)>),
    Skipped(IndexJob, TrackId),
    Failed(IndexJob, Error),
}

/// Indexes files: decoding and fingerprinting run in parallel (rayon), one writer stores each
/// track in its own transaction as it arrives. Returns `Err` only when the index itself fails;
/// per-file failures are reported through `on_event` and counted.
pub fn index_files(
    store: &mut dyn Store,
    jobs: Vec<IndexJob>,
    params: &FingerprintParams,
    budget: &Budget,
    on_event: &mut dyn FnMut(IndexEvent<'_>),
) -> Result<IndexSummary> {
    use rayon::prelude::*;
    let known: std::collections::HashMap<String, TrackId> = store
        .tracks()?
        .into_iter()
        .map(|t| (t.sha256, t.id))
        .collect();
    // A small bound keeps finished fingerprints from piling up if the writer is slower.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Work>(8);
    let mut summary = IndexSummary::default();
    let mut store_err = None;
    let mut added_hashes = 0u64;
    std::thread::scope(|s| {
        let known = &known;
        s.spawn(move || {
            jobs.into_par_iter().for_each_with(tx, |tx, job| {
                let work = match sha256_file(&job.path) {
                    Err(e) => Work::Failed(job, e),
                    Ok(sha) => match known.get(&sha) {
                        Some(&id) => Work::Skipped(job, id),
                        None => {
                            match fingerprint_file(&job.path, params, Side::Reference, budget) {
                                Ok(fp) => Work::Done(Box::new((job, sha, fp))),
                                Err(e) => Work::Failed(job, e),
                            }
                        }
                    },
                };
                // The receiver only goes away after a store failure; then the rest is moot.
                let _ = tx.send(work);
            });
        });
        for work in rx {
            if store_err.is_some() {
                continue;
            }
            match work {
                Work::Failed(job, error) => {
                    summary.failed += 1;
                    on_event(IndexEvent::Failed {
                        path: &job.path,
                        error: &error,
                    });
                }
                Work::Skipped(job, existing) => {
                    summary.skipped += 1;
                    on_event(IndexEvent::Skipped {
                        path: &job.path,
                        existing,
                    });
                }
                Work::Done(done) => {
                    let (job, sha, fp) = *done;
                    match store_track(store, &job, sha, &fp) {
                        Ok((id, true)) => {
                            summary.indexed += 1;
                            summary.audio_s += fp.duration_s;
                            added_hashes += fp.prints.landmarks.len() as u64;
                            on_event(IndexEvent::Indexed {
                                path: &job.path,
                                id,
                                duration_s: fp.duration_s,
                                hashes: fp.prints.landmarks.len(),
                            });
                        }
                        Ok((existing, false)) => {
                            summary.skipped += 1;
                            on_event(IndexEvent::Skipped {
                                path: &job.path,
                                existing,
                            });
                        }
                        Err(e) => store_err = Some(e),
                    }
                }
            }
        }
    });
    if let Some(e) = store_err {
        return Err(e);
    }
    if added_hashes > 0 && added_hashes as f64 >= COMPACT_GROWTH * store.stats()?.hashes as f64 {
        summary.compact_error = store.compact().err().map(|e| e.to_string());
    }
    Ok(summary)
}

/// Stores one fingerprinted file unless its content is already there (a duplicate within the run).
fn store_track(
    store: &mut dyn Store,
    job: &IndexJob,
    sha: String,
    fp: &Fingerprint,
) -> Result<(TrackId, bool)> {
    let title = job.title.clone().unwrap_or_else(|| {
        job.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let track = crate::index::NewTrack {
        path: job.path.display().to_string(),
        sha256: sha,
        title,
        meta: job.meta.clone(),
        duration_s: fp.duration_s,
    };
    add_reference(store, &track, fp)
}

/// Stores a fingerprinted recording as a reference unless its content (SHA-256) is already
/// there: `(id, true)` when added, `(the existing id, false)` when not. Safe against another
/// writer storing the same content meanwhile.
pub fn add_reference(
    store: &mut dyn Store,
    track: &crate::index::NewTrack,
    fp: &Fingerprint,
) -> Result<(TrackId, bool)> {
    if let Some(id) = store.find_sha(&track.sha256)? {
        return Ok((id, false));
    }
    match store.add_track(track, &fp.prints) {
        Ok(id) => Ok((id, true)),
        // Another process stored the same file since the check above.
        Err(IndexError::AlreadyIndexed(id)) => Ok((id, false)),
        Err(e) => Err(e.into()),
    }
}

/// Reads one recording as a reference: its SHA-256 and fingerprint, and the track record that
/// would store it. `name` stands for `path` in the record and in errors (a spooled upload's own
/// name); the title defaults to its stem. Store it with [`add_reference`], or share it with
/// [`pack_reference`].
pub fn read_reference(
    path: &Path,
    name: &str,
    title: Option<String>,
    meta: crate::index::Metadata,
    params: &FingerprintParams,
    budget: &Budget,
) -> Result<(crate::index::NewTrack, Fingerprint)> {
    let named = |e: Error| match e {
        Error::Audio { source, .. } => Error::Audio {
            path: name.to_string(),
            source,
        },
        Error::Io { source, .. } => Error::Io {
            path: name.to_string(),
            source,
        },
        other => other,
    };
    let sha256 = sha256_file(path).map_err(named)?;
    let fp = fingerprint_file(path, params, Side::Reference, budget).map_err(named)?;
    let title = title.unwrap_or_else(|| {
        Path::new(name)
            .file_stem()
            .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned())
    });
    let track = crate::index::NewTrack {
        path: name.to_string(),
        sha256,
        title,
        meta,
        duration_s: fp.duration_s,
    };
    Ok((track, fp))
}

/// A reference read by [`read_reference`] as a one-track fingerprint pack
/// (`fingerprints/FORMAT.md`): what a partner needs to find the recording, without its audio.
pub fn pack_reference(
    track: &crate::index::NewTrack,
    fp: &Fingerprint,
    params: &FingerprintParams,
) -> Vec<u8> {
    let file = Path::new(&track.path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let one = crate::pack::PackTrack {
        sha256: track.sha256.clone(),
        info: crate::pack::TrackInfo {
            title: track.title.clone(),
            file,
            duration_s: fp.duration_s,
            meta: track.meta.clone(),
        },
        prints: fp.prints.clone(),
    };
    crate::pack::write(&params.id(), &[one])
}

impl Fingerprint {
    /// The fingerprint a pack carries for one track, ready for [`Scanner::scan`]: a shared
    /// signal (no audio) is matched like an upload. Frames are recovered from the duration.
    pub fn of_pack_track(track: crate::pack::PackTrack, params: &FingerprintParams) -> Self {
        let duration_s = track.info.duration_s.max(0.0);
        let last = (track.prints.landmarks.iter().map(|l| l.frame))
            .chain(track.prints.peaks.iter().map(|p| p.frame))
            .max()
            .map_or(0, |f| f.saturating_add(1));
        let frames = ((duration_s / params.frame_seconds()).ceil() as u32).max(last);
        Fingerprint {
            prints: track.prints,
            frames,
            duration_s,
            skipped_packets: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::MemorySource;

    /// A source whose decoder panics after some audio, as a buggy codec might on a bad packet.
    struct Crashing(Vec<f32>, bool);

    impl AudioSource for Crashing {
        fn sample_rate(&self) -> u32 {
            8000
        }
        fn next_block(&mut self) -> audio::Result<Option<&[f32]>> {
            if std::mem::replace(&mut self.1, true) {
                panic!("decoder bug");
            }
            Ok(Some(&self.0))
        }
    }

    #[test]
    fn a_decoder_panic_is_an_error_for_that_input() {
        let params = FingerprintParams::default();
        let mut src = Crashing(vec![0.1; 8000], false);
        let got = fingerprint_source(&mut src, &params, Side::Query);
        assert!(matches!(got, Err(AudioError::Corrupt(_))), "{got:?}");
    }
    use crate::fingerprint::fingerprint;
    use crate::index::{NewTrack, SqliteStore};
    use nasheed_harness::synth;

    /// A recording read as a reference, shared as a one-track pack and matched from the pack
    /// alone (no audio): it finds itself in an index holding it, at offset 0, under `name`.
    #[test]
    fn a_one_track_pack_names_the_recording_and_is_matched_without_audio() {
        let params = FingerprintParams::default();
        let dir = std::env::temp_dir().join(format!("nasheed-pack-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("spool-xyz");
        synth::write_wav(&wav, &synth::song(7, 30.0, 8000), 8000, 1).unwrap();
        let meta = crate::index::Metadata::from([("group".to_string(), "g1".to_string())]);
        let (track, fp) =
            read_reference(&wav, "chant.wav", None, meta, &params, &Budget::default()).unwrap();
        assert_eq!(
            (track.path.as_str(), track.title.as_str()),
            ("chant.wav", "chant")
        );
        assert_eq!(track.sha256, sha256_file(&wav).unwrap());
        let bytes = pack_reference(&track, &fp, &params);
        let mut tracks = crate::pack::read(&bytes, &params.id()).unwrap();
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0].info.file, "chant.wav");
        assert_eq!(tracks[0].info.meta["group"], "g1");

        let mut store = SqliteStore::in_memory(&params.id()).unwrap();
        let (id, added) = add_reference(&mut store, &track, &fp).unwrap();
        assert!(added);
        let shared = Fingerprint::of_pack_track(tracks.remove(0), &params);
        assert!(
            shared.frames >= fp.frames.saturating_sub(1),
            "{} < {}",
            shared.frames,
            fp.frames
        );
        let found = Scanner::new(&store, &params, &MatchParams::default())
            .scan(&shared)
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].ref_id, id);
        assert!(
            found[0].ref_start_s.abs() < 0.1 && found[0].query_start_s < 0.5,
            "{found:?}"
        );

        // A file that is not audio is an error naming `name`, never the spooled path.
        std::fs::write(&wav, b"just some text, not audio").unwrap();
        let err = read_reference(
            &wav,
            "notes.txt",
            None,
            Default::default(),
            &params,
            &Budget::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("notes.txt: ") && !err.contains("spool-xyz"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A long upload matched as a stream, in small pieces, gives exactly the matches of the
    /// whole fingerprint matched at once (three windows, a match crossing a window edge).
    #[test]
    fn streamed_scan_equals_whole_scan() {
        let params = FingerprintParams::default();
        let rate = params.sample_rate;
        let mut store = SqliteStore::in_memory(&params.id()).unwrap();
        let song = synth::song(41, 120.0, rate);
        let track = NewTrack {
            path: "song41.wav".into(),
            sha256: "41".repeat(32),
            title: "song 41".into(),
            meta: Default::default(),
            duration_s: 120.0,
        };
        store
            .add_track(&track, &fingerprint(&song, &params, Side::Reference))
            .unwrap();
        // 50 s of another song, then 80 s of the reference from 20 s on, then 30 s of noise.
        let mut upload = synth::song(42, 50.0, rate);
        upload.extend_from_slice(&song[20 * rate as usize..100 * rate as usize]);
        upload.extend(synth::noise(5, 30 * rate as usize, 0.1));

        let scanner = Scanner::new(&store, &params, &MatchParams::default());
        let whole = fingerprint_source(
            &mut MemorySource::new(upload.clone(), rate),
            &params,
            Side::Query,
        )
        .unwrap();
        let expected = scanner.scan(&whole).unwrap();
        assert_eq!(expected.len(), 1, "{expected:?}");
        assert!(
            (expected[0].query_start_s - 50.0).abs() < 0.5,
            "{expected:?}"
        );
        assert!((expected[0].ref_start_s - 20.0).abs() < 0.5, "{expected:?}");

        let mut stream = scanner.stream();
        let mut pushes = 0;
        let mut source = MemorySource::new(upload, rate);
        let info = stream_source(&mut source, &params, Side::Query, &mut |prints, done| {
            pushes += 1;
            stream.push(prints, done).unwrap();
        })
        .unwrap();
        assert!(pushes > 3, "the prints came in one piece");
        assert_eq!(
            stream.finish(info.frames, info.duration_s).unwrap(),
            expected
        );
    }
}
