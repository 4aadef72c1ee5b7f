//! Evidence behind a match, for the reviewer of an appeal who is no audio engineer.
//!
//! Two layers. [`Basis`] is the numbers a match's confidence rests on (peaks checked and found,
//! chance rates, alignments searched, the rival alignment, the alignment checked); every match of
//! a scan carries it, as the `evidence` object of the JSON contract. [`Report`] is what an
//! evidence page shows: for each match of an upload (or, for an upload that matched nothing,
//! the best candidate and the rules that stopped it), every stored peak of the reference over
//! the checked stretch, placed in the upload's time and frequency under the alignment that was
//! checked, each marked found or not; the upload's own peaks and spectrogram there; and a
//! timeline of aligned peaks along the upload. The index holds no reference audio and none is
//! needed: the reference side is its stored peak constellation.
//!
//! Data only: nothing here prints or renders (the CLI's `evidence` module draws the page). A
//! report is rebuilt from a scan's record (its `evidence` says which alignment to draw) and one
//! more decoding pass over the upload, so the page's numbers are the scan's by construction and
//! `scan --evidence` never matches twice. This module reads the matcher's outcome through the
//! public [`Match`], [`Verification`] and [`verify`] helpers; it changes nothing in matching.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::{MatchRecord, ScanRecord};
use super::{survive, Budget, Error, Result, Scanner};
use crate::audio::{self, Limited, SymphoniaSource};
use crate::fingerprint::spectrogram::SpectrogramStream;
use crate::fingerprint::{FingerprintParams, Fingerprinter, Peak, Prints, Side, Warp};
use crate::index::{Store, TrackId};
use crate::matching::verify::{self, QueryPeaks, Verification};
use crate::matching::{self, Match, MatchParams};

/// The numbers behind one match's confidence: the `evidence` object of a match in the scan's
/// JSON. Shares and rates are fractions (0.031 = 3.1 %); see `matching::verify` for the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    /// Stored reference peaks in the stretch checked peak by peak.
    pub peaks_checked: u32,
    /// Of those, peaks the upload has at the same place (±1 frame, ±1 bin) under the alignment.
    pub peaks_found: u32,
    /// Chance that one reference peak is found at a wrong alignment (the larger of what the
    /// upload's peak density gives and the share found at eight deliberately wrong offsets).
    pub peak_chance: f64,
    /// Reference frames holding peaks in the stretch: the observations the confidence counts
    /// (an onset's harmonics align or miss together).
    pub events: u32,
    /// Of those, frames with at least one peak found.
    pub events_found: u32,
    /// Chance that one such frame is found at a wrong alignment.
    pub event_chance: f64,
    /// Alignments counted: every offset of every reference the pass that found the match touched,
    /// under every edit it tells apart, in every window of a long upload, twice (the two passes
    /// share the error rate; the multiple-test factor).
    pub alignments_searched: u64,
    /// Expected number of chance alignments at least this good over all those searched; the
    /// confidence is `exp(−chance_alignments)`.
    pub chance_alignments: f64,
    /// Landmark hashes aligned at this alignment (the match's `score`).
    pub hits: u32,
    /// Hashes aligned at the same reference's best other alignment of the stretch (0: none).
    pub rival_hits: u32,
    /// Where that rival alignment lies, in reference seconds from this one (`None`: no rival).
    pub rival_shift_s: Option<f64>,
    /// Standard deviations by which this alignment out-verifies the rival on the peaks that tell
    /// them apart; computed only in a close race (`None` otherwise).
    pub rival_lead_sd: Option<f64>,
    /// Standard deviations by which this alignment out-verifies the reference shifted by its own
    /// repetition periods (beat, bar, loop), the least over those compared (`None`: none could be).
    #[serde(default)]
    pub period_lead_sd: Option<f64>,
    /// The alignment that was checked, in frames.
    pub alignment: Alignment,
}

/// An alignment of upload onto reference as verification checked it: reference frame =
/// round(upload frame × `time_factor`) + `offset_frames`; upload bin = reference bin ×
/// `freq_factor`. The reported `speed` is a fit of the hits, finer than these grid factors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alignment {
    /// First and last upload frame with an aligned hash.
    pub query_frames: [u32; 2],
    /// Reference frame at upload frame 0 under the grid factor.
    pub offset_frames: i64,
    /// Reference frames per upload frame (the edit's time factor).
    pub time_factor: f64,
    /// Upload frequency per reference frequency (the edit's frequency factor).
    pub freq_factor: f64,
    /// Seconds per frame.
    pub frame_s: f64,
}

impl Basis {
    /// The basis of a verified match (`None` before verification); `frame_s` is seconds per frame.
    pub fn of(m: &Match, frame_s: f64) -> Option<Basis> {
        let v: Verification = m.verification?;
        let tail = verify::binomial_sf(
            v.events_found as f64 / verify::FRAMES_PER_EVENT,
            v.events as f64 / verify::FRAMES_PER_EVENT,
            v.event_chance,
        );
        Some(Basis {
            peaks_checked: v.checked,
            peaks_found: v.found,
            peak_chance: significant(v.chance, 6),
            events: v.events,
            events_found: v.events_found,
            event_chance: significant(v.event_chance, 6),
            alignments_searched: v.searched.round() as u64,
            chance_alignments: significant(v.searched * tail, 3),
            hits: m.score,
            rival_hits: m.rival,
            rival_shift_s: m
                .rival_offset
                .map(|r| ((r - m.offset) as f64 * frame_s * 1000.0).round() / 1000.0),
            rival_lead_sd: Some(sd(v.rival_lead)).filter(|x| x.is_finite()),
            period_lead_sd: Some(sd(v.period_lead)).filter(|x| x.is_finite()),
            alignment: Alignment {
                query_frames: [m.query_frames.0, m.query_frames.1],
                offset_frames: m.offset,
                time_factor: m.warp.time,
                freq_factor: m.warp.freq,
                frame_s,
            },
        })
    }

    /// Share of the checked peaks found.
    pub fn peak_share(&self) -> f64 {
        self.peaks_found as f64 / self.peaks_checked.max(1) as f64
    }
}

/// `x` to `digits` significant digits (JSON stays short; the page shows the same value).
fn significant(x: f64, digits: usize) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{:.*e}", digits.saturating_sub(1), x)
        .parse()
        .unwrap_or(x)
}

/// Why a candidate alignment was not reported: the rule it failed, with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stop {
    /// Fewer landmark hashes aligned than a match needs.
    TooFewHits {
        /// Hashes aligned.
        hits: u32,
        /// Hashes needed.
        need: u32,
    },
    /// Too small a share of the reference's peaks found in the upload.
    TooFewPeaks {
        /// Share found.
        share: f64,
        /// Share needed.
        need: f64,
    },
    /// Too likely to be chance.
    LowConfidence {
        /// The candidate's confidence.
        confidence: f64,
        /// Confidence needed.
        need: f64,
    },
    /// Another alignment of the same reference fits nearly as well, and neither the peaks that
    /// tell the two apart nor a repeat inside the reference settle which is right.
    Tie {
        /// Hashes by which this alignment leads the other (negative: it trails).
        lead_hits: i64,
        /// Lead needed, in hashes.
        need: u32,
        /// Standard deviations by which it out-verifies the other (`None`: not computable).
        lead_sd: Option<f64>,
        /// Standard deviations needed.
        need_sd: f64,
    },
    /// The reference shifted by one of its own repetition periods (a beat, a bar, a loop) fits
    /// the upload nearly as well: music in the same groove, not this recording.
    Period {
        /// Standard deviations by which it out-verifies the shifted reference, the least.
        lead_sd: f64,
        /// Standard deviations needed.
        need_sd: f64,
    },
    /// Passes every rule on its own, but a stronger or ambiguous alignment over the same
    /// stretch of the upload was preferred.
    Overruled,
}

/// The thresholds a match must pass, as a report states them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Landmark hashes aligned at one offset.
    pub min_hits: u32,
    /// Share of the reference's peaks found.
    pub min_peak_share: f64,
    /// ...and at least this multiple of the chance rate (absent, 0, in reports before it).
    #[serde(default)]
    pub min_peak_lift: f64,
    /// Lead in hashes over the reference's best other alignment.
    pub min_lead_hits: u32,
    /// Standard deviations that settle a closer race on the peaks.
    pub min_lead_sd: f64,
    /// Standard deviations by which a match must out-verify the reference shifted by its own
    /// repetition periods (absent, 0, in reports before the rule).
    #[serde(default)]
    pub min_period_sd: f64,
    /// Confidence.
    pub min_confidence: f64,
    /// Speed, tempo and pitch changes the triplet pass tells apart.
    pub edits_tried: usize,
    /// Hashes a candidate needs to be explained when nothing matched.
    pub candidate_min_hits: u32,
}

/// The upload a report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    /// Its name as given (invalid UTF-8 replaced).
    pub path: String,
    /// SHA-256 of its bytes (lowercase hex).
    pub sha256: Option<String>,
    /// Decoded duration (s).
    pub duration_s: f64,
}

/// A stored reference peak, where the alignment puts it in the upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignedPeak {
    /// Its time in the reference (s).
    pub ref_s: f64,
    /// Its frequency in the reference (Hz).
    pub ref_hz: f64,
    /// The upload time the alignment maps it to (s).
    pub at_s: f64,
    /// The upload frequency the alignment maps it to (Hz).
    pub at_hz: f64,
    /// The upload peak found there (s, Hz); `None`: missing in the upload.
    pub found: Option<[f64; 2]>,
}

/// Aligned reference peaks along the whole upload, counted in steps of `step_s`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Seconds per step.
    pub step_s: f64,
    /// Reference peaks found in the upload, per step.
    pub found: Vec<u32>,
    /// Reference peaks the alignment expected there but the upload lacks, per step.
    pub missed: Vec<u32>,
}

/// The upload's whitened log power (what peaks are picked from) over a stretch, pooled to at
/// most [`MAX_COLUMNS`] columns by maximum so that no peak disappears.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spectrogram {
    /// Upload time of the first column (s).
    pub start_s: f64,
    /// Seconds per column.
    pub column_s: f64,
    /// Hz per bin.
    pub hz_per_bin: f64,
    /// Bin of each column's first value.
    pub first_bin: usize,
    /// Columns (time), each the band's bins from `first_bin` up.
    pub columns: Vec<Vec<f32>>,
}

/// Columns at most in a report's spectrogram: a long match is pooled, not cut.
pub const MAX_COLUMNS: usize = 1200;

/// One alignment a report shows: a reported match, or an upload's best candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The match as the scan reported it (for a candidate: as it would have been reported).
    pub record: MatchRecord,
    /// Empty for a reported match; for a candidate, the rules it failed.
    pub stopped_by: Vec<Stop>,
    /// A candidate searched for with its reference alone, since stronger alignments of other
    /// references hid it: its confidence counts only that reference's alignments, so against
    /// the whole index it would be lower still.
    #[serde(default)]
    pub searched_alone: bool,
    /// The reference's length (s).
    pub ref_duration_s: f64,
    /// The upload stretch drawn (s): the one checked peak by peak.
    pub shown_s: [f64; 2],
    /// Every stored reference peak of that stretch, placed in the upload.
    pub peaks: Vec<AlignedPeak>,
    /// The upload's peaks in the stretch (s, Hz) that no reference peak aligns with.
    pub other_upload_peaks: Vec<[f64; 2]>,
    /// Aligned peaks along the whole upload.
    pub timeline: Timeline,
    /// The upload's spectrogram over the stretch (drawn, not serialised).
    #[serde(skip)]
    pub spectrogram: Spectrogram,
}

/// Everything an evidence page shows, serialised into the page as its machine-readable copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The tool and its version (`nasheed 0.1.0`).
    pub tool: String,
    /// Fingerprint-parameter id of the index the scan read.
    pub fingerprint_id: String,
    /// When the report was made (UTC, ISO 8601).
    pub generated_utc: String,
    /// The upload.
    pub upload: Upload,
    /// Whether the scan reported a match (for the reference asked about, if one was).
    pub matched: bool,
    /// The matches, or the best candidate; empty when no reference aligned at all.
    pub items: Vec<Item>,
    /// The thresholds.
    pub rules: Rules,
}

/// Hashes a candidate needs to be explained when an upload matched nothing: few enough that a
/// near miss shows, enough that the best of them is not noise.
pub const CANDIDATE_MIN_HITS: u32 = 3;

/// Upload seconds per timeline step for an upload of `duration_s`: 0.5 s, coarser for long ones.
fn timeline_step(duration_s: f64) -> f64 {
    (duration_s / 400.0).max(0.5)
}

/// Builds the report for the scan record of the upload in `file` (the record a scan of it
/// gave against `store`): its matches, or those of reference `focus` only; when there are none,
/// the best candidate (of `focus`, if given) and the rules that stopped it.
pub fn build_report(
    store: &dyn Store,
    file: &Path,
    record: &ScanRecord,
    focus: Option<TrackId>,
    params: &FingerprintParams,
    match_params: &MatchParams,
    budget: &Budget,
) -> Result<Report> {
    let mut chosen: Vec<Candidate> = record
        .matches
        .iter()
        .filter(|m| focus.is_none_or(|t| t.0 == m.ref_id) && m.evidence.is_some())
        .map(|m| (m.clone(), Vec::new(), false))
        .collect();
    let matched = !chosen.is_empty();
    if !matched {
        chosen.extend(best_candidate(
            store,
            file,
            focus,
            params,
            match_params,
            budget,
        )?);
        chosen.retain(|(m, _, _)| m.evidence.is_some());
    }
    let spans: Vec<(u32, u32)> = chosen
        .iter()
        .filter_map(|(m, _, _)| m.evidence.as_ref())
        .map(|b| widen(b.alignment.query_frames))
        .collect();
    let upload = gather(file, &spans, params, budget)?;
    let query = QueryPeaks::new(&upload.peaks, params.bins, upload.frames);
    let hz = params.sample_rate as f64 / params.fft_size as f64;
    let frame_s = params.frame_seconds();
    let mut ref_peaks: HashMap<TrackId, Vec<Peak>> = HashMap::new();
    let mut items = Vec::new();
    for ((record_m, stopped_by, searched_alone), spectrogram) in
        chosen.into_iter().zip(upload.spectrograms)
    {
        let Some(basis) = record_m.evidence.as_ref() else {
            continue;
        };
        let track = TrackId(record_m.ref_id);
        let reference = match ref_peaks.entry(track) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(store.peaks(track)?),
        };
        let ref_duration_s = store.track(track)?.map_or(0.0, |t| t.duration_s);
        let a = &basis.alignment;
        let warp = Warp {
            time: a.time_factor,
            freq: a.freq_factor,
        };
        let span = query.widen((a.query_frames[0], a.query_frames[1]));
        let r0 = (span.0 as f64 * warp.time).round() as i64 + a.offset_frames;
        let r1 = (span.1 as f64 * warp.time).round() as i64 + a.offset_frames;
        let start = reference.partition_point(|p| (p.frame as i64) < r0);
        let mut partners = std::collections::HashSet::new();
        let mut peaks = Vec::new();
        for p in reference[start..]
            .iter()
            .take_while(|p| p.frame as i64 <= r1)
        {
            let at_frame = (p.frame as i64 - a.offset_frames) as f64 / warp.time;
            let at_bin = p.bin as f64 * warp.freq;
            let found = match query.has(p, a.offset_frames, warp) {
                true => nearest(&upload.peaks, at_frame.round(), at_bin.round()),
                false => None,
            };
            if let Some(i) = found {
                partners.insert(i);
            }
            peaks.push(AlignedPeak {
                ref_s: round3(p.frame as f64 * frame_s),
                ref_hz: round1(p.bin as f64 * hz),
                at_s: round3(at_frame * frame_s),
                at_hz: round1(at_bin * hz),
                found: found.map(|i| {
                    let q = &upload.peaks[i];
                    [round3(q.frame as f64 * frame_s), round1(q.bin as f64 * hz)]
                }),
            });
        }
        let lo = upload.peaks.partition_point(|q| q.frame < span.0);
        let other_upload_peaks = upload.peaks[lo..]
            .iter()
            .enumerate()
            .take_while(|(_, q)| q.frame <= span.1)
            .filter(|(i, _)| !partners.contains(&(lo + i)))
            .map(|(_, q)| [round3(q.frame as f64 * frame_s), round1(q.bin as f64 * hz)])
            .collect();
        let step_s = timeline_step(upload.duration_s);
        let steps = (upload.duration_s / step_s).ceil().max(1.0) as usize;
        let mut timeline = Timeline {
            step_s,
            found: vec![0; steps],
            missed: vec![0; steps],
        };
        for p in &peaks {
            let i = ((p.at_s / step_s).max(0.0) as usize).min(steps - 1);
            match p.found {
                Some(_) => timeline.found[i] += 1,
                None => timeline.missed[i] += 1,
            }
        }
        items.push(Item {
            record: record_m.clone(),
            stopped_by,
            searched_alone,
            ref_duration_s,
            shown_s: [
                round3(span.0 as f64 * frame_s),
                round3((span.1 + 1) as f64 * frame_s),
            ],
            peaks,
            other_upload_peaks,
            timeline,
            spectrogram,
        });
    }
    Ok(Report {
        tool: format!("nasheed {}", env!("CARGO_PKG_VERSION")),
        fingerprint_id: store.params_id().to_string(),
        generated_utc: utc_now(),
        upload: Upload {
            path: record.path.clone(),
            sha256: record.sha256.clone(),
            duration_s: record.duration_s,
        },
        matched,
        items,
        rules: Rules {
            min_hits: match_params.min_score,
            min_peak_share: match_params.min_fraction,
            min_peak_lift: match_params.min_lift,
            min_lead_hits: match_params.min_margin,
            min_lead_sd: verify::DECISIVE_Z,
            min_period_sd: match_params.min_period_lead,
            min_confidence: match_params.min_confidence,
            edits_tried: crate::matching::invariant::edits_resolved(&match_params.triplets).round()
                as usize,
            candidate_min_hits: CANDIDATE_MIN_HITS,
        },
    })
}

/// The checked stretch around an alignment's hits (as [`QueryPeaks::widen`], before the end of
/// the upload is known).
fn widen([q0, q1]: [u32; 2]) -> (u32, u32) {
    (
        q0.saturating_sub(verify::VERIFY_MARGIN_FRAMES),
        q1.saturating_add(verify::VERIFY_MARGIN_FRAMES),
    )
}

/// The upload peak (index into `peaks`, sorted by frame and bin) nearest to (`frame`, `bin`)
/// within ±1 frame and ±1 bin: the tolerance verification allows.
fn nearest(peaks: &[Peak], frame: f64, bin: f64) -> Option<usize> {
    let lo = peaks.partition_point(|q| (q.frame as f64) < frame - 1.0);
    peaks[lo..]
        .iter()
        .enumerate()
        .take_while(|(_, q)| q.frame as f64 <= frame + 1.0)
        .filter(|(_, q)| (q.bin as f64 - bin).abs() <= 1.0)
        .min_by(|(_, a), (_, b)| {
            let d = |q: &Peak| (q.frame as f64 - frame).abs() + (q.bin as f64 - bin).abs();
            d(a).total_cmp(&d(b))
        })
        .map(|(i, _)| lo + i)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What one more decoding pass over the upload yields for a report.
struct Gathered {
    /// The upload's peaks, as a scan picks them (query side), sorted by (frame, bin).
    peaks: Vec<Peak>,
    /// Frames analysed.
    frames: u32,
    /// Decoded seconds.
    duration_s: f64,
    /// One spectrogram per stretch asked for.
    spectrograms: Vec<Spectrogram>,
}

/// Decodes the upload once more: its peaks (landmarks are dropped as they come, so memory holds
/// peaks only) and its spectrogram over each of `spans` (frames), pooled as it streams.
fn gather(
    file: &Path,
    spans: &[(u32, u32)],
    params: &FingerprintParams,
    budget: &Budget,
) -> Result<Gathered> {
    let err = |source| Error::Audio {
        path: file.display().to_string(),
        source,
    };
    let (lo, hi) = params.bins;
    let mut grids: Vec<(u32, Spectrogram)> = spans
        .iter()
        .map(|&(a, b)| {
            let pool = ((b - a + 1) as usize).div_ceil(MAX_COLUMNS).max(1) as u32;
            let spec = Spectrogram {
                start_s: a as f64 * params.frame_seconds(),
                column_s: pool as f64 * params.frame_seconds(),
                hz_per_bin: params.sample_rate as f64 / params.fft_size as f64,
                first_bin: lo,
                columns: Vec::new(),
            };
            (pool, spec)
        })
        .collect();
    let mut fp = Fingerprinter::new(params, Side::Query);
    let mut spec = SpectrogramStream::new(params);
    let mut prints = Prints::default();
    let mut frames = Vec::new();
    let mut frame = 0u32;
    let info = survive(|| {
        let src = SymphoniaSource::open(file)?;
        let mut src = Limited::new(src, budget.max_duration_s, budget.max_silence_s)
            .with_deadline(budget.deadline);
        audio::stream_mono(&mut src, params.sample_rate, |block| {
            fp.push(block, &mut prints);
            prints.landmarks.clear();
            if grids.is_empty() {
                return;
            }
            spec.push(block, &mut frames);
            for f in frames.drain(..) {
                for ((pool, grid), &(a, b)) in grids.iter_mut().zip(spans) {
                    if !(a..=b).contains(&frame) {
                        continue;
                    }
                    let band = &f[lo..hi.min(f.len())];
                    let col = ((frame - a) / *pool) as usize;
                    if col == grid.columns.len() {
                        grid.columns.push(band.to_vec());
                    } else if let Some(c) = grid.columns.get_mut(col) {
                        for (x, &y) in c.iter_mut().zip(band) {
                            *x = x.max(y);
                        }
                    }
                }
                frame += 1;
            }
        })
    })
    .map_err(err)?;
    let total = fp.finish(&mut prints);
    Ok(Gathered {
        peaks: prints.peaks,
        frames: total,
        duration_s: info.duration_s,
        spectrograms: grids.into_iter().map(|(_, g)| g).collect(),
    })
}

/// A candidate: its record, the rules it fails, and whether it was searched for alone.
type Candidate = (MatchRecord, Vec<Stop>, bool);

/// The best alignment of an upload that matched nothing (of reference `focus` only, if given):
/// matched again with every rule but the hash count relaxed, then judged by the real rules.
/// When stronger alignments of other references hide every one of `focus`, it is searched for
/// alone (the third element is then true).
fn best_candidate(
    store: &dyn Store,
    file: &Path,
    focus: Option<TrackId>,
    params: &FingerprintParams,
    match_params: &MatchParams,
    budget: &Budget,
) -> Result<Option<Candidate>> {
    let relaxed = MatchParams {
        min_score: CANDIDATE_MIN_HITS.min(match_params.min_score),
        min_fraction: 0.0,
        min_lift: 0.0,
        min_margin: 0,
        min_period_lead: f64::NEG_INFINITY,
        min_confidence: 0.0,
        ..match_params.clone()
    };
    let scanner = Scanner::new(store, params, &relaxed);
    let how = (file, focus, params, match_params, budget);
    if let Some(c) = search(&scanner, &scanner, how)? {
        return Ok(Some(c));
    }
    match focus {
        Some(track) => {
            let alone = Alone {
                scanner: &scanner,
                track,
            };
            Ok(search(&alone, &scanner, how)?.map(|(m, s, _)| (m, s, true)))
        }
        None => Ok(None),
    }
}

/// One candidate search over `refs` (the scanner's references, or one of them alone).
fn search<R: matching::References<Error = crate::index::IndexError> + ?Sized>(
    refs: &R,
    scanner: &Scanner,
    (file, focus, params, match_params, budget): (
        &Path,
        Option<TrackId>,
        &FingerprintParams,
        &MatchParams,
        &Budget,
    ),
) -> Result<Option<Candidate>> {
    let mut windows = matching::WindowMatcher::new(refs, &scanner.match_params);
    let mut peaks = Vec::new();
    let mut pushed = Ok(());
    let fp = super::stream_file(file, params, Side::Query, budget, &mut |part, done| {
        if pushed.is_ok() {
            peaks.extend_from_slice(&part.peaks);
            pushed = windows.push(part, done);
        }
    })?;
    pushed?;
    let best = windows
        .finish(fp.frames)?
        .into_iter()
        .filter(|m| focus.is_none_or(|t| m.track == t))
        .max_by(|a, b| {
            a.confidence
                .total_cmp(&b.confidence)
                .then(a.score.cmp(&b.score))
        });
    let Some(m) = best else {
        return Ok(None);
    };
    let query = QueryPeaks::new(&peaks, params.bins, fp.frames);
    let reference = refs.peaks(m.track)?;
    let stopped_by = stops(&m, &query, &reference, match_params);
    let found = scanner.found(vec![m], fp.duration_s);
    Ok(found
        .first()
        .map(|f| (MatchRecord::from(f), stopped_by, false)))
}

/// One reference of a scanner's index as if it were the only one: what explains why a named
/// reference did not match when other references' stronger alignments hide its own.
struct Alone<'a> {
    scanner: &'a Scanner<'a>,
    track: TrackId,
}

impl matching::References for Alone<'_> {
    type Error = crate::index::IndexError;

    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> std::result::Result<(), Self::Error> {
        let track = self.track;
        self.scanner.lookup(hashes, cap, &mut |h, t, f| {
            if t == track {
                hit(h, t, f)
            }
        })
    }

    fn lookup_triplets(
        &self,
        keys: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(TrackId, crate::fingerprint::triplets::StoredTriplet),
    ) -> std::result::Result<(), Self::Error> {
        let track = self.track;
        self.scanner.lookup_triplets(keys, cap, &mut |t, s| {
            if t == track {
                hit(t, s)
            }
        })
    }

    fn peaks(&self, track: TrackId) -> std::result::Result<Vec<Peak>, Self::Error> {
        self.scanner.peaks(track)
    }

    fn frames(&self, track: TrackId) -> u32 {
        self.scanner.frames(track)
    }
}

/// Standard deviations as reports give them: to two decimals.
fn sd(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The rules of `p` that alignment `m` fails ([`Stop::Overruled`] when it fails none).
fn stops(m: &Match, query: &QueryPeaks, reference: &[Peak], p: &MatchParams) -> Vec<Stop> {
    let mut out = Vec::new();
    if m.score < p.min_score {
        out.push(Stop::TooFewHits {
            hits: m.score,
            need: p.min_score,
        });
    }
    if let Some(v) = m.verification {
        let need = p.peak_share_needed(v.chance);
        if v.fraction() < need {
            out.push(Stop::TooFewPeaks {
                share: (v.fraction() * 10_000.0).round() / 10_000.0,
                need: (need * 10_000.0).ceil() / 10_000.0,
            });
        }
    }
    if m.confidence < p.min_confidence {
        out.push(Stop::LowConfidence {
            confidence: (m.confidence * 1e6).floor() / 1e6,
            need: p.min_confidence,
        });
    }
    if m.score < m.rival + p.min_margin {
        let rival = verify::against_rival(query, reference, m, query.widen(m.query_frames));
        if !verify::tie_explained(rival) {
            out.push(Stop::Tie {
                lead_hits: m.score as i64 - m.rival as i64,
                need: p.min_margin,
                lead_sd: rival.map(|r| sd(r.lead)).filter(|x| x.is_finite()),
                need_sd: verify::DECISIVE_Z,
            });
        }
    }
    let lead = verify::period_lead(query, reference, m, query.widen(m.query_frames));
    if lead < p.min_period_lead {
        out.push(Stop::Period {
            lead_sd: sd(lead),
            need_sd: p.min_period_lead,
        });
    }
    if out.is_empty() {
        out.push(Stop::Overruled);
    }
    out
}

/// The time now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_at(secs)
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian calendar).
fn utc_at(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil: eras of 400 years starting on 1 March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_come_out_right() {
        assert_eq!(utc_at(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_at(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn nearest_keeps_to_the_verification_tolerance() {
        let p = |frame, bin| Peak {
            frame,
            bin,
            salience: 1.0,
            sub: [0, 0],
        };
        let peaks = vec![p(9, 50), p(10, 52), p(11, 40), p(12, 51)];
        assert_eq!(nearest(&peaks, 10.0, 51.0), Some(1));
        assert_eq!(nearest(&peaks, 12.0, 50.0), Some(3));
        assert_eq!(nearest(&peaks, 11.0, 45.0), None);
        assert_eq!(significant(0.000123456, 3), 0.000123);
        assert_eq!(significant(123456.0, 2), 120000.0);
    }
}
