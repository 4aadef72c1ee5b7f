//! Spectral peaks: local maxima of the whitened spectrogram, thinned to a target density.
//!
//! Two steps, both translation-invariant in time (a clip cut anywhere from a recording yields the
//! recording's peaks, bar the clip's edges): [`candidate_peaks`] keeps points that are the maximum
//! of their time-frequency neighbourhood; [`select_peaks`] keeps those among the strongest `k`
//! within a sliding time window (no fixed blocks whose phase would depend on where a clip starts).

use super::params::FingerprintParams;
use super::spectrogram::Frame;

/// A spectral peak: frame index, FFT bin, and salience (log units above the local envelope).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// Frame index (absolute, from the start of the stream).
    pub frame: u32,
    /// FFT bin.
    pub bin: u16,
    /// Whitened log power.
    pub salience: f32,
    /// Where the interpolated maximum lies from (frame, bin), in sixteenths of a frame and of a
    /// bin, in [−8, 7] (see `triplets::refine`); zero where not refined.
    pub sub: [i8; 2],
}

/// Salience as an index stores it: eighths of a log unit, 0–255 (a stored reference's peaks
/// are ranked again when its triplets are derived, so the rank must survive storage).
pub fn stored_salience(s: f32) -> u8 {
    (s * 8.0).round().clamp(0.0, 255.0) as u8
}

/// Local maxima over ±`peak_half_frames` × ±`peak_half_bins` with at least `min_salience`.
///
/// `first` is the absolute index of `frames[0]`. Frames outside the slice count as absent, so
/// callers that need exact results near the slice's edges pass enough context (see `stream`).
/// Output is sorted by (frame, bin).
pub fn candidate_peaks(frames: &[Frame], first: u32, params: &FingerprintParams) -> Vec<Peak> {
    let hb = params.peak_half_bins;
    let ht = params.peak_half_frames;
    // Max over frequency first (separable max filter), then over time.
    let fmax: Vec<Vec<f32>> = frames.iter().map(|f| sliding_max(f, hb)).collect();
    let (lo, hi) = params.bins;
    let mut peaks = Vec::new();
    for (t, frame) in frames.iter().enumerate() {
        let t0 = t.saturating_sub(ht);
        let t1 = (t + ht + 1).min(frames.len());
        for b in lo..hi.min(frame.len()) {
            let s = frame[b];
            // NaN-safe: a NaN salience fails `>=` and is skipped.
            if s.partial_cmp(&params.min_salience)
                .is_none_or(|o| o.is_lt())
                || s < fmax[t][b]
            {
                continue;
            }
            if (t0..t1).all(|u| u == t || fmax[u][b] <= s) {
                peaks.push(Peak {
                    frame: first + t as u32,
                    bin: b as u16,
                    salience: s,
                    sub: [0, 0],
                });
            }
        }
    }
    peaks
}

/// `out[i] = max(x[i-h ..= i+h])`, clipped at the ends (NaN counts as absent).
///
/// Van Herk / Gil-Werman: over blocks of the window's width, a running max from each block's
/// start and one from its end; a window spans at most two blocks, so it is the larger of the
/// two at its ends. Three comparisons an element instead of 2h + 1 (this filter was a tenth of
/// indexing).
fn sliding_max(x: &[f32], h: usize) -> Vec<f32> {
    let w = 2 * h + 1;
    // x padded with h absent values on each side.
    let mut padded = vec![f32::NEG_INFINITY; x.len() + 2 * h];
    for (p, &v) in padded[h..].iter_mut().zip(x) {
        *p = p.max(v);
    }
    let m = padded.len();
    let mut from_start = padded.clone();
    for j in 1..m {
        if j % w != 0 {
            from_start[j] = from_start[j - 1].max(from_start[j]);
        }
    }
    let mut to_end = padded;
    for j in (0..m.saturating_sub(1)).rev() {
        if (j + 1) % w != 0 {
            to_end[j] = to_end[j + 1].max(to_end[j]);
        }
    }
    // Output i's window is padded i ..= i + 2h.
    (0..x.len())
        .map(|i| to_end[i].max(from_start[i + w - 1]))
        .collect()
}

/// Keeps a candidate when fewer than `k` stronger candidates lie within ±`window` frames of it.
///
/// Input sorted by (frame, bin); output too. Ties in salience are broken by position, so the
/// result is deterministic.
pub fn select_peaks(cands: &[Peak], window: usize, k: usize) -> Vec<Peak> {
    let w = window as u32;
    let mut out = Vec::new();
    let mut lo = 0;
    for (i, p) in cands.iter().enumerate() {
        while cands[lo].frame + w < p.frame {
            lo += 1;
        }
        let mut stronger = 0;
        for (j, q) in cands[lo..].iter().enumerate() {
            if q.frame > p.frame + w {
                break;
            }
            if q.salience > p.salience || (q.salience == p.salience && lo + j < i) {
                stronger += 1;
                if stronger >= k {
                    break;
                }
            }
        }
        if stronger < k {
            out.push(*p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive reference: compare every point with every neighbour directly.
    #[allow(clippy::needless_range_loop)] // indices make the naive version read like its definition
    fn naive_candidates(frames: &[Frame], params: &FingerprintParams) -> Vec<Peak> {
        let mut out = Vec::new();
        let (lo, hi) = params.bins;
        for t in 0..frames.len() {
            for b in lo..hi {
                let s = frames[t][b];
                if s.partial_cmp(&params.min_salience)
                    .is_none_or(|o| o.is_lt())
                {
                    continue;
                }
                let mut is_max = true;
                for u in t.saturating_sub(params.peak_half_frames)
                    ..(t + params.peak_half_frames + 1).min(frames.len())
                {
                    for c in b.saturating_sub(params.peak_half_bins)
                        ..(b + params.peak_half_bins + 1).min(frames[u].len())
                    {
                        if (u, c) != (t, b) && frames[u][c] > s {
                            is_max = false;
                        }
                    }
                }
                if is_max {
                    out.push(Peak {
                        frame: t as u32,
                        bin: b as u16,
                        salience: s,
                        sub: [0, 0],
                    });
                }
            }
        }
        out
    }

    fn pseudo_random_frames(n: usize, seed: u64) -> Vec<Frame> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                (0..257)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((x >> 33) as f32 / (1u64 << 31) as f32) * 6.0 - 2.0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn sliding_max_agrees_with_the_direct_form() {
        let frames = pseudo_random_frames(3, 4);
        let mut x = frames[0].clone();
        x[7] = f32::NAN;
        for h in [0, 1, 2, 5, 9, 300] {
            for len in [0, 1, 5, 11, 12, 257] {
                let x = &x[..len];
                let direct: Vec<f32> = (0..len)
                    .map(|i| {
                        let z = (i + h + 1).min(len);
                        x[i.saturating_sub(h)..z]
                            .iter()
                            .copied()
                            .fold(f32::NEG_INFINITY, f32::max)
                    })
                    .collect();
                assert_eq!(sliding_max(x, h), direct, "h {h}, len {len}");
            }
        }
    }

    #[test]
    fn fast_candidates_agree_with_naive() {
        let params = FingerprintParams::default();
        for seed in 1..5 {
            let frames = pseudo_random_frames(60, seed);
            let fast = candidate_peaks(&frames, 0, &params);
            assert!(!fast.is_empty());
            assert_eq!(fast, naive_candidates(&frames, &params));
        }
    }

    #[test]
    fn selection_keeps_at_most_k_per_window() {
        let params = FingerprintParams::default();
        let frames = pseudo_random_frames(400, 9);
        let cands = candidate_peaks(&frames, 0, &params);
        let kept = select_peaks(&cands, 10, 3);
        assert!(kept.len() < cands.len());
        for p in &kept {
            let near = kept
                .iter()
                .filter(|q| q.frame.abs_diff(p.frame) <= 10 && q.salience > p.salience)
                .count();
            assert!(near < 3, "peak {p:?} has {near} stronger kept neighbours");
        }
    }
}
