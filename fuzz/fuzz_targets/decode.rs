//! Arbitrary bytes → symphonia probe/decode → resample → fingerprint, under every container guess
//! the CLI can make from a file name. The first byte picks the extension hint.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use nasheed::audio::decode::SymphoniaSource;
use nasheed::engine::fingerprint_source;
use nasheed::fingerprint::{FingerprintParams, Side};

const HINTS: &[Option<&str>] = &[
    None,
    Some("mp3"),
    Some("mp4"),
    Some("m4a"),
    Some("mov"),
    Some("aac"),
    Some("ogg"),
    Some("opus"),
    Some("webm"),
    Some("mkv"),
    Some("flac"),
    Some("wav"),
    Some("aiff"),
    Some("caf"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = HINTS[pick as usize % HINTS.len()];
    let Ok(mut source) = SymphoniaSource::from_source(Box::new(Cursor::new(bytes.to_vec())), hint)
    else {
        return;
    };
    let params = FingerprintParams::default();
    for side in [Side::Query] {
        let _ = fingerprint_source(&mut source, &params, side);
    }
});
