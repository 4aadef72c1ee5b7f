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
    },
    /// Look for indexed recordings in uploads (files, folders, or - for stdin).
    Scan {
        /// Files, folders, or `-`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Report only matches at least this confident (0..1).
        #[arg(long)]
        min_confidence: Option<f64>,
    },
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
