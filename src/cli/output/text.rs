//! `text` (the default): one line per match, per clean or unreadable input, per reference; the
//! index's totals as `key: value` lines. Titles and file names come from uploaders: control
//! characters are escaped, so a crafted name cannot move the cursor or forge a result line.

use std::io::{self, Write};

use nasheed::engine::report::ScanRecord;
use nasheed::index::{Stats, TrackInfo};

use super::{escape_controls, meta_text, Format, Output, Writer, SHORT_SHA};

/// The format's entry in the list.
pub const FORMAT: Format = Format {
    name: "text",
    help: "Human-readable lines",
    writes: &[Output::Scan, Output::List, Output::Stats],
    new: |out, how| {
        Box::new(Text {
            out,
            color: how.color,
        })
    },
};

struct Text {
    out: Box<dyn Write>,
    color: bool,
}

impl Text {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

impl Writer for Text {
    fn record(&mut self, r: &ScanRecord) -> io::Result<()> {
        let path = escape_controls(&r.path);
        if let Some(e) = &r.error {
            // The message names the input already: the line says it once.
            let reason = e
                .strip_prefix(r.path.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(e);
            let label = self.paint("1;33", "error:");
            writeln!(self.out, "{path}: {label} {}", escape_controls(reason))?;
        } else if r.matches.is_empty() {
            let label = self.paint("32", "no match");
            writeln!(self.out, "{path}: {label}")?;
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
            let title = self.paint("1;31", &escape_controls(&m.title));
            writeln!(
                self.out,
                "{path}: {title} [{}] upload {}–{} = reference {}–{} speed {:.3}{pitch} score {} confidence {:.4} ref {}{}",
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
        self.out.flush()
    }

    fn track(&mut self, t: &TrackInfo) -> io::Result<()> {
        writeln!(
            self.out,
            "{}\t{}\t{:.1}s\t{}\t{}\t{}",
            t.id.0,
            escape_controls(&t.title),
            t.duration_s,
            escape_controls(&t.path),
            t.sha256.get(..SHORT_SHA).unwrap_or(&t.sha256),
            escape_controls(&meta_text(&t.meta))
        )
    }

    fn stats(&mut self, s: &Stats, build_params_id: &str) -> io::Result<()> {
        // Size per hour means nothing without audio (it would divide by zero).
        let per_hour = if s.audio_hours > 0.0 {
            format!(
                "{:.2} MB per audio hour",
                s.bytes as f64 / 1e6 / s.audio_hours
            )
        } else {
            "no audio indexed".to_string()
        };
        let note = if s.params_id == build_params_id {
            String::new()
        } else {
            format!(" (this build uses {build_params_id}: scan refuses this index)")
        };
        writeln!(
            self.out,
            "tracks: {}\nhashes: {}\naudio: {:.2} h\nsize: {:.1} MB ({per_hour})\nparameters: {}{note}",
            s.tracks,
            s.hashes,
            s.audio_hours,
            s.bytes as f64 / 1e6,
            s.params_id
        )
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `m:ss.mmm`.
fn clock(s: f64) -> String {
    let neg = if s < 0.0 { "-" } else { "" };
    let s = s.abs();
    format!("{neg}{}:{:06.3}", (s / 60.0).floor() as u64, s % 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_minutes_seconds_millis() {
        assert_eq!(clock(75.5), "1:15.500");
        assert_eq!(clock(-0.25), "-0:00.250");
    }
}
