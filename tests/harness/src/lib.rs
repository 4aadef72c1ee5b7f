//! Dev-only support for nasheed's tests, benchmarks and examples, kept out of the library's API:
//! [`eval`] scores a labelled corpus through the engine's scan pipeline (the one the CLI runs),
//! [`synth`] makes deterministic synthetic music.
#![deny(missing_docs)]

pub mod eval;
pub mod synth;

/// Percent-encodes a URL query value (RFC 3986 unreserved characters pass as they are).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
