//! `json`: scan records or references as one JSON array (one element per line, written as
//! each comes); the index's totals as one object.

use std::io::{self, Write};

use nasheed::engine::report::ScanRecord;
use nasheed::index::{Stats, TrackInfo};

use super::{Format, Output, Writer};

/// The format's entry in the list.
pub const FORMAT: Format = Format {
    name: "json",
    help: "One JSON array (stats: one object)",
    writes: &[Output::Scan, Output::List, Output::Stats],
    new: |out, _| {
        Box::new(Json {
            out,
            first: true,
            array: false,
        })
    },
};

struct Json {
    out: Box<dyn Write>,
    first: bool,
    /// Whether an array was opened (a stats object is not one).
    array: bool,
}

impl Json {
    fn element(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        write!(self.out, "{}", if self.first { "[\n" } else { ",\n" })?;
        self.first = false;
        self.array = true;
        serde_json::to_writer(&mut self.out, value)?;
        self.out.flush()
    }
}

impl Writer for Json {
    fn record(&mut self, r: &ScanRecord) -> io::Result<()> {
        self.element(r)
    }

    fn track(&mut self, t: &TrackInfo) -> io::Result<()> {
        self.element(t)
    }

    fn stats(&mut self, s: &Stats, _build_params_id: &str) -> io::Result<()> {
        self.first = false;
        serde_json::to_writer_pretty(&mut self.out, s)?;
        writeln!(self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.first {
            writeln!(self.out, "[]")?;
        } else if self.array {
            writeln!(self.out, "\n]")?;
        }
        self.out.flush()
    }
}
