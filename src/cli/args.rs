//! Command-line arguments (clap); parsing only, no I/O.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Find known recordings in uploads: index references, scan files, folders or stdin.
#[derive(Debug, Parser)]
#[command(name = "nasheed", version, about)]
pub struct Args {
    /// Index database; for `scan`, `list` and `stats` also a fingerprint pack or a folder of packs.
    #[arg(long, global = true, env = "NASHEED_DB", default_value = "nasheed.db")]
    pub db: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fingerprint reference recordings into the index (files and folders, recursive).
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
        /// Most decoded audio one file may hold, in seconds (longer files fail).
        #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
        max_duration: f64,
    },
    /// Look for indexed recordings in uploads (files, folders, or - for stdin).
    #[command(after_help = SCAN_EXIT_CODES)]
    Scan(ScanArgs),
    /// List the indexed references.
    List {
        /// Output format (text or json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Totals of the index.
    Stats {
        /// Output format (text or json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write references' fingerprints and metadata (never audio) to a pack file.
    Export {
        /// Pack file to write (default: standard output, when it is not a terminal).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Track ids to export (default: all).
        ids: Vec<i64>,
        /// Export only tracks whose metadata has KEY=VALUE.
        #[arg(long = "where", value_name = "KEY=VALUE")]
        filter: Option<String>,
    },
    /// Add the tracks of fingerprint packs to the index (each pack all or nothing).
    Import {
        /// Pack files.
        #[arg(required = true)]
        packs: Vec<PathBuf>,
    },
    /// Remove references by id.
    Remove {
        /// Track ids (see `list`).
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

/// Arguments of `scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files, folders, or `-`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
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
    /// scan goes on).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, default_value_t = DEFAULT_MAX_DURATION_S)]
    pub max_duration: f64,
    /// Most bytes read from stdin or a named FIFO or device (suffix K, M or G: binary units).
    #[arg(long, value_name = "BYTES", value_parser = byte_count, default_value = "4G")]
    pub max_stream_bytes: u64,
}

/// The exit codes, in `scan --help`.
const SCAN_EXIT_CODES: &str =
    "Exit codes: 0 no match; 1 at least one match; 2 no match and an input \
could not be read (with --fail-on-error: any input could not be read), or the scan could not run \
(no index, an index without references, nothing to scan).";

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

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON array.
    Json,
    /// One JSON object per line (per input).
    Jsonl,
    /// One row per match.
    Csv,
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
