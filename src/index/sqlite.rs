//! SQLite store: one file, WAL journal, one transaction per track.
//!
//! Design notes:
//! - Postings live in two tables, like a two-level LSM tree. New tracks write rows into `hashes`, a
//!   `WITHOUT ROWID` table keyed by (hash, track, t): cheap to insert and to delete, but ~15 bytes
//!   a posting. Merges move them into `postings`, one row per hash (the rowid *is* the hash) whose
//!   blob packs all its (track, t) pairs delta-encoded, about 3 bytes a posting, so a lookup reads
//!   one row per hash instead of stepping through one row per posting. A lookup reads both.
//!   A writer merges once the rows grow past a tenth of the postings (and on `compact`), so a
//!   bulk index ends almost wholly in blobs; the blobs touched are rewritten, the rest are not.
//! - Triplets (derived from each track's peaks) are postings too, under keys above every 32-bit
//!   hash, one key per triplet key without its band (see `TRIPLET_KEYS`). Since schema 3 their
//!   blobs are cut into one section per band, so a lookup decodes only the bands it asks for
//!   (`encode_triplet_row`); schema 2's flat ones are still read. Since schema 4 a band past
//!   `TRIPLET_STOP` postings is kept as its count alone (a stop list: no scan reads it).
//! - Every blob leads with a count (a triplet section too), so a lookup skips a key stored more
//!   often than its cap without decoding it: at scale, most keys asked are such keys.
//! - Every track is written in its own transaction together with its `tracks` row, so a crash
//!   loses at most the track in flight, and readers never see a half-written track. A merge is
//!   one transaction too: readers see the rows or the blob, never neither or both.
//! - WAL lets scans run while an indexer writes; a busy timeout absorbs checkpoint contention.
//! - Schema changes are append-only migrations under `PRAGMA user_version`.
//! - The fingerprint-parameter id lives in `meta`; opening with other parameters is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{IndexError, Metadata, NewTrack, Result, Stats, Store, TrackId, TrackInfo};
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::fingerprint::triplets::StoredTriplet;
use crate::fingerprint::{Landmark, Peak, Prints};

const TRACKS: &str = "tracks";
const HASHES: &str = "hashes";
const META: &str = "meta";
const PEAKS: &str = "peaks";
const POSTINGS: &str = "postings";

/// Rows in `hashes` below which a writer never merges on its own (a small index stays as rows
/// until `compact`; merging is worth it where lookups step through many rows).
const MERGE_MIN_ROWS: u64 = 500_000;
/// A writer merges once the rows exceed this share of all postings: each merge rewrites about
/// that many blobs' worth, so merging costs a bounded multiple of the index's growth.
const MERGE_SHARE: f64 = 0.1;

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
    // 2: posting blobs, one row per hash (see the module docs); `hashes` keeps recent tracks.
    "CREATE TABLE postings (hash INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    // 3: triplet blobs written in sections by band (`encode_triplet_row`). Nothing to convert:
    // flat blobs are still read and are rewritten in sections when next merged; the version
    // tells older builds, which cannot read sections, that the file is newer than they are.
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('triplet_rows', 'sections by band');",
    // 4: a triplet row's band stored more than `TRIPLET_STOP` times is kept as a count only
    // (`encode_triplet_row`); older builds would take that for damage.
    "INSERT OR REPLACE INTO meta (key, value) VALUES ('triplet_rows', 'sections by band, crowded bands as counts');",
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

/// How long a statement waits for another process's lock before giving up.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// Puts the file in WAL mode, waiting for other processes as every other statement does.
/// SQLite's switch reads the header in a read transaction and then upgrades it to a write, and
/// an upgrade that meets another writer fails at once, busy timeout or not (two indexers
/// opening one new file together hit it). So the switch is retried here, within [`BUSY_WAIT`].
fn switch_to_wal(conn: &Connection) -> Result<()> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // journal_mode returns a row; WAL is not available for in-memory databases ("memory").
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_mode) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && start.elapsed() < BUSY_WAIT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    params_id: String,
    /// Whether the `postings` table exists (an index of schema 1 opened read-only has none).
    blobs: bool,
    /// Rows in `hashes` as this handle last knew them (counted once, then kept up to date by its
    /// own writes; another process's rows are found at the next merge).
    unmerged: Option<u64>,
}

impl SqliteStore {
    /// Opens the index at `path` for writing, creating it if missing (an empty file is taken as
    /// a new index). `params_id` is this build's fingerprint-parameter id: a new index records
    /// it, an existing one must match it. Another program's SQLite file is refused before
    /// anything is written to it.
    pub fn open(path: &Path, params_id: &str) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| why_not_open(path, e))?;
        Self::init(conn, path, Some(params_id), Access::Create).map_err(|e| plainly(path, e))
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
        Self::init(conn, path, Some(params_id), Access::Write).map_err(|e| plainly(path, e))
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
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        match Self::init(conn, path, params_id, Access::Read) {
            // A WAL index is read through a shared-memory file beside it, which cannot be made
            // on a read-only mount or in a folder this user cannot write (a common way to ship
            // an index to scanners). No writer can work there either, or it would have made the
            // file: the index is opened as immutable, which needs nothing beside it.
            Err(e) if sqlite_code(&e) == Some(rusqlite::ErrorCode::CannotOpen) => {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let conn = Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?;
                Self::init(conn, path, params_id, Access::Read)
            }
            other => other,
        }
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
        conn.busy_timeout(BUSY_WAIT)?;
        // Who the file belongs to is settled first: nothing below may touch another program's.
        let kind = identify(&conn).map_err(|e| {
            if sqlite_code(&e) == Some(rusqlite::ErrorCode::NotADatabase) {
                IndexError::NotAnIndex {
                    path: path.to_path_buf(),
                    what: "not an SQLite database".into(),
                }
            } else {
                e
            }
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
        // Another build's index is refused before anything is written to it (not even a
        // migration: that build may still want to open it).
        if let (FileKind::Nasheed, Some(current)) = (&kind, params_id) {
            let stored: Option<String> = conn
                .query_row(
                    &format!("SELECT value FROM {META} WHERE key = 'params_id'"),
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(stored) = stored.filter(|s| s != current) {
                return Err(IndexError::ParamsMismatch {
                    path: path.to_path_buf(),
                    stored,
                    current: current.to_string(),
                });
            }
        }
        if access != Access::Read {
            // The schema first, then WAL: a new file switched to WAL before it has a first page
            // can be seen by a second process as empty and set up again.
            migrate(&mut conn, params_id.unwrap_or_default())?;
            switch_to_wal(&conn)?;
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
        let blobs = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [POSTINGS],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            params_id,
            blobs,
            unmerged: None,
        })
    }

    /// Hands `found(key, postings, crowded)` the postings of each of `keys` (distinct; rows and
    /// blobs together), one key at a time, in one read transaction: a consistent snapshot even
    /// while a writer commits. Left out, and named in the mask `crowded`: a blob past `cap`
    /// postings (all bands), a triplet row's bands past `cap` or stopped. A triplet row's
    /// sections outside `bands(key)` are not decoded either. (Postings of other bands may still
    /// come from flat blobs and rows, and rows are not counted: callers filter and count.)
    fn lookup_keys(
        &self,
        keys: &[i64],
        bands: &dyn Fn(i64) -> u64,
        cap: usize,
        found: &mut dyn FnMut(i64, &[Posting], u64),
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; LOOKUP_BATCH].join(",");
        let sql = format!("SELECT hash, track, t FROM {HASHES} WHERE hash IN ({marks})");
        let blob_sql = format!("SELECT hash, data FROM {POSTINGS} WHERE hash IN ({marks})");
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(&sql)?;
            let mut blobs = match self.blobs {
                true => Some(tx.prepare_cached(&blob_sql)?),
                false => None,
            };
            let mut batch = [0i64; LOOKUP_BATCH];
            // Rows not yet merged into the blobs (usually none), by key.
            let mut loose: BTreeMap<i64, Vec<(i64, u64)>> = BTreeMap::new();
            let mut postings = Vec::new();
            for chunk in keys.chunks(LOOKUP_BATCH) {
                batch[..chunk.len()].copy_from_slice(chunk);
                // Pad with a repeat: IN-lists ignore duplicates.
                let last = chunk[chunk.len() - 1];
                batch[chunk.len()..].fill(last);
                let mut rows = st.query(rusqlite::params_from_iter(batch.iter()))?;
                while let Some(r) = rows.next()? {
                    loose
                        .entry(r.get(0)?)
                        .or_default()
                        .push((r.get(1)?, r.get::<_, i64>(2)? as u64));
                }
                // A key's postings are handed over whole: its blob with its loose rows, if any.
                if let Some(b) = blobs.as_mut() {
                    let mut rows = b.query(rusqlite::params_from_iter(batch.iter()))?;
                    while let Some(r) = rows.next()? {
                        let key: i64 = r.get(0)?;
                        postings.clear();
                        let blob = blob_at(r, 1)?;
                        let crowded = decode_blob(key, blob, bands(key), cap, &mut postings)
                            .ok_or(IndexError::CorruptPostings(key))?;
                        if let Some(more) = loose.remove(&key) {
                            postings.extend(more);
                        }
                        found(key, &postings, crowded);
                    }
                }
                while let Some((key, rows)) = loose.pop_first() {
                    found(key, &rows, 0);
                }
            }
        }
        tx.finish()?;
        Ok(())
    }

    /// Stores a copy of another index's track under its id and indexing time (a replica);
    /// a track already there under that id or content is left as it is (false).
    pub fn add_copy(&mut self, info: &TrackInfo, prints: &Prints) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let taken: bool = tx
            .query_row(
                &format!("SELECT 1 FROM {TRACKS} WHERE id = ?1 OR sha256 = ?2"),
                params![info.id.0, info.sha256],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if taken {
            return Ok(false);
        }
        let track = NewTrack {
            path: info.path.clone(),
            sha256: info.sha256.clone(),
            title: info.title.clone(),
            meta: info.meta.clone(),
            duration_s: info.duration_s,
        };
        let (_, rows) = insert_track_as(&tx, &track, prints, Some((info.id, &info.indexed_at)))?;
        tx.commit()?;
        self.grew(rows)?;
        Ok(true)
    }

    /// Removes every track and posting in one transaction (a replica made anew; readers with
    /// the file open see it empty, then filled, never half of a track).
    pub fn clear(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for table in [TRACKS, HASHES, PEAKS] {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        if self.blobs {
            tx.execute(&format!("DELETE FROM {POSTINGS}"), [])?;
        }
        tx.commit()?;
        self.unmerged = Some(0);
        Ok(())
    }

    /// A value of the index's `meta` table (a replica's bookkeeping).
    pub fn meta_value(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT value FROM {META} WHERE key = ?1"),
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets a value of the index's `meta` table.
    pub fn set_meta_value(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            &format!("INSERT OR REPLACE INTO {META} (key, value) VALUES (?1, ?2)"),
            params![key, value],
        )?;
        Ok(())
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
/// A database error met while opening for writing, said plainly when it means "cannot write
/// here" (SQLite opens lazily: a read-only mount shows only at the first statement).
fn plainly(path: &Path, e: IndexError) -> IndexError {
    match e {
        IndexError::Backend(b) => match b.downcast::<rusqlite::Error>() {
            Ok(e) => why_not_open(path, *e),
            Err(b) => IndexError::Backend(b),
        },
        other => other,
    }
}

impl From<rusqlite::Error> for IndexError {
    fn from(e: rusqlite::Error) -> Self {
        IndexError::Backend(Box::new(e))
    }
}

/// SQLite's primary error code, when `e` is SQLite's error.
fn sqlite_code(e: &IndexError) -> Option<rusqlite::ErrorCode> {
    match e {
        IndexError::Backend(b) => match b.downcast_ref::<rusqlite::Error>() {
            Some(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
            _ => None,
        },
        _ => None,
    }
}

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

/// Inserts one track with its hashes (sorted, deduplicated), peaks and triplets inside `tx`;
/// returns its id and the posting rows written.
fn insert_track(
    tx: &rusqlite::Transaction<'_>,
    track: &NewTrack,
    prints: &Prints,
) -> Result<(TrackId, u64)> {
    insert_track_as(tx, track, prints, None)
}

/// [`insert_track`], under a given id and indexing time when `as_of` says (a replica keeps
/// its source's ids, which scan results name).
fn insert_track_as(
    tx: &rusqlite::Transaction<'_>,
    track: &NewTrack,
    prints: &Prints,
    as_of: Option<(TrackId, &str)>,
) -> Result<(TrackId, u64)> {
    let mut rows: Vec<(u32, u32)> = prints.landmarks.iter().map(|l| (l.hash, l.frame)).collect();
    rows.sort_unstable();
    rows.dedup();
    let meta = serde_json::to_string(&track.meta).unwrap_or_else(|_| "{}".into());
    match as_of {
        None => tx.execute(
            &format!("INSERT INTO {TRACKS} (path, sha256, title, meta, duration_s, n_hashes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![track.path, track.sha256, track.title, meta, track.duration_s, rows.len() as i64],
        )?,
        Some((id, at)) => tx.execute(
            &format!("INSERT INTO {TRACKS} (id, path, sha256, title, meta, duration_s, n_hashes, indexed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![id.0, track.path, track.sha256, track.title, meta, track.duration_s, rows.len() as i64, at],
        )?,
    };
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
        params![
            id,
            super::encode_peaks(&prints.peaks, super::PeakFormat::Refined)
        ],
    )?;
    let mut ins = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {HASHES} (hash, track, t) VALUES (?1, ?2, ?3)"
    ))?;
    let triplets = super::triplets_of(prints);
    for tr in &triplets {
        let (key, value) = triplet_posting(tr);
        ins.execute(params![key, id, value as i64])?;
    }
    Ok((TrackId(id), (rows.len() + triplets.len()) as u64))
}

/// One stored occurrence of a key: (track, value), the value a frame or a [`triplet_posting`].
type Posting = (i64, u64);

/// Triplets share the postings of landmark hashes (rows, then merged blobs), under keys above
/// every 32-bit hash: one posting list per triplet key without its band (the anchor's coarse
/// pitch), so a lookup reads the few bands an upload triplet probes in one row, and the index
/// keeps a fifth as many rows.
const TRIPLET_KEYS: i64 = 1 << 32;

/// Bits of a triplet key that hold its band (the low ones, see `fingerprint::triplets::key`).
const BAND_BITS: u32 = 6;

/// A triplet as a posting: the row it goes in, and its place as one number that sorts by time:
/// anchor (quarters of a frame) << 22 | band << 16 | log frequency above the band's floor (16ths
/// of a semitone, 7 bits) << 9 | span (eighths of a frame, 9 bits). About 6 bytes in a blob.
fn triplet_posting(t: &StoredTriplet) -> (i64, u64) {
    let band = (t.key & ((1 << BAND_BITS) - 1)) as u64;
    let l = (t.l as i64 - band_floor(t.key)).clamp(0, 127) as u64;
    let span = (t.span as u64).min(511);
    (
        TRIPLET_KEYS + (t.key >> BAND_BITS) as i64,
        ((t.t as u64) << 22) | (band << 16) | (l << 9) | span,
    )
}

/// Inverse of [`triplet_posting`] for a posting in row `row` (a triplet key without its band).
fn triplet_of(row: u32, value: u64) -> StoredTriplet {
    let key = (row << BAND_BITS) | ((value >> 16) & ((1 << BAND_BITS) - 1)) as u32;
    StoredTriplet {
        key,
        t: (value >> 22).min(u32::MAX as u64) as u32,
        l: (band_floor(key) + ((value >> 9) & 127) as i64).clamp(0, u16::MAX as i64) as u16,
        span: (value & 511) as u16,
    }
}

/// The lowest log frequency (16ths of a semitone) of the band a triplet key names.
fn band_floor(key: u32) -> i64 {
    let p = crate::fingerprint::triplets::TripletParams::default();
    ((key & ((1 << BAND_BITS) - 1)) as f32 * p.band_semitones * 16.0).round() as i64
}

/// Column `i` of `r` as a blob, borrowed.
fn blob_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8]> {
    r.get_ref(i)?.as_blob().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
            .into()
    })
}

/// Rewrites every posting blob that holds `track` without it (a blob left empty is deleted).
/// Blobs are keyed by hash, so this reads them all: removal is rare, lookups are not.
fn remove_from_blobs(tx: &rusqlite::Transaction<'_>, track: i64) -> Result<()> {
    // A stopped band keeps its count: which tracks it held is no longer known, and a band
    // that was crowded once stays skipped.
    let mut changed: Vec<(i64, Vec<Posting>, Stopped)> = Vec::new();
    {
        let mut st = tx.prepare(&format!("SELECT hash, data FROM {POSTINGS}"))?;
        let mut rows = st.query([])?;
        let mut postings = Vec::new();
        while let Some(r) = rows.next()? {
            let hash: i64 = r.get(0)?;
            postings.clear();
            let mut stopped = [0; 1 << BAND_BITS];
            decode_whole_blob(blob_at(r, 1)?, &mut postings, &mut stopped)
                .ok_or(IndexError::CorruptPostings(hash))?;
            if postings.iter().any(|p| p.0 == track) {
                postings.retain(|p| p.0 != track);
                changed.push((hash, postings.clone(), stopped));
            }
        }
    }
    let mut write = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {POSTINGS} (hash, data) VALUES (?1, ?2)"
    ))?;
    let mut delete = tx.prepare_cached(&format!("DELETE FROM {POSTINGS} WHERE hash = ?1"))?;
    for (hash, mut postings, stopped) in changed {
        match postings.is_empty() && stopped.iter().all(|&n| n == 0) {
            true => delete.execute([hash])?,
            false => write.execute(params![hash, encode_blob(hash, &mut postings, &stopped)])?,
        };
    }
    Ok(())
}

/// The id of the track with this content hash, read inside `tx`.
fn sha_in(tx: &rusqlite::Transaction<'_>, sha256: &str) -> Result<Option<i64>> {
    let mut st = tx.prepare_cached(&format!("SELECT id FROM {TRACKS} WHERE sha256 = ?1"))?;
    Ok(st.query_row([sha256], |r| r.get(0)).optional()?)
}

/// Packs one key's postings, sorted by (track, value), as varints: the count, then per posting
/// the track's difference from the previous posting's track and the value (a difference from
/// the previous value within one track). A value is a frame for a landmark hash (about 3 bytes
/// a posting), a [`triplet_posting`] for a triplet.
fn encode_postings(postings: &[(i64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + postings.len() * 3);
    super::put_varint(&mut out, postings.len() as u64);
    let (mut track, mut t) = (0i64, 0u64);
    for &(tr, f) in postings {
        let dtrack = (tr - track) as u64;
        super::put_varint(&mut out, dtrack);
        super::put_varint(&mut out, if dtrack == 0 { f - t } else { f });
        (track, t) = (tr, f);
    }
    out
}

/// Inverse of [`encode_postings`], appending to `out`; `None` if the bytes are malformed.
fn decode_postings(mut data: &[u8], out: &mut Vec<(i64, u64)>) -> Option<()> {
    let n = super::get_varint(&mut data)?;
    // A count the bytes cannot hold is corruption, not a reason to reserve memory.
    if n > data.len() as u64 {
        return None;
    }
    out.reserve(n as usize);
    let (mut track, mut t) = (0i64, 0u64);
    for _ in 0..n {
        let dtrack = super::get_varint(&mut data)?;
        let f = super::get_varint(&mut data)?;
        if dtrack == 0 {
            t = t.checked_add(f)?;
        } else {
            track = track.checked_add(i64::try_from(dtrack).ok()?)?;
            t = f;
        }
        out.push((track, t));
    }
    data.is_empty().then_some(())
}

/// Per band of a triplet row, how many postings it held when it was stopped (0: not stopped).
type Stopped = [u64; 1 << BAND_BITS];

/// A key's blob as written: a triplet row's in sections by band (`stopped` adding to the
/// counts of its stopped bands), any other flat.
fn encode_blob(key: i64, postings: &mut [Posting], stopped: &Stopped) -> Vec<u8> {
    match key >= TRIPLET_KEYS {
        true => encode_triplet_row(postings, stopped),
        false => encode_postings(postings),
    }
}

/// Appends the postings of `key`'s blob to `out`, either layout: of a pair hash, all of them
/// unless they are more than `cap` (skipped unread, by the count that leads them); of a triplet
/// row in sections, the bands in the mask `bands` holding at most `cap`; of a flat triplet row
/// (schema 2), all (its bands are counted by the caller). Returns the mask of bands skipped for
/// holding more or for being stopped (all of them for a pair hash), `None` if the bytes are
/// malformed.
fn decode_blob(
    key: i64,
    data: &[u8],
    bands: u64,
    cap: usize,
    out: &mut Vec<Posting>,
) -> Option<u64> {
    match data.first() {
        Some(0) => decode_triplet_row(data, bands, cap, out, None),
        _ if key < TRIPLET_KEYS && super::get_varint(&mut &data[..])? > cap as u64 => {
            Some(u64::MAX)
        }
        _ => decode_postings(data, out).map(|()| 0),
    }
}

/// Appends all of a blob's postings to `out`, and the counts of its stopped bands to
/// `stopped` (for a rewrite that keeps them); `None` if the bytes are malformed.
fn decode_whole_blob(data: &[u8], out: &mut Vec<Posting>, stopped: &mut Stopped) -> Option<()> {
    match data.first() {
        Some(0) => decode_triplet_row(data, u64::MAX, usize::MAX, out, Some(stopped)).map(|_| ()),
        _ => decode_postings(data, out),
    }
}

/// Marks a stopped band in a triplet row: the band plus this, then its count, no postings.
const STOPPED: u64 = 1 << BAND_BITS;

/// A triplet row in sections: a 0 byte (a flat blob starts with its count, never 0), then per
/// band present, in order: the band, the section's length in bytes, and its postings as
/// [`encode_postings`] packs them with the band taken out of each value (the anchor time moves
/// down 6 bits, a byte less for most). A band holding more than [`super::TRIPLET_STOP`]
/// postings (with those counted in `stopped`) is written as `STOPPED` + band and the count: no
/// lookup would use them, and at 10 000 references they were most of the bytes read.
/// Sorts `postings` by (band, track, value).
fn encode_triplet_row(postings: &mut [Posting], stopped: &Stopped) -> Vec<u8> {
    let band = |v: u64| (v >> 16) & ((1 << BAND_BITS) - 1);
    postings.sort_unstable_by_key(|&(track, v)| (band(v), track, v));
    let mut out = vec![0u8];
    let mut section = Vec::new();
    let mut rest = &postings[..];
    for (b, &before) in (0..).zip(stopped) {
        let (group, tail) = rest.split_at(rest.partition_point(|p| band(p.1) == b));
        rest = tail;
        if before > 0 || group.len() > super::TRIPLET_STOP {
            super::put_varint(&mut out, STOPPED + b);
            super::put_varint(&mut out, before + group.len() as u64);
        } else if !group.is_empty() {
            section.clear();
            section.extend(
                group
                    .iter()
                    .map(|&(track, v)| (track, ((v >> 22) << 16) | (v & 0xffff))),
            );
            let bytes = encode_postings(&section);
            super::put_varint(&mut out, b);
            super::put_varint(&mut out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// Inverse of [`encode_triplet_row`] for the bands in the mask `bands`, appending to `out`
/// (by band, then track and value), except sections of more than `cap` postings: those are
/// skipped unread, by the count that leads them, and their bands returned as a mask (at scale
/// most asked sections are crowded ones, and decoding them was half a scan's time), as are
/// stopped bands asked for, whose counts go to `stopped` when given (a rewrite keeps them).
/// `None` if the bytes are malformed.
fn decode_triplet_row(
    data: &[u8],
    bands: u64,
    cap: usize,
    out: &mut Vec<Posting>,
    mut stopped: Option<&mut Stopped>,
) -> Option<u64> {
    let mut data = data.strip_prefix(&[0])?;
    let mut crowded = 0;
    while !data.is_empty() {
        let band = super::get_varint(&mut data)?;
        if band & STOPPED != 0 {
            let band = band - STOPPED;
            let count = super::get_varint(&mut data)?;
            if band >= STOPPED || count == 0 {
                return None;
            }
            if let Some(s) = stopped.as_deref_mut() {
                s[band as usize] = count;
            }
            crowded |= bands & 1 << band;
            continue;
        }
        let len = usize::try_from(super::get_varint(&mut data)?).ok()?;
        if band >= 1 << BAND_BITS || len > data.len() {
            return None;
        }
        let (section, rest) = data.split_at(len);
        data = rest;
        if bands >> band & 1 == 0 {
            continue;
        }
        let mut count = section;
        if super::get_varint(&mut count)? > cap as u64 {
            crowded |= 1 << band;
        } else {
            let from = out.len();
            decode_postings(section, out)?;
            for p in &mut out[from..] {
                // An anchor time past 42 bits cannot have been written.
                if p.1 >> 58 != 0 {
                    return None;
                }
                p.1 = ((p.1 >> 16) << 22) | (band << 16) | (p.1 & 0xffff);
            }
        }
    }
    Some(crowded)
}

/// Moves every row of `hashes` into the posting blobs, inside `tx`; returns the rows moved.
fn merge_rows(tx: &rusqlite::Transaction<'_>) -> Result<u64> {
    let mut read = tx.prepare(&format!(
        "SELECT hash, track, t FROM {HASHES} ORDER BY hash, track, t"
    ))?;
    let mut blob = tx.prepare_cached(&format!("SELECT data FROM {POSTINGS} WHERE hash = ?1"))?;
    let mut write = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {POSTINGS} (hash, data) VALUES (?1, ?2)"
    ))?;
    let mut flush = |hash: i64, new: &mut Vec<(i64, u64)>| -> Result<()> {
        let old: Option<Vec<u8>> = blob.query_row([hash], |r| r.get(0)).optional()?;
        let mut stopped = [0; 1 << BAND_BITS];
        if let Some(old) = old {
            decode_whole_blob(&old, new, &mut stopped).ok_or(IndexError::CorruptPostings(hash))?;
        }
        new.sort_unstable();
        new.dedup();
        write.execute(params![hash, encode_blob(hash, new, &stopped)])?;
        new.clear();
        Ok(())
    };
    let (mut moved, mut current, mut group) = (0u64, None, Vec::new());
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let hash: i64 = r.get(0)?;
        if current.is_some_and(|c| c != hash) {
            flush(current.unwrap_or_default(), &mut group)?;
        }
        current = Some(hash);
        group.push((r.get(1)?, r.get::<_, i64>(2)? as u64));
        moved += 1;
    }
    if let Some(c) = current {
        flush(c, &mut group)?;
    }
    drop(rows);
    tx.execute(&format!("DELETE FROM {HASHES}"), [])?;
    Ok(moved)
}

impl SqliteStore {
    /// Notes `rows` new rows in `hashes` and merges them into the blobs once they are many.
    fn grew(&mut self, rows: u64) -> Result<()> {
        let unmerged = match self.unmerged {
            Some(n) => n + rows,
            None => self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {HASHES}"), [], |r| {
                    r.get::<_, i64>(0)
                })? as u64,
        };
        self.unmerged = Some(unmerged);
        if !self.blobs || unmerged < MERGE_MIN_ROWS {
            return Ok(());
        }
        let total = self.stats()?.hashes;
        if (unmerged as f64) >= MERGE_SHARE * total as f64 {
            self.merge()?;
        }
        Ok(())
    }

    /// Moves every posting row into the blobs in one write transaction.
    fn merge(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        merge_rows(&tx)?;
        tx.commit()?;
        self.unmerged = Some(0);
        Ok(())
    }
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
        let (id, rows) = insert_track(&tx, track, prints)?;
        tx.commit()?;
        self.grew(rows)?;
        Ok(id)
    }

    fn add_tracks(&mut self, tracks: &[(NewTrack, Prints)]) -> Result<(usize, usize)> {
        // Write lock first: a read transaction upgraded later fails if another writer got in.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (mut added, mut skipped, mut rows) = (0, 0, 0);
        for (track, prints) in tracks {
            if sha_in(&tx, &track.sha256)?.is_some() {
                skipped += 1;
            } else {
                rows += insert_track(&tx, track, prints)?.1;
                added += 1;
            }
        }
        tx.commit()?;
        self.grew(rows)?;
        Ok((added, skipped))
    }

    fn landmarks(&self, ids: &[TrackId]) -> Result<HashMap<TrackId, Vec<Landmark>>> {
        let wanted: HashSet<i64> = ids.iter().map(|t| t.0).collect();
        let mut out: HashMap<TrackId, Vec<Landmark>> =
            ids.iter().map(|&t| (t, Vec::new())).collect();
        // The table is keyed by hash: one pass over it serves every track.
        let mut st = self.conn.prepare(&format!(
            "SELECT hash, track, t FROM {HASHES} WHERE hash < {TRIPLET_KEYS}"
        ))?;
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
        if self.blobs {
            let mut st = self.conn.prepare(&format!(
                "SELECT hash, data FROM {POSTINGS} WHERE hash < {TRIPLET_KEYS}"
            ))?;
            let mut rows = st.query([])?;
            let mut postings = Vec::new();
            while let Some(r) = rows.next()? {
                let hash: u32 = r.get(0)?;
                postings.clear();
                decode_postings(blob_at(r, 1)?, &mut postings)
                    .ok_or(IndexError::CorruptPostings(hash as i64))?;
                for &(track, frame) in &postings {
                    if let Some(v) = out.get_mut(&TrackId(track)) {
                        v.push(Landmark {
                            hash,
                            frame: frame as u32,
                        });
                    }
                }
            }
        }
        // The order a freshly indexed track has, wherever its postings are kept.
        for v in out.values_mut() {
            v.sort_unstable_by_key(|l| (l.hash, l.frame));
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
            Some(d) => super::decode_peaks(&d, super::PeakFormat::of(&self.params_id))
                .ok_or(IndexError::CorruptTrack(id.0)),
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

    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> Result<()> {
        let keys: Vec<i64> = hashes.iter().map(|&h| h as i64).collect();
        self.lookup_keys(&keys, &|_| u64::MAX, cap, &mut |key, postings, crowded| {
            if crowded == 0 && postings.len() <= cap {
                for &(track, t) in postings {
                    hit(key as u32, TrackId(track), t as u32);
                }
            }
        })
    }

    fn lookup_triplets(
        &self,
        keys: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(TrackId, StoredTriplet),
    ) -> Result<()> {
        let wanted = super::distinct(keys);
        let mut rows: Vec<i64> = wanted
            .iter()
            .map(|&k| TRIPLET_KEYS + (k >> BAND_BITS) as i64)
            .collect();
        rows.dedup();
        // The bands asked of a row (the keys' low bits), as a mask.
        let asked = |row: u32| {
            let first = wanted.partition_point(|&k| k < row << BAND_BITS);
            wanted[first..]
                .iter()
                .take_while(|&&k| k >> BAND_BITS == row)
                .fold(0u64, |m, &k| m | 1 << (k & ((1 << BAND_BITS) - 1)))
        };
        let bands = |key: i64| asked((key - TRIPLET_KEYS) as u32);
        self.lookup_keys(&rows, &bands, cap, &mut |row, postings, crowded| {
            let row = (row - TRIPLET_KEYS) as u32;
            // The row holds every band: keep the keys asked for, each with all its postings
            // together, and skip those stored more than `cap` times.
            let asked = asked(row) & !crowded;
            let band = |value: u64| (value >> 16) & ((1 << BAND_BITS) - 1);
            let mut bands = asked;
            while bands != 0 {
                let b = bands.trailing_zeros() as u64;
                bands &= bands - 1;
                let of_band = || postings.iter().filter(|p| band(p.1) == b);
                if of_band().count() <= cap {
                    for &(track, value) in of_band() {
                        hit(TrackId(track), triplet_of(row, value));
                    }
                }
            }
        })
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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(&format!("DELETE FROM {TRACKS} WHERE id = ?1"), [id.0])?;
        tx.execute(&format!("DELETE FROM {HASHES} WHERE track = ?1"), [id.0])?;
        tx.execute(&format!("DELETE FROM {PEAKS} WHERE track = ?1"), [id.0])?;
        if self.blobs && n > 0 {
            remove_from_blobs(&tx, id.0)?;
        }
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
        if self.blobs {
            self.merge()?;
        }
        // VACUUM goes through the WAL; the checkpoint hands the space back to the file system.
        self.conn.execute_batch("VACUUM")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// `path` percent-encoded for an SQLite `file:` URI (every byte but unreserved ones and `/`).
fn uri_path(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
                    sub: [0, 0],
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
            s.lookup(&hashes, usize::MAX, &mut |h, t, f| v.push((h, t, f)))
                .unwrap();
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
        s.lookup(&[7, 8], usize::MAX, &mut |h, t, f| hits.push((h, t, f)))
            .unwrap();
        hits.sort();
        assert_eq!(hits, vec![(7, a, 3), (7, b, 10)]);
        assert_eq!(s.find_sha("b").unwrap(), Some(b));
        assert!(s.remove(a).unwrap());
        let mut hits = Vec::new();
        s.lookup(&[7, 9], usize::MAX, &mut |h, t, f| hits.push((h, t, f)))
            .unwrap();
        assert_eq!(hits, vec![(7, b, 10)]);
        assert_eq!(s.stats().unwrap().tracks, 1);
    }

    /// Every (hash, track, frame) the store returns for `hashes`, sorted.
    fn all_rows(s: &SqliteStore, hashes: &[u32]) -> Vec<(u32, TrackId, u32)> {
        let mut v = Vec::new();
        s.lookup(hashes, usize::MAX, &mut |h, t, f| v.push((h, t, f)))
            .unwrap();
        v.sort();
        v
    }

    /// Triplet rows in sections give back every posting, or only the bands asked; schema 2's
    /// flat rows still read; damaged sections are refused.
    #[test]
    fn triplet_rows_in_sections_round_trip_by_band() {
        let mut x = 17u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let posting = |t: u64, band: u64, low: u64| (t << 22) | (band << 16) | (low & 0xffff);
        let mut postings: Vec<Posting> = (0..500)
            .map(|_| {
                let v = posting(next() % 1_000_000, next() % 20, next());
                ((next() % 40) as i64 + 1, v)
            })
            .collect();
        postings.sort_unstable();
        postings.dedup();
        let band = |v: u64| (v >> 16) & 63;
        let by_band = |mut v: Vec<Posting>| {
            v.sort_unstable_by_key(|&(t, x)| (band(x), t, x));
            v
        };
        let row = encode_blob(TRIPLET_KEYS + 5, &mut postings.clone(), &[0; 64]);
        assert_eq!(row[0], 0);
        let mut back = Vec::new();
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &row, u64::MAX, usize::MAX, &mut back),
            Some(0)
        );
        assert_eq!(back, by_band(postings.clone()));
        let mask = (1 << 3) | (1 << 4) | (1 << 19);
        back.clear();
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &row, mask, usize::MAX, &mut back),
            Some(0)
        );
        let asked: Vec<Posting> = postings
            .iter()
            .copied()
            .filter(|p| mask >> band(p.1) & 1 == 1)
            .collect();
        assert!(!asked.is_empty());
        assert_eq!(back, by_band(asked.clone()));
        // Sections past the cap are skipped and named; the others read as before.
        let count = |b: u64| postings.iter().filter(|p| band(p.1) == b).count();
        let (small, large) = (
            [3, 4, 19].map(count).into_iter().min(),
            [3, 4, 19].map(count),
        );
        let cap = small.unwrap_or_default();
        let crowded = [3u64, 4, 19]
            .into_iter()
            .zip(large)
            .filter(|&(_, n)| n > cap)
            .fold(0u64, |m, (b, _)| m | 1 << b);
        assert_ne!(crowded, 0, "the test wants bands of unequal counts");
        back.clear();
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &row, mask, cap, &mut back),
            Some(crowded)
        );
        let kept: Vec<Posting> = asked
            .into_iter()
            .filter(|p| crowded >> band(p.1) & 1 == 0)
            .collect();
        assert!(!kept.is_empty());
        assert_eq!(back, by_band(kept));
        // A flat triplet row, as schema 2 wrote it, reads whole whatever the mask and cap (the
        // caller counts its bands); a pair hash's flat blob, not at all past the cap.
        let flat = encode_postings(&postings);
        back.clear();
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &flat, mask, 1, &mut back),
            Some(0)
        );
        assert_eq!(back, postings);
        back.clear();
        assert_eq!(
            decode_blob(7, &flat, mask, postings.len(), &mut back),
            Some(0)
        );
        assert_eq!(back, postings);
        back.clear();
        let cap = postings.len() - 1;
        assert_eq!(decode_blob(7, &flat, mask, cap, &mut back), Some(u64::MAX));
        assert!(back.is_empty());
        // Pair keys stay flat.
        assert_eq!(encode_blob(7, &mut postings.clone(), &[0; 64]), flat);
        for bad in [
            &row[..row.len() - 1],
            &[0, 0x80, 1, 1, 1, 0][..],
            &[0, 3, 9, 1, 1, 1][..],
            &[0, 3][..],
            // Stopped bands: no count, a zero count, a band past 63.
            &[0, 64][..],
            &[0, 64, 0][..],
            &[0, 0xc0, 1, 5][..],
        ] {
            assert_eq!(
                decode_blob(TRIPLET_KEYS + 5, bad, u64::MAX, usize::MAX, &mut Vec::new()),
                None,
                "{bad:?}"
            );
        }
    }

    /// A triplet posting of `track` in `band`, at anchor time `t`.
    fn in_band(track: i64, band: u64, t: u64) -> Posting {
        (track, (t << 22) | (band << 16) | 0x1234)
    }

    #[test]
    fn a_crowded_band_is_stopped_as_a_count_and_stays_stopped() {
        let stop = super::super::TRIPLET_STOP as i64;
        // Band 7 one past the stop, band 2 well under it.
        let mut postings: Vec<Posting> = (1..=stop + 1).map(|tr| in_band(tr, 7, 9)).collect();
        postings.extend((1..=5).map(|tr| in_band(tr, 2, tr as u64)));
        let row = encode_blob(TRIPLET_KEYS + 5, &mut postings.clone(), &[0; 64]);
        let (mut back, mut stopped) = (Vec::new(), [0u64; 64]);
        assert_eq!(decode_whole_blob(&row, &mut back, &mut stopped), Some(()));
        assert_eq!(
            back,
            (1..=5)
                .map(|tr| in_band(tr, 2, tr as u64))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            (stopped[7], stopped.iter().sum::<u64>()),
            (stop as u64 + 1, stop as u64 + 1)
        );
        // A lookup asking for both bands is told band 7 is crowded, whatever its cap.
        back.clear();
        let both = (1 << 7) | (1 << 2);
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &row, both, usize::MAX, &mut back),
            Some(1 << 7)
        );
        assert_eq!(back.len(), 5);
        assert_eq!(
            decode_blob(TRIPLET_KEYS + 5, &row, 1 << 2, usize::MAX, &mut Vec::new()),
            Some(0)
        );
        // Rewritten with more postings: the stopped count grows, and band 2 past the stop joins it.
        let mut more: Vec<Posting> = (0..3).map(|tr| in_band(1000 + tr, 7, 1)).collect();
        more.extend((6..=stop + 1).map(|tr| in_band(tr, 2, 1)));
        more.extend(back);
        let row = encode_blob(TRIPLET_KEYS + 5, &mut more, &stopped);
        let (mut back, mut stopped) = (Vec::new(), [0u64; 64]);
        assert_eq!(decode_whole_blob(&row, &mut back, &mut stopped), Some(()));
        assert!(back.is_empty());
        assert_eq!((stopped[7], stopped[2]), (stop as u64 + 4, stop as u64 + 1));
        assert!(row.len() < 10, "a stopped band holds no postings: {row:?}");
    }

    #[test]
    fn a_store_skips_stopped_bands_through_merges_loose_rows_and_removal() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let stop = super::super::TRIPLET_STOP as i64;
        let insert = |s: &SqliteStore, (track, value): Posting| {
            s.conn
                .execute(
                    "INSERT INTO hashes (hash, track, t) VALUES (?1, ?2, ?3)",
                    params![TRIPLET_KEYS + 5, track, value as i64],
                )
                .unwrap();
        };
        for tr in 1..=stop + 1 {
            insert(&s, in_band(tr, 7, 9));
        }
        for tr in 1..=3 {
            insert(&s, in_band(tr, 2, 4));
        }
        let keys = [(5 << 6) | 2, (5 << 6) | 7];
        let found = |s: &SqliteStore| {
            let mut v = Vec::new();
            s.lookup_triplets(&keys, usize::MAX, &mut |t, st| v.push((t.0, st.key)))
                .unwrap();
            v
        };
        let band2: Vec<(i64, u32)> = (1..=3).map(|tr| (tr, keys[0])).collect();
        // Unmerged rows are all there (nothing is stopped before a merge).
        assert_eq!(found(&s).len(), band2.len() + stop as usize + 1);
        s.compact().unwrap();
        assert_eq!(found(&s), band2);
        // A row of the stopped band added later is skipped beside the blob, and counted in at
        // the next merge.
        insert(&s, in_band(4000, 7, 1));
        assert_eq!(found(&s), band2);
        s.compact().unwrap();
        assert_eq!(found(&s), band2);
        let stopped_in_band_7 = |s: &SqliteStore| {
            let blob: Vec<u8> = s
                .conn
                .query_row(
                    "SELECT data FROM postings WHERE hash = ?1",
                    [TRIPLET_KEYS + 5],
                    |r| r.get(0),
                )
                .unwrap();
            let mut stopped = [0; 64];
            decode_whole_blob(&blob, &mut Vec::new(), &mut stopped).unwrap();
            stopped[7]
        };
        assert_eq!(stopped_in_band_7(&s), stop as u64 + 2);
        // Removing a track takes it out of the bands that hold postings; the count stays.
        let tx = s.conn.transaction().unwrap();
        remove_from_blobs(&tx, 1).unwrap();
        tx.commit().unwrap();
        assert_eq!(found(&s), band2[1..]);
        assert_eq!(stopped_in_band_7(&s), stop as u64 + 2);
    }

    #[test]
    fn postings_round_trip_and_reject_garbage() {
        let lists: [&[(i64, u64)]; 4] = [
            &[],
            &[(1, 0)],
            &[(1, 5), (1, 9), (3, 2), (3, 2_000_000), (70_000, 1)],
            &[(5, 4_000_000_000), (6, 0)],
        ];
        for list in lists {
            let bytes = encode_postings(list);
            let mut back = Vec::new();
            assert_eq!(decode_postings(&bytes, &mut back), Some(()));
            assert_eq!(back, list);
        }
        let good = encode_postings(&[(1, 5), (2, 9)]);
        for bad in [
            &good[..good.len() - 1],
            &[0xff; 12][..],
            &[200, 1][..],
            &[1, 1, 1, 9][..],
        ] {
            assert_eq!(decode_postings(bad, &mut Vec::new()), None, "{bad:?}");
        }
    }

    #[test]
    fn merged_blobs_answer_as_rows_did_and_removal_reaches_them() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let mut ids = Vec::new();
        for t in 0..6u32 {
            // Hashes shared between tracks, and one repeated inside a track.
            let pairs: Vec<(u32, u32)> = (0..300u32).map(|i| ((i * 7 + t) % 97, i)).collect();
            ids.push(
                s.add_track(&track(&format!("t{t}")), &prints(&pairs))
                    .unwrap(),
            );
        }
        let hashes: Vec<u32> = (0..100).collect();
        let rows = all_rows(&s, &hashes);
        let marks = s.landmarks(&ids).unwrap();
        s.compact().unwrap();
        let in_rows: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM hashes", [], |r| r.get(0))
            .unwrap();
        let blobs: i64 = s
            .conn
            .query_row(
                &format!("SELECT COUNT(*) FROM postings WHERE hash < {TRIPLET_KEYS}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!((in_rows, blobs), (0, 97));
        assert_eq!(all_rows(&s, &hashes), rows);
        assert_eq!(s.landmarks(&ids).unwrap(), marks);
        // A track added after the merge is found beside the blobs, and a second merge keeps both.
        let late = s
            .add_track(&track("late"), &prints(&[(3, 1), (500, 2)]))
            .unwrap();
        let mut expected = rows.clone();
        expected.extend([(3, late, 1), (500, late, 2)]);
        expected.sort();
        let with_500: Vec<u32> = hashes.iter().copied().chain([500]).collect();
        assert_eq!(all_rows(&s, &with_500), expected);
        s.compact().unwrap();
        assert_eq!(all_rows(&s, &with_500), expected);
        // Removing a merged track takes it out of every blob; a blob left empty goes.
        assert!(s.remove(ids[2]).unwrap());
        assert!(s.remove(late).unwrap());
        let kept: Vec<_> = rows.iter().filter(|r| r.1 != ids[2]).copied().collect();
        assert_eq!(all_rows(&s, &with_500), kept);
        let empty: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM postings WHERE hash = 500", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(empty, 0);
    }

    #[test]
    fn a_writer_merges_on_its_own_once_rows_are_many() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let per_track = 100_000u32;
        let mut n = 0;
        let mut hashes = Vec::new();
        while (n as u64) * (per_track as u64) < MERGE_MIN_ROWS + per_track as u64 {
            let pairs: Vec<(u32, u32)> = (0..per_track).map(|i| (i * 13 + n, i)).collect();
            hashes.extend(pairs.iter().map(|p| p.0).step_by(1000));
            s.add_track(&track(&format!("t{n}")), &prints(&pairs))
                .unwrap();
            n += 1;
        }
        let in_rows: i64 = s
            .conn
            .query_row("SELECT COUNT(*) FROM hashes", [], |r| r.get(0))
            .unwrap();
        assert!(
            in_rows < MERGE_MIN_ROWS as i64,
            "{in_rows} rows never merged"
        );
        hashes.sort_unstable();
        hashes.dedup();
        assert!(all_rows(&s, &hashes).len() >= hashes.len());
    }

    #[test]
    fn lookups_over_many_batches() {
        let mut s = SqliteStore::in_memory("p").unwrap();
        let marks: Vec<_> = (0..1000).map(|i| (i * 3, i)).collect();
        s.add_track(&track("a"), &prints(&marks)).unwrap();
        let query: Vec<u32> = (0..3000).collect();
        let mut n = 0;
        s.lookup(&query, usize::MAX, &mut |h, _, f| {
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

    /// A new file set up by another process but not yet in WAL mode, whose writer still holds
    /// its lock: opening it waits for the writer instead of failing at once (SQLite's switch to
    /// WAL upgrades a read to a write, which the busy timeout does not cover).
    #[test]
    fn opening_waits_for_another_writer_during_the_switch_to_wal() {
        let dir = std::env::temp_dir().join(format!("nasheed-sqlite-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.db");
        let _ = std::fs::remove_file(&path);
        let mut first = Connection::open(&path).unwrap();
        migrate(&mut first, "one").unwrap();
        first.execute_batch("BEGIN IMMEDIATE").unwrap();
        let opened = std::thread::scope(|s| {
            let opener = s.spawn(|| SqliteStore::open(&path, "one").map(|_| ()));
            std::thread::sleep(Duration::from_millis(300));
            first.execute_batch("COMMIT").unwrap();
            opener.join().unwrap()
        });
        assert!(opened.is_ok(), "{:?}", opened.err().map(|e| e.to_string()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A triplet stored as a posting comes back as it was, whatever its band and span, and
    /// postings sort by anchor time (so blobs delta-encode them).
    #[test]
    fn triplets_round_trip_through_postings() {
        let p = crate::fingerprint::triplets::TripletParams::default();
        let mut last = None;
        for (i, t) in [0u32, 16, 5_000_000].into_iter().enumerate() {
            for band in [0u32, 6, 15] {
                for off in [0i64, 50, 96] {
                    let floor = (band as f32 * p.band_semitones * 16.0) as i64;
                    let tr = StoredTriplet {
                        key: (0x3ab_cd00 + i as u32) << 6 | band,
                        t,
                        l: (floor + off) as u16,
                        span: [32u16, 250, 496][i],
                    };
                    let (row, value) = triplet_posting(&tr);
                    assert_eq!(row, TRIPLET_KEYS + (tr.key >> BAND_BITS) as i64);
                    assert_eq!(triplet_of((row - TRIPLET_KEYS) as u32, value), tr);
                    if band == 0 && off == 0 {
                        assert!(last.is_none_or(|l| l < value));
                        last = Some(value);
                    }
                }
            }
        }
    }
}
