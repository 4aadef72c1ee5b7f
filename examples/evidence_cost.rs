//! What an evidence report costs beyond the scan itself (issue 18: ≤ 1 MB and ≤ 200 ms for a
//! 20 s clip). Builds an index of the example references plus a generated 60 s song, cuts a
//! 20 s clip of that song sped up by 5 %, then runs the release binary alternately without and
//! with `--evidence` and prints the medians of wall time and CPU time, and the report's size.
//!
//! `cargo build --release && cargo run --release --example evidence_cost -- [ROUNDS] [BINARY]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(15);
    let bin = PathBuf::from(args.get(1).map_or("target/release/nasheed", String::as_str));
    let dir = std::env::temp_dir().join(format!("nasheed-evidence-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rate = 44100;
    let song = nasheed_harness::synth::song(7, 60.0, rate);
    let reference = dir.join("song7.wav");
    nasheed_harness::synth::write_wav(&reference, &song, rate, 1)?;
    // 20 s of the upload: 21 s of the song from 15 s on, played 1.05 times as fast.
    let part = &song[15 * rate as usize..36 * rate as usize];
    let mut r = nasheed::audio::Resampler::new((rate as f64 * 1.05) as u32, rate)?;
    let mut clip = Vec::new();
    r.process(part, &mut clip)?;
    r.finish(&mut clip)?;
    let upload = dir.join("clip.wav");
    nasheed_harness::synth::write_wav(&upload, &clip, rate, 1)?;
    let db = dir.join("index.db");
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/refs");
    let status = Command::new(&bin)
        .arg("--db")
        .arg(&db)
        .arg("index")
        .arg(&refs)
        .arg(&reference)
        .output()?
        .status;
    if !status.success() {
        return Err(format!("{}: index failed", bin.display()).into());
    }
    let reports = dir.join("reports");
    let (mut plain, mut with) = (Vec::new(), Vec::new());
    for round in 0..2 * rounds {
        let evidence = round % 2 == 1;
        let mut cmd = Command::new(&bin);
        cmd.arg("--db").arg(&db).args(["scan", "--format", "json"]);
        if evidence {
            cmd.arg("--evidence").arg(&reports);
        }
        cmd.arg(&upload);
        let cpu0 = children_cpu();
        let t0 = Instant::now();
        let out = cmd.output()?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = children_cpu() - cpu0;
        if out.status.code() != Some(1) {
            return Err(format!("the clip did not match: {:?}", out.status).into());
        }
        match evidence {
            true => with.push((wall, cpu)),
            false => plain.push((wall, cpu)),
        }
    }
    let size: u64 = std::fs::read_dir(&reports)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let median = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        let mut x: Vec<f64> = v.iter().map(pick).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2] * 1000.0
    };
    let (pw, ww) = (median(&plain, |x| x.0), median(&with, |x| x.0));
    let (pc, wc) = (median(&plain, |x| x.1), median(&with, |x| x.1));
    println!(
        "20 s clip, {rounds} rounds alternated: scan {pw:.0} ms wall / {pc:.0} ms CPU; with --evidence {ww:.0} ms wall / {wc:.0} ms CPU; the report costs {:.0} ms wall, {:.0} ms CPU; report {} bytes",
        ww - pw,
        wc - pc,
        size
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// CPU seconds (user + system) used by finished child processes so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
