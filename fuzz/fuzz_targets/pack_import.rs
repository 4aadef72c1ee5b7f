//! Pack import from arbitrary bytes. A valid envelope (magic, version, parameter id, checksum) is
//! wrapped around the input so the fuzzer explores the track records behind the checksum; inputs
//! starting with 0xFF are passed through raw to exercise the envelope checks themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasheed::fingerprint::FingerprintParams;
use nasheed::index::{put_varint, SqliteStore, Store};
use nasheed::pack;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let params_id = FingerprintParams::default().id();
    let bytes = match data.split_first() {
        Some((0xFF, raw)) => raw.to_vec(),
        _ => {
            let mut out = Vec::new();
            out.extend_from_slice(pack::MAGIC);
            out.extend_from_slice(&pack::VERSION.to_le_bytes());
            put_varint(&mut out, params_id.len() as u64);
            out.extend_from_slice(params_id.as_bytes());
            out.extend_from_slice(data);
            let sum = Sha256::digest(&out);
            out.extend_from_slice(&sum);
            out
        }
    };
    let Ok(mut store) = SqliteStore::in_memory(&params_id) else {
        return;
    };
    if pack::import(&mut store, &bytes).is_ok() {
        // Whatever was accepted must read back.
        let tracks = store.tracks().unwrap_or_default();
        let ids: Vec<_> = tracks.iter().map(|t| t.id).collect();
        assert!(store.landmarks(&ids).is_ok());
    }
});
