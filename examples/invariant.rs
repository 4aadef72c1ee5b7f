//! Measurement harness for issue 13's invariant first pass, over the library's own stages
//! (`fingerprint::triplets`, `matching::invariant`, `matching::verify`), with the postings held
//! in memory. Not the engine: it measures what the engine's first pass will do.
//!
//! ```text
//! cargo run --release --example invariant -- CORPUS_DIR [--distract N] [--cap N] [--limit N] [--cache DIR]
//! ```
//! `--stretch` also scales each distractor copy's log-frequency intervals by its own factor in
//! [0.80, 1.25] (transposed copies alone share their intervals, so for pitch-invariant keys they
//! are one recording many times over).
//! `--quads` stores each triplet under its quad key (`Triplet::quad_key`) and probes with
//! `triplets::quad_probes`; `--filter` keeps only hits whose stored fourth peak the upload has.
//! `--set name=value` changes a field of `TripletParams` (repeatable); `--distract N` adds N time-reversed, transposed copies of every reference's peaks (a scale
//! check: they can never truly match a forward upload); `--cap N` skips keys stored more than N
//! times (default 300 × (1 + N)); `--limit N` keeps the first N ground-truth rows. Decoded,
//! refined candidate peaks are cached in `--cache` (default /tmp/inv-cache).
//! CORPUS_DIR holds refs/, queries/ and ground_truth.csv (docs/EVALUATION.md; an optional
//! `pitch_cents` column is checked where present).
//!
//! Per query: the upload's triplets ([`triplets::query_triplets`]) probe the stored keys, hits in
//! the factor range vote ([`invariant::vote`]), the five best candidates get the fine pass and
//! the library's verifier, counting as alignments searched every offset of every reference hit
//! times the edits the pass resolves ([`invariant::edits_resolved`]). Beside it runs the engine's
//! identity pass over pair hashes (`matching::candidates` with the one warp `IDENTITY`); the
//! report's `hyb` column takes the better of the two, each confidence rescaled to the alignments
//! both searched, and `tri` the triplets alone (docs/EVASION.md, session 11).
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nasheed::audio::{self, SymphoniaSource};
use nasheed::fingerprint::triplets::{self, FinePeak, TripletParams};
use nasheed::fingerprint::{
    hash, peaks, spectrogram, Density, FingerprintParams, Landmark, Peak, Prints,
};
use nasheed::ids::TrackId;
use nasheed::matching::invariant::{self, Candidate};
use nasheed::matching::verify::{verify_candidates, QueryPeaks};
use nasheed::matching::{Match, MatchParams, References};

fn decode(path: &Path) -> anyhow::Result<Vec<f32>> {
    let mut src = SymphoniaSource::open(path)?;
    let mut out = Vec::new();
    audio::stream_mono(&mut src, 8000, |b| out.extend_from_slice(b))?;
    Ok(out)
}

/// Decoded + analysed file, cached on disk (decoding dominates and is the same for every run).
struct Analysed {
    cands: Vec<FinePeak>,
    frames: u32,
    seconds: f64,
}

fn load(path: &Path, cache: &Path, params: &FingerprintParams) -> anyhow::Result<Analysed> {
    let canon = std::fs::canonicalize(path)?;
    let key = format!(
        "{:016x}.bin",
        fxhash(canon.to_string_lossy().as_bytes())
            ^ std::fs::metadata(path)?.len().wrapping_mul(0x9e37)
    );
    let cpath = cache.join(key);
    if let Ok(mut f) = std::fs::File::open(&cpath) {
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let rd = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
        let frames = rd(0);
        let seconds = f64::from_le_bytes(buf[4..12].try_into().unwrap());
        let n = (buf.len() - 12) / 18;
        let cands = (0..n)
            .map(|i| {
                let o = 12 + 18 * i;
                FinePeak {
                    peak: Peak {
                        frame: rd(o),
                        bin: u16::from_le_bytes(buf[o + 4..o + 6].try_into().unwrap()),
                        salience: f32::from_bits(rd(o + 6)),
                        sub: [0, 0],
                    },
                    t: f32::from_bits(rd(o + 10)),
                    l: f32::from_bits(rd(o + 14)),
                }
            })
            .collect();
        return Ok(Analysed {
            cands,
            frames,
            seconds,
        });
    }
    let samples = decode(path)?;
    let spec = spectrogram::spectrogram(&samples, params);
    let mut plain = peaks::candidate_peaks(&spec, 0, params);
    triplets::refine(&spec, 0, &mut plain);
    let cands: Vec<FinePeak> = plain.iter().map(FinePeak::of).collect();
    let frames = spec.len() as u32;
    let seconds = samples.len() as f64 / 8000.0;
    let mut buf = Vec::with_capacity(12 + 18 * cands.len());
    buf.extend_from_slice(&frames.to_le_bytes());
    buf.extend_from_slice(&seconds.to_le_bytes());
    for c in &cands {
        buf.extend_from_slice(&c.peak.frame.to_le_bytes());
        buf.extend_from_slice(&c.peak.bin.to_le_bytes());
        buf.extend_from_slice(&c.peak.salience.to_bits().to_le_bytes());
        buf.extend_from_slice(&c.t.to_bits().to_le_bytes());
        buf.extend_from_slice(&c.l.to_bits().to_le_bytes());
    }
    std::fs::File::create(&cpath)?.write_all(&buf)?;
    Ok(Analysed {
        cands,
        frames,
        seconds,
    })
}

/// The cache's file-name hash (multiply-rotate, splitmix64 finaliser).
fn fxhash(bytes: &[u8]) -> u64 {
    let mut h = 0u64;
    for &b in bytes {
        h = (h.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Postings by key, as one sorted array with each key's range (what a posting store reads per key).
struct Index {
    ranges: HashMap<u64, (u32, u32), BuildHasherDefault<Mul>>,
    postings: Vec<Posting>,
}

/// A multiplicative hasher for the keys and the upload's peak grid (process-made integers).
#[derive(Default)]
struct Mul(u64);
impl Hasher for Mul {
    fn write(&mut self, _: &[u8]) {
        unreachable!("keys are integers")
    }
    fn write_i32(&mut self, k: i32) {
        self.write_u64(k as u32 as u64)
    }
    fn write_u32(&mut self, k: u32) {
        self.write_u64(k as u64)
    }
    fn write_u64(&mut self, k: u64) {
        self.0 = (self.0.rotate_left(29) ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    r: u32,
    t: f32,
    l: f32,
    span: f32,
    /// `Triplet::fourth`, NaN when none.
    fourth: (f32, f32),
}

/// A stored triplet's key: the triplet key, or with `quads` its quad key (none without a fourth).
fn stored_key(t: &triplets::Triplet, p: &TripletParams, quads: bool) -> Option<u64> {
    match quads {
        true => t.quad_key(p),
        false => Some(t.key as u64),
    }
}

fn build_index(refs: &[Vec<FinePeak>], p: &TripletParams, window: usize, quads: bool) -> Index {
    // Two passes (count, then place) so that a 10 000-reference index needs no sort buffer.
    let mut ranges: HashMap<u64, (u32, u32), BuildHasherDefault<Mul>> = HashMap::default();
    for peaks in refs {
        for t in triplets::reference_triplets(peaks, p, window) {
            if let Some(k) = stored_key(&t, p, quads) {
                ranges.entry(k).or_default().1 += 1;
            }
        }
    }
    let mut keys: Vec<u64> = ranges.keys().copied().collect();
    keys.sort_unstable();
    // Each key's range starts empty at its place and grows to its count as postings land.
    let mut total = 0u32;
    for k in keys {
        if let Some(r) = ranges.get_mut(&k) {
            let count = r.1;
            *r = (total, total);
            total += count;
        }
    }
    let empty = Posting {
        r: 0,
        t: 0.0,
        l: 0.0,
        span: 0.0,
        fourth: (f32::NAN, f32::NAN),
    };
    let mut postings = vec![empty; total as usize];
    for (r, peaks) in refs.iter().enumerate() {
        for t in triplets::reference_triplets(peaks, p, window) {
            let Some(k) = stored_key(&t, p, quads) else {
                continue;
            };
            if let Some(range) = ranges.get_mut(&k) {
                postings[range.1 as usize] = Posting {
                    r: r as u32,
                    t: t.t,
                    l: t.l,
                    span: t.span,
                    fourth: t.fourth.unwrap_or((f32::NAN, f32::NAN)),
                };
                range.1 += 1;
            }
        }
    }
    Index { ranges, postings }
}

impl Index {
    fn get(&self, key: u64) -> &[Posting] {
        match self.ranges.get(&key) {
            Some(&(a, z)) => &self.postings[a as usize..z as usize],
            None => &[],
        }
    }

    /// Each key's posting count.
    fn counts(&self) -> impl Iterator<Item = usize> + '_ {
        self.ranges.values().map(|&(a, z)| (z - a) as usize)
    }
}

/// The candidate as the report reads it.
#[derive(Debug, Clone, Copy)]
struct Cand {
    r: u32,
    score: u32,
    time: f64,
    intercept: f64,
    ff: f64,
}

impl From<&Candidate> for Cand {
    fn from(c: &Candidate) -> Self {
        Cand {
            r: c.reference,
            score: c.score,
            time: c.line.time,
            intercept: c.line.intercept,
            ff: c.semitones,
        }
    }
}
// ---------------------------------------------------------------------------------------------
// Verification with the library's verifier

/// The references as the library's matcher sees them: pair postings (for the identity pass),
/// stored peaks and lengths.
struct Refs<'a> {
    peaks: &'a [Vec<Peak>],
    frames: &'a [u32],
    pairs: &'a HashMap<u32, Vec<(u32, u32)>, BuildHasherDefault<Mul>>,
}
impl References for Refs<'_> {
    type Error = std::convert::Infallible;
    fn lookup(
        &self,
        hashes: &[u32],
        cap: usize,
        hit: &mut dyn FnMut(u32, TrackId, u32),
    ) -> Result<(), Self::Error> {
        for &h in hashes {
            let postings = self.pairs.get(&h).map(Vec::as_slice).unwrap_or_default();
            for &(r, t) in postings.iter().filter(|_| postings.len() <= cap) {
                hit(h, TrackId(r as i64), t);
            }
        }
        Ok(())
    }
    /// The harness looks its triplets up itself: the library's pass sees none here, so
    /// `candidates` runs the identity pass alone.
    fn lookup_triplets(
        &self,
        _: &[u32],
        _: usize,
        _: &mut dyn FnMut(TrackId, triplets::StoredTriplet),
    ) -> Result<(), Self::Error> {
        Ok(())
    }
    fn peaks(&self, t: TrackId) -> Result<Vec<Peak>, Self::Error> {
        Ok(self.peaks[t.0 as usize].clone())
    }
    fn frames(&self, t: TrackId) -> u32 {
        self.frames[t.0 as usize]
    }
}

/// Landmark pairs of peaks at a density (the engine's own hashes).
fn landmarks(
    cands: &[FinePeak],
    params: &FingerprintParams,
    d: Density,
) -> (Vec<Landmark>, Vec<Peak>) {
    let plain: Vec<Peak> = cands.iter().map(|f| f.peak).collect();
    let kept = peaks::select_peaks(&plain, params.rank_window, d.peaks_per_window);
    let mut out = Vec::new();
    hash::pair_peaks(
        &kept,
        0..u32::MAX,
        params.max_dt,
        params.max_df,
        d.fan_out,
        &mut out,
    );
    (out, kept)
}

// ---------------------------------------------------------------------------------------------
// Corpus and report

struct Truth {
    file: String,
    ref_file: String,
    offset: f64,
    class: String,
    len: f64,
    scale: f64,
    cents: Option<f64>,
}

fn base(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[derive(Default, Clone)]
struct Row {
    n: usize,
    top1: usize,
    top5: usize,
    tf_ok: usize,
    pitch_n: usize,
    pitch_ok: usize,
    off_ok: usize,
    ver: usize,
    ver119: usize,
    vtf: usize,
    vp_n: usize,
    vp: usize,
    voff: usize,
}

impl Row {
    fn add(&mut self, o: &Row) {
        self.n += o.n;
        self.top1 += o.top1;
        self.top5 += o.top5;
        self.tf_ok += o.tf_ok;
        self.pitch_n += o.pitch_n;
        self.pitch_ok += o.pitch_ok;
        self.off_ok += o.off_ok;
        self.ver += o.ver;
        self.ver119 += o.ver119;
        self.vtf += o.vtf;
        self.vp_n += o.vp_n;
        self.vp += o.vp;
        self.voff += o.voff;
    }
}

struct QResult {
    truth: usize,
    cands: Vec<Cand>,
    touched: usize,
    /// Postings whose factors fall in the searched range: all a posting list sorted by anchor
    /// log frequency (and span) would have to read.
    inrange: usize,
    lookups: usize,
    ms_vote: f64,
    ms_hash: f64,
    ms_verify: f64,
    /// The verified match (its refined candidate, confidence, fraction), trials counted over
    /// every warp the invariant pass resolves / over today's 119 warps.
    verified: Option<(Cand, f64, f64)>,
    verified119: Option<(Cand, f64, f64)>,
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `name=value` for a field of the triplet parameters.
fn set(tp: &mut TripletParams, kv: &str) -> anyhow::Result<()> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--set wants name=value, got {kv}"))?;
    match k {
        "reference_peaks" => tp.reference_peaks = v.parse()?,
        "reference_fan" => tp.reference_fan = v.parse()?,
        "query_peaks" => tp.query_peaks = v.parse()?,
        "query_fan" => tp.query_fan = v.parse()?,
        "ratio_step" => tp.ratio_step = v.parse()?,
        "semitone_step" => tp.semitone_step = v.parse()?,
        "band_semitones" => tp.band_semitones = v.parse()?,
        "probe_margin" => tp.probe_margin = v.parse()?,
        "min_span_frames" => tp.min_span_frames = v.parse()?,
        "query_fourths" => tp.query_fourths = v.parse()?,
        _ => anyhow::bail!("unknown triplet parameter {k}"),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut corpus = None;
    let mut cache = PathBuf::from("/tmp/inv-cache");
    let mut limit = usize::MAX;
    let mut distract = 0usize;
    let mut cap = None;
    let mut tp = TripletParams::default();
    let mut filter = false;
    let mut quads = false;
    let mut stretch = false;
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--cache" => cache = PathBuf::from(value()?),
            "--limit" => limit = value()?.parse()?,
            "--distract" => distract = value()?.parse()?,
            "--cap" => cap = Some(value()?.parse::<usize>()?),
            "--filter" => filter = true,
            "--quads" => quads = true,
            "--stretch" => stretch = true,
            "--set" => set(&mut tp, &value()?)?,
            _ => corpus = Some(PathBuf::from(a)),
        }
    }
    let corpus = corpus.ok_or_else(|| anyhow::anyhow!("usage: invariant CORPUS_DIR"))?;
    let cap = cap.unwrap_or(300 * (1 + distract));
    std::fs::create_dir_all(&cache)?;
    let params = FingerprintParams::default();
    println!("{tp:?}");
    let window = params.rank_window;

    // Ground truth.
    let mut rd = csv::Reader::from_path(corpus.join("ground_truth.csv"))?;
    let hdr = rd.headers()?.clone();
    let col = |n: &str| hdr.iter().position(|h| h == n);
    let need = |n: &str| col(n).ok_or_else(|| anyhow::anyhow!("no column {n}"));
    let (cq, cr, co, cd, cl) = (
        need("query_file")?,
        need("ref_file")?,
        need("ref_offset_s")?,
        need("distortion")?,
        need("clip_len_s")?,
    );
    let (cs, cp) = (col("time_scale"), col("pitch_cents"));
    let mut truth = Vec::new();
    for rec in rd.records() {
        let rec = rec?;
        let g = |i: usize| rec.get(i).unwrap_or("").to_string();
        truth.push(Truth {
            file: g(cq),
            ref_file: base(&g(cr)),
            offset: g(co).parse().unwrap_or(0.0),
            class: g(cd),
            len: g(cl).parse().unwrap_or(0.0),
            scale: cs.and_then(|c| rec.get(c)?.parse().ok()).unwrap_or(1.0),
            cents: cp.and_then(|c| rec.get(c)?.parse().ok()),
        });
    }
    truth.truncate(limit);

    // References.
    let mut ref_files: Vec<PathBuf> = std::fs::read_dir(corpus.join("refs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    ref_files.sort();
    let mut names: Vec<String> = ref_files
        .iter()
        .map(|p| base(&p.to_string_lossy()))
        .collect();
    let mut ref_secs = 0.0;
    let mut ref_cands: Vec<Vec<FinePeak>> = Vec::new();
    let mut ref_frames = Vec::new();
    for p in &ref_files {
        let a = load(p, &cache, &params)?;
        ref_secs += a.seconds;
        ref_frames.push(a.frames);
        ref_cands.push(a.cands);
    }
    // Distractors: each reference's peaks time-reversed (never a true match for a forward
    // upload) and transposed by a different number of semitones per copy.
    let originals = ref_cands.len();
    // Distractors start from the peaks a reference stores (its candidates would not fit in
    // memory at 10 000 references); every later selection takes fewer.
    let stored: Vec<Vec<FinePeak>> = ref_cands
        .iter()
        .map(|c| triplets::select(c, window, params.verify_peaks_per_window))
        .collect();
    // Interval factors in [0.80, 1.25] spread by the golden ratio, or 1 without `--stretch`.
    let stretch_of = |copy: usize| match stretch {
        true => 0.8 + 0.45 * ((copy as f32 + 1.0) * 0.618_034).fract(),
        false => 1.0,
    };
    for copy in 0..distract {
        let shift = [
            0.0f32, 1.5, -2.5, 3.5, -4.5, 5.5, -6.5, 7.5, -8.5, 9.5, -10.5, 11.5,
        ][copy % 12]
            + 0.25 * (copy / 12) as f32;
        for r in 0..originals {
            let n = ref_frames[r];
            let mut c: Vec<FinePeak> = stored[r]
                .iter()
                .filter_map(|p| {
                    // `--stretch`: intervals scaled about the band's middle (72 semitones =
                    // bin 64), another factor per copy, so that copies differ in what
                    // pitch-invariant keys see (a transposed copy has the same intervals).
                    let l = 72.0 + (p.l - 72.0) * stretch_of(copy) + shift;
                    let b = 2f32.powf(l / 12.0).round();
                    (b >= params.bins.0 as f32 && b < params.bins.1 as f32).then_some(FinePeak {
                        peak: Peak {
                            frame: n - 1 - p.peak.frame,
                            bin: b as u16,
                            salience: p.peak.salience,
                            sub: [0, 0],
                        },
                        t: (n - 1) as f32 - p.t,
                        l,
                    })
                })
                .collect();
            c.sort_by_key(|p| (p.peak.frame, p.peak.bin));
            ref_cands.push(c);
            ref_frames.push(n);
            ref_secs += n as f64 * 0.016;
            names.push(format!("distractor{copy}_{}", names[r]));
        }
    }
    let hours = ref_secs / 3600.0;
    let t0 = Instant::now();
    let index = build_index(&ref_cands, &tp, window, quads);
    let build_s = t0.elapsed().as_secs_f64();
    let n_post = index.postings.len() as f64;
    let keys = index.ranges.len();
    // Occupancy seen by a random stored triplet: sum of count² / postings.
    let occ: f64 = index.counts().map(|c| (c as f64).powi(2)).sum::<f64>() / n_post;
    let over_cap: f64 = index.counts().filter(|&c| c > cap).sum::<usize>() as f64 / n_post;
    println!(
        "{} refs, {:.2} h: {} postings ({:.0}/audio h, {:.2} MB/h at 5 B), {} keys, occupancy seen by a stored triplet {:.1}, {:.1} % of postings in keys over the cap {}; built in {:.1} s",
        names.len(), hours, n_post, n_post / hours, n_post / hours * 5e-6, keys, occ, 100.0 * over_cap, cap, build_s
    );
    let ver_peaks: Vec<Vec<Peak>> = ref_cands
        .iter()
        .map(|c| {
            let p: Vec<Peak> = c.iter().map(|f| f.peak).collect();
            peaks::select_peaks(&p, window, params.verify_peaks_per_window)
        })
        .collect();
    let mut pairs: HashMap<u32, Vec<(u32, u32)>, BuildHasherDefault<Mul>> = HashMap::default();
    for (r, c) in ref_cands.iter().enumerate() {
        for l in landmarks(c, &params, params.reference).0 {
            pairs.entry(l.hash).or_default().push((r as u32, l.frame));
        }
    }
    let refs_v = Refs {
        peaks: &ver_peaks,
        frames: &ref_frames,
        pairs: &pairs,
    };
    let identity = MatchParams::default();
    let mut pair_ms = Vec::new();
    let (mut in_range_all, mut kept_all) = (0usize, 0usize);

    let mut results = Vec::new();
    let mp = MatchParams::default();
    let mut keys: Vec<u64> = Vec::new();
    let mut tkeys: Vec<u32> = Vec::new();
    let mut hits = Vec::new();
    for (qi, t) in truth.iter().enumerate() {
        let q = load(&corpus.join(&t.file), &cache, &params)?;
        let th = Instant::now();
        let tups = triplets::query_triplets(&q.cands, &tp, window);
        let tv = Instant::now();
        let (mut touched, mut lookups, mut unfiltered) = (0usize, 0usize, 0usize);
        hits.clear();
        // The upload's peaks on a (frame, quarter-semitone) grid, each filling its neighbours:
        // where a stored triplet's fourth peak must be for a hit to count (`--filter`).
        let mut grid: std::collections::HashSet<(i32, i32), BuildHasherDefault<Mul>> =
            Default::default();
        if filter {
            for f in triplets::select(&q.cands, window, 60) {
                let (ft, fl) = (f.t.round() as i32, (f.l * 4.0).round() as i32);
                for dt in -1..=1 {
                    for dl in -1..=1 {
                        grid.insert((ft + dt, fl + dl));
                    }
                }
            }
        }
        let range = (
            tp.time_factors.0.ln(),
            tp.time_factors.1.ln(),
            tp.max_shift_semitones,
        );
        for qt in &tups {
            if quads {
                triplets::quad_probes(qt, &tp, &mut keys, &mut tkeys);
            } else {
                triplets::probes(qt, &tp, &mut tkeys);
                keys.clear();
                keys.extend(tkeys.iter().map(|&k| k as u64));
            }
            for &k in &keys {
                lookups += 1;
                let ps = index.get(k);
                if ps.len() > cap {
                    continue;
                }
                touched += ps.len();
                for p in ps {
                    let at = (p.t, p.l, p.span.ln());
                    let Some(h) = invariant::hit(qt, qt.span.ln(), p.r, at, range) else {
                        continue;
                    };
                    unfiltered += 1;
                    let (r4, d4) = p.fourth;
                    if !filter
                        || r4.is_nan()
                        || grid.contains(&(
                            (qt.t + r4 * qt.span).round() as i32,
                            ((qt.l + d4) * 4.0).round() as i32,
                        ))
                    {
                        hits.push(h);
                    }
                }
            }
        }
        let cands = invariant::vote(&hits);
        let te = Instant::now();
        in_range_all += unfiltered;
        kept_all += hits.len();
        let qpeaks: Vec<Peak> = triplets::select(&q.cands, window, 60)
            .iter()
            .map(|f| f.peak)
            .collect();
        let qpk = QueryPeaks::new(&qpeaks, params.bins, q.frames);
        // Alignments searched: every offset window (3 frames) of every reference hit, times
        // the edits the pass resolves.
        let mut touched_refs: Vec<u32> = hits.iter().map(|h| h.reference).collect();
        touched_refs.sort_unstable();
        touched_refs.dedup();
        let top: Vec<Candidate> = cands
            .iter()
            .take(5)
            .map(|c| invariant::fine_pass(c, &qpk, &ver_peaks[c.reference as usize]))
            .collect();
        let ms: Vec<Match> = top
            .iter()
            .map(|c| c.to_match(TrackId(c.reference as i64)))
            .collect();
        let pick = |ok: Vec<Match>| {
            ok.into_iter()
                .max_by(|a, b| {
                    a.confidence
                        .total_cmp(&b.confidence)
                        .then(a.score.cmp(&b.score))
                })
                .and_then(|m| {
                    let c = top.iter().find(|c| c.reference as i64 == m.track.0)?;
                    Some((
                        Cand::from(c),
                        m.confidence,
                        m.verification.map_or(0.0, |v| v.fraction()),
                    ))
                })
        };
        // Each pass's confidence counts its own alignments twice, as the engine's
        // (`matching::Searched::counted`): the two passes share the error rate.
        let tri_trials = 2.0
            * invariant::alignments_searched(
                touched_refs.iter().map(|&r| ref_frames[r as usize]),
                q.frames,
                &tp,
            );
        let Ok(tri) = verify_candidates(&refs_v, &qpk, ms, tri_trials, &mp);
        let ms_verify = te.elapsed().as_secs_f64() * 1e3;
        // The identity pass over pair hashes, as the engine runs it with one warp.
        let tp0 = Instant::now();
        let (query_pairs, query_peaks) = landmarks(&q.cands, &params, params.query);
        let prints = Prints {
            landmarks: query_pairs,
            peaks: query_peaks,
        };
        // The library's pass sees no triplets here: its confidences count the pairs alone.
        let Ok((pair, _)) = nasheed::matching::candidates(&refs_v, &prints, q.frames, &identity);
        pair_ms.push(tp0.elapsed().as_secs_f64() * 1e3);
        let best_tri = tri
            .iter()
            .map(|m| (m.confidence, m))
            .filter(|x| x.0 >= mp.min_confidence)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.score.cmp(&b.1.score)));
        let best_pair = pair
            .iter()
            .map(|m| (m.confidence, m))
            .filter(|x| x.0 >= mp.min_confidence)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.score.cmp(&b.1.score)));
        let as_result = |(conf, m): (f64, &Match)| {
            let c = Cand {
                r: m.track.0 as u32,
                score: m.score,
                time: m.line.time,
                intercept: m.line.intercept,
                ff: 12.0 * m.warp.freq.log2(),
            };
            (c, conf, m.verification.map_or(0.0, |v| v.fraction()))
        };
        let hybrid = match (best_tri, best_pair) {
            (Some(a), Some(b)) => Some(if (a.0, a.1.score) >= (b.0, b.1.score) {
                a
            } else {
                b
            }),
            (a, b) => a.or(b),
        };
        results.push(QResult {
            truth: qi,
            cands: cands.iter().map(Cand::from).collect(),
            touched,
            inrange: hits.len(),
            lookups,
            ms_vote: (te - tv).as_secs_f64() * 1e3,
            ms_hash: (tv - th).as_secs_f64() * 1e3,
            ms_verify,
            verified: hybrid.map(as_result),
            verified119: pick(tri.clone()),
        });
    }
    report(&truth, &results, &names, true);
    let p50 = pct(&mut pair_ms, 0.5);
    println!("identity pair pass (all queries): p50 {p50:.2} ms");
    println!(
        "hits in the factor range {in_range_all}, kept by the fourth-peak filter {kept_all} ({:.1} %)",
        100.0 * kept_all as f64 / in_range_all.max(1) as f64
    );
    Ok(())
}

fn report(truth: &[Truth], results: &[QResult], names: &[String], verify: bool) {
    let mut by: std::collections::BTreeMap<String, Row> = Default::default();
    let mut by_len: std::collections::BTreeMap<String, Row> = Default::default();
    let mut all = Row::default();
    let mut neg_scores = Vec::new();
    let mut pos_scores = Vec::new(); // top-1 score when right, else 0
    let (mut fp_ver, mut fp_ver119, mut nneg) = (0, 0, 0);
    let mut neg_conf: Vec<f64> = Vec::new();
    let mut inrange10 = vec![];
    let (mut touched10, mut vote10, mut hash10, mut look10, mut ver10) =
        (vec![], vec![], vec![], vec![], vec![]);
    // (reported factors, truth) -> (tf ok, pitch ok (None when no truth), offset ok)
    let judge = |c: &Cand, t: &Truth| {
        let tf = (c.time / t.scale - 1.0).abs() <= 0.01;
        let p = t.cents.map(|want| (c.ff * 100.0 - want).abs() <= 20.0);
        let tol = 0.1
            + if (t.scale - 1.0).abs() > 1e-9 {
                0.02 * t.len
            } else {
                0.0
            };
        let off = (c.intercept * 0.016 - t.offset).abs() <= tol;
        (tf, p, off)
    };
    for r in results {
        let t = &truth[r.truth];
        if (t.len - 10.0).abs() < 0.5 {
            touched10.push(r.touched as f64);
            inrange10.push(r.inrange as f64);
            vote10.push(r.ms_vote);
            hash10.push(r.ms_hash);
            look10.push(r.lookups as f64);
            ver10.push(r.ms_verify);
        }
        let top = r.cands.first();
        if t.ref_file.is_empty() {
            nneg += 1;
            neg_scores.push(top.map_or(0, |c| c.score));
            fp_ver += r.verified.is_some() as usize;
            fp_ver119 += r.verified119.is_some() as usize;
            if let Some(v) = r.verified {
                neg_conf.push(v.1);
                println!(
                    "  false positive: {} ({}) -> {} score {} time {:.3} pitch {:+.0} c offset {:.1} s, confidence {:.6}, fraction {:.2}",
                    t.file, t.class, names[v.0.r as usize], v.0.score, v.0.time, v.0.ff * 100.0,
                    v.0.intercept * 0.016, v.1, v.2
                );
            }
            continue;
        }
        let is = |c: &Cand| names[c.r as usize] == t.ref_file;
        let mut row = Row {
            n: 1,
            top1: top.is_some_and(is) as usize,
            top5: r.cands.iter().take(5).any(is) as usize,
            ..Default::default()
        };
        if row.top1 == 1 {
            let c = top.unwrap();
            pos_scores.push(c.score);
            let (tf, p, off) = judge(c, t);
            row.tf_ok = tf as usize;
            row.pitch_n = p.is_some() as usize;
            row.pitch_ok = (p == Some(true)) as usize;
            row.off_ok = off as usize;
        } else {
            pos_scores.push(0);
        }
        if let Some((c, _, _)) = r.verified.filter(|v| is(&v.0)) {
            row.ver = 1;
            let (tf, p, off) = judge(&c, t);
            row.vtf = tf as usize;
            row.vp_n = p.is_some() as usize;
            row.vp = (p == Some(true)) as usize;
            row.voff = off as usize;
        }
        row.ver119 = r.verified119.is_some_and(|v| is(&v.0)) as usize;
        for acc in [
            by.entry(t.class.clone()).or_default(),
            by_len.entry(format!("{:>2}s", t.len)).or_default(),
            &mut all,
        ] {
            acc.add(&row);
        }
    }
    let f = |a: usize, b: usize| {
        if b == 0 {
            "   -".to_string()
        } else {
            format!("{:.2}", a as f64 / b as f64)
        }
    };
    println!(
        "{:<34} {:>4} {:>5} {:>5} {:>5} {:>5} {:>5} | {:>5} {:>6} {:>5} {:>5} {:>5}",
        "class", "n", "top1", "top5", "tf1%", "p20c", "off", "hyb", "tri", "vtf", "vp", "voff"
    );
    let line = |name: &str, r: &Row| {
        let mut s = format!(
            "{:<34} {:>4} {:>5} {:>5} {:>5} {:>5} {:>5}",
            name,
            r.n,
            f(r.top1, r.n),
            f(r.top5, r.n),
            f(r.tf_ok, r.top1),
            f(r.pitch_ok, r.pitch_n),
            f(r.off_ok, r.top1),
        );
        if verify {
            s += &format!(
                " | {:>5} {:>6} {:>5} {:>5} {:>5}",
                f(r.ver, r.n),
                f(r.ver119, r.n),
                f(r.vtf, r.ver),
                f(r.vp, r.vp_n),
                f(r.voff, r.ver)
            );
        }
        println!("{s}");
    };
    for (c, r) in &by {
        line(c, r);
    }
    for (c, r) in &by_len {
        line(&format!("length {c}"), r);
    }
    line("OVERALL", &all);
    let mut ns = neg_scores.clone();
    ns.sort_unstable();
    let nmax = ns.last().copied().unwrap_or(0);
    let q = |v: &[u32], p: f64| {
        if v.is_empty() {
            0
        } else {
            v[((v.len() - 1) as f64 * p).round() as usize]
        }
    };
    let mut ps: Vec<u32> = pos_scores.iter().copied().filter(|&s| s > 0).collect();
    ps.sort_unstable();
    let rec_at = |th: u32| {
        pos_scores.iter().filter(|&&s| s > th).count() as f64 / pos_scores.len().max(1) as f64
    };
    println!(
        "score separation: negatives (n={}) top score p50 {} p90 {} p99 {} max {}; positives with top-1 right p10 {} p50 {}; top-1 recall at score > max negative ({}): {:.3}; at score > p99 negative ({}): {:.3}",
        nneg, q(&ns, 0.5), q(&ns, 0.9), q(&ns, 0.99), nmax, q(&ps, 0.1), q(&ps, 0.5), nmax, rec_at(nmax), q(&ns, 0.99), rec_at(q(&ns, 0.99)),
    );
    if verify {
        println!(
            "verified: hybrid (triplets + identity pairs) recall {:.3} / false positives {}/{}; triplets alone recall {:.3} / false positives {}/{}; hybrid negatives' confidences passing: {:?}",
            all.ver as f64 / all.n.max(1) as f64, fp_ver, nneg,
            all.ver119 as f64 / all.n.max(1) as f64, fp_ver119, nneg, neg_conf
        );
    }
    println!(
        "cost per 10 s query (n={}): lookups p50 {:.0}, postings touched p50 {:.0} p95 {:.0}, of them in the factor range (hits voted) p50 {:.0}; hash extraction p50 {:.2} ms; lookup+vote p50 {:.2} ms p95 {:.2} ms; verify (fine pass + verifier, top 5) p50 {:.2} ms p95 {:.2} ms",
        vote10.len(),
        pct(&mut look10, 0.5),
        pct(&mut touched10.clone(), 0.5),
        pct(&mut touched10, 0.95),
        pct(&mut inrange10, 0.5),
        pct(&mut hash10, 0.5),
        pct(&mut vote10.clone(), 0.5),
        pct(&mut vote10, 0.95),
        pct(&mut ver10.clone(), 0.5),
        pct(&mut ver10, 0.95),
    );
}
