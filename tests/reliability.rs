//! Crash safety and concurrent use: an indexer killed with SIGKILL leaves a consistent index that
//! a re-run completes; scans running while the indexer writes never fail on locks.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Tracks and their hash counts, from `list --format json`.
fn tracks(db: &std::path::Path) -> Vec<(String, u64)> {
    let out = run(db, &["list", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    v.iter()
        .map(|t| {
            (
                t["title"].as_str().unwrap().to_string(),
                t["n_hashes"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn many_songs(s: &Scratch, n: u64) -> std::path::PathBuf {
    let dir = s.path("refs");
    std::fs::create_dir_all(&dir).unwrap();
    for seed in 0..n {
        write_song(&dir.join(format!("s{seed:03}.wav")), 500 + seed, 30.0);
    }
    dir
}

/// Starts `nasheed index DIR` in the background (stderr captured for the assertion message).
fn spawn_index(db: &std::path::Path, dir: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .arg("--db")
        .arg(db)
        .arg("index")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn killed_indexer_leaves_complete_tracks_and_a_rerun_finishes() {
    let s = Scratch::new("reliability-kill");
    let dir = many_songs(&s, 40);
    let db = s.db();
    let mut child = spawn_index(&db, &dir);
    // Kill it as soon as a few tracks are committed (or when it ends on its own, on a fast machine).
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        if db.exists() {
            let out = run(&db, &["stats", "--format", "json"]);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                if v["tracks"].as_u64().unwrap_or(0) >= 3 {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();

    // Integrity, and every visible track complete: same hash count as indexing that file alone.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM hashes h WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.id = h.track)", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0, "hashes of a track that is not recorded");
    drop(conn);
    let partial = tracks(&db);
    eprintln!("killed with {} of 40 tracks indexed", partial.len());
    for (title, n) in &partial {
        let alone = s.path(&format!("alone-{title}.db"));
        index(&alone, &[&dir.join(format!("{title}.wav"))]);
        assert_eq!(tracks(&alone)[0].1, *n, "{title} is incomplete");
    }
    // A re-run skips what is there and finishes the rest.
    let out = run(&db, &["index", &dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "indexed {}, skipped {}",
            40 - partial.len(),
            partial.len()
        )),
        "{err}"
    );
    assert_eq!(tracks(&db).len(), 40);
}

#[test]
fn scans_run_while_the_index_grows() {
    let s = Scratch::new("reliability-concurrent");
    let dir = many_songs(&s, 24);
    let db = s.db();
    // Seed the index with one track so that scans have something to open.
    let first = dir.join("s000.wav");
    index(&db, &[&first]);
    let clip = s.path("clip.wav");
    let song = nasheed_harness::synth::song(500, 30.0, 44100);
    nasheed_harness::synth::write_wav(&clip, &song[44100 * 5..44100 * 12], 44100, 1).unwrap();
    let mut writer = spawn_index(&db, &dir);
    let mut scans = 0;
    while writer.try_wait().unwrap().is_none() || scans < 4 {
        // Two scanners at once, as several moderation workers would run: both are started
        // before either is waited for.
        let start = || {
            Command::new(env!("CARGO_BIN_EXE_nasheed"))
                .arg("--db")
                .arg(&db)
                .args(["scan", "--format", "jsonl"])
                .arg(&clip)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (start(), start());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("locked") && !err.contains("busy"), "{err}");
            assert_eq!(out.status.code(), Some(1), "{err}");
            let recs = parse_jsonl(&out.stdout);
            assert_eq!(recs[0].matches[0].title, "s000");
        }
        scans += 2;
        if scans > 400 {
            break;
        }
    }
    let out = writer.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tracks(&db).len(), 24);
}
