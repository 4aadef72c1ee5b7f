//! The invariant first pass's stages (issue 13), run end to end on generated audio: refined
//! peaks → triplets → lookup → vote → fine pass → the verifier, over the whole edit range the
//! pass is meant to cover in one lookup. Each edit must give back the right reference, the
//! offset, and the speed and pitch factors. The engine does not use this pass yet; this test
//! pins what the stages deliver before it does.

mod common;
use std::collections::HashMap;

use common::{resample, stretch};
use nasheed::fingerprint::triplets::{self, FinePeak, TripletParams};
use nasheed::fingerprint::{peaks, spectrogram, FingerprintParams, Peak};
use nasheed::ids::TrackId;
use nasheed::matching::invariant::{self, TupleHit};
use nasheed::matching::verify::{verify_candidates, QueryPeaks};
use nasheed::matching::{Match, MatchParams, References};
use nasheed_harness::synth;

const RATE: u32 = 44100;
/// Where the excerpt starts in reference 1 (s).
const AT: f64 = 6.0;

fn fine_peaks(samples_44k: &[f32], params: &FingerprintParams) -> (Vec<FinePeak>, u32) {
    let x = resample(samples_44k, RATE, params.sample_rate);
    let spec = spectrogram::spectrogram(&x, params);
    let cands = peaks::candidate_peaks(&spec, 0, params);
    (triplets::refine(&spec, 0, &cands), spec.len() as u32)
}

/// Three generated songs as an in-memory index: triplet postings by key, stored peaks, lengths.
struct Refs {
    postings: HashMap<u32, Vec<(u32, f32, f32, f32)>>,
    peaks: Vec<Vec<Peak>>,
    frames: Vec<u32>,
}

impl References for Refs {
    type Error = std::convert::Infallible;
    fn lookup(&self, _: &[u32], _: &mut dyn FnMut(u32, TrackId, u32)) -> Result<(), Self::Error> {
        Ok(())
    }
    fn peaks(&self, t: TrackId) -> Result<Vec<Peak>, Self::Error> {
        Ok(self.peaks[t.0 as usize].clone())
    }
    fn frames(&self, t: TrackId) -> u32 {
        self.frames[t.0 as usize]
    }
}

fn index(songs: &[Vec<f32>], params: &FingerprintParams, tp: &TripletParams) -> Refs {
    let mut refs = Refs {
        postings: HashMap::new(),
        peaks: Vec::new(),
        frames: Vec::new(),
    };
    for (r, song) in songs.iter().enumerate() {
        let (fine, frames) = fine_peaks(song, params);
        for t in triplets::reference_triplets(&fine, tp, params.rank_window) {
            refs.postings
                .entry(t.key)
                .or_default()
                .push((r as u32, t.t, t.l, t.span));
        }
        let plain: Vec<Peak> = fine.iter().map(|f| f.peak).collect();
        refs.peaks.push(peaks::select_peaks(
            &plain,
            params.rank_window,
            params.verify_peaks_per_window,
        ));
        refs.frames.push(frames);
    }
    refs
}

/// The verified match of an upload: reference, reference time of upload frame 0 (s), time
/// factor, pitch shift (cents).
fn best_match(refs: &Refs, upload: &[f32]) -> Option<(u32, f64, f64, f64)> {
    let params = FingerprintParams::default();
    let tp = TripletParams::default();
    let (fine, frames) = fine_peaks(upload, &params);
    let mut hits: Vec<TupleHit> = Vec::new();
    let mut keys = Vec::new();
    for q in triplets::query_triplets(&fine, &tp, params.rank_window) {
        triplets::probes(&q, &tp, &mut keys);
        for k in &keys {
            for &(r, t, l, span) in refs.postings.get(k).into_iter().flatten() {
                hits.extend(invariant::hit(&q, r, (t, l, span), &tp));
            }
        }
    }
    let plain: Vec<Peak> =
        triplets::select(&fine, params.rank_window, params.query.peaks_per_window)
            .iter()
            .map(|f| f.peak)
            .collect();
    let query = QueryPeaks::new(&plain, params.bins, frames);
    let mut touched: Vec<u32> = hits.iter().map(|h| h.reference).collect();
    touched.sort_unstable();
    touched.dedup();
    let trials = invariant::alignments_searched(
        touched.iter().map(|&r| refs.frames[r as usize]),
        frames,
        &tp,
    );
    let cands: Vec<Match> = invariant::vote(&hits)
        .iter()
        .take(5)
        .map(|c| invariant::fine_pass(c, &query, &refs.peaks[c.reference as usize]))
        .map(|c| c.to_match(TrackId(c.reference as i64)))
        .collect();
    let Ok(verified) = verify_candidates(refs, &query, cands, trials, &MatchParams::default());
    let m = verified
        .into_iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))?;
    Some((
        m.track.0 as u32,
        m.line.intercept * params.frame_seconds(),
        m.line.time,
        1200.0 * m.warp.freq.log2(),
    ))
}

/// One edit: the match must name reference 1, put upload frame 0 at `AT` (± 0.1 s + 2 % of
/// the clip), and give the time factor within 1 % and the pitch within 20 cents.
fn check(refs: &Refs, name: &str, upload: &[f32], time: f64, cents: f64) {
    let Some((r, at, got_time, got_cents)) = best_match(refs, upload) else {
        panic!("{name}: no verified match");
    };
    assert_eq!(r, 1, "{name}: wrong reference");
    let clip_s = upload.len() as f64 / RATE as f64;
    assert!(
        (at - AT).abs() <= 0.1 + 0.02 * clip_s,
        "{name}: reference offset {at:.3} s, want {AT}"
    );
    assert!(
        (got_time / time - 1.0).abs() <= 0.01,
        "{name}: time factor {got_time:.4}, want {time}"
    );
    assert!(
        (got_cents - cents).abs() <= 20.0,
        "{name}: pitch {got_cents:+.0} cents, want {cents:+.0}"
    );
}

#[test]
fn one_lookup_pass_finds_every_short_video_edit_with_its_factors() {
    let params = FingerprintParams::default();
    let songs: Vec<Vec<f32>> = (1..=3).map(|s| synth::song(s, 30.0, RATE)).collect();
    let refs = index(&songs, &params, &TripletParams::default());
    let a = (AT * RATE as f64) as usize;
    let clip = &songs[1][a..a + 10 * RATE as usize];
    // Played `s` times faster: reference seconds per upload second = s, pitch up by s.
    for s in [0.80, 0.85, 1.15, 1.20, 1.25] {
        let edited = resample(clip, (RATE as f64 * s) as u32, RATE);
        check(&refs, &format!("speed {s}"), &edited, s, 1200.0 * s.log2());
    }
    for t in [0.80, 1.25] {
        check(&refs, &format!("tempo {t}"), &stretch(clip, t), t, 0.0);
    }
    for cents in [300.0f64, -300.0] {
        let p = 2f64.powf(cents / 1200.0);
        let edited = resample(&stretch(clip, 1.0 / p), (RATE as f64 * p) as u32, RATE);
        check(&refs, &format!("pitch {cents:+}"), &edited, 1.0, cents);
    }
    // Tempo 1.15 and +200 cents: neither a speed, a pitch nor a tempo line of the old grid.
    let p = 2f64.powf(200.0 / 1200.0);
    let edited = resample(&stretch(clip, 1.15 / p), (RATE as f64 * p) as u32, RATE);
    check(&refs, "tempo 1.15 + 200 c", &edited, 1.15, 200.0);
}

#[test]
fn an_unrelated_song_finds_nothing() {
    let params = FingerprintParams::default();
    let songs: Vec<Vec<f32>> = (1..=3).map(|s| synth::song(s, 30.0, RATE)).collect();
    let refs = index(&songs, &params, &TripletParams::default());
    let other = synth::song(9, 12.0, RATE);
    for s in [1.0, 1.25, 0.8] {
        let edited = resample(&other, (RATE as f64 * s) as u32, RATE);
        assert_eq!(best_match(&refs, &edited), None, "speed {s}");
    }
}
