//! The evaluation harness's core: run a labelled corpus through the same code paths as
//! `nasheed index` and `nasheed scan`, and score the results.
//!
//! Corpus layout (what `../shared/corpus/make-corpus.sh` writes; documented in `docs/EVALUATION.md`):
//! `refs/` (reference recordings), `queries/` (uploads), and `ground_truth.csv` with at least the
//! columns `query_file, ref_file, ref_offset_s, distortion, clip_len_s, time_scale`; an empty
//! `ref_file` marks a negative (audio that is not indexed).
//!
//! Scoring is pure ([`score`]) so that it can be tested on its own; [`evaluate`] does the I/O and
//! the timing. Nothing here prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use nasheed::engine::report::ScanRecord;
use nasheed::engine::scan::{scan_inputs, ScanInput, ScanSink};
use nasheed::engine::{self, IndexJob, Scanner};
use nasheed::fingerprint::{FingerprintParams, Side};
use nasheed::index::{self, Access};
use nasheed::matching::{self, MatchParams};

/// One row of `ground_truth.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Truth {
    /// Query path relative to the corpus.
    pub query_file: String,
    /// Reference path relative to the corpus; empty for a negative.
    pub ref_file: String,
    /// Where the query starts in the reference (s); empty for a negative.
    pub ref_offset_s: Option<f64>,
    /// Distortion class.
    pub distortion: String,
    /// Clip length class (s).
    pub clip_len_s: String,
    /// Reference seconds per query second (1 unless time-scaled).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// The query's pitch shift in cents, where the corpus states it.
    #[serde(default)]
    pub pitch_cents: Option<f64>,
}

/// What the engine answered for one query (its strongest match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Query path relative to the corpus.
    pub query_file: String,
    /// Reference named (file name), if any.
    pub ref_file: Option<String>,
    /// Where the query starts in that reference (s).
    pub ref_offset_s: Option<f64>,
    /// Reference seconds per query second reported.
    #[serde(default)]
    pub speed: Option<f64>,
    /// Pitch shift reported, in cents (implied by `speed` when the match reports none).
    #[serde(default)]
    pub pitch_cents: Option<f64>,
    /// Score and confidence of the match.
    pub score: u32,
    /// Confidence of the match.
    pub confidence: f64,
    /// Best score of a candidate for the right reference (before thresholds; 0 if none).
    pub best_true_score: u32,
    /// Best score of a candidate for a wrong reference (before thresholds; 0 if none).
    pub best_wrong_score: u32,
    /// Milliseconds from file to record through the engine's scan pipeline (decode, SHA-256,
    /// fingerprint, lookup, matching), as a one-file `nasheed scan` runs it.
    pub ms_total: f64,
    /// Error message if the query could not be read.
    pub error: Option<String>,
}

/// Recall of one group of positives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recall {
    /// Positives in the group.
    pub n: usize,
    /// Right reference named.
    pub hits: usize,
    /// Right reference and offset within tolerance.
    pub aligned: usize,
    /// hits / n.
    pub recall: f64,
    /// aligned / n.
    pub aligned_recall: f64,
    /// Aligned hits whose reported speed is within 1 % of the truth and pitch (where the corpus
    /// states it) within 20 cents.
    #[serde(default)]
    pub factors_ok: usize,
}

impl Recall {
    fn add(&mut self, hit: bool, aligned: bool, factors_ok: bool) {
        self.n += 1;
        self.hits += hit as usize;
        self.aligned += aligned as usize;
        self.factors_ok += (aligned && factors_ok) as usize;
        self.recall = self.hits as f64 / self.n as f64;
        self.aligned_recall = self.aligned as f64 / self.n as f64;
    }
}

/// Accuracy figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// All positives.
    pub overall: Recall,
    /// Per distortion class.
    pub by_class: BTreeMap<String, Recall>,
    /// Per clip length.
    pub by_length: BTreeMap<String, Recall>,
    /// Mean recall over the classes without time scaling (speed, tempo, pitch and combos excluded).
    pub unscaled_class_mean: f64,
    /// Negatives.
    pub negatives: usize,
    /// Negatives for which a reference was named.
    pub false_positives: usize,
    /// Queries of the false positives.
    pub false_positive_queries: Vec<String>,
    /// Share of right-reference answers whose offset is within tolerance.
    pub offset_ok_share: f64,
}

/// Classes excluded from [`Accuracy::unscaled_class_mean`]: anything that changes time or pitch.
pub fn is_time_scaled_class(class: &str) -> bool {
    ["speed", "tempo", "pitch", "combo"]
        .iter()
        .any(|k| class.contains(k))
}

fn base(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

/// Scores answers against the ground truth (queries without an answer count as "no match").
///
/// A positive is a hit when the named reference is right; aligned when, in addition, the offset
/// is within 0.1 s (plus 2 % of the clip length for time-scaled clips). A negative is a false
/// positive when any reference is named.
pub fn score(truth: &[Truth], answers: &[Answer]) -> Accuracy {
    let by_query: BTreeMap<&str, &Answer> =
        answers.iter().map(|a| (base(&a.query_file), a)).collect();
    let mut acc = Accuracy::default();
    let (mut hits, mut aligned_hits) = (0usize, 0usize);
    for t in truth {
        let a = by_query.get(base(&t.query_file));
        let named = a.and_then(|a| a.ref_file.as_deref());
        if t.ref_file.is_empty() {
            acc.negatives += 1;
            if named.is_some() {
                acc.false_positives += 1;
                acc.false_positive_queries.push(t.query_file.clone());
            }
            continue;
        }
        let hit = named.is_some_and(|r| base(r) == base(&t.ref_file));
        let scale = t.time_scale.unwrap_or(1.0);
        let tol = 0.1
            + if (scale - 1.0).abs() > 1e-9 {
                0.02 * t.clip_len_s.parse::<f64>().unwrap_or(0.0)
            } else {
                0.0
            };
        let aligned = hit
            && match (a.and_then(|a| a.ref_offset_s), t.ref_offset_s) {
                (Some(got), Some(want)) => (got - want).abs() <= tol,
                _ => false,
            };
        let speed_ok = a
            .and_then(|a| a.speed)
            .is_some_and(|s| (s / scale - 1.0).abs() <= 0.01);
        let pitch_ok = match (t.pitch_cents, a.and_then(|a| a.pitch_cents)) {
            (None, _) => true,
            (Some(want), Some(got)) => (got - want).abs() <= 20.0,
            (Some(_), None) => false,
        };
        let factors_ok = speed_ok && pitch_ok;
        hits += hit as usize;
        aligned_hits += aligned as usize;
        acc.overall.add(hit, aligned, factors_ok);
        acc.by_class
            .entry(t.distortion.clone())
            .or_default()
            .add(hit, aligned, factors_ok);
        acc.by_length
            .entry(t.clip_len_s.clone())
            .or_default()
            .add(hit, aligned, factors_ok);
    }
    let unscaled: Vec<f64> = acc
        .by_class
        .iter()
        .filter(|(c, _)| !is_time_scaled_class(c))
        .map(|(_, r)| r.recall)
        .collect();
    acc.unscaled_class_mean = unscaled.iter().sum::<f64>() / unscaled.len().max(1) as f64;
    acc.offset_ok_share = aligned_hits as f64 / hits.max(1) as f64;
    acc
}

/// Reads `ground_truth.csv`.
pub fn read_truth(path: &Path) -> anyhow::Result<Vec<Truth>> {
    let mut rdr =
        csv::Reader::from_path(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let rows: Result<Vec<Truth>, _> = rdr.deserialize().collect();
    rows.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Indexing figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexFigures {
    /// References indexed.
    pub tracks: usize,
    /// Hours of audio.
    pub audio_hours: f64,
    /// Wall time (s).
    pub wall_s: f64,
    /// CPU time of the process while indexing (s).
    pub cpu_s: f64,
    /// Audio seconds per wall second.
    pub x_realtime_wall: f64,
    /// Audio seconds per CPU second (≈ per core).
    pub x_realtime_cpu: f64,
    /// Index file size (bytes).
    pub bytes: u64,
    /// Index bytes per audio hour, in MB.
    pub mb_per_hour: f64,
    /// Hashes stored.
    pub hashes: u64,
}

/// Scan latency figures (ms per query, through the engine's scan pipeline, decoding included).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_total: f64,
    /// 95th percentile.
    pub p95_total: f64,
    /// Maximum.
    pub max_total: f64,
    /// Median on 10-second clips.
    pub p50_10s: f64,
    /// 95th percentile on 10-second clips.
    pub p95_10s: f64,
}

/// Score distributions: strongest candidate of the right reference vs. of a wrong one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Margins {
    /// Quantiles (5, 25, 50, 75, 95 %) of the best true-candidate score over positives.
    pub true_score_quantiles: Vec<u32>,
    /// Quantiles of the best wrong-candidate score over all queries.
    pub wrong_score_quantiles: Vec<u32>,
    /// Highest wrong-candidate score seen.
    pub wrong_score_max: u32,
    /// Highest confidence given to a false positive (0 if none).
    pub false_positive_confidence_max: f64,
}

/// A full evaluation report (written as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Corpus folder.
    pub corpus: String,
    /// Fingerprint-parameter id.
    pub params_id: String,
    /// Indexing.
    pub index: IndexFigures,
    /// Scanning.
    pub latency: Latency,
    /// Accuracy.
    pub accuracy: Accuracy,
    /// Threshold margins.
    pub margins: Margins,
    /// Peak resident memory of the process (MB).
    pub peak_rss_mb: f64,
    /// Per-query answers.
    pub answers: Vec<Answer>,
}

/// Runs the corpus: indexes `refs/` into the index at `db` (emptied first unless `keep`), scans
/// every query, scores.
/// With `dump`, every candidate before thresholds is written there as JSON lines (diagnostics).
pub fn evaluate(
    corpus: &Path,
    db: &Path,
    keep: bool,
    dump: Option<&Path>,
) -> anyhow::Result<Report> {
    use std::io::Write;
    let mut dump = match dump {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let params = FingerprintParams::default();
    let truth = read_truth(&corpus.join("ground_truth.csv"))?;
    if !keep {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    }
    let mut store = index::open(db, &params.id(), Access::Create)?;
    let files: Vec<PathBuf> = engine::expand_inputs(&[corpus.join("refs")])
        .inputs
        .into_iter()
        .map(|i| i.map(|i| i.path().to_path_buf()))
        .collect::<Result<_, _>>()?;
    let jobs = files
        .into_iter()
        .map(|path| IndexJob {
            path,
            title: None,
            meta: Default::default(),
        })
        .collect();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let budget = engine::Budget::default();
    let summary = engine::index_files(&mut *store, jobs, &params, &budget, &mut |_| {})?;
    let (wall_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let stats = store.stats()?;
    let index = IndexFigures {
        tracks: summary.indexed,
        audio_hours: summary.audio_s / 3600.0,
        wall_s,
        cpu_s,
        x_realtime_wall: summary.audio_s / wall_s.max(1e-9),
        x_realtime_cpu: summary.audio_s / cpu_s.max(1e-9),
        bytes: stats.bytes,
        mb_per_hour: stats.bytes as f64 / 1e6 / stats.audio_hours.max(1e-9),
        hashes: stats.hashes,
    };

    let mp = MatchParams::default();
    let relaxed = MatchParams {
        min_score: 4,
        min_fraction: 0.0,
        min_lift: 0.0,
        min_margin: 0,
        min_period_lead: f64::NEG_INFINITY,
        min_confidence: 0.0,
        ..mp.clone()
    };
    // Diagnostics only (every candidate before the thresholds, not timed) go straight to the
    // matcher; the answers come through the scan pipeline the CLI and the service run.
    let diagnosis = index::open(db, &params.id(), Access::Read)?;
    let diagnose = Scanner::new(&*diagnosis, &params, &relaxed);
    let lengths: BTreeMap<nasheed::index::TrackId, String> = store
        .tracks()?
        .into_iter()
        .map(|t| (t.id, t.path))
        .collect();
    let mut stores = vec![store];
    let mut answers = Vec::with_capacity(truth.len());
    let mut match_10s = Vec::new();
    for t in &truth {
        let path = corpus.join(&t.query_file);
        let start = Instant::now();
        let mut got = Last(None);
        let input = [ScanInput::file(path.clone())];
        scan_inputs(&mut stores, &input, &params, &mp, &budget, &mut got)?;
        let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
        let record = got
            .0
            .ok_or_else(|| anyhow::anyhow!("{}: no record", path.display()))?;
        if let Some(e) = record.error {
            answers.push(Answer {
                query_file: t.query_file.clone(),
                ref_file: None,
                ref_offset_s: None,
                speed: None,
                pitch_cents: None,
                score: 0,
                confidence: 0.0,
                best_true_score: 0,
                best_wrong_score: 0,
                ms_total: 0.0,
                error: Some(e),
            });
            continue;
        }
        let (mut best_true, mut best_wrong) = (0, 0);
        if let Ok(fp) = engine::fingerprint_file(&path, &params, Side::Query, &budget) {
            let (cands, _) = matching::candidates(&diagnose, &fp.prints, fp.frames, &relaxed)?;
            // The upload's peaks for the dump's races (diagnostics only).
            let peaks = dump.is_some().then(|| {
                matching::verify::QueryPeaks::new(&fp.prints.peaks, params.bins, fp.frames)
            });
            for c in &cands {
                let name = lengths.get(&c.track).map(|p| base(p)).unwrap_or_default();
                if let (Some(d), Some(peaks)) = (dump.as_mut(), peaks.as_ref()) {
                    // The race the default margin would call close, compared peak by peak.
                    let race = match c.score < c.rival + mp.min_margin {
                        true => {
                            let reference = diagnosis.peaks(c.track)?;
                            let span = peaks.widen(c.query_frames);
                            matching::verify::against_rival(peaks, &reference, c, span)
                        }
                        false => None,
                    };
                    // The comparison with the reference's repetition periods (as for a match).
                    let period = {
                        let reference = diagnosis.peaks(c.track)?;
                        let lead = matching::verify::period_lead(
                            peaks,
                            &reference,
                            c,
                            peaks.widen(c.query_frames),
                        );
                        lead.is_finite().then_some(lead)
                    };
                    let v = c.verification.unwrap_or(matching::Verification {
                        checked: 0,
                        found: 0,
                        chance: 0.0,
                        events: 0,
                        events_found: 0,
                        event_chance: 0.0,
                        searched: 0.0,
                        rival_lead: 0.0,
                        period_lead: 0.0,
                    });
                    let row = serde_json::json!({"query": t.query_file, "distortion": t.distortion, "clip": t.clip_len_s,
                        "truth": t.ref_file, "ref": name, "right": !t.ref_file.is_empty() && name == base(&t.ref_file),
                        "time": c.warp.time, "freq": c.warp.freq, "offset": c.offset, "q0": c.query_frames.0, "q1": c.query_frames.1, "score": c.score, "rival": c.rival,
                        "lead": race.map(|r| r.lead), "self_similarity": race.map(|r| r.self_similarity), "own": race.map(|r| r.own), "period": period,
                        "found": v.found, "checked": v.checked, "chance": v.chance, "events": v.events, "events_found": v.events_found, "event_chance": v.event_chance, "searched": v.searched, "confidence": c.confidence});
                    writeln!(d, "{row}")?;
                }
                if !t.ref_file.is_empty() && name == base(&t.ref_file) {
                    best_true = best_true.max(c.score);
                } else {
                    best_wrong = best_wrong.max(c.score);
                }
            }
        }
        if t.clip_len_s == "10" {
            match_10s.push(elapsed_ms);
        }
        let best = record.matches.iter().max_by_key(|m| m.score);
        answers.push(Answer {
            query_file: t.query_file.clone(),
            ref_file: best.map(|m| base(&m.ref_path).to_string()),
            ref_offset_s: best.map(|m| m.ref_start_s - m.query_start_s * m.speed),
            speed: best.map(|m| m.speed),
            pitch_cents: best.map(|m| m.pitch_cents.unwrap_or(1200.0 * m.speed.log2())),
            score: best.map_or(0, |m| m.score),
            confidence: best.map_or(0.0, |m| m.confidence),
            best_true_score: best_true,
            best_wrong_score: best_wrong,
            ms_total: elapsed_ms,
            error: None,
        });
    }
    let accuracy = score(&truth, &answers);
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.error.is_none()).collect();
    let totals: Vec<f64> = ok.iter().map(|a| a.ms_total).collect();
    let latency = Latency {
        p50_total: quantile(&totals, 0.5),
        p95_total: quantile(&totals, 0.95),
        max_total: quantile(&totals, 1.0),
        p50_10s: quantile(&match_10s, 0.5),
        p95_10s: quantile(&match_10s, 0.95),
    };
    let is_pos: BTreeMap<&str, bool> = truth
        .iter()
        .map(|t| (base(&t.query_file), !t.ref_file.is_empty()))
        .collect();
    let true_scores: Vec<f64> = answers
        .iter()
        .filter(|a| is_pos.get(base(&a.query_file)) == Some(&true))
        .map(|a| a.best_true_score as f64)
        .collect();
    let wrong_scores: Vec<f64> = answers.iter().map(|a| a.best_wrong_score as f64).collect();
    let qs = |v: &[f64]| {
        [0.05, 0.25, 0.5, 0.75, 0.95]
            .iter()
            .map(|&q| quantile(v, q) as u32)
            .collect()
    };
    let fp_set: std::collections::BTreeSet<&str> = accuracy
        .false_positive_queries
        .iter()
        .map(|q| base(q))
        .collect();
    let margins = Margins {
        true_score_quantiles: qs(&true_scores),
        wrong_score_quantiles: qs(&wrong_scores),
        wrong_score_max: answers
            .iter()
            .map(|a| a.best_wrong_score)
            .max()
            .unwrap_or(0),
        false_positive_confidence_max: answers
            .iter()
            .filter(|a| fp_set.contains(base(&a.query_file)))
            .map(|a| a.confidence)
            .fold(0.0, f64::max),
    };
    if let Some(d) = dump.as_mut() {
        d.flush()?;
    }
    Ok(Report {
        corpus: corpus.display().to_string(),
        params_id: params.id(),
        index,
        latency,
        accuracy,
        margins,
        peak_rss_mb: peak_rss_mb(),
        answers,
    })
}

/// Linear-interpolated quantile of unsorted values (0 for none).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Differences against an earlier report; `Err` lists the regressions beyond `tolerance`.
pub fn compare(baseline: &Accuracy, now: &Accuracy, tolerance: f64) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut regressions = Vec::new();
    let mut check = |name: &str, was: f64, is: f64| {
        let line = format!("{name:42} {was:.3} → {is:.3} ({:+.3})", is - was);
        if is < was - tolerance {
            regressions.push(line.clone());
        }
        lines.push(line);
    };
    check(
        "overall recall",
        baseline.overall.recall,
        now.overall.recall,
    );
    check(
        "unscaled class mean",
        baseline.unscaled_class_mean,
        now.unscaled_class_mean,
    );
    for (class, r) in &now.by_class {
        if let Some(b) = baseline.by_class.get(class) {
            // Classes are small (n ≈ 40): only a drop of two tolerances counts there.
            let line = format!(
                "  {class:40} {:.3} → {:.3} ({:+.3})",
                b.recall,
                r.recall,
                r.recall - b.recall
            );
            if r.recall < b.recall - 2.0 * tolerance.max(0.025) {
                regressions.push(line.clone());
            }
            lines.push(line);
        }
    }
    let fp = format!(
        "false positives {} → {}",
        baseline.false_positives, now.false_positives
    );
    if now.false_positives > baseline.false_positives {
        regressions.push(fp.clone());
    }
    lines.push(fp);
    (lines, regressions)
}

/// Process CPU time (user + system); see [`nasheed::engine::cpu_seconds`].
pub use nasheed::engine::cpu_seconds;

/// Peak resident set size of this process (MB) from /proc; 0 where unavailable.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Keeps the record of the one input scanned.
struct Last(Option<ScanRecord>);

impl ScanSink for Last {
    fn record(&mut self, record: ScanRecord) -> std::io::Result<()> {
        self.0 = Some(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(q: &str, r: &str, off: Option<f64>, class: &str, scale: f64) -> Truth {
        Truth {
            query_file: q.into(),
            ref_file: r.into(),
            ref_offset_s: off,
            distortion: class.into(),
            clip_len_s: "10".into(),
            time_scale: Some(scale),
            pitch_cents: None,
        }
    }

    fn answer(q: &str, r: Option<&str>, off: Option<f64>) -> Answer {
        Answer {
            query_file: q.into(),
            ref_file: r.map(Into::into),
            ref_offset_s: off,
            speed: Some(1.0),
            pitch_cents: Some(0.0),
            score: 10,
            confidence: 1.0,
            best_true_score: 0,
            best_wrong_score: 0,
            ms_total: 1.0,
            error: None,
        }
    }

    #[test]
    fn scores_hits_alignment_and_false_positives() {
        let t = vec![
            truth("queries/q1.wav", "refs/a.wav", Some(10.0), "clean", 1.0),
            truth("queries/q2.wav", "refs/a.wav", Some(10.0), "clean", 1.0),
            truth("queries/q3.wav", "refs/b.wav", Some(5.0), "speed_1.10", 1.1),
            truth("queries/q4.wav", "", None, "clean", 1.0),
            truth("queries/q5.wav", "", None, "clean", 1.0),
            truth("queries/q6.wav", "refs/b.wav", Some(1.0), "clean", 1.0),
        ];
        let a = vec![
            answer("q1.wav", Some("a.wav"), Some(10.05)), // hit, aligned
            answer("q2.wav", Some("a.wav"), Some(10.5)),  // hit, not aligned
            answer("q3.wav", Some("b.wav"), Some(5.25)),  // aligned thanks to the 2 % allowance
            answer("q4.wav", Some("a.wav"), Some(1.0)),   // false positive
            answer("q5.wav", None, None),                 // true negative
            answer("q6.wav", Some("a.wav"), Some(1.0)),   // wrong reference
        ];
        let s = score(&t, &a);
        assert_eq!((s.overall.n, s.overall.hits, s.overall.aligned), (4, 3, 2));
        assert_eq!((s.negatives, s.false_positives), (2, 1));
        assert_eq!(s.false_positive_queries, vec!["queries/q4.wav"]);
        assert_eq!(s.by_class["clean"].hits, 2);
        assert_eq!(s.by_class["speed_1.10"].aligned, 1);
        // Reported speed 1.0 against a truth of 1.10: aligned, but the factor is wrong.
        assert_eq!(s.by_class["speed_1.10"].factors_ok, 0);
        assert_eq!(s.by_class["clean"].factors_ok, 1);
        // Mean over unscaled classes only: "clean" is 2 of 3.
        assert!((s.unscaled_class_mean - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.offset_ok_share - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn baseline_comparison_flags_regressions() {
        let t = vec![
            truth("q1", "a", Some(0.0), "clean", 1.0),
            truth("q2", "a", Some(0.0), "clean", 1.0),
        ];
        let good = score(
            &t,
            &[
                answer("q1", Some("a"), Some(0.0)),
                answer("q2", Some("a"), Some(0.0)),
            ],
        );
        let worse = score(&t, &[answer("q1", Some("a"), Some(0.0))]);
        assert!(compare(&good, &good, 0.01).1.is_empty());
        assert!(!compare(&good, &worse, 0.01).1.is_empty());
        assert!(compare(&worse, &good, 0.01).1.is_empty());
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
