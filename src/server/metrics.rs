//! Counters for `GET /metrics`, in the Prometheus text exposition format (version 0.0.4).
//!
//! A handful of counters and one histogram, kept in atomics and two small maps: the format is
//! a few lines of text, and a metrics crate would add a registry and a global recorder for it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nasheed::index::Stats;

/// Upper bounds (s) of the scan-latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    /// Requests answered, by (route, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Failed requests, by kind (`undecodable`, `timeout`, `busy`, `too_large`...).
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Uploads scanned (with or without a match) and matches reported.
    scans: AtomicU64,
    matches: AtomicU64,
    /// Scan latency: counts per bucket (the last is +Inf), sum in microseconds.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
    }

    /// Counts one failed request of `kind`.
    pub fn error(&self, kind: &'static str) {
        if let Ok(mut m) = self.errors.lock() {
            *m.entry(kind).or_default() += 1;
        }
    }

    /// Counts one scan answered with `matches` matches after `seconds`.
    pub fn scan(&self, matches: usize, seconds: f64) {
        self.scans.fetch_add(1, Ordering::Relaxed);
        self.matches.fetch_add(matches as u64, Ordering::Relaxed);
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// The exposition text. `index` is `None` when the index could not be read just now.
    pub fn render(&self, index: Option<&Stats>, in_flight: usize) -> String {
        let mut out = String::new();
        let _ = self.write(&mut out, index, in_flight);
        out
    }

    fn write(&self, out: &mut String, index: Option<&Stats>, in_flight: usize) -> std::fmt::Result {
        head(
            out,
            "nasheed_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
        )?;
        if let Ok(m) = self.requests.lock() {
            for ((route, code), n) in m.iter() {
                let route = label(route);
                writeln!(
                    out,
                    "nasheed_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}"
                )?;
            }
        }
        head(
            out,
            "nasheed_errors_total",
            "counter",
            "Failed requests, by kind.",
        )?;
        if let Ok(m) = self.errors.lock() {
            for (kind, n) in m.iter() {
                writeln!(out, "nasheed_errors_total{{kind=\"{kind}\"}} {n}")?;
            }
        }
        let (scans, matches) = (
            self.scans.load(Ordering::Relaxed),
            self.matches.load(Ordering::Relaxed),
        );
        scalar(
            out,
            "nasheed_scans_total",
            "counter",
            "Uploads scanned to the end (matched or clean).",
            scans,
        )?;
        scalar(
            out,
            "nasheed_matches_total",
            "counter",
            "Matches reported.",
            matches,
        )?;
        let name = "nasheed_scan_duration_seconds";
        head(
            out,
            name,
            "histogram",
            "Time from request to scan answer (upload, decode, match).",
        )?;
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].load(Ordering::Relaxed);
            writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}")?;
        }
        cumulative += self.latency[BUCKETS.len()].load(Ordering::Relaxed);
        writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}")?;
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        writeln!(out, "{name}_sum {sum}")?;
        writeln!(out, "{name}_count {cumulative}")?;
        scalar(
            out,
            "nasheed_uploads_in_flight",
            "gauge",
            "Uploads accepted and not yet answered.",
            in_flight,
        )?;
        if let Some(s) = index {
            scalar(
                out,
                "nasheed_index_tracks",
                "gauge",
                "Reference tracks in the index.",
                s.tracks,
            )?;
            scalar(
                out,
                "nasheed_index_hashes",
                "gauge",
                "Hashes stored in the index.",
                s.hashes,
            )?;
            scalar(
                out,
                "nasheed_index_audio_hours",
                "gauge",
                "Reference audio indexed, in hours.",
                s.audio_hours,
            )?;
            scalar(
                out,
                "nasheed_index_bytes",
                "gauge",
                "Size of the index.",
                s.bytes,
            )?;
        }
        Ok(())
    }
}

/// A metric's HELP and TYPE lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// One metric without labels: its HELP and TYPE lines, then its value.
fn scalar(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) -> std::fmt::Result {
    head(out, name, kind, help)?;
    writeln!(out, "{name} {value}")
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_render() {
        let m = Metrics::default();
        m.scan(2, 0.03);
        m.scan(0, 0.3);
        m.scan(1, 120.0);
        m.request("/v1/scan", 200);
        m.request("/v1/scan", 200);
        m.error("timeout");
        let text = m.render(None, 1);
        assert!(
            text.contains("nasheed_scan_duration_seconds_bucket{le=\"0.05\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("nasheed_scan_duration_seconds_bucket{le=\"0.5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("nasheed_scan_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("nasheed_matches_total 3\n"), "{text}");
        assert!(
            text.contains("nasheed_requests_total{route=\"/v1/scan\",code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("nasheed_errors_total{kind=\"timeout\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("nasheed_index_tracks"), "{text}");
    }
}
