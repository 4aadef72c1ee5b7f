//! Writers: how scan records, reference lists and index totals are printed. The engine never
//! prints; these do, one file per format. The JSON shapes are those of the library's types
//! (`engine::report`, `index::TrackInfo`, `index::Stats`), serialised as they are.
//!
//! Adding a format is one new file here and one line in [`FORMATS`]: `--format` of `scan`,
//! `list` and `stats` offers whatever the list holds, for the outputs each format writes.

mod csv;
mod json;
mod jsonl;
mod text;

use std::io::{self, Write};

use nasheed::engine::report::{ScanRecord, ScanSummary};
use nasheed::index::{Metadata, Stats, TrackInfo};

/// What a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `scan`: one record per input.
    Scan,
    /// `list`: one entry per reference.
    List,
    /// `stats`: the index's totals.
    Stats,
}

/// An output format: its `--format` name, its help line, what it writes, how to make one.
pub struct Format {
    /// The `--format` value.
    pub name: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// The outputs it can write (others are not offered for it).
    pub writes: &'static [Output],
    /// A writer over `out`.
    pub new: fn(Box<dyn Write>, Presentation) -> Box<dyn Writer>,
}

/// Every format, in the order `--help` lists them; the first is the default.
pub const FORMATS: &[Format] = &[text::FORMAT, json::FORMAT, jsonl::FORMAT, csv::FORMAT];

/// Writes what a command prints, as it comes; [`Writer::finish`] closes the output.
/// A format implements the methods of the [`Output`]s it lists.
pub trait Writer {
    /// One scan record.
    fn record(&mut self, _r: &ScanRecord) -> io::Result<()> {
        Err(io::Error::other("this format does not write scan records"))
    }
    /// One reference of a listing.
    fn track(&mut self, _t: &TrackInfo) -> io::Result<()> {
        Err(io::Error::other("this format does not write references"))
    }
    /// The index's totals; `build_params_id` is this build's fingerprint id (a text note
    /// tells when the index's differs).
    fn stats(&mut self, _s: &Stats, _build_params_id: &str) -> io::Result<()> {
        Err(io::Error::other("this format does not write index totals"))
    }
    /// Ends the output (closes a JSON array, writes a CSV header that no row wrote) and flushes.
    fn finish(&mut self) -> io::Result<()>;
}

/// The format named `name` (one of [`FORMATS`]; clap has checked it).
pub fn format(name: &str) -> &'static Format {
    FORMATS
        .iter()
        .find(|f| f.name == name)
        .unwrap_or(&FORMATS[0])
}

/// `--format`'s parser for a command printing `output`: the names of the formats that write it.
pub fn parser(output: Output) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        FORMATS
            .iter()
            .filter(|f| f.writes.contains(&output))
            .map(|f| clap::builder::PossibleValue::new(f.name).help(f.help)),
    )
}

/// How records are presented, beyond their format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presentation {
    /// Only inputs with a match are written (`--quiet`, like `clamscan -i`).
    pub quiet: bool,
    /// ANSI colours in text output (`--color`).
    pub color: bool,
}

/// Hex digits of a reference's SHA-256 shown in text output: enough to be unique in any real
/// index, and accepted wherever an id is (a prefix of 8 or more).
pub const SHORT_SHA: usize = 12;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_every_format_has_a_unique_name() {
        assert_eq!(
            escape_controls("a\x1b[2Jb\nc\u{9b}"),
            "a\\x1b[2Jb\\x0ac\\x9b"
        );
        assert_eq!(escape_controls("plain – ü"), "plain – ü");
        for (i, f) in FORMATS.iter().enumerate() {
            assert!(FORMATS[..i].iter().all(|g| g.name != f.name), "{}", f.name);
            assert!(!f.writes.is_empty(), "{}", f.name);
        }
        assert_eq!(format("csv").name, "csv");
        assert!(FORMATS[0].writes.contains(&Output::Scan));
    }
}
