//! Evidence reports (`explain`, `scan --evidence`) on the example references: a clean clip, a
//! sped-up clip, a pitch-shifted clip, a clip under a voice-over (the last three made here from
//! `examples/refs/song101.ogg`) and a clip of a song that is not indexed. Each page is rendered in
//! headless Chromium (a missing Chromium fails the test: `apt-get install chromium`, or name the
//! binary in `$CHROMIUM`); the screenshot must not be blank, and the page's numbers, both its
//! JSON block and its visible table, must be the scan's JSON. On the sped-up clip the drawn
//! alignment is checked against the edit that made it.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const RATE: u32 = 44100;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A reference decoded to mono at `RATE`.
fn decode(path: &Path) -> Vec<f32> {
    let mut src = nasheed::audio::SymphoniaSource::open(path).unwrap();
    let mut out = Vec::new();
    nasheed::audio::stream_mono(&mut src, RATE, |b| out.extend_from_slice(b)).unwrap();
    out
}

/// `seconds` of `x` from `at` seconds on.
fn cut(x: &[f32], at: f64, seconds: f64) -> Vec<f32> {
    let a = (at * RATE as f64) as usize;
    x[a..a + (seconds * RATE as f64) as usize].to_vec()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// A speech-like voice: a glottal pulse train (110–150 Hz, with intonation) through three
/// formant resonators that change vowel every syllable (0.22 s), with a pause every seventh.
fn voice(n: usize, seed: u64) -> Vec<f32> {
    const VOWELS: [[f32; 3]; 5] = [
        [730.0, 1090.0, 2440.0],
        [270.0, 2290.0, 3010.0],
        [530.0, 1840.0, 2480.0],
        [570.0, 840.0, 2410.0],
        [440.0, 1020.0, 2240.0],
    ];
    let sr = RATE as f32;
    let mut phase = 0.0f32;
    let mut state = [[0.0f32; 2]; 3];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = i as f32 / sr;
        let syll = (t / 0.22) as usize + seed as usize;
        let f0 = 125.0 + 20.0 * (std::f32::consts::TAU * 0.7 * t).sin() + 6.0 * (syll % 3) as f32;
        phase += f0 / sr;
        let pulse = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        };
        let within = (t / 0.22).fract();
        let env = if syll % 7 == 6 {
            0.0
        } else {
            (std::f32::consts::PI * within).sin().powi(2)
        };
        let mut y = 0.0;
        for (k, s) in state.iter_mut().enumerate() {
            let f = VOWELS[syll % VOWELS.len()][k];
            let r = (-std::f32::consts::PI * 90.0 / sr).exp();
            let c = 2.0 * r * (std::f32::consts::TAU * f / sr).cos();
            let v = pulse + c * s[0] - r * r * s[1];
            s[1] = s[0];
            s[0] = v;
            y += v / (k + 1) as f32;
        }
        out.push(y * env);
    }
    out
}

/// The clips: name → file. The three edits are made from song101 (not used by the shipped clips).
fn clips(s: &Scratch) -> Vec<(&'static str, PathBuf, Option<&'static str>)> {
    let song = decode(&repo().join("examples/refs/song101.ogg"));
    let write = |name: &str, x: &[f32]| {
        let p = s.path(name);
        nasheed_harness::synth::write_wav(&p, x, RATE, 1).unwrap();
        p
    };
    let clip = cut(&song, SPED_AT, 12.0);
    // Played 1.10 times as fast: pitch and tempo up together.
    let sped = write(
        "sped_up.wav",
        &resample(&clip, (RATE as f64 * SPEED) as u32, RATE),
    );
    let p = 2f64.powf(200.0 / 1200.0);
    let pitched = write(
        "pitch_up.wav",
        &resample(
            &stretch(&cut(&song, 4.0, 12.0), 1.0 / p),
            (RATE as f64 * p) as u32,
            RATE,
        ),
    );
    let music = cut(&song, 20.0, 12.0);
    let mut talk = voice(music.len(), 3);
    let gain = rms(&music) / rms(&talk).max(1e-9);
    for (t, m) in talk.iter_mut().zip(&music) {
        *t = *t * gain + m;
    }
    let voiced = write("voice_over.wav", &talk);
    vec![
        (
            "clean",
            repo().join("examples/clips/upload_a.mp4"),
            Some("song102"),
        ),
        ("sped_up", sped, Some("song101")),
        ("pitch_shifted", pitched, Some("song101")),
        ("voice_over", voiced, Some("song101")),
        (
            "not_indexed",
            repo().join("examples/clips/upload_c.opus"),
            None,
        ),
    ]
}

/// Where the sped-up clip starts in song101 (s), and its speed.
const SPED_AT: f64 = 14.0;
const SPEED: f64 = 1.10;

/// The page's JSON block.
fn embedded(html: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"evidence\">";
    let a = html.find(open).expect("the page has its evidence block") + open.len();
    let z = a + html[a..].find("</script>").expect("the block is closed");
    serde_json::from_str(&html[a..z]).expect("the evidence block is JSON")
}

/// The visible cell of the numbers table for `key` in section `item`.
fn cell<'a>(html: &'a str, item: usize, key: &str) -> &'a str {
    let from = html
        .find(&format!("<section id=\"item{item}\">"))
        .unwrap_or_else(|| panic!("no section {item}"));
    let marker = format!("data-key=\"{key}\">");
    let a = from
        + html[from..]
            .find(&marker)
            .unwrap_or_else(|| panic!("no visible cell for {key}"))
        + marker.len();
    &html[a..a + html[a..].find('<').unwrap_or(0)]
}

/// The visible value for `key` read as JSON, as the scan's output is read (so that both go
/// through the same float parsing).
fn shown(html: &str, item: usize, key: &str) -> Value {
    let text = cell(html, item, key);
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{key}: {text:?} is not a JSON value: {e}"))
}

/// Headless Chromium: the binary in `$CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        if let Ok(path) = std::env::var("PATH") {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(name);
                if p.is_file() {
                    return p;
                }
            }
        }
    }
    panic!(
        "headless Chromium is needed to render the evidence reports (Debian: apt-get install \
         chromium; or set CHROMIUM to the binary)"
    );
}

/// Renders `page` in headless Chromium to `png` (a 1100 px wide window).
fn screenshot(page: &Path, png: &Path, profile: &Path) {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1100,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed on {}", page.display());
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Decodes a screenshot; returns (pixels as RGB, width, height).
fn pixels(png: &Path) -> (Vec<[u8; 3]>, u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let px = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (px, info.width, info.height)
}

/// Checks a screenshot is a rendered report: not blank, grey levels spread, and the figure's
/// colours present (the Okabe–Ito green of aligned peaks; vermillion of missing ones).
fn check_screenshot(name: &str, png: &Path) {
    let (px, w, h) = pixels(png);
    assert!(w >= 1000 && h >= 2000, "{name}: {w}×{h}");
    let lum: Vec<f64> = px
        .iter()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let mean = lum.iter().sum::<f64>() / lum.len() as f64;
    let var = lum.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lum.len() as f64;
    assert!(
        var > 200.0,
        "{name}: the screenshot is nearly blank (variance {var:.1})"
    );
    let near = |c: [u8; 3]| {
        px.iter()
            .filter(|p| (0..3).all(|i| (p[i] as i32 - c[i] as i32).abs() <= 12))
            .count()
    };
    let green = near([0x00, 0x9E, 0x73]);
    let vermillion = near([0xD5, 0x5E, 0x00]);
    assert!(
        green > 500,
        "{name}: {green} green pixels: the figure was not drawn"
    );
    assert!(vermillion > 100, "{name}: {vermillion} vermillion pixels");
}

/// The scan's JSON record of one file.
fn scan_json(db: &Path, file: &Path) -> Value {
    let out = run(
        db,
        &["scan", "--format", "json", &file.display().to_string()],
    );
    let all: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("scan JSON: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    all[0].clone()
}

/// Runs `explain FILE [extra...] --out PAGE`, which must succeed, and returns the page.
fn explain(db: &Path, file: &Path, page: &Path, extra: &[&str]) -> String {
    let (file, out_page) = (file.display().to_string(), page.display().to_string());
    let mut args = vec!["explain", file.as_str()];
    args.extend_from_slice(extra);
    args.extend(["--out", out_page.as_str()]);
    let out = run(db, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(page).unwrap()
}

#[test]
fn reports_for_five_clips_render_and_carry_the_scans_numbers() {
    let s = Scratch::new("evidence-five");
    let refs = repo().join("examples/refs");
    // Hostile metadata: it must come out escaped, never as markup.
    let out = run(
        &s.db(),
        &[
            "index",
            "--meta",
            "note=<img src=x onerror=alert(1)></script>&amp;",
            &refs.display().to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("evidence-shots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, file, title) in clips(&s) {
        let page = s.path(&format!("{name}.html"));
        let html = explain(&s.db(), &file, &page, &[]);
        assert!(html.len() < 1_000_000, "{name}: {} bytes", html.len());
        assert!(
            !html.contains("<img src=x"),
            "{name}: metadata came out as markup"
        );
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;&amp;amp;"));
        assert!(
            !html.contains("href=\"http") && !html.contains("src=\"http"),
            "{name}: a fetch"
        );
        let data = embedded(&html);
        let record = scan_json(&s.db(), &file);
        assert_eq!(data["upload"]["sha256"], record["sha256"], "{name}");
        let items = data["items"].as_array().unwrap();
        let matches = record["matches"].as_array().unwrap();
        if title.is_none() {
            assert!(matches.is_empty(), "{name}: {matches:?}");
            assert_eq!(data["matched"], false);
            assert_eq!(items.len(), 1, "{name}: the closest candidate is explained");
            let stops = items[0]["stopped_by"].as_array().unwrap();
            assert!(!stops.is_empty(), "{name}: no rule named");
            assert!(html.contains("Stopped by"), "{name}");
        } else {
            assert_eq!(data["matched"], true, "{name}");
            assert_eq!(items.len(), matches.len(), "{name}");
            assert!(!matches.is_empty(), "{name}: no match");
            for (i, (item, m)) in items.iter().zip(matches).enumerate() {
                // The page's data is the scan's record, number for number.
                assert_eq!(&item["record"], m, "{name}: page and scan disagree");
                assert_eq!(item["record"]["title"].as_str(), title, "{name}");
                let ev = m["evidence"]
                    .as_object()
                    .expect("the scan's JSON carries evidence");
                for (k, v) in ev {
                    if let Value::Object(inner) = v {
                        for (k2, v2) in inner {
                            let key = format!("evidence.{k}.{k2}");
                            assert_eq!(shown(&html, i, &key), *v2, "{name}: {key}");
                        }
                    } else {
                        let key = format!("evidence.{k}");
                        assert_eq!(shown(&html, i, &key), *v, "{name}: {key}");
                    }
                }
                for key in ["confidence", "score", "speed"] {
                    assert_eq!(shown(&html, i, key), m[key], "{name}: {key}");
                }
                // The drawn peaks are the ones the verification counted.
                let peaks = item["peaks"].as_array().unwrap();
                let found = peaks.iter().filter(|p| !p["found"].is_null()).count();
                assert_eq!(
                    peaks.len() as u64,
                    ev["peaks_checked"].as_u64().unwrap(),
                    "{name}"
                );
                assert_eq!(found as u64, ev["peaks_found"].as_u64().unwrap(), "{name}");
            }
        }
        let png = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&png);
        screenshot(&page, &png, &s.path("chromium-profile"));
        check_screenshot(name, &png);
    }
}

#[test]
fn the_drawn_alignment_of_a_sped_up_clip_is_where_the_edit_put_it() {
    let s = Scratch::new("evidence-speed");
    index(&s.db(), &[&repo().join("examples/refs")]);
    let (_, file, _) = clips(&s)
        .into_iter()
        .find(|(n, _, _)| *n == "sped_up")
        .unwrap();
    let page = s.path("sped.html");
    let data = embedded(&explain(&s.db(), &file, &page, &[]));
    let item = &data["items"][0];
    let m = &item["record"];
    let speed = m["speed"].as_f64().unwrap();
    assert!((speed - SPEED).abs() < 0.01, "reported speed {speed}");
    let freq = item["record"]["evidence"]["alignment"]["freq_factor"]
        .as_f64()
        .unwrap();
    assert!((freq - SPEED).abs() < 0.01, "frequency factor {freq}");
    let (q0, r0) = (
        m["query_start_s"].as_f64().unwrap(),
        m["ref_start_s"].as_f64().unwrap(),
    );
    let frame = 0.016;
    let bin = 8000.0 / 512.0;
    let mut checked = 0;
    for p in item["peaks"].as_array().unwrap() {
        let Some(at) = p["found"].as_array() else {
            continue;
        };
        let (t, hz) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        let (ref_s, ref_hz) = (p["ref_s"].as_f64().unwrap(), p["ref_hz"].as_f64().unwrap());
        // Under the reported factor: the upload peak maps onto the reference peak.
        let predicted = r0 + (t - q0) * speed;
        assert!(
            (predicted - ref_s).abs() <= 3.0 * frame,
            "peak at {t} s: reference {ref_s} s, the reported alignment says {predicted:.3} s"
        );
        assert!(
            (hz - ref_hz * speed).abs() <= 1.5 * bin + 0.005 * hz,
            "peak at {t} s: {hz} Hz, reference {ref_hz} Hz × {speed}"
        );
        // And where the edit put it: upload second t is reference second SPED_AT + t × SPEED.
        assert!(
            (SPED_AT + t * SPEED - ref_s).abs() <= 3.0 * frame,
            "peak at {t} s: reference {ref_s} s, the edit says {:.3}",
            SPED_AT + t * SPEED
        );
        assert!(
            (hz / SPEED - ref_hz).abs() <= 1.5 * bin,
            "peak at {t} s: {hz} Hz / {SPEED} vs {ref_hz} Hz"
        );
        // The marker is drawn where the alignment maps the reference peak, next to the peak found.
        let (at_s, at_hz) = (p["at_s"].as_f64().unwrap(), p["at_hz"].as_f64().unwrap());
        assert!(
            (at_s - t).abs() <= 1.5 * frame && (at_hz - hz).abs() <= 1.5 * bin,
            "{p}"
        );
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} aligned peaks drawn");
}

#[test]
fn scan_evidence_writes_one_report_per_matched_upload_named_by_its_sha256() {
    let s = Scratch::new("evidence-dir");
    index(&s.db(), &[&repo().join("examples/refs")]);
    let dir = s.path("reports");
    let clips = repo().join("examples/clips");
    let out = run(
        &s.db(),
        &[
            "scan",
            "--format",
            "jsonl",
            "--evidence",
            &dir.display().to_string(),
            &clips.display().to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    let mut want: Vec<String> = records
        .iter()
        .filter(|r| !r["matches"].as_array().unwrap().is_empty())
        .map(|r| format!("{}.html", r["sha256"].as_str().unwrap()))
        .collect();
    want.sort();
    assert_eq!(want.len(), 2, "upload_a and upload_b match");
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    for r in records
        .iter()
        .filter(|r| !r["matches"].as_array().unwrap().is_empty())
    {
        let html =
            std::fs::read_to_string(dir.join(format!("{}.html", r["sha256"].as_str().unwrap())))
                .unwrap();
        let data = embedded(&html);
        let pages: Vec<&Value> = data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["record"])
            .collect();
        let scanned: Vec<&Value> = r["matches"].as_array().unwrap().iter().collect();
        assert_eq!(pages, scanned, "the page's matches are the scan's");
    }
    // Asking about one reference: the clean clip (song102) and one it does not match (song101),
    // named by a prefix of its SHA-256 (local ids follow the order indexing finished in).
    let list: Value =
        serde_json::from_slice(&run(&s.db(), &["list", "--format", "json"]).stdout).unwrap();
    let other = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "song101")
        .expect("song101 is indexed");
    let prefix = &other["sha256"].as_str().unwrap()[..12];
    let a = clips.join("upload_a.mp4");
    let page = s.path("why-not.html");
    let data = embedded(&explain(&s.db(), &a, &page, &["--ref", prefix]));
    assert_eq!(data["matched"], false);
    // song102's alignment covers the clip: song101's best is searched for alone.
    let items = data["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the named reference's closest alignment is explained"
    );
    assert_eq!(items[0]["searched_alone"], true);
    for item in items {
        assert_eq!(item["record"]["ref_id"], other["id"]);
        assert!(!item["stopped_by"].as_array().unwrap().is_empty());
    }
    // An unreadable upload is an error naming it, and no page.
    let bad = s.path("notes.txt");
    std::fs::write(&bad, "not audio").unwrap();
    let out = run(
        &s.db(),
        &[
            "explain",
            &bad.display().to_string(),
            "--out",
            &s.path("bad.html").display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
    assert!(!s.path("bad.html").exists());
}
