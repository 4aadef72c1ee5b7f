//! Evaluation harness: index a labelled corpus, scan every query, print the scoreboard.
//!
//! ```text
//! cargo run --release --example eval -- CORPUS_DIR [--out report.json] [--baseline old.json] [--tolerance 0.01] [--dump candidates.jsonl] [--db index.db]
//! ```
//! `--db` scans against an existing index (e.g. one filled by the `scale` example) after adding
//! the corpus references to it, and leaves it in place; by default a scratch index is used.
//! CORPUS_DIR holds `refs/`, `queries/` and `ground_truth.csv` (see docs/EVALUATION.md).
//! Exit code 1 when `--baseline` is given and recall regressed beyond the tolerance.
use std::path::PathBuf;

use nasheed_harness::eval;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut corpus, mut out, mut baseline, mut tolerance) =
        (None, PathBuf::from("eval-report.json"), None, 0.01);
    let (mut dump, mut keep_db) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => {
                out = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| anyhow::anyhow!("--out FILE"))?
            }
            "--baseline" => baseline = args.next().map(PathBuf::from),
            "--dump" => dump = args.next().map(PathBuf::from),
            "--db" => keep_db = args.next().map(PathBuf::from),
            "--tolerance" => {
                tolerance = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--tolerance X"))?
            }
            _ => corpus = Some(PathBuf::from(a)),
        }
    }
    let corpus = corpus.ok_or_else(|| {
        anyhow::anyhow!("usage: eval CORPUS_DIR [--out FILE] [--baseline FILE] [--tolerance X]")
    })?;
    let scratch = std::env::temp_dir().join(format!("nasheed-eval-{}.db", std::process::id()));
    let db = keep_db.clone().unwrap_or_else(|| scratch.clone());
    let report = eval::evaluate(&corpus, &db, keep_db.is_some(), dump.as_deref())?;
    if keep_db.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
        }
    }
    let a = &report.accuracy;
    println!("corpus {}  parameters {}", report.corpus, report.params_id);
    println!(
        "\n{:40} {:>5} {:>7} {:>8} {:>8}",
        "class", "n", "recall", "aligned", "factors"
    );
    for (c, r) in &a.by_class {
        println!(
            "{c:40} {:5} {:7.3} {:8.3} {:8.3}",
            r.n,
            r.recall,
            r.aligned_recall,
            r.factors_ok as f64 / r.n.max(1) as f64
        );
    }
    println!(
        "\n{:40} {:>5} {:>7} {:>8}",
        "clip length (s)", "n", "recall", "aligned"
    );
    let mut lengths: Vec<_> = a.by_length.iter().collect();
    lengths.sort_by_key(|(k, _)| k.parse::<f64>().unwrap_or(f64::MAX) as i64);
    for (l, r) in lengths {
        println!("{l:40} {:5} {:7.3} {:8.3}", r.n, r.recall, r.aligned_recall);
    }
    println!(
        "\noverall recall {:.3} (aligned {:.3}); mean over classes without time scaling {:.3}; offsets within tolerance for {:.1} % of hits",
        a.overall.recall,
        a.overall.aligned_recall,
        a.unscaled_class_mean,
        100.0 * a.offset_ok_share
    );
    println!(
        "false positives {}/{} {:?}",
        a.false_positives, a.negatives, a.false_positive_queries
    );
    let m = &report.margins;
    println!(
        "score quantiles (5/25/50/75/95 %): right reference {:?}, best wrong candidate {:?} (max {}); highest false-positive confidence {:.4}",
        m.true_score_quantiles, m.wrong_score_quantiles, m.wrong_score_max, m.false_positive_confidence_max
    );
    let i = &report.index;
    println!(
        "\nindex: {} refs, {:.2} h in {:.1} s wall / {:.1} s CPU: {:.0}× real time wall, {:.0}× per CPU-second; {:.1} MB ({:.2} MB per audio hour), {} hashes",
        i.tracks, i.audio_hours, i.wall_s, i.cpu_s, i.x_realtime_wall, i.x_realtime_cpu, i.bytes as f64 / 1e6, i.mb_per_hour, i.hashes
    );
    let l = &report.latency;
    println!(
        "scan latency per query through the scan pipeline (ms, decode included): p50 {:.1} p95 {:.1} max {:.1}; 10 s clips p50 {:.1} p95 {:.1}",
        l.p50_total, l.p95_total, l.max_total, l.p50_10s, l.p95_10s
    );
    println!("peak RSS {:.0} MB", report.peak_rss_mb);
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("report written to {}", out.display());
    if let Some(b) = baseline {
        let old: eval::Report = serde_json::from_str(&std::fs::read_to_string(&b)?)?;
        let (lines, regressions) = eval::compare(&old.accuracy, &a.clone(), tolerance);
        println!("\nagainst {}:", b.display());
        for l in lines {
            println!("{l}");
        }
        if !regressions.is_empty() {
            println!("\nREGRESSION beyond tolerance {tolerance}:");
            for r in regressions {
                println!("  {r}");
            }
            std::process::exit(1);
        }
    }
    Ok(())
}
