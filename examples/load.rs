//! Load benchmark of `nasheed serve`: many clients posting clips at once while another adds
//! references, against the bulk CLI scan of the same clips on the same cores.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example load -- --db INDEX --clips CORPUS [--clients 32] [--seconds 60]
//!     [--adds DIR] [--add-every 5] [--clip-len 10]
//! ```
//! `--clips CORPUS` takes the queries of a corpus (docs/EVALUATION.md) whose `clip_len_s` is
//! `--clip-len`. The benchmark first runs `nasheed --db INDEX scan --format jsonl` over those
//! clips (the bulk baseline, clips per second), then starts `nasheed serve` on a free port
//! with a token (the index must be writable: use a copy), and for `--seconds` keeps
//! `--clients` threads posting random clips to `/v1/scan`, honouring `Retry-After` on 503,
//! while one more thread posts the audio files of `--adds` to `/v1/references`, one every
//! `--add-every` seconds. It prints throughput (200 answers per second, and its ratio to the
//! bulk scan's), latency percentiles of the 200 answers, every status seen, answers whose
//! references differ from the bulk scan's, and the server's peak RSS (VmHWM).
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const TOKEN: &str = "load-benchmark-token-0123456789";

struct Opts {
    db: PathBuf,
    corpus: PathBuf,
    clients: usize,
    seconds: f64,
    adds: Option<PathBuf>,
    add_every: f64,
    clip_len: String,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        db: PathBuf::new(),
        corpus: PathBuf::new(),
        clients: 32,
        seconds: 60.0,
        adds: None,
        add_every: 5.0,
        clip_len: "10".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--db" => o.db = value()?.into(),
            "--clips" => o.corpus = value()?.into(),
            "--clients" => o.clients = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--adds" => o.adds = Some(value()?.into()),
            "--add-every" => o.add_every = value()?.parse()?,
            "--clip-len" => o.clip_len = value()?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.db.as_os_str().is_empty() || o.corpus.as_os_str().is_empty() {
        bail!("usage: load --db INDEX --clips CORPUS [--clients N] [--seconds S] [--adds DIR]");
    }
    Ok(o)
}

/// The binary built beside this example.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("nasheed"))
        .unwrap_or_else(|| PathBuf::from("target/release/nasheed"))
}

/// The corpus's queries of one clip length.
fn clips(corpus: &Path, len: &str) -> anyhow::Result<Vec<PathBuf>> {
    let truth = std::fs::read_to_string(corpus.join("ground_truth.csv"))?;
    let mut lines = truth.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(q), Some(l)) = (col("query_file"), col("clip_len_s")) else {
        bail!("ground_truth.csv lacks query_file or clip_len_s");
    };
    Ok(lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(l) == Some(&len))
        .filter_map(|f| f.get(q).map(|p| corpus.join(p)))
        .collect())
}

/// The reference SHA-256s a scan record names, in order.
fn refs_of(record: &serde_json::Value) -> Vec<String> {
    record["matches"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["ref_sha256"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    let bin = binary();
    let paths = clips(&o.corpus, &o.clip_len)?;
    if paths.is_empty() {
        bail!("no {} s clips in {}", o.clip_len, o.corpus.display());
    }

    // The baseline: the bulk CLI scan of the same clips, on every core.
    let t0 = Instant::now();
    let out = Command::new(&bin)
        .arg("--db")
        .arg(&o.db)
        .args(["scan", "--format", "jsonl"])
        .args(&paths)
        .stderr(Stdio::null())
        .output()
        .context("running nasheed scan")?;
    let bulk_s = t0.elapsed().as_secs_f64();
    let bulk_rate = paths.len() as f64 / bulk_s;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        expected.insert(
            v["path"].as_str().unwrap_or_default().to_string(),
            refs_of(&v),
        );
    }
    println!(
        "bulk scan: {} clips in {bulk_s:.1} s = {bulk_rate:.2} clips/s",
        paths.len()
    );

    // The server.
    let mut child = Command::new(&bin)
        .arg("--db")
        .arg(&o.db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("NASHEED_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nasheed serve")?;
    let mut stderr = BufReader::new(child.stderr.take().context("no stderr")?);
    let mut first = String::new();
    stderr.read_line(&mut first)?;
    let base = first
        .find("http://")
        .map(|i| {
            first[i..]
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .with_context(|| format!("the server did not start: {first}"))?;
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    println!("{}", first.trim());

    let bodies: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| Ok((p.display().to_string(), std::fs::read(p)?)))
        .collect::<anyhow::Result<_>>()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let stop = Arc::new(AtomicBool::new(false));
    let statuses: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let differing = Arc::new(Mutex::new(0u64));
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(o.seconds);
    std::thread::scope(|s| {
        for c in 0..o.clients {
            let (agent, bodies, expected, base) = (agent.clone(), &bodies, &expected, &base);
            let (statuses, latencies, differing) = (&statuses, &latencies, &differing);
            s.spawn(move || {
                // A small deterministic generator: each client walks the clips its own way.
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64 + 1);
                while Instant::now() < end {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (name, body) = &bodies[(x % bodies.len() as u64) as usize];
                    let t = Instant::now();
                    let url = format!("{base}/v1/scan?name={}", nasheed_harness::url_encode(name));
                    let status = match agent.post(&url).send(&body[..]) {
                        Ok(mut r) => {
                            let code = r.status().as_u16();
                            let text = r.body_mut().read_to_string().unwrap_or_default();
                            if code == 200 {
                                if let Ok(mut l) = latencies.lock() {
                                    l.push(t.elapsed().as_secs_f64());
                                }
                                let v: serde_json::Value =
                                    serde_json::from_str(&text).unwrap_or_default();
                                if expected.get(name) != Some(&refs_of(&v)) {
                                    if let Ok(mut d) = differing.lock() {
                                        *d += 1;
                                    }
                                }
                            }
                            if code == 503 {
                                std::thread::sleep(Duration::from_millis(
                                    (200 + x % 800).min(1000),
                                ));
                            }
                            code.to_string()
                        }
                        Err(e) => format!("client error: {e}"),
                    };
                    if let Ok(mut m) = statuses.lock() {
                        *m.entry(status).or_default() += 1;
                    }
                }
            });
        }
        // The writer: adds references while the scans run.
        if let Some(dir) = &o.adds {
            let (agent, base, stop) = (agent.clone(), &base, &stop);
            s.spawn(move || {
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                files.sort();
                let mut added = BTreeMap::<String, u64>::new();
                for f in files {
                    if Instant::now() >= end || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(body) = std::fs::read(&f) else {
                        continue;
                    };
                    let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                    let url = format!(
                        "{base}/v1/references?name={}&source=load-benchmark",
                        nasheed_harness::url_encode(&name.unwrap_or_default())
                    );
                    let code = match agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {TOKEN}"))
                        .send(&body[..])
                    {
                        Ok(r) => r.status().as_u16().to_string(),
                        Err(e) => format!("client error: {e}"),
                    };
                    *added.entry(code).or_default() += 1;
                    std::thread::sleep(Duration::from_secs_f64(o.add_every));
                }
                println!("reference adds by status: {added:?}");
            });
        }
    });
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed().as_secs_f64();
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait()?;

    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let ok = lat.len() as f64;
    println!(
        "served: {} answers 200 in {wall:.1} s = {:.2} clips/s ({:.2}× the bulk scan's {bulk_rate:.2})",
        lat.len(),
        ok / wall,
        ok / wall / bulk_rate
    );
    println!(
        "latency of 200 answers: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        quantile(&lat, 0.5) * 1e3,
        quantile(&lat, 0.95) * 1e3,
        quantile(&lat, 0.99) * 1e3
    );
    println!(
        "statuses: {:?}",
        statuses.lock().map(|m| m.clone()).unwrap_or_default()
    );
    println!(
        "answers naming other references than the bulk scan: {}",
        differing.lock().map(|d| *d).unwrap_or_default()
    );
    println!("server peak RSS (VmHWM): {hwm}; exit after SIGTERM: {exit}");
    Ok(())
}
