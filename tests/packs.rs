//! Fingerprint packs: round trip, determinism, refusal of damaged or foreign packs, the shipped demo pack.

mod common;
use common::*;

fn songs(s: &Scratch, seeds: &[u64]) -> Vec<std::path::PathBuf> {
    seeds
        .iter()
        .map(|&seed| {
            let p = s.path(&format!("song{seed}.wav"));
            write_song(&p, seed, 20.0);
            p
        })
        .collect()
}

fn export(db: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", "--out"];
    let o = out.display().to_string();
    args.push(&o);
    args.extend_from_slice(extra);
    run(db, &args)
}

fn stats_tracks(db: &std::path::Path) -> u64 {
    let out = run(db, &["stats", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["tracks"].as_u64().unwrap()
}

#[test]
fn round_trip_gives_the_same_matches_and_deterministic_bytes() {
    let s = Scratch::new("packs-roundtrip");
    let files = songs(&s, &[11, 12, 13]);
    let (a, b) = (s.path("a.db"), s.path("b.db"));
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    index(&a, &refs);
    // The same tracks indexed in another order, one at a time.
    for f in refs.iter().rev() {
        index(&b, &[f]);
    }
    let out = run(
        &a,
        &[
            "index",
            "--meta",
            "group=g",
            &files[0].display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let (pa, pa2, pb) = (
        s.path("a.nshpack"),
        s.path("a2.nshpack"),
        s.path("b.nshpack"),
    );
    for (db, p) in [(&a, &pa), (&a, &pa2), (&b, &pb)] {
        assert_eq!(export(db, p, &[]).status.code(), Some(0));
    }
    let bytes = std::fs::read(&pa).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&pa2).unwrap(),
        "exporting twice differs"
    );
    assert_eq!(
        bytes,
        std::fs::read(&pb).unwrap(),
        "indexing order changes the pack"
    );
    assert!(
        !bytes.windows(4).any(|w| w == b"RIFF"),
        "a pack must not carry audio"
    );

    // Import into an empty index, and use the pack directly as --db: same matches.
    let c = s.path("c.db");
    let out = run(&c, &["import", &pa.display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("added 3, skipped 0"));
    let clip = s.path("clip.wav");
    let song = nasheed_harness::synth::song(12, 20.0, 44100);
    nasheed_harness::synth::write_wav(&clip, &song[44100 * 4..44100 * 11], 44100, 1).unwrap();
    let key = |db: &std::path::Path| {
        let (code, r) = scan(db, &[&clip]);
        assert_eq!(code, 1);
        let m = &r[0].matches[0];
        (
            m.title.clone(),
            m.query_start_s,
            m.ref_start_s,
            m.score,
            m.confidence,
        )
    };
    assert_eq!(key(&a), key(&c));
    assert_eq!(key(&a), key(&pa));
    // Importing again skips everything.
    let out = run(&c, &["import", &pa.display().to_string()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("added 0, skipped 3"));
}

#[test]
fn damaged_or_foreign_packs_are_refused_and_leave_the_index_unchanged() {
    let s = Scratch::new("packs-bad");
    let files = songs(&s, &[21, 22]);
    let a = s.path("a.db");
    index(&a, &files.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    let pack = s.path("a.nshpack");
    assert_eq!(export(&a, &pack, &[]).status.code(), Some(0));
    let good = std::fs::read(&pack).unwrap();

    let target = s.path("target.db");
    index(&target, &[&files[0]]);
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let mut newer = good.clone();
    newer[8] = 9; // format version 9
                  // A pack from other parameters: rewrite the parameter id and fix the checksum.
    let mut foreign = good.clone();
    let pos = foreign.windows(4).position(|w| w == b"fp2-").unwrap();
    foreign[pos + 4] = if foreign[pos + 4] == b'0' { b'1' } else { b'0' };
    let body = foreign.len() - 32;
    let sum = {
        use sha2::Digest;
        sha2::Sha256::digest(&foreign[..body])
    };
    foreign[body..].copy_from_slice(&sum);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("flipped.nshpack", flipped, "checksum"),
        (
            "truncated.nshpack",
            good[..good.len() * 2 / 3].to_vec(),
            "checksum",
        ),
        ("newer.nshpack", newer, "newer"),
        ("foreign.nshpack", foreign, "parameters"),
        (
            "text.nshpack",
            b"hello".repeat(20),
            "not a nasheed fingerprint pack",
        ),
    ];
    for (name, bytes, why) in cases {
        let p = s.path(name);
        std::fs::write(&p, bytes).unwrap();
        let out = run(&target, &["import", &p.display().to_string()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(why) && err.contains(name), "{name}: {err}");
        assert_eq!(stats_tracks(&target), 1, "{name} changed the index");
    }
}

#[test]
fn export_selects_by_id_and_metadata() {
    let s = Scratch::new("packs-select");
    let files = songs(&s, &[31, 32]);
    let db = s.db();
    let f0 = files[0].display().to_string();
    let f1 = files[1].display().to_string();
    assert_eq!(
        run(&db, &["index", "--meta", "group=a", &f0]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&db, &["index", "--meta", "group=b", &f1]).status.code(),
        Some(0)
    );
    let p = s.path("b.nshpack");
    assert_eq!(
        export(&db, &p, &["--where", "group=b"]).status.code(),
        Some(0)
    );
    let out = run(&p, &["list", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["meta"]["group"], "b");
    assert_eq!(
        list[0]["path"], "song32.wav",
        "packs carry file names, not local paths"
    );
    let p1 = s.path("one.nshpack");
    assert_eq!(export(&db, &p1, &["1"]).status.code(), Some(0));
    assert_eq!(stats_tracks(&p1), 1);
}

#[test]
fn the_shipped_demo_pack_finds_the_example_clips() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let clips = root.join("examples/clips");
    let (code, recs) = scan(&root.join("fingerprints"), &[&clips]);
    assert_eq!(
        code, 1,
        "demo pack stale? regenerate with fingerprints/make-demo.sh"
    );
    let titles: Vec<Vec<&str>> = recs
        .iter()
        .map(|r| r.matches.iter().map(|m| m.title.as_str()).collect())
        .collect();
    assert_eq!(titles, vec![vec!["song102"], vec!["song103"], vec![]]);
}
