//! Writes one synthetic song as WAV: `cargo run --release --example write_song -- SEED SECONDS OUT.wav`.
fn main() -> std::io::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let seed = a.first().and_then(|s| s.parse().ok()).unwrap_or(1);
    let secs = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(30.0);
    let out = a.get(2).cloned().unwrap_or_else(|| "song.wav".into());
    nasheed_harness::synth::write_wav(
        std::path::Path::new(&out),
        &nasheed_harness::synth::song(seed, secs, 44100),
        44100,
        1,
    )
}
