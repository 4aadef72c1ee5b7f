//! The shared index on PostgreSQL, through the CLI as users run it (`--db postgres://...`),
//! beside the same work on SQLite; and a writer killed mid-run leaving it consistent.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ok(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes synthetic song `seed` (`seconds` long) into the scratch folder.
fn song(s: &Scratch, seed: u64, seconds: f32) -> PathBuf {
    let p = s.path(&format!("song{seed}.wav"));
    write_song(&p, seed, seconds);
    p
}

/// Writes 4–12 s of synthetic song `seed` (20 s long) as a clip; its path.
fn clip(s: &Scratch, seed: u64) -> PathBuf {
    let audio = nasheed_harness::synth::song(seed, 20.0, 44100);
    let p = s.path(&format!("clip{seed}.wav"));
    nasheed_harness::synth::write_wav(&p, &audio[4 * 44100..12 * 44100], 44100, 1).unwrap();
    p
}

/// A scan record without its local ids (they differ between indexes).
fn without_ids(line: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    if let Some(ms) = v["matches"].as_array_mut() {
        for m in ms {
            if let Some(o) = m.as_object_mut() {
                o.remove("ref_id");
            }
        }
    }
    v
}

#[test]
fn every_command_works_on_postgres_as_on_sqlite() {
    let pg = pg::TestPg::start();
    let url = PathBuf::from(pg.database("cli"));
    let s = Scratch::new("shared-cli");
    let songs: Vec<PathBuf> = (61..=63).map(|seed| song(&s, seed, 25.0)).collect();
    let refs: Vec<&std::path::Path> = songs.iter().map(|p| p.as_path()).collect();
    index(&url, &refs);
    index(&s.db(), &refs);
    // Indexing again skips every file (same SHA-256).
    let again = run(&url, &["index", &songs[0].display().to_string()]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("skipped 1"));

    let upload = s.path("upload.wav");
    let audio = nasheed_harness::synth::song(62, 25.0, 44100);
    nasheed_harness::synth::write_wav(&upload, &audio[5 * 44100..13 * 44100], 44100, 1).unwrap();
    let clip_s = upload.display().to_string();
    let on_pg = run(&url, &["scan", "--format", "jsonl", &clip_s]);
    let on_sqlite = run(&s.db(), &["scan", "--format", "jsonl", &clip_s]);
    assert_eq!(
        on_pg.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&on_pg.stderr)
    );
    let (a, b) = (
        without_ids(String::from_utf8_lossy(&on_pg.stdout).trim()),
        without_ids(String::from_utf8_lossy(&on_sqlite.stdout).trim()),
    );
    assert_eq!(a, b);
    assert_eq!(a["matches"][0]["title"], "song62");
    // Scans read a local replica, which keeps the shared index's ids.
    let pg_id =
        serde_json::from_str::<serde_json::Value>(String::from_utf8_lossy(&on_pg.stdout).trim())
            .unwrap()["matches"][0]["ref_id"]
            .clone();

    let list: serde_json::Value =
        serde_json::from_str(&ok(&run(&url, &["list", "--format", "json"]))).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    let listed = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["title"] == "song62"))
        .map(|t| t["id"].clone());
    assert_eq!(listed, Some(pg_id));
    let stats: serde_json::Value =
        serde_json::from_str(&ok(&run(&url, &["stats", "--format", "json"]))).unwrap();
    assert_eq!(stats["tracks"], 3);

    // Export gives the same bytes from either backend.
    let (p1, p2) = (s.path("pg.nshpack"), s.path("sqlite.nshpack"));
    ok(&run(&url, &["export", "--out", &p1.display().to_string()]));
    ok(&run(
        &s.db(),
        &["export", "--out", &p2.display().to_string()],
    ));
    assert_eq!(std::fs::read(&p1).unwrap(), std::fs::read(&p2).unwrap());

    // Remove, tag and import round trip.
    let sha = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["title"] == "song62"))
        .and_then(|t| t["sha256"].as_str())
        .unwrap_or_default()
        .to_string();
    ok(&run(&url, &["tag", &sha[..12], "--set", "group=g62"]));
    ok(&run(&url, &["remove", &sha[..12]]));
    let gone = run(&url, &["scan", "--format", "jsonl", &clip_s]);
    assert_eq!(gone.status.code(), Some(0), "removed, yet found");
    ok(&run(&url, &["import", &p2.display().to_string()]));
    assert_eq!(run(&url, &["scan", &clip_s]).status.code(), Some(1));
    // Another build's parameters are refused for scanning, by name.
    let mut client = postgres::Client::connect(url.to_str().unwrap(), postgres::NoTls).unwrap();
    client
        .execute(
            "UPDATE nasheed_meta SET value = 'fp1-other' WHERE key = 'params_id'",
            &[],
        )
        .unwrap();
    let refused = run(&url, &["scan", &clip_s]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("fp1-other"));
    ok(&run(&url, &["list"]));
}

#[test]
fn a_killed_indexer_leaves_postgres_consistent() {
    let pg = pg::TestPg::start();
    let url = pg.database("kill");
    let s = Scratch::new("shared-kill");
    let songs: Vec<PathBuf> = (71..=82).map(|seed| song(&s, seed, 60.0)).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .args(["--db", &url, "index"])
        .args(&songs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let t0 = Instant::now();
    loop {
        let exists: bool = client
            .query_one("SELECT to_regclass('nasheed_tracks') IS NOT NULL", &[])
            .unwrap()
            .get(0);
        if exists {
            let n: i64 = client
                .query_one("SELECT COUNT(*) FROM nasheed_tracks", &[])
                .unwrap()
                .get(0);
            if n >= 2 {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the indexer stored nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // No orphan postings, and every track holds exactly what indexing it alone stores.
    let orphans: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM nasheed_postings p LEFT JOIN nasheed_tracks t ON t.id = p.track WHERE t.id IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
    let alone = s.path("alone.db");
    let stored = client
        .query("SELECT id, path, n_hashes FROM nasheed_tracks", &[])
        .unwrap();
    assert!(
        !stored.is_empty() && stored.len() < songs.len(),
        "{} tracks",
        stored.len()
    );
    for row in &stored {
        let (id, path, n): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
        let frames: i64 = {
            let mut n = 0i64;
            let landmarks = nasheed::index::open(
                std::path::Path::new(&url),
                &nasheed::fingerprint::FingerprintParams::default().id(),
                nasheed::index::Access::Read,
            )
            .unwrap()
            .landmarks(&[nasheed::index::TrackId(id)])
            .unwrap();
            n += landmarks.values().map(|v| v.len() as i64).sum::<i64>();
            n
        };
        assert_eq!(frames, n, "{path}: postings {frames}, n_hashes {n}");
        let _ = std::fs::remove_file(&alone);
        index(&alone, &[std::path::Path::new(&path)]);
        let one: serde_json::Value =
            serde_json::from_str(&ok(&run(&alone, &["stats", "--format", "json"]))).unwrap();
        assert_eq!(one["hashes"].as_i64(), Some(n), "{path}");
    }
    // Running again finishes the job.
    let refs: Vec<&std::path::Path> = songs.iter().map(|p| p.as_path()).collect();
    index(std::path::Path::new(&url), &refs);
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM nasheed_tracks", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, songs.len() as i64);
}

/// SHA-256 of a file, lowercase hex.
fn sha256_hex(path: &std::path::Path) -> String {
    nasheed::engine::sha256_file(path).unwrap()
}

#[test]
fn two_servers_on_one_postgres_index_find_what_a_third_process_adds() {
    // The servers read their replicas: one update a second, and one before every answer to a
    // write of their own (none here: the writer is another process).
    use common::http::{json, post, Server};
    use std::collections::HashMap;

    let pg = pg::TestPg::start();
    let url = PathBuf::from(pg.database("share"));
    let s = Scratch::new("shared-serve");
    let first: Vec<PathBuf> = (61..=63).map(|seed| song(&s, seed, 20.0)).collect();
    index(&url, &first.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    let new: Vec<(u64, PathBuf)> = (90..110).map(|seed| (seed, song(&s, seed, 20.0))).collect();
    let read_clip = |seed: u64| std::fs::read(clip(&s, seed)).unwrap();
    let known = read_clip(62);
    let clips: HashMap<u64, Vec<u8>> = new
        .iter()
        .map(|(seed, _)| (*seed, read_clip(*seed)))
        .collect();
    let seed_of: HashMap<String, u64> =
        new.iter().map(|(seed, p)| (sha256_hex(p), *seed)).collect();

    let servers = [
        Server::start(&url, &[], false),
        Server::start(&url, &[], false),
    ];
    // The writer: one `nasheed index` after another, a reference each, as an analyst adds
    // them. (One run of all 20 commits them within a second, and the delays measured would be
    // this test's own sequential scans of 40 clips, not what a scanner waits for.)
    let indexer = {
        let (url, files) = (
            url.clone(),
            new.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
        );
        std::thread::spawn(move || {
            for f in files {
                let out = Command::new(env!("CARGO_BIN_EXE_nasheed"))
                    .arg("--db")
                    .arg(&url)
                    .arg("index")
                    .arg(&f)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()
                    .unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let mut client = postgres::Client::connect(url.to_str().unwrap(), postgres::NoTls).unwrap();
    // (server, seed) -> seconds from the track's commit to the first scan that found it.
    let mut delays: HashMap<(usize, u64), f64> = HashMap::new();
    let (mut scans, t0) = (0, Instant::now());
    while delays.len() < 2 * new.len() {
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "found {} of {}",
            delays.len(),
            2 * new.len()
        );
        let committed: Vec<(u64, f64)> = client
            .query(
                "SELECT sha256, EXTRACT(EPOCH FROM at)::FLOAT8 FROM nasheed_changes WHERE op = 'add'",
                &[],
            )
            .unwrap()
            .iter()
            .filter_map(|r| seed_of.get(&r.get::<_, String>(0)).map(|s| (*s, r.get(1))))
            .collect();
        for (i, server) in servers.iter().enumerate() {
            // A reference that was there all along is found every time, whatever is written.
            let (status, text) = post(&server.url("/v1/scan"), &known, None);
            assert_eq!(status, 200, "{text}");
            assert_eq!(json(&text)["matches"][0]["title"], "song62", "{text}");
            scans += 1;
            for &(seed, at) in &committed {
                if delays.contains_key(&(i, seed)) {
                    continue;
                }
                let (status, text) = post(&server.url("/v1/scan"), &clips[&seed], None);
                assert_eq!(status, 200, "{text}");
                scans += 1;
                let v = json(&text);
                if let Some(m) = v["matches"].as_array().and_then(|m| m.first()) {
                    assert_eq!(m["title"], format!("song{seed}"), "{text}");
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs_f64();
                    delays.insert((i, seed), now - at);
                }
            }
        }
    }
    assert!(indexer.join().is_ok(), "an index run failed");
    let worst = delays.values().cloned().fold(0.0, f64::max);
    eprintln!(
        "{} scans on 2 servers, 0 errors; a new reference found by both within {worst:.2} s of its commit (worst of {})",
        scans,
        delays.len()
    );
    assert!(worst <= 10.0, "a reference took {worst:.1} s to be found");
}

#[test]
fn a_replica_of_a_database_made_again_is_made_again() {
    let pg = pg::TestPg::start();
    let url = pg.database("again");
    let db = PathBuf::from(&url);
    let s = Scratch::new("shared-again");
    let (c61, c62) = (
        clip(&s, 61).display().to_string(),
        clip(&s, 62).display().to_string(),
    );
    index(&db, &[&song(&s, 61, 20.0)]);
    assert_eq!(run(&db, &["scan", &c61]).status.code(), Some(1));
    // The database is dropped and made again with other references: its change log starts
    // over, and the scanner's replica must not keep the old ones.
    pg.recreate(&url);
    index(&db, &[&song(&s, 62, 20.0)]);
    let stale = run(&db, &["scan", "--format", "jsonl", &c61]);
    assert_eq!(
        stale.status.code(),
        Some(0),
        "a reference of the dropped database was still found: {}",
        String::from_utf8_lossy(&stale.stdout)
    );
    assert_eq!(run(&db, &["scan", &c62]).status.code(), Some(1));
}
