//! The evaluation harness on a tiny generated corpus: its plumbing and scoring, not its speed.

mod common;
use common::*;
use nasheed_harness::synth;

#[test]
fn harness_scores_a_tiny_generated_corpus() {
    let s = Scratch::new("eval-corpus");
    let root = s.path("corpus");
    std::fs::create_dir_all(root.join("refs")).unwrap();
    std::fs::create_dir_all(root.join("queries")).unwrap();
    for seed in 1..=3 {
        write_song(&root.join(format!("refs/r{seed}.wav")), seed, 25.0);
    }
    let rate = 44100usize;
    let mut rows = vec!["query_file,ref_file,ref_offset_s,distortion,clip_len_s,time_scale,pitch_cents,snr_db,ref_id,origin".to_string()];
    for (i, (seed, at)) in [(1u64, 4.0f32), (2, 11.5), (3, 0.5)].iter().enumerate() {
        let song = synth::song(*seed, 25.0, rate as u32);
        let a = (*at * rate as f32) as usize;
        let q = format!("queries/q{i}.wav");
        synth::write_wav(&root.join(&q), &song[a..a + rate * 6], rate as u32, 1).unwrap();
        rows.push(format!(
            "{q},refs/r{seed}.wav,{at},clean_wav,5,1.00,0.0,,r{seed},gen"
        ));
    }
    // Two negatives: a song that is not indexed, and noise.
    synth::write_wav(
        &root.join("queries/n0.wav"),
        &synth::song(42, 6.0, rate as u32),
        rate as u32,
        1,
    )
    .unwrap();
    synth::write_wav(
        &root.join("queries/n1.wav"),
        &synth::noise(5, rate * 6, 0.1),
        rate as u32,
        1,
    )
    .unwrap();
    rows.push("queries/n0.wav,,,clean_wav,5,1.00,0.0,,,heldout".into());
    rows.push("queries/n1.wav,,,noise,5,1.00,0.0,,,noise".into());
    std::fs::write(root.join("ground_truth.csv"), rows.join("\n") + "\n").unwrap();

    let report = nasheed_harness::eval::evaluate(&root, &s.path("eval.db"), false, None).unwrap();
    let a = &report.accuracy;
    assert_eq!(
        (a.overall.n, a.overall.hits, a.overall.aligned),
        (3, 3, 3),
        "{a:?}"
    );
    assert_eq!((a.negatives, a.false_positives), (2, 0));
    assert_eq!(a.by_length["5"].n, 3);
    assert_eq!(report.index.tracks, 3);
    assert!(report.index.hashes > 0 && report.index.bytes > 0);
    assert_eq!(report.answers.len(), 5);
    assert!(report.answers.iter().all(|x| x.error.is_none()));
    assert!(report.margins.true_score_quantiles[2] > report.margins.wrong_score_quantiles[2]);
}
