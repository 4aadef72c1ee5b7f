//! The fingerprint index: reference tracks with their metadata, and every landmark hash with the
//! track and frame it came from.
//!
//! [`Store`] is the seam; [`open`] picks the backend from the location (a pack file or folder
//! of packs loaded into memory, else an SQLite file, the embedded default). A store records the
//! fingerprint-parameter id it was built with and refuses to open with other parameters, so
//! hashes made differently are never mixed. This module knows nothing of audio decoding or of how
//! matches are scored.

pub mod postgres;
pub mod replica;
pub mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fingerprint::peaks::stored_salience;
use crate::fingerprint::triplets::StoredTriplet;
use crate::fingerprint::{Peak, Prints};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub use crate::ids::TrackId;

/// How a user names a track: its local id (which differs between an index and one its pack was
/// imported into), or its content SHA-256 or a prefix of it (the same everywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackRef {
    /// A local id, as `list` shows it.
    Id(TrackId),
    /// A SHA-256, or a prefix of at least [`TrackRef::MIN_PREFIX`] hex digits, lowercase.
    Sha(String),
}

impl TrackRef {
    /// Fewest hex digits of a SHA-256 prefix: shorter ones would clash in a large index, and
    /// a number shorter than this is taken as an id.
    pub const MIN_PREFIX: usize = 8;
}

impl std::str::FromStr for TrackRef {
    type Err = String;

    /// A number of fewer than 8 digits is an id; 8 to 64 hex digits (optionally after
    /// `sha256:`) a SHA-256 prefix.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim();
        let (hex, explicit) = match t.strip_prefix("sha256:") {
            Some(rest) => (rest, true),
            None => (t, false),
        };
        let is_hex = !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
        if !explicit && hex.len() < Self::MIN_PREFIX && hex.chars().all(|c| c.is_ascii_digit()) {
            if let Ok(id) = hex.parse::<i64>() {
                return Ok(TrackRef::Id(TrackId(id)));
            }
        }
        if is_hex && (Self::MIN_PREFIX..=64).contains(&hex.len()) {
            return Ok(TrackRef::Sha(hex.to_ascii_lowercase()));
        }
        Err(format!(
            "expected a track id (a number, see `nasheed list`) or a SHA-256 or a prefix of it of at least {} hex digits, got {s}",
            Self::MIN_PREFIX
        ))
    }
}

impl std::fmt::Display for TrackRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackRef::Id(id) => write!(f, "{}", id.0),
            TrackRef::Sha(s) => write!(f, "{s}"),
        }
    }
}

/// The track `r` names in `store`. A prefix must name exactly one track; a string of 8 or more
/// digits that is no SHA-256 prefix is tried as an id.
pub fn resolve(store: &dyn Store, r: &TrackRef) -> Result<TrackId> {
    let by_id = |id: TrackId| match store.track(id)? {
        Some(_) => Ok(id),
        None => Err(IndexError::NoSuchTrack(r.to_string())),
    };
    match r {
        TrackRef::Id(id) => by_id(*id),
        TrackRef::Sha(prefix) => {
            let found = store.find_sha_prefix(prefix)?;
            match found.as_slice() {
                [one] => Ok(*one),
                [] => match prefix.parse::<i64>() {
                    Ok(id) if prefix.chars().all(|c| c.is_ascii_digit()) => by_id(TrackId(id)),
                    _ => Err(IndexError::NoSuchTrack(r.to_string())),
                },
                many => Err(IndexError::AmbiguousPrefix {
                    prefix: prefix.clone(),
                    ids: many.to_vec(),
                }),
            }
        }
    }
}

/// Free-form metadata of a track (group, language, source, tags, notes...): text, never interpreted.
pub type Metadata = BTreeMap<String, String>;

/// A reference track about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrack {
    /// Where the audio came from (as given on the command line).
    pub path: String,
    /// SHA-256 of the file's bytes, lowercase hex: the identity used to skip re-indexing.
    pub sha256: String,
    /// Display title (defaults to the file stem).
    pub title: String,
    /// Everything else known about the recording.
    pub meta: Metadata,
    /// Decoded duration in seconds.
    pub duration_s: f64,
}

/// A stored reference track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackInfo {
    /// Row id.
    pub id: TrackId,
    /// Source path as indexed.
    pub path: String,
    /// SHA-256 of the original file.
    pub sha256: String,
    /// Display title.
    pub title: String,
    /// Metadata.
    pub meta: Metadata,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Number of hashes stored.
    pub n_hashes: u64,
    /// When it was indexed (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub indexed_at: String,
}

/// Totals of an index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Tracks stored.
    pub tracks: u64,
    /// Hashes stored.
    pub hashes: u64,
    /// Audio indexed, in hours.
    pub audio_hours: f64,
    /// Size of the database file(s) in bytes.
    pub bytes: u64,
    /// Fingerprint-parameter id the index was built with.
    pub params_id: String,
}

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The backend (the database engine) failed; its own error, whichever backend it is.
    #[error("index database: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The index was built with other fingerprint parameters.
    #[error("index {path} was built with fingerprint parameters {stored}, this build uses {current}: re-index, or use a matching build (`list`, `stats` and `export` still read it)")]
    ParamsMismatch {
        /// Index path.
        path: PathBuf,
        /// Id stored in the index.
        stored: String,
        /// Id of this build.
        current: String,
    },
    /// The index was written by a newer version of nasheed.
    #[error("index {path} has schema version {found}; this build reads up to {supported}")]
    NewerSchema {
        /// Index path.
        path: PathBuf,
        /// Schema version found.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The file is not a nasheed index (another program's database, or not a database at
    /// all); it was left as it was.
    #[error("{}: not a nasheed index ({what}); left unchanged", path.display())]
    NotAnIndex {
        /// The file.
        path: PathBuf,
        /// What it looks like instead.
        what: String,
    },
    /// No index exists where one was expected.
    #[error("no index at {0} (build one with `nasheed index`)")]
    Missing(PathBuf),
    /// A track with the same content (SHA-256) is already stored: nothing was added.
    #[error("already indexed as track {}", .0 .0)]
    AlreadyIndexed(TrackId),
    /// Stored metadata or peaks of a track do not decode.
    #[error("corrupt stored data of track {0}")]
    CorruptTrack(i64),
    /// A hash's stored posting list does not decode (a damaged index file).
    #[error("corrupt posting list of hash {0:#x}: the index file is damaged; rebuild it")]
    CorruptPostings(i64),
    /// No track has this id or SHA-256 (prefix).
    #[error("no track {0} (see `nasheed list`)")]
    NoSuchTrack(String),
    /// A SHA-256 prefix names more than one track.
    #[error(
        "SHA-256 prefix {prefix} is ambiguous: it names tracks {}; give more digits",
        list_ids(ids)
    )]
    AmbiguousPrefix {
        /// The prefix.
        prefix: String,
        /// The tracks it names (the first few).
        ids: Vec<TrackId>,
    },
    /// A pack, or a folder of packs, cannot be loaded.
    #[error("loading packs from {}: {reason}", path.display())]
    Pack {
        /// The pack or folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A pack or a folder was given where an index is written.
    #[error("--db {} is a fingerprint pack or a folder, which is read-only: write to an index database file, or `import` the pack into one", .0.display())]
    ReadOnly(PathBuf),
    /// The index file cannot be created or opened for writing; says why in plain words.
    #[error("{}: {reason}", path.display())]
    CannotOpen {
        /// The index path.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
}

fn list_ids(ids: &[TrackId]) -> String {
    let v: Vec<String> = ids.iter().map(|i| i.0.to_string()).collect();
    v.join(", ")
}

/// How a command means to use an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Scan against it: it must hold this build's fingerprint parameters.
    Read,
    /// List, count or export it, whatever fingerprint parameters built it.
    Inspect,
    /// Add to it, creating it when missing.
    Create,
    /// Change an existing index (remove, tag); a missing one is an error.
    Modify,
}

/// Opens the index at `location` for `access`, picking the backend: a `postgres://` URL is a
/// shared PostgreSQL index; a fingerprint pack or a folder (of packs) is loaded into memory,
/// read-only; anything else is an SQLite index file.
/// `params_id` is this build's fingerprint-parameter id (not checked for [`Access::Inspect`]).
pub fn open(location: &Path, params_id: &str, access: Access) -> Result<Box<dyn Store + Send>> {
    if postgres::is_url(location) {
        let url = location.to_str().unwrap_or_default();
        let (params_id, mode) = match access {
            Access::Read => (Some(params_id), postgres::Mode::Read),
            Access::Inspect => (None, postgres::Mode::Read),
            Access::Create => (Some(params_id), postgres::Mode::Create),
            Access::Modify => (Some(params_id), postgres::Mode::Write),
        };
        return Ok(Box::new(PostgresStore::open(url, params_id, mode)?));
    }
    if location.is_dir() || crate::pack::is_pack_source(location) {
        let packs = |e: crate::pack::PackError| IndexError::Pack {
            path: location.to_path_buf(),
            reason: e.to_string(),
        };
        return Ok(match access {
            Access::Read => Box::new(crate::pack::load(location, params_id).map_err(packs)?),
            Access::Inspect => Box::new(crate::pack::load_to_inspect(location).map_err(packs)?),
            Access::Create | Access::Modify => {
                return Err(IndexError::ReadOnly(location.to_path_buf()))
            }
        });
    }
    Ok(match access {
        Access::Read => Box::new(SqliteStore::open_read_only(location, params_id)?),
        Access::Inspect => Box::new(SqliteStore::open_to_inspect(location)?),
        Access::Create => Box::new(SqliteStore::open(location, params_id)?),
        Access::Modify => Box::new(SqliteStore::open_existing(location, params_id)?),
    })
}

/// Up to `wanted` more read connections to the index at `location`, beside one already open,
/// for matchers working side by side (SQLite readers do not block each other). Packs are
/// loaded into memory once and shared by one matcher: none more.
pub fn more_readers(
    location: &Path,
    params_id: &str,
    wanted: usize,
) -> Result<Vec<Box<dyn Store + Send>>> {
    if location.is_dir() || crate::pack::is_pack_source(location) {
        return Ok(Vec::new());
    }
    (0..wanted)
        .map(|_| open(location, params_id, Access::Read))
        .collect()
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, IndexError>;

/// A place to keep reference fingerprints and look them up.
pub trait Store {
    /// The fingerprint-parameter id this store holds.
    fn params_id(&self) -> &str;
    /// Adds a track, its landmarks and peaks atomically: afterwards all of it is visible or none.
    /// Fails with [`IndexError::AlreadyIndexed`] if its SHA-256 is present (checked in the same
    /// write transaction).
    fn add_track(&mut self, track: &NewTrack, prints: &Prints) -> Result<TrackId>;
    /// Adds several tracks in one transaction (all or nothing), skipping those whose SHA-256 is
    /// already present. Returns (added, skipped).
    fn add_tracks(&mut self, tracks: &[(NewTrack, Prints)]) -> Result<(usize, usize)>;
    /// The stored landmarks of these tracks (one pass over the hash table).
    fn landmarks(
        &self,
        ids: &[TrackId],
    ) -> Result<std::collections::HashMap<TrackId, Vec<crate::fingerprint::Landmark>>>;
    /// The stored peaks of a track (salience and refinement as stored), sorted by (frame, bin).
    fn peaks(&self, id: TrackId) -> Result<Vec<Peak>>;
    /// The track with this content hash, if indexed.
    fn find_sha(&self, sha256: &str) -> Result<Option<TrackId>>;
    /// The tracks whose SHA-256 starts with `prefix` (lowercase hex), by id; at most a few.
    fn find_sha_prefix(&self, prefix: &str) -> Result<Vec<TrackId>> {
        let mut ids: Vec<TrackId> = self
            .tracks()?
            .into_iter()
            .filter(|t| t.sha256.starts_with(prefix))
            .map(|t| t.id)
            .take(SHA_PREFIX_LIMIT)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }
    /// Calls `hit(hash, track, frame)` for every stored occurrence of each of `hashes`, all of
    /// one hash together, skipping every hash stored more than `cap` times.
    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> Result<()>;
    /// Calls `hit(track, triplet)` for every stored triplet under each of `keys` (distinct), all of one key
    /// together, skipping every key stored more than `cap` times (so common that its hits are
    /// nearly all chance). A store keeps [`triplets_of`] each track's prints, and may keep a key
    /// stored more than [`TRIPLET_STOP`] times as a count only (skipped whatever the cap).
    fn lookup_triplets(
        &self,
        keys: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(TrackId, StoredTriplet),
    ) -> Result<()>;
    /// One track.
    fn track(&self, id: TrackId) -> Result<Option<TrackInfo>>;
    /// All tracks, by id.
    fn tracks(&self) -> Result<Vec<TrackInfo>>;
    /// Removes a track and its hashes; false if it did not exist.
    fn remove(&mut self, id: TrackId) -> Result<bool>;
    /// Replaces the titles and metadata of tracks, all in one transaction (fingerprints stay as
    /// they are); returns how many tracks exist among those named.
    fn set_info(&mut self, edits: &[(TrackId, String, Metadata)]) -> Result<usize>;
    /// Totals.
    fn stats(&self) -> Result<Stats>;
    /// Rewrites the store without the slack that inserts spread over the whole key space leave
    /// in it (smaller and deterministic in size; costs a pass over the store).
    fn compact(&mut self) -> Result<()>;
}

/// Triplet keys stored more often than this may be kept as a count only: the matcher's default
/// cap, so no lookup at that cap sees a difference, and a large index neither holds nor reads
/// postings it never uses. A key crowded once stays so, even after removals.
pub const TRIPLET_STOP: usize = 300;

/// The triplets a store keeps for a track: derived from its stored peaks (so a pack, a replica
/// or an import of the track gives the same ones), with this build's triplet parameters (part
/// of the fingerprint-parameter id).
pub fn triplets_of(prints: &Prints) -> Vec<StoredTriplet> {
    crate::fingerprint::triplets::stored_triplets(
        &prints.peaks,
        &crate::fingerprint::triplets::TripletParams::default(),
    )
}

/// `keys` sorted, each once: a key repeated across lookup batches would be handed out twice.
pub(crate) fn distinct(keys: &[u32]) -> Vec<u32> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Most tracks [`Store::find_sha_prefix`] returns: two already make a prefix ambiguous, a few
/// more tell the user which.
pub const SHA_PREFIX_LIMIT: usize = 5;

/// How stored peaks are encoded, which follows the fingerprint-parameter id: indexes and packs
/// made with `fp1-*` ids kept frame and bin only, and can still be listed and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakFormat {
    /// Varint frame delta, varint bin (fingerprint ids `fp1-*`).
    Plain,
    /// Then one byte of salience ([`stored_salience`]) and one of refinement: sub-frame and
    /// sub-bin sixteenths + 8, a nibble each (since `fp2-*`, whose triplets are derived from them).
    Refined,
}

impl PeakFormat {
    /// The encoding of peaks stored with fingerprint-parameter id `params_id`.
    pub fn of(params_id: &str) -> Self {
        match params_id.starts_with("fp1-") {
            true => PeakFormat::Plain,
            false => PeakFormat::Refined,
        }
    }
}

/// Packs peaks (sorted by frame) in `format`: about 2–3 bytes a peak plain, 4–5 refined. The
/// peaks let the matcher verify an alignment peak by peak.
pub fn encode_peaks(peaks: &[Peak], format: PeakFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(peaks.len() * 5);
    let mut last = 0u32;
    for p in peaks {
        put_varint(&mut out, p.frame.saturating_sub(last) as u64);
        put_varint(&mut out, p.bin as u64);
        if format == PeakFormat::Refined {
            out.push(stored_salience(p.salience));
            let nibble = |x: i8| (x.clamp(-8, 7) + 8) as u8;
            out.push((nibble(p.sub[0]) << 4) | nibble(p.sub[1]));
        }
        last = p.frame;
    }
    out
}

/// Inverse of [`encode_peaks`]; `None` if the bytes are malformed.
pub fn decode_peaks(mut data: &[u8], format: PeakFormat) -> Option<Vec<Peak>> {
    let mut out = Vec::new();
    let mut frame = 0u32;
    while !data.is_empty() {
        let delta = get_varint(&mut data)?;
        let bin = get_varint(&mut data)?;
        let (salience, sub) = match format {
            PeakFormat::Plain => (0.0, [0, 0]),
            PeakFormat::Refined => {
                let (&[salience, sub], rest) = data.split_first_chunk::<2>()?;
                data = rest;
                (
                    salience as f32 / 8.0,
                    [(sub >> 4) as i8 - 8, (sub & 15) as i8 - 8],
                )
            }
        };
        frame = frame.checked_add(u32::try_from(delta).ok()?)?;
        out.push(Peak {
            frame,
            bin: u16::try_from(bin).ok()?,
            salience,
            sub,
        });
    }
    Some(out)
}

/// LEB128 unsigned varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint, advancing `data`; `None` if truncated or longer than 64 bits.
pub fn get_varint(data: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_refs_parse_ids_and_sha_prefixes_and_refuse_short_ones() {
        let parse = |s: &str| s.parse::<TrackRef>();
        assert_eq!(parse("42"), Ok(TrackRef::Id(TrackId(42))));
        assert_eq!(parse("DEADBEEF"), Ok(TrackRef::Sha("deadbeef".into())));
        assert_eq!(parse("12345678"), Ok(TrackRef::Sha("12345678".into())));
        assert_eq!(
            parse("sha256:00ff00ff"),
            Ok(TrackRef::Sha("00ff00ff".into()))
        );
        for bad in ["dead", "sha256:12", "xyz", "", &"a".repeat(65), "-1"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn peaks_round_trip_and_reject_garbage() {
        let peaks: Vec<Peak> = (0..100u32)
            .map(|i| Peak {
                frame: i * 7 + i % 3,
                bin: (i * 37 % 400) as u16,
                salience: (i % 50) as f32 / 8.0,
                sub: [(i % 16) as i8 - 8, (i % 5) as i8 - 2],
            })
            .collect();
        let bytes = encode_peaks(&peaks, PeakFormat::Refined);
        assert!(bytes.len() <= peaks.len() * 5);
        assert_eq!(decode_peaks(&bytes, PeakFormat::Refined).unwrap(), peaks);
        // The plain format keeps frame and bin.
        let plain = decode_peaks(&encode_peaks(&peaks, PeakFormat::Plain), PeakFormat::Plain);
        let bare: Vec<Peak> = peaks
            .iter()
            .map(|p| Peak {
                salience: 0.0,
                sub: [0, 0],
                ..*p
            })
            .collect();
        assert_eq!(plain.unwrap(), bare);
        for format in [PeakFormat::Plain, PeakFormat::Refined] {
            assert!(decode_peaks(&[0x80], format).is_none());
            assert!(decode_peaks(&[0xff; 20], format).is_none());
        }
        assert!(decode_peaks(&[1, 2, 3], PeakFormat::Refined).is_none());
        assert_eq!(PeakFormat::of("fp1-c1eb88a8a1f2"), PeakFormat::Plain);
    }
}
