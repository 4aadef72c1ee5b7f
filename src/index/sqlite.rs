//! SQLite store: one file, WAL journal, one transaction per track.
//!
//! Design notes:
//! - `hashes` is a `WITHOUT ROWID` table keyed by (hash, track, t): the key *is* the lookup index,
//!   so a row costs ~17 bytes and a batch of lookups is one B-tree descent per hash. Rows are
//!   inserted sorted, which keeps pages dense (~1 M rows/s here).
//! - Every track is written in its own transaction together with its `tracks` row, so a crash
//!   loses at most the track in flight, and readers never see a half-written track.
//! - WAL lets scans run while an indexer writes; a busy timeout absorbs checkpoint contention.
//! - Schema changes are append-only migrations under `PRAGMA user_version`.
//! - The fingerprint-parameter id lives in `meta`; opening with other parameters is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{IndexError, Metadata, NewTrack, Result, Stats, Store, TrackId, TrackInfo};
use std::collections::{HashMap, HashSet};

use crate::fingerprint::{Landmark, Peak, Prints};

const TRACKS: &str = "tracks";
const HASHES: &str = "hashes";
const META: &str = "meta";
const PEAKS: &str = "peaks";

/// Hashes per lookup statement (the `IN (...)` list); the last batch is padded to this size so
/// one prepared statement serves every batch.
const LOOKUP_BATCH: usize = 256;

/// Migrations, in order; `user_version` = number applied.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE tracks (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        duration_s REAL NOT NULL,
        n_hashes INTEGER NOT NULL,
        indexed_at TEXT NOT NULL DEFAULT (datetime('now'))
     );
     CREATE TABLE hashes (
        hash INTEGER NOT NULL,
        track INTEGER NOT NULL,
        t INTEGER NOT NULL,
        PRIMARY KEY (hash, track, t)
     ) WITHOUT ROWID;
     CREATE TABLE peaks (track INTEGER PRIMARY KEY, data BLOB NOT NULL);",
];

/// Schema version this build writes and reads (`PRAGMA user_version` after all migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of every index ("NSHD"): tells a nasheed index from another
/// program's SQLite file before anything is written. Indexes made before it was stamped are
/// recognised by their tables, and stamped when next opened for writing.
const APPLICATION_ID: i32 = 0x4E53_4844;

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read only: nothing is written, not even the journal mode.
    Read,
    /// An existing index, written.
    Write,
    /// Written, created when missing or empty.
    Create,
}

/// Whose a database file is.
enum FileKind {
    /// No tables, no version: a new file (or a 0-byte one).
    Empty,
    /// A nasheed index.
    Nasheed,
    /// Another program's database: what it looks like.
    Foreign(String),
}

/// Looks at a database without writing to it.
fn identify(conn: &Connection) -> Result<FileKind> {
    // One read transaction: the three reads see one state even while another process sets
    // the file up.
    let tx = conn.unchecked_transaction()?;
    let app: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: HashSet<String> = {
        let mut st = tx.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        let names = st.query_map([], |r| r.get(0))?;
        names.collect::<rusqlite::Result<_>>()?
    };
    tx.finish()?;
    Ok(if app == APPLICATION_ID {
        FileKind::Nasheed
    } else if app != 0 {
        FileKind::Foreign(format!(
            "another program's SQLite database, application id {app:#x}"
        ))
    } else if tables.is_empty() && version == 0 {
        FileKind::Empty
    } else if version >= 1
        && [META, TRACKS, HASHES, PEAKS]
            .iter()
            .all(|t| tables.contains(*t))
    {
        FileKind::Nasheed
    } else {
        let mut names: Vec<&str> = tables.iter().map(String::as_str).collect();
        names.sort_unstable();
        FileKind::Foreign(format!(
            "another program's SQLite database, with tables {}",
            names.join(", ")
        ))
    })
}

/// Brings the schema up to date in one write transaction taken at once (`BEGIN IMMEDIATE`), the
/// version read inside it: of two processes setting up one new file, the second finds the work
/// done instead of failing on "table already exists".
fn migrate(conn: &mut Connection, params_id: &str) -> Result<()> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app == APPLICATION_ID && version == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.execute(
        &format!("INSERT OR IGNORE INTO {META} (key, value) VALUES ('params_id', ?1)"),
        [params_id],
    )?;
    tx.commit()?;
    Ok(())
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    params_id: String,
}

impl SqliteStore {
    /// Opens the index at `path` for writing, creating it if missing (an empty file is taken as
    /// a new index). `params_id` is this build's fingerprint-parameter id: a new index records
    /// it, an existing one must match it. Another program's SQLite file is refused before
    /// anything is written to it.
    pub fn open(path: &Path, params_id: &str) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| why_not_open(path, e))?;
        Self::init(conn, path, Some(params_id), Access::Create)
    }

    /// Opens an existing index for writing (`remove`); fails with [`IndexError::Missing`] if
    /// there is none, and refuses a file that is not a nasheed index.
    pub fn open_existing(path: &Path, params_id: &str) -> Result<Self> {
        if !path.is_file() {
            return Err(IndexError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| why_not_open(path, e))?;
        Self::init(conn, path, Some(params_id), Access::Write)
    }

    /// Opens an existing index for reading only: the file is never created, converted or
    /// written (a foreign SQLite file stays as it was, in its own journal mode).
    pub fn open_read_only(path: &Path, params_id: &str) -> Result<Self> {
        Self::open_reading(path, Some(params_id))
    }

    /// Opens an existing index read-only whatever fingerprint parameters built it, so an index
    /// from another version can still be listed and exported; [`Store::params_id`] is then the
    /// index's own id. Scanning with it would mix hashes made differently: the caller compares.
    pub fn open_to_inspect(path: &Path) -> Result<Self> {
        Self::open_reading(path, None)
    }

    fn open_reading(path: &Path, params_id: Option<&str>) -> Result<Self> {
        if !path.is_file() {
            return Err(IndexError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Self::init(conn, path, params_id, Access::Read)
    }

    /// An index in memory (tests, packs loaded for one scan).
    pub fn in_memory(params_id: &str) -> Result<Self> {
        Self::init(
            Connection::open_in_memory()?,
            Path::new(":memory:"),
            Some(params_id),
            Access::Create,
        )
    }

    /// `params_id` is `None` only to inspect ([`Access::Read`]): any recorded id is taken.
    fn init(
        mut conn: Connection,
        path: &Path,
        params_id: Option<&str>,
        access: Access,
    ) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(60))?;
        // Who the file belongs to is settled first: nothing below may touch another program's.
        let kind = identify(&conn).map_err(|e| match e {
            IndexError::Db(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::NotADatabase =>
            {
                IndexError::NotAnIndex {
                    path: path.to_path_buf(),
                    what: "not an SQLite database".into(),
                }
            }
            other => other,
        })?;
        match kind {
            FileKind::Foreign(what) => {
                return Err(IndexError::NotAnIndex {
                    path: path.to_path_buf(),
                    what,
                })
            }
            FileKind::Empty if access != Access::Create => {
                return Err(IndexError::Missing(path.to_path_buf()))
            }
            FileKind::Empty | FileKind::Nasheed => {}
        }
        let supported = MIGRATIONS.len() as i64;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > supported {
            return Err(IndexError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported,
            });
        }
        if access != Access::Read {
            // The schema first, then WAL: a new file switched to WAL before it has a first page
            // can be seen by a second process as empty and set up again.
            migrate(&mut conn, params_id.unwrap_or_default())?;
            // journal_mode returns a row; WAL is not available for in-memory databases ("memory").
            let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        }
        conn.execute_batch("PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;")?;
        let stored: Option<String> = conn
            .query_row(
                &format!("SELECT value FROM {META} WHERE key = 'params_id'"),
                [],
                |r| r.get(0),
            )
            .optional()?;
        let params_id = match (stored, params_id) {
            (Some(s), Some(p)) if s != p => {
                return Err(IndexError::ParamsMismatch {
                    path: path.to_path_buf(),
                    stored: s,
                    current: p.to_string(),
                })
            }
            (Some(s), _) => s,
            (None, _) => {
                return Err(IndexError::NotAnIndex {
                    path: path.to_path_buf(),
                    what: "no fingerprint-parameter id recorded".into(),
                })
            }
        };
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            params_id,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn row_to_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<(TrackInfo, String)> {
        Ok((
            TrackInfo {
                id: TrackId(r.get(0)?),
                path: r.get(1)?,
                sha256: r.get(2)?,
                title: r.get(3)?,
                meta: Metadata::new(),
                duration_s: r.get(5)?,
                n_hashes: r.get::<_, i64>(6)? as u64,
                indexed_at: r.get(7)?,
            },
            r.get(4)?,
        ))
    }

    fn finish_info((mut info, meta): (TrackInfo, String)) -> Result<TrackInfo> {
        info.meta = serde_json::from_str(&meta).map_err(|_| IndexError::CorruptTrack(info.id.0))?;
        Ok(info)
    }
}

/// Says in plain words why SQLite could not open `path` for writing (its own message names the
/// path twice and gives a numeric code); other errors pass through.
fn why_not_open(path: &Path, e: rusqlite::Error) -> IndexError {
    let cannot_open = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::CannotOpen || f.code == rusqlite::ErrorCode::ReadOnly
            || f.code == rusqlite::ErrorCode::PermissionDenied);
    if !cannot_open {
        return e.into();
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let reason = if !parent.exists() {
        format!(
            "directory {} does not exist (create it first, or choose another path)",
            parent.display()
        )
    } else if !parent.is_dir() {
        format!("{} is not a directory", parent.display())
    } else if path.is_dir() {
        "is a directory, not an index file".to_string()
    } else if path.exists() {
        "cannot be opened for writing (permissions, or a read-only file system)".to_string()
    } else {
        format!(
            "cannot create a file in {} (permissions, or a read-only file system)",
            parent.display()
        )
    };
    IndexError::CannotOpen {
        path: path.to_path_buf(),
        reason,
    }
}

/// Inserts one track with its hashes (sorted, deduplicated) and peaks inside `tx`.
fn insert_track(
    tx: &rusqlite::Transaction<'_>,
    track: &NewTrack,
    prints: &Prints,
) -> Result<TrackId> {
    let mut rows: Vec<(u32, u32)> = prints.landmarks.iter().map(|l| (l.hash, l.frame)).collect();
    rows.sort_unstable();
    rows.dedup();
    let meta = serde_json::to_string(&track.meta).unwrap_or_else(|_| "{}".into());
    tx.execute(
        &format!("INSERT INTO {TRACKS} (path, sha256, title, meta, duration_s, n_hashes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![track.path, track.sha256, track.title, meta, track.duration_s, rows.len() as i64],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut ins = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {HASHES} (hash, track, t) VALUES (?1, ?2, ?3)"
        ))?;
        for (h, t) in &rows {
            ins.execute(params![h, id, t])?;
        }
    }
    tx.execute(
        &format!("INSERT INTO {PEAKS} (track, data) VALUES (?1, ?2)"),
        params![id, super::encode_peaks(&prints.peaks)],
    )?;
    Ok(TrackId(id))
}

/// The id of the track with this content hash, read inside `tx`.
fn sha_in(tx: &rusqlite::Transaction<'_>, sha256: &str) -> Result<Option<i64>> {
    let mut st = tx.prepare_cached(&format!("SELECT id FROM {TRACKS} WHERE sha256 = ?1"))?;
    Ok(st.query_row([sha256], |r| r.get(0)).optional()?)
}

const TRACK_COLUMNS: &str = "id, path, sha256, title, meta, duration_s, n_hashes, indexed_at";

impl Store for SqliteStore {
    fn params_id(&self) -> &str {
        &self.params_id
    }

    fn add_track(&mut self, track: &NewTrack, prints: &Prints) -> Result<TrackId> {
        // The write lock is taken first, so the check and the insert see the same index even
        // when another process adds the same file at the same time.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(id) = sha_in(&tx, &track.sha256)? {
            return Err(IndexError::AlreadyIndexed(TrackId(id)));
        }
        let id = insert_track(&tx, track, prints)?;
        tx.commit()?;
        Ok(id)
    }

    fn add_tracks(&mut self, tracks: &[(NewTrack, Prints)]) -> Result<(usize, usize)> {
        // Write lock first: a read transaction upgraded later fails if another writer got in.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (mut added, mut skipped) = (0, 0);
        for (track, prints) in tracks {
            if sha_in(&tx, &track.sha256)?.is_some() {
                skipped += 1;
            } else {
                insert_track(&tx, track, prints)?;
                added += 1;
            }
        }
        tx.commit()?;
        Ok((added, skipped))
    }

    fn landmarks(&self, ids: &[TrackId]) -> Result<HashMap<TrackId, Vec<Landmark>>> {
        let wanted: HashSet<i64> = ids.iter().map(|t| t.0).collect();
        let mut out: HashMap<TrackId, Vec<Landmark>> =
            ids.iter().map(|&t| (t, Vec::new())).collect();
        // The table is keyed by hash: one pass over it serves every track.
        let mut st = self
            .conn
            .prepare(&format!("SELECT hash, track, t FROM {HASHES}"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let track: i64 = r.get(1)?;
            if wanted.contains(&track) {
                if let Some(v) = out.get_mut(&TrackId(track)) {
                    v.push(Landmark {
                        hash: r.get(0)?,
                        frame: r.get(2)?,
                    });
                }
            }
        }
        Ok(out)
    }

    fn peaks(&self, id: TrackId) -> Result<Vec<Peak>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT data FROM {PEAKS} WHERE track = ?1"))?;
        let data: Option<Vec<u8>> = st.query_row([id.0], |r| r.get(0)).optional()?;
        match data {
            None => Ok(Vec::new()),
            Some(d) => super::decode_peaks(&d).ok_or(IndexError::CorruptTrack(id.0)),
        }
    }

    fn find_sha(&self, sha256: &str) -> Result<Option<TrackId>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT id FROM {TRACKS} WHERE sha256 = ?1"))?;
        Ok(st
            .query_row([sha256], |r| r.get(0))
            .optional()?
            .map(TrackId))
    }

    fn find_sha_prefix(&self, prefix: &str) -> Result<Vec<TrackId>> {
        // Hex digits sort below 'g': every SHA starting with the prefix lies in [prefix, prefix+'g'),
        // a range the UNIQUE index on sha256 answers without a scan.
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT id FROM {TRACKS} WHERE sha256 >= ?1 AND sha256 < ?2 ORDER BY id LIMIT ?3"
        ))?;
        let ids = st.query_map(
            params![prefix, format!("{prefix}g"), super::SHA_PREFIX_LIMIT as i64],
            |r| r.get(0).map(TrackId),
        )?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    fn lookup(&self, hashes: &[u32], hit: &mut dyn FnMut(u32, TrackId, u32)) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; LOOKUP_BATCH].join(",");
        let sql = format!("SELECT hash, track, t FROM {HASHES} WHERE hash IN ({marks})");
        // One read transaction for all batches: a consistent snapshot even while a writer commits.
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(&sql)?;
            let mut batch = [0u32; LOOKUP_BATCH];
            for chunk in hashes.chunks(LOOKUP_BATCH) {
                batch[..chunk.len()].copy_from_slice(chunk);
                // Pad with a repeat: IN-lists ignore duplicates.
                let last = chunk[chunk.len() - 1];
                batch[chunk.len()..].fill(last);
                let mut rows = st.query(rusqlite::params_from_iter(batch.iter()))?;
                while let Some(r) = rows.next()? {
                    hit(r.get(0)?, TrackId(r.get(1)?), r.get(2)?);
                }
            }
        }
        tx.finish()?;
        Ok(())
    }

    fn track(&self, id: TrackId) -> Result<Option<TrackInfo>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {TRACK_COLUMNS} FROM {TRACKS} WHERE id = ?1"
        ))?;
        st.query_row([id.0], Self::row_to_info)
            .optional()?
            .map(Self::finish_info)
            .transpose()
    }

    fn tracks(&self) -> Result<Vec<TrackInfo>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {TRACK_COLUMNS} FROM {TRACKS} ORDER BY id"))?;
        let rows = st.query_map([], Self::row_to_info)?;
        rows.map(|r| Self::finish_info(r?)).collect()
    }

    fn remove(&mut self, id: TrackId) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(&format!("DELETE FROM {TRACKS} WHERE id = ?1"), [id.0])?;
        tx.execute(&format!("DELETE FROM {HASHES} WHERE track = ?1"), [id.0])?;
        tx.execute(&format!("DELETE FROM {PEAKS} WHERE track = ?1"), [id.0])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn set_info(&mut self, edits: &[(TrackId, String, Metadata)]) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached(&format!(
                "UPDATE {TRACKS} SET title = ?1, meta = ?2 WHERE id = ?3"
            ))?;
            for (id, title, meta) in edits {
                let meta = serde_json::to_string(meta).unwrap_or_else(|_| "{}".into());
                n += st.execute(params![title, meta, id.0])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    fn stats(&self) -> Result<Stats> {
        let (tracks, hashes, seconds): (i64, i64, f64) = self.conn.query_row(
            &format!("SELECT COUNT(*), COALESCE(SUM(n_hashes), 0), COALESCE(SUM(duration_s), 0) FROM {TRACKS}"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Stats {
            tracks: tracks as u64,
            hashes: hashes as u64,
            audio_hours: seconds / 3600.0,
            bytes: (pages * page_size) as u64,
            params_id: self.params_id.clone(),
        })
    }

    fn compact(&mut self) -> Result<()> {
        // VACUUM goes through the WAL; the checkpoint hands the space back to the file system.
        self.conn.execute_batch("VACUUM")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Landmarks from (hash, frame) pairs, with one peak per landmark at (frame, hash).
    fn prints(pairs: &[(u32, u32)]) -> Prints {
        Prints {
            landmarks: pairs
                .iter()
                .map(|&(hash, frame)| crate::fingerprint::Landmark { hash, frame })
                .collect(),
            peaks: pairs
                .iter()
                .map(|&(h, frame)| Peak {
                    frame,
                    bin: h as u16,
                    salience: 0.0,
                })
                .collect(),
        }
    }

    fn track(sha: &str) -> NewTrack {
        NewTrack {
            path: format!("{sha}.wav"),
            sha256: sha.into(),
            title: sha.into(),
            meta: Metadata::new(),
            duration_s: 10.0,
        }
    }

    #[test]
    fn compacting_shrinks_an_index_built_track_by_track_and_keeps_every_row() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        // Each track's hashes spread over the whole key space, as real fingerprints do.
        let mut all = Vec::new();
        for t in 0..40u32 {
            let pairs: Vec<(u32, u32)> = (0..2000u32)
                .map(|i| ((i * 7919 + t * 104_729) % 1_000_003, i))
                .collect();
            let id = s
                .add_track(&track(&format!("t{t}")), &prints(&pairs))
                .unwrap();
            all.extend(pairs.iter().map(|&(h, f)| (h, id, f)));
        }
        let hashes: Vec<u32> = all.iter().map(|r| r.0).collect();
        let rows = |s: &SqliteStore| {
            let mut v = Vec::new();
            s.lookup(&hashes, &mut |h, t, f| v.push((h, t, f))).unwrap();
            v.sort();
            v
        };
        let before = (s.stats().unwrap().bytes, rows(&s));
        s.compact().unwrap();
        let after = (s.stats().unwrap().bytes, rows(&s));
        assert!(
            after.0 < before.0 * 95 / 100,
            "{} -> {} bytes",
            before.0,
            after.0
        );
        all.sort();
        all.dedup();
        assert_eq!(after.1, all);
        assert_eq!(after.1, before.1);
    }

    #[test]
    fn add_lookup_remove() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let a = s
            .add_track(&track("a"), &prints(&[(7, 3), (9, 4)]))
            .unwrap();
        let b = s.add_track(&track("b"), &prints(&[(7, 10)])).unwrap();
        assert_eq!(
            s.peaks(a)
                .unwrap()
                .iter()
                .map(|p| (p.frame, p.bin))
                .collect::<Vec<_>>(),
            vec![(3, 7), (4, 9)]
        );
        let mut hits = Vec::new();
        s.lookup(&[7, 8], &mut |h, t, f| hits.push((h, t, f)))
            .unwrap();
        hits.sort();
        assert_eq!(hits, vec![(7, a, 3), (7, b, 10)]);
        assert_eq!(s.find_sha("b").unwrap(), Some(b));
        assert!(s.remove(a).unwrap());
        let mut hits = Vec::new();
        s.lookup(&[7, 9], &mut |h, t, f| hits.push((h, t, f)))
            .unwrap();
        assert_eq!(hits, vec![(7, b, 10)]);
        assert_eq!(s.stats().unwrap().tracks, 1);
    }

    #[test]
    fn lookups_over_many_batches() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let marks: Vec<_> = (0..1000).map(|i| (i * 3, i)).collect();
        s.add_track(&track("a"), &prints(&marks)).unwrap();
        let query: Vec<u32> = (0..3000).collect();
        let mut n = 0;
        s.lookup(&query, &mut |h, _, f| {
            assert_eq!(h, f * 3);
            n += 1
        })
        .unwrap();
        assert_eq!(n, 1000);
    }

    #[test]
    fn refuses_other_params_and_reopens_with_same() {
        let dir = std::env::temp_dir().join(format!("nasheed-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.db");
        let _ = std::fs::remove_file(&path);
        SqliteStore::open(&path, "one").unwrap();
        // Migrating twice is a no-op.
        SqliteStore::open(&path, "one").unwrap();
        match SqliteStore::open(&path, "two") {
            Err(IndexError::ParamsMismatch { stored, .. }) => assert_eq!(stored, "one"),
            other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            SqliteStore::open_existing(&dir.join("none.db"), "one"),
            Err(IndexError::Missing(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
