//! Deterministic synthetic music, for tests, benchmarks and the examples (no recordings needed).
//!
//! A "song" is a seeded melody of harmonic tones over a bass line, with kick, snare and hi-hat
//! noise and a little room noise: enough spectral structure for landmarks, and every seed sounds
//! different. Same seed, same samples, on every machine.

use std::io::Write;
use std::path::Path;

/// Small deterministic generator (64-bit LCG, high bits out).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn unit(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32
    }
    fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

/// `seconds` of mono music at `rate` Hz for `seed`, peak level about 0.8.
pub fn song(seed: u64, seconds: f32, rate: u32) -> Vec<f32> {
    let n = (seconds * rate as f32) as usize;
    let mut out = vec![0.0f32; n];
    let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) ^ 0x5DEECE66D);
    let beat = 60.0 / (96.0 + rng.below(60) as f32); // 96–155 bpm
    let root = 110.0 * 2f32.powf(rng.below(12) as f32 / 12.0);
    const SCALE: [u32; 7] = [0, 2, 3, 5, 7, 8, 10];
    let sr = rate as f32;
    let mut t = 0.0f32;
    // Melody and bass: one note per half or whole beat.
    while t < seconds {
        // Irregular rhythm and dynamics: a repetitive tune would align with itself at many offsets.
        let len = beat * (1 + rng.below(4)) as f32 / 4.0;
        let degree = SCALE[rng.below(7) as usize] + 12 * rng.below(2);
        let f = root * 2f32.powf(degree as f32 / 12.0) * 2.0;
        add_tone(
            &mut out,
            sr,
            t,
            len * 1.2,
            f,
            0.15 + 0.15 * rng.unit(),
            3 + rng.below(4),
        );
        if rng.below(2) == 0 {
            add_tone(
                &mut out,
                sr,
                t,
                len * 2.0,
                root * 2f32.powf(SCALE[rng.below(4) as usize] as f32 / 12.0) / 2.0,
                0.2,
                3,
            );
        }
        t += len;
    }
    // Drums on the beat grid.
    let mut b = 0;
    while (b as f32) * beat < seconds {
        let at = b as f32 * beat;
        if b % 2 == 0 || rng.below(4) == 0 {
            add_kick(&mut out, sr, at);
        } else {
            add_noise_burst(&mut out, sr, at, 0.12, 0.25, &mut rng);
        }
        if rng.below(3) > 0 {
            add_noise_burst(
                &mut out,
                sr,
                at + beat * (1 + rng.below(3)) as f32 / 4.0,
                0.03,
                0.08,
                &mut rng,
            );
        }
        b += 1;
    }
    for x in out.iter_mut() {
        *x += (rng.unit() - 0.5) * 0.004;
    }
    let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-9);
    out.iter_mut().for_each(|x| *x *= 0.8 / peak);
    out
}

fn add_tone(out: &mut [f32], sr: f32, start: f32, len: f32, f: f32, amp: f32, harmonics: u32) {
    let a = (start * sr) as usize;
    let z = (((start + len) * sr) as usize).min(out.len());
    // Oscillators and envelope by recurrence (a sine per harmonic per sample made the scale
    // test's thousands of songs slow): sin(n·w) = 2·cos(w)·sin((n−1)·w) − sin((n−2)·w).
    let mut osc: Vec<(f64, f64, f64, f64)> = (1..=harmonics)
        .filter(|&h| f * (h as f32) < sr / 2.0)
        .map(|h| {
            let w = std::f64::consts::TAU * (f * h as f32) as f64 / sr as f64;
            // (2cos w, sin(−w), sin(0), weight)
            (2.0 * w.cos(), -w.sin(), 0.0, 1.0 / h as f64)
        })
        .collect();
    let decay = (-3.0 / (len as f64 * sr as f64)).exp();
    let attack = 200.0 / sr as f64;
    let mut env = 1.0f64;
    for (i, x) in out[a.min(z)..z].iter_mut().enumerate() {
        let mut v = 0.0;
        for (k, prev, cur, weight) in osc.iter_mut() {
            v += *cur * *weight;
            let next = *k * *cur - *prev;
            (*prev, *cur) = (*cur, next);
        }
        *x += (amp as f64 * (i as f64 * attack).min(1.0) * env * v) as f32;
        env *= decay;
    }
}

fn add_kick(out: &mut [f32], sr: f32, start: f32) {
    let a = (start * sr) as usize;
    let z = (a + (0.25 * sr) as usize).min(out.len());
    let mut phase = 0.0f32;
    for (i, x) in out[a.min(z)..z].iter_mut().enumerate() {
        let t = i as f32 / sr;
        phase += std::f32::consts::TAU * (50.0 + 120.0 * (-t * 30.0).exp()) / sr;
        *x += 0.6 * (-t * 12.0).exp() * phase.sin();
    }
}

fn add_noise_burst(out: &mut [f32], sr: f32, start: f32, len: f32, amp: f32, rng: &mut Rng) {
    let a = (start * sr) as usize;
    let z = (a + (len * sr) as usize).min(out.len());
    let mut prev = 0.0;
    for (i, x) in out[a.min(z)..z].iter_mut().enumerate() {
        let t = i as f32 / sr;
        let w = rng.unit() - 0.5;
        // First difference: a brighter, hat-like noise.
        *x += amp * (-t * 4.0 / len).exp() * (w - prev);
        prev = w;
    }
}

/// White noise at `level` (RMS), deterministic.
pub fn noise(seed: u64, n: usize, level: f32) -> Vec<f32> {
    let mut rng = Rng(seed ^ 0xA5A5_5A5A);
    (0..n).map(|_| (rng.unit() - 0.5) * level * 3.464).collect()
}

/// Writes 16-bit PCM WAV; `samples` interleaved with `channels` channels.
pub fn write_wav(path: &Path, samples: &[f32], rate: u32, channels: u16) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let data_len = (samples.len() * 2) as u32;
    f.write_all(b"RIFF")?;
    f.write_all(&(36 + data_len).to_le_bytes())?;
    f.write_all(b"WAVEfmt ")?;
    f.write_all(&16u32.to_le_bytes())?;
    f.write_all(&1u16.to_le_bytes())?;
    f.write_all(&channels.to_le_bytes())?;
    f.write_all(&rate.to_le_bytes())?;
    f.write_all(&(rate * channels as u32 * 2).to_le_bytes())?;
    f.write_all(&(channels * 2).to_le_bytes())?;
    f.write_all(&16u16.to_le_bytes())?;
    f.write_all(b"data")?;
    f.write_all(&data_len.to_le_bytes())?;
    for &s in samples {
        f.write_all(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())?;
    }
    f.flush()
}
