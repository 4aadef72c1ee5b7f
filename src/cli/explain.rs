//! `nasheed explain UPLOAD` and `scan --evidence DIR`: evidence pages for uploads. The engine
//! builds each page's data from a scan's record (`engine::evidence`); `cli::evidence` draws it;
//! this module runs the scan, picks the file names and writes the files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use nasheed::engine::evidence::{self, Report};
use nasheed::engine::report::ScanRecord;
use nasheed::engine::scan::{ScanInput, ScanSink};
use nasheed::engine::{self, Budget};
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::{self as store_index, Store};
use nasheed::matching::MatchParams;

use super::args::ExplainArgs;
use super::output::escape_controls;
use super::resolve::{self, empty_index_message, open_for_reading};
use super::Outcome;

/// `explain`: scans one upload through the scan pipeline and writes its evidence page.
pub fn explain(db: &Path, params: &FingerprintParams, a: ExplainArgs) -> anyhow::Result<Outcome> {
    let match_params = MatchParams::default();
    let budget = Budget::with_max_duration(a.max_duration);
    if !a.upload.is_file() {
        bail!(
            "{}: not a file (explain reads one upload)",
            escape_controls(&a.upload.display().to_string())
        );
    }
    let location = resolve::scan_location(db, params)?;
    let mut stores = vec![open_for_reading(&location, params)?];
    if stores[0].stats()?.tracks == 0 {
        bail!("{}", empty_index_message(db));
    }
    let focus = match &a.reference {
        Some(r) => Some(
            store_index::resolve(&*stores[0], r)
                .with_context(|| format!("--ref {r} in {}", db.display()))?,
        ),
        None => None,
    };
    let input = ScanInput::file(a.upload.clone());
    let mut got = Collect(None);
    engine::scan::scan_inputs(
        &mut stores,
        std::slice::from_ref(&input),
        params,
        &match_params,
        &budget,
        &mut got,
    )?;
    let shown = escape_controls(&a.upload.display().to_string()).into_owned();
    let record = got
        .0
        .ok_or_else(|| anyhow!("{shown}: the scan gave no result"))?;
    if let Some(e) = &record.error {
        bail!("{}", escape_controls(e));
    }
    let report = evidence::build_report(
        &*stores[0],
        &a.upload,
        &record,
        focus,
        params,
        &match_params,
        &budget,
    )?;
    let out = match a.out {
        Some(p) => p,
        None => PathBuf::from(file_name(&record)),
    };
    write_page(&report, &out)?;
    eprintln!(
        "{shown}: {}; evidence written to {}",
        verdict(&report),
        escape_controls(&out.display().to_string())
    );
    Ok(Outcome::Success)
}

/// A page's file name: the upload's SHA-256 (so the same upload always files under one name).
fn file_name(record: &ScanRecord) -> String {
    format!(
        "{}.html",
        record.sha256.as_deref().unwrap_or("unknown-upload")
    )
}

/// What a report concludes, for the line on stderr.
fn verdict(report: &Report) -> String {
    match (report.matched, report.items.len()) {
        (true, 1) => "1 match".to_string(),
        (true, n) => format!("{n} matches"),
        (false, 0) => "no match, no candidate".to_string(),
        (false, _) => "no match; the closest candidate is explained".to_string(),
    }
}

/// Renders and writes a page.
fn write_page(report: &Report, out: &Path) -> anyhow::Result<()> {
    let html = super::evidence::page(report)?;
    std::fs::write(out, html).with_context(|| format!("{}: cannot write", out.display()))
}

/// A sink keeping the one record of an `explain` scan.
struct Collect(Option<ScanRecord>);

impl ScanSink for Collect {
    fn record(&mut self, record: ScanRecord) -> std::io::Result<()> {
        self.0 = Some(record);
        Ok(())
    }
}

/// `scan --evidence DIR`: writes the page of every input with a match as its record arrives.
pub struct EvidenceDir<'a> {
    dir: PathBuf,
    location: PathBuf,
    params: &'a FingerprintParams,
    match_params: &'a MatchParams,
    budget: &'a Budget,
    /// A reader of its own (the scan's are busy), opened at the first match.
    store: Option<Box<dyn Store + Send>>,
    /// Pages written.
    pub written: usize,
}

impl<'a> EvidenceDir<'a> {
    /// Creates `dir` if needed (before the scan, so a folder that cannot be made stops it early).
    pub fn new(
        dir: &Path,
        location: &Path,
        params: &'a FingerprintParams,
        match_params: &'a MatchParams,
        budget: &'a Budget,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--evidence {}: cannot create the folder", dir.display()))?;
        Ok(EvidenceDir {
            dir: dir.to_path_buf(),
            location: location.to_path_buf(),
            params,
            match_params,
            budget,
            store: None,
            written: 0,
        })
    }

    /// The folder pages go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the page of `input` (scanned as `record`) if it matched.
    pub fn record(&mut self, input: &ScanInput, record: &ScanRecord) -> anyhow::Result<()> {
        if record.matches.is_empty() {
            return Ok(());
        }
        let Ok(file) = &input.file else {
            return Ok(());
        };
        let store = match &mut self.store {
            Some(s) => s,
            None => self
                .store
                .insert(open_for_reading(&self.location, self.params)?),
        };
        let report = evidence::build_report(
            &**store,
            file,
            record,
            None,
            self.params,
            self.match_params,
            self.budget,
        )
        .with_context(|| format!("evidence for {}", escape_controls(&record.path)))?;
        write_page(&report, &self.dir.join(file_name(record)))?;
        self.written += 1;
        Ok(())
    }
}
