//! Writers for scan results: text, JSON, JSON Lines, CSV. The engine never prints; these do.
//!
//! JSON shape (one object per input, `--format jsonl` one per line, `json` an array):
//! `{"path", "duration_s", "error", "matches": [{"ref_id", "title", "ref_path", "query_start_s",
//! "query_end_s", "ref_start_s", "ref_end_s", "speed", "score", "confidence"}]}`. Times are
//! seconds rounded to milliseconds; `error` is a one-line message or null.

use std::io::{self, Write};

use nasheed::Found;
use serde::Serialize;

use super::args::Format;

/// The result of scanning one input.
#[derive(Debug, Serialize)]
pub struct ScanRecord {
    /// The input as given (`-` for stdin).
    pub path: String,
    /// Decoded duration (s), 0 when unreadable.
    pub duration_s: f64,
    /// Why the input could not be read.
    pub error: Option<String>,
    /// Matches by start in the input.
    pub matches: Vec<MatchRecord>,
}

/// One match as written out.
#[derive(Debug, Serialize)]
pub struct MatchRecord {
    ref_id: i64,
    title: String,
    ref_path: String,
    query_start_s: f64,
    query_end_s: f64,
    ref_start_s: f64,
    ref_end_s: f64,
    speed: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pitch_cents: Option<f64>,
    score: u32,
    confidence: f64,
}

fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl From<&Found> for MatchRecord {
    fn from(f: &Found) -> Self {
        MatchRecord {
            ref_id: f.ref_id.0,
            title: f.title.clone(),
            ref_path: f.ref_path.clone(),
            query_start_s: ms(f.query_start_s),
            query_end_s: ms(f.query_end_s),
            ref_start_s: ms(f.ref_start_s),
            ref_end_s: ms(f.ref_end_s),
            speed: (f.speed * 10_000.0).round() / 10_000.0,
            pitch_cents: f.pitch_cents.map(|c| c.round()),
            score: f.score,
            confidence: (f.confidence * 1e6).floor() / 1e6,
        }
    }
}

/// Writes records as they come, in one of the formats.
pub struct ScanWriter<W: Write> {
    out: W,
    format: Format,
    first: bool,
}

impl<W: Write> ScanWriter<W> {
    /// A writer; call [`ScanWriter::finish`] at the end (closes the JSON array).
    pub fn new(out: W, format: Format) -> Self {
        ScanWriter {
            out,
            format,
            first: true,
        }
    }

    /// Writes one input's record.
    pub fn write(&mut self, r: &ScanRecord) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, r)?;
                writeln!(self.out)?;
            }
            Format::Json => {
                write!(self.out, "{}", if self.first { "[\n" } else { ",\n" })?;
                serde_json::to_writer(&mut self.out, r)?;
            }
            Format::Csv => {
                if self.first {
                    writeln!(self.out, "path,ref_id,title,ref_path,query_start_s,query_end_s,ref_start_s,ref_end_s,speed,score,confidence")?;
                }
                for m in &r.matches {
                    writeln!(
                        self.out,
                        "{},{},{},{},{},{},{},{},{},{},{}",
                        csv_field(&r.path),
                        m.ref_id,
                        csv_field(&m.title),
                        csv_field(&m.ref_path),
                        m.query_start_s,
                        m.query_end_s,
                        m.ref_start_s,
                        m.ref_end_s,
                        m.speed,
                        m.score,
                        m.confidence
                    )?;
                }
            }
            Format::Text => {
                if let Some(e) = &r.error {
                    writeln!(self.out, "{}: error: {e}", r.path)?;
                } else if r.matches.is_empty() {
                    writeln!(self.out, "{}: no match", r.path)?;
                }
                for m in &r.matches {
                    writeln!(
                        self.out,
                        "{}: {} [{}] upload {}–{} = reference {}–{} speed {:.3} score {} confidence {:.4}",
                        r.path,
                        m.title,
                        m.ref_id,
                        clock(m.query_start_s),
                        clock(m.query_end_s),
                        clock(m.ref_start_s),
                        clock(m.ref_end_s),
                        m.speed,
                        m.score,
                        m.confidence
                    )?;
                }
            }
        }
        self.first = false;
        self.out.flush()
    }

    /// Ends the output.
    pub fn finish(mut self) -> io::Result<()> {
        if self.format == Format::Json {
            writeln!(self.out, "{}", if self.first { "[]" } else { "\n]" })?;
        }
        self.out.flush()
    }
}

/// `m:ss.mmm`.
fn clock(s: f64) -> String {
    let neg = if s < 0.0 { "-" } else { "" };
    let s = s.abs();
    format!("{neg}{}:{:06.3}", (s / 60.0).floor() as u64, s % 60.0)
}

/// Quotes a CSV field when needed (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_clock() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(clock(75.5), "1:15.500");
    }
}
