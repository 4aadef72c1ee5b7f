//! Command-line arguments (clap); parsing only, no I/O.

use std::path::PathBuf;

use clap::{ArgGroup, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use nasheed::index::TrackRef;

use super::output::{self, Output};

/// Find known recordings in uploads: index references, scan files, folders or stdin.
#[derive(Debug, Parser)]
#[command(name = "nasheed", about, after_help = MAIN_EXAMPLES)]
pub struct Args {
    /// Index database; for `scan`, `list`, `stats` and `export` also a fingerprint pack or a
    /// folder of packs.
    #[arg(long, global = true, env = "NASHEED_DB", default_value = "nasheed.db")]
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The clap definition with the version line filled in: the crate version, the fingerprint
/// id and the schema versions, which say whether an index or a pack can be read.
pub fn command() -> clap::Command {
    Args::command().version(version_line())
}

/// Parses the process's arguments (exits with clap's message and code 2 on a bad one).
pub fn parse() -> Args {
    let matches = command().get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `nasheed --version`: e.g. `0.1.0 (fingerprint fp2-17d495d0cfdc, index schema 3, pack format 1)`.
pub fn version_line() -> String {
    format!(
        "{} (fingerprint {}, index schema {}, pack format {})",
        env!("CARGO_PKG_VERSION"),
        nasheed::fingerprint::FingerprintParams::default().id(),
        nasheed::index::sqlite::SCHEMA_VERSION,
        nasheed::pack::VERSION
    )
}

const MAIN_EXAMPLES: &str = "Examples:
  nasheed --db refs.db index --meta group=g1 refs/      fingerprint references
  nasheed --db refs.db scan uploads/                    look for them in uploads
  nasheed --db fingerprints/ scan --format jsonl clip.mp4
  nasheed --db refs.db export --out refs.nshpack        share fingerprints, never audio";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fingerprint reference recordings into the index (files and folders, recursive).
    #[command(after_help = "Examples:
  nasheed --db refs.db index refs/
  nasheed --db refs.db index --title \"Chant one\" --meta group=g1 --meta language=ar chant1.mp3
  nasheed --db refs.db index --meta-csv meta.csv refs/     (header: path,title,KEY...)

Exit codes: 0 every file indexed or already present; 2 any file failed (the others are stored).")]
    Index {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Title (only with a single file; default: the file name without extension).
        #[arg(long)]
        title: Option<String>,
        /// Metadata for every file: KEY=VALUE (repeatable), e.g. group=..., language=ar.
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// CSV with a header `path,title,KEY...`: one row of metadata per file.
        #[arg(long)]
        meta_csv: Option<PathBuf>,
        /// Most decoded audio one file may hold, in seconds (longer files fail, as do files
        /// holding more than 10 minutes of unbroken digital silence).
        #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
        max_duration: f64,
    },
    /// Look for indexed recordings in uploads (files, folders, or - for stdin).
    #[command(after_help = SCAN_HELP)]
    Scan(ScanArgs),
    /// List the indexed references.
    #[command(after_help = "Examples:
  nasheed --db refs.db list
  nasheed --db fingerprints/ list --format json")]
    List {
        /// Output format.
        #[arg(long, default_value = "text", value_parser = output::parser(Output::List))]
        format: String,
    },
    /// Totals of the index.
    #[command(after_help = "Examples:
  nasheed --db refs.db stats
  nasheed --db refs.db stats --format json")]
    Stats {
        /// Output format.
        #[arg(long, default_value = "text", value_parser = output::parser(Output::Stats))]
        format: String,
    },
    /// Write references' fingerprints and metadata (never audio) to a pack file.
    #[command(after_help = "Examples:
  nasheed --db refs.db export --out all.nshpack
  nasheed --db refs.db export --out g1.nshpack --where group=g1
  nasheed --db refs.db export --out two.nshpack 3 9f86d081884c7d65")]
    Export {
        /// Pack file to write (default: standard output, when it is not a terminal).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tracks to export (default: all): ids, SHA-256s, or unique prefixes of 8+ hex digits.
        #[arg(value_name = "TRACK")]
        tracks: Vec<TrackRef>,
        /// Export only tracks whose metadata has KEY=VALUE (repeatable: all must hold).
        #[arg(long = "where", value_name = "KEY=VALUE", value_parser = key_value)]
        filter: Vec<(String, String)>,
    },
    /// Add the tracks of fingerprint packs to the index (each pack all or nothing).
    #[command(after_help = "Examples:
  nasheed --db refs.db import partner.nshpack
  nasheed --db refs.db import packs/*.nshpack")]
    Import {
        /// Pack files.
        #[arg(required = true)]
        packs: Vec<PathBuf>,
    },
    /// Remove references by id, SHA-256 (prefix) or metadata.
    #[command(
        group(ArgGroup::new("which").required(true).multiple(true).args(["tracks", "filter"])),
        after_help = "Examples:
  nasheed --db refs.db remove 3 7
  nasheed --db refs.db remove 9f86d081884c7d65
  nasheed --db refs.db remove --where source=takedown-2024-03"
    )]
    Remove {
        /// Tracks: ids (see `list`), SHA-256s, or unique prefixes of 8+ hex digits.
        #[arg(value_name = "TRACK")]
        tracks: Vec<TrackRef>,
        /// Remove the tracks whose metadata has KEY=VALUE (repeatable: all must hold; with
        /// TRACKs, only those of them).
        #[arg(long = "where", value_name = "KEY=VALUE", value_parser = key_value)]
        filter: Vec<(String, String)>,
    },
    /// Correct references' title and metadata (no audio needed: works for pack-imported tracks).
    #[command(
        group(ArgGroup::new("which").required(true).multiple(true).args(["tracks", "filter"])),
        group(ArgGroup::new("change").required(true).multiple(true).args(["set", "unset", "title"])),
        after_help = "Examples:
  nasheed --db refs.db tag 3 --set group=g2 --unset notes
  nasheed --db refs.db tag 9f86d081884c7d65 --title \"Chant one (live)\"
  nasheed --db refs.db tag --where group=g1 --set language=ar"
    )]
    Tag {
        /// Tracks: ids (see `list`), SHA-256s, or unique prefixes of 8+ hex digits.
        #[arg(value_name = "TRACK")]
        tracks: Vec<TrackRef>,
        /// Tag the tracks whose metadata has KEY=VALUE (repeatable: all must hold; with
        /// TRACKs, only those of them).
        #[arg(long = "where", value_name = "KEY=VALUE", value_parser = key_value)]
        filter: Vec<(String, String)>,
        /// Set a metadata key (repeatable).
        #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// Remove a metadata key (repeatable).
        #[arg(long, value_name = "KEY")]
        unset: Vec<String>,
        /// New title (only for a single track).
        #[arg(long)]
        title: Option<String>,
    },
    /// Write an evidence report (one HTML file) on why an upload matched, or did not.
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Serve scans and the index over HTTP (see docs/API.md).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Print a shell completion script (e.g. `nasheed completions bash > /etc/bash_completion.d/nasheed`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `nasheed man | man -l -`).
    Man,
}

/// `KEY=VALUE` with a non-empty key (surrounding spaces of the key dropped).
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s}")),
    }
}

/// Arguments of `scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files, folders, or `-`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "text", value_parser = output::parser(Output::Scan))]
    pub format: String,
    /// Report only matches at least this confident (0 to 1).
    #[arg(long, value_parser = unit_interval)]
    pub min_confidence: Option<f64>,
    /// Scan even if the index holds no references (every upload would be reported clean).
    #[arg(long)]
    pub allow_empty: bool,
    /// Exit 2 when any input could not be read, even if others matched.
    #[arg(long)]
    pub fail_on_error: bool,
    /// Also write the scan summary as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Most decoded audio one upload may hold, in seconds (a longer one is an error, and the
    /// scan goes on; so is one holding more than 10 minutes of unbroken digital silence).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
    pub max_duration: f64,
    /// Most bytes read from stdin or a named FIFO or device (suffix K, M or G: binary units).
    #[arg(long, value_name = "BYTES", value_parser = byte_count, default_value = "4G")]
    pub max_stream_bytes: u64,
    /// Print only inputs with a match (errors still go to stderr; no summary line).
    #[arg(long, short)]
    pub quiet: bool,
    /// Colour text output: auto = when stdout is a terminal and NO_COLOR is not set.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Also write an evidence report (HTML, as `explain` writes) for every input with a match
    /// into DIR, named by the input's SHA-256 (created if needed).
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
}

/// Arguments of `explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The upload (a file).
    pub upload: PathBuf,
    /// Explain only this reference (id, SHA-256 or a unique prefix of 8+ hex digits): its
    /// matches, or why it did not match.
    #[arg(long = "ref", value_name = "TRACK")]
    pub reference: Option<TrackRef>,
    /// The report file to write (default: the upload's SHA-256 + `.html`, in this folder).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Most decoded audio the upload may hold, in seconds (as `scan --max-duration`).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
    pub max_duration: f64,
}

/// Examples of `explain`.
const EXPLAIN_HELP: &str = "Examples:
  nasheed --db refs.db explain clip.mp4                       (writes <sha256 of clip.mp4>.html)
  nasheed --db refs.db explain clip.mp4 --out report.html
  nasheed --db refs.db explain clip.mp4 --ref 9f86d081884c7d65   (why this reference, or why not)
  nasheed --db refs.db scan --evidence reports/ uploads/      (a report per matched upload)

The report is one self-contained HTML file (no network, figures inline): for each match, the
upload's spectrogram and peaks, the reference's stored peaks in the upload's coordinates, the
alignment and a timeline, the numbers behind the confidence in plain words, the reference's
metadata, the tool version, fingerprint id, the upload's SHA-256 and the time. For an upload that
matched nothing: the closest candidate and the rule that stopped it.
Exit codes: 0 the report was written; 2 it could not be (unreadable upload, no index...).";

/// When text output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When stdout is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Examples and the exit codes, in `scan --help`.
const SCAN_HELP: &str = "Examples:
  nasheed --db refs.db scan uploads/
  nasheed --db refs.db scan --format jsonl --summary-json summary.json uploads/ > results.jsonl
  nasheed --db refs.db scan --format csv uploads/ > audit.csv   (a row for every input)
  cat upload.bin | nasheed --db refs.db scan -          (stdin)

Exit codes: 0 no match; 1 at least one match; 2 no match and an input \
could not be read (with --fail-on-error: any input could not be read), or the scan could not run \
(no index, an index without references, nothing to scan, a bad flag).";

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the one chosen is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token the write endpoints require (else $NASHEED_TOKEN; with
    /// neither, the write endpoints are off). Never a command-line value: it would show in `ps`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Largest request body, in bytes (suffix K, M or G); a larger one is refused with 413.
    #[arg(long, value_name = "BYTES", value_parser = byte_count, default_value = "256M")]
    pub max_body: u64,
    /// Seconds one request may take to upload, decode and match; past it: 408 while
    /// uploading, 504 while scanning.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = 60.0)]
    pub timeout: f64,
    /// Scans accepted at once (uploading or scanning); more are refused with 503 and
    /// Retry-After. Default: 4 per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: Option<u32>,
    /// Most decoded audio one upload may hold, in seconds (as `scan --max-duration`).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
    pub max_duration: f64,
    /// Start even if the index holds no references, to fill it over HTTP; until it holds one,
    /// scans are refused and /healthz answers 503 (never a silent "clean").
    #[arg(long)]
    pub allow_empty: bool,
}

/// Examples and endpoints, in `serve --help`.
const SERVE_HELP: &str = "Examples:
  nasheed --db refs.db serve --listen 0.0.0.0:8080
  NASHEED_TOKEN=$(cat /run/secrets/nasheed) nasheed --db refs.db serve
  curl --data-binary @clip.mp4 http://127.0.0.1:8080/v1/scan

Endpoints: POST /v1/scan, GET /v1/references[/ID], POST /v1/references, DELETE /v1/references/ID,
POST /v1/packs, GET /v1/packs (the last four need the token), GET /healthz, GET /metrics.
SIGTERM or Ctrl-C: finish the requests in flight, then exit 0.";

/// Default of `--max-duration`: 4 hours.
const DEFAULT_MAX_DURATION_S: f64 = nasheed::engine::Budget::DEFAULT_MAX_DURATION_S;

/// A confidence: a number from 0 to 1 (`95` meant as a percentage would never match).
fn unit_interval(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "expected a number from 0 to 1 (e.g. 0.95), got {s}"
        )),
    }
}

/// A duration in seconds: finite and above 0.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("expected a number of seconds above 0, got {s}")),
    }
}

/// A byte count, optionally with a binary suffix: `4G`, `512M`, `64K`, `1000`.
fn byte_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => {
            return Err(format!(
                "expected bytes with an optional K, M or G, got {s}"
            ))
        }
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{s} is too large")),
        _ => Err(format!(
            "expected a byte count above 0 with an optional K, M or G, got {s}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_and_ranges_parse_or_say_why() {
        assert_eq!(byte_count("4G"), Ok(4 << 30));
        assert_eq!(byte_count("64k"), Ok(64 << 10));
        assert_eq!(byte_count("1000"), Ok(1000));
        assert!(byte_count("0").is_err() && byte_count("4T").is_err() && byte_count("").is_err());
        assert_eq!(unit_interval("0.5"), Ok(0.5));
        assert!(unit_interval("NaN").is_err() && unit_interval("-0.1").is_err());
        assert!(positive_seconds("inf").is_err() && positive_seconds("0").is_err());
    }
}
