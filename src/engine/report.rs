//! The output contract: what a scan reports for each input, serialised as the JSON that
//! `scan --format jsonl` prints one line of (and `json` an array of). Every front end (the CLI,
//! a service, a binding) hands out these types as they are.
//!
//! Shape: `{"path", "path_base64"?, "duration_s", "error", "error_kind"?, "sha256", "matches": [{"ref_id",
//! "title", "ref_path", "ref_sha256", "meta", "query_start_s", "query_end_s", "ref_start_s",
//! "ref_end_s", "speed", "pitch_cents"?, "score", "confidence", "evidence"?}]}` (`?`: only when
//! present; `evidence` is [`Basis`], the numbers behind the confidence).
//! Times are seconds rounded to milliseconds. Fields are only ever added to this shape, never
//! renamed or removed: downstream tools read it.
//!
//! File names are bytes on Unix and JSON strings are Unicode: `path` is the name with each
//! invalid UTF-8 sequence replaced by U+FFFD, and only for such a name `path_base64` holds its
//! exact bytes (standard base64, padded), so no name is lost.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::evidence::Basis;
use crate::engine::Found;
use crate::index::Metadata;

/// The result of scanning one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// The input as given (`-` for stdin); invalid UTF-8 replaced by U+FFFD.
    pub path: String,
    /// The input's name as raw bytes in base64, present only when it is not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_base64: Option<String>,
    /// Decoded duration (s), 0 when unreadable.
    pub duration_s: f64,
    /// Why the input could not be read: one line naming it; `None` when it was read.
    pub error: Option<String>,
    /// What kind of failure `error` is, present only with an error: a pipeline can retry a
    /// `timeout` and reject an `undecodable` upload without parsing the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// SHA-256 of the input's bytes (lowercase hex), `None` only when they could not be read.
    pub sha256: Option<String>,
    /// Matches, ordered by where they start in the input.
    pub matches: Vec<MatchRecord>,
}

/// One match: a stretch of the input that is a stretch of a reference recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// The reference's local id in this index (differs between an index and an imported pack).
    pub ref_id: i64,
    /// The reference's title.
    pub title: String,
    /// The reference's path as it was indexed.
    pub ref_path: String,
    /// SHA-256 of the reference's audio file: its identity in every index and pack.
    pub ref_sha256: String,
    /// The reference's metadata (group, language, source, tags...); `{}` when it has none.
    pub meta: Metadata,
    /// Start of the match in the input (s).
    pub query_start_s: f64,
    /// End of the match in the input (s).
    pub query_end_s: f64,
    /// Start of the match in the reference (s).
    pub ref_start_s: f64,
    /// End of the match in the reference (s).
    pub ref_end_s: f64,
    /// Reference seconds per input second (1.10: the input was sped up by 10 %).
    pub speed: f64,
    /// The input's pitch shift in cents, present only when pitch and tempo moved independently
    /// (a tempo-only edit: `speed` ≠ 1 with `pitch_cents` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch_cents: Option<f64>,
    /// Landmark hashes aligned at the match's offset.
    pub score: u32,
    /// Probability that the alignment is not chance (matches below the scan's minimum, 0.9 by
    /// default, are not reported).
    pub confidence: f64,
    /// The numbers behind the confidence: peaks checked and found, chance rates, alignments
    /// searched, the rival alignment, the alignment checked (see [`Basis`]). Optional: absent
    /// in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Basis>,
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
            // Floored, so a reported 1.0 is never a rounded 0.9999996.
            confidence: (f.confidence * 1e6).floor() / 1e6,
            evidence: f.evidence.clone(),
        }
    }
}

impl ScanRecord {
    /// An empty record for the input named `name`, its name encoded as the shape says.
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
            error_kind: None,
            sha256: None,
            matches: Vec::new(),
        }
    }
}

/// Why an input could not be scanned, in kinds a caller can route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes could not be read (a missing file, a failed spool, a read error).
    Unreadable,
    /// Not audio or video this build decodes, or damaged beyond recovery.
    Undecodable,
    /// Over a budget for one input: too long, too much digital silence, too many bytes.
    OverBudget,
    /// Not done within the wall-clock deadline set for one input.
    Timeout,
}

impl ErrorKind {
    /// The kind's name as it appears in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreadable => "unreadable",
            ErrorKind::Undecodable => "undecodable",
            ErrorKind::OverBudget => "over_budget",
            ErrorKind::Timeout => "timeout",
        }
    }
}

/// What a scan did: `inputs` = `matched` + `clean` + `unreadable`; `skipped` counts folder
/// entries passed over (not regular files, link loops, a file seen under another name).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}
