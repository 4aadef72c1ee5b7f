//! Every supported container and codec decodes, and an excerpt in it is found at the right place.
//! The fixtures are one excerpt (7.0–13.0 s of synthetic song 1) encoded by `tests/fixtures/make.sh`.

mod common;
use common::*;

/// Offset of the excerpt in song 1 (s).
const EXCERPT_AT: f64 = 7.0;

#[test]
fn every_format_is_found_at_its_offset() {
    let s = Scratch::new("formats");
    let song = s.path("song1.wav");
    write_song(&song, 1, 30.0);
    index(&s.db(), &[&song]);
    let names = [
        "excerpt.mp3",
        "excerpt.m4a",
        "excerpt.aac",
        "excerpt_video.mp4",
        "excerpt_video.mov",
        "excerpt.ogg",
        "excerpt.opus",
        "excerpt.webm",
        "excerpt.mkv",
        "excerpt.flac",
        "excerpt_alac.m4a",
        "excerpt.aiff",
        "excerpt_s16.wav",
        "excerpt_s24.wav",
        "excerpt_f32.wav",
        "excerpt_mulaw.wav",
        "excerpt_ima_adpcm.wav",
        "excerpt_ms_adpcm.wav",
    ];
    let paths: Vec<_> = names.iter().map(|n| fixtures().join(n)).collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let (code, recs) = scan(&s.db(), &refs);
    assert_eq!(code, 1, "every input matches");
    assert_eq!(recs.len(), names.len());
    for (name, r) in names.iter().zip(&recs) {
        assert!(r.error.is_none(), "{name}: {:?}", r.error);
        assert!(
            (r.duration_s - 6.0).abs() < 0.2,
            "{name}: duration {}",
            r.duration_s
        );
        assert_eq!(r.matches.len(), 1, "{name}: {:?}", r.matches);
        let m = &r.matches[0];
        assert_eq!(m.title, "song1", "{name}");
        assert!(
            (m.offset() - EXCERPT_AT).abs() <= 0.05,
            "{name}: offset {:.3}",
            m.offset()
        );
        assert!(m.confidence > 0.9, "{name}: confidence {}", m.confidence);
    }
}
