//! The command-line front end: resolves arguments into engine calls and prints the results.
//! The only module that writes to stdout/stderr.

pub mod args;
pub mod output;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use nasheed::engine::{self, IndexEvent, IndexJob};
use nasheed::fingerprint::{FingerprintParams, Prints, Side};
use nasheed::index::{Metadata, SqliteStore, Store, TrackId};
use nasheed::matching::MatchParams;
use nasheed::pack;
use nasheed::Scanner;

use args::{Args, Command, Format};
use output::{MatchRecord, ScanRecord, ScanWriter};

/// How a command ended, mapped to the exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: scan found at least one match.
    Matched,
    /// Exit 2: a failure (for scan: no match, and an input could not be read).
    Failed,
}

/// Runs one command.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let params = FingerprintParams::default();
    match args.command {
        Command::Index {
            paths,
            title,
            meta,
            meta_csv,
        } => index(&args.db, &params, paths, title, meta, meta_csv),
        Command::Scan {
            paths,
            format,
            min_confidence,
        } => scan(&args.db, &params, &paths, format, min_confidence),
        Command::List { format } => list(&args.db, &params, format),
        Command::Stats { format } => stats(&args.db, &params, format),
        Command::Remove { ids } => remove(&args.db, &params, &ids),
        Command::Export { out, ids, filter } => export(&args.db, &params, out, &ids, filter),
        Command::Import { packs } => import(&args.db, &params, &packs),
    }
}

fn index(
    db: &Path,
    params: &FingerprintParams,
    paths: Vec<PathBuf>,
    title: Option<String>,
    meta: Vec<String>,
    meta_csv: Option<PathBuf>,
) -> anyhow::Result<Outcome> {
    let mut common = Metadata::new();
    for kv in &meta {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--meta {kv}: expected KEY=VALUE")
        };
        common.insert(k.trim().to_string(), v.to_string());
    }
    let rows = match &meta_csv {
        Some(p) => read_meta_csv(p)?,
        None => HashMap::new(),
    };
    let mut failures: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for item in engine::expand_inputs(&paths) {
        match item {
            Ok(p) => files.push(p),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if title.is_some() && files.len() != 1 {
        bail!("--title needs exactly one file ({} given)", files.len());
    }
    let jobs: Vec<IndexJob> = files
        .into_iter()
        .map(|path| {
            let mut meta = common.clone();
            let mut job_title = title.clone();
            if let Some(row) = lookup_row(&rows, &path) {
                for (k, v) in row {
                    if k == "title" {
                        job_title = Some(v.clone());
                    } else {
                        meta.insert(k.clone(), v.clone());
                    }
                }
            }
            IndexJob {
                path,
                title: job_title,
                meta,
            }
        })
        .collect();
    let mut store = SqliteStore::open(db, &params.id())
        .with_context(|| format!("opening index {}", db.display()))?;
    let bar = progress_bar(jobs.len() as u64);
    let started = Instant::now();
    let cpu0 = nasheed::eval::cpu_seconds();
    let summary = engine::index_files(&mut store, jobs, params, &mut |ev| {
        match ev {
            IndexEvent::Failed { error, .. } => {
                let line = error.to_string();
                match &bar {
                    Some(b) => b.println(format!("error: {line}")),
                    None => eprintln!("error: {line}"),
                }
                failures.push(line);
            }
            IndexEvent::Indexed { path, .. } | IndexEvent::Skipped { path, .. } => {
                if let Some(b) = &bar {
                    b.set_message(
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                }
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = nasheed::eval::cpu_seconds() - cpu0;
    eprintln!(
        "indexed {}, skipped {} (already indexed), failed {}; {:.2} h of audio in {:.1} s: {:.0}× real time ({:.0}× per CPU-second)",
        summary.indexed,
        summary.skipped,
        failures.len(),
        summary.audio_s / 3600.0,
        wall,
        summary.audio_s / wall.max(1e-9),
        summary.audio_s / cpu.max(1e-9),
    );
    for f in &failures {
        eprintln!("  failed: {f}");
    }
    if let Some(e) = &summary.compact_error {
        eprintln!("warning: the tracks are stored, but compacting the index failed: {e}");
    }
    Ok(if failures.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Rows of a metadata CSV keyed by path; the header names the columns (`path` required).
fn read_meta_csv(path: &Path) -> anyhow::Result<HashMap<String, Vec<(String, String)>>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .clone();
    let Some(pcol) = headers.iter().position(|h| h == "path") else {
        bail!("{}: the header has no `path` column", path.display())
    };
    let mut out = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        let key = rec.get(pcol).unwrap_or_default().to_string();
        let fields = headers
            .iter()
            .zip(rec.iter())
            .filter(|(h, v)| *h != "path" && !v.is_empty())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        out.insert(key, fields);
    }
    Ok(out)
}

/// The CSV row for a file: by the path as given, then by canonical path, then by file name.
fn lookup_row<'a>(
    rows: &'a HashMap<String, Vec<(String, String)>>,
    path: &Path,
) -> Option<&'a Vec<(String, String)>> {
    if rows.is_empty() {
        return None;
    }
    rows.get(&path.display().to_string())
        .or_else(|| {
            let canon = path.canonicalize().ok()?;
            rows.iter()
                .find(|(k, _)| Path::new(k).canonicalize().ok().as_ref() == Some(&canon))
                .map(|(_, v)| v)
        })
        .or_else(|| rows.get(path.file_name()?.to_str()?))
}

fn progress_bar(n: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} files, {elapsed} (eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn scan(
    db: &Path,
    params: &FingerprintParams,
    paths: &[PathBuf],
    format: Format,
    min_confidence: Option<f64>,
) -> anyhow::Result<Outcome> {
    let mut mp = MatchParams::default();
    if let Some(c) = min_confidence {
        mp.min_confidence = c;
    }
    // Opened before stdin is read, so a bad index is reported at once.
    let mut stores = vec![open_for_reading(db, params)?];
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("stdin (-) can be scanned only once per run");
    }
    let mut spool = Spool(None);
    let mut inputs: Vec<(String, Result<PathBuf, String>)> = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let tmp = spool_stdin(&mut spool).context("reading stdin")?;
            inputs.push(("-".into(), Ok(tmp)));
            continue;
        }
        for item in engine::expand_inputs(std::slice::from_ref(p)) {
            match item {
                Ok(f) => inputs.push((f.display().to_string(), Ok(f))),
                Err(e) => inputs.push((p.display().to_string(), Err(e.to_string()))),
            }
        }
    }
    // One matcher per core, each with its own index connection (SQLite readers run side by
    // side). Packs are loaded into memory, once: they get a single matcher.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !pack::is_pack_source(db) {
        for _ in 1..cores.min(inputs.len()) {
            stores.push(open_for_reading(db, params)?);
        }
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let order = InOrder::new(SCAN_LOOKAHEAD);
    let stdout = std::io::stdout().lock();
    let mut writer = ScanWriter::new(std::io::BufWriter::new(stdout), format);
    let (mut matched, mut unreadable) = (false, false);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, anyhow::Result<ScanRecord>)>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for store in stores {
            let (tx, inputs, next, stop, order, mp) =
                (tx.clone(), &inputs, &next, &stop, &order, &mp);
            scope.spawn(move || {
                let scanner = Scanner::new(&store, params, mp);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, input)) = inputs.get(i) else {
                        break;
                    };
                    // Not too far ahead of the printer: a slow input holds back its successors'
                    // output, and they wait in memory.
                    if !order.wait_turn(i, stop) {
                        break;
                    }
                    let record = scan_one(&scanner, name, input.clone(), params, stop);
                    if tx.send((i, record)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let result = (|| {
            for (i, record) in rx.iter() {
                for record in order.arrived(i, record) {
                    let record = record?;
                    matched |= !record.matches.is_empty();
                    unreadable |= record.error.is_some();
                    // In machine formats errors also go to stderr, so a pipeline reading stdout
                    // still sees them.
                    if let (Some(e), true) = (&record.error, format != Format::Text) {
                        eprintln!("error: {e}");
                    }
                    if let Err(e) = writer.write(&record) {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            return Ok(());
                        }
                        return Err(e.into());
                    }
                }
            }
            Ok(())
        })();
        // Whatever ended the loop, the matchers stop taking inputs.
        stop.store(true, Ordering::Relaxed);
        order.release();
        drop(rx);
        result
    })?;
    match writer.finish() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if matched {
        Outcome::Matched
    } else if unreadable {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// Inputs a matcher may run ahead of the first one not yet printed.
const SCAN_LOOKAHEAD: usize = 32;

/// Puts results that arrive in any order back into input order, and holds matchers back from
/// running more than `lookahead` inputs ahead of the printer.
struct InOrder<T> {
    state: std::sync::Mutex<(usize, std::collections::BTreeMap<usize, T>)>,
    turn: std::sync::Condvar,
    lookahead: usize,
}

impl<T> InOrder<T> {
    fn new(lookahead: usize) -> Self {
        InOrder {
            state: std::sync::Mutex::new((0, std::collections::BTreeMap::new())),
            turn: std::sync::Condvar::new(),
            lookahead,
        }
    }

    /// Blocks until input `i` is within the lookahead; false if the scan is stopping.
    fn wait_turn(&self, i: usize, stop: &AtomicBool) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        while i >= state.0 + self.lookahead && !stop.load(Ordering::Relaxed) {
            state = match self.turn.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        !stop.load(Ordering::Relaxed)
    }

    /// Takes result `i`; returns the results now due, in input order.
    fn arrived(&self, i: usize, item: T) -> Vec<T> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.1.insert(i, item);
        let mut due = Vec::new();
        loop {
            let next = state.0;
            let Some(item) = state.1.remove(&next) else {
                break;
            };
            due.push(item);
            state.0 += 1;
        }
        self.turn.notify_all();
        due
    }

    /// Wakes every waiting matcher (the scan is stopping).
    fn release(&self) {
        let _guard = self.state.lock();
        self.turn.notify_all();
    }
}

/// Decodes, fingerprints and matches one input: decoding runs on its own thread and hands its
/// prints over a short channel, so a long upload streams through with flat memory. An index
/// error is the only `Err`; an unreadable input is a record with its error.
fn scan_one(
    scanner: &Scanner,
    name: &str,
    input: Result<PathBuf, String>,
    params: &FingerprintParams,
    stop: &AtomicBool,
) -> anyhow::Result<ScanRecord> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(4);
        scope.spawn(move || produce(input, name, params, tx));
        let mut stream = scanner.stream();
        let mut end = Err("decoder stopped".to_string());
        for piece in rx {
            if stop.load(Ordering::Relaxed) {
                // The scan is ending: the decoder stops sending and runs out its file.
                break;
            }
            match piece {
                Piece::Prints(prints, done) => stream.push(prints, done)?,
                Piece::End(e) => end = e,
            }
        }
        Ok(match end {
            Ok((frames, duration_s)) => {
                let found = stream.finish(frames, duration_s)?;
                ScanRecord {
                    path: name.to_string(),
                    duration_s: (duration_s * 1000.0).round() / 1000.0,
                    error: None,
                    matches: found.iter().map(MatchRecord::from).collect(),
                }
            }
            Err(e) => ScanRecord {
                path: name.to_string(),
                duration_s: 0.0,
                error: Some(e),
                matches: Vec::new(),
            },
        })
    })
}

/// What an input's decoding thread hands the matcher.
enum Piece {
    /// Prints final before the given frame.
    Prints(Prints, u32),
    /// The end: (frames, seconds) or a one-line error naming the input.
    End(Result<(u32, f64), String>),
}

/// Decodes and fingerprints one input, sending its prints as they come. If the matcher hung up
/// (the scan is ending) it stops sending and runs out the file.
fn produce(
    input: Result<PathBuf, String>,
    name: &str,
    params: &FingerprintParams,
    tx: std::sync::mpsc::SyncSender<Piece>,
) {
    let end = match input {
        Ok(path) => {
            let mut open = true;
            engine::stream_file(&path, params, Side::Query, &mut |prints, done| {
                open = open && tx.send(Piece::Prints(prints, done)).is_ok();
            })
            .map(|fp| (fp.frames, fp.duration_s))
            .map_err(|e| rename(&e.to_string(), &path, name))
        }
        Err(e) => Err(e),
    };
    let _ = tx.send(Piece::End(end));
}

/// Error messages name the spooled temp file for stdin; show `-` instead.
fn rename(msg: &str, path: &Path, name: &str) -> String {
    msg.replace(&path.display().to_string(), name)
}

/// A spooled stdin file, removed when the scan ends, also on an error or a broken pipe (not when
/// the process is killed).
struct Spool(Option<PathBuf>);

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn spool_stdin(spool: &mut Spool) -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("nasheed-stdin-{}-{nanos}", std::process::id());
    let path = std::env::temp_dir().join(name);
    // A new file only: never follow a link or reuse a file someone left there.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    spool.0 = Some(path.clone());
    std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
    f.flush()?;
    Ok(path)
}

fn list(db: &Path, params: &FingerprintParams, format: Format) -> anyhow::Result<Outcome> {
    let store = open_for_reading(db, params)?;
    let tracks = store.tracks()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let res = if format == Format::Json || format == Format::Jsonl {
        serde_json::to_writer_pretty(&mut out, &tracks)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        tracks.iter().try_for_each(|t| {
            let meta: Vec<String> = t.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(
                out,
                "{}\t{}\t{:.1}s\t{}\t{}",
                t.id.0,
                t.title,
                t.duration_s,
                t.path,
                meta.join(" ")
            )
        })
    };
    finish_print(res.and_then(|_| out.flush()))
}

fn stats(db: &Path, params: &FingerprintParams, format: Format) -> anyhow::Result<Outcome> {
    let store = open_for_reading(db, params)?;
    let s = store.stats()?;
    let mut out = std::io::stdout().lock();
    let res = if format == Format::Json || format == Format::Jsonl {
        serde_json::to_writer_pretty(&mut out, &s)
            .map_err(std::io::Error::from)
            .and_then(|_| writeln!(out))
    } else {
        writeln!(
            out,
            "tracks: {}\nhashes: {}\naudio: {:.2} h\nsize: {:.1} MB ({:.2} MB per audio hour)\nparameters: {}",
            s.tracks,
            s.hashes,
            s.audio_hours,
            s.bytes as f64 / 1e6,
            s.bytes as f64 / 1e6 / s.audio_hours.max(1e-9),
            s.params_id
        )
    };
    finish_print(res)
}

fn remove(db: &Path, params: &FingerprintParams, ids: &[i64]) -> anyhow::Result<Outcome> {
    let mut store = SqliteStore::open_existing(db, &params.id())?;
    let mut missing = 0;
    for &id in ids {
        if store.remove(TrackId(id))? {
            eprintln!("removed {id}");
        } else {
            eprintln!("error: no track with id {id}");
            missing += 1;
        }
    }
    Ok(if missing == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// An index database, or a pack / folder of packs loaded into memory.
fn open_for_reading(db: &Path, params: &FingerprintParams) -> anyhow::Result<SqliteStore> {
    if pack::is_pack_source(db) {
        return pack::load(db, &params.id())
            .with_context(|| format!("loading packs from {}", db.display()));
    }
    Ok(SqliteStore::open_existing(db, &params.id())?)
}

fn export(
    db: &Path,
    params: &FingerprintParams,
    out: Option<PathBuf>,
    ids: &[i64],
    filter: Option<String>,
) -> anyhow::Result<Outcome> {
    let store = open_for_reading(db, params)?;
    let mut chosen: Vec<TrackId> = ids.iter().map(|&i| TrackId(i)).collect();
    if let Some(f) = filter {
        let Some((k, v)) = f.split_once('=') else {
            bail!("--where {f}: expected KEY=VALUE")
        };
        let matching = pack::ids_where(&store, k.trim(), v)?;
        if chosen.is_empty() {
            chosen = matching;
        } else {
            chosen.retain(|id| matching.contains(id));
        }
        if chosen.is_empty() {
            bail!("no track has {f}");
        }
    }
    let bytes = pack::export(&store, &chosen)?;
    match out {
        Some(path) => std::fs::write(&path, &bytes)
            .with_context(|| format!("{}: cannot write", path.display()))?,
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write a binary pack to a terminal: use --out FILE")
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    eprintln!("exported {} bytes", bytes.len());
    Ok(Outcome::Success)
}

fn import(db: &Path, params: &FingerprintParams, packs: &[PathBuf]) -> anyhow::Result<Outcome> {
    let mut store = SqliteStore::open(db, &params.id())?;
    let mut failed = false;
    for p in packs {
        let started = Instant::now();
        let result = std::fs::read(p)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(pack::import(&mut store, &b)?));
        match result {
            Ok(s) => {
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "{}: added {}, skipped {} (already indexed), {} hashes in {:.2} s ({:.0} tracks/s, {:.0} hashes/s)",
                    p.display(),
                    s.added,
                    s.skipped,
                    s.hashes,
                    secs,
                    (s.added + s.skipped) as f64 / secs,
                    s.hashes as f64 / secs
                );
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", p.display());
                failed = true;
            }
        }
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// A closed pipe (`| head`) is not a failure.
fn finish_print(res: std::io::Result<()>) -> anyhow::Result<Outcome> {
    match res {
        Ok(()) => Ok(Outcome::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Success),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_out_in_input_order_and_matchers_wait_their_turn() {
        let order = InOrder::new(2);
        let stop = AtomicBool::new(false);
        assert!(order.arrived(2, 'c').is_empty());
        assert!(order.arrived(1, 'b').is_empty());
        assert_eq!(order.arrived(0, 'a'), vec!['a', 'b', 'c']);
        assert_eq!(order.arrived(3, 'd'), vec!['d']);
        // Input 6 is two past the first unprinted one (4): it waits until 4 arrives.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| order.wait_turn(6, &stop));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "input 6 ran ahead of the lookahead");
            assert_eq!(order.arrived(4, 'e'), vec!['e']);
            assert!(waiter.join().unwrap_or(false));
        });
        // A stopping scan releases waiting matchers, and they give up.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| order.wait_turn(9, &stop));
            stop.store(true, Ordering::Relaxed);
            order.release();
            assert!(!waiter.join().unwrap_or(true));
        });
    }
}
