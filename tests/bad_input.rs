//! Bad input: each bad file gets a one-line error naming it, the others are still processed, and
//! the exit code says what happened.

mod common;
use common::*;

fn bad_files(s: &Scratch) -> Vec<std::path::PathBuf> {
    let empty = s.path("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    let random = s.path("random.mp4");
    let bytes: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let text = s.path("notes.ogg");
    std::fs::write(&text, "this is not audio\n".repeat(100)).unwrap();
    let missing = s.path("missing.wav");
    vec![empty, random, text, missing]
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
    let (code, _) = scan(&s.db(), &[&bad[0], &bad[2]]);
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
