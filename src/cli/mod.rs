//! The command-line front end: resolves arguments into engine calls and prints the results.
//! The only module that writes to stdout/stderr.

pub mod args;
pub mod evidence;
pub mod explain;
pub mod output;
pub mod resolve;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use nasheed::engine::report::{ScanRecord, ScanSummary};
use nasheed::engine::scan::{ScanError, ScanSink};
use nasheed::engine::{self, Budget, IndexEvent, IndexJob, Input};
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::{self as store_index, Access, Metadata, Store, TrackId, TrackRef};
use nasheed::matching::MatchParams;
use nasheed::pack;

use args::{Args, Command, ScanArgs, ServeArgs};
use output::{escape_controls, meta_text, summary_line, Presentation, Writer};
use resolve::{
    empty_index_message, open_for_reading, open_for_writing, open_to_inspect, read_token,
    refuse_pack,
};

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
            max_duration,
        } => {
            let budget = Budget::with_max_duration(max_duration);
            index(&args.db, &params, paths, title, meta, meta_csv, &budget)
        }
        Command::Scan(scan_args) => scan(&args.db, &params, scan_args),
        Command::Serve(serve_args) => serve(&args.db, &params, serve_args),
        Command::Explain(explain_args) => explain::explain(&args.db, &params, explain_args),
        Command::List { format } => list(&args.db, &params, &format),
        Command::Stats { format } => stats(&args.db, &params, &format),
        Command::Remove { tracks, filter } => remove(&args.db, &params, &tracks, &filter),
        Command::Export {
            out,
            tracks,
            filter,
        } => export(&args.db, &params, out, &tracks, &filter),
        Command::Import { packs } => import(&args.db, &params, &packs),
        Command::Tag {
            tracks,
            filter,
            set,
            unset,
            title,
        } => {
            let edit = Edit { set, unset, title };
            tag(&args.db, &params, &tracks, &filter, &edit)
        }
        Command::Completions { shell } => {
            let mut cmd = args::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut cmd, "nasheed", &mut out);
            finish_print(out.flush())
        }
        Command::Man => {
            let mut out = std::io::stdout().lock();
            let res = clap_mangen::Man::new(args::command()).render(&mut out);
            finish_print(res.and_then(|_| out.flush()))
        }
    }
}

fn index(
    db: &Path,
    params: &FingerprintParams,
    paths: Vec<PathBuf>,
    title: Option<String>,
    meta: Vec<String>,
    meta_csv: Option<PathBuf>,
    budget: &Budget,
) -> anyhow::Result<Outcome> {
    refuse_pack(db)?;
    let mut common = Metadata::new();
    for kv in &meta {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--meta {kv}: expected KEY=VALUE")
        };
        common.insert(k.trim().to_string(), v.to_string());
    }
    let mut rows = match &meta_csv {
        Some(p) => MetaRows::read(p)?,
        None => MetaRows::default(),
    };
    let mut failures: Vec<String> = Vec::new();
    let mut files = Vec::new();
    let expanded = engine::expand_inputs(&paths);
    report_walk(&expanded);
    for item in expanded.inputs {
        match item {
            Ok(Input::File(p)) => files.push(p),
            // References are files: a FIFO or a device may never end, and stdin has no name.
            Ok(other) => failures.push(format!(
                "{}: not a regular file (index reads references from files)",
                other.path().display()
            )),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if files.is_empty() && failures.is_empty() {
        bail!("nothing to index: no files in {}", list_paths(&paths));
    }
    if title.is_some() && files.len() != 1 {
        bail!("--title needs exactly one file ({} given)", files.len());
    }
    let jobs: Vec<IndexJob> = files
        .into_iter()
        .map(|path| {
            let mut meta = common.clone();
            let mut job_title = title.clone();
            if let Some(row) = rows.take(&path) {
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
    if let Some(csv) = &meta_csv {
        for (line, key) in rows.unused() {
            eprintln!(
                "warning: {}: row {line} ({}) names no file being indexed; its metadata was not used",
                csv.display(),
                escape_controls(key)
            );
        }
    }
    let mut store = open_for_writing(db, params, Access::Create)?;
    let mut bar = IndexProgress::new(&jobs);
    let started = Instant::now();
    let cpu0 = engine::cpu_seconds();
    let summary = engine::index_files(&mut *store, jobs, params, budget, &mut |ev| {
        let path = match ev {
            IndexEvent::Failed { error, path } => {
                let line = escape_controls(&error.to_string()).into_owned();
                match &bar {
                    Some(b) => b.bar.println(format!("error: {line}")),
                    None => eprintln!("error: {line}"),
                }
                failures.push(line);
                path
            }
            IndexEvent::Indexed { path, .. } | IndexEvent::Skipped { path, .. } => path,
        };
        if let Some(b) = &mut bar {
            b.done(path);
        }
    })?;
    if let Some(b) = bar {
        b.bar.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = engine::cpu_seconds() - cpu0;
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
        eprintln!("  failed: {}", escape_controls(f));
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

/// `--db` for a message: a PostgreSQL URL without its password.
fn shown(db: &Path) -> String {
    store_index::postgres::redact(&db.display().to_string())
}

/// Paths as one line for a message.
fn list_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| escape_controls(&p.display().to_string()).into_owned())
        .collect();
    names.join(", ")
}

/// Tells, on stderr, what a folder walk passed over: nothing is left out without a word.
fn report_walk(expanded: &engine::Expanded) {
    for s in &expanded.skipped {
        eprintln!("skipped: {}", escape_controls(&s.to_string()));
    }
    for d in &expanded.empty_folders {
        eprintln!(
            "warning: {}: no files in this folder",
            escape_controls(&d.display().to_string())
        );
    }
}

/// One row of a `--meta-csv` file.
struct MetaRow {
    /// Line number in the file.
    line: usize,
    /// The `path` cell.
    key: String,
    /// The other non-empty cells, as (column, value).
    fields: Vec<(String, String)>,
}

/// The rows of a `--meta-csv` file, looked up by path in constant time, each marked once used.
#[derive(Default)]
struct MetaRows {
    rows: Vec<MetaRow>,
    /// Row by the path as written, and by its canonical form when it exists.
    by_path: HashMap<PathBuf, usize>,
    used: Vec<bool>,
}

impl MetaRows {
    /// Reads the CSV; its header names the columns (`path` required).
    fn read(path: &Path) -> anyhow::Result<Self> {
        let mut rdr = csv::Reader::from_path(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let headers = rdr
            .headers()
            .with_context(|| format!("{}: no header", path.display()))?
            .clone();
        let Some(pcol) = headers.iter().position(|h| h == "path") else {
            bail!("{}: the header has no `path` column", path.display())
        };
        let mut out = MetaRows::default();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            let key = rec.get(pcol).unwrap_or_default().to_string();
            let fields = headers
                .iter()
                .zip(rec.iter())
                .filter(|(h, v)| *h != "path" && !v.is_empty())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            let n = out.rows.len();
            out.by_path.insert(PathBuf::from(&key), n);
            if let Ok(canon) = Path::new(&key).canonicalize() {
                out.by_path.entry(canon).or_insert(n);
            }
            out.rows.push(MetaRow {
                line: i + 2,
                key,
                fields,
            });
        }
        out.used = vec![false; out.rows.len()];
        Ok(out)
    }

    /// The row for a file: by the path as given, then by canonical path, then by file name.
    fn take(&mut self, path: &Path) -> Option<&Vec<(String, String)>> {
        if self.rows.is_empty() {
            return None;
        }
        let i = *self
            .by_path
            .get(path)
            .or_else(|| self.by_path.get(&path.canonicalize().ok()?))
            .or_else(|| self.by_path.get(Path::new(path.file_name()?)))?;
        self.used[i] = true;
        Some(&self.rows[i].fields)
    }

    /// (line, path cell) of the rows no file took.
    fn unused(&self) -> impl Iterator<Item = (usize, &str)> {
        self.rows
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(row, _)| (row.line, row.key.as_str()))
    }
}

/// The index run's progress bar (on a terminal only): its length is the audio the files'
/// headers declare, so the ETA follows hours of audio, not the count of files.
struct IndexProgress {
    bar: indicatif::ProgressBar,
    /// Estimated milliseconds of audio per file not yet done.
    estimate_ms: HashMap<PathBuf, u64>,
    files: usize,
    done: usize,
}

impl IndexProgress {
    /// Bytes per second assumed for a file whose header declares no duration (128 kbit/s).
    const FALLBACK_BYTES_PER_S: f64 = 16_000.0;

    fn new(jobs: &[IndexJob]) -> Option<Self> {
        let bar = progress_bar("{bar:40} {msg} {elapsed} (eta {eta})")?;
        bar.set_message(format!("reading the headers of {} files", jobs.len()));
        bar.tick();
        let estimate_ms: HashMap<PathBuf, u64> = jobs
            .iter()
            .map(|j| {
                let s = engine::declared_duration_s(&j.path).unwrap_or_else(|| {
                    std::fs::metadata(&j.path).map_or(0.0, |m| m.len() as f64)
                        / Self::FALLBACK_BYTES_PER_S
                });
                (j.path.clone(), (s * 1000.0) as u64)
            })
            .collect();
        bar.set_length(estimate_ms.values().sum());
        let p = IndexProgress {
            bar,
            estimate_ms,
            files: jobs.len(),
            done: 0,
        };
        p.show(None);
        Some(p)
    }

    /// Counts `path` as done.
    fn done(&mut self, path: &Path) {
        self.done += 1;
        self.bar.inc(self.estimate_ms.remove(path).unwrap_or(0));
        self.show(path.file_name());
    }

    fn show(&self, last: Option<&std::ffi::OsStr>) {
        let h = |ms: u64| ms as f64 / 3.6e6;
        self.bar.set_message(format!(
            "{}/{} files, {:.2}/{:.2} h of audio {}",
            self.done,
            self.files,
            h(self.bar.position()),
            h(self.bar.length().unwrap_or(0)),
            last.map(|n| escape_controls(&n.to_string_lossy()).into_owned())
                .unwrap_or_default(),
        ));
    }
}

/// A progress bar on stderr with `template`, or `None` when stderr is not a terminal.
fn progress_bar(template: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

fn scan(db: &Path, params: &FingerprintParams, a: ScanArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut mp = MatchParams::default();
    if let Some(c) = a.min_confidence {
        mp.min_confidence = c;
    }
    let budget = Budget::with_max_duration(a.max_duration);
    let how = Presentation {
        quiet: a.quiet,
        color: resolve::color(a.color),
    };
    // A text error line on a terminal is seen already; anywhere else it is also copied to
    // stderr, where an operator (or a pipeline reading stdout) sees it.
    let errors_to_stderr = a.format != "text"
        || a.quiet
        || !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal());
    // Opened before stdin is read, so a bad index is reported at once.
    let location = resolve::scan_location(db, params)?;
    let mut stores = vec![open_for_reading(&location, params)?];
    if !a.allow_empty && stores[0].stats()?.tracks == 0 {
        bail!("{}", empty_index_message(db));
    }
    if a.paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("stdin (-) can be scanned only once per run");
    }
    // Created before the scan, so a summary that cannot be written stops it before it starts.
    let mut summary_file = match &a.summary_json {
        Some(p) => Some(
            std::fs::File::create(p).with_context(|| format!("{}: cannot write", p.display()))?,
        ),
        None => None,
    };
    let expanded = engine::expand_inputs(&a.paths);
    report_walk(&expanded);
    let mut summary = ScanSummary {
        skipped: expanded.skipped.len(),
        ..ScanSummary::default()
    };
    // Holds stdin's copy (and any stream's) until the scan ends.
    let prepared = engine::inputs::prepare(expanded.inputs, a.max_stream_bytes);
    let inputs = &prepared.inputs;
    if inputs.is_empty() {
        summary.finish(started.elapsed().as_secs_f64());
        eprintln!("{}", summary_line(&summary));
        write_summary(summary_file.as_mut(), &summary)?;
        bail!(
            "nothing to scan: no files in {} (a scan that read nothing reports nothing clean)",
            list_paths(&a.paths)
        );
    }
    stores.extend(store_index::more_readers(
        &location,
        &params.id(),
        engine::scan::matchers_for(inputs.len()) - 1,
    )?);
    let evidence = match &a.evidence {
        Some(dir) => Some(explain::EvidenceDir::new(
            dir, &location, params, &mp, &budget,
        )?),
        None => None,
    };
    let bar = if a.quiet {
        None
    } else {
        progress_bar("{bar:40} {pos}/{len} inputs, {elapsed} (eta {eta}) {msg}")
    };
    if let Some(b) = &bar {
        b.set_length(inputs.len() as u64);
    }
    let mut printer = Printer {
        writer: resolve::writer(&a.format, how),
        quiet: a.quiet,
        bar,
        summary: &mut summary,
        errors_to_stderr,
        evidence,
        inputs,
        next: 0,
    };
    match engine::scan::scan_inputs(&mut stores, inputs, params, &mp, &budget, &mut printer) {
        Err(ScanError::Sink(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    if let Some(b) = &printer.bar {
        b.finish_and_clear();
    }
    if let (Some(ev), false) = (&printer.evidence, a.quiet) {
        eprintln!(
            "evidence: {} report(s) in {}",
            ev.written,
            escape_controls(&ev.dir().display().to_string())
        );
    }
    match printer.writer.finish() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    summary.finish(started.elapsed().as_secs_f64());
    if !a.quiet {
        eprintln!("{}", summary_line(&summary));
    }
    write_summary(summary_file.as_mut(), &summary)?;
    Ok(if a.fail_on_error && summary.unreadable > 0 {
        Outcome::Failed
    } else if summary.matched > 0 {
        Outcome::Matched
    } else if summary.unreadable > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn serve(db: &Path, params: &FingerprintParams, a: ServeArgs) -> anyhow::Result<Outcome> {
    let token = read_token(a.token_file.as_deref())?;
    let in_memory = db.is_dir() || pack::is_pack_source(db);
    // A writer only when writes are on (a scanner on a read-only copy needs none); opened first,
    // so that a new deployment's index is created and filled over HTTP.
    let writer = match (&token, in_memory) {
        (Some(_), false) => Some(open_for_writing(db, params, Access::Create)?),
        _ => None,
    };
    // Scans read a local replica of a PostgreSQL index, kept current by the server.
    let location = resolve::scan_location(db, params)?;
    let replica = store_index::postgres::is_url(db).then(|| db.to_string_lossy().into_owned());
    let first = open_for_reading(&location, params)?;
    let tracks = first.stats()?.tracks;
    if !a.allow_empty && tracks == 0 {
        bail!("{}", empty_index_message(db));
    }
    let cores = engine::scan::matchers_for(usize::MAX);
    let mut readers = vec![first];
    readers.extend(store_index::more_readers(
        &location,
        &params.id(),
        cores - 1,
    )?);
    let meta = match in_memory {
        true => None,
        false => Some(open_for_reading(&location, params)?),
    };
    let writes = match (&token, in_memory) {
        (None, _) => "off (no token)",
        (Some(_), true) => "off (a pack is read-only)",
        (Some(_), false) => "on",
    };
    let config = crate::server::Config {
        listen: a.listen,
        db: db.to_path_buf(),
        token,
        max_body: a.max_body,
        timeout: std::time::Duration::from_secs_f64(a.timeout),
        max_in_flight: a.max_in_flight.map_or(4 * cores, |n| n as usize),
        budget: Budget::with_max_duration(a.max_duration),
        params: params.clone(),
        match_params: MatchParams::default(),
        replica,
    };
    let stores = crate::server::Stores {
        readers,
        meta,
        writer,
    };
    crate::server::serve(config, stores, |addr| {
        eprintln!(
            "nasheed: serving {} ({tracks} references) on http://{addr}; write endpoints {writes}",
            shown(db)
        );
    })?;
    eprintln!("nasheed: stopped");
    Ok(Outcome::Success)
}

/// Writes the summary object to the `--summary-json` file, if one was asked for.
fn write_summary(file: Option<&mut std::fs::File>, summary: &ScanSummary) -> anyhow::Result<()> {
    if let Some(f) = file {
        serde_json::to_writer(&mut *f, summary)?;
        writeln!(f)?;
        f.flush()?;
    }
    Ok(())
}

/// The scan's sink: prints each record as it comes (the progress bar taken down meanwhile, so
/// output and bar never mix), copies errors to stderr where they would not be seen, counts.
struct Printer<'a> {
    writer: Box<dyn Writer>,
    /// Only records with a match are written (`--quiet`).
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
    summary: &'a mut ScanSummary,
    errors_to_stderr: bool,
    /// `--evidence DIR`: a page per input with a match.
    evidence: Option<explain::EvidenceDir<'a>>,
    /// The inputs, in the order their records arrive (the evidence reads their files).
    inputs: &'a [engine::scan::ScanInput],
    /// Index of the next record's input.
    next: usize,
}

impl ScanSink for Printer<'_> {
    fn record(&mut self, record: ScanRecord) -> std::io::Result<()> {
        self.summary.add(&record);
        let input = self.inputs.get(self.next);
        self.next += 1;
        if let (Some(ev), Some(input)) = (&mut self.evidence, input) {
            // A page asked for and not written stops the scan, as a full disk would.
            ev.record(input, &record)
                .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        }
        let (writer, errors_to_stderr, quiet) =
            (&mut self.writer, self.errors_to_stderr, self.quiet);
        let mut print = || {
            if let (Some(e), true) = (&record.error, errors_to_stderr) {
                eprintln!("error: {}", escape_controls(e));
            }
            if quiet && record.matches.is_empty() {
                return Ok(());
            }
            writer.record(&record)
        };
        let written = match &self.bar {
            Some(b) => b.suspend(print),
            None => print(),
        };
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(escape_controls(&record.path).into_owned());
        }
        written
    }
}

fn list(db: &Path, params: &FingerprintParams, format: &str) -> anyhow::Result<Outcome> {
    let store = open_to_inspect(db, params)?;
    let tracks = store.tracks()?;
    let mut out = resolve::writer(format, Presentation::default());
    let res = tracks.iter().try_for_each(|t| out.track(t));
    finish_print(res.and_then(|_| out.finish()))
}

fn stats(db: &Path, params: &FingerprintParams, format: &str) -> anyhow::Result<Outcome> {
    let store = open_to_inspect(db, params)?;
    let s = store.stats()?;
    let mut out = resolve::writer(format, Presentation::default());
    let res = out.stats(&s, &params.id());
    finish_print(res.and_then(|_| out.finish()))
}

fn remove(
    db: &Path,
    params: &FingerprintParams,
    tracks: &[TrackRef],
    filter: &[(String, String)],
) -> anyhow::Result<Outcome> {
    refuse_pack(db)?;
    let mut store = open_for_writing(db, params, Access::Modify)?;
    // Each track named is removed or reported; one that cannot be found does not stop the rest.
    let mut failed = false;
    let mut ids = Vec::new();
    for r in tracks {
        match store_index::resolve(&*store, r) {
            Ok(id) => ids.push(id),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if !filter.is_empty() {
        let matching = ids_where(&*store, filter)?;
        if tracks.is_empty() {
            ids = matching;
        } else {
            ids.retain(|id| matching.contains(id));
        }
        if ids.is_empty() && !failed {
            bail!("no track {} has {}", selection(tracks), filter_text(filter));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let title = store.track(id)?.map(|t| t.title).unwrap_or_default();
        if store.remove(id)? {
            eprintln!("removed {} ({})", id.0, escape_controls(&title));
        } else {
            eprintln!("error: no track {} (removed meanwhile?)", id.0);
            failed = true;
        }
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// The changes `tag` makes to each track.
struct Edit {
    set: Vec<(String, String)>,
    unset: Vec<String>,
    title: Option<String>,
}

fn tag(
    db: &Path,
    params: &FingerprintParams,
    tracks: &[TrackRef],
    filter: &[(String, String)],
    edit: &Edit,
) -> anyhow::Result<Outcome> {
    refuse_pack(db)?;
    let mut store = open_for_writing(db, params, Access::Modify)?;
    // All or nothing: every track must be found before any is changed.
    let ids = select(&*store, db, tracks, filter)?;
    if edit.title.is_some() && ids.len() != 1 {
        bail!("--title needs exactly one track ({} selected)", ids.len());
    }
    let mut edits = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(t) = store.track(id)? else {
            bail!("no track {} (removed meanwhile?)", id.0)
        };
        let mut meta = t.meta;
        for k in &edit.unset {
            meta.remove(k.trim());
        }
        for (k, v) in &edit.set {
            meta.insert(k.clone(), v.clone());
        }
        let title = edit.title.clone().unwrap_or(t.title);
        edits.push((id, title, meta));
    }
    store.set_info(&edits)?;
    for (id, title, meta) in &edits {
        eprintln!(
            "tagged {}: {} {{{}}}",
            id.0,
            escape_controls(title),
            escape_controls(&meta_text(meta))
        );
    }
    Ok(Outcome::Success)
}

/// The tracks a command names: `tracks` resolved (any that cannot be is an error), narrowed to
/// those matching every `filter`; only the filter's matches when no track is named.
fn select(
    store: &dyn Store,
    db: &Path,
    tracks: &[TrackRef],
    filter: &[(String, String)],
) -> anyhow::Result<Vec<TrackId>> {
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for r in tracks {
        match store_index::resolve(store, r) {
            Ok(id) => ids.push(id),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        bail!("{} in {}", errors.join("; "), db.display());
    }
    if !filter.is_empty() {
        let matching = ids_where(store, filter)?;
        if tracks.is_empty() {
            ids = matching;
        } else {
            ids.retain(|id| matching.contains(id));
        }
        if ids.is_empty() {
            bail!("no track {} has {}", selection(tracks), filter_text(filter));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Ids of the tracks whose metadata holds every KEY=VALUE of `filter`.
fn ids_where(store: &dyn Store, filter: &[(String, String)]) -> anyhow::Result<Vec<TrackId>> {
    let mut ids: Option<Vec<TrackId>> = None;
    for (k, v) in filter {
        let these = pack::ids_where(store, k, v)?;
        ids = Some(match ids {
            None => these,
            Some(mut prev) => {
                prev.retain(|id| these.contains(id));
                prev
            }
        });
    }
    Ok(ids.unwrap_or_default())
}

/// `among 3, 9f86d081` for a message, or nothing when no track was named.
fn selection(tracks: &[TrackRef]) -> String {
    if tracks.is_empty() {
        return String::new();
    }
    let v: Vec<String> = tracks.iter().map(|t| t.to_string()).collect();
    format!("among {}", v.join(", "))
}

/// `--where` pairs as `k=v and k2=v2`.
fn filter_text(filter: &[(String, String)]) -> String {
    let v: Vec<String> = filter
        .iter()
        .map(|(k, v)| escape_controls(&format!("{k}={v}")).into_owned())
        .collect();
    v.join(" and ")
}

fn export(
    db: &Path,
    params: &FingerprintParams,
    out: Option<PathBuf>,
    tracks: &[TrackRef],
    filter: &[(String, String)],
) -> anyhow::Result<Outcome> {
    if let Some(out) = &out {
        if same_file(out, db) {
            bail!(
                "--out {} is the index being exported: writing the pack there would destroy it",
                out.display()
            );
        }
    }
    let store = open_to_inspect(db, params)?;
    // A pack short of a track asked for would pass for a complete one: nothing is written then.
    let chosen = select(&*store, db, tracks, filter).map_err(|e| e.context("nothing exported"))?;
    let bytes = pack::export(&*store, &chosen)?;
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
    refuse_pack(db)?;
    // Opened at the first pack that reads well: an import that fails throughout leaves no new,
    // empty database behind.
    let mut store: Option<Box<dyn Store + Send>> = None;
    let mut failed = false;
    for p in packs {
        let started = Instant::now();
        let tracks = std::fs::read(p)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(pack::read(&b, &params.id())?));
        let result = match tracks {
            Ok(tracks) => {
                // An index that cannot be opened fails every pack alike: said once.
                let store = match &mut store {
                    Some(s) => s,
                    None => store.insert(open_for_writing(db, params, Access::Create)?),
                };
                pack::add(&mut **store, tracks).map_err(anyhow::Error::from)
            }
            Err(e) => Err(e),
        };
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

/// Whether two paths name one file (by device and inode; the second must exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(x), Ok(y)) => {
            use std::os::unix::fs::MetadataExt;
            (x.dev(), x.ino()) == (y.dev(), y.ino())
        }
        _ => a
            .canonicalize()
            .ok()
            .is_some_and(|c| b.canonicalize().ok() == Some(c)),
    }
}

/// A closed pipe (`| head`) is not a failure.
fn finish_print(res: std::io::Result<()>) -> anyhow::Result<Outcome> {
    match res {
        Ok(()) => Ok(Outcome::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Outcome::Success),
        Err(e) => Err(e.into()),
    }
}
