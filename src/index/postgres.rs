//! PostgreSQL store: one reference set shared by scanners and analysts on many machines.
//!
//! Design notes:
//! - Tables are prefixed `nasheed_`, so the index can live in a database shared with other
//!   tools (HMA keeps its banks in PostgreSQL too).
//! - Postings are rows keyed by (hash, track) whose `frames` holds the track's frames for that
//!   hash, delta-encoded varints: a lookup is one `hash = ANY($1)` statement per batch of
//!   hashes, a removal is one cascading delete. Rows go in through `COPY ... BINARY`.
//! - Triplets (derived from the peaks, see [`super::triplets_of`]) are one row each: a track
//!   seldom stores a key twice, so grouping them per (key, track) as postings are would save
//!   few rows. They go in and out like postings.
//! - Every track is one transaction (its row, postings, triplets, peaks and a change-log
//!   entry): a crash or a killed writer loses at most the track in flight, readers never see
//!   half of one, and foreign keys leave no orphan postings or triplets.
//! - Two writers adding the same content: `sha256` is UNIQUE and the insert is `ON CONFLICT DO
//!   NOTHING`, so one stores it and the other is told [`IndexError::AlreadyIndexed`].
//! - `nasheed_changes` logs every track added or removed with a sequence number: the feed a
//!   replica polls to stay current.
//! - Schema changes are append-only migrations, applied under a transaction-scoped advisory
//!   lock (two processes setting up one new database do it once), the version in
//!   `nasheed_meta`.
//! - The password never appears in a message: the location is shown without it, and
//!   `PGPASSWORD` or the password file (`~/.pgpass`) is read when the URL carries none, as
//!   libpq does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

use super::{IndexError, Metadata, NewTrack, Result, Stats, Store, TrackId, TrackInfo};
use crate::fingerprint::triplets::StoredTriplet;
use crate::fingerprint::{Landmark, Peak, Prints};

/// Migrations, in order; `schema_version` in `nasheed_meta` = number applied.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE nasheed_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE nasheed_tracks (
        id BIGSERIAL PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        duration_s DOUBLE PRECISION NOT NULL,
        n_hashes BIGINT NOT NULL,
        indexed_at TEXT NOT NULL
            DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        peaks BYTEA NOT NULL
     );
     CREATE TABLE nasheed_postings (
        hash INTEGER NOT NULL,
        track BIGINT NOT NULL REFERENCES nasheed_tracks (id) ON DELETE CASCADE,
        frames BYTEA NOT NULL,
        PRIMARY KEY (hash, track)
     );
     CREATE INDEX nasheed_postings_track ON nasheed_postings (track);
     CREATE TABLE nasheed_changes (
        seq BIGSERIAL PRIMARY KEY,
        op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
        track BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL DEFAULT now()
     );",
    // 2: triplets; `shape` = l << 16 | span. The primary key serves lookups by key, the
    // index on track the cascading delete.
    "CREATE TABLE nasheed_triplets (
        key INTEGER NOT NULL,
        track BIGINT NOT NULL REFERENCES nasheed_tracks (id) ON DELETE CASCADE,
        t INTEGER NOT NULL,
        shape BIGINT NOT NULL,
        PRIMARY KEY (key, track, t, shape)
     );
     CREATE INDEX nasheed_triplets_track ON nasheed_triplets (track);",
];

/// Schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Key of the advisory lock taken while migrating ("NSHD").
const MIGRATION_LOCK: i64 = 0x4E53_4844;

/// Hashes per lookup statement.
const LOOKUP_BATCH: usize = 4096;

/// Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_url(location: &std::path::Path) -> bool {
    location
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(pair) => pair,
        None => return url.to_string(),
    };
    let user = auth.split(':').next().unwrap_or_default();
    format!("{scheme}://{user}@{host}")
}

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Existing tables only; nothing is written.
    Read,
    /// Existing tables, written.
    Write,
    /// Written; the tables are created when missing.
    Create,
}

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    // Queries need `&mut Client`; the store is used from one thread at a time (each matcher
    // opens its own connection).
    client: RefCell<Client>,
    /// The location without its password, for messages.
    shown: PathBuf,
    params_id: String,
}

impl From<postgres::Error> for IndexError {
    fn from(e: postgres::Error) -> Self {
        IndexError::Backend(Box::new(e))
    }
}

impl PostgresStore {
    /// Connects to `url` and opens the index there. `params_id`: this build's fingerprint id
    /// (a new index records it, an existing one must match); `None` to inspect any.
    pub fn open(url: &str, params_id: Option<&str>, mode: Mode) -> Result<Self> {
        let shown = PathBuf::from(redact(url));
        let mut config: postgres::Config = url.parse().map_err(|e| IndexError::CannotOpen {
            path: shown.clone(),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        if config.get_password().is_none() {
            if let Some(p) = password_for(&config) {
                config.password(p);
            }
        }
        config.application_name("nasheed");
        let mut client = config.connect(NoTls).map_err(|e| IndexError::CannotOpen {
            path: shown.clone(),
            reason: format!("cannot connect: {e}"),
        })?;
        let version = schema_version(&mut client)?;
        if version > SCHEMA_VERSION {
            return Err(IndexError::NewerSchema {
                path: shown,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        // Another build's index is refused before anything is written to it (not even a
        // migration: that build may still want to open it).
        if let (true, Some(current)) = (version > 0, params_id) {
            let stored: Option<String> = client
                .query_opt(
                    "SELECT value FROM nasheed_meta WHERE key = 'params_id'",
                    &[],
                )?
                .map(|r| r.get(0));
            if let Some(stored) = stored.filter(|s| s != current) {
                return Err(IndexError::ParamsMismatch {
                    path: shown,
                    stored,
                    current: current.to_string(),
                });
            }
        }
        if version < SCHEMA_VERSION {
            match mode {
                Mode::Create => migrate(&mut client, params_id.unwrap_or_default())?,
                _ if version == 0 => return Err(IndexError::Missing(shown)),
                // Migrating is a write: a reader of an older schema is told to upgrade it.
                _ => {
                    return Err(IndexError::NotAnIndex {
                        path: shown,
                        what: format!(
                            "schema version {version}: open it once for writing to upgrade"
                        ),
                    })
                }
            }
        }
        let stored: Option<String> = client
            .query_opt(
                "SELECT value FROM nasheed_meta WHERE key = 'params_id'",
                &[],
            )?
            .map(|r| r.get(0));
        let params_id = match (stored, params_id) {
            (Some(s), Some(p)) if s != p => {
                return Err(IndexError::ParamsMismatch {
                    path: shown,
                    stored: s,
                    current: p.to_string(),
                })
            }
            (Some(s), _) => s,
            (None, _) => {
                return Err(IndexError::NotAnIndex {
                    path: shown,
                    what: "no fingerprint-parameter id recorded".into(),
                })
            }
        };
        Ok(PostgresStore {
            client: RefCell::new(client),
            shown,
            params_id,
        })
    }

    /// This index's identity, made when its tables were (a database made again gets another).
    pub fn index_id(&self) -> Result<String> {
        Ok(self
            .client
            .borrow_mut()
            .query_opt("SELECT value FROM nasheed_meta WHERE key = 'index_id'", &[])?
            .map(|r| r.get(0))
            .unwrap_or_default())
    }

    /// The change log's last sequence number (0 when empty).
    pub fn last_change(&self) -> Result<i64> {
        Ok(self
            .client
            .borrow_mut()
            .query_one(
                "SELECT COALESCE(MAX(seq), 0)::BIGINT FROM nasheed_changes",
                &[],
            )?
            .get(0))
    }

    /// Change-log entries after `seq`: (seq, op, track, sha256), oldest first, at most `limit`.
    pub fn changes_since(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, TrackId, String)>> {
        let rows = self.client.borrow_mut().query(
            "SELECT seq, op, track, sha256 FROM nasheed_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&seq, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), TrackId(r.get(2)), r.get(3)))
            .collect())
    }

    fn info(r: &postgres::Row) -> Result<TrackInfo> {
        let id: i64 = r.get(0);
        let meta: String = r.get(4);
        Ok(TrackInfo {
            id: TrackId(id),
            path: r.get(1),
            sha256: r.get(2),
            title: r.get(3),
            meta: serde_json::from_str::<Metadata>(&meta)
                .map_err(|_| IndexError::CorruptTrack(id))?,
            duration_s: r.get(5),
            n_hashes: r.get::<_, i64>(6) as u64,
            indexed_at: r.get(7),
        })
    }
}

/// The password libpq would use when the URL has none: `PGPASSWORD`, else the first matching
/// line of the password file (`PGPASSFILE`, else `~/.pgpass`), which libpq ignores unless only
/// its owner can read it, and so does this.
fn password_for(config: &postgres::Config) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&file).ok()?.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, [&host, &port, db, user])
}

/// The password of the first `host:port:database:user:password` line of a password file whose
/// fields match `want` (`*` matches anything; `\:` and `\\` escape).
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

/// The schema version recorded, 0 when the tables do not exist.
fn schema_version(client: &mut impl postgres::GenericClient) -> Result<i64> {
    let exists: bool = client
        .query_one("SELECT to_regclass('nasheed_meta') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<String> = client
        .query_opt(
            "SELECT value FROM nasheed_meta WHERE key = 'schema_version'",
            &[],
        )?
        .map(|r| r.get(0));
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Applies the missing migrations in one transaction under the advisory lock, the version
/// read again inside it (another process may have migrated meanwhile).
fn migrate(client: &mut Client, params_id: &str) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let version = schema_version(&mut tx)?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(m)?;
        tx.execute(
            "INSERT INTO nasheed_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&(i as i64 + 1).to_string()],
        )?;
    }
    tx.execute(
        "INSERT INTO nasheed_meta (key, value) VALUES ('params_id', $1) ON CONFLICT (key) DO NOTHING",
        &[&params_id],
    )?;
    // This index's identity: a replica of a database that was dropped and made again (its log
    // starting over) must not be taken for up to date.
    tx.execute(
        "INSERT INTO nasheed_meta (key, value)
         VALUES ('index_id', md5(random()::TEXT || clock_timestamp()::TEXT))
         ON CONFLICT (key) DO NOTHING",
        &[],
    )?;
    tx.commit()?;
    Ok(())
}

/// A track's postings: (hash, frames delta-encoded), sorted by hash; frames sorted, unique.
/// Also the number of distinct landmarks they hold.
fn postings_of(prints: &Prints) -> (Vec<(u32, Vec<u8>)>, usize) {
    let mut rows: Vec<(u32, u32)> = prints.landmarks.iter().map(|l| (l.hash, l.frame)).collect();
    rows.sort_unstable();
    rows.dedup();
    let landmarks = rows.len();
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut last = 0u32;
    for (h, f) in rows {
        match out.last_mut() {
            Some((hash, bytes)) if *hash == h => {
                super::put_varint(bytes, (f - last) as u64);
            }
            _ => {
                let mut bytes = Vec::with_capacity(4);
                super::put_varint(&mut bytes, f as u64);
                out.push((h, bytes));
            }
        }
        last = f;
    }
    (out, landmarks)
}

/// Inverse of the frame encoding of [`postings_of`]; `None` if malformed.
fn decode_frames(mut data: &[u8], out: &mut Vec<u32>) -> Option<()> {
    out.clear();
    let mut t = 0u32;
    while !data.is_empty() {
        let d = u32::try_from(super::get_varint(&mut data)?).ok()?;
        t = if out.is_empty() { d } else { t.checked_add(d)? };
        out.push(t);
    }
    Some(())
}

/// Inserts one track inside `tx`; `None` when its SHA-256 is already stored (by anyone).
fn insert_track(
    tx: &mut postgres::Transaction<'_>,
    track: &NewTrack,
    prints: &Prints,
) -> Result<Option<TrackId>> {
    let (postings, landmarks) = postings_of(prints);
    let n = landmarks as i64;
    let meta = serde_json::to_string(&track.meta).unwrap_or_else(|_| "{}".into());
    let row = tx.query_opt(
        "INSERT INTO nasheed_tracks (path, sha256, title, meta, duration_s, n_hashes, peaks)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (sha256) DO NOTHING RETURNING id",
        &[
            &track.path,
            &track.sha256,
            &track.title,
            &meta,
            &track.duration_s,
            &n,
            &super::encode_peaks(&prints.peaks, super::PeakFormat::Refined),
        ],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let sink = tx.copy_in("COPY nasheed_postings (hash, track, frames) FROM STDIN BINARY")?;
    let mut w = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::INT8, Type::BYTEA]);
    for (hash, frames) in &postings {
        // Hashes are 32-bit patterns; INTEGER is signed: stored bit for bit.
        w.write(&[&(*hash as i32), &id, frames])?;
    }
    w.finish()?;
    let sink = tx.copy_in("COPY nasheed_triplets (key, track, t, shape) FROM STDIN BINARY")?;
    let mut w = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::INT8, Type::INT4, Type::INT8]);
    for tr in super::triplets_of(prints) {
        // `t` is a u32 in INTEGER: stored bit for bit, like hashes.
        w.write(&[&(tr.key as i32), &id, &(tr.t as i32), &shape(&tr)])?;
    }
    w.finish()?;
    tx.execute(
        "INSERT INTO nasheed_changes (op, track, sha256) VALUES ('add', $1, $2)",
        &[&id, &track.sha256],
    )?;
    Ok(Some(TrackId(id)))
}

/// A triplet's anchor frequency and span in one column, as the SQLite store keeps them.
fn shape(t: &StoredTriplet) -> i64 {
    ((t.l as i64) << 16) | t.span as i64
}

const TRACK_COLUMNS: &str = "id, path, sha256, title, meta, duration_s, n_hashes, indexed_at";

/// A read-only transaction on one snapshot: every batch of a lookup sees the index as of one
/// moment, even while a writer commits.
fn snapshot(client: &mut Client) -> Result<postgres::Transaction<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

impl Store for PostgresStore {
    fn params_id(&self) -> &str {
        &self.params_id
    }

    fn add_track(&mut self, track: &NewTrack, prints: &Prints) -> Result<TrackId> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction()?;
        match insert_track(&mut tx, track, prints)? {
            Some(id) => {
                tx.commit()?;
                Ok(id)
            }
            None => {
                drop(tx);
                let row = client.query_one(
                    "SELECT id FROM nasheed_tracks WHERE sha256 = $1",
                    &[&track.sha256],
                )?;
                Err(IndexError::AlreadyIndexed(TrackId(row.get(0))))
            }
        }
    }

    fn add_tracks(&mut self, tracks: &[(NewTrack, Prints)]) -> Result<(usize, usize)> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction()?;
        let (mut added, mut skipped) = (0, 0);
        for (track, prints) in tracks {
            match insert_track(&mut tx, track, prints)? {
                Some(_) => added += 1,
                None => skipped += 1,
            }
        }
        tx.commit()?;
        Ok((added, skipped))
    }

    fn landmarks(&self, ids: &[TrackId]) -> Result<HashMap<TrackId, Vec<Landmark>>> {
        let mut out: HashMap<TrackId, Vec<Landmark>> =
            ids.iter().map(|&t| (t, Vec::new())).collect();
        let wanted: Vec<i64> = ids.iter().map(|t| t.0).collect();
        let rows = self.client.borrow_mut().query(
            "SELECT hash, track, frames FROM nasheed_postings WHERE track = ANY($1)",
            &[&wanted],
        )?;
        let mut frames = Vec::new();
        for r in rows {
            let hash = r.get::<_, i32>(0) as u32;
            let track = TrackId(r.get(1));
            decode_frames(r.get(2), &mut frames).ok_or(IndexError::CorruptPostings(hash as i64))?;
            if let Some(v) = out.get_mut(&track) {
                v.extend(frames.iter().map(|&frame| Landmark { hash, frame }));
            }
        }
        for v in out.values_mut() {
            v.sort_unstable_by_key(|l| (l.hash, l.frame));
        }
        Ok(out)
    }

    fn peaks(&self, id: TrackId) -> Result<Vec<Peak>> {
        let row = self
            .client
            .borrow_mut()
            .query_opt("SELECT peaks FROM nasheed_tracks WHERE id = $1", &[&id.0])?;
        match row {
            None => Ok(Vec::new()),
            Some(r) => super::decode_peaks(r.get(0), super::PeakFormat::of(&self.params_id))
                .ok_or(IndexError::CorruptTrack(id.0)),
        }
    }

    fn find_sha(&self, sha256: &str) -> Result<Option<TrackId>> {
        Ok(self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT id FROM nasheed_tracks WHERE sha256 = $1",
                &[&sha256],
            )?
            .map(|r| TrackId(r.get(0))))
    }

    fn find_sha_prefix(&self, prefix: &str) -> Result<Vec<TrackId>> {
        let rows = self.client.borrow_mut().query(
            "SELECT id FROM nasheed_tracks WHERE sha256 >= $1 AND sha256 < $2 ORDER BY id LIMIT $3",
            &[
                &prefix,
                &format!("{prefix}g"),
                &(super::SHA_PREFIX_LIMIT as i64),
            ],
        )?;
        Ok(rows.iter().map(|r| TrackId(r.get(0))).collect())
    }

    fn lookup_triplets(
        &self,
        keys: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(TrackId, StoredTriplet),
    ) -> Result<()> {
        let keys = super::distinct(keys);
        if keys.is_empty() {
            return Ok(());
        }
        let mut client = self.client.borrow_mut();
        let mut tx = snapshot(&mut client)?;
        let statement = tx.prepare_typed(
            "SELECT key, track, t, shape FROM nasheed_triplets WHERE key = ANY($1)",
            &[Type::INT4_ARRAY],
        )?;
        let mut found: Vec<(u32, i64, u32, i64)> = Vec::new();
        for chunk in keys.chunks(LOOKUP_BATCH) {
            let batch: Vec<i32> = chunk.iter().map(|&k| k as i32).collect();
            found.clear();
            for r in tx.query(&statement, &[&batch])? {
                found.push((
                    r.get::<_, i32>(0) as u32,
                    r.get(1),
                    r.get::<_, i32>(2) as u32,
                    r.get(3),
                ));
            }
            found.sort_unstable();
            // Every row of a key is in this batch, so its count here is its count in the store.
            for group in found.chunk_by(|a, b| a.0 == b.0) {
                if group.len() > cap {
                    continue;
                }
                for &(key, track, t, shape) in group {
                    hit(
                        TrackId(track),
                        StoredTriplet {
                            key,
                            t,
                            l: (shape >> 16) as u16,
                            span: shape as u16,
                        },
                    );
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let mut client = self.client.borrow_mut();
        let mut tx = snapshot(&mut client)?;
        let statement = tx.prepare_typed(
            "SELECT hash, track, frames FROM nasheed_postings WHERE hash = ANY($1)",
            &[Type::INT4_ARRAY],
        )?;
        let mut found: Vec<(u32, i64, u32)> = Vec::new();
        let mut frames = Vec::new();
        for chunk in hashes.chunks(LOOKUP_BATCH) {
            let batch: Vec<i32> = chunk.iter().map(|&h| h as i32).collect();
            found.clear();
            for r in tx.query(&statement, &[&batch])? {
                let hash = r.get::<_, i32>(0) as u32;
                let track: i64 = r.get(1);
                decode_frames(r.get(2), &mut frames)
                    .ok_or(IndexError::CorruptPostings(hash as i64))?;
                found.extend(frames.iter().map(|&t| (hash, track, t)));
            }
            // The order the SQLite store hands hits in: by hash, then track, then frame.
            found.sort_unstable();
            for group in found.chunk_by(|a, b| a.0 == b.0) {
                for &(hash, track, t) in group.iter().filter(|_| group.len() <= cap) {
                    hit(hash, TrackId(track), t);
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn track(&self, id: TrackId) -> Result<Option<TrackInfo>> {
        self.client
            .borrow_mut()
            .query_opt(
                &format!("SELECT {TRACK_COLUMNS} FROM nasheed_tracks WHERE id = $1"),
                &[&id.0],
            )?
            .map(|r| Self::info(&r))
            .transpose()
    }

    fn tracks(&self) -> Result<Vec<TrackInfo>> {
        self.client
            .borrow_mut()
            .query(
                &format!("SELECT {TRACK_COLUMNS} FROM nasheed_tracks ORDER BY id"),
                &[],
            )?
            .iter()
            .map(Self::info)
            .collect()
    }

    fn remove(&mut self, id: TrackId) -> Result<bool> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction()?;
        let gone = tx.query_opt(
            "DELETE FROM nasheed_tracks WHERE id = $1 RETURNING sha256",
            &[&id.0],
        )?;
        let Some(row) = gone else {
            return Ok(false);
        };
        let sha: String = row.get(0);
        tx.execute(
            "INSERT INTO nasheed_changes (op, track, sha256) VALUES ('remove', $1, $2)",
            &[&id.0, &sha],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn set_info(&mut self, edits: &[(TrackId, String, Metadata)]) -> Result<usize> {
        let mut client = self.client.borrow_mut();
        let mut tx = client.transaction()?;
        let mut n = 0;
        for (id, title, meta) in edits {
            let meta = serde_json::to_string(meta).unwrap_or_else(|_| "{}".into());
            n += tx.execute(
                "UPDATE nasheed_tracks SET title = $2, meta = $3 WHERE id = $1",
                &[&id.0, title, &meta],
            )? as usize;
        }
        tx.commit()?;
        Ok(n)
    }

    fn stats(&self) -> Result<Stats> {
        let mut client = self.client.borrow_mut();
        let r = client.query_one(
            "SELECT COUNT(*), COALESCE(SUM(n_hashes), 0)::BIGINT, COALESCE(SUM(duration_s), 0)
             FROM nasheed_tracks",
            &[],
        )?;
        let bytes: i64 = client
            .query_one(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c
                 WHERE c.relname IN ('nasheed_meta', 'nasheed_tracks', 'nasheed_postings',
                                     'nasheed_triplets', 'nasheed_changes')
                   AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
                &[],
            )?
            .get(0);
        Ok(Stats {
            tracks: r.get::<_, i64>(0) as u64,
            hashes: r.get::<_, i64>(1) as u64,
            audio_hours: r.get::<_, f64>(2) / 3600.0,
            bytes: bytes as u64,
            params_id: self.params_id.clone(),
        })
    }

    fn compact(&mut self) -> Result<()> {
        // Plain VACUUM: reclaims deleted rows' space for reuse and refreshes the planner's
        // statistics, without the exclusive lock of VACUUM FULL (scanners keep reading).
        self.client
            .borrow_mut()
            .batch_execute("VACUUM (ANALYZE) nasheed_postings, nasheed_triplets, nasheed_tracks")?;
        Ok(())
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresStore({})", self.shown.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://u:s3cret@db:5432/x"),
            "postgres://u@db:5432/x"
        );
        assert_eq!(redact("postgresql://u@db/x"), "postgresql://u@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn password_file_lines_match_field_by_field() {
        let text = "# comment\n\
                    db1:5432:other:ana:wrong\n\
                    db1:5432:*:ana:p\\:ss\n\
                    *:*:*:*:fallback\n";
        let want = |h, p, d, u| pgpass_lookup(text, [h, p, d, u]);
        assert_eq!(want("db1", "5432", "refs", "ana").as_deref(), Some("p:ss"));
        assert_eq!(
            want("db1", "5432", "other", "ana").as_deref(),
            Some("wrong")
        );
        assert_eq!(
            want("db2", "5433", "refs", "bo").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup("db1:5432:x:y\n", ["db1", "5432", "x", "y"]),
            None
        );
    }

    #[test]
    fn frames_round_trip_per_hash() {
        let prints = Prints {
            landmarks: [(5u32, 9u32), (5, 2), (7, 1), (5, 9), (5, 40)]
                .iter()
                .map(|&(hash, frame)| Landmark { hash, frame })
                .collect(),
            peaks: Vec::new(),
        };
        let (rows, landmarks) = postings_of(&prints);
        assert_eq!((rows.len(), landmarks), (2, 4));
        let mut v = Vec::new();
        decode_frames(&rows[0].1, &mut v).unwrap();
        assert_eq!((rows[0].0, v.clone()), (5, vec![2, 9, 40]));
        decode_frames(&rows[1].1, &mut v).unwrap();
        assert_eq!((rows[1].0, v), (7, vec![1]));
        assert!(decode_frames(&[0x80], &mut Vec::new()).is_none());
    }
}
