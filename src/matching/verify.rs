//! Verification of candidate alignments, peak by peak, and the confidence that comes out of it.
//!
//! Voting finds offsets where landmark hashes agree; that is fast but counts pairs, which repeat
//! inside sustained notes and shared loops. Verification asks a sharper question: of the
//! reference's peaks inside the aligned stretch, how many have a query peak at the same place
//! (±1 frame, ±1 bin)? A recording matches itself peak for peak; a similar style, a shared loop
//! or a held chord in the same key matches only a small fraction.
//!
//! **Confidence.** Peaks are not independent observations: the harmonics of one onset sit in
//! one frame and align or miss together, so a melody shared by two songs in one style would
//! count each note several times. The test counts *events* instead: the peaks of one reference
//! frame in the stretch are one event, found when any of them has a query peak at the same
//! place. If the alignment were chance, an event would be found with probability `p0`: the
//! larger of the share expected from the query's peak density, and the share found at eight
//! deliberately wrong offsets of the same stretch. Events are not independent either (a held
//! note gives a row of them), so counts are divided by [`FRAMES_PER_EVENT`] (1.5) before the
//! test: the number found is then taken as Binomial(`events/1.5`, `p0`); `E = trials · P(X ≥
//! found/1.5)` is the expected number of chance alignments this good over every offset of every
//! reference the query touched (every warp included), and `confidence = exp(−E)`.
//!
//! **Ties.** When a reference aligns almost as well at another offset over the same stretch
//! (hash scores within `min_margin`), the match is reported only if the reference repeats itself
//! there (the same audio twice) or the alignment out-verifies the other by three standard
//! deviations on the peaks that tell the two apart; a loop shared with another recording does
//! neither. An unsettled tie makes the reference ambiguous over that stretch, under every warp.
//! (Settling it when the upload merely holds the candidate's own peaks far beyond chance found
//! 7 more short clips and also matched held-out recordings that share material with a reference:
//! docs/EVASION.md, session 15.)
//!
//! **Periods.** Music built on a beat, a riff or a loop fits any recording of the same tempo and
//! key at every shift by its period, and the search keeps the best of those shifts. So every
//! match is also compared with the reference shifted by its own strongest repetition lags
//! (`offset ± lag`, [`PERIOD_RIVALS`] lags of 0.13–6.4 s): on the peaks that tell the two
//! alignments apart it must be better by `MatchParams::min_period_lead` standard deviations.
//! The recording is better at its own offset; other music in the same groove is not (a recording
//! scanned against its own time-reversed copy was the measured case: docs/EVASION.md, session
//! 16). A lag at which the reference repeats itself is skipped: there both alignments are the
//! recording.

use std::collections::HashMap;

use super::References;
use super::{Match, MatchParams};
use crate::fingerprint::{Peak, Warp};
use crate::ids::TrackId;

/// Peaks taken as one independent observation when an alignment is compared with its rival
/// (the confidence itself counts events, see the module docs).
pub const PEAKS_PER_EVENT: f64 = 1.5;

/// Events (frames with peaks) taken as one independent observation in the confidence: a held
/// note makes a row of them. Measured on the evaluation corpus (as peaks, before a frame's peaks
/// counted once): with 1 the model gives unrelated recordings confidences near 1; with 1.5 the
/// most confident of 250 negatives gets 0.12, and true matches lose little.
pub const FRAMES_PER_EVENT: f64 = 1.5;

/// Frames (1.5 s) by which the checked stretch extends past the hits on each side.
pub const VERIFY_MARGIN_FRAMES: u32 = 94;

/// Outcome of checking one alignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    /// Reference peaks in the aligned stretch.
    pub checked: u32,
    /// Of those, peaks found in the query.
    pub found: u32,
    /// Chance that one reference peak is found at a random alignment.
    pub chance: f64,
    /// Reference frames holding peaks in the stretch: the observations of the confidence (the
    /// peaks of one frame, an onset's harmonics, align or miss together).
    pub events: u32,
    /// Of those, frames with at least one peak found in the query.
    pub events_found: u32,
    /// Chance that one such frame is found at a random alignment.
    pub event_chance: f64,
    /// Alignments searched for this query (offset windows × references × edits told apart).
    pub searched: f64,
    /// Standard deviations by which this alignment out-verifies the reference's best other
    /// alignment of the stretch, on the peaks the two do not share (infinite when there is none or
    /// when the hash lead already settles the race).
    pub rival_lead: f64,
    /// Standard deviations by which this alignment out-verifies the reference shifted by its own
    /// repetition periods, the least over those compared (infinite when none could be).
    pub period_lead: f64,
}

impl Verification {
    /// Share of reference peaks found.
    pub fn fraction(&self) -> f64 {
        self.found as f64 / self.checked.max(1) as f64
    }
}

/// Query peaks widened by the tolerance, for constant-time "is there a peak near here?".
pub struct QueryPeaks {
    /// One bit per (frame, bin) cell within a peak's tolerance, `width` bins a frame: a bit test
    /// per reference peak (a hashed set made verification, repeated by the fine pass, slow).
    cells: Vec<u64>,
    width: usize,
    height: usize,
    frames: u32,
    by_frame: Vec<u32>,
    bins: (u16, u16),
}

impl QueryPeaks {
    /// Indexes the query's peaks; `bins` is the analysed band, `frames` the query's length.
    pub fn new(peaks: &[Peak], bins: (usize, usize), frames: u32) -> Self {
        let width = peaks.iter().map(|p| p.bin as usize + 2).max().unwrap_or(0);
        let height = peaks
            .iter()
            .map(|p| p.frame as usize + 2)
            .max()
            .unwrap_or(0);
        let mut cells = vec![0u64; (width * height).div_ceil(64)];
        for p in peaks {
            for f in (p.frame as usize).saturating_sub(1)..=p.frame as usize + 1 {
                for b in (p.bin as usize).saturating_sub(1)..=p.bin as usize + 1 {
                    let i = f * width + b;
                    cells[i / 64] |= 1 << (i % 64);
                }
            }
        }
        let by_frame = peaks.iter().map(|p| p.frame).collect();
        QueryPeaks {
            cells,
            width,
            height,
            frames,
            by_frame,
            bins: (bins.0 as u16, bins.1 as u16),
        }
    }

    /// The stretch of query checked for a match spanning `(q0, q1)`: widened by
    /// [`VERIFY_MARGIN_FRAMES`] on each side within the query, since under noise the hits cover
    /// only part of the audio that actually matches.
    pub fn widen(&self, (q0, q1): (u32, u32)) -> (u32, u32) {
        (
            q0.saturating_sub(VERIFY_MARGIN_FRAMES),
            (q1 + VERIFY_MARGIN_FRAMES)
                .min(self.frames.saturating_sub(1))
                .max(q1),
        )
    }

    /// Whether the query has a peak where reference peak `p` lands at `offset` under `warp`.
    pub fn has(&self, p: &Peak, offset: i64, warp: Warp) -> bool {
        let q = ((p.frame as i64 - offset) as f64 / warp.time).round();
        let bin = (p.bin as f64 * warp.freq).round();
        if q < 0.0 || q >= self.height as f64 || bin >= self.width as f64 {
            return false;
        }
        let i = q as usize * self.width + bin as usize;
        self.cells[i / 64] >> (i % 64) & 1 == 1
    }

    /// Checks the reference peaks that fall on query frames `q0..=q1` at `offset` under `warp`
    /// (reference frame = round(query frame × warp.time) + offset; query bin = bin × warp.freq).
    pub fn verify(
        &self,
        reference: &[Peak],
        offset: i64,
        (q0, q1): (u32, u32),
        warp: Warp,
    ) -> Verification {
        let (mut checked, mut found) = (0u32, 0u32);
        let (mut events, mut events_found) = (0u32, 0u32);
        let (mut frame, mut frame_found) = (None, false);
        for p in aligned_stretch(reference, offset, (q0, q1), warp) {
            let hit = self.has(p, offset, warp);
            checked += 1;
            found += hit as u32;
            if frame != Some(p.frame) {
                (frame, frame_found) = (Some(p.frame), false);
                events += 1;
            }
            if hit && !frame_found {
                frame_found = true;
                events_found += 1;
            }
        }
        // Query peaks in the stretch, each covering up to 9 cells of the band.
        let a = self.by_frame.partition_point(|&f| f < q0);
        let z = self.by_frame.partition_point(|&f| f <= q1);
        let area = (q1 - q0 + 1) as f64 * (self.bins.1 - self.bins.0).max(1) as f64;
        let chance = ((z - a) as f64 * 9.0 / area).clamp(1e-6, 1.0);
        let per_event = checked as f64 / events.max(1) as f64;
        Verification {
            checked,
            found,
            chance,
            events,
            events_found,
            event_chance: (1.0 - (1.0 - chance).powf(per_event)).clamp(1e-6, 1.0),
            searched: 0.0,
            rival_lead: f64::INFINITY,
            period_lead: f64::INFINITY,
        }
    }
}

/// Verifies the strongest candidates (by score) and keeps those that pass; sets their confidence.
pub fn verify_candidates<R: References + ?Sized>(
    refs: &R,
    query: &QueryPeaks,
    mut cands: Vec<Match>,
    trials: f64,
    p: &MatchParams,
) -> Result<Vec<Match>, R::Error> {
    // Ties are broken by the alignment, not the track id: ids differ between an index and the
    // same tracks imported from a pack, and the matches must not.
    cands.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.rival.cmp(&b.rival))
            .then(a.offset.cmp(&b.offset))
            .then(a.query_frames.cmp(&b.query_frames))
            .then(a.warp.time.total_cmp(&b.warp.time))
            .then(a.warp.freq.total_cmp(&b.warp.freq))
            .then(a.track.cmp(&b.track))
    });
    cands.truncate(p.max_verified);
    let mut peaks: HashMap<TrackId, Vec<Peak>> = HashMap::new();
    let mut out = Vec::new();
    // Stretches where a reference would match but for a tie with another of its offsets (a
    // shared loop, or a section the reference repeats). Weaker candidates of the same reference
    // over the same stretch (other edits, other repeats) are no less ambiguous, whatever their
    // own rival says.
    let mut ambiguous: Vec<(TrackId, (u32, u32))> = Vec::new();
    for mut m in cands {
        let reference = match peaks.entry(m.track) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(refs.peaks(m.track)?),
        };
        let span = query.widen(m.query_frames);
        let mut v = query.verify(reference, m.offset, span, m.warp);
        let (peak_rate, event_rate) = null_rate(query, reference, &m, span);
        v.chance = v.chance.max(peak_rate);
        v.event_chance = v.event_chance.max(event_rate);
        v.searched = trials;
        // Only a close race needs the peak-level comparison with the rival.
        let close = m.score < m.rival + p.min_margin;
        let rival = close
            .then(|| against_rival(query, reference, &m, span))
            .flatten();
        if let Some(r) = rival {
            v.rival_lead = r.lead;
        }
        let tail = binomial_sf(
            v.events_found as f64 / FRAMES_PER_EVENT,
            v.events as f64 / FRAMES_PER_EVENT,
            v.event_chance,
        );
        m.verification = Some(v);
        m.confidence = (-trials * tail).exp();
        let shadowed = ambiguous
            .iter()
            .any(|&(t, span)| t == m.track && super::overlaps(span, m.query_frames));
        let evident =
            v.fraction() >= p.peak_share_needed(v.chance) && m.confidence >= p.min_confidence;
        let mut tied = close && !tie_explained(rival);
        // Only a match about to be reported needs the (costlier) comparison with its periods.
        if evident && !tied && !shadowed {
            let lead = period_lead(query, reference, &m, span);
            if let Some(v) = m.verification.as_mut() {
                v.period_lead = lead;
            }
            tied = lead < p.min_period_lead;
        }
        if tied && evident {
            ambiguous.push((m.track, m.query_frames));
        }
        if evident && !tied && !shadowed {
            out.push(m);
        }
    }
    Ok(out)
}

/// The reference's peaks (sorted by frame) that query frames `q0..=q1` align with at `offset`
/// under `warp`.
fn aligned_stretch(
    reference: &[Peak],
    offset: i64,
    (q0, q1): (u32, u32),
    warp: Warp,
) -> impl Iterator<Item = &Peak> {
    let r0 = (q0 as f64 * warp.time).round() as i64 + offset;
    let r1 = (q1 as f64 * warp.time).round() as i64 + offset;
    let start = reference.partition_point(|p| (p.frame as i64) < r0);
    reference[start..]
        .iter()
        .take_while(move |p| p.frame as i64 <= r1)
}

/// Share of a reference's peaks that recur in the reference itself this far later (±1 frame,
/// ±1 bin) above which the two stretches count as the same audio.
pub const SELF_REPEAT: f64 = 0.9;

/// Standard deviations by which an alignment must out-verify its tied rival to be preferred.
pub const DECISIVE_Z: f64 = 3.0;

/// Whether a tie between a candidate and its rival alignment leaves the recording certain (no
/// rival: nothing to settle): either the reference repeats itself there (the same audio twice,
/// so both offsets are this recording), or on the peaks that tell the two apart the candidate is
/// decisively better (hash counts tie by chance, e.g. a partial repeat). A loop shared with
/// another recording does neither: the loop recurs in the reference only with its other layers
/// changed, and verifies equally at each repeat.
pub fn tie_explained(rival: Option<Rival>) -> bool {
    rival.is_none_or(|r| r.lead >= DECISIVE_Z || r.self_similarity >= SELF_REPEAT)
}

/// A candidate compared with its rival alignment (another offset of the same reference).
#[derive(Debug, Clone, Copy)]
pub struct Rival {
    /// Standard deviations by which the candidate out-verifies the rival, counting only the
    /// peaks that tell the two apart (those that do not recur at the other offset), with counts
    /// scaled by [`PEAKS_PER_EVENT`] as the confidence scales its events. Peaks the two stretches share are
    /// found (or lost) alike at both and would only dilute the comparison.
    pub lead: f64,
    /// Share of the reference's peaks in the candidate's stretch that recur at the rival offset.
    pub self_similarity: f64,
    /// The candidate's own peaks (those not recurring at the rival offset): how many, and how
    /// many of them the upload has.
    pub own: (u32, u32),
    /// How many peaks of its own the rival alignment has.
    pub other_own: u32,
}

/// Compares `m` with its rival alignment over query frames `span`; `None` when it has none.
pub fn against_rival(
    query: &QueryPeaks,
    reference: &[Peak],
    m: &Match,
    span: (u32, u32),
) -> Option<Rival> {
    Some(compare(
        query,
        reference,
        m.warp,
        span,
        m.offset,
        m.rival_offset?,
    ))
}

/// Compares alignment `offset` with alignment `other` of the same reference over query frames
/// `span`, on the peaks that tell them apart.
fn compare(
    query: &QueryPeaks,
    reference: &[Peak],
    warp: Warp,
    span: (u32, u32),
    offset: i64,
    other: i64,
) -> Rival {
    // (peaks in the stretch, of them not recurring at `to`, of those found in the query)
    let distinct = |from: i64, to: i64| {
        let (mut all, mut n, mut k) = (0u32, 0u32, 0u32);
        for p in aligned_stretch(reference, from, span, warp) {
            all += 1;
            if !recurs(reference, p, to - from) {
                n += 1;
                k += query.has(p, from, warp) as u32;
            }
        }
        (all, n, k)
    };
    let (all, n1, k1) = distinct(offset, other);
    let (_, n2, k2) = distinct(other, offset);
    let self_similarity = (all - n1) as f64 / all.max(1) as f64;
    let own = (n1, k1);
    let other_own = n2;
    // A side with no peaks of its own counts as one unfound peak: a rival contained in `m` then
    // loses to `m`'s own peaks if enough of them are found.
    let scaled = |x: u32| x as f64 / PEAKS_PER_EVENT;
    let (n1, k1, n2, k2) = (scaled(n1.max(1)), scaled(k1), scaled(n2.max(1)), scaled(k2));
    let pooled = ((k1 + k2) / (n1 + n2)).clamp(1e-6, 1.0 - 1e-6);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    Rival {
        lead: (k1 / n1 - k2 / n2) / se,
        self_similarity,
        own,
        other_own,
    }
}

/// Repetition lags of a reference stretch a match is compared with (the strongest, each way).
pub const PERIOD_RIVALS: usize = 4;

/// Lags searched for repetition, in frames (0.13–6.4 s: a beat to two bars at common tempi).
const PERIOD_LAGS: std::ops::RangeInclusive<usize> = 8..=400;

/// Peaks of its own each side of a period comparison needs to say anything (fewer: the two
/// alignments are nearly one, or the overlap is too short).
const PERIOD_MIN_OWN: u32 = 15;

/// The least lead of `m` over the reference shifted by its strongest repetition lags over query
/// frames `span` (see the module docs); infinite when no lag could be compared.
pub fn period_lead(query: &QueryPeaks, reference: &[Peak], m: &Match, span: (u32, u32)) -> f64 {
    let end = reference.last().map_or(0, |p| p.frame as i64);
    let mut least = f64::INFINITY;
    for lag in repetition_lags(reference, m.offset, span, m.warp) {
        for other in [m.offset + lag, m.offset - lag] {
            // Only the query frames both alignments place inside the reference.
            let (lo, hi) = (m.offset.min(other), m.offset.max(other));
            let q0 = ((-lo) as f64 / m.warp.time).ceil().max(span.0 as f64);
            let q1 = ((end - hi) as f64 / m.warp.time).floor().min(span.1 as f64);
            if q1 < q0 {
                continue;
            }
            let r = compare(
                query,
                reference,
                m.warp,
                (q0 as u32, q1 as u32),
                m.offset,
                other,
            );
            if r.self_similarity >= SELF_REPEAT || r.own.0.min(r.other_own) < PERIOD_MIN_OWN {
                continue;
            }
            least = least.min(r.lead);
        }
    }
    least
}

/// The reference's [`PERIOD_RIVALS`] strongest repetition lags (frames) over the stretch
/// aligned with query frames `span`: the lags at which its peaks most often recur at the same
/// bin (±1), local maxima of that count.
fn repetition_lags(reference: &[Peak], offset: i64, span: (u32, u32), warp: Warp) -> Vec<i64> {
    let (min, max) = (*PERIOD_LAGS.start(), *PERIOD_LAGS.end());
    let mut count = vec![0u32; max + 2];
    let mut from = 0;
    for p in aligned_stretch(reference, offset, span, warp) {
        let first = p.frame as usize + min;
        from += reference[from..].partition_point(|q| (q.frame as usize) < first);
        for q in reference[from..]
            .iter()
            .take_while(|q| q.frame as usize <= p.frame as usize + max)
        {
            if q.bin.abs_diff(p.bin) <= 1 {
                count[q.frame as usize - p.frame as usize] += 1;
            }
        }
    }
    // Recurrence within ±1 frame, as `recurs` tests it.
    let smooth = |l: usize| count[l - 1] + count[l] + count[l + 1];
    let mut peaks: Vec<(u32, usize)> = (min + 1..max)
        .map(|l| (smooth(l), l))
        .filter(|&(c, l)| c > 0 && c >= smooth(l - 1) && c > smooth(l + 1))
        .collect();
    peaks.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    peaks
        .into_iter()
        .take(PERIOD_RIVALS)
        .map(|(_, l)| l as i64)
        .collect()
}

/// Whether reference peak `p` recurs `shift` frames away in the reference (±1 frame, ±1 bin).
fn recurs(reference: &[Peak], p: &Peak, shift: i64) -> bool {
    let target = p.frame as i64 + shift;
    let from = reference.partition_point(|q| (q.frame as i64) < target - 1);
    reference[from..]
        .iter()
        .take_while(|q| q.frame as i64 <= target + 1)
        .any(|q| q.bin.abs_diff(p.bin) <= 1)
}

/// Offsets (frames) at which an alignment is re-checked to measure the chance rate empirically:
/// spread, not multiples of each other, none near a bar of common tempi.
const NULL_SHIFTS: [i64; 8] = [-233, -157, -97, -41, 43, 101, 163, 229];

/// Share of reference peaks found at shifted, wrong alignments of the same stretch: the chance
/// level for *this* pair of recordings. Peaks crowd into the same bins in music of one key or
/// one instrument, so a uniform chance estimate would be far too low there.
fn null_rate(query: &QueryPeaks, reference: &[Peak], m: &Match, span: (u32, u32)) -> (f64, f64) {
    let (mut found, mut checked) = (0u32, 0u32);
    let (mut events_found, mut events) = (0u32, 0u32);
    for shift in NULL_SHIFTS {
        let v = query.verify(reference, m.offset + shift, span, m.warp);
        found += v.found;
        checked += v.checked;
        events_found += v.events_found;
        events += v.events;
    }
    (
        (found as f64 + 1.0) / (checked as f64 + 2.0),
        (events_found as f64 + 1.0) / (events as f64 + 2.0),
    )
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed in log space (accurate far in the tail). `k` and
/// `n` may be fractional (counts scaled by [`FRAMES_PER_EVENT`]): the sum runs over `k, k+1, … ≤ n`
/// with the binomial coefficient taken from the gamma function.
pub fn binomial_sf(k: f64, n: f64, p: f64) -> f64 {
    if k <= 0.0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_n = ln_gamma(n + 1.0);
    let mut sum = 0.0;
    let mut i = k;
    while i <= n + 1e-9 {
        let t = (ln_n - ln_gamma(i + 1.0) - ln_gamma(n - i + 1.0) + i * lp + (n - i) * lq).exp();
        sum += t;
        if t < sum * 1e-15 {
            break;
        }
        i += 1.0;
    }
    sum.min(1.0)
}

/// `ln Γ(x)` for `x > 0` (Stirling's series after shifting `x` above 7; error < 1e-12).
fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 7.0 {
        shift -= x.ln();
        x += 1.0;
    }
    let (x2, ln2pi) = (x * x, (2.0 * std::f64::consts::PI).ln());
    shift + (x - 0.5) * x.ln() - x + 0.5 * ln2pi + 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2)
        + 1.0 / (1260.0 * x * x2 * x2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_matches_direct_sum() {
        for &(k, n, p) in &[
            (1u32, 10u32, 0.1f64),
            (5, 20, 0.05),
            (30, 40, 0.5),
            (0, 5, 0.3),
            (12, 300, 0.02),
        ] {
            let mut direct = 0.0;
            for i in k..=n {
                let c: f64 = (0..i).map(|j| (n - j) as f64 / (j + 1) as f64).product();
                direct += c * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32);
            }
            let got = binomial_sf(k as f64, n as f64, p);
            assert!(
                (got - direct).abs() <= 1e-12 + 1e-9 * direct,
                "k={k} n={n} p={p}: {got} vs {direct}"
            );
        }
    }

    /// Pseudo-random peaks on frames `0..n·5`, about one every 5 frames.
    fn scattered(n: u32, seed: u32) -> Vec<Peak> {
        (0..n)
            .map(|i| Peak {
                frame: i * 5 + (i * seed % 3),
                bin: (20 + (i * 53 + seed * 11) % 180) as u16,
                salience: 1.0,
                sub: [0, 0],
            })
            .collect()
    }

    /// `per_frame` peaks in each of `frames` frames at pseudo-random bins: broadband noise.
    fn noise_peaks(frames: u32, per_frame: u32, mut seed: u32) -> Vec<Peak> {
        (0..per_frame * frames)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                Peak {
                    frame: i / per_frame,
                    bin: (6 + (seed >> 8) % 226) as u16,
                    salience: 1.0,
                    sub: [0, 0],
                }
            })
            .collect()
    }

    fn candidate(offset: i64, rival: i64) -> Match {
        Match {
            track: TrackId(1),
            query_frames: (0, 400),
            offset,
            warp: Warp::IDENTITY,
            score: 30,
            rival: 30,
            rival_offset: Some(rival),
            verification: None,
            confidence: 0.0,
            line: super::super::Line {
                time: 1.0,
                intercept: offset as f64,
            },
            pass: super::super::Pass::Pairs,
        }
    }

    #[test]
    fn ties_are_settled_by_a_self_repeat_or_decisive_peaks_and_not_by_a_shared_loop() {
        // Reference: section A (frames 0..1000), then A again (1000..2000), then B.
        let a = scattered(200, 7);
        let b = scattered(200, 5);
        let mut reference: Vec<Peak> = a.clone();
        let shift = |v: &[Peak], by: u32| -> Vec<Peak> {
            v.iter()
                .map(|p| Peak {
                    frame: p.frame + by,
                    ..*p
                })
                .collect()
        };
        reference.extend(shift(&a, 1000));
        reference.extend(shift(&b, 2000));
        let as_query = |v: &[Peak], from: u32| -> Vec<Peak> {
            v.iter()
                .filter(|p| (from..from + 450).contains(&p.frame))
                .map(|p| Peak {
                    frame: p.frame - from,
                    ..*p
                })
                .collect()
        };
        let span = (0, 400);
        // A clip of A ties between offsets 100 and 1100: the reference repeats itself there.
        let q = QueryPeaks::new(&as_query(&reference, 100), (6, 232), 450);
        let r = against_rival(&q, &reference, &candidate(100, 1100), span);
        assert!(r.is_some_and(|r| r.self_similarity > 0.95), "{r:?}");
        assert!(tie_explained(r));
        // A clip of B, against a rival offset inside A: B out-verifies A peak by peak.
        let q = QueryPeaks::new(&as_query(&reference, 2100), (6, 232), 450);
        let r = against_rival(&q, &reference, &candidate(2100, 100), span);
        assert!(r.is_some_and(|r| r.self_similarity < 0.3), "{r:?}");
        assert!(r.is_some_and(|r| r.lead > 5.0), "{r:?}");
        assert!(tie_explained(r));
        // A query holding half of A's peaks and half of B's (a loop shared with another
        // recording) verifies equally at both offsets: the tie stands.
        let mixed: Vec<Peak> = as_query(&reference, 100)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, p)| p)
            .chain(
                as_query(&reference, 2100)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 1)
                    .map(|(_, p)| p),
            )
            .collect();
        let q = QueryPeaks::new(&mixed, (6, 232), 450);
        let r = against_rival(&q, &reference, &candidate(100, 2100), span);
        assert!(!tie_explained(r), "{r:?}");
        // A section the reference repeats only in part (every third peak differs), heard through
        // noise that hides every second peak: the shared two thirds verify alike at both offsets,
        // and the peaks that tell the offsets apart settle it.
        let varied: Vec<Peak> = a
            .iter()
            .zip(&b)
            .enumerate()
            .map(|(i, (pa, pb))| if i % 3 == 0 { *pb } else { *pa })
            .collect();
        reference.extend(shift(&varied, 3000));
        let noisy: Vec<Peak> = as_query(&reference, 100).into_iter().step_by(2).collect();
        let q = QueryPeaks::new(&noisy, (6, 232), 450);
        let r = against_rival(&q, &reference, &candidate(100, 3100), span);
        assert!(
            r.is_some_and(|r| (0.5..0.8).contains(&r.self_similarity)),
            "{r:?}"
        );
        assert!(tie_explained(r), "{r:?}");
    }

    #[test]
    fn a_loop_shared_with_another_recording_stays_tied() {
        // Reference: loop L with layer X (frames 0..1000), then L again with layer Y.
        let (l, x, y, z) = (
            scattered(200, 7),
            scattered(200, 5),
            scattered(200, 13),
            scattered(200, 11),
        );
        let layered = |a: &[Peak], b: &[Peak], by: u32| -> Vec<Peak> {
            let mut v: Vec<Peak> = a
                .iter()
                .chain(b)
                .map(|p| Peak {
                    frame: p.frame + by,
                    ..*p
                })
                .collect();
            v.sort_by_key(|p| (p.frame, p.bin));
            v
        };
        let mut reference = layered(&l, &x, 0);
        reference.extend(layered(&l, &y, 1000));
        let clip = |v: &[Peak], from: u32, len: u32| -> Vec<Peak> {
            v.iter()
                .filter(|p| (from..from + len).contains(&p.frame))
                .map(|p| Peak {
                    frame: p.frame - from,
                    ..*p
                })
                .collect()
        };
        // Another recording built on the same loop: L with its own layer Z. It verifies alike at
        // both repeats, and of the peaks only one repeat has (X's) it holds what chance gives.
        let other = layered(&l, &z, 0);
        let q = QueryPeaks::new(&clip(&other, 100, 450), (6, 232), 450);
        let span = (0, 400);
        let chance = q.verify(&reference, 100, span, Warp::IDENTITY).chance;
        let r = against_rival(&q, &reference, &candidate(100, 1100), span);
        assert!(
            r.is_some_and(|r| (0.3..0.7).contains(&r.self_similarity)),
            "{r:?}"
        );
        assert!(r.is_some_and(|r| r.lead.abs() < 1.0), "{r:?}");
        assert!(
            r.is_some_and(|r| (r.own.1 as f64) < 3.0 * chance * r.own.0 as f64),
            "{r:?}"
        );
        assert!(!tie_explained(r), "{r:?}");
    }

    /// One reference, `frames` long, for [`verify_candidates`] (no postings: nothing looks them up).
    struct One(Vec<Peak>, u32);

    impl References for One {
        type Error = std::convert::Infallible;
        fn lookup(
            &self,
            _: &[u32],
            _: usize,
            _: &mut dyn FnMut(u32, TrackId, u32),
        ) -> Result<(), Self::Error> {
            Ok(())
        }
        fn lookup_triplets(
            &self,
            _: &[u32],
            _: usize,
            _: &mut dyn FnMut(TrackId, crate::fingerprint::triplets::StoredTriplet),
        ) -> Result<(), Self::Error> {
            Ok(())
        }
        fn peaks(&self, _: TrackId) -> Result<Vec<Peak>, Self::Error> {
            Ok(self.0.clone())
        }
        fn frames(&self, _: TrackId) -> u32 {
            self.1
        }
    }

    #[test]
    fn a_small_excess_over_chance_on_a_long_stretch_is_significant_but_not_a_match() {
        // A dense upload (3 peaks a frame: a reference peak lands near one by chance ~12 % of
        // the time) holding 13 % of a reference's peaks besides: over 2000 frames that is far
        // beyond chance, as two songs whose beats a searched tempo lines up are, but it is not
        // the recording. The same upload holding 60 % of them is.
        let frames = 2000u32;
        let reference: Vec<Peak> = scattered(400, 3);
        let noise = noise_peaks(frames, 3, 12345);
        let upload = |every: usize| -> QueryPeaks {
            let mut peaks: Vec<Peak> = noise.clone();
            peaks.extend(reference.iter().step_by(every).copied());
            peaks.sort_by_key(|p| (p.frame, p.bin));
            QueryPeaks::new(&peaks, (6, 232), frames)
        };
        let refs = One(reference.clone(), frames);
        let mut m = candidate(0, 0);
        (m.rival, m.rival_offset, m.query_frames) = (0, None, (0, frames - 1));
        let p = MatchParams::default();
        let weak = upload(8);
        let v = weak.verify(&reference, 0, (0, frames - 1), Warp::IDENTITY);
        assert!(
            (0.2..0.3).contains(&v.fraction()) && v.chance > 0.09,
            "{v:?}"
        );
        let without_floor = MatchParams {
            min_lift: 0.0,
            ..p.clone()
        };
        let kept = verify_candidates(&refs, &weak, vec![m.clone()], 1e3, &without_floor).unwrap();
        assert!(
            kept.first().is_some_and(|k| k.confidence > 0.99),
            "{kept:?}"
        );
        assert!(verify_candidates(&refs, &weak, vec![m.clone()], 1e3, &p)
            .unwrap()
            .is_empty());
        let strong = upload(2);
        assert_eq!(
            verify_candidates(&refs, &strong, vec![m], 1e3, &p)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_recording_under_noise_that_hides_most_of_its_peaks_is_a_match() {
        // An upload with one noise peak a frame (chance 4 %) that kept one reference peak in
        // seven: 19 % found, under the old 20 % floor, but 4.6 times chance over 2000 frames.
        // What stops a weak resemblance is the lift over chance, not an absolute share.
        let frames = 2000u32;
        let reference: Vec<Peak> = scattered(400, 3);
        let mut peaks = noise_peaks(frames, 1, 777);
        peaks.extend(reference.iter().step_by(7).copied());
        peaks.sort_by_key(|p| (p.frame, p.bin));
        let upload = QueryPeaks::new(&peaks, (6, 232), frames);
        let v = upload.verify(&reference, 0, (0, frames - 1), Warp::IDENTITY);
        assert!(
            (0.12..0.2).contains(&v.fraction()) && v.fraction() > 3.0 * v.chance,
            "{v:?}"
        );
        let refs = One(reference.clone(), frames);
        let mut m = candidate(0, 0);
        (m.rival, m.rival_offset, m.query_frames) = (0, None, (0, frames - 1));
        let p = MatchParams::default();
        let kept = verify_candidates(&refs, &upload, vec![m.clone()], 1e3, &p).unwrap();
        assert!(
            kept.first().is_some_and(|k| k.confidence > 0.99),
            "{kept:?}"
        );
        let old_floor = MatchParams {
            min_fraction: 0.2,
            ..p
        };
        assert!(verify_candidates(&refs, &upload, vec![m], 1e3, &old_floor)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_groove_shared_with_another_recording_is_not_a_match() {
        // Reference: a drum grid (a kick every 50 frames at bin 40, a snare between at bin 120)
        // under a melody of its own. Another recording on the same grid, with its own melody,
        // finds every drum hit: a third of the reference's peaks, far beyond chance. But it fits
        // the reference shifted by a bar just as well; the recording itself does not.
        let frames = 3000u32;
        let grid: Vec<Peak> = (0..frames / 25)
            .map(|i| Peak {
                frame: i * 25,
                bin: if i % 2 == 0 { 40 } else { 120 },
                salience: 1.0,
                sub: [0, 0],
            })
            .collect();
        // A recording on the grid: the drums under a melody of its own (`seed`), off the beat.
        let layered = |seed: u32| -> Vec<Peak> {
            let melody = scattered(250, seed).into_iter().map(|p| Peak {
                frame: p.frame * 2 + 1,
                ..p
            });
            let mut v: Vec<Peak> = grid.iter().copied().chain(melody).collect();
            v.sort_by_key(|p| (p.frame, p.bin));
            v
        };
        let (reference, other) = (layered(7), layered(13));
        let refs = One(reference.clone(), frames);
        let mut m = candidate(0, 0);
        (m.rival, m.rival_offset, m.query_frames) = (0, None, (0, frames - 1));
        let p = MatchParams::default();

        let q = QueryPeaks::new(&other, (6, 232), frames);
        let span = (0, frames - 1);
        let v = q.verify(&reference, 0, span, Warp::IDENTITY);
        assert!(v.fraction() > 0.3 && v.chance < 0.05, "{v:?}");
        assert!(period_lead(&q, &reference, &m, span) < p.min_period_lead);
        let without_rule = MatchParams {
            min_period_lead: f64::NEG_INFINITY,
            ..p.clone()
        };
        let kept = verify_candidates(&refs, &q, vec![m.clone()], 1e3, &without_rule).unwrap();
        assert!(
            kept.first().is_some_and(|k| k.confidence > 0.99),
            "{kept:?}"
        );
        assert!(verify_candidates(&refs, &q, vec![m.clone()], 1e3, &p)
            .unwrap()
            .is_empty());

        let q = QueryPeaks::new(&reference, (6, 232), frames);
        assert!(period_lead(&q, &reference, &m, span) > 5.0);
        let kept = verify_candidates(&refs, &q, vec![m], 1e3, &p).unwrap();
        assert!(
            kept.first()
                .is_some_and(|k| k.verification.is_some_and(|v| v.period_lead > 5.0)),
            "{kept:?}"
        );
    }

    #[test]
    fn exact_alignment_finds_every_peak_and_a_wrong_one_few() {
        let peaks: Vec<Peak> = (0..200u32)
            .map(|i| Peak {
                frame: i * 5 + (i * 7 % 3),
                bin: (20 + i * 53 % 180) as u16,
                salience: 1.0,
                sub: [0, 0],
            })
            .collect();
        // The query is the reference from frame 300 on, re-based to 0.
        let query: Vec<Peak> = peaks
            .iter()
            .filter(|p| p.frame >= 300)
            .map(|p| Peak {
                frame: p.frame - 300,
                ..*p
            })
            .collect();
        let q = QueryPeaks::new(&query, (6, 232), 700);
        let right = q.verify(&peaks, 300, (0, 600), Warp::IDENTITY);
        assert!(
            right.found > 100 && right.found == right.checked,
            "{right:?}"
        );
        let wrong = q.verify(&peaks, 137, (0, 600), Warp::IDENTITY);
        assert!(wrong.fraction() < 0.2, "{wrong:?}");
        assert!(binomial_sf(right.found as f64, right.checked as f64, right.chance) < 1e-50);
    }
}
