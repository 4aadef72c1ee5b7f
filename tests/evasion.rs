//! Evasion edits made in the test itself: sped up (resampling), tempo-only (WSOLA), pitch-only
//! (WSOLA then resampling), and both moved apart. Each is found with the right reference, offset
//! and factors, in the one lookup pass the triplets make (issue 13).

mod common;
use common::*;
use nasheed_harness::synth;

const RATE: u32 = 44100;
const AT: f64 = 6.0; // where the excerpt starts in the reference (s)

fn setup(name: &str) -> (Scratch, Vec<f32>) {
    let s = indexed_songs(name, 1..=3, 30.0);
    let song = synth::song(2, 30.0, RATE);
    let a = (AT * RATE as f64) as usize;
    (s, song[a..a + 10 * RATE as usize].to_vec())
}

/// Scans one clip and returns its only match, checking reference and offset.
fn check(s: &Scratch, name: &str, clip: &[f32], time_scale: f64) -> MatchOut {
    let path = s.path(name);
    synth::write_wav(&path, clip, RATE, 1).unwrap();
    let (code, mut recs) = scan(&s.db(), &[&path]);
    assert_eq!(code, 1, "{name}: no match");
    let r = recs.remove(0);
    assert_eq!(r.matches.len(), 1, "{name}: {:?}", r.matches);
    let m = r.matches.into_iter().next().unwrap();
    assert_eq!(m.title, "ref2", "{name}");
    let clip_s = clip.len() as f64 / RATE as f64;
    let tol = 0.1 + 0.02 * clip_s;
    assert!(
        (m.offset() - AT).abs() <= tol,
        "{name}: offset {:.3}, want {AT} ± {tol:.2}",
        m.offset()
    );
    assert!(
        (m.speed - time_scale).abs() <= 0.021,
        "{name}: speed {} want {time_scale}",
        m.speed
    );
    m
}

#[test]
fn sped_up_and_slowed_down_uploads_are_found_with_their_speed() {
    let (s, clip) = setup("evasion-speed");
    for speed in [1.08, 0.93] {
        // Played `speed` times faster: pitch and tempo up together.
        let edited = resample(&clip, (RATE as f64 * speed) as u32, RATE);
        let m = check(&s, &format!("speed{speed}.wav"), &edited, speed);
        assert_eq!(
            m.pitch_cents, None,
            "a speed change moves pitch and tempo together"
        );
    }
}

#[test]
fn tempo_only_changes_are_found_with_their_tempo() {
    let (s, clip) = setup("evasion-tempo");
    for tempo in [1.1, 0.9] {
        let edited = stretch(&clip, tempo);
        let m = check(&s, &format!("tempo{tempo}.wav"), &edited, tempo);
        let cents = m
            .pitch_cents
            .expect("tempo alone changed: pitch_cents is reported");
        assert!(cents.abs() <= 20.0, "pitch moved {cents} cents");
    }
}

#[test]
fn pitch_only_shifts_are_found_with_their_shift() {
    let (s, clip) = setup("evasion-pitch");
    for cents in [150.0f64, -120.0] {
        let p = 2f64.powf(cents / 1200.0);
        // Longer by p without pitch change, then played p times faster: same length, pitch × p.
        let edited = resample(&stretch(&clip, 1.0 / p), (RATE as f64 * p) as u32, RATE);
        let m = check(&s, &format!("pitch{cents}.wav"), &edited, 1.0);
        let got = m.pitch_cents.expect("pitch_cents is reported");
        assert!(
            (got - cents).abs() <= 20.0,
            "pitch {got} cents, want {cents}"
        );
    }
}

/// Short-video edits past the old ±12 % / ±200 c grid: "sped up" / nightcore, "slowed", large
/// pitch shifts, large tempo changes. Each is found with its factor within 1 % / 20 cents.
#[test]
fn short_video_edits_far_from_the_original_are_found_with_their_factors() {
    let (s, clip) = setup("evasion-wide");
    for speed in [1.25, 0.8] {
        let edited = resample(&clip, (RATE as f64 * speed) as u32, RATE);
        let m = check(&s, &format!("wide-speed{speed}.wav"), &edited, speed);
        assert!(
            (m.speed / speed - 1.0).abs() <= 0.01,
            "speed {}: reported {}",
            speed,
            m.speed
        );
        assert_eq!(
            m.pitch_cents, None,
            "speed {speed}: pitch and tempo together"
        );
    }
    for tempo in [1.25, 0.8] {
        let m = check(
            &s,
            &format!("wide-tempo{tempo}.wav"),
            &stretch(&clip, tempo),
            tempo,
        );
        assert!(
            (m.speed / tempo - 1.0).abs() <= 0.02,
            "tempo {tempo}: reported speed {}",
            m.speed
        );
        let cents = m
            .pitch_cents
            .expect("tempo alone changed: pitch_cents is reported");
        assert!(
            cents.abs() <= 20.0,
            "tempo {tempo}: pitch moved {cents} cents"
        );
    }
    for cents in [300.0f64, -300.0] {
        let p = 2f64.powf(cents / 1200.0);
        let edited = resample(&stretch(&clip, 1.0 / p), (RATE as f64 * p) as u32, RATE);
        let m = check(&s, &format!("wide-pitch{cents}.wav"), &edited, 1.0);
        let got = m.pitch_cents.expect("pitch_cents is reported");
        assert!(
            (got - cents).abs() <= 20.0,
            "pitch {got} cents, want {cents}"
        );
    }
}

/// The rest of the range one lookup pass covers: every speed a short-video app offers, and
/// tempo and pitch moved by different amounts (off every line a grid of warps would try).
#[test]
fn speeds_across_the_range_and_tempo_with_pitch_are_found_with_their_factors() {
    let (s, clip) = setup("evasion-plane");
    for speed in [0.85, 1.15, 1.2] {
        let edited = resample(&clip, (RATE as f64 * speed) as u32, RATE);
        let m = check(&s, &format!("plane-speed{speed}.wav"), &edited, speed);
        assert!(
            (m.speed / speed - 1.0).abs() <= 0.01,
            "speed {speed}: {}",
            m.speed
        );
        assert_eq!(m.pitch_cents, None, "speed {speed}");
    }
    // Tempo 1.15 and +200 cents.
    let p = 2f64.powf(200.0 / 1200.0);
    let edited = resample(&stretch(&clip, 1.15 / p), (RATE as f64 * p) as u32, RATE);
    let m = check(&s, "plane-tempo-pitch.wav", &edited, 1.15);
    let cents = m
        .pitch_cents
        .expect("pitch moved apart from tempo: reported");
    assert!(
        (cents - 200.0).abs() <= 20.0,
        "pitch {cents} cents, want +200"
    );
}

/// A song that is not indexed finds nothing, whatever speed it is played at: the wide search
/// does not buy its range with chance matches.
#[test]
fn an_unrelated_song_at_any_speed_finds_nothing() {
    let s = indexed_songs("evasion-unrelated", 1..=3, 30.0);
    let other = synth::song(9, 12.0, RATE);
    for speed in [1.0, 1.25, 0.8] {
        let path = s.path(&format!("other{speed}.wav"));
        let edited = resample(&other, (RATE as f64 * speed) as u32, RATE);
        synth::write_wav(&path, &edited, RATE, 1).unwrap();
        let (code, recs) = scan(&s.db(), &[&path]);
        assert_eq!(code, 0, "speed {speed}: {:?}", recs[0].matches);
        assert!(recs[0].matches.is_empty());
    }
}

#[test]
fn a_stereo_upload_with_one_channel_inverted_is_found() {
    // Right = -left: a plain mix to mono is silence, so the upload would scan clean.
    let (s, clip) = setup("evasion-antiphase");
    let stereo: Vec<f32> = clip.iter().flat_map(|&x| [0.8 * x, -0.8 * x]).collect();
    let path = s.path("antiphase.wav");
    synth::write_wav(&path, &stereo, RATE, 2).unwrap();
    let (code, recs) = scan(&s.db(), &[&path]);
    assert_eq!(code, 1, "{recs:?}");
    assert_eq!(recs[0].matches.len(), 1, "{:?}", recs[0].matches);
    assert_eq!(recs[0].matches[0].title, "ref2");
    assert!((recs[0].matches[0].offset() - AT).abs() <= 0.3);
}
