//! Short-time spectrum → whitened log-power frames ("salience").
//!
//! Input: mono samples at the engine rate. Output: one [`Frame`] per hop, holding for every bin
//! the log of the power averaged over the last few frames, minus the frame's smoothed spectral
//! envelope, so that a peak means "louder than its neighbourhood" whatever the equalisation,
//! band limit or coloured noise of the recording.
//! Pure: no I/O; [`SpectrogramStream`] only keeps the samples of one unfinished frame and the
//! power of the last few.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use super::params::FingerprintParams;

/// Whitened log power per FFT bin; bins outside the analysed band are `-inf`.
pub type Frame = Vec<f32>;

/// Turns a stream of samples into frames, one per hop.
pub struct SpectrogramStream {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    pending: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    power: Vec<f32>,
    /// Linear power of the last `smooth_frames` frames (a ring; `next` is the oldest slot).
    recent: Vec<Vec<f32>>,
    next: usize,
    filled: usize,
    prefix: Vec<f64>,
    params: FingerprintParams,
}

impl SpectrogramStream {
    /// A stream for these parameters.
    pub fn new(params: &FingerprintParams) -> Self {
        let n = params.fft_size;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        // Hann window: low side lobes keep a loud partial from masking its quiet neighbours.
        let window = (0..n)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / n as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        SpectrogramStream {
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            window,
            pending: Vec::with_capacity(2 * n),
            power: vec![0.0; n / 2 + 1],
            recent: vec![vec![0.0; n / 2 + 1]; params.smooth_frames.max(1)],
            next: 0,
            filled: 0,
            prefix: vec![0.0; n / 2 + 2],
            params: params.clone(),
        }
    }

    /// Feeds samples; appends every completed frame to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Frame>) {
        let n = self.params.fft_size;
        let hop = self.params.hop;
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= n {
            out.push(self.frame(start));
            start += hop;
        }
        self.pending.drain(..start);
    }

    fn frame(&mut self, start: usize) -> Frame {
        let n = self.params.fft_size;
        for ((dst, &x), &w) in self
            .input
            .iter_mut()
            .zip(&self.pending[start..start + n])
            .zip(&self.window)
        {
            // NaN or inf in the input would poison every later frame of the FFT; treat as silence.
            *dst = if x.is_finite() { x * w } else { 0.0 };
        }
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            // Only fails on buffer-length mismatch, which the constructor rules out.
            return vec![f32::NEG_INFINITY; n / 2 + 1];
        }
        for (p, c) in self.recent[self.next].iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        self.next = (self.next + 1) % self.recent.len();
        self.filled = (self.filled + 1).min(self.recent.len());
        // The first frames of a stream average over fewer frames: only a clip's first few
        // milliseconds differ from the same audio inside a longer recording.
        let scale = 1.0 / self.filled as f32;
        self.power.fill(0.0);
        for k in 0..self.filled {
            let slot = (self.next + self.recent.len() - 1 - k) % self.recent.len();
            for (p, &x) in self.power.iter_mut().zip(&self.recent[slot]) {
                *p += x;
            }
        }
        // Floor well below any real signal so silence gives a flat, peak-free frame.
        for p in self.power.iter_mut() {
            *p = (*p * scale + 1e-6).ln();
        }
        whiten(&self.power, &mut self.prefix, &self.params)
    }
}

/// Log power minus its moving average over ±`envelope_half_width` bins, inside the band.
fn whiten(power: &[f32], prefix: &mut [f64], params: &FingerprintParams) -> Frame {
    prefix[0] = 0.0;
    for (i, &p) in power.iter().enumerate() {
        prefix[i + 1] = prefix[i] + p as f64;
    }
    let (lo, hi) = params.bins;
    let hw = params.envelope_half_width;
    let mut frame = vec![f32::NEG_INFINITY; power.len()];
    for b in lo..hi.min(power.len()) {
        let a = b.saturating_sub(hw);
        let z = (b + hw + 1).min(power.len());
        let mean = (prefix[z] - prefix[a]) / (z - a) as f64;
        frame[b] = power[b] - mean as f32;
    }
    frame
}

/// All frames of a whole signal (batch form of [`SpectrogramStream`]).
pub fn spectrogram(samples: &[f32], params: &FingerprintParams) -> Vec<Frame> {
    let mut out = Vec::new();
    SpectrogramStream::new(params).push(samples, &mut out);
    out
}
