//! Verification of candidate alignments, peak by peak, and the confidence that comes out of it.
//!
//! Voting finds offsets where landmark hashes agree; that is fast but counts pairs, which repeat
//! inside sustained notes and shared loops. Verification asks a sharper question: of the
//! reference's peaks inside the aligned stretch, how many have a query peak at the same place
//! (±1 frame, ±1 bin)? A recording matches itself peak for peak; a similar style, a shared loop
//! or a held chord in the same key matches only a small fraction.
//!
//! **Confidence.** If the alignment were chance, each reference peak would find a query peak with
//! probability `p0` = the share of the stretch's time-frequency cells near some query peak. Peaks
//! are not independent (a held note gives a row of them), so counts are divided by
//! [`PEAKS_PER_EVENT`] before the test: the number found is then taken as Binomial(`n/3`, `p0`);
//! `E = trials · P(X ≥ k/3)` is the expected number of chance alignments this good over every
//! offset of every reference the query touched, and `confidence = exp(−E)`.

use std::collections::{HashMap, HashSet};

use super::{Match, MatchParams};
use crate::fingerprint::Peak;
use crate::index::{Store, TrackId};

/// Peaks taken as one independent observation in the confidence (measured on real music: with
/// 1 the binomial model is far too sure of itself on unrelated recordings; with 3 its
/// probabilities hold on the evaluation corpus's negatives).
pub const PEAKS_PER_EVENT: u32 = 3;

/// Outcome of checking one alignment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    /// Reference peaks in the aligned stretch.
    pub checked: u32,
    /// Of those, peaks found in the query.
    pub found: u32,
    /// Chance that one reference peak is found at a random alignment.
    pub chance: f64,
}

impl Verification {
    /// Share of reference peaks found.
    pub fn fraction(&self) -> f64 {
        self.found as f64 / self.checked.max(1) as f64
    }
}

/// Query peaks widened by the tolerance, for constant-time "is there a peak near here?".
pub struct QueryPeaks {
    cells: HashSet<(u32, u16)>,
    by_frame: Vec<u32>,
    bins: (u16, u16),
}

impl QueryPeaks {
    /// Indexes the query's peaks; `bins` is the analysed band.
    pub fn new(peaks: &[Peak], bins: (usize, usize)) -> Self {
        let mut cells = HashSet::with_capacity(peaks.len() * 9);
        for p in peaks {
            for df in 0..3u32 {
                for db in 0..3u16 {
                    if let (Some(f), Some(b)) =
                        ((p.frame + df).checked_sub(1), (p.bin + db).checked_sub(1))
                    {
                        cells.insert((f, b));
                    }
                }
            }
        }
        let by_frame = peaks.iter().map(|p| p.frame).collect();
        QueryPeaks {
            cells,
            by_frame,
            bins: (bins.0 as u16, bins.1 as u16),
        }
    }

    /// Checks the reference peaks that fall on query frames `q0..=q1` at `offset`.
    pub fn verify(&self, reference: &[Peak], offset: i64, (q0, q1): (u32, u32)) -> Verification {
        let r0 = q0 as i64 + offset;
        let r1 = q1 as i64 + offset;
        let start = reference.partition_point(|p| (p.frame as i64) < r0);
        let (mut checked, mut found) = (0u32, 0u32);
        for p in &reference[start..] {
            if p.frame as i64 > r1 {
                break;
            }
            checked += 1;
            let q = p.frame as i64 - offset;
            if q >= 0 && self.cells.contains(&(q as u32, p.bin)) {
                found += 1;
            }
        }
        // Query peaks in the stretch, each covering up to 9 cells of the band.
        let a = self.by_frame.partition_point(|&f| f < q0);
        let z = self.by_frame.partition_point(|&f| f <= q1);
        let area = (q1 - q0 + 1) as f64 * (self.bins.1 - self.bins.0).max(1) as f64;
        let chance = ((z - a) as f64 * 9.0 / area).clamp(1e-6, 1.0);
        Verification {
            checked,
            found,
            chance,
        }
    }
}

/// Verifies the strongest candidates (by score) and keeps those that pass; sets their confidence.
pub fn verify_candidates(
    store: &dyn Store,
    query: &QueryPeaks,
    mut cands: Vec<Match>,
    trials: f64,
    p: &MatchParams,
) -> crate::index::Result<Vec<Match>> {
    cands.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.track.cmp(&b.track))
            .then(a.offset.cmp(&b.offset))
    });
    cands.truncate(p.max_verified);
    let mut peaks: HashMap<TrackId, Vec<Peak>> = HashMap::new();
    let mut out = Vec::new();
    for mut m in cands {
        let reference = match peaks.entry(m.track) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(store.peaks(m.track)?),
        };
        let v = query.verify(reference, m.offset, m.query_frames);
        let tail = binomial_sf(
            v.found / PEAKS_PER_EVENT,
            v.checked.div_ceil(PEAKS_PER_EVENT),
            v.chance,
        );
        m.verification = Some(v);
        m.confidence = (-trials * tail).exp();
        let unique = m.score >= m.rival + p.min_margin;
        if unique && v.fraction() >= p.min_fraction && m.confidence >= p.min_confidence {
            out.push(m);
        }
    }
    Ok(out)
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed in log space (accurate far in the tail).
pub fn binomial_sf(k: u32, n: u32, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let ln_fact = |m: u32| -> f64 { (2..=m).map(|i| (i as f64).ln()).sum() };
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_term =
        ln_fact(n) - ln_fact(k) - ln_fact(n - k) + k as f64 * lp + (n - k) as f64 * lq;
    let mut sum = 0.0;
    for i in k..=n {
        let t = ln_term.exp();
        sum += t;
        if t < sum * 1e-15 {
            break;
        }
        // term(i+1)/term(i) = (n−i)/(i+1) · p/q
        ln_term += ((n - i) as f64).ln() - ((i + 1) as f64).ln() + lp - lq;
    }
    sum.min(1.0)
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
            let got = binomial_sf(k, n, p);
            assert!(
                (got - direct).abs() <= 1e-12 + 1e-9 * direct,
                "k={k} n={n} p={p}: {got} vs {direct}"
            );
        }
    }

    #[test]
    fn exact_alignment_finds_every_peak_and_a_wrong_one_few() {
        let peaks: Vec<Peak> = (0..200u32)
            .map(|i| Peak {
                frame: i * 5 + (i * 7 % 3),
                bin: (20 + i * 53 % 180) as u16,
                salience: 1.0,
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
        let q = QueryPeaks::new(&query, (6, 232));
        let right = q.verify(&peaks, 300, (0, 600));
        assert!(
            right.found > 100 && right.found == right.checked,
            "{right:?}"
        );
        let wrong = q.verify(&peaks, 137, (0, 600));
        assert!(wrong.fraction() < 0.2, "{wrong:?}");
        assert!(binomial_sf(right.found, right.checked, right.chance) < 1e-50);
    }
}
