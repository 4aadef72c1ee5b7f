//! `jsonl`: one JSON object per line: per input (the output contract of `scan`), per
//! reference, or the index's totals.

use std::io::{self, Write};

use nasheed::engine::report::ScanRecord;
use nasheed::index::{Stats, TrackInfo};

use super::{Format, Output, Writer};

/// The format's entry in the list.
pub const FORMAT: Format = Format {
    name: "jsonl",
    help: "One JSON object per line (per input, per reference)",
    writes: &[Output::Scan, Output::List, Output::Stats],
    new: |out, _| Box::new(Jsonl { out }),
};

struct Jsonl {
    out: Box<dyn Write>,
}

impl Jsonl {
    fn line(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

impl Writer for Jsonl {
    fn record(&mut self, r: &ScanRecord) -> io::Result<()> {
        self.line(r)
    }

    fn track(&mut self, t: &TrackInfo) -> io::Result<()> {
        self.line(t)
    }

    fn stats(&mut self, s: &Stats, _build_params_id: &str) -> io::Result<()> {
        self.line(s)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
