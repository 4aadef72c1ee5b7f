//! `csv`: an audit log of a scan, RFC 4180. A row for every input: one per match (`status`
//! `matched`), else one with the match columns empty (`clean` or `error`). The first eleven
//! columns are those of earlier versions, in the same order; later ones are appended.

use std::io::{self, Write};

use nasheed::engine::report::ScanRecord;

use super::{Format, Output, Writer};

/// The format's entry in the list.
pub const FORMAT: Format = Format {
    name: "csv",
    help: "One row per match, and one per clean or unreadable input (`status` column)",
    writes: &[Output::Scan],
    new: |out, _| {
        Box::new(Csv {
            out,
            header_written: false,
        })
    },
};

/// The header: the columns of earlier versions first, in their order, then the added ones.
const HEADER: &str = "path,ref_id,title,ref_path,query_start_s,query_end_s,ref_start_s,ref_end_s,speed,score,confidence,pitch_cents,ref_sha256,meta,status,sha256,duration_s,error,path_base64";

struct Csv {
    out: Box<dyn Write>,
    header_written: bool,
}

impl Csv {
    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            writeln!(self.out, "{HEADER}")?;
            self.header_written = true;
        }
        Ok(())
    }
}

impl Writer for Csv {
    fn record(&mut self, r: &ScanRecord) -> io::Result<()> {
        self.header()?;
        let path = field(&r.path);
        let sha = r.sha256.as_deref().unwrap_or_default();
        let error = field(r.error.as_deref().unwrap_or_default());
        let raw = r.path_base64.as_deref().unwrap_or_default();
        for m in &r.matches {
            let meta = serde_json::to_string(&m.meta).unwrap_or_default();
            writeln!(
                self.out,
                "{path},{},{},{},{},{},{},{},{},{},{},{},{},{},matched,{sha},{},,{raw}",
                m.ref_id,
                field(&m.title),
                field(&m.ref_path),
                m.query_start_s,
                m.query_end_s,
                m.ref_start_s,
                m.ref_end_s,
                m.speed,
                m.score,
                m.confidence,
                m.pitch_cents.map(|c| c.to_string()).unwrap_or_default(),
                m.ref_sha256,
                field(&meta),
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
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}

/// Quotes a field when needed (RFC 4180).
fn field(s: &str) -> String {
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
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(field("plain"), "plain");
    }
}
