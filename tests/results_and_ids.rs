//! What results say and how tracks are named (issue 14): matches carry the reference's SHA-256
//! and metadata in every format, scan records the upload's SHA-256, CSV is an audit log with a
//! row per input; tracks are named by id, SHA-256 or a unique prefix, selected by metadata, and
//! corrected with `tag`; an index from another fingerprint version can still be inspected; error
//! messages say each thing once; completions, man page, `--quiet` and `--color`.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ps(p: &Path) -> String {
    p.display().to_string()
}

fn sha_of(p: &Path) -> String {
    nasheed::engine::sha256_file(p).unwrap()
}

/// A cut of synthetic song `seed`, `from`..`to` seconds, as a 44.1 kHz WAV at `path`.
fn write_cut(path: &Path, seed: u64, from: f32, to: f32) {
    let song = nasheed_harness::synth::song(seed, to, 44100);
    nasheed_harness::synth::write_wav(path, &song[(from * 44100.0) as usize..], 44100, 1).unwrap();
}

/// One JSONL record with the fields issue 14 adds, read with the test's own structs.
#[derive(Debug, Deserialize)]
struct Tagged {
    sha256: Option<String>,
    error: Option<String>,
    matches: Vec<TaggedMatch>,
}

#[derive(Debug, Deserialize)]
struct TaggedMatch {
    ref_id: i64,
    title: String,
    ref_sha256: String,
    meta: BTreeMap<String, String>,
}

fn tagged(out: &Output) -> Vec<Tagged> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// One track of `list --format json`.
#[derive(Debug, Deserialize, Clone)]
struct Track {
    id: i64,
    title: String,
    sha256: String,
    meta: BTreeMap<String, String>,
}

fn tracks(db: &Path) -> Vec<Track> {
    let out = run(db, &["list", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// CSV output as maps from header to cell (the csv crate parses the quoting).
fn csv_rows(out: &Output) -> Vec<BTreeMap<String, String>> {
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A scratch index with one reference, `ref.wav` (song 5, 20 s), tagged group=g1 language=ar.
fn tagged_index(name: &str) -> Scratch {
    let s = Scratch::new(name);
    let r = s.path("ref.wav");
    write_song(&r, 5, 20.0);
    let out = run(
        &s.db(),
        &[
            "index",
            "--meta",
            "group=g1",
            "--meta",
            "language=ar",
            "--meta",
            "source=the archive, 2024",
            &ps(&r),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    s
}

#[test]
fn match_records_carry_the_references_sha256_and_metadata_in_every_format() {
    let s = tagged_index("ids-tags");
    let ref_sha = sha_of(&s.path("ref.wav"));
    let clip = s.path("clip.wav");
    write_cut(&clip, 5, 4.0, 12.0);
    let c = ps(&clip);

    let out = run(&s.db(), &["scan", "--format", "jsonl", &c]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let m = &tagged(&out)[0].matches[0];
    assert_eq!(m.ref_sha256, ref_sha);
    assert_eq!(m.meta["group"], "g1");
    assert_eq!(m.meta["language"], "ar");
    assert_eq!(m.meta["source"], "the archive, 2024");

    let out = run(&s.db(), &["scan", "--format", "json", &c]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["matches"][0]["ref_sha256"], ref_sha.as_str());
    assert_eq!(v[0]["matches"][0]["meta"]["group"], "g1");

    let out = run(&s.db(), &["scan", "--format", "csv", &c]);
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 1, "{}", stdout(&out));
    assert_eq!(rows[0]["ref_sha256"], ref_sha);
    let meta: BTreeMap<String, String> = serde_json::from_str(&rows[0]["meta"]).unwrap();
    assert_eq!(meta["source"], "the archive, 2024");

    // Text: a SHA prefix long enough to name the track, and the metadata.
    let out = run(&s.db(), &["scan", &c]);
    let text = stdout(&out);
    assert!(text.contains(&format!("ref {}", &ref_sha[..12])), "{text}");
    assert!(
        text.contains("group=g1") && text.contains("source=\"the archive, 2024\""),
        "{text}"
    );
}

#[test]
fn the_scan_record_carries_the_uploads_sha256() {
    let s = tagged_index("ids-upload-sha");
    let clip = s.path("clip.wav");
    write_cut(&clip, 5, 2.0, 10.0);
    let junk = s.path("junk.mp3");
    std::fs::write(&junk, vec![0x42u8; 3000]).unwrap();
    let missing = s.path("missing.wav");
    let out = run(
        &s.db(),
        &[
            "scan",
            "--format",
            "jsonl",
            &ps(&clip),
            &ps(&junk),
            &ps(&missing),
        ],
    );
    let recs = tagged(&out);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].sha256.as_deref(), Some(sha_of(&clip).as_str()));
    // Not audio, but its bytes were read: the audit log still identifies it.
    assert!(recs[1].error.is_some());
    assert_eq!(recs[1].sha256.as_deref(), Some(sha_of(&junk).as_str()));
    assert!(recs[2].error.is_some() && recs[2].sha256.is_none());

    // Stdin is hashed from the bytes that were read.
    let bytes = std::fs::read(&clip).unwrap();
    let out = run_stdin(&s.db(), &["scan", "--format", "jsonl", "-"], &bytes);
    assert_eq!(
        tagged(&out)[0].sha256.as_deref(),
        Some(sha_of(&clip).as_str())
    );
}

#[test]
fn pitch_cents_appears_in_text_and_csv() {
    let s = indexed_songs("ids-pitch", 2..=2, 30.0);
    let song = nasheed_harness::synth::song(2, 30.0, 44100);
    let clip = &song[6 * 44100..16 * 44100];
    let p = 2f64.powf(150.0 / 1200.0);
    let edited = resample(&stretch(clip, 1.0 / p), (44100.0 * p) as u32, 44100);
    let up = s.path("pitched.wav");
    nasheed_harness::synth::write_wav(&up, &edited, 44100, 1).unwrap();
    let u = ps(&up);
    let out = run(&s.db(), &["scan", "--format", "jsonl", &u]);
    let cents = parse_jsonl(&out.stdout)[0].matches[0]
        .pitch_cents
        .expect("a pitch-only shift reports pitch_cents");

    let out = run(&s.db(), &["scan", &u]);
    let text = stdout(&out);
    assert!(text.contains(&format!("pitch {cents:+.0} cents")), "{text}");

    let out = run(&s.db(), &["scan", "--format", "csv", &u]);
    let rows = csv_rows(&out);
    assert_eq!(rows[0]["pitch_cents"].parse::<f64>().ok(), Some(cents));
}

#[test]
fn csv_has_a_row_with_a_status_for_every_input_as_an_audit_log() {
    let s = tagged_index("ids-csv-audit");
    let hit = s.path("hit.wav");
    write_cut(&hit, 5, 3.0, 11.0);
    let clean = s.path("clean.wav");
    write_song(&clean, 77, 6.0);
    let bad = s.path("bad.ogg");
    std::fs::write(&bad, "not audio\n".repeat(40)).unwrap();
    let out = run(
        &s.db(),
        &["scan", "--format", "csv", &ps(&hit), &ps(&clean), &ps(&bad)],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    // The first eleven columns stay where they were.
    assert!(
        text.starts_with("path,ref_id,title,ref_path,query_start_s,query_end_s,ref_start_s,ref_end_s,speed,score,confidence,"),
        "{text}"
    );
    let rows = csv_rows(&out);
    let status: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["path"].as_str(), r["status"].as_str()))
        .collect();
    let (h, c, b) = (ps(&hit), ps(&clean), ps(&bad));
    assert_eq!(
        status,
        vec![
            (h.as_str(), "matched"),
            (c.as_str(), "clean"),
            (b.as_str(), "error")
        ]
    );
    assert!(rows[2]["error"].contains(&b), "{rows:?}");
    assert!(rows[1]["ref_id"].is_empty() && rows[1]["error"].is_empty());
    assert_eq!(rows[1]["sha256"], sha_of(&clean));
    assert!(rows[0]["duration_s"].parse::<f64>().unwrap() > 7.0);
}

/// An index of songs 11, 12, 13 (`s{seed}.wav`, 12 s) with group a, a, b.
fn three_songs(name: &str) -> Scratch {
    let s = Scratch::new(name);
    for (seed, group) in [(11u64, "a"), (12, "a"), (13, "b")] {
        let p = s.path(&format!("s{seed}.wav"));
        write_song(&p, seed, 12.0);
        let g = format!("group={group}");
        let out = run(&s.db(), &["index", "--meta", &g, &ps(&p)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    s
}

fn titles(db: &Path) -> Vec<String> {
    tracks(db).into_iter().map(|t| t.title).collect()
}

#[test]
fn remove_and_export_accept_a_sha256_or_a_unique_prefix() {
    let s = three_songs("ids-sha");
    let all = tracks(&s.db());
    let pack = s.path("one.nshpack");
    let out = run(&s.db(), &["export", "--out", &ps(&pack), &all[1].sha256]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = s.path("other.db");
    assert_eq!(code(&run(&other, &["import", &ps(&pack)])), 0);
    assert_eq!(titles(&other), vec!["s12"]);

    let out = run(&s.db(), &["remove", &all[0].sha256[..10]]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(titles(&s.db()), vec!["s12", "s13"]);
    // Upper case is the same SHA.
    let out = run(&s.db(), &["remove", &all[2].sha256[..16].to_uppercase()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(titles(&s.db()), vec!["s12"]);
}

#[test]
fn an_ambiguous_or_too_short_sha_prefix_is_refused() {
    use nasheed::fingerprint::{fingerprint, FingerprintParams, Side};
    use nasheed::index::{NewTrack, SqliteStore, Store};
    let s = Scratch::new("ids-ambiguous");
    let params = FingerprintParams::default();
    {
        let mut store = SqliteStore::open(&s.db(), &params.id()).unwrap();
        let song = nasheed_harness::synth::song(3, 5.0, params.sample_rate);
        let prints = fingerprint(&song, &params, Side::Reference);
        for (i, tail) in ["0", "1"].iter().enumerate() {
            let track = NewTrack {
                path: format!("t{i}.wav"),
                sha256: format!("deadbeef{}", tail.repeat(56)),
                title: format!("t{i}"),
                meta: Default::default(),
                duration_s: 5.0,
            };
            store.add_track(&track, &prints).unwrap();
        }
    }
    let out = run(&s.db(), &["remove", "deadbeef"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
    let out = run(
        &s.db(),
        &["export", "--out", &ps(&s.path("x.nshpack")), "deadbeef"],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
    assert!(!s.path("x.nshpack").exists());
    // Four hex digits could name many tracks of a large index: refused when parsed.
    let out = run(&s.db(), &["remove", "dead"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("at least 8 hex digits"),
        "{}",
        stderr(&out)
    );
    assert_eq!(titles(&s.db()), vec!["t0", "t1"]);
    let out = run(&s.db(), &["remove", "deadbeef1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(titles(&s.db()), vec!["t0"]);
}

#[test]
fn remove_where_removes_every_track_with_that_metadata() {
    let s = three_songs("ids-remove-where");
    let out = run(&s.db(), &["remove", "--where", "group=a"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(titles(&s.db()), vec!["s13"]);
    // Nothing matching is an error, and nothing is removed.
    let out = run(&s.db(), &["remove", "--where", "group=zzz"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("group=zzz"), "{}", stderr(&out));
    assert_eq!(titles(&s.db()), vec!["s13"]);
}

#[test]
fn tag_sets_and_unsets_metadata_and_the_title_of_pack_imported_tracks() {
    // Tracks that came from a pack have no audio to re-index: tag is the only way to fix them.
    let src = three_songs("ids-tag-src");
    let pack = src.path("all.nshpack");
    assert_eq!(code(&run(&src.db(), &["export", "--out", &ps(&pack)])), 0);
    let s = Scratch::new("ids-tag");
    assert_eq!(code(&run(&s.db(), &["import", &ps(&pack)])), 0);
    let before = tracks(&s.db());
    let s12 = before.iter().find(|t| t.title == "s12").unwrap().clone();

    let out = run(
        &s.db(),
        &[
            "tag",
            &s12.sha256[..12],
            "--title",
            "Chant twelve",
            "--set",
            "language=ar",
            "--unset",
            "group",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(
        &s.db(),
        &["tag", "--where", "group=a", "--set", "reviewed=yes"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let after = tracks(&s.db());
    let t12 = after.iter().find(|t| t.id == s12.id).unwrap();
    assert_eq!(t12.title, "Chant twelve");
    assert_eq!(t12.sha256, s12.sha256, "the identity stays");
    assert_eq!(
        t12.meta,
        BTreeMap::from([("language".to_string(), "ar".to_string())])
    );
    let t11 = after.iter().find(|t| t.title == "s11").unwrap();
    assert_eq!(t11.meta["reviewed"], "yes");
    assert!(!after
        .iter()
        .find(|t| t.title == "s13")
        .unwrap()
        .meta
        .contains_key("reviewed"));

    // The scan reports the corrected title and metadata.
    let clip = s.path("clip.wav");
    write_cut(&clip, 12, 2.0, 10.0);
    let out = run(&s.db(), &["scan", "--format", "jsonl", &ps(&clip)]);
    let m = &tagged(&out)[0].matches[0];
    assert_eq!((m.ref_id, m.title.as_str()), (s12.id, "Chant twelve"));
    assert_eq!(m.meta["language"], "ar");
}

#[test]
fn tag_changes_nothing_when_one_track_named_does_not_exist() {
    let s = three_songs("ids-tag-missing");
    let before = tracks(&s.db());
    let out = run(&s.db(), &["tag", "1", "42", "--set", "group=c"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("42"), "{}", stderr(&out));
    let after = tracks(&s.db());
    assert_eq!(
        after.iter().map(|t| &t.meta).collect::<Vec<_>>(),
        before.iter().map(|t| &t.meta).collect::<Vec<_>>()
    );
    // A title is for one track.
    let out = run(&s.db(), &["tag", "--where", "group=a", "--title", "x"]);
    assert_eq!(code(&out), 2);
    assert_eq!(titles(&s.db()), vec!["s11", "s12", "s13"]);
    // Packs are read-only.
    let pack = s.path("p.nshpack");
    assert_eq!(code(&run(&s.db(), &["export", "--out", &ps(&pack)])), 0);
    let out = run(&pack, &["tag", "1", "--set", "group=c"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
}

#[test]
fn version_names_the_fingerprint_id_and_the_schema_version() {
    let out = run(Path::new("unused.db"), &["--version"]);
    assert_eq!(code(&out), 0);
    let line = stdout(&out);
    let id = nasheed::fingerprint::FingerprintParams::default().id();
    assert!(line.starts_with("nasheed "), "{line}");
    assert!(
        line.contains(&id)
            && line.contains(&format!(
                "schema {}",
                nasheed::index::sqlite::SCHEMA_VERSION
            )),
        "{line}"
    );
}

#[test]
fn an_index_of_another_fingerprint_version_can_be_listed_counted_and_exported_not_scanned() {
    let s = tagged_index("ids-other-version");
    let old = "fp0-0123456789ab";
    rusqlite::Connection::open(s.db())
        .unwrap()
        .execute("UPDATE meta SET value = ?1 WHERE key = 'params_id'", [old])
        .unwrap();
    let before = std::fs::read(s.db()).unwrap();

    let out = run(&s.db(), &["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("ref"), "{}", stdout(&out));
    let out = run(&s.db(), &["stats", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["tracks"].as_u64(), v["params_id"].as_str()),
        (Some(1), Some(old))
    );
    let pack = s.path("old.nshpack");
    let out = run(&s.db(), &["export", "--out", &ps(&pack)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The pack keeps the index's own fingerprint id: it can be listed, not scanned.
    let out = run(&pack, &["list", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let clip = s.path("clip.wav");
    write_cut(&clip, 5, 2.0, 10.0);
    let current = nasheed::fingerprint::FingerprintParams::default().id();
    for db in [s.db(), pack] {
        let out = run(&db, &["scan", &ps(&clip)]);
        assert_eq!(code(&out), 2);
        let err = stderr(&out);
        assert!(err.contains(old) && err.contains(&current), "{err}");
    }
    assert_eq!(
        std::fs::read(s.db()).unwrap(),
        before,
        "inspection wrote to the index"
    );
}

#[test]
fn a_db_in_a_missing_directory_is_named_once_with_what_is_wrong() {
    let s = Scratch::new("ids-missing-dir");
    let song = s.path("song.wav");
    write_song(&song, 8, 5.0);
    let db = s.path("no/such/dir/x.db");
    let pack = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fingerprints/demo.nshpack");
    let (song, pack) = (ps(&song), ps(&pack));
    for args in [["index", &song], ["import", &pack]] {
        let out = run(&db, &args);
        assert_eq!(code(&out), 2);
        let err = stderr(&out);
        assert_eq!(err.matches("x.db").count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("does not exist") && !err.contains("code 14"),
            "{err}"
        );
    }
}

#[test]
fn a_failed_import_leaves_no_database_behind() {
    let s = Scratch::new("ids-failed-import");
    let junk = s.path("junk.nshpack");
    std::fs::write(&junk, b"not a pack").unwrap();
    let db = s.path("new.db");
    let out = run(&db, &["import", &ps(&junk)]);
    assert_eq!(code(&out), 2);
    assert!(!db.exists(), "an empty database was left behind");
    assert!(!s.path("new.db-wal").exists());
}

#[test]
fn stats_on_an_empty_index_prints_no_size_per_audio_hour() {
    let s = Scratch::new("ids-empty-stats");
    let junk = s.path("junk.wav");
    std::fs::write(&junk, b"junk").unwrap();
    assert_eq!(code(&run(&s.db(), &["index", &ps(&junk)])), 2);
    let out = run(&s.db(), &["stats"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("MB per audio hour"), "{text}");
    assert!(text.contains("tracks: 0"), "{text}");
}

#[test]
fn text_scan_errors_name_the_path_once() {
    let s = tagged_index("ids-text-errors");
    let bad = s.path("bad.mp3");
    std::fs::write(&bad, vec![1u8; 4000]).unwrap();
    let out = run(&s.db(), &["scan", &ps(&bad)]);
    assert_eq!(code(&out), 2);
    let line = stdout(&out);
    assert_eq!(line.matches("bad.mp3").count(), 1, "{line}");
    assert!(
        line.starts_with(&format!("{}: error: ", ps(&bad))),
        "{line}"
    );
    // Not on a terminal: the error reaches stderr as well.
    assert!(stderr(&out).contains("error: "), "{}", stderr(&out));
}

#[test]
fn quiet_prints_only_the_inputs_that_matched() {
    let s = tagged_index("ids-quiet");
    let hit = s.path("hit.wav");
    write_cut(&hit, 5, 3.0, 11.0);
    let clean = s.path("clean.wav");
    write_song(&clean, 78, 6.0);
    let bad = s.path("bad.mp3");
    std::fs::write(&bad, vec![3u8; 4000]).unwrap();
    let out = run(
        &s.db(),
        &["scan", "--quiet", &ps(&hit), &ps(&clean), &ps(&bad)],
    );
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("hit.wav") && text.contains("ref"), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("bad.mp3") && !err.contains("summary:"),
        "{err}"
    );
}

#[test]
fn color_always_paints_text_and_never_or_no_color_does_not() {
    let s = tagged_index("ids-color");
    let hit = s.path("hit.wav");
    write_cut(&hit, 5, 3.0, 11.0);
    let h = ps(&hit);
    let out = run(&s.db(), &["scan", "--color", "always", &h]);
    assert!(out.stdout.contains(&0x1b), "{}", stdout(&out));
    for args in [&["scan", "--color", "never", &h][..], &["scan", &h][..]] {
        let out = run(&s.db(), args);
        assert_eq!(code(&out), 1);
        assert!(!out.stdout.contains(&0x1b), "{args:?}");
    }
    // NO_COLOR is honoured by auto (here stdout is a pipe, so auto is off anyway; the flag
    // parses and the output stays plain).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .env("NO_COLOR", "1")
        .args(["--db", &ps(&s.db()), "scan", "--color", "auto", &h])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(!out.stdout.contains(&0x1b));
}

#[test]
fn completions_and_a_man_page_are_generated_from_the_cli() {
    let db = Path::new("unused.db");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(db, &["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("nasheed") && script.contains("scan"),
            "{shell}"
        );
        assert!(script.contains("min-confidence"), "{shell}");
    }
    let out = run(db, &["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("nasheed") && page.contains("scan"));
}

#[test]
fn help_shows_examples_for_each_command_and_the_exit_codes_of_scan() {
    let db = Path::new("unused.db");
    let out = run(db, &["scan", "--help"]);
    let help = stdout(&out);
    assert!(
        help.contains("Exit codes: 0 no match; 1 at least one match"),
        "{help}"
    );
    for cmd in [
        "index", "scan", "list", "stats", "export", "import", "remove", "tag",
    ] {
        let out = run(db, &[cmd, "--help"]);
        assert_eq!(code(&out), 0, "{cmd}");
        let help = stdout(&out);
        assert!(
            help.contains("Examples:") && help.contains(&format!("nasheed --db refs.db {cmd}")),
            "{cmd}: {help}"
        );
    }
    // list and stats offer only what they implement.
    let out = run(db, &["stats", "--format", "csv"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("possible values: text, json"),
        "{}",
        stderr(&out)
    );
}
