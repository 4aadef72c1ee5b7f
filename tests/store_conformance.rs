//! One conformance suite for the `Store` interface, run against every backend behind
//! `index::open`: SQLite (a file) and PostgreSQL (a real server, see `common::pg`).
//! Each check gets a fresh, empty location.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use nasheed::fingerprint::triplets::StoredTriplet;
use nasheed::fingerprint::{fingerprint, FingerprintParams, Landmark, Peak, Prints, Side};
use nasheed::index::{self, Access, IndexError, Metadata, NewTrack, Store, TrackId};

const PARAMS: &str = "fp-conformance";

fn open(at: &Path, access: Access) -> Box<dyn Store + Send> {
    index::open(at, PARAMS, access).unwrap_or_else(|e| panic!("open {}: {e}", at.display()))
}

fn track(name: &str, sha: char) -> NewTrack {
    let mut meta = Metadata::new();
    meta.insert("group".into(), format!("g-{name}"));
    NewTrack {
        path: format!("refs/{name}.flac"),
        sha256: sha.to_string().repeat(64),
        title: name.into(),
        meta,
        duration_s: 12.5,
    }
}

/// Landmarks `(hash, frame)` and a few peaks, deterministic per seed.
fn prints(seed: u32, n: u32) -> Prints {
    let mut landmarks: Vec<Landmark> = (0..n)
        .map(|i| Landmark {
            hash: (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 5000,
            frame: i * 3 + seed,
        })
        .collect();
    // A repeated landmark is stored once.
    landmarks.push(landmarks[0]);
    let peaks = (0..20)
        .map(|i| Peak {
            frame: i * 7 + seed,
            bin: (10 + i * 3) as u16,
            salience: 0.0,
            sub: [0, 0],
        })
        .collect();
    Prints { landmarks, peaks }
}

/// Every (hash, track, frame) the store answers for `hashes`.
fn hits(store: &dyn Store, hashes: &[u32]) -> BTreeSet<(u32, i64, u32)> {
    capped_hits(store, hashes, usize::MAX)
}

/// Every (hash, track, frame) the store answers for `hashes`, at a cap.
fn capped_hits(store: &dyn Store, hashes: &[u32], cap: usize) -> BTreeSet<(u32, i64, u32)> {
    let mut out = BTreeSet::new();
    store
        .lookup(hashes, cap, &mut |h, t, f| {
            out.insert((h, t.0, f));
        })
        .unwrap();
    out
}

/// `hits` without the hashes stored more than `cap` times.
fn within_cap(hits: &BTreeSet<(u32, i64, u32)>, cap: usize) -> BTreeSet<(u32, i64, u32)> {
    let count = |h: u32| hits.iter().filter(|x| x.0 == h).count();
    hits.iter().copied().filter(|x| count(x.0) <= cap).collect()
}

fn expected(id: TrackId, p: &Prints) -> BTreeSet<(u32, i64, u32)> {
    p.landmarks
        .iter()
        .map(|l| (l.hash, id.0, l.frame))
        .collect()
}

fn add_lookup_remove(at: &Path) {
    let mut s = open(at, Access::Create);
    let (pa, pb) = (prints(1, 400), prints(2, 300));
    let a = s.add_track(&track("a", 'a'), &pa).unwrap();
    let b = s.add_track(&track("b", 'b'), &pb).unwrap();
    let all: Vec<u32> = (0..5000).collect();
    let mut want = expected(a, &pa);
    want.extend(expected(b, &pb));
    assert_eq!(hits(&*s, &all), want);
    // A cap skips the hashes stored more often, whole.
    assert!(
        within_cap(&want, 1).len() < want.len(),
        "a hash stored twice"
    );
    assert_eq!(capped_hits(&*s, &all, 1), within_cap(&want, 1));
    // Landmarks, peaks and the track rows come back as stored.
    let marks = s.landmarks(&[a]).unwrap();
    let got: BTreeSet<(u32, u32)> = marks[&a].iter().map(|l| (l.hash, l.frame)).collect();
    let stored: BTreeSet<(u32, u32)> = pa.landmarks.iter().map(|l| (l.hash, l.frame)).collect();
    assert_eq!(got, stored);
    assert_eq!(
        marks[&a].len(),
        stored.len(),
        "a repeated landmark is stored once"
    );
    let peaks: Vec<(u32, u16)> = s
        .peaks(a)
        .unwrap()
        .iter()
        .map(|p| (p.frame, p.bin))
        .collect();
    let sent: Vec<(u32, u16)> = pa.peaks.iter().map(|p| (p.frame, p.bin)).collect();
    assert_eq!(peaks, sent);
    let info = s.track(a).unwrap().unwrap();
    assert_eq!(
        (info.title.as_str(), info.path.as_str()),
        ("a", "refs/a.flac")
    );
    assert_eq!(info.meta["group"], "g-a");
    assert_eq!(info.n_hashes as usize, stored.len());
    assert_eq!(s.find_sha(&"b".repeat(64)).unwrap(), Some(b));
    assert_eq!(s.find_sha_prefix("bbbbbbbb").unwrap(), vec![b]);
    assert_eq!(s.tracks().unwrap().len(), 2);
    let st = s.stats().unwrap();
    assert_eq!((st.tracks, st.params_id.as_str()), (2, PARAMS));
    assert!(st.bytes > 0);
    // Metadata edits, all or nothing per call.
    let mut meta = Metadata::new();
    meta.insert("language".into(), "ar".into());
    assert_eq!(s.set_info(&[(a, "A!".into(), meta)]).unwrap(), 1);
    assert_eq!(s.track(a).unwrap().unwrap().title, "A!");
    // Removal takes the track and all its postings.
    assert!(s.remove(a).unwrap());
    assert!(!s.remove(a).unwrap());
    assert_eq!(hits(&*s, &all), expected(b, &pb));
    assert!(s.track(a).unwrap().is_none());
    assert_eq!(s.stats().unwrap().tracks, 1);
    s.compact().unwrap();
    assert_eq!(hits(&*s, &all), expected(b, &pb));
    let want = expected(b, &pb);
    assert!(
        within_cap(&want, 1).len() < want.len(),
        "a hash stored twice"
    );
    assert_eq!(capped_hits(&*s, &all, 1), within_cap(&want, 1));
}

fn duplicates_and_batches(at: &Path) {
    let mut s = open(at, Access::Create);
    let a = s.add_track(&track("a", 'a'), &prints(1, 50)).unwrap();
    // The same content again: refused, nothing of it stored.
    match s.add_track(&track("a2", 'a'), &prints(9, 50)) {
        Err(IndexError::AlreadyIndexed(id)) => assert_eq!(id, a),
        other => panic!("expected AlreadyIndexed, got {:?}", other.map(|_| ())),
    }
    let all: Vec<u32> = (0..5000).collect();
    assert_eq!(hits(&*s, &all), expected(a, &prints(1, 50)));
    // A batch: new tracks added, known ones skipped, in one transaction.
    let batch = vec![
        (track("c", 'c'), prints(3, 40)),
        (track("a3", 'a'), prints(4, 40)),
        (track("d", 'd'), prints(5, 40)),
    ];
    assert_eq!(s.add_tracks(&batch).unwrap(), (2, 1));
    assert_eq!(s.tracks().unwrap().len(), 3);
}

fn two_writers_store_one_content_once(at: &Path) {
    drop(open(at, Access::Create));
    let barrier = Arc::new(Barrier::new(2));
    let results: Vec<Result<TrackId, IndexError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2u32)
            .map(|i| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    let mut s = open(at, Access::Create);
                    barrier.wait();
                    s.add_track(&track(&format!("w{i}"), 'e'), &prints(10 + i, 2000))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok: Vec<TrackId> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(IndexError::AlreadyIndexed(id)) if *id == ok[0])),
        "{results:?}"
    );
    let s = open(at, Access::Read);
    assert_eq!(s.tracks().unwrap().len(), 1);
    let n = s.track(ok[0]).unwrap().unwrap().n_hashes as usize;
    assert_eq!(s.landmarks(&[ok[0]]).unwrap()[&ok[0]].len(), n);
}

fn readers_see_whole_tracks_only(at: &Path) {
    drop(open(at, Access::Create));
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut s = open(at, Access::Create);
            for i in 0..12u32 {
                let sha = char::from_digit(i % 16, 16).unwrap_or('f');
                let mut t = track(&format!("t{i}"), sha);
                t.sha256 = format!("{:064x}", i + 1);
                s.add_track(&t, &prints(20 + i, 3000)).unwrap();
            }
        });
        let reader = open(at, Access::Read);
        let all: Vec<u32> = (0..5000).collect();
        let mut checks = 0;
        while !writer.is_finished() || checks == 0 {
            // Every track listed has all its postings visible.
            let tracks = reader.tracks().unwrap();
            let seen = hits(&*reader, &all);
            for t in &tracks {
                let n = seen.iter().filter(|(_, id, _)| *id == t.id.0).count();
                assert!(
                    n >= t.n_hashes as usize,
                    "track {} half visible: {n} of {}",
                    t.id.0,
                    t.n_hashes
                );
            }
            checks += 1;
        }
        writer.join().unwrap();
    });
    assert_eq!(open(at, Access::Read).tracks().unwrap().len(), 12);
}

/// Prints of a few seconds of synthetic music, as an indexer makes them: they yield triplets.
fn song_prints(seed: u64) -> Prints {
    let params = FingerprintParams::default();
    let samples = nasheed_harness::synth::song(seed, 12.0, params.sample_rate);
    fingerprint(&samples, &params, Side::Reference)
}

/// Every (track, triplet) the store answers for `keys` with `cap`, sorted; each key's hits
/// must come together.
fn triplet_hits(store: &dyn Store, keys: &[u32], cap: usize) -> Vec<(i64, StoredTriplet)> {
    let mut out = Vec::new();
    store
        .lookup_triplets(keys, cap, &mut |t, tr| out.push((t.0, tr)))
        .unwrap();
    let mut runs: Vec<u32> = out.iter().map(|(_, tr)| tr.key).collect();
    runs.dedup();
    let distinct: BTreeSet<u32> = runs.iter().copied().collect();
    assert_eq!(runs.len(), distinct.len(), "a key's hits came apart");
    out.sort_unstable();
    out
}

/// What `triplet_hits` should answer: the stored (track, triplet)s under `keys`, those of keys
/// stored more than `cap` times left out.
fn triplets_expected(
    stored: &[(i64, StoredTriplet)],
    keys: &[u32],
    cap: usize,
) -> Vec<(i64, StoredTriplet)> {
    let keys: BTreeSet<u32> = keys.iter().copied().collect();
    let count = |k: u32| stored.iter().filter(|(_, t)| t.key == k).count();
    let mut out: Vec<_> = stored
        .iter()
        .filter(|(_, t)| keys.contains(&t.key) && count(t.key) <= cap)
        .copied()
        .collect();
    out.sort_unstable();
    out
}

fn triplets_follow_their_track(at: &Path) {
    let mut s = open(at, Access::Create);
    let (pa, pc) = (song_prints(7), song_prints(8));
    let (ta, tc) = (index::triplets_of(&pa), index::triplets_of(&pc));
    assert!(
        ta.len() > 100 && tc.len() > 100,
        "{} {}",
        ta.len(),
        tc.len()
    );
    let a = s.add_track(&track("a", 'a'), &pa).unwrap();
    // The same prints under another SHA-256, so every key of `a` is stored at least twice.
    let b = s.add_track(&track("b", 'b'), &pa).unwrap();
    assert_eq!(
        s.add_tracks(&[(track("c", 'c'), pc.clone())]).unwrap(),
        (1, 0)
    );
    let c = s.find_sha(&"c".repeat(64)).unwrap().unwrap();
    let mut stored: Vec<(i64, StoredTriplet)> = Vec::new();
    for (id, ts) in [(a, &ta), (b, &ta), (c, &tc)] {
        stored.extend(ts.iter().map(|&t| (id.0, t)));
    }
    let mut keys: Vec<u32> = ta.iter().map(|t| t.key).collect();
    keys.dedup();
    // As written, then compacted (SQLite: rows merged into blobs in sections by band).
    for compacted in [false, true] {
        if compacted {
            s.compact().unwrap();
        }
        // Exactly a's triplets, under a and b, plus whatever of c shares their keys.
        let all = triplet_hits(&*s, &keys, usize::MAX);
        let of = |id: TrackId| -> Vec<StoredTriplet> {
            all.iter().filter(|h| h.0 == id.0).map(|h| h.1).collect()
        };
        assert_eq!((of(a), of(b)), (ta.clone(), ta.clone()), "{compacted}");
        assert_eq!(all, triplets_expected(&stored, &keys, usize::MAX));
        // Keys stored more than `cap` times are skipped, counted over the whole store.
        for cap in [0, 1, 2, 3] {
            assert_eq!(
                triplet_hits(&*s, &keys, cap),
                triplets_expected(&stored, &keys, cap),
                "cap {cap}, compacted {compacted}"
            );
        }
        assert!(triplet_hits(&*s, &keys, 0).is_empty());
        assert!(triplet_hits(&*s, &keys, 1).is_empty());
        assert!(triplet_hits(&*s, &[], usize::MAX).is_empty());
    }
    // Removal takes a track's triplets with it.
    assert!(s.remove(a).unwrap());
    stored.retain(|h| h.0 != a.0);
    assert_eq!(
        triplet_hits(&*s, &keys, usize::MAX),
        triplets_expected(&stored, &keys, usize::MAX)
    );
    assert!(s.remove(b).unwrap() && s.remove(c).unwrap());
    let mut every: Vec<u32> = tc.iter().map(|t| t.key).chain(keys).collect();
    every.sort_unstable();
    assert!(triplet_hits(&*s, &every, usize::MAX).is_empty());
}

fn parameters_and_migrations(at: &Path, fresh: &Path) {
    drop(open(at, Access::Create));
    // Migrating twice is a no-op; the parameters are recorded once.
    let s = open(at, Access::Create);
    assert_eq!(s.params_id(), PARAMS);
    drop(s);
    match index::open(at, "fp-other", Access::Read) {
        Err(IndexError::ParamsMismatch {
            stored, current, ..
        }) => {
            assert_eq!((stored.as_str(), current.as_str()), (PARAMS, "fp-other"))
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        index::open(at, "fp-other", Access::Create),
        Err(IndexError::ParamsMismatch { .. })
    ));
    // Inspection reads it whatever built it.
    let inspect = index::open(at, "fp-other", Access::Inspect).unwrap();
    assert_eq!(inspect.params_id(), PARAMS);
    // Nothing there: reading and modifying say so, and create nothing.
    assert!(matches!(
        index::open(fresh, PARAMS, Access::Read),
        Err(IndexError::Missing(_))
    ));
    assert!(matches!(
        index::open(fresh, PARAMS, Access::Modify),
        Err(IndexError::Missing(_))
    ));
}

/// Runs every check, each on a location from `fresh`.
fn conforms(fresh: &mut dyn FnMut(&str) -> PathBuf) {
    add_lookup_remove(&fresh("basic"));
    duplicates_and_batches(&fresh("dups"));
    two_writers_store_one_content_once(&fresh("writers"));
    readers_see_whole_tracks_only(&fresh("readers"));
    triplets_follow_their_track(&fresh("triplets"));
    let (a, b) = (fresh("params"), fresh("missing"));
    parameters_and_migrations(&a, &b);
}

#[test]
fn sqlite_conforms() {
    let dir = common::Scratch::new("conformance-sqlite");
    conforms(&mut |name| dir.path(&format!("{name}.db")));
}

#[test]
fn postgres_conforms() {
    let pg = common::pg::TestPg::start();
    conforms(&mut |name| PathBuf::from(pg.database(name)));
}
