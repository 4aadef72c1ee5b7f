//! Local replicas of a PostgreSQL index: scanners read an SQLite copy on their own disk, kept
//! current from the index's change log, so a scan never waits on the database's round trips
//! (the pattern of HMA's built indexes and AcoustID's replicated index).
//!
//! The copy is a file in the cache folder (`$NASHEED_REPLICA_DIR`, else
//! `$XDG_CACHE_HOME/nasheed`, else `~/.cache/nasheed`), one per database and fingerprint id,
//! with the source's track ids (scan results name them). [`update`] brings it up to date: the
//! first time it copies every track, afterwards it replays the change log from the sequence
//! number it reached (an add copies the track, a remove removes it). Replaying is idempotent, so
//! a copy interrupted half-way is finished by the next update, and two processes updating one
//! copy take turns on SQLite's write lock.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::postgres::{redact, Mode, PostgresStore};
use super::{Result, SqliteStore, Store, TrackId};
use crate::fingerprint::Prints;

/// Key of the replica's `meta` row holding the last change-log sequence number applied.
const SEQ_KEY: &str = "replica_seq";
/// Key of the replica's `meta` row naming its source (without the password).
const SOURCE_KEY: &str = "replica_of";
/// Key of the replica's `meta` row holding its source's identity (`index_id`).
const IDENTITY_KEY: &str = "replica_index_id";
/// Changes fetched per round trip.
const BATCH: i64 = 1000;

/// Where the replica of `url` (with fingerprint id `params_id`) lives.
pub fn path_for(url: &str, params_id: &str) -> PathBuf {
    let dir = std::env::var_os("NASHEED_REPLICA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("nasheed")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/nasheed")))
        .unwrap_or_else(|| std::env::temp_dir().join("nasheed"));
    let key = Sha256::digest(format!("{}\n{params_id}", redact(url)).as_bytes());
    let hex: String = key.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("replica-{hex}.db"))
}

/// What an [`update`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Updated {
    /// Tracks copied in.
    pub added: usize,
    /// Tracks removed.
    pub removed: usize,
    /// The change-log sequence number the replica now reflects.
    pub seq: i64,
}

/// Brings the local replica of the PostgreSQL index at `url` up to date and returns its path.
/// `source` is an open connection to it (for repeated updates), or `None` to connect now.
pub fn update(
    url: &str,
    params_id: &str,
    source: Option<&PostgresStore>,
) -> Result<(PathBuf, Updated)> {
    let path = path_for(url, params_id);
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| super::IndexError::CannotOpen {
            path: dir.to_path_buf(),
            reason: format!("cannot create the replica folder: {e}"),
        })?;
    }
    let owned;
    let source = match source {
        Some(s) => s,
        None => {
            owned = PostgresStore::open(url, Some(params_id), Mode::Read)?;
            &owned
        }
    };
    let mut local = SqliteStore::open(&path, params_id)?;
    // A copy of another incarnation of the database (dropped and made again: its log starts
    // over), or one ahead of the log, is not brought up to date but made anew.
    let identity = source.index_id()?;
    let seq: i64 = local
        .meta_value(SEQ_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let same = local
        .meta_value(IDENTITY_KEY)?
        .is_none_or(|id| id == identity);
    if !same || seq > source.last_change()? {
        // Emptied in place, not deleted: a server's readers keep the file open.
        local.clear()?;
        local.set_meta_value(SEQ_KEY, "0")?;
    }
    local.set_meta_value(SOURCE_KEY, &redact(url))?;
    local.set_meta_value(IDENTITY_KEY, &identity)?;
    let mut done = Updated {
        seq: local
            .meta_value(SEQ_KEY)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..Updated::default()
    };
    if done.seq == 0 {
        // A first copy: the log's position first, then every track; changes made meanwhile
        // are replayed below (an add of a track already copied is a no-op).
        done.seq = source.last_change()?;
        for info in source.tracks()? {
            done.added += copy(source, &mut local, info.id)? as usize;
        }
        // Packed as `nasheed index` leaves a new index: posting blobs, no slack (scans of an
        // unpacked copy cost ~1.2× those of the packed one).
        local.compact()?;
        local.set_meta_value(SEQ_KEY, &done.seq.to_string())?;
    }
    loop {
        let changes = source.changes_since(done.seq, BATCH)?;
        let Some(last) = changes.last().map(|c| c.0) else {
            break;
        };
        for (_, op, id, _) in &changes {
            match op.as_str() {
                "add" => done.added += copy(source, &mut local, *id)? as usize,
                _ => done.removed += local.remove(*id)? as usize,
            }
        }
        done.seq = last;
        local.set_meta_value(SEQ_KEY, &done.seq.to_string())?;
    }
    Ok((path, done))
}

/// Copies track `id` from the source unless it is gone there or already here.
fn copy(source: &PostgresStore, local: &mut SqliteStore, id: TrackId) -> Result<bool> {
    let Some(info) = source.track(id)? else {
        return Ok(false);
    };
    if local.track(id)?.is_some() {
        return Ok(false);
    }
    let landmarks = source.landmarks(&[id])?.remove(&id).unwrap_or_default();
    let prints = Prints {
        landmarks,
        peaks: source.peaks(id)?,
    };
    local.add_copy(&info, &prints)
}

/// Creates `dir` (and its parents) readable by this user only: fingerprints are shared
/// knowingly, not by a world-readable cache.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
