//! Writers for scan results: text, JSON, JSON Lines, CSV. The engine never prints; these do.
//!
//! The JSON shape is that of [`nasheed::engine::report`]'s types, serialised as they are.
//!
//! CSV has a row for every input, so it can serve as an audit log: one per match (`status`
//! `matched`), else one with the match columns empty (`clean` or `error`). The first eleven
//! columns are those of earlier versions, in the same order; later ones are appended.

use std::io::{self, Write};

use nasheed::engine::report::{ScanRecord, ScanSummary};
use nasheed::index::Metadata;

use super::args::Format;

/// How records are presented, beyond their format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presentation {
    /// Only inputs with a match are written (`--quiet`, like `clamscan -i`).
    pub quiet: bool,
    /// ANSI colours in text output (`--color`).
    pub color: bool,
}

/// The CSV header: the columns of earlier versions first, in their order, then the added ones.
const CSV_HEADER: &str = "path,ref_id,title,ref_path,query_start_s,query_end_s,ref_start_s,ref_end_s,speed,score,confidence,pitch_cents,ref_sha256,meta,status,sha256,duration_s,error,path_base64";

/// Hex digits of a reference's SHA-256 shown in text output: enough to be unique in any real
/// index, and accepted wherever an id is (a prefix of 8 or more).
const SHORT_SHA: usize = 12;

/// Writes records as they come, in one of the formats.
pub struct ScanWriter<W: Write> {
    out: W,
    format: Format,
    how: Presentation,
    first: bool,
}

impl<W: Write> ScanWriter<W> {
    /// A writer; call [`ScanWriter::finish`] at the end (closes the JSON array).
    pub fn new(out: W, format: Format, how: Presentation) -> Self {
        ScanWriter {
            out,
            format,
            how,
            first: true,
        }
    }

    /// Writes one input's record.
    pub fn write(&mut self, r: &ScanRecord) -> io::Result<()> {
        if self.first && self.format == Format::Csv {
            writeln!(self.out, "{CSV_HEADER}")?;
        }
        if self.how.quiet && r.matches.is_empty() {
            self.first = false;
            return self.out.flush();
        }
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, r)?;
                writeln!(self.out)?;
            }
            Format::Json => {
                write!(self.out, "{}", if self.first { "[\n" } else { ",\n" })?;
                serde_json::to_writer(&mut self.out, r)?;
            }
            Format::Csv => self.write_csv(r)?,
            Format::Text => self.write_text(r)?,
        }
        self.first = false;
        self.out.flush()
    }

    fn write_csv(&mut self, r: &ScanRecord) -> io::Result<()> {
        let path = csv_field(&r.path);
        let sha = r.sha256.as_deref().unwrap_or_default();
        let error = csv_field(r.error.as_deref().unwrap_or_default());
        let raw = r.path_base64.as_deref().unwrap_or_default();
        for m in &r.matches {
            let meta = serde_json::to_string(&m.meta).unwrap_or_default();
            writeln!(
                self.out,
                "{path},{},{},{},{},{},{},{},{},{},{},{},{},{},matched,{sha},{},,{raw}",
                m.ref_id,
                csv_field(&m.title),
                csv_field(&m.ref_path),
                m.query_start_s,
                m.query_end_s,
                m.ref_start_s,
                m.ref_end_s,
                m.speed,
                m.score,
                m.confidence,
                m.pitch_cents.map(|c| c.to_string()).unwrap_or_default(),
                m.ref_sha256,
                csv_field(&meta),
                r.duration_s,
            )?;
        }
        if r.matches.is_empty() {
            let status = if r.error.is_some() { "error" } else { "clean" };
            writeln!(
                self.out,
                "{path},,,,,,,,,,,,,,{status},{sha},{},{error},{raw}",
                r.duration_s
            )?;
        }
        Ok(())
    }

    fn write_text(&mut self, r: &ScanRecord) -> io::Result<()> {
        let paint = |code: &str, s: &str| {
            if self.how.color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        // Titles and file names come from uploaders: a crafted one must not move the cursor or
        // forge a result line.
        let path = escape_controls(&r.path);
        if let Some(e) = &r.error {
            // The message names the input already: the line says it once.
            let reason = e
                .strip_prefix(r.path.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(e);
            writeln!(
                self.out,
                "{path}: {} {}",
                paint("1;33", "error:"),
                escape_controls(reason)
            )?;
        } else if r.matches.is_empty() {
            writeln!(self.out, "{path}: {}", paint("32", "no match"))?;
        }
        for m in &r.matches {
            let pitch = m
                .pitch_cents
                .map(|c| format!(" pitch {c:+.0} cents"))
                .unwrap_or_default();
            let sha = m.ref_sha256.get(..SHORT_SHA).unwrap_or(&m.ref_sha256);
            let meta = if m.meta.is_empty() {
                String::new()
            } else {
                format!(" {{{}}}", meta_text(&m.meta))
            };
            writeln!(
                self.out,
                "{path}: {} [{}] upload {}–{} = reference {}–{} speed {:.3}{pitch} score {} confidence {:.4} ref {}{}",
                paint("1;31", &escape_controls(&m.title)),
                m.ref_id,
                clock(m.query_start_s),
                clock(m.query_end_s),
                clock(m.ref_start_s),
                clock(m.ref_end_s),
                m.speed,
                m.score,
                m.confidence,
                escape_controls(sha),
                escape_controls(&meta),
            )?;
        }
        Ok(())
    }

    /// Ends the output.
    pub fn finish(mut self) -> io::Result<()> {
        if self.format == Format::Json {
            writeln!(self.out, "{}", if self.first { "[]" } else { "\n]" })?;
        }
        if self.format == Format::Csv && self.first {
            writeln!(self.out, "{CSV_HEADER}")?;
        }
        self.out.flush()
    }
}

/// Metadata as `key=value` pairs separated by spaces; a value holding a space, a quote or a
/// brace is quoted (`licence="MIT OR Apache-2.0"`), so the pairs can be told apart.
pub fn meta_text(meta: &Metadata) -> String {
    let pairs: Vec<String> = meta
        .iter()
        .map(|(k, v)| {
            if v.is_empty() || v.contains([' ', '"', '{', '}', '\\']) {
                format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    pairs.join(" ")
}

/// The summary line printed on stderr after a scan.
pub fn summary_line(s: &ScanSummary) -> String {
    format!(
        "summary: inputs {} (matched {}, clean {}, unreadable {}), skipped {}; audio {:.1} s in {:.1} s wall ({:.0}× real time)",
        s.inputs, s.matched, s.clean, s.unreadable, s.skipped, s.audio_s, s.wall_s, s.x_real_time
    )
}

/// Writes control characters (C0, DEL, C1) as `\x1b`-style escapes, so one record stays one
/// line and a name cannot drive the terminal.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        // Control characters (Unicode category Cc) all lie below U+0100.
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
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
        assert_eq!(
            escape_controls("a\x1b[2Jb\nc\u{9b}"),
            "a\\x1b[2Jb\\x0ac\\x9b"
        );
        assert_eq!(escape_controls("plain – ü"), "plain – ü");
    }
}
