//! Diagnostics: every candidate match of every query, with its features, as JSON lines.
//! `cargo run --release --example diag -- INDEX.db QUERY...`
use nasheed::engine::fingerprint_file;
use nasheed::fingerprint::{FingerprintParams, Side};
use nasheed::index::{SqliteStore, Store};
use nasheed::matching::{candidates, MatchParams};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let params = FingerprintParams::default();
    let store = SqliteStore::open_existing(std::path::Path::new(&args[0]), &params.id())?;
    let tracks = store.tracks()?;
    let mp = MatchParams {
        min_score: 4,
        min_confidence: 0.0,
        min_fraction: 0.0,
        min_margin: 0,
        max_verified: 30,
        ..Default::default()
    };
    let frame_s = params.frame_seconds();
    for q in &args[1..] {
        let fp = match fingerprint_file(std::path::Path::new(q), &params, Side::Query) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        let len = |id: nasheed::index::TrackId| {
            tracks
                .iter()
                .find(|t| t.id == id)
                .map_or(1, |t| (t.duration_s / frame_s) as u32)
        };
        let mut lms = fp.prints.clone();
        let ex: i32 = std::env::var("EXPAND")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if ex > 0 {
            for l in &fp.prints.landmarks {
                let (b, df, dt) = nasheed::fingerprint::hash::unpack(l.hash);
                for ddt in -1i32..=1 {
                    for ddf in -1i32..=1 {
                        if (ddt, ddf) == (0, 0) || (ex == 1 && ddf != 0) {
                            continue;
                        }
                        let t = dt as i32 + ddt;
                        if t < 1 || t > 63 {
                            continue;
                        }
                        lms.landmarks.push(nasheed::fingerprint::Landmark {
                            hash: nasheed::fingerprint::hash::pack(b, df + ddf, t as u32),
                            frame: l.frame,
                        });
                    }
                }
            }
        }
        let ms = candidates(&store, &lms, fp.frames, &len, &mp)?;
        let out: Vec<_> = ms.iter().map(|m| {
            let t = tracks.iter().find(|t| t.id == m.track).map(|t| t.path.clone()).unwrap_or_default();
            serde_json::json!({"ref": t, "off": (m.query_frames.0 as i64 + m.offset) as f64 * frame_s - m.query_frames.0 as f64 * frame_s,
                "q0": m.query_frames.0, "q1": m.query_frames.1, "score": m.score, "hits": m.score, "rival": m.rival, "found": m.verification.map(|v| v.found), "checked": m.verification.map(|v| v.checked), "chance": m.verification.map(|v| v.chance), "conf": m.confidence})
        }).collect();
        println!(
            "{}",
            serde_json::json!({"q": q, "n": fp.prints.landmarks.len(), "frames": fp.frames, "m": out})
        );
    }
    Ok(())
}
