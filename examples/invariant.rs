//! Measurement prototype for issue 13: a first pass of hashes invariant to speed, tempo and
//! pitch edits, with the factors read off the matched hits. Not wired into the engine.
//!
//! ```text
//! cargo run --release --example invariant -- CORPUS_DIR [--variants t3a,q4a] [--def NAME:base=t3a,band=6,...]
//!     [--verify [--fine]] [--distract N] [--limit N] [--cache DIR]
//! ```
//! `--def` defines a variant on the command line (keys as in [`Variant`]); `--fine` searches a
//! small warp grid with the verifier's own count before verifying; `--distract N` adds N
//! time-reversed, transposed copies of every reference's peaks (a scale check: they can never
//! truly match); `--limit N` keeps the first N ground-truth rows. Decoded peaks are cached in
//! `--cache` (default /tmp/inv-cache).
//!
//! Measured 2026-12-07 (2 cores shared with other work, so times are upper bounds), variant
//! `t3g` (`--def t3g:base=t3a,band=6,r_step=0.0625,d_step=0.33,probe=0.2,max_occ=300 --verify --fine`):
//! shared corpus top-1 0.96, verified 0.911, 0/250 false positives; extra-edits set top-1 0.99,
//! verified 0.986, 1/130 (a held-out warzone2100 track whose intro is reference track11's
//! material at tempo 0.8); 1.6 MB per audio hour at 5 bytes a posting; lookup + vote 68 ms p50
//! per 10 s query against 56 references. Quads (`q4c`) cost 1.1 MB/h and 61 ms but lose noisy
//! clips (verified 0.862).
//! CORPUS_DIR holds refs/, queries/ and ground_truth.csv (docs/EVALUATION.md; an optional
//! `pitch_cents` column is checked where present).
//!
//! **Peaks.** The library's candidate peaks (whitened log spectrogram, local maxima ±4 frames ×
//! ±5 bins), refined by parabolic interpolation in frequency and time on the whitened log power,
//! so that a peak has a fractional frame `t` and a log frequency `l = 12·log2(bin)` (semitones;
//! linear bins are 280 cents wide at bin 6 and 7.5 cents at bin 232, too coarse for log-frequency
//! invariants without interpolation). Then the library's rank selection (strongest k per ±31
//! frames): references sparse, queries dense.
//!
//! **Hashes.** An anchor peak and k−1 of its n nearest later peaks (in time) inside a zone
//! (`dt` frames after it, within ±`dl` semitones); references take n targets, queries m > n
//! (and a zone widened for the time factors searched), so that a reference's tuples are nearly a
//! subset of the query's. Under a time factor (speed, tempo) every time gap scales alike and under
//! a frequency factor (speed, pitch) every log frequency shifts alike, so the hash uses only
//! - ratios of the targets' time gaps to the span (anchor → last target): k−2 numbers in [0, 1];
//! - log-frequency differences to the anchor (semitones): k−1 numbers.
//!   Each is quantised; the query also probes the neighbouring cell of any value within `probe`
//!   of a cell boundary (the index stores one cell). A posting holds (reference, anchor time,
//!   anchor log frequency, span).
//!
//! **Votes.** Each hit gives a time factor (reference span / query span), a frequency factor
//! (query anchor log-frequency − reference's) and, under the factor of its cell, an offset. Hits
//! are counted per (reference, time-factor cell, frequency-factor cell, offset cell); the
//! strongest cells are refined: a fine search over the time factor for the offset line that
//! holds the most hits, a least-squares line through them, the median frequency factor. The score
//! is the number of distinct (query anchor, reference anchor) pairs on that line.
//!
//! `--verify` checks each query's best candidates with the library's peak verifier under the
//! estimated warp (`matching::verify::verify_candidates`), counting as alignments searched every
//! offset of every reference touched times the distinct warps the invariant pass can resolve.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nasheed::audio::{self, SymphoniaSource};
use nasheed::fingerprint::{peaks, spectrogram, FingerprintParams, Peak, Warp};
use nasheed::ids::TrackId;
use nasheed::matching::verify::{verify_candidates, QueryPeaks};
use nasheed::matching::{Line, Match, MatchParams, References};

// ---------------------------------------------------------------------------------------------
// Peaks with sub-bin, sub-frame positions

#[derive(Debug, Clone, Copy)]
struct FP {
    /// Integer frame and bin (as the library's peaks).
    frame: u32,
    bin: u16,
    sal: f32,
    /// Interpolated frame.
    t: f32,
    /// Interpolated log frequency, semitones: 12·log2(bin).
    l: f32,
}

fn parabola(y0: f32, y1: f32, y2: f32) -> f32 {
    let den = y0 - 2.0 * y1 + y2;
    if !y0.is_finite() || !y2.is_finite() || den.abs() < 1e-9 {
        return 0.0;
    }
    (0.5 * (y0 - y2) / den).clamp(-0.5, 0.5)
}

/// Candidate peaks of a whole signal with interpolated positions, sorted by (frame, bin).
fn analyse(samples: &[f32], params: &FingerprintParams) -> (Vec<FP>, u32) {
    let frames = spectrogram::spectrogram(samples, params);
    let cands = peaks::candidate_peaks(&frames, 0, params);
    let n = frames.len();
    let out = cands
        .iter()
        .map(|p| {
            let (t, b) = (p.frame as usize, p.bin as usize);
            let f = &frames[t];
            let db = parabola(f[b - 1], f[b], f[b + 1]);
            let dt = if t > 0 && t + 1 < n {
                parabola(frames[t - 1][b], f[b], frames[t + 1][b])
            } else {
                0.0
            };
            FP {
                frame: p.frame,
                bin: p.bin,
                sal: p.salience,
                t: p.frame as f32 + dt,
                l: 12.0 * (b as f32 + db).log2(),
            }
        })
        .collect();
    (out, n as u32)
}

/// The library's rank selection (`peaks::select_peaks`) on refined peaks: it keeps a
/// subsequence of them, found again by (frame, bin).
fn select(c: &[FP], window: u32, k: usize) -> Vec<FP> {
    let kept = peaks::select_peaks(&to_peaks(c), window as usize, k);
    let mut all = c.iter();
    kept.iter()
        .filter_map(|k| all.find(|p| (p.frame, p.bin) == (k.frame, k.bin)).copied())
        .collect()
}

fn to_peaks(c: &[FP]) -> Vec<Peak> {
    c.iter()
        .map(|p| Peak {
            frame: p.frame,
            bin: p.bin,
            salience: p.sal,
        })
        .collect()
}

fn decode(path: &Path) -> anyhow::Result<Vec<f32>> {
    let mut src = SymphoniaSource::open(path)?;
    let mut out = Vec::new();
    audio::stream_mono(&mut src, 8000, |b| out.extend_from_slice(b))?;
    Ok(out)
}

/// Decoded + analysed file, cached on disk (decoding dominates and is the same for all variants).
struct Analysed {
    cands: Vec<FP>,
    frames: u32,
    seconds: f64,
    /// CPU seconds spent decoding and analysing (0 when read from the cache).
    decode_s: f64,
    analyse_s: f64,
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
        let mut cands = Vec::with_capacity(n);
        for i in 0..n {
            let o = 12 + 18 * i;
            cands.push(FP {
                frame: rd(o),
                bin: u16::from_le_bytes(buf[o + 4..o + 6].try_into().unwrap()),
                sal: f32::from_bits(rd(o + 6)),
                t: f32::from_bits(rd(o + 10)),
                l: f32::from_bits(rd(o + 14)),
            });
        }
        return Ok(Analysed {
            cands,
            frames,
            seconds,
            decode_s: 0.0,
            analyse_s: 0.0,
        });
    }
    let t0 = Instant::now();
    let samples = decode(path)?;
    let t1 = Instant::now();
    let (cands, frames) = analyse(&samples, params);
    let t2 = Instant::now();
    let seconds = samples.len() as f64 / 8000.0;
    let mut buf = Vec::with_capacity(12 + 18 * cands.len());
    buf.extend_from_slice(&frames.to_le_bytes());
    buf.extend_from_slice(&seconds.to_le_bytes());
    for c in &cands {
        buf.extend_from_slice(&c.frame.to_le_bytes());
        buf.extend_from_slice(&c.bin.to_le_bytes());
        buf.extend_from_slice(&c.sal.to_bits().to_le_bytes());
        buf.extend_from_slice(&c.t.to_bits().to_le_bytes());
        buf.extend_from_slice(&c.l.to_bits().to_le_bytes());
    }
    std::fs::File::create(&cpath)?.write_all(&buf)?;
    Ok(Analysed {
        cands,
        frames,
        seconds,
        decode_s: (t1 - t0).as_secs_f64(),
        analyse_s: (t2 - t1).as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// Fast hashing for the maps

#[derive(Default)]
struct Fx(u64);
impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64)
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u64(v as u32 as u64)
    }
    fn finish(&self) -> u64 {
        // The multiply leaves low bits depending on low bits only, and the packed keys' low
        // bits take few values; the map indexes buckets by low bits. Mix (splitmix64 finaliser).
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
}
type FastHash = BuildHasherDefault<Fx>;
fn fxhash(b: &[u8]) -> u64 {
    let mut h = Fx(0);
    h.write(b);
    h.finish()
}

// ---------------------------------------------------------------------------------------------
// Invariant tuples

#[derive(Debug, Clone)]
struct Variant {
    name: &'static str,
    /// Peaks per tuple: 3 (triplet) or 4 (quad).
    k: usize,
    ref_peaks: usize,
    ref_fan: usize,
    query_peaks: usize,
    query_fan: usize,
    /// Reference zone: targets dt_min..=dt_max frames after the anchor, within ±dl semitones.
    dt_min: u32,
    dt_max: u32,
    dl: f32,
    /// Lowest bin a hashed peak may sit on.
    min_bin: u16,
    /// Minimum span (frames, anchor → last target).
    min_span: f32,
    /// Quantisation steps: time-gap ratio, log-frequency difference (semitones).
    r_step: f32,
    d_step: f32,
    /// Query probes the neighbouring cell when within this fraction of a step of the boundary.
    probe: f32,
    /// When > 0, the anchor's absolute log frequency in cells this wide (semitones) is one more
    /// hash dimension; the query probes every cell the frequency factors searched can reach.
    band: f32,
    /// Keys stored more often than this are skipped at query time (0 = never).
    max_occ: usize,
}

/// Time factors (reference s per query s) and frequency shifts (semitones) searched.
const TF_RANGE: (f32, f32) = (0.74, 1.36);
const FF_MAX: f32 = 6.0;

fn variants() -> Vec<Variant> {
    let t3 = Variant {
        name: "t3a",
        k: 3,
        ref_peaks: 18,
        ref_fan: 4,
        query_peaks: 40,
        query_fan: 10,
        dt_min: 2,
        dt_max: 62,
        dl: 12.0,
        min_bin: 8,
        min_span: 4.0,
        r_step: 0.1,
        d_step: 0.5,
        probe: 0.25,
        band: 0.0,
        max_occ: 0,
    };
    let q4 = Variant {
        name: "q4a",
        k: 4,
        ref_fan: 4,
        query_fan: 9,
        r_step: 0.125,
        d_step: 0.75,
        ..t3.clone()
    };
    vec![
        t3.clone(),
        Variant {
            name: "t3b",
            ref_fan: 5,
            query_peaks: 60,
            query_fan: 14,
            ..t3.clone()
        },
        Variant {
            name: "t3c",
            r_step: 0.0625,
            d_step: 0.33,
            probe: 0.3,
            ..t3.clone()
        },
        q4.clone(),
        Variant {
            name: "q4b",
            ref_fan: 5,
            query_peaks: 60,
            query_fan: 12,
            ..q4.clone()
        },
    ]
}

#[derive(Debug, Clone, Copy)]
struct Posting {
    r: u32,
    t: f32,
    l: f32,
    span: f32,
}

/// One tuple's invariant coordinates (before quantisation) plus its anchor and span.
struct Tuple {
    dims: [f32; 6],
    nd: usize,
    t: f32,
    l: f32,
    span: f32,
}

/// Calls `f` for every tuple of `peaks` (sorted by frame, bin).
fn tuples(peaks: &[FP], v: &Variant, query: bool, mut f: impl FnMut(&Tuple)) {
    let (fan, dt_min, dt_max) = if query {
        (
            v.query_fan,
            ((v.dt_min as f32 / TF_RANGE.1).floor() as u32).max(1),
            (v.dt_max as f32 / TF_RANGE.0).ceil() as u32,
        )
    } else {
        (v.ref_fan, v.dt_min, v.dt_max)
    };
    let mut targets: Vec<FP> = Vec::with_capacity(fan);
    for (i, a) in peaks.iter().enumerate() {
        if a.bin < v.min_bin {
            continue;
        }
        targets.clear();
        for p in &peaks[i + 1..] {
            if p.frame > a.frame + dt_max || targets.len() >= fan {
                break;
            }
            if p.frame >= a.frame + dt_min && p.bin >= v.min_bin && (p.l - a.l).abs() <= v.dl {
                targets.push(*p);
            }
        }
        let n = targets.len();
        let mut emit = |sel: &[usize]| {
            let last = targets[*sel.last().unwrap()];
            let span = last.t - a.t;
            if span < v.min_span {
                return;
            }
            let mut tup = Tuple {
                dims: [0.0; 6],
                nd: 0,
                t: a.t,
                l: a.l,
                span,
            };
            for &s in &sel[..sel.len() - 1] {
                tup.dims[tup.nd] = (targets[s].t - a.t) / span / v.r_step;
                tup.nd += 1;
            }
            for &s in sel {
                tup.dims[tup.nd] = (targets[s].l - a.l) / v.d_step;
                tup.nd += 1;
            }
            if v.band > 0.0 {
                tup.dims[tup.nd] = a.l / v.band;
                tup.nd += 1;
            }
            f(&tup);
        };
        match v.k {
            3 => {
                for x in 0..n {
                    for y in x + 1..n {
                        emit(&[x, y]);
                    }
                }
            }
            4 => {
                for x in 0..n {
                    for y in x + 1..n {
                        for z in y + 1..n {
                            emit(&[x, y, z]);
                        }
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

/// `NAME:base=t3a,k=4,query_fan=8,...`: a variant defined on the command line.
fn parse_variant(s: &str) -> anyhow::Result<Variant> {
    let (name, rest) = s.split_once(':').unwrap_or((s, ""));
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let mut v = variants()[0].clone();
    for kv in rest.split(',').filter(|x| !x.is_empty()) {
        let (k, x) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad {kv}"))?;
        match k {
            "base" => v = variants().into_iter().find(|b| b.name == x).unwrap(),
            "k" => v.k = x.parse()?,
            "ref_peaks" => v.ref_peaks = x.parse()?,
            "ref_fan" => v.ref_fan = x.parse()?,
            "query_peaks" => v.query_peaks = x.parse()?,
            "query_fan" => v.query_fan = x.parse()?,
            "dt_min" => v.dt_min = x.parse()?,
            "dt_max" => v.dt_max = x.parse()?,
            "dl" => v.dl = x.parse()?,
            "min_bin" => v.min_bin = x.parse()?,
            "min_span" => v.min_span = x.parse()?,
            "r_step" => v.r_step = x.parse()?,
            "d_step" => v.d_step = x.parse()?,
            "probe" => v.probe = x.parse()?,
            "band" => v.band = x.parse()?,
            "max_occ" => v.max_occ = x.parse()?,
            _ => anyhow::bail!("unknown key {k}"),
        }
    }
    v.name = name;
    Ok(v)
}

fn pack(cells: &[i32]) -> u64 {
    cells
        .iter()
        .fold(0u64, |k, &c| (k << 11) | ((c + 1024) as u64 & 0x7ff))
}

/// The stored key of a tuple.
fn key(t: &Tuple) -> u64 {
    let mut cells = [0i32; 6];
    for (c, d) in cells.iter_mut().zip(&t.dims[..t.nd]) {
        *c = d.floor() as i32;
    }
    pack(&cells[..t.nd])
}

/// The keys a query tuple probes: its own cell and the neighbours of near-boundary values.
fn probes(t: &Tuple, v: &Variant, out: &mut Vec<u64>) {
    out.clear();
    let probe = v.probe;
    let mut sets: Vec<[i32; 6]> = vec![[0; 6]];
    let nd = if v.band > 0.0 { t.nd - 1 } else { t.nd };
    for i in 0..nd {
        let x = t.dims[i];
        let c = x.floor();
        let fr = x - c;
        let c = c as i32;
        for s in sets.iter_mut() {
            s[i] = c;
        }
        let alt = if fr < probe {
            Some(c - 1)
        } else if fr > 1.0 - probe {
            Some(c + 1)
        } else {
            None
        };
        if let Some(a) = alt {
            let n = sets.len();
            for j in 0..n {
                let mut s = sets[j];
                s[i] = a;
                sets.push(s);
            }
        }
    }
    if v.band > 0.0 {
        // Reference anchor log frequency = query's − shift, shift within ±FF_MAX.
        let lo = (t.dims[nd] - FF_MAX / v.band).floor() as i32;
        let hi = (t.dims[nd] + FF_MAX / v.band).floor() as i32;
        for s in &sets {
            for c in lo..=hi {
                let mut s = *s;
                s[nd] = c;
                out.push(pack(&s[..t.nd]));
            }
        }
    } else {
        for s in &sets {
            out.push(pack(&s[..t.nd]));
        }
    }
}

struct Index {
    map: HashMap<u64, Vec<Posting>, FastHash>,
    postings: usize,
}

fn build_index(refs: &[Vec<FP>], v: &Variant) -> Index {
    let mut map: HashMap<u64, Vec<Posting>, FastHash> = HashMap::default();
    let mut postings = 0;
    for (r, peaks) in refs.iter().enumerate() {
        tuples(peaks, v, false, |t| {
            map.entry(key(t)).or_default().push(Posting {
                r: r as u32,
                t: t.t,
                l: t.l,
                span: t.span,
            });
            postings += 1;
        });
    }
    Index { map, postings }
}

// ---------------------------------------------------------------------------------------------
// Voting

#[derive(Debug, Clone, Copy)]
struct Hit {
    r: u32,
    tq: f32,
    tr: f32,
    /// ln(time factor).
    ltf: f32,
    /// Frequency shift, semitones.
    ff: f32,
}

#[derive(Debug, Clone, Copy)]
struct Cand {
    r: u32,
    score: u32,
    /// reference frame = intercept + time × query frame
    time: f64,
    intercept: f64,
    /// semitones (query − reference)
    ff: f64,
    q0: f32,
    q1: f32,
}

const TFW: f32 = 0.03; // ln time-factor cell
const FFW: f32 = 0.5; // semitones
const OFW: f32 = 32.0; // frames

fn vote(hits: &mut [Hit]) -> Vec<Cand> {
    let mut cells: HashMap<(u32, i32, i32, i32), u32, FastHash> =
        HashMap::with_capacity_and_hasher(hits.len(), FastHash::default());
    for h in hits.iter() {
        let tb = (h.ltf / TFW).round() as i32;
        let fb = (h.ff / FFW).round() as i32;
        let tf = (tb as f32 * TFW).exp();
        let ob = ((h.tr - h.tq * tf) / OFW).floor() as i32;
        *cells.entry((h.r, tb, fb, ob)).or_default() += 1;
    }
    let mut top: Vec<((u32, i32, i32, i32), u32)> =
        cells.into_iter().filter(|c| c.1 >= 2).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(30);
    hits.sort_unstable_by_key(|h| h.r);
    let mut best: HashMap<u32, Cand> = HashMap::new();
    let mut near: Vec<Hit> = Vec::new();
    let mut offs: Vec<(f32, usize)> = Vec::new();
    for &((r, tb, fb, ob), _) in &top {
        let a = hits.partition_point(|h| h.r < r);
        let z = hits.partition_point(|h| h.r <= r);
        let lc = tb as f32 * TFW;
        let tfc = lc.exp();
        near.clear();
        for h in &hits[a..z] {
            if (h.ltf - lc).abs() <= 1.5 * TFW
                && (h.ff - fb as f32 * FFW).abs() <= 1.5 * FFW
                && ((h.tr - h.tq * tfc) / OFW - (ob as f32 + 0.5)).abs() <= 1.5
            {
                near.push(*h);
            }
        }
        // Fine search over the time factor: the offset window of 4 frames holding most hits.
        let (mut bscore, mut bl, mut bo) = (0usize, lc, 0f32);
        for s in -25..=25 {
            let l = lc + s as f32 * 0.002;
            let tf = l.exp();
            offs.clear();
            offs.extend(near.iter().enumerate().map(|(i, h)| (h.tr - h.tq * tf, i)));
            offs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            let mut lo = 0;
            for hi in 0..offs.len() {
                while offs[hi].0 - offs[lo].0 > 4.0 {
                    lo += 1;
                }
                if hi + 1 - lo > bscore {
                    bscore = hi + 1 - lo;
                    bl = l;
                    bo = 0.5 * (offs[hi].0 + offs[lo].0);
                }
            }
        }
        if bscore < 2 {
            continue;
        }
        let tf = bl.exp();
        let inl: Vec<Hit> = near
            .iter()
            .filter(|h| (h.tr - h.tq * tf - bo).abs() <= 3.0)
            .copied()
            .collect();
        // Least squares tr = a + b tq when the hits spread over enough query time.
        let n = inl.len() as f64;
        let mq = inl.iter().map(|h| h.tq as f64).sum::<f64>() / n;
        let mr = inl.iter().map(|h| h.tr as f64).sum::<f64>() / n;
        let sqq = inl.iter().map(|h| (h.tq as f64 - mq).powi(2)).sum::<f64>();
        let sqr = inl
            .iter()
            .map(|h| (h.tq as f64 - mq) * (h.tr as f64 - mr))
            .sum::<f64>();
        let (mut time, mut intercept) = (tf as f64, bo as f64);
        if n >= 4.0 && sqq / n > 100.0 {
            let b = sqr / sqq;
            if (b - tf as f64).abs() < 0.02 {
                time = b;
                intercept = mr - b * mq;
            }
        }
        let mut ffs: Vec<f32> = inl.iter().map(|h| h.ff).collect();
        ffs.sort_unstable_by(|a, b| a.total_cmp(b));
        let ff = ffs[ffs.len() / 2] as f64;
        let mut pairs: Vec<(i32, i32)> = inl
            .iter()
            .map(|h| (h.tq.round() as i32, h.tr.round() as i32))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let q0 = inl.iter().map(|h| h.tq).fold(f32::MAX, f32::min);
        let q1 = inl.iter().map(|h| h.tq).fold(f32::MIN, f32::max);
        let c = Cand {
            r,
            score: pairs.len() as u32,
            time,
            intercept,
            ff,
            q0,
            q1,
        };
        let e = best.entry(r).or_insert(c);
        if c.score > e.score {
            *e = c;
        }
    }
    let mut out: Vec<Cand> = best.into_values().collect();
    out.sort_unstable_by(|a, b| b.score.cmp(&a.score).then(a.r.cmp(&b.r)));
    out
}

// ---------------------------------------------------------------------------------------------
// Verification with the library's verifier

struct Refs<'a> {
    peaks: &'a [Vec<Peak>],
    frames: &'a [u32],
}
impl References for Refs<'_> {
    type Error = std::convert::Infallible;
    fn lookup(&self, _: &[u32], _: &mut dyn FnMut(u32, TrackId, u32)) -> Result<(), Self::Error> {
        Ok(())
    }
    fn peaks(&self, t: TrackId) -> Result<Vec<Peak>, Self::Error> {
        Ok(self.peaks[t.0 as usize].clone())
    }
    fn frames(&self, t: TrackId) -> u32 {
        self.frames[t.0 as usize]
    }
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

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut corpus = None;
    let mut pick: Option<Vec<String>> = None;
    let mut verify = false;
    let mut fine = false;
    let mut cache = PathBuf::from("/tmp/inv-cache");
    let mut limit = usize::MAX;
    let mut distract = 0usize;
    let mut custom: Vec<Variant> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--variants" => {
                pick = args
                    .next()
                    .map(|s| s.split(',').map(String::from).collect())
            }
            "--verify" => verify = true,
            "--fine" => fine = true,
            "--def" => custom.push(parse_variant(&args.next().unwrap())?),
            "--cache" => cache = args.next().map(PathBuf::from).unwrap(),
            "--limit" => limit = args.next().unwrap().parse()?,
            "--distract" => distract = args.next().unwrap().parse()?,
            _ => corpus = Some(PathBuf::from(a)),
        }
    }
    let corpus = corpus.ok_or_else(|| anyhow::anyhow!("usage: invariant CORPUS_DIR"))?;
    std::fs::create_dir_all(&cache)?;
    let params = FingerprintParams::default();

    // Ground truth.
    let mut rd = csv::Reader::from_path(corpus.join("ground_truth.csv"))?;
    let hdr = rd.headers()?.clone();
    let col = |n: &str| hdr.iter().position(|h| h == n);
    let (cq, cr, co, cd, cl, cs, cp) = (
        col("query_file").unwrap(),
        col("ref_file").unwrap(),
        col("ref_offset_s").unwrap(),
        col("distortion").unwrap(),
        col("clip_len_s").unwrap(),
        col("time_scale"),
        col("pitch_cents"),
    );
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
    let names: Vec<String> = ref_files
        .iter()
        .map(|p| base(&p.to_string_lossy()))
        .collect();
    let (mut ref_secs, mut dec_s, mut ana_s) = (0.0, 0.0, 0.0);
    let mut ref_cands = Vec::new();
    let mut ref_frames = Vec::new();
    for p in &ref_files {
        let a = load(p, &cache, &params)?;
        ref_secs += a.seconds;
        dec_s += a.decode_s;
        ana_s += a.analyse_s;
        ref_frames.push(a.frames);
        ref_cands.push(a.cands);
    }
    // Distractors for a scale check: each reference's peaks time-reversed (never a true match
    // for a forward upload) and transposed by a different number of semitones per copy.
    let originals = ref_cands.len();
    let mut names = names;
    for copy in 0..distract {
        let shift = [
            0.0f32, 1.5, -2.5, 3.5, -4.5, 5.5, -6.5, 7.5, -8.5, 9.5, -10.5, 11.5,
        ][copy % 12]
            + 0.25 * (copy / 12) as f32;
        for r in 0..originals {
            let n = ref_frames[r];
            let mut c: Vec<FP> = ref_cands[r]
                .iter()
                .filter_map(|p| {
                    let l = p.l + shift;
                    let bin = 2f32.powf(l / 12.0);
                    let b = bin.round();
                    (b >= params.bins.0 as f32 && b < params.bins.1 as f32).then_some(FP {
                        frame: n - 1 - p.frame,
                        bin: b as u16,
                        sal: p.sal,
                        t: (n - 1) as f32 - p.t,
                        l,
                    })
                })
                .collect();
            c.sort_by_key(|p| (p.frame, p.bin));
            ref_cands.push(c);
            ref_frames.push(n);
            ref_secs += n as f64 * 0.016;
            names.push(format!("distractor{copy}_{}", names[r]));
        }
    }
    let hours = ref_secs / 3600.0;
    eprintln!(
        "{} refs, {:.2} h; decode {:.1}s analyse {:.1}s (0 = cached)",
        names.len(),
        hours,
        dec_s,
        ana_s
    );
    let ver_peaks: Vec<Vec<Peak>> = ref_cands
        .iter()
        .map(|c| {
            let p = to_peaks(c);
            peaks::select_peaks(&p, params.rank_window, params.verify_peaks_per_window)
        })
        .collect();

    // Queries.
    let mut queries = Vec::new();
    for t in &truth {
        let a = load(&corpus.join(&t.file), &cache, &params)?;
        queries.push(a);
    }
    eprintln!("{} queries analysed", queries.len());

    let mut vs: Vec<Variant> = variants()
        .into_iter()
        .filter(|v| pick.as_ref().is_none_or(|p| p.iter().any(|n| n == v.name)))
        .collect();
    if !custom.is_empty() && pick.is_none() {
        vs.clear();
    }
    vs.extend(custom);
    for v in &vs {
        println!(
            "\n=== variant {} on {} ===\n{:?}",
            v.name,
            corpus.display(),
            v
        );
        let t0 = Instant::now();
        let refs: Vec<Vec<FP>> = ref_cands
            .iter()
            .map(|c| select(c, params.rank_window as u32, v.ref_peaks))
            .collect();
        let t1 = Instant::now();
        let index = build_index(&refs, v);
        let t2 = Instant::now();
        let occ: f64 = index
            .map
            .values()
            .map(|p| (p.len() * p.len()) as f64)
            .sum::<f64>()
            / index.postings as f64;
        let np = index.postings as f64;
        let entropy: f64 = index
            .map
            .values()
            .map(|p| {
                let c = p.len() as f64;
                c / np * (np / c).log2()
            })
            .sum();
        println!(
            "key entropy {entropy:.1} bits over {} keys",
            index.map.len()
        );
        println!(
            "index: {} postings, {:.0}/audio hour ({:.1}/s), {} keys, occupancy seen by a stored tuple {:.1}; est. {:.2} MB/h at 5 B/posting; build {:.2}s select + {:.2}s hash = {:.2} s per audio hour (+ decode {:.1} + analyse {:.1} s/h when not cached)",
            index.postings,
            index.postings as f64 / hours,
            index.postings as f64 / ref_secs,
            index.map.len(),
            occ,
            index.postings as f64 / hours * 5.0 / 1e6,
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t2 - t0).as_secs_f64() / hours,
            dec_s / hours,
            ana_s / hours,
        );

        let mut results = Vec::new();
        let mut probe_keys = Vec::new();
        let mp = MatchParams::default();
        let refs_v = Refs {
            peaks: &ver_peaks,
            frames: &ref_frames,
        };
        for (qi, q) in queries.iter().enumerate() {
            let th = Instant::now();
            let qpeaks = select(&q.cands, params.rank_window as u32, v.query_peaks);
            let mut tups = Vec::new();
            tuples(&qpeaks, v, true, |t| {
                tups.push(Tuple {
                    dims: t.dims,
                    nd: t.nd,
                    t: t.t,
                    l: t.l,
                    span: t.span,
                })
            });
            let tv = Instant::now();
            let (mut touched, mut lookups) = (0usize, 0usize);
            let mut hits = Vec::new();
            let (lo, hi) = (TF_RANGE.0.ln(), TF_RANGE.1.ln());
            for t in &tups {
                probes(t, v, &mut probe_keys);
                for k in &probe_keys {
                    lookups += 1;
                    if let Some(ps) = index.map.get(k) {
                        if v.max_occ > 0 && ps.len() > v.max_occ {
                            continue;
                        }
                        touched += ps.len();
                        for p in ps {
                            let ltf = (p.span / t.span).ln();
                            let ff = t.l - p.l;
                            if ltf < lo || ltf > hi || ff.abs() > FF_MAX {
                                continue;
                            }
                            hits.push(Hit {
                                r: p.r,
                                tq: t.t,
                                tr: p.t,
                                ltf,
                                ff,
                            });
                        }
                    }
                }
            }
            let inrange = hits.len();
            let cands = vote(&mut hits);
            let te = Instant::now();
            let tver = Instant::now();
            let verified = verify.then(|| {
                let qp = to_peaks(&select(&q.cands, params.rank_window as u32, 60));
                let qpk = QueryPeaks::new(&qp, params.bins, q.frames);
                // Alignments searched: every offset window (3 frames) of every reference hit,
                // times the warps the pass resolves (time factor to ~0.5 %, pitch to ~10 cents).
                let mut touched_refs: Vec<u32> = hits.iter().map(|h| h.r).collect();
                touched_refs.sort_unstable();
                touched_refs.dedup();
                let warps = ((hi - lo) / 0.005) as f64 * (2.0 * FF_MAX as f64 / 0.1);
                let per_warp: f64 = touched_refs
                    .iter()
                    .map(|&r| ((ref_frames[r as usize] + q.frames) as f64 / 3.0).max(1.0))
                    .sum::<f64>();
                // Fine pass: the verifier's own count over a small grid around each candidate's
                // factors (time ±1.5 % (±3 % under 400 frames of hits) in 0.25 % steps, pitch ±30 cents in 10-cent steps,
                // offset ±1 frame about the stretch's centre).
                let top: Vec<Cand> = cands
                    .iter()
                    .take(5)
                    .map(|c| {
                        if !fine {
                            return *c;
                        }
                        let peaks = &ver_peaks[c.r as usize];
                        let span = qpk.widen((c.q0.max(0.0) as u32, c.q1.max(0.0) as u32));
                        let qc = 0.5 * (c.q0 + c.q1) as f64;
                        let rc = c.intercept + c.time * qc;
                        let mut best = (0u32, *c);
                        // Short stretches pin the time factor down less (±4 frames over the
                        // stretch): search ±3 % there, ±1.5 % otherwise.
                        let steps = if c.q1 - c.q0 < 400.0 { 12 } else { 6 };
                        for i in -steps..=steps {
                            for j in -3..=3 {
                                let tf = c.time * (1.0 + 0.0025 * i as f64);
                                let ff = c.ff + 0.1 * j as f64;
                                let icpt = rc - tf * qc;
                                for o in -1..=1 {
                                    let off = icpt.round() as i64 + o;
                                    let w = Warp {
                                        time: tf,
                                        freq: 2f64.powf(ff / 12.0),
                                    };
                                    let v = qpk.verify(peaks, off, span, w);
                                    if v.found > best.0 {
                                        best = (
                                            v.found,
                                            Cand {
                                                time: tf,
                                                ff,
                                                intercept: off as f64,
                                                ..*c
                                            },
                                        );
                                    }
                                }
                            }
                        }
                        best.1
                    })
                    .collect();
                let ms: Vec<Match> = top
                    .iter()
                    .map(|c| Match {
                        track: TrackId(c.r as i64),
                        query_frames: (c.q0.max(0.0) as u32, c.q1.max(0.0) as u32),
                        offset: c.intercept.round() as i64,
                        warp: Warp {
                            time: c.time,
                            freq: 2f64.powf(c.ff / 12.0),
                        },
                        score: c.score,
                        rival: 0,
                        rival_offset: None,
                        verification: None,
                        confidence: 0.0,
                        line: Line {
                            time: c.time,
                            intercept: c.intercept,
                        },
                    })
                    .collect();
                let pick = |ok: Vec<Match>| {
                    ok.into_iter()
                        .max_by(|a, b| {
                            a.confidence
                                .total_cmp(&b.confidence)
                                .then(a.score.cmp(&b.score))
                        })
                        .map(|m| {
                            let c = top
                                .iter()
                                .find(|c| c.r as i64 == m.track.0)
                                .copied()
                                .unwrap();
                            (
                                c,
                                m.confidence,
                                m.verification.map_or(0.0, |v| v.fraction()),
                            )
                        })
                };
                let honest = pick(
                    verify_candidates(&refs_v, &qpk, ms.clone(), (per_warp * warps).max(1.0), &mp)
                        .unwrap(),
                );
                let today = pick(
                    verify_candidates(&refs_v, &qpk, ms, (per_warp * 119.0).max(1.0), &mp).unwrap(),
                );
                (honest, today)
            });
            let ms_verify = tver.elapsed().as_secs_f64() * 1e3;
            results.push(QResult {
                truth: qi,
                cands,
                touched,
                inrange,
                lookups,
                ms_vote: (te - tv).as_secs_f64() * 1e3,
                ms_hash: (tv - th).as_secs_f64() * 1e3,
                ms_verify,
                verified: verified.and_then(|v| v.0),
                verified119: verified.and_then(|v| v.1),
            });
            let _ = tups.len();
        }
        report(&truth, &results, &names, verify);
    }
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
            if let Some(v) = r.verified119 {
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
        "class", "n", "top1", "top5", "tf1%", "p20c", "off", "ver", "ver119", "vtf", "vp", "voff"
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
            "verified: recall {:.3} / false positives {}/{} (trials over all resolvable warps); recall {:.3} / false positives {}/{} (trials x 119 warps, as today); negatives' confidences passing: {:?}",
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
