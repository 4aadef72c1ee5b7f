//! Bad input: each bad file gets a one-line error naming it, the others are still processed, and
//! the exit code says what happened.

mod common;
use common::*;

fn bad_files(s: &Scratch) -> Vec<std::path::PathBuf> {
    let empty = s.path("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    let text = s.path("notes.ogg");
    std::fs::write(&text, "this is not audio\n".repeat(100)).unwrap();
    let mut files = vec![empty, text];
    // Random bytes under each container's name, so each probe path sees garbage.
    for (k, ext) in ["mp3", "mp4", "ogg"].into_iter().enumerate() {
        let random = s.path(&format!("random.{ext}"));
        let bytes: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(k as u32 * 7919) >> 13) as u8)
            .collect();
        std::fs::write(&random, bytes).unwrap();
        files.push(random);
    }
    // Images: a real picture, and one renamed as a video (as a thumbnail upload might be).
    let png = fixtures().join("image.png");
    let jpg_as_mp4 = s.path("thumbnail.mp4");
    std::fs::copy(fixtures().join("image.jpg"), &jpg_as_mp4).unwrap();
    files.extend([png, jpg_as_mp4, s.path("missing.wav")]);
    files
}

#[test]
fn bad_files_are_reported_by_name_and_the_scan_goes_on() {
    let s = Scratch::new("bad-scan");
    let song = s.path("song.wav");
    write_song(&song, 1, 20.0);
    index(&s.db(), &[&song]);
    let bad = bad_files(&s);
    let mut inputs: Vec<&std::path::Path> = bad.iter().map(|p| p.as_path()).collect();
    let good = fixtures().join("excerpt.mp3");
    inputs.insert(2, &good);

    let mut args = vec!["scan".to_string(), "--format".into(), "jsonl".into()];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let out = run(
        &s.db(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a match wins over unreadable inputs"
    );
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), inputs.len());
    for (p, r) in inputs.iter().zip(&recs) {
        if *p == good.as_path() {
            assert_eq!(r.matches.len(), 1, "{r:?}");
            continue;
        }
        let e = r
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("{} gave no error", p.display()));
        assert!(
            e.contains(&p.display().to_string()),
            "error does not name the file: {e}"
        );
        assert!(!e.contains('\n'));
        assert!(r.matches.is_empty());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        bad.len(),
        "{stderr}"
    );

    // Only bad inputs: exit 2.
    let (code, _) = scan(&s.db(), &[&bad[0], &bad[1], &bad[5]]);
    assert_eq!(code, 2);
}

#[test]
fn truncated_files_give_what_they_hold() {
    let s = Scratch::new("bad-truncated");
    let song = s.path("song.wav");
    write_song(&song, 1, 30.0);
    index(&s.db(), &[&song]);
    let mut inputs = Vec::new();
    for name in [
        "excerpt.mp3",
        "excerpt.flac",
        "excerpt.ogg",
        "excerpt_video.mp4",
        "excerpt_s16.wav",
    ] {
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        let cut = s.path(&format!("cut_{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        inputs.push(cut);
    }
    let refs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
    let (_, recs) = scan(&s.db(), &refs);
    assert_eq!(recs.len(), inputs.len());
    for r in &recs {
        // Either an error naming the file, or the audio that was there.
        match &r.error {
            Some(e) => assert!(e.contains(&r.path), "{e}"),
            None => assert!(r.duration_s > 1.0, "{r:?}"),
        }
    }
    // Truncated streams that decode keep their beginning, which still matches.
    let found = recs.iter().filter(|r| !r.matches.is_empty()).count();
    assert!(found >= 3, "{recs:?}");
}

#[test]
fn index_reports_failures_and_keeps_the_rest() {
    let s = Scratch::new("bad-index");
    let song = s.path("song.wav");
    write_song(&song, 2, 10.0);
    let bad = bad_files(&s);
    let mut args = vec!["index".to_string(), song.display().to_string()];
    args.extend(bad.iter().map(|p| p.display().to_string()));
    let out = run(
        &s.db(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("indexed 1, skipped 0"), "{err}");
    for b in &bad {
        assert!(
            err.contains(&b.display().to_string()),
            "{} not named in: {err}",
            b.display()
        );
    }
    let list = run(&s.db(), &["list"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1);
}

/// A float-32 WAV (format 3) written by hand, so that NaN and infinities can be stored.
fn write_f32_wav(path: &std::path::Path, samples: &[f32], rate: u32, channels: u16) {
    let mut b = Vec::new();
    let data = (samples.len() * 4) as u32;
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * channels as u32 * 4).to_le_bytes());
    b.extend_from_slice(&(channels * 4).to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn odd_but_valid_audio_is_handled() {
    let s = Scratch::new("bad-odd");
    let song = s.path("song.wav");
    write_song(&song, 3, 30.0);
    index(&s.db(), &[&song]);
    let excerpt = nasheed_harness::synth::song(3, 30.0, 44100)[44100 * 8..44100 * 16].to_vec();
    // 6 channels (5.1), the music on the front pair only.
    let six: Vec<f32> = excerpt
        .iter()
        .flat_map(|&x| [x, x, 0.0, 0.0, 0.0, 0.0])
        .collect();
    let six_path = s.path("six.wav");
    nasheed_harness::synth::write_wav(&six_path, &six, 44100, 6).unwrap();
    // 192 kHz and 8 kHz.
    let hi = s.path("hi.wav");
    nasheed_harness::synth::write_wav(&hi, &resample(&excerpt, 44100, 192000), 192000, 1).unwrap();
    let lo = s.path("lo.wav");
    nasheed_harness::synth::write_wav(&lo, &resample(&excerpt, 44100, 8000), 8000, 1).unwrap();
    // Float with NaN and infinities sprinkled in.
    let mut poisoned = excerpt.clone();
    for i in (0..poisoned.len()).step_by(4001) {
        poisoned[i] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3];
    }
    let nan = s.path("nan.wav");
    write_f32_wav(&nan, &poisoned, 44100, 1);
    let inputs = [&six_path, &hi, &lo, &nan];
    let (code, recs) = scan(
        &s.db(),
        &inputs.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    assert_eq!(code, 1);
    for r in &recs {
        assert!(r.error.is_none(), "{}: {:?}", r.path, r.error);
        assert_eq!(r.matches.len(), 1, "{}: {:?}", r.path, r.matches);
        assert!(
            (r.matches[0].offset() - 8.0).abs() <= 0.05,
            "{}: offset {}",
            r.path,
            r.matches[0].offset()
        );
    }

    // One sample, ten minutes of silence, and a float file of finite but absurd samples (its
    // FFT overflowed, and the resampler panicked): no match, no error.
    let one = s.path("one.wav");
    nasheed_harness::synth::write_wav(&one, &[0.5], 44100, 1).unwrap();
    let silence = s.path("silence.wav");
    nasheed_harness::synth::write_wav(&silence, &vec![0.0; 8000 * 600], 8000, 1).unwrap();
    let loud = s.path("loud.wav");
    let absurd: Vec<f32> = (0..44100).map(|i| [3e38, -3e38][i / 100 % 2]).collect();
    write_f32_wav(&loud, &absurd, 44100, 1);
    let (code, recs) = scan(&s.db(), &[&one, &silence, &loud]);
    assert!(code == 0 || code == 2, "{recs:?}");
    assert!(recs.iter().all(|r| r.matches.is_empty()));
    assert!(recs[2].error.is_none(), "{recs:?}");
    assert!(
        recs[0]
            .error
            .as_deref()
            .is_none_or(|e| e.contains("one.wav")),
        "{recs:?}"
    );
    assert!(
        recs[1].error.is_none() && (recs[1].duration_s - 600.0).abs() < 0.1,
        "{recs:?}"
    );
}

#[test]
fn absurd_headers_give_one_line_errors() {
    let s = Scratch::new("bad-headers");
    let song = s.path("song.wav");
    write_song(&song, 3, 10.0);
    index(&s.db(), &[&song]);
    let good = std::fs::read(&song).unwrap();
    let mut cases = Vec::new();
    for (name, offset, value) in [
        ("rate0.wav", 24usize, 0u32),
        ("rate4g.wav", 24, 4_000_000_000),
        ("channels.wav", 22, 0xFFFF_0001),
        ("datalen.wav", 40, u32::MAX),
    ] {
        let mut b = good.clone();
        if name == "channels.wav" {
            b[22..24].copy_from_slice(&(u16::MAX).to_le_bytes());
        } else {
            b[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        }
        let p = s.path(name);
        std::fs::write(&p, b).unwrap();
        cases.push(p);
    }
    let (_, recs) = scan(
        &s.db(),
        &cases.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    assert_eq!(recs.len(), cases.len());
    for r in &recs {
        // A header that lies about the data length may still decode what is there; the others must fail cleanly.
        match &r.error {
            Some(e) => assert!(e.contains(&r.path) && !e.contains('\n'), "{e}"),
            None => assert!(r.path.ends_with("datalen.wav"), "{r:?}"),
        }
    }
}
