//! The invariant first pass: triplet hits → candidates with their edit (issue 13).
//!
//! Each hit of an upload triplet on a stored one gives a time factor (reference span ÷ upload
//! span), a pitch shift (the anchors' log-frequency difference) and, under that factor, an
//! offset. A true match piles its hits on one (reference, factor, shift, offset) cell; chance
//! hits spread over all of them. Cells are counted by sorting packed keys (a hash map cost
//! ~100 ns a hit, and hits grow with the index); the strongest cells are then refined on their
//! own hits: a fine search over the time factor for the offset line holding most hits, a
//! least-squares line through them, the median shift. [`fine_pass`] then lets the reference's
//! peaks settle the factors the hits leave loose, before verification.
//!
//! Like the rest of matching, this sees the index only through [`References`]; [`first_pass`]
//! numbers the references it hits densely for the vote and maps them back.

use std::collections::HashMap;

use super::verify::QueryPeaks;
use super::{Line, Match, MatchParams, References};
use crate::fingerprint::triplets::{self, FinePeak, QueryTriplet, TripletParams};
use crate::fingerprint::{Peak, Prints, Warp};
use crate::ids::TrackId;

/// One upload triplet found in a reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TupleHit {
    /// The reference, numbered densely by the caller (below 2^24).
    pub reference: u32,
    /// Upload anchor frame.
    pub query_t: f32,
    /// Reference anchor frame.
    pub ref_t: f32,
    /// ln(time factor): reference frames per upload frame.
    pub ln_time: f32,
    /// Upload minus reference log frequency (semitones).
    pub shift: f32,
}

/// The first pass over triplets for one upload window: its strongest candidates, their edit
/// settled by [`fine_pass`] (unverified), and the alignments searched.
pub fn first_pass<R: References + ?Sized>(
    refs: &R,
    query: &Prints,
    query_frames: u32,
    peaks: &QueryPeaks,
    p: &MatchParams,
) -> Result<(Vec<Match>, f64), R::Error> {
    let tp = &p.triplets;
    let fine: Vec<FinePeak> = query.peaks.iter().map(FinePeak::of).collect();
    let uploads = triplets::query_triplets(&fine, tp, tp.rank_window);
    // (key, upload triplet) for every probe, sorted: the triplets probing a key are one run.
    let mut probes: Vec<(u32, u32)> = Vec::new();
    let mut keys = Vec::new();
    for (i, q) in uploads.iter().enumerate() {
        triplets::probes(q, tp, &mut keys);
        probes.extend(keys.iter().map(|&k| (k, i as u32)));
    }
    probes.sort_unstable();
    probes.dedup();
    // Time factors are compared as differences of logarithms, the stored spans' (eighths of a
    // frame, nearly all under 2^9) from a table: a logarithm per hit was 3 % of a scan.
    let ln_upload_spans: Vec<f32> = uploads.iter().map(|q| q.span.ln()).collect();
    let ln_spans: Vec<f32> = (0..512).map(|s| (s as f32 / 8.0).ln()).collect();
    let range = (
        tp.time_factors.0.ln(),
        tp.time_factors.1.ln(),
        tp.max_shift_semitones,
    );
    keys.clear();
    keys.extend(probes.iter().map(|p| p.0));
    keys.dedup();
    // References numbered densely in the order they are first hit.
    let mut dense: HashMap<TrackId, u32, super::FastHash> = HashMap::default();
    let mut tracks: Vec<TrackId> = Vec::new();
    let mut last: Option<(TrackId, u32)> = None;
    let mut run = (u32::MAX, 0, 0);
    let mut hits = Vec::new();
    refs.lookup_triplets(&keys, p.triplet_cap, &mut |track, stored| {
        // A key's postings come by track: most lookups repeat the last one.
        let r = match last {
            Some((t, r)) if t == track => r,
            _ => {
                let r = *dense.entry(track).or_insert_with(|| {
                    tracks.push(track);
                    tracks.len() as u32 - 1
                });
                last = Some((track, r));
                r
            }
        };
        // The run of upload triplets probing this key (found once per key, not per posting).
        if run.0 != stored.key {
            let from = probes.partition_point(|p| p.0 < stored.key);
            let len = probes[from..].partition_point(|p| p.0 == stored.key);
            run = (stored.key, from, from + len);
        }
        let (t, l, _) = stored.position();
        let ln_span = ln_spans
            .get(stored.span as usize)
            .copied()
            .unwrap_or_else(|| (stored.span as f32 / 8.0).ln());
        for &(_, i) in &probes[run.1..run.2] {
            let i = i as usize;
            if let Some(h) = hit(&uploads[i], ln_upload_spans[i], r, (t, l, ln_span), range) {
                hits.push(h);
            }
        }
    })?;
    let trials = alignments_searched(tracks.iter().map(|&t| refs.frames(t)), query_frames, tp);
    let mut out = Vec::new();
    for c in vote(&hits).iter().take(p.triplet_candidates) {
        let track = tracks[c.reference as usize];
        let reference = refs.peaks(track)?;
        out.push(fine_pass(c, peaks, &reference).to_match(track));
    }
    Ok((out, trials))
}

/// The hit of upload triplet `q` (its span's logarithm `ln_q_span`) on a stored triplet at
/// (`t`, `l`, ln span), if its factors lie in the range searched (ln time factors, semitones).
pub fn hit(
    q: &QueryTriplet,
    ln_q_span: f32,
    reference: u32,
    (t, l, ln_span): (f32, f32, f32),
    (ln_lo, ln_hi, max_shift): (f32, f32, f32),
) -> Option<TupleHit> {
    let ln_time = ln_span - ln_q_span;
    let shift = q.l - l;
    (ln_time >= ln_lo && ln_time <= ln_hi && shift.abs() <= max_shift).then_some(TupleHit {
        reference,
        query_t: q.t,
        ref_t: t,
        ln_time,
        shift,
    })
}

/// A candidate alignment from the first pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The reference (the caller's numbering).
    pub reference: u32,
    /// Distinct (upload anchor, reference anchor) pairs on the line.
    pub score: u32,
    /// Reference frame = intercept + time × upload frame.
    pub line: Line,
    /// Upload minus reference pitch (semitones).
    pub semitones: f64,
    /// First and last upload anchor frame on the line.
    pub query_span: (f32, f32),
}

impl Candidate {
    /// The candidate as an unverified match on `track` (the caller's id for `reference`), for
    /// [`super::verify::verify_candidates`].
    pub fn to_match(&self, track: TrackId) -> Match {
        Match {
            track,
            query_frames: (
                self.query_span.0.max(0.0) as u32,
                self.query_span.1.max(0.0) as u32,
            ),
            offset: self.line.intercept.round() as i64,
            warp: self.warp(),
            score: self.score,
            rival: 0,
            rival_offset: None,
            verification: None,
            confidence: 0.0,
            line: self.line,
            pass: super::Pass::Triplets,
        }
    }

    /// The edit as a warp (time factor, frequency factor).
    pub fn warp(&self) -> Warp {
        Warp {
            time: self.line.time,
            freq: 2f64.powf(self.semitones / 12.0),
        }
    }
}

/// Cell widths of the vote: ln time factor, semitones, offset frames.
const TIME_CELL: f32 = 0.03;
const SHIFT_CELL: f32 = 0.5;
const OFFSET_CELL: f32 = 32.0;
/// Strongest cells refined per upload window.
const REFINED_CELLS: usize = 30;

/// Added to an offset cell to pack it: the window's offsets (from a few hundred cells below
/// zero to a long reference's length) then vary only in the low bits, and the radix sort skips
/// the digits above (a bias of 2^29 flipped every bit between −1 and 0).
const OFFSET_BIAS: i64 = (1 << 29) + (1 << 10);

/// The cell of a hit, packed so that sorting groups a cell's hits: reference 24 bits, time
/// cell 5, shift cell 5, offset cell 30.
fn cell_key(h: &TupleHit) -> u64 {
    let tb = (h.ln_time / TIME_CELL).round() as i64;
    let fb = (h.shift / SHIFT_CELL).round() as i64;
    let factor = cell_factor(tb);
    let ob = ((h.ref_t - h.query_t * factor) / OFFSET_CELL).floor() as i64;
    ((h.reference as u64 & 0xff_ffff) << 40)
        | (((tb + 16).clamp(0, 31) as u64) << 35)
        | (((fb + 16).clamp(0, 31) as u64) << 30)
        | ((ob + OFFSET_BIAS).clamp(0, (1 << 30) - 1) as u64)
}

/// The time factor at the centre of time cell `tb`, from a table over the cells the packed key
/// holds (an exponential per hit was a tenth of the vote).
fn cell_factor(tb: i64) -> f32 {
    static FACTORS: std::sync::OnceLock<[f32; 32]> = std::sync::OnceLock::new();
    let table =
        FACTORS.get_or_init(|| std::array::from_fn(|i| ((i as f32 - 16.0) * TIME_CELL).exp()));
    match table.get((tb + 16) as usize) {
        Some(&f) => f,
        None => (tb as f32 * TIME_CELL).exp(),
    }
}

fn unpack_cell(k: u64) -> (u32, i32, i32, i64) {
    (
        (k >> 40) as u32,
        ((k >> 35) & 31) as i32 - 16,
        ((k >> 30) & 31) as i32 - 16,
        (k & ((1 << 30) - 1)) as i64 - OFFSET_BIAS,
    )
}

/// Sorts by LSD radix, 11 bits a pass, skipping passes whose digit never varies (the reference
/// bits of a small index, the time cells of one edit).
pub(super) fn radix_sort(keys: &mut Vec<u64>) {
    let mut tmp = vec![0u64; keys.len()];
    let (or, and) = keys
        .iter()
        .fold((0u64, u64::MAX), |(o, a), &k| (o | k, a & k));
    let varying = or ^ and;
    for shift in (0..64).step_by(11) {
        if (varying >> shift) & 0x7ff == 0 {
            continue;
        }
        let mut count = [0usize; 2049];
        for &k in keys.iter() {
            count[((k >> shift) & 0x7ff) as usize + 1] += 1;
        }
        for i in 1..2049 {
            count[i] += count[i - 1];
        }
        for &k in keys.iter() {
            let d = ((k >> shift) & 0x7ff) as usize;
            tmp[count[d]] = k;
            count[d] += 1;
        }
        std::mem::swap(keys, &mut tmp);
    }
}

/// Votes on the hits: the best candidate of each reference whose strongest cells hold at
/// least two hits, strongest first.
pub fn vote(hits: &[TupleHit]) -> Vec<Candidate> {
    let mut keys: Vec<u64> = hits.iter().map(cell_key).collect();
    radix_sort(&mut keys);
    let mut top: Vec<(u32, u64)> = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let j = i + keys[i..].iter().take_while(|&&k| k == keys[i]).count();
        if j - i >= 2 {
            top.push(((j - i) as u32, keys[i]));
        }
        i = j;
    }
    top.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    top.truncate(REFINED_CELLS);
    // The hits of the references the top cells name, in one pass.
    let mut refs: Vec<u32> = top.iter().map(|&(_, k)| unpack_cell(k).0).collect();
    refs.sort_unstable();
    refs.dedup();
    let mut by_ref: Vec<Vec<TupleHit>> = vec![Vec::new(); refs.len()];
    for h in hits {
        if let Ok(r) = refs.binary_search(&h.reference) {
            by_ref[r].push(*h);
        }
    }
    let mut best: Vec<Option<Candidate>> = vec![None; refs.len()];
    for &(_, k) in &top {
        let (reference, tb, fb, ob) = unpack_cell(k);
        let Ok(r) = refs.binary_search(&reference) else {
            continue;
        };
        if let Some(c) = refine(&by_ref[r], reference, tb, fb, ob) {
            if best[r].is_none_or(|b| c.score > b.score) {
                best[r] = Some(c);
            }
        }
    }
    let mut out: Vec<Candidate> = best.into_iter().flatten().collect();
    out.sort_unstable_by(|a, b| b.score.cmp(&a.score).then(a.reference.cmp(&b.reference)));
    out
}

/// Refines one cell on its reference's hits: the hits near the cell, the time factor (0.2 %
/// steps over ±5 %) whose 4-frame offset window holds most of them, then a line fitted through
/// those when they spread over enough upload time.
fn refine(hits: &[TupleHit], reference: u32, tb: i32, fb: i32, ob: i64) -> Option<Candidate> {
    let lc = tb as f32 * TIME_CELL;
    let cell_factor = lc.exp();
    let near: Vec<&TupleHit> = hits
        .iter()
        .filter(|h| {
            (h.ln_time - lc).abs() <= 1.5 * TIME_CELL
                && (h.shift - fb as f32 * SHIFT_CELL).abs() <= 1.5 * SHIFT_CELL
                && ((h.ref_t - h.query_t * cell_factor) / OFFSET_CELL - (ob as f32 + 0.5)).abs()
                    <= 1.5
        })
        .collect();
    let (mut score, mut ln_time, mut offset) = (0usize, lc, 0f32);
    let mut offs: Vec<f32> = Vec::with_capacity(near.len());
    for s in -25..=25 {
        let l = lc + s as f32 * 0.002;
        let factor = l.exp();
        offs.clear();
        offs.extend(near.iter().map(|h| h.ref_t - h.query_t * factor));
        offs.sort_unstable_by(f32::total_cmp);
        let mut lo = 0;
        for hi in 0..offs.len() {
            while offs[hi] - offs[lo] > 4.0 {
                lo += 1;
            }
            if hi + 1 - lo > score {
                score = hi + 1 - lo;
                ln_time = l;
                offset = 0.5 * (offs[hi] + offs[lo]);
            }
        }
    }
    if score < 2 {
        return None;
    }
    let factor = ln_time.exp();
    let inliers: Vec<&TupleHit> = near
        .into_iter()
        .filter(|h| (h.ref_t - h.query_t * factor - offset).abs() <= 3.0)
        .collect();
    let n = inliers.len() as f64;
    let mq = inliers.iter().map(|h| h.query_t as f64).sum::<f64>() / n;
    let mr = inliers.iter().map(|h| h.ref_t as f64).sum::<f64>() / n;
    let sqq: f64 = inliers
        .iter()
        .map(|h| (h.query_t as f64 - mq).powi(2))
        .sum();
    let sqr: f64 = inliers
        .iter()
        .map(|h| (h.query_t as f64 - mq) * (h.ref_t as f64 - mr))
        .sum();
    let mut line = Line {
        time: factor as f64,
        intercept: offset as f64,
    };
    // Fitted only over more than ~10 frames of spread: shorter, the slope is noise.
    if n >= 4.0 && sqq / n > 100.0 && (sqr / sqq - factor as f64).abs() < 0.02 {
        line = Line {
            time: sqr / sqq,
            intercept: mr - sqr / sqq * mq,
        };
    }
    let mut shifts: Vec<f32> = inliers.iter().map(|h| h.shift).collect();
    shifts.sort_unstable_by(f32::total_cmp);
    let mut pairs: Vec<(i32, i32)> = inliers
        .iter()
        .map(|h| (h.query_t.round() as i32, h.ref_t.round() as i32))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let first = inliers.iter().map(|h| h.query_t).fold(f32::MAX, f32::min);
    let last = inliers.iter().map(|h| h.query_t).fold(f32::MIN, f32::max);
    Some(Candidate {
        reference,
        score: pairs.len() as u32,
        line,
        semitones: shifts[shifts.len() / 2] as f64,
        query_span: (first, last),
    })
}

/// Settles a candidate's factors with the reference's own peaks: the verifier's count over a
/// small grid around them (time ±1.5 %, or ±3 % when the hits span under 400 frames, in 0.25 %
/// steps; pitch ±30 cents in 10-cent steps; intercept ±1 frame about the stretch's centre).
/// Hits pin the time factor to ~1 % at best, which misplaces peaks at a stretch's ends.
/// The grid is searched a factor at a time (time, then pitch, then time again near its best):
/// a peak's frame moves with the time factor alone and its bin with the pitch alone, so each
/// factor's best barely depends on the other, and the walk costs a fifth to a quarter of the
/// whole grid's verifications (checked against the whole grid in the tests).
pub fn fine_pass(c: &Candidate, query: &QueryPeaks, reference: &[Peak]) -> Candidate {
    let span = query.widen((
        c.query_span.0.max(0.0) as u32,
        c.query_span.1.max(0.0) as u32,
    ));
    let centre = 0.5 * (c.query_span.0 + c.query_span.1) as f64;
    let ref_centre = c.line.at(centre);
    let steps: i32 = if c.query_span.1 - c.query_span.0 < 400.0 {
        12
    } else {
        6
    };
    // The best count at (time step, pitch step) over the three intercepts, and its intercept.
    let count = |i: i32, j: i32| {
        let time = c.line.time * (1.0 + 0.0025 * i as f64);
        let semitones = c.semitones + 0.1 * j as f64;
        let warp = Warp {
            time,
            freq: 2f64.powf(semitones / 12.0),
        };
        let intercept = (ref_centre - time * centre).round() as i64;
        (-1..=1)
            .map(|o| {
                (
                    query.verify(reference, intercept + o, span, warp).found,
                    intercept + o,
                )
            })
            .fold((0, 0), |a, b| if b.0 > a.0 { b } else { a })
    };
    // (found, time step, pitch step, intercept); ties keep the earlier, as the full grid did.
    let mut best = (0u32, 0i32, 0i32, 0i64);
    let consider = |i: i32, j: i32, best: &mut (u32, i32, i32, i64)| {
        let (found, offset) = count(i, j);
        if found > best.0 {
            *best = (found, i, j, offset);
        }
    };
    for i in -steps..=steps {
        consider(i, 0, &mut best);
    }
    let time_step = best.1;
    for j in -3..=3 {
        consider(time_step, j, &mut best);
    }
    let pitch_step = best.2;
    for i in (time_step - 2).max(-steps)..=(time_step + 2).min(steps) {
        consider(i, pitch_step, &mut best);
    }
    if best.0 == 0 {
        return *c;
    }
    Candidate {
        line: Line {
            time: c.line.time * (1.0 + 0.0025 * best.1 as f64),
            intercept: best.3 as f64,
        },
        semitones: c.semitones + 0.1 * best.2 as f64,
        ..*c
    }
}

/// Alignments the pass searched, for the confidence: every offset window (3 frames) of every
/// reference a hit touched (`ref_frames`: their lengths), under every edit it resolves.
pub fn alignments_searched(
    ref_frames: impl IntoIterator<Item = u32>,
    query_frames: u32,
    p: &TripletParams,
) -> f64 {
    let offsets: f64 = ref_frames
        .into_iter()
        .map(|f| ((f + query_frames) as f64 / 3.0).max(1.0))
        .sum();
    (offsets * edits_resolved(p)).max(1.0)
}

/// The distinct edits the pass can tell apart (time factor to 0.5 %, pitch to 10 cents) over
/// the range searched: every one of them is an alignment searched, for the confidence.
pub fn edits_resolved(p: &TripletParams) -> f64 {
    let (lo, hi) = p.time_factors;
    let time = ((hi as f64).ln() - (lo as f64).ln()) / 0.005;
    let pitch = 2.0 * p.max_shift_semitones as f64 / 0.1;
    time * pitch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_agrees_with_the_standard_sort() {
        let mut s = 12345u64;
        for n in [0usize, 1, 7, 1000, 50_000] {
            let mut keys: Vec<u64> = (0..n)
                .map(|i| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                    // Some keys vary in every bit, some only in the low ones.
                    if i % 3 == 0 {
                        s
                    } else {
                        (s >> 50) | (7 << 40)
                    }
                })
                .collect();
            let mut expected = keys.clone();
            expected.sort_unstable();
            radix_sort(&mut keys);
            assert_eq!(keys, expected, "n = {n}");
        }
    }

    #[test]
    fn cells_round_trip_through_the_packed_key() {
        let h = TupleHit {
            reference: 123_456,
            query_t: 100.0,
            ref_t: 5000.0,
            ln_time: 1.25f32.ln(),
            shift: -3.2,
        };
        let (r, tb, fb, ob) = unpack_cell(cell_key(&h));
        assert_eq!(r, 123_456);
        assert_eq!(tb, (1.25f32.ln() / TIME_CELL).round() as i32);
        assert_eq!(fb, -6);
        let factor = (tb as f32 * TIME_CELL).exp();
        assert_eq!(ob, ((5000.0 - 100.0 * factor) / OFFSET_CELL).floor() as i64);
    }

    /// The whole grid `fine_pass` walks, every (time, pitch, intercept) verified: the naive
    /// reference the walk is checked against.
    fn fine_grid(c: &Candidate, query: &QueryPeaks, reference: &[Peak]) -> u32 {
        let span = query.widen((c.query_span.0 as u32, c.query_span.1 as u32));
        let centre = 0.5 * (c.query_span.0 + c.query_span.1) as f64;
        let steps = if c.query_span.1 - c.query_span.0 < 400.0 {
            12
        } else {
            6
        };
        let mut best = 0;
        for i in -steps..=steps {
            for j in -3..=3 {
                let time = c.line.time * (1.0 + 0.0025 * i as f64);
                let freq = 2f64.powf((c.semitones + 0.1 * j as f64) / 12.0);
                let intercept = (c.line.at(centre) - time * centre).round() as i64;
                for o in -1..=1 {
                    let v = query.verify(reference, intercept + o, span, Warp { time, freq });
                    best = best.max(v.found);
                }
            }
        }
        best
    }

    /// Walking the fine grid a factor at a time finds as many peaks as the whole grid, and the
    /// edit: an upload at time factor 1.2 and +2.6 semitones, with a third of its peaks lost and
    /// as many again added, from candidates whose slope is up to 1.2 % and pitch 20 cents off.
    #[test]
    fn the_fine_walk_finds_what_the_whole_grid_finds() {
        let mut s = 7u64;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as f64 / (1u64 << 31) as f64
        };
        let peak = |frame: u32, bin: u16| Peak {
            frame,
            bin,
            salience: 1.0,
            sub: [0, 0],
        };
        let mut reference: Vec<Peak> = (0..3000)
            .map(|_| peak((rnd() * 3000.0) as u32, 20 + (rnd() * 400.0) as u16))
            .collect();
        reference.sort_by_key(|p| (p.frame, p.bin));
        let (time, semitones, offset) = (1.2, 2.6, 900.0);
        let freq = 2f64.powf(semitones / 12.0);
        // Upload frame q holds reference frame offset + time × q.
        let mut upload: Vec<Peak> = reference
            .iter()
            .filter(|p| p.frame as f64 >= offset && rnd() > 0.33)
            .map(|p| {
                peak(
                    ((p.frame as f64 - offset) / time).round() as u32,
                    (p.bin as f64 * freq).round() as u16,
                )
            })
            .filter(|p| p.frame < 600)
            .collect();
        let kept = upload.len();
        upload.extend((0..kept).map(|_| peak((rnd() * 600.0) as u32, 20 + (rnd() * 500.0) as u16)));
        upload.sort_by_key(|p| (p.frame, p.bin));
        let query = QueryPeaks::new(&upload, (0, 600), 600);
        for (dt, ds) in [(0.0, 0.0), (0.012, 0.2), (-0.01, -0.15), (0.006, 0.1)] {
            let c = Candidate {
                reference: 0,
                score: 10,
                // Hits place the stretch's centre (frame 300) well and its slope less so.
                line: Line {
                    time: time * (1.0 + dt),
                    intercept: offset - time * dt * 300.0,
                },
                semitones: semitones + ds,
                query_span: (50.0, 550.0),
            };
            let walked = fine_pass(&c, &query, &reference);
            let span = query.widen((50, 550));
            let warp = walked.warp();
            let found = query
                .verify(&reference, walked.line.intercept as i64, span, warp)
                .found;
            assert_eq!(
                found,
                fine_grid(&c, &query, &reference),
                "candidate off by {dt}, {ds}"
            );
            assert!(
                (walked.line.time / time - 1.0).abs() < 0.003,
                "time {}",
                walked.line.time
            );
            assert!(
                (walked.semitones - semitones).abs() < 0.06,
                "pitch {}",
                walked.semitones
            );
        }
    }

    /// Hits on one line at a 1.23 time factor and +2.6 semitones, among many chance hits on
    /// other references and on the same one, come back as the line.
    #[test]
    fn aligned_hits_give_the_line_and_the_shift_despite_chance_hits() {
        let mut s = 99u64;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as f32 / (1u64 << 31) as f32
        };
        let mut hits = Vec::new();
        for i in 0..60 {
            let q = 10.0 + 9.0 * i as f32 + rnd();
            hits.push(TupleHit {
                reference: 3,
                query_t: q,
                ref_t: 4000.0 + 1.23 * q + (rnd() - 0.5),
                ln_time: 1.23f32.ln() + 0.02 * (rnd() - 0.5),
                shift: 2.6 + 0.2 * (rnd() - 0.5),
            });
        }
        for _ in 0..5000 {
            hits.push(TupleHit {
                reference: (rnd() * 20.0) as u32,
                query_t: rnd() * 600.0,
                ref_t: rnd() * 20_000.0,
                ln_time: (0.74 + 0.6 * rnd()).ln(),
                shift: 12.0 * (rnd() - 0.5),
            });
        }
        let cands = vote(&hits);
        let c = cands[0];
        assert_eq!(c.reference, 3);
        assert!(c.score >= 50, "score {}", c.score);
        assert!((c.line.time - 1.23).abs() < 0.005, "time {}", c.line.time);
        assert!((c.line.at(300.0) - (4000.0 + 1.23 * 300.0)).abs() < 2.0);
        assert!((c.semitones - 2.6).abs() < 0.1, "shift {}", c.semitones);
        assert!(cands[1..].iter().all(|o| o.score < 10));
    }
}
