//! nasheed: find known recordings in short, re-encoded, distorted uploads.
//!
//! The pipeline, one module per stage, each depending only on the ones before it:
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | decode | [`audio`] | file → mono blocks at 8 kHz |
//! | fingerprint | [`fingerprint`] | samples → spectral peaks → landmark hashes |
//! | index | [`index`] | landmarks ↔ SQLite (a [`index::Store`]) |
//! | match | [`matching`] | hits → offset votes → matches with confidence |
//! | share | [`pack`] | fingerprints ↔ portable pack files (no audio) |
//! | glue | [`engine`] | the calls the CLI and the evaluation harness share |
//!
//! The evaluation harness and the test-music synthesiser live apart, in the dev-only crate
//! `tests/harness`.
//!
//! Printing lives in the binary's `cli` module; nothing here writes to stdout.
//!
//! ```
//! use nasheed::fingerprint::{fingerprint, FingerprintParams, Side};
//! let params = FingerprintParams::default();
//! let tone: Vec<f32> = (0..8000 * 3).map(|i| ((i as f32) * 0.3).sin() * ((i / 800) % 2) as f32).collect();
//! let prints = fingerprint(&tone, &params, Side::Reference);
//! assert!(!prints.landmarks.is_empty() && !prints.peaks.is_empty());
//! ```
#![deny(missing_docs)]

pub mod audio;
pub mod engine;
pub mod fingerprint;
pub mod ids;
pub mod index;
pub mod matching;
pub mod pack;

pub use engine::{Error, Found, Result, Scanner};
