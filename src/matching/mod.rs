//! Matching: query landmarks + index hits → aligned matches with a score and a confidence.
//!
//! For every reference that shares hashes with the query, hits vote on the time offset
//! `reference frame − query frame`; a true match piles its hits on one offset, chance hits spread
//! over all of them. A peak of the offset histogram becomes a candidate; its hits are split into
//! segments where the query has long gaps; segments that overlap in the query keep only the
//! strongest. This module knows nothing of SQL or files: hits arrive through [`crate::index::Store`].
//!
//! **Confidence.** Chance hits of a reference land on an offset roughly uniformly, so the count
//! in one offset window is Poisson with mean `λ = hits × window / offsets`. The expected number of
//! windows, over all offsets of all references hit, reaching a score `s` by chance is
//! `E = windows × P(Poisson(λ) ≥ s)`; `confidence = exp(−E)` is the probability that no chance
//! alignment this strong exists, given the hits this query drew.

use std::collections::HashMap;

use crate::fingerprint::Landmark;
use crate::index::{Store, TrackId};

/// Matching thresholds and tolerances.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchParams {
    /// Offsets within ± this many frames vote together (peak time jitter, encoder delay).
    pub offset_tolerance: u32,
    /// A silence of more than this many query frames without hits splits a match.
    pub max_gap_frames: u32,
    /// Minimum number of aligned hits for a match.
    pub min_score: u32,
    /// Minimum confidence for a match.
    pub min_confidence: f64,
    /// Candidate offsets examined per reference (several allow a chant repeated in one upload).
    pub candidates_per_track: usize,
}

impl Default for MatchParams {
    fn default() -> Self {
        MatchParams { offset_tolerance: 1, max_gap_frames: 400, min_score: 8, min_confidence: 0.5, candidates_per_track: 4 }
    }
}

/// One match: a stretch of the query aligned with a stretch of a reference (times in frames).
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The reference.
    pub track: TrackId,
    /// First and last query frame with an aligned hit.
    pub query_frames: (u32, u32),
    /// Offset `reference frame − query frame` (median of the aligned hits).
    pub offset: i64,
    /// Reference frames per query frame.
    pub speed: f64,
    /// Number of aligned hits.
    pub score: u32,
    /// Probability that this is not a chance alignment (see the module docs).
    pub confidence: f64,
}

/// A hit: a query landmark found in a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    track: TrackId,
    offset: i64,
    query: u32,
}

/// Finds the matches of a query. `ref_frames(track)` gives a reference's length in frames;
/// `query_frames` is the query's length. Matches come ordered by query start.
pub fn find_matches(
    store: &dyn Store,
    query: &[Landmark],
    query_frames: u32,
    ref_frames: &dyn Fn(TrackId) -> u32,
    params: &MatchParams,
) -> crate::index::Result<Vec<Match>> {
    let hits = collect_hits(store, query)?;
    Ok(vote(hits, query_frames, ref_frames, params))
}

/// Looks every distinct query hash up once and expands the rows into hits.
fn collect_hits(store: &dyn Store, query: &[Landmark]) -> crate::index::Result<Vec<Hit>> {
    let mut by_hash: HashMap<u32, Vec<u32>> = HashMap::new();
    for l in query {
        by_hash.entry(l.hash).or_default().push(l.frame);
    }
    let mut keys: Vec<u32> = by_hash.keys().copied().collect();
    keys.sort_unstable();
    let mut hits = Vec::new();
    store.lookup(&keys, &mut |hash, track, t| {
        if let Some(frames) = by_hash.get(&hash) {
            for &q in frames {
                hits.push(Hit { track, offset: t as i64 - q as i64, query: q });
            }
        }
    })?;
    Ok(hits)
}

/// Offset voting over hits (pure; the core of [`find_matches`]).
fn vote(mut hits: Vec<Hit>, query_frames: u32, ref_frames: &dyn Fn(TrackId) -> u32, p: &MatchParams) -> Vec<Match> {
    hits.sort_unstable();
    hits.dedup();
    let window = 2 * p.offset_tolerance as i64 + 1;
    // Tracks with any hit: each is a family of offsets searched, for the multiple-test correction.
    let mut per_track: Vec<(TrackId, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let j = i + hits[i..].iter().take_while(|h| h.track == hits[i].track).count();
        per_track.push((hits[i].track, i, j));
        i = j;
    }
    let tracks_hit = per_track.len().max(1) as f64;
    let mut segments = Vec::new();
    for &(track, a, z) in &per_track {
        let track_hits = &hits[a..z];
        let offsets = ref_frames(track) as f64 + query_frames as f64;
        let lambda = track_hits.len() as f64 * window as f64 / offsets.max(window as f64);
        let trials = tracks_hit * (offsets / window as f64).max(1.0);
        for cluster in offset_clusters(track_hits, p) {
            for seg in split_segments(cluster, p.max_gap_frames) {
                let score = seg.len() as u32;
                if score < p.min_score {
                    continue;
                }
                let expected = trials * poisson_sf(score, lambda);
                let confidence = (-expected).exp();
                if confidence < p.min_confidence {
                    continue;
                }
                let mut offs: Vec<i64> = seg.iter().map(|h| h.offset).collect();
                offs.sort_unstable();
                segments.push(Match {
                    track,
                    query_frames: (seg[0].query, seg[seg.len() - 1].query),
                    offset: offs[offs.len() / 2],
                    speed: 1.0,
                    score,
                    confidence,
                });
            }
        }
    }
    resolve_overlaps(segments)
}

/// The strongest offset windows of one track's hits (sorted by offset), each with its hits
/// sorted by query frame. Hits are used by one cluster at most.
fn offset_clusters(hits: &[Hit], p: &MatchParams) -> Vec<Vec<Hit>> {
    let tol = p.offset_tolerance as i64;
    let mut used = vec![false; hits.len()];
    let mut clusters = Vec::new();
    for _ in 0..p.candidates_per_track {
        // Sliding window over offsets: best [lo, lo + 2·tol] by count of unused hits.
        let (mut best, mut best_at) = (0usize, None);
        let mut lo = 0;
        let mut count = 0usize;
        for hi in 0..hits.len() {
            count += !used[hi] as usize;
            while hits[hi].offset - hits[lo].offset > 2 * tol {
                count -= !used[lo] as usize;
                lo += 1;
            }
            if count > best {
                best = count;
                best_at = Some((lo, hi));
            }
        }
        let Some((lo, hi)) = best_at else { break };
        if (best as u32) < p.min_score {
            break;
        }
        let mut c: Vec<Hit> = (lo..=hi).filter(|&k| !used[k]).map(|k| hits[k]).collect();
        for u in &mut used[lo..=hi] {
            *u = true;
        }
        c.sort_unstable_by_key(|h| (h.query, h.offset));
        clusters.push(c);
    }
    clusters
}

/// Splits a cluster (sorted by query frame) where consecutive hits are more than `gap` apart.
fn split_segments(cluster: Vec<Hit>, gap: u32) -> Vec<Vec<Hit>> {
    let mut out: Vec<Vec<Hit>> = Vec::new();
    for h in cluster {
        match out.last_mut() {
            Some(seg) if h.query - seg[seg.len() - 1].query <= gap => seg.push(h),
            _ => out.push(vec![h]),
        }
    }
    out
}

/// Keeps, for each stretch of the query, the strongest match; returns them by query start.
fn resolve_overlaps(mut segs: Vec<Match>) -> Vec<Match> {
    segs.sort_by(|a, b| b.score.cmp(&a.score).then(a.track.cmp(&b.track)).then(a.offset.cmp(&b.offset)));
    let mut kept: Vec<Match> = Vec::new();
    for s in segs {
        let (a0, a1) = s.query_frames;
        let clash = kept.iter().any(|k| {
            let (b0, b1) = k.query_frames;
            let overlap = a1.min(b1) as i64 - a0.max(b0) as i64;
            let shorter = (a1 - a0).min(b1 - b0) as i64;
            overlap >= 0 && overlap * 2 >= shorter
        });
        if !clash {
            kept.push(s);
        }
    }
    kept.sort_by_key(|m| (m.query_frames.0, std::cmp::Reverse(m.score)));
    kept
}

/// `P(X ≥ k)` for `X ~ Poisson(λ)`, accurate in the far tail where it matters here.
pub fn poisson_sf(k: u32, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if (k as f64) < lambda {
        // Not in the tail: sum the lower part instead.
        let mut term = (-lambda).exp();
        let mut cdf = term;
        for i in 1..k {
            term *= lambda / i as f64;
            cdf += term;
        }
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    // ln pmf(k) = −λ + k ln λ − ln k!, then sum the decreasing terms.
    let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
    let mut term = (-lambda + k as f64 * lambda.ln() - ln_fact).exp();
    let mut sum = 0.0;
    let mut i = k;
    while term > sum * 1e-12 && i < k + 10_000 {
        sum += term;
        i += 1;
        term *= lambda / i as f64;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits_at(track: i64, offset: i64, queries: impl Iterator<Item = u32>) -> Vec<Hit> {
        queries.map(|q| Hit { track: TrackId(track), offset, query: q }).collect()
    }

    /// Deterministic scatter of chance hits over many offsets and tracks.
    fn noise(n: usize) -> Vec<Hit> {
        let mut x = 7u64;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                Hit { track: TrackId((x >> 60) as i64), offset: ((x >> 20) % 20_000) as i64 - 600, query: ((x >> 40) % 600) as u32 }
            })
            .collect()
    }

    #[test]
    fn aligned_hits_beat_noise() {
        let mut hits = noise(3000);
        hits.extend(hits_at(3, 1234, (0..600).step_by(20)));
        let m = vote(hits, 600, &|_| 20_000, &MatchParams::default());
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].track, m[0].offset), (TrackId(3), 1234));
        assert!(m[0].confidence > 0.99);
    }

    #[test]
    fn noise_alone_gives_no_match() {
        for n in [100, 3000, 30_000] {
            let m = vote(noise(n), 600, &|_| 20_000, &MatchParams::default());
            assert!(m.is_empty(), "{n} chance hits gave {m:?}");
        }
    }

    #[test]
    fn two_chants_in_one_upload_are_two_matches() {
        let mut hits = hits_at(1, 500, (0..300).step_by(10));
        hits.extend(hits_at(2, 9000, (400..700).step_by(10)));
        // The same reference again later, at another offset (a chant repeated).
        hits.extend(hits_at(1, -300, (800..1100).step_by(10)));
        let m = vote(hits, 1100, &|_| 20_000, &MatchParams::default());
        let got: Vec<_> = m.iter().map(|m| (m.track.0, m.offset, m.query_frames)).collect();
        assert_eq!(got, vec![(1, 500, (0, 290)), (2, 9000, (400, 690)), (1, -300, (800, 1090))]);
    }

    #[test]
    fn poisson_tail_matches_direct_sum() {
        for &(k, l) in &[(1u32, 0.5f64), (5, 0.1), (10, 3.0), (3, 7.0), (40, 2.0)] {
            let mut direct = 0.0;
            let mut term = (-l).exp();
            for i in 0..200u32 {
                if i > 0 {
                    term *= l / i as f64;
                }
                if i >= k {
                    direct += term;
                }
            }
            let got = poisson_sf(k, l);
            assert!((got - direct).abs() <= 1e-9 + 1e-6 * direct, "k={k} λ={l}: {got} vs {direct}");
        }
    }
}
