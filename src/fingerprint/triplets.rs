//! Triplet keys that survive speed, tempo and pitch edits (issue 13's first pass).
//!
//! A landmark pair's hash holds a time gap and two frequencies, so an upload sped up by 20 %
//! shares none of its reference's hashes (a grid of warped queries undid that by trying many
//! guesses, each a round of lookups).
//! A triplet is an anchor peak and two later peaks near it. Under a time factor every gap scales
//! alike, so the *ratio* of the two gaps stays; under a frequency factor every log frequency
//! shifts alike, so log-frequency *differences* stay. The key holds only those (plus the
//! anchor's coarse band, which the query looks up at every band the shifts searched reach), and
//! a hit's own coordinates then give the factors: reference span ÷ upload span is the time
//! factor, the anchors' log-frequency difference the pitch shift.
//!
//! Linear FFT bins are too coarse for log-frequency differences at low frequencies (bin 8 is
//! 216 cents wide), so peaks are first refined to sub-bin, sub-frame positions ([`refine`]).
//! References take few targets per anchor and queries many, with a zone widened by the time
//! factors searched, so a reference's triplets are nearly a subset of an edited upload's.
//!
//! A triplet's key has about 20 bits of invariant information, which some 900 hours of music
//! fill; [`Triplet::quad_key`] adds a fourth peak (the anchor's strongest other target) for
//! larger indexes, at some cost in recall (docs/EVASION.md, session 11).

use super::peaks::{select_peaks, Peak};
use super::spectrogram::Frame;

/// A peak with its interpolated position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinePeak {
    /// The integer peak (what rank selection and verification use).
    pub peak: Peak,
    /// Interpolated frame.
    pub t: f32,
    /// Interpolated log frequency, semitones above bin 1: `12·log2(bin)`.
    pub l: f32,
}

/// The shape of the triplets and the range of edits the query searches. Units in the names.
#[derive(Debug, Clone, PartialEq)]
pub struct TripletParams {
    /// Peaks per rank window hashed for a reference (a subset of the peaks it stores).
    pub reference_peaks: usize,
    /// Later peaks an anchor is combined with in a reference (pairs of them make triplets).
    pub reference_fan: usize,
    /// Peaks per rank window hashed for an upload.
    pub query_peaks: usize,
    /// Later peaks an anchor is combined with in an upload.
    pub query_fan: usize,
    /// Targets lie this many frames after the anchor in a reference (inclusive).
    pub zone_frames: (u32, u32),
    /// ...and within ± this many semitones of it.
    pub zone_semitones: f32,
    /// Lowest FFT bin a hashed peak may sit on (below, bins are too coarse to refine well).
    pub min_bin: u16,
    /// Shortest anchor → last target span (frames): shorter spans give a noisy time factor.
    pub min_span_frames: f32,
    /// Cell width of the time-gap ratio (a number in [0, 1]).
    pub ratio_step: f32,
    /// Cell width of a log-frequency difference (semitones).
    pub semitone_step: f32,
    /// Cell width of the anchor's band (semitones).
    pub band_semitones: f32,
    /// A query value closer than this share of a cell to the cell's edge also probes the
    /// neighbouring cell (the index stores one cell per triplet).
    pub probe_margin: f32,
    /// Time factors searched (reference seconds per upload second).
    pub time_factors: (f32, f32),
    /// Pitch shifts searched, ± semitones.
    pub max_shift_semitones: f32,
    /// An upload triplet's strongest other targets tried as a stored triplet's fourth peak
    /// (quad keys only; at most [`QUERY_FOURTHS`]).
    pub query_fourths: usize,
    /// Rank window (frames, half-width) of the peak selections above.
    pub rank_window: usize,
}

impl Default for TripletParams {
    fn default() -> Self {
        TripletParams {
            reference_peaks: 18,
            reference_fan: 4,
            // 32 peaks, 8 targets (was 40 and 10): every class of both evaluation sets found as
            // often, with 39 % fewer hits to vote on (docs/EVASION.md, session 13).
            query_peaks: 32,
            query_fan: 8,
            zone_frames: (2, 62),
            zone_semitones: 12.0,
            min_bin: 8,
            min_span_frames: 4.0,
            ratio_step: 0.0625,
            // Refined peaks hold a fifth of a semitone: finding as many matches as ⅓ on both
            // evaluation sets with 39 % fewer chance hits (docs/EVASION.md, session 11).
            semitone_step: 0.2,
            band_semitones: 6.0,
            probe_margin: 0.2,
            time_factors: (0.74, 1.36),
            max_shift_semitones: 6.0,
            query_fourths: 3,
            rank_window: 31,
        }
    }
}

impl TripletParams {
    /// What shapes the stored triplets, for the fingerprint-parameter id.
    pub fn stored_shape(&self) -> String {
        format!(
            "tri={}/{} zone={:?}x{} minbin={} span={} cells={}/{}/{} rank={}",
            self.reference_peaks,
            self.reference_fan,
            self.zone_frames,
            self.zone_semitones,
            self.min_bin,
            self.min_span_frames,
            self.ratio_step,
            self.semitone_step,
            self.band_semitones,
            self.rank_window
        )
    }
}

/// A reference triplet: its key and where it sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triplet {
    /// The quantised invariant coordinates (28 bits, see [`key`]).
    pub key: u32,
    /// Anchor frame (interpolated).
    pub t: f32,
    /// Anchor log frequency (semitones).
    pub l: f32,
    /// Anchor → last target (frames).
    pub span: f32,
    /// The anchor's strongest other target, as (frames after the anchor ÷ span, semitones above
    /// it): invariant like the key, so an upload can check it is there too (a filter on chance
    /// hits, measured in docs/EVASION.md). `None` when the anchor had no other target.
    pub fourth: Option<(f32, f32)>,
}

/// A reference triplet as an index stores it: its key and, quantised, where it sits. The steps
/// are finer than the vote's cells and the fine pass's (a time factor to 0.25 %, pitch to 10
/// cents), and coarse enough to keep a posting small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoredTriplet {
    /// The key (28 bits, see [`key`]).
    pub key: u32,
    /// Anchor frame, in quarters of a frame.
    pub t: u32,
    /// Anchor log frequency, in 16ths of a semitone above bin 1.
    pub l: u16,
    /// Anchor → last target, in eighths of a frame.
    pub span: u16,
}

impl StoredTriplet {
    /// (anchor frame, anchor log frequency in semitones, span in frames).
    pub fn position(&self) -> (f32, f32, f32) {
        (
            self.t as f32 / 4.0,
            self.l as f32 / 16.0,
            self.span as f32 / 8.0,
        )
    }
}

/// The triplets an index keeps for a reference, derived from the peaks it stores (sorted by
/// frame, bin; refined and with their salience as stored), sorted and without duplicates.
/// Derived rather than stored with the peaks, so that every copy of a reference (a pack, a
/// replica, an import) gives the same triplets.
pub fn stored_triplets(peaks: &[Peak], p: &TripletParams) -> Vec<StoredTriplet> {
    let fine: Vec<FinePeak> = peaks.iter().map(FinePeak::of).collect();
    let mut out: Vec<StoredTriplet> = reference_triplets(&fine, p, p.rank_window)
        .iter()
        .map(|t| StoredTriplet {
            key: t.key,
            t: (t.t * 4.0).round().max(0.0) as u32,
            l: (t.l * 16.0).round().clamp(0.0, u16::MAX as f32) as u16,
            span: (t.span * 8.0).round().clamp(0.0, u16::MAX as f32) as u16,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// An upload triplet before quantisation: the query probes cells around its coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryTriplet {
    /// Gap ratio, two log-frequency differences and the anchor's band, in cells (unrounded).
    pub cells: [f32; 4],
    /// Anchor frame (interpolated).
    pub t: f32,
    /// Anchor log frequency (semitones).
    pub l: f32,
    /// Anchor → last target (frames).
    pub span: f32,
    /// Up to [`QUERY_FOURTHS`] of the anchor's other targets, strongest first, as (frames after
    /// the anchor ÷ span, semitones above it): a stored triplet's fourth peak is usually one.
    pub fourths: [(f32, f32); QUERY_FOURTHS],
    /// How many of `fourths` are set.
    pub n_fourths: usize,
}

/// Most other targets an upload triplet keeps as candidates for a stored triplet's fourth peak
/// (quad keys; [`TripletParams::query_fourths`] of them are probed).
pub const QUERY_FOURTHS: usize = 8;

/// Cell width of ln(fourth peak's gap ÷ span) in quad keys.
const FOURTH_LN_STEP: f32 = 0.5;

/// Refines peaks by a parabola through the whitened log power of each neighbour in frequency
/// and in time, setting [`Peak::sub`]. `first` is the absolute frame of `frames[0]`; a peak
/// outside `frames` is left as it is.
pub fn refine(frames: &[Frame], first: u32, peaks: &mut [Peak]) {
    for p in peaks {
        let Some(t) = p.frame.checked_sub(first).map(|t| t as usize) else {
            continue;
        };
        let b = p.bin as usize;
        let Some(f) = frames.get(t) else { continue };
        let Some(&mid) = f.get(b) else { continue };
        let db = match (b.checked_sub(1).and_then(|i| f.get(i)), f.get(b + 1)) {
            (Some(&lo), Some(&hi)) => parabola(lo, mid, hi),
            _ => 0.0,
        };
        let dt = match (
            t.checked_sub(1).and_then(|i| frames.get(i)),
            frames.get(t + 1),
        ) {
            (Some(prev), Some(next)) => match (prev.get(b), next.get(b)) {
                (Some(&lo), Some(&hi)) => parabola(lo, mid, hi),
                _ => 0.0,
            },
            _ => 0.0,
        };
        p.sub = [sixteenths(dt), sixteenths(db)];
    }
}

/// An offset in [−0.5, 0.5] in sixteenths, as [`Peak::sub`] holds it.
fn sixteenths(x: f32) -> i8 {
    (x * 16.0).round().clamp(-8.0, 7.0) as i8
}

impl FinePeak {
    /// The peak at its refined position (from [`Peak::sub`]).
    pub fn of(p: &Peak) -> FinePeak {
        let bin = p.bin as f32 + p.sub[1] as f32 / 16.0;
        FinePeak {
            peak: *p,
            t: p.frame as f32 + p.sub[0] as f32 / 16.0,
            l: 12.0 * bin.max(1.0).log2(),
        }
    }
}

/// Vertex of the parabola through three equally spaced values, as an offset from the middle
/// one, in [−0.5, 0.5] (the middle is a local maximum, so the vertex lies between its neighbours).
fn parabola(y0: f32, y1: f32, y2: f32) -> f32 {
    let den = y0 - 2.0 * y1 + y2;
    if !(y0.is_finite() && y2.is_finite()) || den.abs() < 1e-9 {
        return 0.0;
    }
    (0.5 * (y0 - y2) / den).clamp(-0.5, 0.5)
}

/// The library's rank selection on refined peaks (strongest `k` within ± `window` frames).
pub fn select(peaks: &[FinePeak], window: usize, k: usize) -> Vec<FinePeak> {
    let plain: Vec<Peak> = peaks.iter().map(|p| p.peak).collect();
    let kept = select_peaks(&plain, window, k);
    // `kept` is a subsequence of `plain`, in order.
    let mut all = peaks.iter();
    kept.iter()
        .filter_map(|k| all.find(|p| p.peak.frame == k.frame && p.peak.bin == k.bin))
        .copied()
        .collect()
}

/// Calls `f(anchor, target1, target2, all targets)` for every triplet of `peaks` (sorted by frame, bin) with
/// `fan` targets per anchor in frames `dt.0..=dt.1` after it.
fn combine(
    peaks: &[FinePeak],
    p: &TripletParams,
    fan: usize,
    dt: (u32, u32),
    mut f: impl FnMut(&FinePeak, &FinePeak, &FinePeak, &[&FinePeak]),
) {
    let mut targets: Vec<&FinePeak> = Vec::with_capacity(fan);
    for (i, a) in peaks.iter().enumerate() {
        if a.peak.bin < p.min_bin {
            continue;
        }
        targets.clear();
        for q in &peaks[i + 1..] {
            if q.peak.frame > a.peak.frame + dt.1 || targets.len() >= fan {
                break;
            }
            if q.peak.frame >= a.peak.frame + dt.0
                && q.peak.bin >= p.min_bin
                && (q.l - a.l).abs() <= p.zone_semitones
            {
                targets.push(q);
            }
        }
        for (x, t1) in targets.iter().enumerate() {
            for t2 in &targets[x + 1..] {
                if t2.t - a.t >= p.min_span_frames {
                    f(a, t1, t2, &targets);
                }
            }
        }
    }
}

/// The unrounded cells of a triplet.
fn cells(a: &FinePeak, t1: &FinePeak, t2: &FinePeak, p: &TripletParams) -> [f32; 4] {
    let span = t2.t - a.t;
    [
        (t1.t - a.t) / span / p.ratio_step,
        (t1.l - a.l) / p.semitone_step,
        (t2.l - a.l) / p.semitone_step,
        a.l / p.band_semitones,
    ]
}

/// Packs cells into a 28-bit key: gap ratio 6 bits, each difference 8 bits, band 6 bits.
/// Every cell a query can probe under the default steps (and steps down to half as wide) fits
/// its field, so distinct cells give distinct keys.
pub fn key(cells: [i32; 4]) -> u32 {
    let field = |v: i32, bias: i32, bits: u32| ((v + bias).clamp(0, (1 << bits) - 1)) as u32;
    (field(cells[0], 2, 6) << 22)
        | (field(cells[1], 128, 8) << 14)
        | (field(cells[2], 128, 8) << 6)
        | field(cells[3], 0, 6)
}

/// A reference's triplets, from its refined peaks (sorted by frame, bin).
pub fn reference_triplets(peaks: &[FinePeak], p: &TripletParams, window: usize) -> Vec<Triplet> {
    let kept = select(peaks, window, p.reference_peaks);
    let mut out = Vec::new();
    combine(
        &kept,
        p,
        p.reference_fan,
        p.zone_frames,
        |a, t1, t2, targets| {
            let c = cells(a, t1, t2, p);
            let span = t2.t - a.t;
            // The strongest other target, where the edit would put it (see `Triplet::fourth`).
            let fourth = targets
                .iter()
                .filter(|q| !std::ptr::eq(**q, t1) && !std::ptr::eq(**q, t2))
                .max_by(|x, y| x.peak.salience.total_cmp(&y.peak.salience))
                .map(|q| ((q.t - a.t) / span, q.l - a.l));
            out.push(Triplet {
                key: key(c.map(|x| x.floor() as i32)),
                t: a.t,
                l: a.l,
                span,
                fourth,
            });
        },
    );
    out
}

/// An upload's triplets, from its refined peaks. The zone is widened so that a reference
/// triplet's targets are still inside it at every time factor searched.
pub fn query_triplets(peaks: &[FinePeak], p: &TripletParams, window: usize) -> Vec<QueryTriplet> {
    let kept = select(peaks, window, p.query_peaks);
    let (lo, hi) = p.time_factors;
    let dt = (
        ((p.zone_frames.0 as f32 / hi).floor() as u32).max(1),
        (p.zone_frames.1 as f32 / lo).ceil() as u32,
    );
    let mut out = Vec::new();
    // (salience, gap ÷ span, semitones) of an anchor's other targets.
    let mut others: Vec<(f32, f32, f32)> = Vec::new();
    combine(&kept, p, p.query_fan, dt, |a, t1, t2, targets| {
        let span = t2.t - a.t;
        others.clear();
        others.extend(
            targets
                .iter()
                .filter(|q| !std::ptr::eq(**q, t1) && !std::ptr::eq(**q, t2))
                .map(|q| (q.peak.salience, (q.t - a.t) / span, q.l - a.l)),
        );
        others.sort_by(|x, y| y.0.total_cmp(&x.0));
        let mut fourths = [(0.0, 0.0); QUERY_FOURTHS];
        let n_fourths = others.len().min(QUERY_FOURTHS).min(p.query_fourths);
        for (f, o) in fourths.iter_mut().zip(&others) {
            *f = (o.1, o.2);
        }
        out.push(QueryTriplet {
            cells: cells(a, t1, t2, p),
            t: a.t,
            l: a.l,
            span,
            fourths,
            n_fourths,
        });
    });
    out
}

/// The keys an upload triplet looks up: its own cell, the neighbouring cell of any invariant
/// value near a cell edge, and every band its anchor reaches under the shifts searched.
pub fn probes(q: &QueryTriplet, p: &TripletParams, out: &mut Vec<u32>) {
    out.clear();
    let mut sets: Vec<[i32; 3]> = vec![[0; 3]];
    for i in 0..3 {
        let x = q.cells[i];
        let c = x.floor();
        let frac = x - c;
        let c = c as i32;
        for s in sets.iter_mut() {
            s[i] = c;
        }
        let alt = if frac < p.probe_margin {
            Some(c - 1)
        } else if frac > 1.0 - p.probe_margin {
            Some(c + 1)
        } else {
            None
        };
        if let Some(alt) = alt {
            for j in 0..sets.len() {
                let mut s = sets[j];
                s[i] = alt;
                sets.push(s);
            }
        }
    }
    // Reference anchor = upload anchor − shift, shift within ± max_shift_semitones.
    let reach = p.max_shift_semitones / p.band_semitones;
    let lo = (q.cells[3] - reach).floor() as i32;
    let hi = (q.cells[3] + reach).floor() as i32;
    for s in &sets {
        for band in lo..=hi {
            out.push(key([s[0], s[1], s[2], band]));
        }
    }
}

/// The two cells a fourth peak adds to a quad key (unrounded).
fn fourth_cells((r4, d4): (f32, f32), p: &TripletParams) -> [f32; 2] {
    [r4.max(1e-3).ln() / FOURTH_LN_STEP, d4 / p.semitone_step]
}

/// A quad key: a triplet key and its fourth peak's two cells (8 bits each).
fn quad_key(triplet: u32, fourth: [i32; 2]) -> u64 {
    let field = |v: i32| (v + 128).clamp(0, 255) as u64;
    ((triplet as u64) << 16) | (field(fourth[0]) << 8) | field(fourth[1])
}

impl Triplet {
    /// The key with the fourth peak in it: ~11 more bits of selectivity, for indexes so large
    /// that triplet keys are all crowded (docs/EVASION.md, session 11). `None` without a fourth.
    pub fn quad_key(&self, p: &TripletParams) -> Option<u64> {
        let c = fourth_cells(self.fourth?, p);
        Some(quad_key(self.key, c.map(|x| x.floor() as i32)))
    }
}

/// The quad keys an upload triplet looks up: each of its triplet probes with each of its
/// `fourths`, near-edge cells probed on both sides as for the triplet's own cells.
pub fn quad_probes(q: &QueryTriplet, p: &TripletParams, out: &mut Vec<u64>, keys: &mut Vec<u32>) {
    out.clear();
    probes(q, p, keys);
    for &f in &q.fourths[..q.n_fourths] {
        let c = fourth_cells(f, p);
        let mut alts = [[0i32; 2]; 4];
        let mut n = 1;
        alts[0] = c.map(|x| x.floor() as i32);
        for i in 0..2 {
            let frac = c[i] - c[i].floor();
            let alt = if frac < p.probe_margin {
                -1
            } else if frac > 1.0 - p.probe_margin {
                1
            } else {
                0
            };
            if alt != 0 {
                for j in 0..n {
                    let mut a = alts[j];
                    a[i] += alt;
                    alts[n + j] = a;
                }
                n *= 2;
            }
        }
        for &k in keys.iter() {
            for a in &alts[..n] {
                out.push(quad_key(k, *a));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random peaks: `n` per second-ish over `frames`, bins 8..230.
    fn constellation(frames: u32, seed: u64) -> Vec<FinePeak> {
        let mut s = seed;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u32
        };
        let mut out = Vec::new();
        for frame in 0..frames {
            for _ in 0..(next() % 3) {
                let bin = 8 + (next() % 200) as u16;
                let db = (next() % 1000) as f32 / 1000.0 - 0.5;
                out.push(FinePeak {
                    peak: Peak {
                        frame,
                        bin,
                        salience: 1.0 + (next() % 1000) as f32 / 100.0,
                        sub: [0, 0],
                    },
                    t: frame as f32,
                    l: 12.0 * (bin as f32 + db).log2(),
                });
            }
        }
        out.sort_by_key(|p| (p.peak.frame, p.peak.bin));
        out.dedup_by_key(|p| (p.peak.frame, p.peak.bin));
        out
    }

    /// The same peaks played `time` times slower... i.e. reference frame = time × upload frame,
    /// and `shift` semitones higher.
    fn edited(refs: &[FinePeak], time: f32, shift: f32) -> Vec<FinePeak> {
        let mut out: Vec<FinePeak> = refs
            .iter()
            .map(|p| {
                let t = p.t / time;
                let l = p.l + shift;
                FinePeak {
                    peak: Peak {
                        frame: t.round() as u32,
                        bin: 2f32.powf(l / 12.0).round() as u16,
                        salience: p.peak.salience,
                        sub: [0, 0],
                    },
                    t,
                    l,
                }
            })
            .collect();
        out.sort_by_key(|p| (p.peak.frame, p.peak.bin));
        out.dedup_by_key(|p| (p.peak.frame, p.peak.bin));
        out
    }

    #[test]
    fn keys_keep_every_field_apart() {
        let base = [3, -10, 20, 9];
        let k = key(base);
        for i in 0..4 {
            for d in [-1, 1] {
                let mut c = base;
                c[i] += d;
                assert_ne!(key(c), k, "field {i} moved by {d}");
            }
        }
        assert!(key([34, 80, -80, 40]) < 1 << 28);
    }

    #[test]
    fn parabola_finds_the_vertex_and_stays_between_neighbours() {
        // y = −(x − 0.3)², sampled at −1, 0, 1.
        let y = |x: f32| -(x - 0.3) * (x - 0.3);
        assert!((parabola(y(-1.0), y(0.0), y(1.0)) - 0.3).abs() < 1e-5);
        assert_eq!(parabola(f32::NEG_INFINITY, 1.0, 0.0), 0.0);
        assert!(parabola(0.0, 1.0, 1.0) <= 0.5);
    }

    /// Most reference triplets are found by an edited upload's probes, and the hit's own
    /// coordinates give back the edit: the core promise of the first pass.
    #[test]
    fn edited_uploads_probe_the_reference_keys_and_give_back_the_edit() {
        let p = TripletParams::default();
        let refs = constellation(1200, 7);
        let stored = reference_triplets(&refs, &p, 31);
        assert!(stored.len() > 1000, "{} triplets", stored.len());
        for (time, shift) in [(1.0, 0.0), (1.25, 0.0), (0.8, 0.0), (1.0, 3.0), (1.15, 2.0)] {
            let upload = edited(&refs, time, shift);
            let queries = query_triplets(&upload, &p, 31);
            let mut by_key: std::collections::HashMap<u32, Vec<&Triplet>> = Default::default();
            for s in &stored {
                by_key.entry(s.key).or_default().push(s);
            }
            let mut found = std::collections::HashSet::new();
            let mut keys = Vec::new();
            for q in &queries {
                probes(q, &p, &mut keys);
                for k in &keys {
                    for s in by_key.get(k).into_iter().flatten() {
                        // The same triplet: same anchor under the edit, same factors.
                        let factor = s.span / q.span;
                        if (s.t - q.t * time).abs() < 1.0
                            && (factor / time - 1.0).abs() < 0.03
                            && (q.l - s.l - shift).abs() < 0.2
                        {
                            found.insert((s.t.to_bits(), s.key));
                        }
                    }
                }
            }
            let share = found.len() as f64 / stored.len() as f64;
            assert!(share > 0.6, "time {time} shift {shift}: {share:.2} found");
            // A stored triplet's fourth peak, placed by the upload triplet's own span and
            // anchor, lands on an upload peak (it is invariant like the key).
            let (mut placed, mut landed) = (0, 0);
            for q in &queries {
                probes(q, &p, &mut keys);
                for s in keys
                    .iter()
                    .flat_map(|k| by_key.get(k).into_iter().flatten())
                {
                    let Some((r4, d4)) = s.fourth else { continue };
                    if (s.t - q.t * time).abs() >= 1.0
                        || (s.span / q.span / time - 1.0).abs() >= 0.03
                    {
                        continue;
                    }
                    placed += 1;
                    let (t4, l4) = (q.t + r4 * q.span, q.l + d4);
                    landed += upload
                        .iter()
                        .any(|u| (u.t - t4).abs() <= 1.0 && (u.l - l4).abs() <= 0.25)
                        as usize;
                }
            }
            assert!(
                landed as f64 > 0.9 * placed as f64 && placed > 500,
                "time {time} shift {shift}: fourth peak landed {landed} / {placed}"
            );
        }
    }

    /// Quad keys (a triplet and its fourth peak) are found again in an edited upload for most
    /// stored triplets that have a fourth peak, like triplet keys but far more selective.
    #[test]
    fn edited_uploads_probe_most_quad_keys() {
        let p = TripletParams::default();
        let refs = constellation(1200, 11);
        let stored = reference_triplets(&refs, &p, 31);
        let quads: std::collections::HashSet<u64> =
            stored.iter().filter_map(|t| t.quad_key(&p)).collect();
        assert!(quads.len() > 1000, "{} quad keys", quads.len());
        for (time, shift) in [(1.0, 0.0), (1.25, 0.0), (0.8, 2.0)] {
            let upload = edited(&refs, time, shift);
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            let mut probed = std::collections::HashSet::new();
            for q in query_triplets(&upload, &p, 31) {
                quad_probes(&q, &p, &mut out, &mut scratch);
                probed.extend(out.iter().copied());
            }
            let found = quads.iter().filter(|k| probed.contains(k)).count();
            let share = found as f64 / quads.len() as f64;
            assert!(
                share > 0.4,
                "time {time} shift {shift}: {share:.2} of quad keys probed"
            );
        }
    }
}
