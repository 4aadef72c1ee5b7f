//! Writers for scan results: text, JSON, JSON Lines, CSV. The engine never prints; these do.
//!
//! JSON shape (one object per input, `--format jsonl` one per line, `json` an array):
//! `{"path", "path_base64"?, "duration_s", "error", "sha256", "matches": [{"ref_id", "title", "ref_path",
//! "ref_sha256", "meta", "query_start_s", "query_end_s", "ref_start_s", "ref_end_s", "speed",
//! "pitch_cents"?, "score", "confidence"}]}`. Times are seconds rounded to milliseconds; `error`
//! is a one-line message or null; `sha256` is the upload's content hash, null when it could not
//! be read. File names are bytes on Unix and JSON strings are Unicode: `path` is the name with
//! each invalid UTF-8 sequence replaced by U+FFFD, and only for such a name `path_base64` holds
//! its exact bytes (standard base64, padded), so no name is lost. Fields are only ever added to
//! this shape (downstream tools read it).
//!
//! CSV has a row for every input, so it can serve as an audit log: one per match (`status`
//! `matched`), else one with the match columns empty (`clean` or `error`). The first eleven
//! columns are those of earlier versions, in the same order; later ones are appended.

use std::io::{self, Write};
use std::path::Path;

use nasheed::index::Metadata;
use nasheed::Found;
use serde::Serialize;

use super::args::Format;

/// The result of scanning one input.
#[derive(Debug, Serialize)]
pub struct ScanRecord {
    /// The input as given (`-` for stdin); invalid UTF-8 replaced by U+FFFD.
    pub path: String,
    /// The input's name as raw bytes in base64, present only when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    /// Decoded duration (s), 0 when unreadable.
    pub duration_s: f64,
    /// Why the input could not be read.
    pub error: Option<String>,
    /// SHA-256 of the input's bytes (lowercase hex), `None` when they could not be read.
    pub sha256: Option<String>,
    /// Matches by start in the input.
    pub matches: Vec<MatchRecord>,
}

/// One match as written out.
#[derive(Debug, Serialize)]
pub struct MatchRecord {
    ref_id: i64,
    title: String,
    ref_path: String,
    ref_sha256: String,
    meta: Metadata,
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
            ref_sha256: f.ref_sha256.clone(),
            meta: f.meta.clone(),
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

impl ScanRecord {
    /// A record for the input named `name`, its name encoded as the JSON shape says.
    pub fn named(name: &Path) -> Self {
        let lossy = name.to_string_lossy();
        let path_base64 = match lossy {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(_) => {
                use base64::Engine as _;
                Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(name.as_os_str().as_encoded_bytes()),
                )
            }
        };
        ScanRecord {
            path: lossy.into_owned(),
            path_base64,
            duration_s: 0.0,
            error: None,
            sha256: None,
            matches: Vec::new(),
        }
    }
}

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

/// What a scan did, printed on stderr after every scan (and written as JSON with
/// `--summary-json`): `inputs` = `matched` + `clean` + `unreadable`; `skipped` counts folder
/// entries passed over (not regular files, link loops, a file seen under another name).
#[derive(Debug, Default, Serialize)]
pub struct ScanSummary {
    /// Inputs scanned (one record each).
    pub inputs: usize,
    /// Inputs with at least one match.
    pub matched: usize,
    /// Inputs read to the end without a match.
    pub clean: usize,
    /// Inputs that could not be read (their records carry the error).
    pub unreadable: usize,
    /// Folder entries passed over.
    pub skipped: usize,
    /// Audio decoded, seconds.
    pub audio_s: f64,
    /// Wall time of the scan, seconds.
    pub wall_s: f64,
    /// Audio seconds per wall second.
    pub x_real_time: f64,
}

impl ScanSummary {
    /// Counts one input's record.
    pub fn add(&mut self, r: &ScanRecord) {
        self.inputs += 1;
        if r.error.is_some() {
            self.unreadable += 1;
        } else if r.matches.is_empty() {
            self.clean += 1;
        } else {
            self.matched += 1;
        }
        self.audio_s += r.duration_s;
    }

    /// Sets the wall time and the speed.
    pub fn finish(&mut self, wall_s: f64) {
        self.audio_s = ms(self.audio_s);
        self.wall_s = ms(wall_s);
        self.x_real_time = (self.audio_s / wall_s.max(1e-9)).round();
    }

    /// The line printed on stderr.
    pub fn line(&self) -> String {
        format!(
            "summary: inputs {} (matched {}, clean {}, unreadable {}), skipped {}; audio {:.1} s in {:.1} s wall ({:.0}× real time)",
            self.inputs,
            self.matched,
            self.clean,
            self.unreadable,
            self.skipped,
            self.audio_s,
            self.wall_s,
            self.x_real_time
        )
    }
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
