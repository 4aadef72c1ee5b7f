//! Dev-only support for nasheed's tests, benchmarks and examples, kept out of the library's API:
//! [`eval`] scores a labelled corpus through the engine's scan pipeline (the one the CLI runs),
//! [`synth`] makes deterministic synthetic music.
#![deny(missing_docs)]

pub mod eval;
pub mod synth;
