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

/// A source that fails with [`AudioError::TooLong`] once it has yielded more than `max_s`
/// seconds: one bound on decoding work, whatever the container or codec.
pub struct Limited<S> {
    inner: S,
    max_s: f64,
    left: u64,
}

impl<S: AudioSource> Limited<S> {
    /// Wraps `inner`, allowing it `max_s` seconds of audio (at its own rate).
    pub fn new(inner: S, max_s: f64) -> Self {
        // Float to integer casts saturate: an infinite budget is no bound.
        let left = (max_s.max(0.0) * inner.sample_rate() as f64) as u64;
        Limited { inner, max_s, left }
    }
}

impl<S: AudioSource> AudioSource for Limited<S> {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>> {
        let Limited { inner, max_s, left } = self;
        match inner.next_block()? {
            Some(block) if block.len() as u64 > *left => Err(AudioError::TooLong(*max_s)),
            Some(block) => {
                *left -= block.len() as u64;
                Ok(Some(block))
            }
            None => Ok(None),
        }
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
        let mut short = Limited::new(MemorySource::new(vec![0.1; 8000], 8000), 1.5);
        let info = stream_mono(&mut short, 8000, |_| {}).unwrap();
        assert!((info.duration_s - 1.0).abs() < 0.01, "{info:?}");
        let mut long = Limited::new(MemorySource::new(vec![0.1; 8000 * 3], 8000), 1.5);
        let got = stream_mono(&mut long, 8000, |_| {});
        assert!(matches!(got, Err(AudioError::TooLong(_))), "{got:?}");
    }
}
