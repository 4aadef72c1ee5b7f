//! Index generated references, scan generated uploads: right reference, right offset, nothing
//! found where nothing is indexed, several matches in one upload, every output format.

mod common;
use common::*;
use nasheed_harness::synth;
use std::path::PathBuf;

const RATE: usize = 44100;

/// Three 30-second references, indexed once per test.
fn setup(name: &str) -> Scratch {
    indexed_songs(name, 1..=3, 30.0)
}

fn excerpt(seed: u64, from: f32, to: f32) -> Vec<f32> {
    synth::song(seed, 30.0, RATE as u32)[(from * RATE as f32) as usize..(to * RATE as f32) as usize]
        .to_vec()
}

fn only_match(r: &Record) -> &MatchOut {
    assert!(r.error.is_none(), "{}: {:?}", r.path, r.error);
    assert_eq!(r.matches.len(), 1, "{}: {:?}", r.path, r.matches);
    &r.matches[0]
}

#[test]
fn finds_noisy_and_resampled_excerpts_at_their_offsets() {
    let s = setup("e2e-find");
    // Song 2 from 10 s, with white noise 10 dB below the music, as stereo.
    let clip = excerpt(2, 10.0, 18.0);
    let rms = (clip.iter().map(|x| x * x).sum::<f32>() / clip.len() as f32).sqrt();
    let noise = synth::noise(7, clip.len(), rms / 10f32.powf(0.5));
    let stereo: Vec<f32> = clip
        .iter()
        .zip(&noise)
        .flat_map(|(c, n)| [c + n, c - n])
        .collect();
    let noisy = s.path("noisy.wav");
    synth::write_wav(&noisy, &stereo, RATE as u32, 2).unwrap();
    // Song 3 from 3.5 s, resampled to 48 kHz.
    let mut r = nasheed::audio::Resampler::new(44100, 48000).unwrap();
    let mut up = Vec::new();
    r.process(&excerpt(3, 3.5, 9.5), &mut up).unwrap();
    r.finish(&mut up).unwrap();
    let resampled = s.path("resampled.wav");
    synth::write_wav(&resampled, &up, 48000, 1).unwrap();

    let (code, recs) = scan(&s.db(), &[&noisy, &resampled]);
    assert_eq!(code, 1);
    let (a, b) = (only_match(&recs[0]), only_match(&recs[1]));
    assert_eq!(a.title, "ref2");
    assert!((a.offset() - 10.0).abs() <= 0.05, "offset {}", a.offset());
    assert_eq!(b.title, "ref3");
    assert!((b.offset() - 3.5).abs() <= 0.05, "offset {}", b.offset());
    assert!((a.speed - 1.0).abs() < 1e-9 && a.query_end_s > a.query_start_s + 4.0);
    assert!(a.ref_end_s > a.ref_start_s);
}

#[test]
fn unrelated_audio_gives_no_match() {
    let s = setup("e2e-negative");
    let other = s.path("other.wav");
    write_song(&other, 9, 20.0);
    let noise = s.path("noise.wav");
    synth::write_wav(&noise, &synth::noise(3, RATE * 10, 0.2), RATE as u32, 1).unwrap();
    let (code, recs) = scan(&s.db(), &[&other, &noise]);
    assert_eq!(code, 0, "{recs:?}");
    assert!(
        recs.iter()
            .all(|r| r.matches.is_empty() && r.error.is_none()),
        "{recs:?}"
    );
}

/// Songs of one style (the same synthesiser: harmonic notes on one scale, shared tempi and keys)
/// often share a phrase, transposed or not, for a second or two. That is a similar style, not
/// the recording: 300 clips of 6 s from 100 other songs against 10 references match nothing.
/// (Before the confidence counted a frame's peaks as one observation, 15 of them matched, some
/// at confidence 0.9999: an onset's harmonics align or miss together.)
#[test]
fn songs_of_the_same_style_never_match_each_other() {
    let s = Scratch::new("e2e-same-style");
    let refs: Vec<PathBuf> = (600..610u64)
        .map(|seed| {
            let p = s.path(&format!("ref{seed}.wav"));
            write_song(&p, seed, 24.0);
            p
        })
        .collect();
    index(
        &s.db(),
        &refs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
    let ups = s.path("uploads");
    std::fs::create_dir(&ups).unwrap();
    for seed in 700..800u64 {
        let song = synth::song(seed, 30.0, RATE as u32);
        for k in 0..3 {
            let from = (k * 8 + seed as usize % 5) * RATE;
            let clip = &song[from..from + 6 * RATE];
            synth::write_wav(&ups.join(format!("c{seed}_{k}.wav")), clip, RATE as u32, 1).unwrap();
        }
    }
    let (code, recs) = scan(&s.db(), &[&ups]);
    assert_eq!(recs.len(), 300);
    let matched: Vec<_> = recs.iter().filter(|r| !r.matches.is_empty()).collect();
    assert!(
        matched.is_empty(),
        "{} false matches: {matched:?}",
        matched.len()
    );
    assert_eq!(code, 0);
}

#[test]
fn a_refrain_the_reference_repeats_note_for_note_is_found() {
    // A chant whose refrain is pasted in twice: the upload fits both places equally well, which
    // must not read as the ambiguity of a loop shared with another recording.
    let s = setup("e2e-refrain");
    let mut chant = synth::song(5, 12.0, RATE as u32);
    chant.extend(synth::song(6, 10.0, RATE as u32));
    chant.extend(synth::song(5, 12.0, RATE as u32));
    let reference = s.path("chant.wav");
    synth::write_wav(&reference, &chant, RATE as u32, 1).unwrap();
    index(&s.db(), &[&reference]);
    let clip = synth::song(5, 12.0, RATE as u32)[3 * RATE..11 * RATE].to_vec();
    let rms = (clip.iter().map(|x| x * x).sum::<f32>() / clip.len() as f32).sqrt();
    let noise = synth::noise(3, clip.len(), rms / 10f32.powf(0.5));
    let noisy: Vec<f32> = clip.iter().zip(&noise).map(|(c, n)| c + n).collect();
    let upload = s.path("refrain.wav");
    synth::write_wav(&upload, &noisy, RATE as u32, 1).unwrap();
    let (code, recs) = scan(&s.db(), &[&upload]);
    assert_eq!(code, 1);
    let m = only_match(&recs[0]);
    assert_eq!(m.title, "chant");
    let offset = m.offset();
    assert!(
        (offset - 3.0).abs() <= 0.05 || (offset - 25.0).abs() <= 0.05,
        "offset {offset}"
    );
}

#[test]
fn a_compilation_gives_one_match_per_part_in_order() {
    let s = setup("e2e-compilation");
    let mut comp = excerpt(1, 5.0, 13.0);
    comp.extend(excerpt(3, 12.0, 20.0));
    let path = s.path("compilation.wav");
    synth::write_wav(&path, &comp, RATE as u32, 1).unwrap();
    let (code, recs) = scan(&s.db(), &[&path]);
    assert_eq!(code, 1);
    let m = &recs[0].matches;
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!((m[0].title.as_str(), m[1].title.as_str()), ("ref1", "ref3"));
    assert!(
        m[0].query_start_s < 1.0 && m[0].query_end_s <= 8.3,
        "{:?}",
        m[0]
    );
    assert!(
        m[1].query_start_s >= 7.9 && m[1].query_start_s < 9.0,
        "{:?}",
        m[1]
    );
    assert!((m[0].offset() - 5.0).abs() <= 0.05);
    // The second part starts 8 s into the upload and 12 s into its reference.
    assert!(
        (m[1].ref_start_s - m[1].query_start_s - 4.0).abs() <= 0.05,
        "{:?}",
        m[1]
    );
}

#[test]
fn stdin_and_every_output_format() {
    let s = setup("e2e-formats");
    let clip = s.path("clip.wav");
    synth::write_wav(&clip, &excerpt(1, 2.0, 9.0), RATE as u32, 1).unwrap();
    let bytes = std::fs::read(&clip).unwrap();

    let out = run_stdin(&s.db(), &["scan", "--format", "jsonl", "-"], &bytes);
    assert_eq!(out.status.code(), Some(1));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs[0].path, "-");
    assert_eq!(only_match(&recs[0]).title, "ref1");

    let clip_s = clip.display().to_string();
    let out = run(&s.db(), &["scan", "--format", "json", &clip_s, &clip_s]);
    let arr: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["matches"][0]["title"], "ref1");

    let out = run(&s.db(), &["scan", "--format", "csv", &clip_s]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("path,ref_id,title,"), "{text}");
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].contains(",ref1,"), "{text}");

    let out = run(&s.db(), &["scan", &clip_s]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ref1") && text.contains("0:02."), "{text}");

    // Confidences lie in [0, 1]: a threshold above 1 would hide every match, so it is refused
    // (tests/never_silent.rs has the rest of the range checks).
    let out = run(&s.db(), &["scan", "--min-confidence", "1.01", &clip_s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_batch_is_printed_in_input_order_and_stdin_leaves_no_spool() {
    let s = setup("e2e-order");
    // Inputs matched by parallel matchers, of different lengths so they finish out of order.
    let mut inputs = Vec::new();
    for (i, (seed, from, to)) in [
        (2, 1.0, 29.0),
        (3, 4.0, 9.0),
        (1, 0.5, 20.0),
        (3, 12.0, 16.0),
    ]
    .into_iter()
    .enumerate()
    {
        let p = s.path(&format!("clip{i}.wav"));
        synth::write_wav(&p, &excerpt(seed, from, to), RATE as u32, 1).unwrap();
        inputs.push((p, format!("ref{seed}")));
    }
    let mut args = vec!["scan".to_string(), "--format".into(), "jsonl".into()];
    args.extend(inputs.iter().map(|(p, _)| p.display().to_string()));
    args.insert(4, "-".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_stdin(&s.db(), &args, &std::fs::read(&inputs[2].0).unwrap());
    assert_eq!(out.status.code(), Some(1));
    let recs = parse_jsonl(&out.stdout);
    let mut expected: Vec<(String, String)> = inputs
        .iter()
        .map(|(p, t)| (p.display().to_string(), t.clone()))
        .collect();
    expected.insert(1, ("-".into(), "ref1".into()));
    let got: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r.path.clone(), only_match(r).title.clone()))
        .collect();
    assert_eq!(got, expected);

    // A reader that goes away before the first record: the scan ends on the broken pipe, and the
    // spooled copy of stdin is removed all the same.
    use std::io::Write;
    use std::process::{Command, Stdio};
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .env("TMPDIR", &tmp)
        .arg("--db")
        .arg(s.db())
        .args(["scan", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(&inputs[0].0).unwrap())
        .unwrap();
    drop(stdin);
    // It matched (exit 1) though the match could not be printed.
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn reindexing_skips_known_files_and_metadata_is_kept() {
    let s = Scratch::new("e2e-meta");
    let a = s.path("a.wav");
    let b = s.path("b.wav");
    write_song(&a, 4, 12.0);
    write_song(&b, 5, 12.0);
    let csv = s.path("meta.csv");
    std::fs::write(
        &csv,
        format!(
            "path,title,group,language\n{},\"Chant, one\",g1,ar\n",
            a.display()
        ),
    )
    .unwrap();
    let db = s.db();
    let (a_s, b_s, csv_s) = (
        a.display().to_string(),
        b.display().to_string(),
        csv.display().to_string(),
    );
    let out = run(
        &db,
        &["index", "--meta", "source=test", "--meta-csv", &csv_s, &a_s],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&db, &["index", &a_s, &b_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("indexed 1, skipped 1"), "{err}");

    let out = run(&db, &["list", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["title"], "Chant, one");
    assert_eq!(list[0]["meta"]["group"], "g1");
    assert_eq!(list[0]["meta"]["source"], "test");
    assert_eq!(list[1]["title"], "b");

    let out = run(&db, &["stats", "--format", "json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["tracks"], 2);

    let id = list[0]["id"].to_string();
    assert_eq!(run(&db, &["remove", &id]).status.code(), Some(0));
    assert_eq!(run(&db, &["remove", &id]).status.code(), Some(2));
    let (code, recs) = scan(&db, &[&a]);
    assert_eq!(
        (code, recs[0].matches.len()),
        (0, 0),
        "removed track still matches"
    );
}

#[test]
fn a_long_upload_is_matched_across_windows_as_one_match() {
    let s = Scratch::new("e2e-long");
    let reference = s.path("long.wav");
    write_song(&reference, 8, 100.0);
    index(&s.db(), &[&reference]);
    // The whole reference from 5 s on (95 s: longer than one matching window), with a little noise.
    let song = synth::song(8, 100.0, RATE as u32);
    let clip: Vec<f32> = song[5 * RATE..]
        .iter()
        .zip(synth::noise(2, song.len(), 0.01))
        .map(|(a, b)| a + b)
        .collect();
    let upload = s.path("upload.wav");
    synth::write_wav(&upload, &clip, RATE as u32, 1).unwrap();
    let (code, recs) = scan(&s.db(), &[&upload]);
    assert_eq!(code, 1);
    let m = only_match(&recs[0]);
    assert!(m.query_start_s < 2.0 && m.query_end_s > 90.0, "{m:?}");
    assert!((m.offset() - 5.0).abs() <= 0.05, "offset {}", m.offset());
}
