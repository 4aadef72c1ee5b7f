//! Fingerprinting: mono samples at the engine rate → landmark hashes with their frame times.
//!
//! The chain of types follows the data: samples → [`spectrogram::Frame`]s → candidate
//! [`peaks::Peak`]s → selected peaks → [`hash::Landmark`]s. Every function here is pure and
//! deterministic; this module knows nothing of files, decoders or databases.
//! [`Fingerprinter`] runs the chain as a stream with bounded memory; [`fingerprint`] is the
//! batch form, and a test checks that both agree.

pub mod hash;
pub mod params;
pub mod peaks;
pub mod spectrogram;
pub mod triplets;

pub use hash::Landmark;
pub use params::{Density, FingerprintParams};
pub use peaks::Peak;

use spectrogram::{Frame, SpectrogramStream};

/// Frames of anchors finished per step of the stream (8 s at the default rate): large enough
/// that the re-computed context around each step costs little.
const CHUNK_FRAMES: usize = 512;

/// Which side of the search a fingerprint is for (see [`Density`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A reference recording being indexed.
    Reference,
    /// An upload being scanned.
    Query,
}

/// What the fingerprinter produces: landmark hashes (looked up in the index) and selected peaks
/// (kept per reference to verify candidate alignments; a reference keeps more peaks than it
/// hashes, see [`FingerprintParams::verify_peaks_per_window`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prints {
    /// Landmarks in anchor order.
    pub landmarks: Vec<Landmark>,
    /// Selected peaks sorted by (frame, bin).
    pub peaks: Vec<Peak>,
}

impl Prints {
    /// Appends another piece of the same stream (its frames come after ours).
    pub fn append(&mut self, part: Prints) {
        self.landmarks.extend(part.landmarks);
        self.peaks.extend(part.peaks);
    }

    /// The landmarks and peaks anchored in frames `start..end`, re-based so `start` is frame 0.
    pub fn window(&self, start: u32, end: u32) -> Prints {
        let inside = |f: u32| (start..end).contains(&f);
        Prints {
            landmarks: self
                .landmarks
                .iter()
                .filter(|l| inside(l.frame))
                .map(|l| Landmark {
                    frame: l.frame - start,
                    ..*l
                })
                .collect(),
            peaks: self
                .peaks
                .iter()
                .filter(|p| inside(p.frame))
                .map(|p| Peak {
                    frame: p.frame - start,
                    ..*p
                })
                .collect(),
        }
    }
}

/// Streaming fingerprinter: push samples, collect landmarks. Memory is bounded by one chunk plus
/// its context, whatever the input length.
pub struct Fingerprinter {
    params: FingerprintParams,
    side: Side,
    density: Density,
    spec: SpectrogramStream,
    /// Frames from absolute index `base` on.
    frames: Vec<Frame>,
    base: u32,
    /// Anchors before this frame have been emitted.
    done: u32,
    total_frames: u32,
}

impl Fingerprinter {
    /// A fingerprinter for one stream.
    pub fn new(params: &FingerprintParams, side: Side) -> Self {
        let density = match side {
            Side::Reference => params.reference,
            Side::Query => params.query,
        };
        Fingerprinter {
            params: params.clone(),
            side,
            density,
            spec: SpectrogramStream::new(params),
            frames: Vec::new(),
            base: 0,
            done: 0,
            total_frames: 0,
        }
    }

    /// Feeds samples; appends the landmarks and peaks that are now final to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Prints) {
        let before = self.frames.len();
        self.spec.push(samples, &mut self.frames);
        self.total_frames += (self.frames.len() - before) as u32;
        let after = self.params.context_after() as u32;
        while self.total_frames >= self.done + CHUNK_FRAMES as u32 + after {
            let end = self.done + CHUNK_FRAMES as u32;
            self.emit(end, out);
        }
    }

    /// Landmarks and peaks anchored before this frame have all been appended.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// Ends the stream; appends the remaining landmarks and peaks. Returns the number of frames seen.
    pub fn finish(mut self, out: &mut Prints) -> u32 {
        let end = self.total_frames;
        if self.done < end {
            self.emit(end, out);
        }
        self.total_frames
    }

    /// Emits anchors in `done..end` and drops frames no longer needed as context.
    fn emit(&mut self, end: u32, out: &mut Prints) {
        let p = &self.params;
        // Only the context these anchors need: a long push holds many chunks of frames, and
        // scanning all of them per chunk made batch fingerprinting quadratic.
        let need = (end + p.context_after() as u32 + 1 - self.base) as usize;
        let frames = &self.frames[..need.min(self.frames.len())];
        let cands = peaks::candidate_peaks(frames, self.base, p);
        let kept = peaks::select_peaks(&cands, p.rank_window, self.density.peaks_per_window);
        hash::pair_peaks(
            &kept,
            self.done..end,
            p.max_dt,
            p.max_df,
            self.density.fan_out,
            &mut out.landmarks,
        );
        let range = self.done..end;
        let stored = match self.side {
            Side::Reference => {
                peaks::select_peaks(&cands, p.rank_window, p.verify_peaks_per_window)
            }
            Side::Query => kept,
        };
        let first = out.peaks.len();
        out.peaks
            .extend(stored.iter().filter(|k| range.contains(&k.frame)));
        as_stored(frames, self.base, &mut out.peaks[first..]);
        self.done = end;
        let keep_from = end.saturating_sub(p.context_before() as u32).max(self.base);
        self.frames.drain(..(keep_from - self.base) as usize);
        self.base = keep_from;
    }
}

/// A guess at how an upload was edited, mapping it onto the reference: `time` is reference
/// seconds per upload second, `freq` upload frequency per reference frequency. `(1, 1)` is no
/// edit, `(s, s)` a speed change ("sped up" by `s`), `(1, f)` a pitch shift, `(t, 1)` a tempo change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    /// Reference seconds per upload second.
    pub time: f64,
    /// Upload frequency per reference frequency.
    pub freq: f64,
}

impl Warp {
    /// No edit.
    pub const IDENTITY: Warp = Warp {
        time: 1.0,
        freq: 1.0,
    };
}

/// Landmarks of an upload's peaks moved into reference coordinates under `warp` (frames × time,
/// bins ÷ freq) and paired again. Landmark frames are in reference time.
pub fn warped_landmarks(
    peaks: &[Peak],
    warp: Warp,
    params: &FingerprintParams,
    fan_out: usize,
) -> Vec<Landmark> {
    let (lo, hi) = params.bins;
    let mut moved: Vec<Peak> = peaks
        .iter()
        .filter_map(|p| {
            let bin = (p.bin as f64 / warp.freq).round();
            let frame = (p.frame as f64 * warp.time).round();
            (bin >= lo as f64 && bin < hi as f64).then_some(Peak {
                frame: frame as u32,
                bin: bin as u16,
                salience: p.salience,
                sub: [0, 0],
            })
        })
        .collect();
    moved.sort_by_key(|p| (p.frame, p.bin));
    moved.dedup_by_key(|p| (p.frame, p.bin));
    let mut out = Vec::new();
    hash::pair_peaks(
        &moved,
        0..u32::MAX,
        params.max_dt,
        params.max_df,
        fan_out,
        &mut out,
    );
    out
}

/// Landmarks and peaks of a whole signal (batch form, for tests and benchmarks).
pub fn fingerprint(samples: &[f32], params: &FingerprintParams, side: Side) -> Prints {
    let mut fp = Fingerprinter::new(params, side);
    let mut out = Prints::default();
    fp.push(samples, &mut out);
    fp.finish(&mut out);
    out
}

/// Refines `peaks` and rounds their salience as an index keeps it: triplets are derived from
/// stored peaks, and must come out the same from a fresh fingerprint as from a stored one.
/// `first` is the absolute frame of `frames[0]`.
fn as_stored(frames: &[Frame], first: u32, peaks: &mut [Peak]) {
    triplets::refine(frames, first, peaks);
    for p in peaks.iter_mut() {
        p.salience = peaks::stored_salience(p.salience) as f32 / 8.0;
    }
}

/// Selected peaks of a whole signal, in one pass (used by tests, benchmarks and diagnostics).
pub fn peaks_of(samples: &[f32], params: &FingerprintParams, side: Side) -> Vec<Peak> {
    let density = match side {
        Side::Reference => params.reference,
        Side::Query => params.query,
    };
    let frames = spectrogram::spectrogram(samples, params);
    let cands = peaks::candidate_peaks(&frames, 0, params);
    let mut kept = peaks::select_peaks(&cands, params.rank_window, density.peaks_per_window);
    as_stored(&frames, 0, &mut kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test signal: a few drifting tones plus noise.
    fn signal(seconds: f32) -> Vec<f32> {
        let n = (seconds * 8000.0) as usize;
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                let noise = (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                let f1 = 300.0 + 200.0 * (t * 0.7).sin();
                let f2 = 900.0 + 400.0 * ((t * 1.3).floor() % 3.0);
                (std::f32::consts::TAU * f1 * t).sin() * 0.4
                    + (std::f32::consts::TAU * f2 * t).sin() * 0.3 * ((t * 4.0).sin().abs())
                    + 0.05 * noise
            })
            .collect()
    }

    #[test]
    fn stream_equals_batch_whatever_the_block_size() {
        let params = FingerprintParams::default();
        let s = signal(40.0);
        // Batch: all frames at once, every anchor in one pass.
        let frames = spectrogram::spectrogram(&s, &params);
        let cands = peaks::candidate_peaks(&frames, 0, &params);
        let kept = peaks::select_peaks(
            &cands,
            params.rank_window,
            params.reference.peaks_per_window,
        );
        let mut batch = Vec::new();
        hash::pair_peaks(
            &kept,
            0..u32::MAX,
            params.max_dt,
            params.max_df,
            params.reference.fan_out,
            &mut batch,
        );
        assert!(batch.len() > 500, "only {} landmarks", batch.len());
        let mut stored =
            peaks::select_peaks(&cands, params.rank_window, params.verify_peaks_per_window);
        assert!(stored.len() > kept.len());
        assert!(
            kept.iter().all(|k| stored.contains(k)),
            "hashed peaks are stored"
        );
        as_stored(&frames, 0, &mut stored);
        for block in [1usize, 333, 4096, 100_000] {
            let mut fp = Fingerprinter::new(&params, Side::Reference);
            let mut out = Prints::default();
            for chunk in s.chunks(block) {
                fp.push(chunk, &mut out);
            }
            fp.finish(&mut out);
            assert_eq!(out.landmarks, batch, "block size {block}");
            assert_eq!(out.peaks, stored, "block size {block}");
        }
    }

    #[test]
    fn query_side_finds_most_reference_landmarks_of_a_cut() {
        let params = FingerprintParams::default();
        let s = signal(30.0);
        let reference = fingerprint(&s, &params, Side::Reference).landmarks;
        // Cut at a whole number of hops so frames line up exactly.
        let cut = 128 * 300;
        let query = fingerprint(&s[cut..cut + 8000 * 10], &params, Side::Query).landmarks;
        let qset: std::collections::HashSet<(u32, u32)> =
            query.iter().map(|l| (l.hash, l.frame + 300)).collect();
        let inside: Vec<_> = reference
            .iter()
            .filter(|l| l.frame >= 320 && l.frame < 300 + 550)
            .collect();
        let found = inside
            .iter()
            .filter(|l| qset.contains(&(l.hash, l.frame)))
            .count();
        assert!(
            found as f64 >= 0.9 * inside.len() as f64,
            "{found}/{}",
            inside.len()
        );
    }
}
