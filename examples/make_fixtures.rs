//! Writes the synthetic audio behind the test fixtures and the README demo as WAV files:
//! `cargo run --release --example make_fixtures -- OUT_DIR`. `tests/fixtures/make.sh` and
//! `examples/make.sh` then encode them (ffmpeg) into the committed formats.
use nasheed_harness::synth;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/fixtures".into());
    let out = Path::new(&out);
    std::fs::create_dir_all(out)?;
    // Test reference (seed 1) and an excerpt of it: 7.0 s to 13.0 s, stereo 44.1 kHz.
    let rate = 44100;
    let song = synth::song(1, 30.0, rate);
    let clip = &song[7 * rate as usize..13 * rate as usize];
    let stereo: Vec<f32> = clip.iter().flat_map(|&x| [x, x * 0.8]).collect();
    synth::write_wav(&out.join("excerpt.wav"), &stereo, rate, 2)?;
    // Demo references (seeds 101..=103, 40 s) for the README's first command, and 104, which is
    // not indexed (the demo's "no match" clip).
    for seed in 101..=104u64 {
        synth::write_wav(
            &out.join(format!("demo{seed}.wav")),
            &synth::song(seed, 40.0, rate),
            rate,
            1,
        )?;
    }
    Ok(())
}
