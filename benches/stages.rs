//! Per-stage micro-benchmarks on fixed generated input (`cargo bench`).
//!
//! Throughput is reported in elements/s where one element is one millisecond of audio, so
//! "Kelem/s" reads directly as × real time for one core.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nasheed::audio::{self, AudioSource, Resampler, SymphoniaSource};
use nasheed::engine::{fingerprint_source, Scanner};
use nasheed::fingerprint::{self, hash, peaks, spectrogram, FingerprintParams, Side};
use nasheed::index::{NewTrack, SqliteStore, Store};
use nasheed::matching::MatchParams;
use nasheed_harness::synth;

fn ms(seconds: f64) -> Throughput {
    Throughput::Elements((seconds * 1000.0) as u64)
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "excerpt.mp3",
        "excerpt.m4a",
        "excerpt.ogg",
        "excerpt.opus",
        "excerpt.flac",
    ] {
        let bytes = std::fs::read(dir.join(name)).expect("fixture");
        g.throughput(ms(6.0));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| {
                let ext = name.rsplit('.').next();
                let mut src = SymphoniaSource::from_source(
                    Box::new(std::io::Cursor::new(bytes.clone())),
                    ext,
                )
                .expect("decodes");
                let mut n = 0;
                while let Some(block) = src.next_block().expect("block") {
                    n += block.len();
                }
                n
            })
        });
    }
    g.finish();
}

fn stages(c: &mut Criterion) {
    let p = FingerprintParams::default();
    let song44 = synth::song(7, 10.0, 44100);
    let song8 = synth::song(7, 10.0, 8000);
    let mut g = c.benchmark_group("stages");
    g.throughput(ms(10.0));
    g.bench_function("resample 44.1k→8k", |b| {
        b.iter(|| {
            let mut r = Resampler::new(44100, 8000).expect("rates");
            let mut out = Vec::new();
            r.process(&song44, &mut out).expect("resample");
            r.finish(&mut out).expect("flush");
            out.len()
        })
    });
    g.bench_function("spectrogram", |b| {
        b.iter(|| spectrogram::spectrogram(&song8, &p).len())
    });
    let frames = spectrogram::spectrogram(&song8, &p);
    g.bench_function("peak picking", |b| {
        b.iter(|| {
            let c = peaks::candidate_peaks(&frames, 0, &p);
            peaks::select_peaks(&c, p.rank_window, p.query.peaks_per_window).len()
        })
    });
    let cands = peaks::candidate_peaks(&frames, 0, &p);
    let kept = peaks::select_peaks(&cands, p.rank_window, p.query.peaks_per_window);
    g.bench_function("hashing (query density)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            hash::pair_peaks(
                &kept,
                0..u32::MAX,
                p.max_dt,
                p.max_df,
                p.query.fan_out,
                &mut out,
            );
            out.len()
        })
    });
    g.bench_function("whole fingerprint from 44.1 kHz", |b| {
        b.iter(|| {
            let mut src = audio::MemorySource::new(song44.clone(), 44100);
            fingerprint_source(&mut src, &p, Side::Reference)
                .expect("fingerprint")
                .prints
                .landmarks
                .len()
        })
    });
    g.finish();
}

fn index(c: &mut Criterion) {
    let p = FingerprintParams::default();
    let prints = fingerprint::fingerprint(&synth::song(3, 60.0, 8000), &p, Side::Reference);
    let track = |i: usize| NewTrack {
        path: format!("t{i}"),
        sha256: format!("{i:064}"),
        title: "t".into(),
        meta: Default::default(),
        duration_s: 60.0,
    };
    let mut g = c.benchmark_group("index");
    g.throughput(ms(60.0));
    g.bench_function("sqlite insert one 60 s track", |b| {
        b.iter_batched(
            || SqliteStore::in_memory(&p.id()).expect("db"),
            |mut store| store.add_track(&track(0), &prints).expect("insert"),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();

    // A 200-track index (≈ 1.7 h of generated music), then lookups and full matching of a 10 s clip.
    let dir = std::env::temp_dir().join(format!("nasheed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let db = dir.join("bench.db");
    let mut store = SqliteStore::open(&db, &p.id()).expect("db");
    for i in 0..200 {
        let pr = fingerprint::fingerprint(
            &synth::song(1000 + i as u64, 30.0, 8000),
            &p,
            Side::Reference,
        );
        store.add_track(&track(i), &pr).expect("insert");
    }
    let clip = synth::song(1050, 30.0, 8000)[8000 * 10..8000 * 20].to_vec();
    let mut src = audio::MemorySource::new(clip, 8000);
    let fp = fingerprint_source(&mut src, &p, Side::Query).expect("fingerprint");
    let mut hashes: Vec<u32> = fp.prints.landmarks.iter().map(|l| l.hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let mut g = c.benchmark_group("query");
    g.throughput(ms(10.0));
    g.bench_function(
        format!("batched lookup of {} hashes, 200 tracks", hashes.len()),
        |b| {
            b.iter(|| {
                let mut n = 0usize;
                store
                    .lookup(&hashes, usize::MAX, &mut |_, _, _| n += 1)
                    .expect("lookup");
                n
            })
        },
    );
    let scanner = Scanner::new(&store, &p, &MatchParams::default());
    g.bench_function("lookup + voting + verification of a 10 s clip", |b| {
        b.iter(|| scanner.scan(&fp).expect("scan").len())
    });
    g.finish();
    drop(scanner);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = decode, stages, index
}
criterion_main!(benches);
