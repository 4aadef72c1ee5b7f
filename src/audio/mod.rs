//! Audio input: any container and codec → mono `f32` blocks at the engine's sample rate.
//!
//! Two seams, each a trait so that new backends drop in:
//! - [`AudioSource`]: a decoder that yields mono blocks at the stream's own rate
//!   ([`decode::SymphoniaSource`] is the default, with Opus through libopus);
//! - [`resample::Resampler`]: converts those blocks to the engine rate with an anti-aliasing filter.
//!
//! [`stream_mono`] joins them and hands the caller fixed-rate blocks as they are decoded, so memory
//! stays flat however long the input. This module knows nothing of fingerprints or databases.
//!
//! | container | codecs |
//! |---|---|
//! | MP3 (MPEG audio) | MP1/2/3 |
//! | MP4 / M4A / MOV (audio track of a video too) | AAC-LC, ALAC |
//! | Ogg | Vorbis, Opus, FLAC |
//! | FLAC | FLAC |
//! | WAV | PCM 8/16/24/32-bit, float, µ-law, A-law, IMA/MS ADPCM |
//! | AIFF / CAF | PCM, ALAC |
//! | MKV / WebM | Vorbis, Opus, AAC, FLAC, PCM |
//! | ADTS | AAC-LC |

pub mod decode;
pub mod resample;

pub use decode::SymphoniaSource;
pub use resample::Resampler;

/// What went wrong reading audio. Messages are one line and name no path: callers add it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// No known container or codec was recognised.
    #[error("not a supported audio or video file ({0})")]
    Unsupported(String),
    /// The container holds no audio track.
    #[error("no audio track")]
    NoAudioTrack,
    /// The stream is malformed beyond recovery before any audio was decoded.
    #[error("corrupt stream: {0}")]
    Corrupt(String),
    /// The stream declares parameters outside what the engine accepts.
    #[error("unsupported stream: {0}")]
    Limit(String),
    /// The file decoded to no samples at all.
    #[error("no audio decoded (empty or unreadable stream)")]
    Empty,
    /// The stream holds more audio than the budget for one input (a decompression bomb, an
    /// endless stream); decoding stopped there.
    #[error("decodes to more than {0:.0} s of audio, the limit for one input")]
    TooLong(f64),
    /// Every sample stayed at one value (digital silence, or a constant offset) for longer than
    /// the budget allows: the cheap sign of a decompression bomb. Decoding stopped there.
    #[error("holds more than {limit_s:.0} s of digital silence from {from_s:.1} s on, the limit for one input (a decompression bomb?)")]
    Silence {
        /// The budget (s).
        limit_s: f64,
        /// Where the silent stretch began (s).
        from_s: f64,
    },
    /// Decoding ran past the wall-clock deadline set for this input (a service's per-request
    /// deadline); it stopped there, after `0` seconds of audio.
    #[error("not decoded within the time allowed for one input (stopped after {0:.1} s of audio)")]
    Deadline(f64),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, AudioError>;

/// A decoded stream of mono samples at its own sample rate.
pub trait AudioSource {
    /// Sample rate (Hz) of the blocks this source yields.
    fn sample_rate(&self) -> u32;
    /// The next block of mono samples, or `None` at the end of the stream.
    fn next_block(&mut self) -> Result<Option<&[f32]>>;
    /// Packets skipped because they could not be decoded (recoverable errors).
    fn skipped_packets(&self) -> u64 {
        0
    }
}

/// Summary of one decoded stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamInfo {
    /// Duration in seconds (at the engine rate, after decoding).
    pub duration_s: f64,
    /// Packets skipped as undecodable.
    pub skipped_packets: u64,
}

/// Decodes `source` to the end, handing `sink` mono blocks at `rate` Hz as they come.
pub fn stream_mono(
    source: &mut dyn AudioSource,
    rate: u32,
    mut sink: impl FnMut(&[f32]),
) -> Result<StreamInfo> {
    let mut resampler = Resampler::new(source.sample_rate(), rate)?;
    let mut produced = 0u64;
    let mut out = Vec::new();
    while let Some(block) = source.next_block()? {
        out.clear();
        resampler.process(block, &mut out)?;
        produced += out.len() as u64;
        if !out.is_empty() {
            sink(&out);
        }
    }
    out.clear();
    resampler.finish(&mut out)?;
    produced += out.len() as u64;
    if !out.is_empty() {
        sink(&out);
    }
    if produced == 0 {
        return Err(AudioError::Empty);
    }
    Ok(StreamInfo {
        duration_s: produced as f64 / rate as f64,
        skipped_packets: source.skipped_packets(),
    })
}

/// A source held to a budget: it fails with [`AudioError::TooLong`] once it has yielded more
/// than `max_s` seconds, and with [`AudioError::Silence`] once every sample has kept one value
/// for more than `max_silence_s`. One bound on decoding work, whatever the container or codec;
/// the silence check costs a comparison per sample and stops a bomb minutes in, not hours.
pub struct Limited<S> {
    inner: S,
    max_s: f64,
    left: u64,
    max_silence: u64,
    /// Samples yielded so far.
    pos: u64,
    /// The value of the current run of equal samples, and where the run began.
    run_value: f32,
    run_start: u64,
    /// Wall-clock time by which the source must be decoded, if any.
    deadline: Option<std::time::Instant>,
}

impl<S: AudioSource> Limited<S> {
    /// Wraps `inner`, allowing it `max_s` seconds of audio and `max_silence_s` seconds of one
    /// unchanging sample value (both at its own rate).
    pub fn new(inner: S, max_s: f64, max_silence_s: f64) -> Self {
        let rate = inner.sample_rate() as f64;
        // Float to integer casts saturate: an infinite budget is no bound.
        Limited {
            inner,
            max_s,
            left: (max_s.max(0.0) * rate) as u64,
            max_silence: (max_silence_s.max(0.0) * rate) as u64,
            pos: 0,
            run_value: f32::NAN,
            run_start: 0,
            deadline: None,
        }
    }

    /// Also stops with [`AudioError::Deadline`] once `deadline` has passed (checked per block).
    pub fn with_deadline(mut self, deadline: Option<std::time::Instant>) -> Self {
        self.deadline = deadline;
        self
    }
}

impl<S: AudioSource> AudioSource for Limited<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>> {
        let rate = self.inner.sample_rate() as f64;
        let Limited {
            inner,
            max_s,
            left,
            max_silence,
            pos,
            run_value,
            run_start,
            deadline,
        } = self;
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(AudioError::Deadline(*pos as f64 / rate));
        }
        let Some(block) = inner.next_block()? else {
            return Ok(None);
        };
        if block.len() as u64 > *left {
            return Err(AudioError::TooLong(*max_s));
        }
        *left -= block.len() as u64;
        // Follow where the current run of equal samples began (it may carry over from earlier
        // blocks): the block's trailing run, found from its end (usually one comparison).
        // Non-finite samples decode as silence later on; NaN would also never equal itself.
        let value = |x: f32| if x.is_finite() { x } else { 0.0 };
        if let Some(&last) = block.last() {
            let last = value(last);
            let from = block
                .iter()
                .rposition(|&x| value(x) != last)
                .map_or(0, |i| i + 1);
            if from > 0 || last != *run_value {
                *run_start = *pos + from as u64;
            }
            *run_value = last;
        }
        *pos += block.len() as u64;
        if *pos - *run_start > *max_silence {
            return Err(AudioError::Silence {
                limit_s: *max_silence as f64 / rate,
                from_s: *run_start as f64 / rate,
            });
        }
        Ok(Some(block))
    }

    fn skipped_packets(&self) -> u64 {
        self.inner.skipped_packets()
    }
}

/// A source over samples already in memory (tests, benchmarks, generated audio).
pub struct MemorySource {
    samples: Vec<f32>,
    rate: u32,
    pos: usize,
    block: usize,
}

impl MemorySource {
    /// Serves `samples` at `rate` Hz in blocks of 4096.
    pub fn new(samples: Vec<f32>, rate: u32) -> Self {
        MemorySource {
            samples,
            rate,
            pos: 0,
            block: 4096,
        }
    }
}

impl AudioSource for MemorySource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>> {
        if self.pos >= self.samples.len() {
            return Ok(None);
        }
        let end = (self.pos + self.block).min(self.samples.len());
        let start = std::mem::replace(&mut self.pos, end);
        Ok(Some(&self.samples[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_source_stops_past_its_budget_and_passes_what_fits() {
        let noise = |n: usize| (0..n).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
        let mut short = Limited::new(MemorySource::new(noise(8000), 8000), 1.5, 1.0);
        let info = stream_mono(&mut short, 8000, |_| {}).unwrap();
        assert!((info.duration_s - 1.0).abs() < 0.01, "{info:?}");
        let mut long = Limited::new(MemorySource::new(noise(8000 * 3), 8000), 1.5, 1.0);
        let got = stream_mono(&mut long, 8000, |_| {});
        assert!(matches!(got, Err(AudioError::TooLong(_))), "{got:?}");
    }

    #[test]
    fn a_limited_source_stops_at_its_deadline() {
        let tone = |n: usize| (0..n).map(|i| (i as f32 * 0.3).sin()).collect::<Vec<f32>>();
        let passed = Some(std::time::Instant::now());
        let mut late =
            Limited::new(MemorySource::new(tone(8000), 8000), 60.0, 60.0).with_deadline(passed);
        let got = stream_mono(&mut late, 8000, |_| {});
        assert!(matches!(got, Err(AudioError::Deadline(_))), "{got:?}");
        let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let mut in_time = Limited::new(MemorySource::new(tone(8000), 8000), 60.0, 60.0)
            .with_deadline(Some(later));
        assert!(stream_mono(&mut in_time, 8000, |_| {}).is_ok());
    }

    #[test]
    fn a_limited_source_stops_in_a_long_stretch_of_one_value_and_passes_short_ones() {
        let rate = 8000;
        // Sound, then 0.9 s of zeros, sound again, then a constant offset for 2 s.
        let mut x: Vec<f32> = (0..rate).map(|i| (i as f32 * 0.3).sin()).collect();
        x.extend(std::iter::repeat_n(0.0, rate * 9 / 10));
        x.extend((0..rate).map(|i| (i as f32 * 0.2).sin()));
        let dc_from = x.len();
        x.extend(std::iter::repeat_n(0.25, rate * 2));
        let short = x[..dc_from].to_vec();
        let mut ok = Limited::new(MemorySource::new(short, rate as u32), 60.0, 1.0);
        assert!(stream_mono(&mut ok, 8000, |_| {}).is_ok());
        let mut bomb = Limited::new(MemorySource::new(x, rate as u32), 60.0, 1.0);
        match stream_mono(&mut bomb, 8000, |_| {}) {
            Err(AudioError::Silence { from_s, .. }) => {
                assert!(
                    (from_s - dc_from as f64 / rate as f64).abs() < 1e-3,
                    "{from_s}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
