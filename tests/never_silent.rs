//! Never silent, never stuck, never clobbering (issue 14): a scan that cannot do its job says so
//! and exits non-zero; hostile inputs (FIFOs, endless streams, link loops, long uploads) cost
//! one bounded error each; files that are not a nasheed index are never modified.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A hang guard, not a timing assertion: every command here takes seconds when it works.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Runs the binary with `--db db` and `args`; fails the test (killing the process) if it has not
/// ended within [`HANG_GUARD`].
fn run_bounded(db: &Path, args: &[&str]) -> Output {
    wait_bounded(spawn(db, args), args)
}

fn wait_bounded(mut child: std::process::Child, what: &[&str]) -> Output {
    let start = Instant::now();
    // Pipes are drained on their own threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`nasheed {}` hung (killed after {HANG_GUARD:?})",
                what.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_t.join().unwrap().unwrap(),
        stderr: err_t.join().unwrap().unwrap(),
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ps(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The scan summary as `--summary-json` writes it, read with the test's own struct.
#[derive(Debug, serde::Deserialize, PartialEq)]
struct Summary {
    inputs: usize,
    matched: usize,
    clean: usize,
    unreadable: usize,
    skipped: usize,
    audio_s: f64,
    wall_s: f64,
    x_real_time: f64,
}

fn read_summary(path: &Path) -> Summary {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad summary {text:?}: {e}"))
}

/// A cut of synthetic song `seed`, `from`..`to` seconds, as a 44.1 kHz WAV at `path`.
fn write_cut(path: &Path, seed: u64, from: f32, to: f32) {
    let song = nasheed_harness::synth::song(seed, to, 44100);
    let cut = &song[(from * 44100.0) as usize..];
    nasheed_harness::synth::write_wav(path, cut, 44100, 1).unwrap();
}

#[test]
fn scan_refuses_an_index_without_references() {
    let s = Scratch::new("silent-empty-index");
    let upload = s.path("upload.wav");
    write_song(&upload, 7, 8.0);
    let empty_dir = s.path("emptydir");
    std::fs::create_dir(&empty_dir).unwrap();
    // A media folder taken for a folder of packs.
    let media_dir = s.path("uploads");
    std::fs::create_dir(&media_dir).unwrap();
    std::fs::copy(&upload, media_dir.join("clip.wav")).unwrap();
    // A database with no tracks: `index` made it, but its only file failed.
    let zero_tracks = s.path("zero.db");
    let not_audio = s.path("notes.txt");
    std::fs::write(&not_audio, "not audio\n").unwrap();
    assert_eq!(code(&run(&zero_tracks, &["index", &ps(&not_audio)])), 2);
    assert!(zero_tracks.is_file());

    for db in [&empty_dir, &media_dir, &zero_tracks] {
        let out = run_bounded(db, &["scan", "--format", "jsonl", &ps(&upload)]);
        assert_eq!(code(&out), 2, "{}: {}", db.display(), stderr(&out));
        assert!(out.stdout.is_empty(), "a refused scan printed records");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&ps(db)) && err.contains("clean"), "{err}");
        // A pipeline that really wants it can have it.
        let out = run_bounded(db, &["scan", "--allow-empty", &ps(&upload)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("no match"));
    }
}

#[test]
fn min_confidence_outside_zero_to_one_is_refused_at_parse_time() {
    let s = indexed_songs("silent-min-conf", 1..=1, 12.0);
    let upload = s.path("ref1.wav");
    for bad in ["95", "1.5", "NaN", "-0.1", "inf"] {
        let flag = format!("--min-confidence={bad}");
        let out = run_bounded(&s.db(), &["scan", &flag, &ps(&upload)]);
        assert_eq!(code(&out), 2, "--min-confidence {bad} was accepted");
        assert!(out.stdout.is_empty());
        assert!(stderr(&out).contains("from 0 to 1"), "{}", stderr(&out));
    }
    let out = run_bounded(&s.db(), &["scan", "--min-confidence", "0.5", &ps(&upload)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

/// The acceptance folder in small: matching, clean, extensionless, corrupt, a FIFO, link loops
/// and a link to a file of the folder. Every regular file is reported exactly once, in bounded
/// time, and the summary's counts equal the test's own.
#[cfg(unix)]
#[test]
fn folder_walk_reports_every_regular_file_once_and_skips_fifos_and_loops() {
    let s = indexed_songs("silent-walk", 21..=22, 20.0);
    let up = s.path("uploads");
    let sub = up.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    write_cut(&up.join("match.wav"), 21, 5.0, 15.0);
    // Upload stores name files by hash or leave partial names: content decides, not the name.
    write_cut(&up.join("3f8a9c0d1e2b_blob"), 22, 2.0, 12.0);
    write_cut(&sub.join("clip.m4v.part"), 21, 8.0, 16.0);
    write_song(&up.join("clean.wav"), 99, 8.0);
    std::fs::write(up.join("corrupt.mp3"), vec![0x55u8; 20_000]).unwrap();
    mkfifo(&up.join("pipe"));
    // Two loops back up the tree, and a second name for a file already in the folder.
    std::os::unix::fs::symlink("..", sub.join("up")).unwrap();
    std::os::unix::fs::symlink(".", sub.join("self")).unwrap();
    std::os::unix::fs::symlink("../match.wav", sub.join("again.wav")).unwrap();
    let regular = 5;

    let out = run_bounded(&s.db(), &["scan", "--format", "jsonl", &ps(&up)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), regular, "{recs:?}");
    // Each regular file once, whatever name it was reached by.
    let mut inodes: Vec<u64> = recs
        .iter()
        .map(|r| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&r.path).unwrap()))
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    assert_eq!(inodes.len(), regular, "{recs:?}");
    let by_name = |name: &str| {
        recs.iter()
            .find(|r| r.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {recs:?}"))
    };
    assert_eq!(by_name("3f8a9c0d1e2b_blob").matches.len(), 1);
    assert_eq!(by_name("clip.m4v.part").matches.len(), 1);
    assert!(by_name("clean.wav").matches.is_empty());
    assert!(by_name("corrupt.mp3").error.is_some());

    let err = stderr(&out);
    for name in ["pipe", "sub/up", "sub/self", "sub/again.wav"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("skipped:") && l.contains(name)),
            "{name} skipped without a word: {err}"
        );
    }

    let summary = s.path("summary.json");
    let sj = ps(&summary);
    let again = run_bounded(&s.db(), &["scan", "--summary-json", &sj, &ps(&up)]);
    assert_eq!(code(&again), 1, "{}", stderr(&again));
    let counted = Summary {
        inputs: recs.len(),
        matched: recs.iter().filter(|r| !r.matches.is_empty()).count(),
        clean: recs
            .iter()
            .filter(|r| r.error.is_none() && r.matches.is_empty())
            .count(),
        unreadable: recs.iter().filter(|r| r.error.is_some()).count(),
        // The FIFO, two loops, the second name of match.wav.
        skipped: 4,
        ..read_summary(&summary)
    };
    assert_eq!(read_summary(&summary), counted);
    assert_eq!((counted.matched, counted.unreadable), (3, 1));
}

/// The acceptance folder: 200 entries as an upload store holds them (matches and clean
/// uploads, with and without extensions, corrupt and non-audio files, FIFOs, link loops, second
/// names and two decompression bombs). Each regular file is reported exactly once, in bounded
/// time, with the right verdict, and the summary's counts equal the test's own.
#[cfg(unix)]
#[test]
fn a_folder_of_200_hostile_uploads_is_scanned_in_bounded_time_each_file_once() {
    let s = indexed_songs("silent-200", 600..=609, 24.0);
    let up = s.path("uploads");
    let subs: Vec<PathBuf> = (0..5).map(|i| up.join(format!("d{i}"))).collect();
    for d in &subs {
        std::fs::create_dir_all(d).unwrap();
    }
    let dir = |i: usize| &subs[i % subs.len()];
    let rate = 44100;
    let refs: Vec<Vec<f32>> = (600..=609)
        .map(|seed| nasheed_harness::synth::song(seed, 24.0, rate))
        .collect();
    let others: Vec<Vec<f32>> = (700..705)
        .map(|seed| nasheed_harness::synth::song(seed, 30.0, rate))
        .collect();
    let cut = |x: &[f32], from: usize, secs: usize| {
        x[from * rate as usize..(from + secs) * rate as usize].to_vec()
    };
    let mut matching = Vec::new();
    let mut clean = Vec::new();
    let mut unreadable = Vec::new();
    for i in 0..80 {
        // 50 named as clips, 30 by content hash with no extension.
        let name = if i < 50 {
            format!("match{i:03}.wav")
        } else {
            format!("{:012x}_blob", 0xabc000 + i)
        };
        let p = dir(i).join(name);
        let song = &refs[i % refs.len()];
        nasheed_harness::synth::write_wav(&p, &cut(song, 1 + i % 12, 5 + i % 7), rate, 1).unwrap();
        matching.push(p);
    }
    for i in 0..50 {
        let name = if i % 2 == 0 {
            format!("clean{i:03}.wav")
        } else {
            format!("clean{i:03}.m4v.part")
        };
        let p = dir(i).join(name);
        nasheed_harness::synth::write_wav(&p, &cut(&others[i % others.len()], i % 20, 6), rate, 1)
            .unwrap();
        clean.push(p);
    }
    for (i, source) in matching.iter().enumerate().take(25) {
        // Garbage with an audio name, and audio headers cut off before any sample.
        let p = dir(i).join(format!("corrupt{i:03}.mp3"));
        if i % 2 == 0 {
            let junk: Vec<u8> = (0..4000 + i * 37)
                .map(|k| ((k * 2654435761usize) >> 13) as u8)
                .collect();
            std::fs::write(&p, junk).unwrap();
        } else {
            let whole = std::fs::read(source).unwrap();
            std::fs::write(&p, &whole[..40]).unwrap();
        }
        unreadable.push(p);
    }
    for i in 0..20 {
        let p = dir(i).join(format!("note{i:03}.txt"));
        std::fs::write(&p, format!("not audio, file {i}\n").repeat(40)).unwrap();
        unreadable.push(p);
    }
    for (i, value) in [0i16, 900].into_iter().enumerate() {
        let p = dir(i).join(format!("bomb{i}.flac"));
        write_flac_bomb(&p, 29.0, value);
        unreadable.push(p);
    }
    let mut skipped = 0;
    for i in 0..10 {
        mkfifo(&dir(i).join(format!("pipe{i}")));
        skipped += 1;
    }
    for (i, d) in subs.iter().enumerate() {
        std::os::unix::fs::symlink(if i % 2 == 0 { "." } else { ".." }, d.join("loop")).unwrap();
        skipped += 1;
    }
    for (i, target) in matching.iter().take(8).enumerate() {
        std::os::unix::fs::symlink(target, dir(i + 1).join(format!("again{i}.wav"))).unwrap();
        skipped += 1;
    }
    let regular = matching.len() + clean.len() + unreadable.len();
    assert_eq!(regular + skipped, 200);

    let summary = s.path("summary.json");
    let sj = ps(&summary);
    let out = run_bounded(
        &s.db(),
        &["scan", "--format", "jsonl", "--summary-json", &sj, &ps(&up)],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), regular);
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let mut seen: Vec<u64> = recs.iter().map(|r| inode(Path::new(&r.path))).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), regular, "a file reported twice");
    let verdict = |p: &Path| {
        let r = recs
            .iter()
            .find(|r| inode(Path::new(&r.path)) == inode(p))
            .unwrap_or_else(|| panic!("{} not reported", p.display()));
        (r.error.is_some(), r.matches.len())
    };
    for p in &matching {
        assert_eq!(verdict(p), (false, 1), "{}", p.display());
    }
    for p in &clean {
        assert_eq!(verdict(p), (false, 0), "{}", p.display());
    }
    for p in &unreadable {
        assert!(verdict(p).0, "{} has no error", p.display());
    }
    let got = read_summary(&summary);
    assert_eq!(
        (
            got.inputs,
            got.matched,
            got.clean,
            got.unreadable,
            got.skipped
        ),
        (
            regular,
            matching.len(),
            clean.len(),
            unreadable.len(),
            skipped
        )
    );
}

#[test]
fn a_scan_that_found_nothing_to_read_says_so_and_exits_2() {
    let s = indexed_songs("silent-nothing", 1..=1, 10.0);
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_bounded(&s.db(), &["scan", "--format", "jsonl", &ps(&empty)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("nothing to scan") && err.contains(&ps(&empty)),
        "{err}"
    );
}

#[test]
fn every_scan_ends_with_a_summary_on_stderr_and_optionally_as_json() {
    let s = indexed_songs("silent-summary", 31..=31, 20.0);
    let hit = s.path("hit.wav");
    write_cut(&hit, 31, 4.0, 14.0);
    let miss = s.path("miss.wav");
    write_song(&miss, 77, 6.0);
    let bad = s.path("bad.ogg");
    std::fs::write(&bad, "not audio at all\n".repeat(50)).unwrap();
    let inputs = [ps(&hit), ps(&miss), ps(&bad)];

    let mut text_args = vec!["scan"];
    text_args.extend(inputs.iter().map(String::as_str));
    let out = run_bounded(&s.db(), &text_args);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary: {err}"));
    assert!(
        line.contains("inputs 3")
            && line.contains("matched 1")
            && line.contains("clean 1")
            && line.contains("unreadable 1"),
        "{line}"
    );

    // Machine formats: stdout stays one record per input; the summary goes to stderr and a file.
    let summary = s.path("summary.json");
    let mut args = vec!["scan", "--format", "jsonl"];
    let sj = ps(&summary);
    args.extend(["--summary-json", &sj]);
    args.extend(inputs.iter().map(String::as_str));
    let out = run_bounded(&s.db(), &args);
    assert_eq!(code(&out), 1);
    assert_eq!(parse_jsonl(&out.stdout).len(), inputs.len());
    assert!(stderr(&out).lines().any(|l| l.starts_with("summary:")));
    let got = read_summary(&summary);
    assert_eq!(
        (
            got.inputs,
            got.matched,
            got.clean,
            got.unreadable,
            got.skipped
        ),
        (3, 1, 1, 1, 0)
    );
    assert!((got.audio_s - 16.0).abs() < 0.1, "{got:?}");
    assert!(got.wall_s > 0.0 && got.x_real_time > 0.0, "{got:?}");
}

#[test]
fn fail_on_error_makes_any_unreadable_input_exit_2_even_beside_a_match() {
    let s = indexed_songs("silent-fail-on-error", 41..=41, 20.0);
    let hit = s.path("hit.wav");
    write_cut(&hit, 41, 3.0, 13.0);
    let bad = s.path("bad.mp4");
    std::fs::write(&bad, vec![7u8; 5000]).unwrap();
    let (h, b) = (ps(&hit), ps(&bad));
    let plain = run_bounded(&s.db(), &["scan", "--format", "jsonl", &h, &b]);
    assert_eq!(code(&plain), 1, "a match is reported as found");
    let strict = run_bounded(
        &s.db(),
        &["scan", "--format", "jsonl", "--fail-on-error", &h, &b],
    );
    assert_eq!(code(&strict), 2, "{}", stderr(&strict));
    let recs = parse_jsonl(&strict.stdout);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].matches.len(), 1, "the match is still reported");
    // Without an unreadable input the flag changes nothing.
    let ok = run_bounded(&s.db(), &["scan", "--fail-on-error", &h]);
    assert_eq!(code(&ok), 1);
}

#[test]
fn an_upload_longer_than_max_duration_is_an_error_and_the_batch_goes_on() {
    let s = indexed_songs("silent-max-duration", 51..=51, 30.0);
    let long = s.path("long.wav");
    write_cut(&long, 51, 0.0, 30.0);
    let short = s.path("short.wav");
    write_cut(&short, 51, 10.0, 18.0);
    let out = run_bounded(
        &s.db(),
        &[
            "scan",
            "--format",
            "jsonl",
            "--max-duration",
            "20",
            &ps(&long),
            &ps(&short),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), 2);
    let e = recs[0].error.as_deref().unwrap_or_default();
    assert!(e.contains(&ps(&long)) && e.contains("20 s"), "{recs:?}");
    assert!(recs[0].matches.is_empty());
    assert_eq!(recs[1].matches.len(), 1, "{recs:?}");
    let bad = run_bounded(&s.db(), &["scan", "--max-duration", "0", &ps(&short)]);
    assert_eq!(code(&bad), 2);
    assert!(bad.stdout.is_empty());
}

#[test]
fn a_decompression_bomb_of_silence_or_a_constant_stops_minutes_in_and_the_batch_goes_on() {
    let s = indexed_songs("silent-bomb", 52..=52, 20.0);
    // 29 hours in about a megabyte: digital silence, and a constant offset (no zero samples).
    let silence = s.path("silence.flac");
    write_flac_bomb(&silence, 29.0, 0);
    let dc = s.path("dc.flac");
    write_flac_bomb(&dc, 29.0, 1200);
    let size = std::fs::metadata(&silence).unwrap().len();
    assert!(size < 1_500_000, "bomb of {size} bytes");
    let hit = s.path("hit.wav");
    write_cut(&hit, 52, 4.0, 14.0);
    let out = run_bounded(
        &s.db(),
        &[
            "scan",
            "--format",
            "jsonl",
            &ps(&silence),
            &ps(&dc),
            &ps(&hit),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), 3, "{recs:?}");
    for (r, name) in recs.iter().zip([&silence, &dc]) {
        let e = r.error.as_deref().unwrap_or_default();
        // Stopped by the silence rule ten minutes in, not by the four-hour duration budget.
        assert!(
            e.contains(&ps(name)) && e.contains("digital silence from 0.0 s"),
            "{r:?}"
        );
    }
    assert_eq!(recs[2].matches.len(), 1, "{recs:?}");
    // A reference is held to the same budget.
    let out = run_bounded(&s.db(), &["index", &ps(&silence)]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("digital silence"), "{}", stderr(&out));
}

/// File names are bytes: one that is not UTF-8 is scanned, and its exact bytes come back.
#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_comes_back_byte_for_byte() {
    use base64::Engine as _;
    use std::os::unix::ffi::OsStrExt;
    let s = indexed_songs("silent-non-utf8", 53..=53, 20.0);
    let dir = s.path("uploads");
    std::fs::create_dir(&dir).unwrap();
    let raw: &[u8] = b"clip-\xff\xfe-\xe9t\xe9.wav";
    let name = dir.join(std::ffi::OsStr::from_bytes(raw));
    write_cut(&name, 53, 3.0, 13.0);
    write_cut(&dir.join("plain.wav"), 53, 5.0, 15.0);
    let out = run_bounded(&s.db(), &["scan", "--format", "jsonl", &ps(&dir)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let odd = recs
        .iter()
        .find(|r| r.path.contains('\u{FFFD}'))
        .unwrap_or_else(|| panic!("{recs:?}"));
    assert_eq!(odd.matches.len(), 1);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(odd.path_base64.as_deref().unwrap_or_default())
        .unwrap();
    assert_eq!(bytes, name.as_os_str().as_bytes());
    let plain = recs.iter().find(|r| r.path.ends_with("plain.wav")).unwrap();
    assert_eq!(plain.path_base64, None, "only odd names carry the bytes");
    // Named on the command line (not valid UTF-8 either), in CSV: the same column.
    let named = |args: &[&str]| {
        let mut with_name: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        with_name.push(name.as_os_str());
        wait_bounded(spawn(&s.db(), &with_name), args)
    };
    let out = named(&["scan", "--format", "csv"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let b64 = odd.path_base64.as_deref().unwrap_or_default();
    let row = text.lines().nth(1).unwrap_or_default();
    assert!(row.contains(",matched,") && row.ends_with(b64), "{text}");
    // Such a file can be indexed as a reference too (its stored path is the lossy form).
    let out = named(&["index"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// An index shipped to scanners on a read-only mount, or in a folder the scanning user cannot
/// write, is scanned: nothing needs to be created beside it.
#[cfg(unix)]
#[test]
fn an_index_on_a_read_only_mount_is_scanned_listed_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let s = indexed_songs("silent-read-only", 54..=54, 20.0);
    let clip = s.path("clip.wav");
    write_cut(&clip, 54, 4.0, 14.0);
    let shipped = s.path("shipped");
    std::fs::create_dir(&shipped).unwrap();
    std::fs::copy(s.db(), shipped.join("index.db")).unwrap();
    let ro = s.path("ro");
    std::fs::create_dir(&ro).unwrap();
    let root = unsafe { libc_geteuid() } == 0;
    // As root, permissions do not stop writes, so the test mounts the folder read-only; as any
    // other user, a folder without write permission does the same.
    let _guard = if root {
        let ok = |c: &mut Command| c.status().is_ok_and(|st| st.success());
        assert!(
            ok(Command::new("mount").arg("--bind").arg(&shipped).arg(&ro)),
            "cannot bind-mount"
        );
        let guard = Unmount(ro.clone());
        assert!(
            ok(Command::new("mount")
                .args(["-o", "remount,ro,bind"])
                .arg(&ro)),
            "cannot remount read-only"
        );
        Some(guard)
    } else {
        std::fs::rename(&shipped, &ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    assert!(
        std::fs::write(ro.join("probe"), b"x").is_err(),
        "the folder is still writable"
    );
    let db = ro.join("index.db");
    let before = std::fs::read(&db).unwrap();
    let out = run_bounded(&db, &["scan", "--format", "jsonl", &ps(&clip)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(parse_jsonl(&out.stdout)[0].matches.len(), 1);
    for cmd in [&["list"][..], &["stats"][..]] {
        let out = run_bounded(&db, cmd);
        assert_eq!(code(&out), 0, "{cmd:?}: {}", stderr(&out));
    }
    // A writer says why it cannot write, in one line.
    let out = run_bounded(&db, &["index", &ps(&clip)]);
    assert_eq!(code(&out), 2);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(&ro).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "{names:?}");
    if !root {
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), as an analyst at a shell would,
/// and returns what the terminal showed.
#[cfg(unix)]
fn on_a_terminal(db: &Path, args: &[&str]) -> (i32, String) {
    let quote = |a: &str| format!("'{}'", a.replace('\'', "'\\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_nasheed")),
        "--db".into(),
        quote(&ps(db)),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let child = Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the binary on a pseudo-terminal");
    let out = wait_bounded(child, args);
    (
        code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn long_runs_show_progress_on_a_terminal_and_index_counts_hours_of_audio() {
    let s = Scratch::new("silent-progress");
    let refs = s.path("refs");
    std::fs::create_dir(&refs).unwrap();
    // 3 × 24 s = 0.02 h of audio.
    for seed in 0..3u64 {
        write_song(&refs.join(format!("r{seed}.wav")), 500 + seed, 24.0);
    }
    let (rc, shown) = on_a_terminal(&s.db(), &["index", &ps(&refs)]);
    assert_eq!(rc, 0, "{shown}");
    assert!(
        shown.contains("files, ") && shown.contains("/0.02 h of audio"),
        "{shown:?}"
    );
    let ups = s.path("uploads");
    std::fs::create_dir(&ups).unwrap();
    for i in 0..12u64 {
        write_cut(&ups.join(format!("u{i:02}.wav")), 500 + i % 3, 2.0, 9.0);
    }
    let (rc, shown) = on_a_terminal(&s.db(), &["scan", &ps(&ups)]);
    assert_eq!(rc, 1, "{shown}");
    assert!(shown.contains("/12 inputs"), "{shown:?}");
    // Every result line still reaches the terminal whole.
    assert_eq!(shown.matches("speed 1.000").count(), 12, "{shown:?}");
    // Off a terminal there is no bar: stderr is for errors and the summary.
    let out = run_bounded(&s.db(), &["scan", &ps(&ups)]);
    assert!(!stderr(&out).contains("/12 inputs"), "{}", stderr(&out));
}

/// Unmounts a test's mount when the test ends, passed or not.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[cfg(unix)]
#[test]
fn named_streams_are_read_with_a_bound_and_a_fifo_is_scanned() {
    let s = indexed_songs("silent-streams", 61..=61, 20.0);
    // /dev/zero never ends: a bounded error for it, and the next input is still scanned.
    let clip = s.path("clip.wav");
    write_cut(&clip, 61, 5.0, 13.0);
    let out = run_bounded(
        &s.db(),
        &[
            "scan",
            "--format",
            "jsonl",
            "--max-stream-bytes",
            "1M",
            "/dev/zero",
            &ps(&clip),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let recs = parse_jsonl(&out.stdout);
    assert_eq!(recs.len(), 2);
    let e = recs[0].error.as_deref().unwrap_or_default();
    assert!(e.contains("/dev/zero") && e.contains("1048576"), "{recs:?}");
    assert_eq!(recs[1].matches.len(), 1);

    // A FIFO named explicitly is read (it can be read once: it is spooled).
    let fifo = s.path("upload.fifo");
    mkfifo(&fifo);
    let bytes = std::fs::read(&clip).unwrap();
    let f = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        std::io::Write::write_all(&mut w, &bytes).unwrap();
    });
    let out = run_bounded(&s.db(), &["scan", "--format", "jsonl", &ps(&fifo)]);
    writer.join().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(parse_jsonl(&out.stdout)[0].matches.len(), 1);

    // References are files: `index` refuses a device at once instead of hashing it forever.
    let out = run_bounded(&s.db(), &["index", "/dev/zero"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("/dev/zero: not a regular file"));
}

#[test]
fn export_of_an_id_that_does_not_exist_fails_and_writes_nothing() {
    let s = indexed_songs("silent-export", 71..=71, 10.0);
    let pack = s.path("out.nshpack");
    for ids in [&["42"][..], &["1", "42"][..]] {
        let mut args = vec!["export", "--out"];
        let p = ps(&pack);
        args.push(&p);
        args.extend_from_slice(ids);
        let out = run_bounded(&s.db(), &args);
        assert_eq!(code(&out), 2, "export {ids:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("42"), "{}", stderr(&out));
        assert!(!pack.exists(), "a pack was written for export {ids:?}");
    }
    let p = ps(&pack);
    assert_eq!(
        code(&run_bounded(&s.db(), &["export", "--out", &p, "1"])),
        0
    );
    assert!(pack.is_file());
}

#[test]
fn a_meta_csv_row_naming_no_indexed_file_is_warned_about() {
    let s = Scratch::new("silent-meta-csv");
    let song = s.path("song.wav");
    write_song(&song, 81, 8.0);
    let csv = s.path("meta.csv");
    std::fs::write(
        &csv,
        format!(
            "path,title,group\n{},Song,a\nmisspelt.wav,Other,b\n",
            ps(&song)
        ),
    )
    .unwrap();
    let out = run_bounded(&s.db(), &["index", "--meta-csv", &ps(&csv), &ps(&song)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("misspelt.wav") && warnings[0].contains("row 3"),
        "{err}"
    );
    let list = run_bounded(&s.db(), &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["title"], "Song");
}

/// The bytes of a file and whether SQLite's side files exist beside it.
fn snapshot(db: &Path) -> (Vec<u8>, bool, bool) {
    let side = |suffix: &str| PathBuf::from(format!("{}{suffix}", db.display())).exists();
    (std::fs::read(db).unwrap(), side("-wal"), side("-shm"))
}

#[test]
fn no_command_changes_a_foreign_sqlite_database() {
    let s = Scratch::new("silent-foreign");
    let db = s.path("app.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users (name) VALUES ('alice');",
        )
        .unwrap();
    }
    let before = snapshot(&db);
    let song = s.path("song.wav");
    write_song(&song, 91, 8.0);
    let pack = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fingerprints/demo.nshpack");
    let out_pack = s.path("out.nshpack");
    let commands: [Vec<String>; 7] = [
        vec!["scan".into(), ps(&song)],
        vec!["list".into()],
        vec!["stats".into()],
        vec!["export".into(), "--out".into(), ps(&out_pack)],
        vec!["remove".into(), "1".into()],
        vec!["index".into(), ps(&song)],
        vec!["import".into(), ps(&pack)],
    ];
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_bounded(&db, &args);
        assert_eq!(code(&out), 2, "{args:?} on a foreign database");
        assert!(
            stderr(&out).contains("not a nasheed index"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(
            snapshot(&db),
            before,
            "{args:?} changed the foreign database"
        );
    }
    assert!(!out_pack.exists());
    let mode: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
}

#[test]
fn read_only_commands_leave_an_empty_file_given_as_db_empty() {
    let s = Scratch::new("silent-empty-file");
    let db = s.path("empty.db");
    std::fs::write(&db, b"").unwrap();
    let song = s.path("song.wav");
    write_song(&song, 92, 6.0);
    for args in [&["list"][..], &["stats"][..], &["scan", &ps(&song)][..]] {
        let out = run_bounded(&db, args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert_eq!(snapshot(&db), (Vec::new(), false, false), "{args:?}");
    }
}

#[test]
fn export_onto_its_own_index_is_refused() {
    let s = indexed_songs("silent-export-self", 93..=93, 10.0);
    let db = ps(&s.db());
    let out = run_bounded(&s.db(), &["export", "--out", &db]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("index being exported"),
        "{}",
        stderr(&out)
    );
    let list = run_bounded(&s.db(), &["list", "--format", "json"]);
    assert_eq!(code(&list), 0, "the index was damaged: {}", stderr(&list));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
}

#[cfg(unix)]
#[test]
fn the_stdin_spool_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let s = indexed_songs("silent-spool", 94..=94, 10.0);
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let clip = std::fs::read(s.path("ref94.wav")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .env("TMPDIR", &tmp)
        .arg("--db")
        .arg(s.db())
        .args(["scan", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Half the upload, then look at the spool while the scan waits for the rest.
    std::io::Write::write_all(&mut stdin, &clip[..clip.len() / 2]).unwrap();
    let start = Instant::now();
    let spool = loop {
        let found = std::fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("nasheed-stdin"));
        if let Some(e) = found {
            break e.path();
        }
        assert!(start.elapsed() < HANG_GUARD, "no spool file appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    std::io::Write::write_all(&mut stdin, &clip[clip.len() / 2..]).unwrap();
    drop(stdin);
    let out = wait_bounded(child, &["scan", "-"]);
    assert_eq!(mode, 0o600, "spool mode {mode:o}");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!spool.exists(), "the spool was left behind");
}

#[cfg(unix)]
#[test]
fn text_output_escapes_control_characters_in_titles_and_file_names() {
    let s = Scratch::new("silent-escape");
    let song = s.path("song.wav");
    write_song(&song, 95, 15.0);
    let title = "chant\x1b[2J\nfake.mp3: no match";
    let out = run_bounded(&s.db(), &["index", "--title", title, &ps(&song)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // An upload whose name carries a newline and an escape sequence.
    let dir = s.path("uploads");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&song, dir.join("a\nb.wav: no match\x1b[1A.wav")).unwrap();
    let out = run_bounded(&s.db(), &["scan", &ps(&dir)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b), "raw escape in the output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one input, one line: {text:?}");
    assert!(text.contains("chant\\x1b[2J\\x0afake.mp3"), "{text:?}");
    let list = run_bounded(&s.db(), &["list"]);
    assert!(!list.stdout.contains(&0x1b));
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1);
}

/// (title, hashes) of every track, sorted, from `list --format json`.
fn track_list(db: &Path) -> Vec<(String, u64)> {
    let out = run_bounded(db, &["list", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut t: Vec<(String, u64)> = v
        .iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap_or_default().to_string(),
                t["n_hashes"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    t.sort();
    t
}

/// Starts the binary with `--db db` and `args` (any OS strings: file names need not be UTF-8).
fn spawn<A: AsRef<std::ffi::OsStr>>(db: &Path, args: &[A]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_indexers_and_an_import_on_one_new_database_all_finish() {
    let s = Scratch::new("silent-concurrent");
    let refs = s.path("refs");
    std::fs::create_dir(&refs).unwrap();
    for seed in 0..12u64 {
        write_song(&refs.join(format!("r{seed:02}.wav")), 300 + seed, 12.0);
    }
    // A pack holding three of the same recordings and two others.
    let other = s.path("other");
    std::fs::create_dir(&other).unwrap();
    for seed in [300u64, 301, 302, 400, 401] {
        write_song(&other.join(format!("p{seed}.wav")), seed, 12.0);
    }
    let pack_db = s.path("pack.db");
    index(&pack_db, &[&other]);
    let pack = s.path("p.nshpack");
    let p = ps(&pack);
    assert_eq!(code(&run_bounded(&pack_db, &["export", "--out", &p])), 0);

    let r = ps(&refs);
    for round in 0..3 {
        let db = s.path(&format!("together{round}.db"));
        let children = [
            spawn(&db, &["index", &r]),
            spawn(&db, &["index", &r]),
            spawn(&db, &["import", &p]),
        ];
        for child in children {
            let out = wait_bounded(child, &["index/import"]);
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
        }
        let ok: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // Same content as one run after the other (the pack's copies of r00-r02 are skipped,
        // whichever arrived first: titles differ, so compare hashes per content).
        let seq = s.path(&format!("sequential{round}.db"));
        index(&seq, &[&refs]);
        assert_eq!(code(&run_bounded(&seq, &["import", &p])), 0);
        let hashes = |db: &Path| {
            let mut h: Vec<u64> = track_list(db).into_iter().map(|t| t.1).collect();
            h.sort_unstable();
            h
        };
        assert_eq!(hashes(&db), hashes(&seq), "round {round}");
        assert_eq!(track_list(&seq).len(), 14);
    }
}
