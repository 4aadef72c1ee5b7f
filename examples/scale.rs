//! Scale test: fills an index with distractor references through the real insert path.
//!
//! ```text
//! cargo run --release --example scale -- DB [--tracks 10000] [--seconds 252]   (DB: a file or postgres://...)
//! cargo run --release --example scale -- DB --reversed MASTERS_DIR [--variants 11]
//! cargo run --release --example eval -- CORPUS --db DB      # then scan the corpus against it
//! ```
//! Generated distractors: each track is a different synthetic song (`nasheed_harness::synth::song`, one
//! seed per track). Real-derived distractors (`--reversed`): every WAV under MASTERS_DIR (the
//! corpus's decoded Debian masters) time-reversed, then resampled by `variants` factors from
//! −5 to +5 semitones (pitch and tempo together). Reversed audio can never truly match a forward
//! upload, so every match against one is false, yet it keeps real music's spectra and hash
//! statistics, which the generated songs do not (they share far more hashes).
//! Tracks are fingerprinted as references and added with `Store::add_tracks`, 64 per
//! transaction. Re-running resumes: tracks already in the index are skipped by content hash.
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use nasheed::audio::{stream_mono, AudioSource, MemorySource, SymphoniaSource};
use nasheed::fingerprint::{fingerprint, FingerprintParams, Side};
use nasheed::index::NewTrack;

/// One distractor to add: its identity and how to make its samples at the engine rate.
struct Item {
    sha: String,
    path: String,
    title: String,
    source: &'static str,
    make: Box<dyn Fn(u32) -> anyhow::Result<Vec<f32>> + Send + Sync>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn generated(tracks: u64, seconds: f32) -> Vec<Item> {
    (0..tracks)
        .map(|seed| Item {
            sha: hex(&Sha256::digest(
                format!("nasheed synthetic song {seed} {seconds}").as_bytes(),
            )),
            path: format!("synthetic/song-{seed:05}.wav"),
            title: format!("synthetic song {seed}"),
            source: "nasheed synth (scale test)",
            make: Box::new(move |rate| Ok(nasheed_harness::synth::song(seed, seconds, rate))),
        })
        .collect()
}

/// Decodes a file to mono samples at `rate`.
fn decode(path: &Path, rate: u32) -> anyhow::Result<Vec<f32>> {
    let mut src = SymphoniaSource::open(path)?;
    let mut out = Vec::new();
    stream_mono(&mut src, rate, |b| out.extend_from_slice(b))?;
    Ok(out)
}

fn reversed(dir: &Path, variants: u32) -> anyhow::Result<Vec<Item>> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    let mut items = Vec::new();
    for v in 0..variants {
        // Semitones from −5 to +5, spread evenly over the variants.
        let semis = match variants {
            1 => 0.0,
            n => -5.0 + 10.0 * v as f64 / (n - 1) as f64,
        };
        let factor = 2f64.powf(semis / 12.0);
        for f in &files {
            let name = f.strip_prefix(dir).unwrap_or(f).display().to_string();
            let file = f.clone();
            items.push(Item {
                sha: hex(&Sha256::digest(
                    format!("nasheed reversed {name} {semis:.3}").as_bytes(),
                )),
                path: format!("reversed/{name}@{semis:+.2}st"),
                title: format!("{name} reversed {semis:+.2} semitones"),
                source: "time-reversed Debian music master (scale test)",
                make: Box::new(move |rate| {
                    let mut x = decode(&file, rate)?;
                    x.reverse();
                    // Read at a rate `factor` times the engine's: pitch and tempo both × factor.
                    let mut src = MemorySource::new(x, (rate as f64 * factor).round() as u32);
                    let mut out = Vec::new();
                    stream_mono(&mut src as &mut dyn AudioSource, rate, |b| {
                        out.extend_from_slice(b)
                    })?;
                    Ok(out)
                }),
            });
        }
    }
    Ok(items)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut db, mut tracks, mut seconds) = (None, 10_000u64, 252.0f32);
    let (mut masters, mut variants) = (None, 11u32);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| anyhow::anyhow!("{name} needs a number"))
        };
        match a.as_str() {
            "--tracks" => tracks = value("--tracks")? as u64,
            "--seconds" => seconds = value("--seconds")? as f32,
            "--variants" => variants = value("--variants")? as u32,
            "--reversed" => {
                masters =
                    Some(PathBuf::from(args.next().ok_or_else(|| {
                        anyhow::anyhow!("--reversed needs a folder")
                    })?))
            }
            _ => db = Some(PathBuf::from(a)),
        }
    }
    let db = db.ok_or_else(|| {
        anyhow::anyhow!(
            "usage: scale DB [--tracks N] [--seconds S] | [--reversed DIR --variants N]"
        )
    })?;
    let items = match &masters {
        Some(dir) => reversed(dir, variants)?,
        None => generated(tracks, seconds),
    };
    let params = FingerprintParams::default();
    // Any backend `--db` names (an SQLite file or a postgres:// URL), through its real insert path.
    let mut store = nasheed::index::open(&db, &params.id(), nasheed::index::Access::Create)?;
    let rate = params.sample_rate;
    let (t0, c0) = (Instant::now(), nasheed_harness::eval::cpu_seconds());
    let (mut added, mut audio_s, mut done) = (0u64, 0.0f64, 0usize);
    for batch in items.chunks(64) {
        let todo: Vec<&Item> = batch
            .iter()
            .filter(|it| matches!(store.find_sha(&it.sha), Ok(None)))
            .collect();
        done += batch.len();
        if todo.is_empty() {
            continue;
        }
        let rows: Vec<(NewTrack, _)> = todo
            .par_iter()
            .filter_map(|it| {
                let samples = match (it.make)(rate) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{}: {e}", it.path);
                        return None;
                    }
                };
                let duration_s = samples.len() as f64 / rate as f64;
                let prints = fingerprint(&samples, &params, Side::Reference);
                let track = NewTrack {
                    path: it.path.clone(),
                    sha256: it.sha.clone(),
                    title: it.title.clone(),
                    meta: [("source".to_string(), it.source.to_string())]
                        .into_iter()
                        .collect(),
                    duration_s,
                };
                Some((track, prints))
            })
            .collect();
        audio_s += rows.iter().map(|(t, _)| t.duration_s).sum::<f64>();
        added += store.add_tracks(&rows)?.0 as u64;
        if done % 1024 == 0 || done == items.len() {
            let s = store.stats()?;
            eprintln!(
                "{done}/{} tracks, {:.0} h, {} hashes, {:.0} MB, {:.0} s",
                items.len(),
                s.audio_hours,
                s.hashes,
                s.bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let (wall, cpu) = (
        t0.elapsed().as_secs_f64(),
        nasheed_harness::eval::cpu_seconds() - c0,
    );
    let s = store.stats()?;
    println!(
        "index {}: {} tracks, {:.1} h of audio, {} hashes, {:.1} MB ({:.2} MB per audio hour); \
         added {added} ({:.1} h) in {wall:.0} s wall / {cpu:.0} s CPU",
        db.display(),
        s.tracks,
        s.audio_hours,
        s.hashes,
        s.bytes as f64 / 1e6,
        s.bytes as f64 / 1e6 / s.audio_hours.max(1e-9),
        audio_s / 3600.0,
    );
    Ok(())
}
