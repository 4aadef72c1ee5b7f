//! Every tunable of the fingerprinter in one place, with its unit.
//!
//! Changing any field that affects the hashes changes [`FingerprintParams::id`]; an index or a pack
//! records that id and refuses to mix fingerprints made with other parameters.

use sha2::{Digest, Sha256};

/// Peak density and pairing for one side of the search.
///
/// References are fingerprinted sparsely (small index); queries densely, so that the reference's
/// peaks and pairs are (nearly) a subset of the query's even when noise reorders the peaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Density {
    /// Peaks kept per rank window (see [`FingerprintParams::rank_window`]).
    pub peaks_per_window: usize,
    /// Targets each anchor peak is paired with, nearest in time first.
    pub fan_out: usize,
}

/// The fingerprinter's parameters. `default()` is what the index and the CLI use.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerprintParams {
    /// Engine sample rate (Hz): everything is resampled to it before analysis.
    pub sample_rate: u32,
    /// FFT size (samples at `sample_rate`).
    pub fft_size: usize,
    /// Hop between frames (samples); one frame is the unit of every time below.
    pub hop: usize,
    /// Lowest and highest FFT bin a peak may sit on (inclusive, exclusive).
    pub bins: (usize, usize),
    /// Frames whose power is averaged (this one and the ones before it) before the log. Noise
    /// scatters from frame to frame while a note's partial holds for many frames, so the average
    /// keeps partials and flattens noise: a peak then survives noise that would have outshone it.
    pub smooth_frames: usize,
    /// Half-width (bins) of the per-frame spectral envelope subtracted before peak picking
    /// (whitening: makes peaks robust to equalisation, band limits and coloured noise).
    pub envelope_half_width: usize,
    /// A peak is the maximum within ± this many frames...
    pub peak_half_frames: usize,
    /// ...and ± this many bins.
    pub peak_half_bins: usize,
    /// Minimum salience (natural-log units above the local envelope) for a peak.
    pub min_salience: f32,
    /// Rank window (frames, half-width): a peak survives if it is among the strongest
    /// `peaks_per_window` candidate peaks within ± this many frames.
    pub rank_window: usize,
    /// Pairing zone: targets lie 1..=max_dt frames after the anchor...
    pub max_dt: u32,
    /// ...and within ± this many bins of it.
    pub max_df: u32,
    /// Density used when indexing references.
    pub reference: Density,
    /// Peaks per rank window *stored* with a reference, for verification only (not hashed).
    /// More than are hashed: verification's evidence grows with the peaks it can check, at
    /// about 2 bytes a peak, while each hash costs an index row (~15 bytes).
    pub verify_peaks_per_window: usize,
    /// Density used when scanning queries.
    pub query: Density,
}

impl Default for FingerprintParams {
    fn default() -> Self {
        FingerprintParams {
            sample_rate: 8000,
            fft_size: 512,
            hop: 128,
            bins: (6, 232),
            smooth_frames: 3,
            envelope_half_width: 12,
            peak_half_frames: 4,
            peak_half_bins: 5,
            min_salience: 1.0,
            rank_window: 31,
            max_dt: 63,
            max_df: 63,
            reference: Density {
                peaks_per_window: 18,
                fan_out: 3,
            },
            verify_peaks_per_window: 30,
            query: Density {
                peaks_per_window: 60,
                fan_out: 16,
            },
        }
    }
}

impl FingerprintParams {
    /// Seconds per frame.
    pub fn frame_seconds(&self) -> f64 {
        self.hop as f64 / self.sample_rate as f64
    }

    /// Short, stable id of the parameters that shape reference hashes (stored in indexes and packs).
    ///
    /// Query-side density is left out on purpose: it can be tuned without re-indexing.
    pub fn id(&self) -> String {
        let text = format!(
            "v2 sr={} fft={} hop={} bins={:?} smooth={} env={} peak={}x{} sal={} rank={} zone={}x{} ref={}/{} verify={} {}",
            self.sample_rate,
            self.fft_size,
            self.hop,
            self.bins,
            self.smooth_frames,
            self.envelope_half_width,
            self.peak_half_frames,
            self.peak_half_bins,
            self.min_salience,
            self.rank_window,
            self.max_dt,
            self.max_df,
            self.reference.peaks_per_window,
            self.reference.fan_out,
            self.verify_peaks_per_window,
            super::triplets::TripletParams::default().stored_shape(),
        );
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("fp2-{hex}")
    }

    /// Frames of context the streaming fingerprinter must keep before a chunk.
    pub(crate) fn context_before(&self) -> usize {
        self.rank_window + self.peak_half_frames
    }

    /// Frames of context the streaming fingerprinter must see after a chunk.
    pub(crate) fn context_after(&self) -> usize {
        self.max_dt as usize + self.rank_window + self.peak_half_frames
    }
}
