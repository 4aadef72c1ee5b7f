//! Shared helpers for the end-to-end tests: generated audio, running the binary, reading its JSON
//! back with the tests' own structs (so a change of the output contract breaks a test).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

pub mod http;
pub mod pg;

/// One input's line of `scan --format jsonl`.
#[derive(Debug, Deserialize)]
pub struct Record {
    pub path: String,
    #[serde(default)]
    pub path_base64: Option<String>,
    pub duration_s: f64,
    pub error: Option<String>,
    pub matches: Vec<MatchOut>,
}

/// One match as the contract describes it.
#[derive(Debug, Deserialize)]
pub struct MatchOut {
    pub ref_id: i64,
    pub title: String,
    pub ref_path: String,
    pub query_start_s: f64,
    pub query_end_s: f64,
    pub ref_start_s: f64,
    pub ref_end_s: f64,
    pub speed: f64,
    #[serde(default)]
    pub pitch_cents: Option<f64>,
    pub score: u64,
    pub confidence: f64,
}

impl MatchOut {
    /// Where the upload's first second lies in the reference.
    pub fn offset(&self) -> f64 {
        self.ref_start_s - self.query_start_s * self.speed
    }
}

/// A fresh scratch folder under the target dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    pub fn db(&self) -> PathBuf {
        self.path("index.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes synthetic song `seed` (mono, 44.1 kHz) of `seconds` to `path`.
pub fn write_song(path: &Path, seed: u64, seconds: f32) {
    nasheed_harness::synth::write_wav(
        path,
        &nasheed_harness::synth::song(seed, seconds, 44100),
        44100,
        1,
    )
    .unwrap();
}

/// A scratch folder whose index holds synthetic songs `seeds` (`ref{seed}.wav`, `seconds` long).
pub fn indexed_songs(name: &str, seeds: std::ops::RangeInclusive<u64>, seconds: f32) -> Scratch {
    let s = Scratch::new(name);
    let paths: Vec<_> = seeds
        .map(|seed| (seed, s.path(&format!("ref{seed}.wav"))))
        .collect();
    for (seed, p) in &paths {
        write_song(p, *seed, seconds);
    }
    index(
        &s.db(),
        &paths.iter().map(|(_, p)| p.as_path()).collect::<Vec<_>>(),
    );
    s
}

/// Runs the binary with `--db db` and `args`.
pub fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the binary with stdin fed from `input`.
pub fn run_stdin(db: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nasheed"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Indexes paths, asserting success.
pub fn index(db: &Path, paths: &[&Path]) {
    let mut args = vec!["index"];
    let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    let out = run(db, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scans as JSONL; returns the exit code and the records.
pub fn scan(db: &Path, paths: &[&Path]) -> (i32, Vec<Record>) {
    let mut args = vec!["scan".to_string(), "--format".into(), "jsonl".into()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(db, &args);
    (out.status.code().unwrap_or(-1), parse_jsonl(&out.stdout))
}

pub fn parse_jsonl(stdout: &[u8]) -> Vec<Record> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect()
}

/// The repository's fixture folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Time-stretch by WSOLA (overlap-add with waveform-similarity alignment) without changing pitch:
/// `factor` is input seconds per output second (0.9 makes the output 1/0.9 times longer).
pub fn stretch(x: &[f32], factor: f64) -> Vec<f32> {
    const N: usize = 2048;
    const HOP: usize = N / 4;
    const SEEK: usize = 256;
    let out_len = (x.len() as f64 / factor) as usize;
    let window: Vec<f32> = (0..N)
        .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / N as f32).cos())
        .collect();
    let mut out = vec![0.0f32; out_len + N];
    let mut norm = vec![0.0f32; out_len + N];
    let mut prev: Option<usize> = None; // input position of the previous frame
    let mut k = 0;
    while k * HOP < out_len {
        let nominal = (k as f64 * HOP as f64 * factor) as usize;
        if nominal + N + SEEK >= x.len() {
            break;
        }
        // The continuation the previous frame would have had; pick the nearby start most like it.
        let pos = match prev {
            None => nominal,
            Some(p) => {
                let natural = &x[p + HOP..p + HOP + N / 2];
                let lo = nominal.saturating_sub(SEEK);
                (lo..=nominal + SEEK)
                    .max_by(|&a, &b| {
                        let ca: f32 = natural
                            .iter()
                            .zip(&x[a..a + N / 2])
                            .map(|(u, v)| u * v)
                            .sum();
                        let cb: f32 = natural
                            .iter()
                            .zip(&x[b..b + N / 2])
                            .map(|(u, v)| u * v)
                            .sum();
                        ca.total_cmp(&cb)
                    })
                    .unwrap_or(nominal)
            }
        };
        for i in 0..N {
            out[k * HOP + i] += x[pos + i] * window[i];
            norm[k * HOP + i] += window[i];
        }
        prev = Some(pos);
        k += 1;
    }
    out.truncate(out_len);
    out.iter()
        .zip(&norm)
        .map(|(o, n)| if *n > 1e-3 { o / n } else { 0.0 })
        .collect()
}

/// Resamples as if `x` had been recorded at `from` Hz and is played back at `to` Hz.
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    let mut r = nasheed::audio::Resampler::new(from, to).unwrap();
    let mut out = Vec::new();
    r.process(x, &mut out).unwrap();
    r.finish(&mut out).unwrap();
    out
}

/// Writes a FLAC decompression bomb: `hours` of one constant 16-bit `value` (0 is digital
/// silence), mono at 44.1 kHz, in frames of 65535 samples with CONSTANT subframes. About 15
/// bytes per frame, so 29 hours fit in ~1 MB.
pub fn write_flac_bomb(path: &Path, hours: f64, value: i16) {
    const BLOCK: u64 = 65535;
    let total = (hours * 3600.0 * 44100.0) as u64;
    let mut out = b"fLaC".to_vec();
    // STREAMINFO, the last metadata block: header (last flag, type 0, length 34), then fields.
    out.extend([0x80, 0, 0, 34]);
    out.extend((BLOCK as u16).to_be_bytes()); // min block size
    out.extend((BLOCK as u16).to_be_bytes()); // max block size
    out.extend([0u8; 6]); // min, max frame size: unknown
                          // 20 bits rate, 3 bits channels-1 (0), 5 bits bits-per-sample-1 (15), 36 bits total samples.
    let packed: u64 = (44100u64 << 44) | (15u64 << 36) | (total & ((1 << 36) - 1));
    out.extend(packed.to_be_bytes());
    out.extend([0u8; 16]); // MD5: unknown
    let mut frame_no = 0u64;
    let mut left = total;
    while left > 0 {
        let n = left.min(BLOCK);
        let mut f = vec![0xFF, 0xF8];
        // Block size from the 16 bits after the frame number (0111); 44.1 kHz (1001).
        f.push(0x79);
        // Mono (0000), 16 bits per sample (100), reserved 0.
        f.push(0x08);
        f.extend(utf8_number(frame_no));
        f.extend(((n - 1) as u16).to_be_bytes());
        let c8 = crc8(&f);
        f.push(c8);
        // CONSTANT subframe: padding bit, type 000000, no wasted bits; then the value.
        f.push(0x00);
        f.extend(value.to_be_bytes());
        let c16 = crc16(&f);
        f.extend(c16.to_be_bytes());
        out.extend(f);
        left -= n;
        frame_no += 1;
    }
    std::fs::write(path, out).unwrap();
}

/// FLAC's frame numbers: UTF-8's variable-length coding, extended to 36 bits.
fn utf8_number(v: u64) -> Vec<u8> {
    if v < 0x80 {
        return vec![v as u8];
    }
    // k continuation bytes of 6 bits each leave the lead byte 6 - k bits.
    let mut k = 1;
    while v >> (6 * k) >= 1 << (6 - k) {
        k += 1;
    }
    let lead = (0xFF00u16 >> (k + 1)) as u8 | (v >> (6 * k)) as u8;
    let mut out = vec![lead];
    out.extend((0..k).rev().map(|i| 0x80 | ((v >> (6 * i)) & 0x3F) as u8));
    out
}

fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
    }
    crc
}
