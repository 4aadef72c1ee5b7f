//! Fingerprint packs: a portable, deterministic, checksummed file of reference fingerprints and
//! metadata, never audio. The byte layout is specified in `fingerprints/FORMAT.md`.
//!
//! [`write`] and [`read`] are pure (bytes in, bytes out); [`export`] and [`import`] join them to a
//! [`Store`]. Import is all or nothing: the pack is fully parsed and verified before one
//! transaction adds its tracks. Metadata is data: it is stored as text and never interpreted.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fingerprint::{Landmark, Prints};
use crate::index::{
    decode_peaks, encode_peaks, get_varint, put_varint, IndexError, Metadata, NewTrack, PeakFormat,
    SqliteStore, Store, TrackId,
};

/// First bytes of every pack.
pub const MAGIC: &[u8; 8] = b"NSHPACK\0";
/// Format version written by this build; packs with a higher version are refused.
pub const VERSION: u32 = 1;
/// File extension of packs.
pub const EXTENSION: &str = "nshpack";

/// Errors reading or applying a pack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// Not a pack at all.
    #[error("not a nasheed fingerprint pack (bad magic)")]
    NotAPack,
    /// Written by a newer nasheed.
    #[error(
        "pack format version {found} is newer than this build reads ({supported}); upgrade nasheed"
    )]
    NewerVersion {
        /// Version in the pack.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// Made with other fingerprint parameters.
    #[error("pack was made with fingerprint parameters {pack}, this build uses {current}")]
    ParamsMismatch {
        /// Parameter id in the pack.
        pack: String,
        /// Parameter id of this build.
        current: String,
    },
    /// The content does not match its checksum (corrupted or tampered with).
    #[error("pack checksum mismatch: the file is corrupted or was modified")]
    Checksum,
    /// The content is cut short or malformed.
    #[error("malformed pack: {0}")]
    Malformed(&'static str),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, PackError>;

/// One reference track as carried in a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct PackTrack {
    /// SHA-256 of the original audio file (lowercase hex).
    pub sha256: String,
    /// Descriptive fields.
    pub info: TrackInfo,
    /// Landmarks and peaks.
    pub prints: Prints,
}

/// Descriptive fields of a pack track (serialized as JSON, keys in this order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Title.
    pub title: String,
    /// File name of the original (no folders: packs do not leak local paths).
    pub file: String,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Metadata (group, language, source, tags, notes...).
    pub meta: Metadata,
}

/// Serializes tracks into a pack (sorted by SHA-256, hashes sorted: identical input, identical bytes).
pub fn write(params_id: &str, tracks: &[PackTrack]) -> Vec<u8> {
    let mut sorted: Vec<&PackTrack> = tracks.iter().collect();
    sorted.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_bytes(&mut out, params_id.as_bytes());
    put_varint(&mut out, sorted.len() as u64);
    for t in sorted {
        out.extend_from_slice(&hex_to_32(&t.sha256));
        put_bytes(
            &mut out,
            serde_json::to_string(&t.info)
                .unwrap_or_default()
                .as_bytes(),
        );
        let mut peaks = t.prints.peaks.clone();
        peaks.sort_by_key(|p| (p.frame, p.bin));
        put_bytes(&mut out, &encode_peaks(&peaks, PeakFormat::of(params_id)));
        let mut marks: Vec<(u32, u32)> = t
            .prints
            .landmarks
            .iter()
            .map(|l| (l.hash, l.frame))
            .collect();
        marks.sort_unstable();
        marks.dedup();
        put_varint(&mut out, marks.len() as u64);
        let mut last = 0u32;
        for (h, f) in marks {
            put_varint(&mut out, (h - last) as u64);
            put_varint(&mut out, f as u64);
            last = h;
        }
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// Parses and verifies a pack made with `params_id`.
pub fn read(bytes: &[u8], params_id: &str) -> Result<Vec<PackTrack>> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..8] != MAGIC {
        return Err(PackError::NotAPack);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version > VERSION {
        return Err(PackError::NewerVersion {
            found: version,
            supported: VERSION,
        });
    }
    if bytes.len() < 12 + 32 {
        return Err(PackError::Malformed("truncated"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(PackError::Checksum);
    }
    let mut r = &body[12..];
    let pack_params = String::from_utf8(get_bytes(&mut r)?.to_vec())
        .map_err(|_| PackError::Malformed("parameter id"))?;
    if pack_params != params_id {
        return Err(PackError::ParamsMismatch {
            pack: pack_params,
            current: params_id.to_string(),
        });
    }
    let n = get_varint(&mut r).ok_or(PackError::Malformed("track count"))?;
    let mut tracks = Vec::new();
    for _ in 0..n {
        if r.len() < 32 {
            return Err(PackError::Malformed("truncated track"));
        }
        let (sha, rest) = r.split_at(32);
        r = rest;
        let info: TrackInfo = serde_json::from_slice(get_bytes(&mut r)?)
            .map_err(|_| PackError::Malformed("track info"))?;
        let peaks = decode_peaks(get_bytes(&mut r)?, PeakFormat::of(params_id))
            .ok_or(PackError::Malformed("peaks"))?;
        let count = get_varint(&mut r).ok_or(PackError::Malformed("hash count"))?;
        // Every landmark takes at least two bytes: a larger count is a lie, not an allocation.
        if count > r.len() as u64 / 2 {
            return Err(PackError::Malformed("hash count"));
        }
        let mut landmarks = Vec::with_capacity(count as usize);
        let mut hash = 0u64;
        for _ in 0..count {
            let delta = get_varint(&mut r).ok_or(PackError::Malformed("hash"))?;
            hash = hash
                .checked_add(delta)
                .ok_or(PackError::Malformed("hash out of range"))?;
            let frame = get_varint(&mut r).ok_or(PackError::Malformed("frame"))?;
            let (Ok(h), Ok(f)) = (u32::try_from(hash), u32::try_from(frame)) else {
                return Err(PackError::Malformed("hash out of range"));
            };
            landmarks.push(Landmark { hash: h, frame: f });
        }
        tracks.push(PackTrack {
            sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
            info,
            prints: Prints { landmarks, peaks },
        });
    }
    if !r.is_empty() {
        return Err(PackError::Malformed("trailing bytes"));
    }
    Ok(tracks)
}

/// Writes the given tracks of a store (all if `ids` is empty) as a pack.
pub fn export(store: &dyn Store, ids: &[TrackId]) -> Result<Vec<u8>> {
    let all = store.tracks()?;
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|t| ids.is_empty() || ids.contains(&t.id))
        .collect();
    let ids: Vec<TrackId> = chosen.iter().map(|t| t.id).collect();
    let mut marks = store.landmarks(&ids)?;
    let mut tracks = Vec::with_capacity(chosen.len());
    for t in chosen {
        let file = Path::new(&t.path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracks.push(PackTrack {
            sha256: t.sha256,
            info: TrackInfo {
                title: t.title,
                file,
                duration_s: t.duration_s,
                meta: t.meta,
            },
            prints: Prints {
                landmarks: marks.remove(&t.id).unwrap_or_default(),
                peaks: store.peaks(t.id)?,
            },
        });
    }
    Ok(write(store.params_id(), &tracks))
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImportSummary {
    /// Tracks added.
    pub added: usize,
    /// Tracks already present (same SHA-256).
    pub skipped: usize,
    /// Landmarks added.
    pub hashes: usize,
}

/// Verifies a pack and adds its tracks to `store` in one transaction.
pub fn import(store: &mut dyn Store, bytes: &[u8]) -> Result<ImportSummary> {
    let tracks = read(bytes, store.params_id())?;
    add(store, tracks)
}

/// Adds tracks [`read`] from a pack to `store` in one transaction (those already present are
/// skipped). The caller read them with the store's parameter id.
pub fn add(store: &mut dyn Store, tracks: Vec<PackTrack>) -> Result<ImportSummary> {
    let rows: Vec<(NewTrack, Prints)> = tracks
        .into_iter()
        .map(|t| {
            let new = NewTrack {
                path: t.info.file,
                sha256: t.sha256,
                title: t.info.title,
                meta: t.info.meta,
                duration_s: t.info.duration_s,
            };
            (new, t.prints)
        })
        .collect();
    let (added, skipped) = store.add_tracks(&rows)?;
    let hashes = rows.iter().map(|(_, p)| p.landmarks.len()).sum();
    Ok(ImportSummary {
        added,
        skipped,
        hashes,
    })
}

/// Whether `path` is a pack or a folder of packs (rather than an index database).
pub fn is_pack_source(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == MAGIC
}

/// The fingerprint-parameter id a pack was made with (its checksum is not verified here).
pub fn params_id_of(bytes: &[u8]) -> Result<String> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..8] != MAGIC {
        return Err(PackError::NotAPack);
    }
    let mut r = &bytes[12..];
    String::from_utf8(get_bytes(&mut r)?.to_vec()).map_err(|_| PackError::Malformed("parameter id"))
}

/// Loads a pack, or every `*.nshpack` in a folder, into an in-memory index (read-only use).
pub fn load(path: &Path, params_id: &str) -> Result<SqliteStore> {
    load_with(path, Some(params_id))
}

/// Like [`load`], but takes the packs' own fingerprint-parameter id (the first pack's; all must
/// share it), so packs made by another version can still be listed and re-exported.
pub fn load_to_inspect(path: &Path) -> Result<SqliteStore> {
    load_with(path, None)
}

fn load_with(path: &Path, params_id: Option<&str>) -> Result<SqliteStore> {
    let mut store: Option<SqliteStore> = params_id.map(SqliteStore::in_memory).transpose()?;
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| PackError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut v: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    for f in files {
        let bytes = std::fs::read(&f).map_err(|source| PackError::Io {
            path: f.display().to_string(),
            source,
        })?;
        let store = match &mut store {
            Some(s) => s,
            None => {
                let id = params_id_of(&bytes).map_err(|e| PackError::Io {
                    path: f.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                store.insert(SqliteStore::in_memory(&id)?)
            }
        };
        import(store, &bytes).map_err(|e| match e {
            PackError::Io { .. } => e,
            other => PackError::Io {
                path: f.display().to_string(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
    }
    match store {
        Some(s) => Ok(s),
        // An empty folder: no pack to take an id from, and nothing to inspect either.
        None => Ok(SqliteStore::in_memory("none")?),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn get_bytes<'a>(r: &mut &'a [u8]) -> Result<&'a [u8]> {
    let n = get_varint(r).ok_or(PackError::Malformed("length"))?;
    if n > r.len() as u64 {
        return Err(PackError::Malformed("length past the end"));
    }
    let (b, rest) = r.split_at(n as usize);
    *r = rest;
    Ok(b)
}

/// 32 bytes from 64 hex digits; anything else (not a SHA-256) hashes to its own digest so the
/// pack stays well-formed and deterministic.
fn hex_to_32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let ok = hex.len() == 64
        && (0..32).all(|i| match u8::from_str_radix(&hex[2 * i..2 * i + 2], 16) {
            Ok(b) => {
                out[i] = b;
                true
            }
            Err(_) => false,
        });
    if !ok {
        out.copy_from_slice(&Sha256::digest(hex.as_bytes()));
    }
    out
}

/// Ids of the tracks whose metadata has `key` = `value` (for `export --where`).
pub fn ids_where(store: &dyn Store, key: &str, value: &str) -> Result<Vec<TrackId>> {
    Ok(store
        .tracks()?
        .into_iter()
        .filter(|t| t.meta.get(key).is_some_and(|v| v == value))
        .map(|t| t.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack whose envelope is valid (magic, version, parameter id, checksum) around `records`.
    fn envelope(records: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_bytes(&mut out, b"p");
        out.extend_from_slice(records);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// One track record: sha, info, peaks, then `marks` as raw (hash delta, frame) varints.
    fn record(marks: &[(u64, u64)], count: u64) -> Vec<u8> {
        let mut r = Vec::new();
        put_varint(&mut r, 1);
        r.extend_from_slice(&[7u8; 32]);
        put_bytes(
            &mut r,
            br#"{"file":"a.wav","title":"a","duration_s":1.0,"meta":{}}"#,
        );
        put_bytes(&mut r, &[]);
        put_varint(&mut r, count);
        for &(h, f) in marks {
            put_varint(&mut r, h);
            put_varint(&mut r, f);
        }
        r
    }

    #[test]
    fn crafted_records_behind_a_valid_checksum_are_refused_not_trusted() {
        let ok = read(&envelope(&record(&[(5, 1), (2, 3)], 2)), "p").unwrap();
        assert_eq!(ok[0].prints.landmarks.len(), 2);
        assert_eq!(ok[0].prints.landmarks[1].hash, 7);
        let cases = [
            // Hash deltas that overflow when summed.
            record(&[(5, 1), (u64::MAX, 1)], 2),
            // A hash beyond 32 bits.
            record(&[(1 << 40, 1)], 1),
            // More landmarks claimed than bytes left.
            record(&[(1, 1)], 1_000_000),
            // Fewer landmarks claimed than present: trailing bytes.
            record(&[(1, 1), (1, 1)], 1),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(
                matches!(read(&envelope(c), "p"), Err(PackError::Malformed(_))),
                "case {i}"
            );
        }
        // A record cut inside a varint.
        let mut cut = record(&[(300, 1)], 1);
        cut.truncate(cut.len() - 2);
        cut.push(0x80);
        assert!(read(&envelope(&cut), "p").is_err());
    }
}
