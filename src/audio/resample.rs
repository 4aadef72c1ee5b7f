//! Sample-rate conversion to the engine rate, as a stream.
//!
//! rubato's synchronous FFT resampler: a proper anti-aliasing low-pass (44.1 kHz → 8 kHz must
//! remove everything above 4 kHz, or cymbals fold down onto the band the fingerprints use), fast
//! (~3000× real time here), and fed in fixed chunks so memory does not grow with the input.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

use super::{AudioError, Result};

/// Highest input rate accepted; beyond it the header is taken as corrupt.
const MAX_RATE: u32 = 768_000;
/// Lowest input rate accepted.
const MIN_RATE: u32 = 1_000;

/// Largest sample magnitude passed on. Decoded audio lies within ±1, float files may hold
/// more; past this a chunk's FFT could overflow to infinity.
const MAX_SAMPLE: f32 = 1e6;

/// Streaming mono resampler from one fixed rate to another (or a pass-through).
pub struct Resampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    /// Leading output frames still to drop (the filter's delay).
    delay_left: usize,
    /// Input frames seen and output frames emitted, to trim the tail exactly.
    frames_in: u64,
    frames_out: u64,
    rate_in: u32,
    rate_out: u32,
}

impl Resampler {
    /// A resampler from `rate_in` to `rate_out` Hz.
    pub fn new(rate_in: u32, rate_out: u32) -> Result<Self> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate_in) {
            return Err(AudioError::Limit(format!("sample rate {rate_in} Hz")));
        }
        let inner = if rate_in == rate_out {
            None
        } else {
            let fft = Fft::<f32>::new(
                rate_in as usize,
                rate_out as usize,
                2048,
                1,
                FixedSync::Input,
            )
            .map_err(|e| AudioError::Limit(format!("resampler {rate_in}→{rate_out} Hz: {e}")))?;
            Some(fft)
        };
        let delay_left = inner.as_ref().map_or(0, |f| f.output_delay());
        let out_len = inner.as_ref().map_or(0, |f| f.output_frames_max());
        Ok(Resampler {
            inner,
            pending: Vec::new(),
            out_buf: vec![0.0; out_len],
            delay_left,
            frames_in: 0,
            frames_out: 0,
            rate_in,
            rate_out,
        })
    }

    /// Feeds input samples; appends the output now available to `out`. NaN and infinite samples
    /// (float files can hold them) become silence and absurdly loud ones are clipped to
    /// [`MAX_SAMPLE`]: either would poison the FFT of its chunk.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.frames_in += input.len() as u64;
        let clean = input.iter().map(|&x| match x.is_finite() {
            true => x.clamp(-MAX_SAMPLE, MAX_SAMPLE),
            false => 0.0,
        });
        let Some(fft) = self.inner.as_mut() else {
            out.extend(clean);
            self.frames_out += input.len() as u64;
            return Ok(());
        };
        self.pending.extend(clean);
        let need = fft.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start >= need {
            self.run_chunk(start, None, out)?;
            start += need;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the tail (the last partial chunk and the filter's delay) into `out`.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let expected = self.frames_in * self.rate_out as u64 / self.rate_in as u64;
        let partial = self.pending.len();
        self.run_chunk(0, Some(partial), out)?;
        self.pending.clear();
        // Silence pushes out what the filter still holds; a few chunks at most.
        let mut guard = 0;
        while self.frames_out < expected && guard < 16 {
            self.run_chunk(0, Some(0), out)?;
            guard += 1;
        }
        if self.frames_out > expected {
            let extra = (self.frames_out - expected) as usize;
            out.truncate(out.len().saturating_sub(extra));
            self.frames_out = expected;
        }
        Ok(())
    }

    fn run_chunk(
        &mut self,
        start: usize,
        partial: Option<usize>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(fft) = self.inner.as_mut() else {
            return Ok(());
        };
        let need = fft.input_frames_next();
        if self.pending.len() < start + need {
            self.pending.resize(start + need, 0.0);
        }
        let err = |e: &dyn std::fmt::Display| AudioError::Limit(format!("resampling failed: {e}"));
        let input = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
            .map_err(|e| err(&e))?;
        let frames = self.out_buf.len();
        let mut output =
            InterleavedSlice::new_mut(&mut self.out_buf, 1, frames).map_err(|e| err(&e))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Default::default()
        };
        let (_, produced) = fft
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| err(&e))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        out.extend_from_slice(&self.out_buf[skip..produced]);
        self.frames_out += (produced - skip) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    fn run(input: &[f32], rate_in: u32, block: usize) -> Vec<f32> {
        let mut r = Resampler::new(rate_in, 8000).unwrap();
        let mut out = Vec::new();
        for c in input.chunks(block) {
            r.process(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn keeps_length_and_passband_and_removes_aliases() {
        let n = 44100 * 2;
        let pass = run(&sine(1000.0, 44100, n), 44100, 1000);
        assert_eq!(pass.len(), 16000);
        assert!(
            (rms(&pass[2000..14000]) - 0.707).abs() < 0.02,
            "rms {}",
            rms(&pass)
        );
        // 6 kHz would alias to 2 kHz without a filter.
        let alias = run(&sine(6000.0, 44100, n), 44100, 777);
        assert!(rms(&alias[2000..14000]) < 0.01, "alias rms {}", rms(&alias));
    }

    #[test]
    fn output_is_aligned_with_input() {
        // A click at 0.5 s must come out at 0.5 s (the filter delay is removed).
        let mut x = vec![0.0; 48000];
        x[24000] = 1.0;
        let y = run(&x, 48000, 4096);
        let peak = y
            .iter()
            .enumerate()
            .fold(
                (0, 0.0f32),
                |m, (i, v)| if v.abs() > m.1 { (i, v.abs()) } else { m },
            )
            .0;
        assert!((peak as i64 - 4000).abs() <= 1, "click at {peak}");
    }

    #[test]
    fn non_finite_samples_become_silence() {
        let mut x = sine(1000.0, 44100, 44100);
        x[100] = f32::NAN;
        x[2000] = f32::INFINITY;
        x[3000] = f32::NEG_INFINITY;
        // Finite, but a chunk of them overflows the FFT (a float file can hold anything).
        x[5000..9000].fill(3e38);
        let y = run(&x, 44100, 1000);
        assert_eq!(y.len(), 8000);
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn refuses_absurd_rates() {
        assert!(Resampler::new(0, 8000).is_err());
        assert!(Resampler::new(5_000_000, 8000).is_err());
    }
}
