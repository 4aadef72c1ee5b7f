//! Scale test: fills an index with generated references through the real insert path.
//!
//! ```text
//! cargo run --release --example scale -- DB [--tracks 10000] [--seconds 252]
//! cargo run --release --example eval -- CORPUS --db DB      # then scan the corpus against it
//! ```
//! Each track is a different synthetic song (`nasheed::synth::song`, one seed per track),
//! fingerprinted as a reference and added with `Store::add_tracks`, 64 tracks per transaction.
//! Re-running resumes: seeds already in the index are skipped by their content hash.
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use nasheed::fingerprint::{fingerprint, FingerprintParams, Side};
use nasheed::index::{NewTrack, SqliteStore, Store};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut tracks, mut seconds) = (None, 10_000u64, 252.0f32);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("{name} needs a number"))
        };
        match a.as_str() {
            "--tracks" => tracks = value("--tracks")?,
            "--seconds" => seconds = value("--seconds")? as f32,
            _ => db = Some(PathBuf::from(a)),
        }
    }
    let db = db.ok_or_else(|| anyhow::anyhow!("usage: scale DB [--tracks N] [--seconds S]"))?;
    let params = FingerprintParams::default();
    let mut store = SqliteStore::open(&db, &params.id())?;
    let rate = params.sample_rate;
    let sha = |seed: u64| -> String {
        Sha256::digest(format!("nasheed synthetic song {seed} {seconds}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let (t0, c0) = (Instant::now(), nasheed::eval::cpu_seconds());
    let mut added = 0u64;
    for batch in (0..tracks).collect::<Vec<_>>().chunks(64) {
        let todo: Vec<u64> = batch
            .iter()
            .copied()
            .filter(|&s| matches!(store.find_sha(&sha(s)), Ok(None)))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let rows: Vec<(NewTrack, _)> = todo
            .par_iter()
            .map(|&seed| {
                let samples = nasheed::synth::song(seed, seconds, rate);
                let prints = fingerprint(&samples, &params, Side::Reference);
                let track = NewTrack {
                    path: format!("synthetic/song-{seed:05}.wav"),
                    sha256: sha(seed),
                    title: format!("synthetic song {seed}"),
                    meta: [(
                        "source".to_string(),
                        "nasheed synth (scale test)".to_string(),
                    )]
                    .into_iter()
                    .collect(),
                    duration_s: seconds as f64,
                };
                (track, prints)
            })
            .collect();
        added += store.add_tracks(&rows)?.0 as u64;
        let done = batch[batch.len() - 1] + 1;
        if done % 1024 == 0 || done == tracks {
            let s = store.stats()?;
            eprintln!(
                "{done}/{tracks} tracks, {:.0} h, {} hashes, {:.0} MB, {:.0} s",
                s.audio_hours,
                s.hashes,
                s.bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let (wall, cpu) = (
        t0.elapsed().as_secs_f64(),
        nasheed::eval::cpu_seconds() - c0,
    );
    let s = store.stats()?;
    println!(
        "index {}: {} tracks, {:.1} h of audio, {} hashes, {:.1} MB ({:.2} MB per audio hour); \
         added {added} in {wall:.0} s wall / {cpu:.0} s CPU",
        db.display(),
        s.tracks,
        s.audio_hours,
        s.hashes,
        s.bytes as f64 / 1e6,
        s.bytes as f64 / 1e6 / s.audio_hours.max(1e-9),
    );
    Ok(())
}
