//! The evidence page: one self-contained HTML file per upload (no network, no script; figures
//! are inline SVG from [`plot`]) that a reviewer who is no audio engineer can read and file.
//!
//! It shows, for each match (or the best candidate of an upload that matched nothing), the
//! verdict, the reference and its metadata, the numbers behind the confidence in plain words
//! and as a table, and the figure. The page carries its data as JSON too
//! (`<script type="application/json" id="evidence">`, the engine's `evidence::Report`): the
//! numbers of each match there are the scan's `evidence` object, so tools can check a filed page.
//!
//! Everything from the index or the upload (titles, metadata, paths) is hostile text: it is
//! escaped for HTML, and in the JSON block `<`, `>` and `&` are written as `\u003c`-style escapes
//! so that no value can close the block. A Content-Security-Policy forbids any fetch.

pub mod plot;

use std::fmt::Write as _;

use nasheed::engine::evidence::{Basis, Item, Report, Rules, Stop};
use nasheed::engine::report::MatchRecord;

/// The whole page for `report`.
pub fn page(report: &Report) -> anyhow::Result<String> {
    let mut o = String::with_capacity(256 * 1024);
    let name = h(&report.upload.path);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Evidence: {name} (nasheed)</title>\n<style>{STYLE}</style></head><body>\n"
    );
    let items = &report.items;
    let verdict = match (report.matched, items.len()) {
        (true, 1) => "<p class=\"verdict match\"><b>Match.</b> A stretch of this upload is a recording in the index.</p>".to_string(),
        (true, n) => format!("<p class=\"verdict match\"><b>Match.</b> {n} stretches of this upload are recordings in the index.</p>"),
        (false, 0) => format!(
            "<p class=\"verdict nomatch\"><b>No match.</b> No reference shares even {} landmark hashes aligned at one offset with this upload: nothing in the index resembles it.</p>",
            report.rules.candidate_min_hits
        ),
        (false, _) => "<p class=\"verdict nomatch\"><b>No match.</b> The closest alignment with a reference is shown below, with the rule that stopped it.</p>".to_string(),
    };
    let _ = write!(
        o,
        "<h1>Evidence report: {name}</h1>\n{verdict}\n<h2>The upload</h2>\n<table class=\"facts\">\n"
    );
    row(
        &mut o,
        "File",
        &format!("<span class=\"mono\">{name}</span>"),
    );
    row(
        &mut o,
        "SHA-256",
        &format!(
            "<span class=\"mono\">{}</span>",
            h(report.upload.sha256.as_deref().unwrap_or("unknown"))
        ),
    );
    row(
        &mut o,
        "Duration",
        &format!("{} s", report.upload.duration_s),
    );
    row(&mut o, "Report made", &h(&report.generated_utc));
    row(&mut o, "Tool", &h(&report.tool));
    row(
        &mut o,
        "Fingerprint id",
        &format!("<span class=\"mono\">{}</span>", h(&report.fingerprint_id)),
    );
    o.push_str("</table>\n");
    for (i, item) in items.iter().enumerate() {
        section(&mut o, report, item, i)?;
    }
    o.push_str(FOOTER);
    let json = serde_json::to_string(report)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let _ = write!(
        o,
        "<script type=\"application/json\" id=\"evidence\">{json}</script>\n</body></html>\n"
    );
    Ok(o)
}

/// One match (or candidate): heading, verdict, reference, plain words, figure, numbers.
fn section(o: &mut String, report: &Report, item: &Item, i: usize) -> anyhow::Result<()> {
    let m = &item.record;
    let n = report.items.len();
    let what = match (item.stopped_by.is_empty(), n) {
        (true, 1) => "Match".to_string(),
        (true, _) => format!("Match {} of {n}", i + 1),
        (false, _) => "Closest candidate (not a match)".to_string(),
    };
    let _ = write!(
        o,
        "<section id=\"item{i}\">\n<h2>{what}: “{}”, upload {:.3}–{:.3} s = reference {:.3}–{:.3} s</h2>\n",
        h(&m.title),
        m.query_start_s,
        m.query_end_s,
        m.ref_start_s,
        m.ref_end_s
    );
    if !item.stopped_by.is_empty() {
        o.push_str("<div class=\"verdict nomatch\"><b>Stopped by:</b><ul>");
        for s in &item.stopped_by {
            let _ = write!(o, "<li>{}</li>", stop_words(s, m));
        }
        o.push_str("</ul>");
        if item.searched_alone {
            o.push_str(
                "<p>Stronger alignments of other references cover this stretch of the upload, so \
                 this reference was searched for alone: its numbers count only its own \
                 alignments; against the whole index its confidence would be lower still.</p>",
            );
        }
        o.push_str("</div>\n");
    }
    o.push_str("<h3>The reference</h3>\n<table class=\"facts\">\n");
    row(o, "Title", &h(&m.title));
    row(o, "Local id", &m.ref_id.to_string());
    row(
        o,
        "SHA-256",
        &format!("<span class=\"mono\">{}</span>", h(&m.ref_sha256)),
    );
    row(
        o,
        "Indexed from",
        &format!("<span class=\"mono\">{}</span>", h(&m.ref_path)),
    );
    row(o, "Duration", &format!("{:.3} s", item.ref_duration_s));
    for (k, v) in &m.meta {
        row(o, &h(k), &h(v));
    }
    o.push_str("</table>\n");
    if let Some(b) = &m.evidence {
        o.push_str("<h3>Why, in plain words</h3>\n<ul class=\"words\">\n");
        for s in words(b, m, &report.rules) {
            let _ = writeln!(o, "<li>{s}</li>");
        }
        o.push_str("</ul>\n");
    }
    let svg = plot::figure(item, report.upload.duration_s)?;
    let _ = write!(
        o,
        "<h3>What the alignment looks like</h3>\n<figure>{svg}<figcaption>{CAPTION}</figcaption></figure>\n"
    );
    numbers(o, m)?;
    o.push_str("</section>\n");
    Ok(())
}

/// The match's numbers as a table, each value written exactly as the scan's JSON writes it.
fn numbers(o: &mut String, m: &MatchRecord) -> anyhow::Result<()> {
    o.push_str(
        "<h3>The numbers</h3>\n<p>As in the scan's JSON output (<code>scan --format json</code>), \
         field by field.</p>\n<table class=\"numbers\">\n<tr><th>field</th><th>value</th><th>meaning</th></tr>\n",
    );
    let record = serde_json::to_value(m)?;
    for key in [
        "score",
        "confidence",
        "speed",
        "pitch_cents",
        "query_start_s",
        "query_end_s",
        "ref_start_s",
        "ref_end_s",
    ] {
        if let Some(v) = record.get(key) {
            number_row(o, key, v);
        }
    }
    if let Some(serde_json::Value::Object(e)) = record.get("evidence") {
        for (k, v) in e {
            match v {
                serde_json::Value::Object(inner) => {
                    for (k2, v2) in inner {
                        number_row(o, &format!("evidence.{k}.{k2}"), v2);
                    }
                }
                _ => number_row(o, &format!("evidence.{k}"), v),
            }
        }
    }
    o.push_str("</table>\n");
    Ok(())
}

/// One row of the numbers table.
fn number_row(o: &mut String, key: &str, v: &serde_json::Value) {
    let short = key.rsplit('.').next().unwrap_or(key);
    let _ = writeln!(
        o,
        "<tr><td class=\"mono\">{}</td><td class=\"mono\" data-key=\"{}\">{}</td><td>{}</td></tr>",
        h(key),
        h(key),
        h(&v.to_string()),
        meaning(short)
    );
}

/// What a field of the numbers table means, in a few words.
fn meaning(key: &str) -> &'static str {
    match key {
        "score" | "hits" => "landmark hashes (pairs of peaks) aligned at this alignment",
        "confidence" => "probability that the alignment is not chance: exp(−chance_alignments)",
        "speed" => "reference seconds per upload second (fitted to the aligned hashes)",
        "pitch_cents" => "pitch shift of the upload, when pitch and tempo changed apart",
        "query_start_s" | "query_end_s" => "where the match starts / ends in the upload (s)",
        "ref_start_s" | "ref_end_s" => "where it starts / ends in the reference (s)",
        "peaks_checked" => "stored reference peaks in the stretch checked",
        "peaks_found" => "of those, peaks the upload has at the same place",
        "peak_chance" => "chance that a reference peak is found at a wrong alignment",
        "events" => "reference frames with peaks (the observations the confidence counts)",
        "events_found" => "of those, frames with a peak found",
        "event_chance" => "chance that such a frame is found at a wrong alignment",
        "alignments_searched" => "offsets × references × edits tried for this upload",
        "chance_alignments" => "expected number of chance alignments at least this good",
        "rival_hits" => "hashes aligned at the reference's best other alignment here",
        "rival_shift_s" => "where that other alignment lies, in reference seconds from this one",
        "rival_lead_sd" => "standard deviations by which this one out-verifies it (close races)",
        "period_lead_sd" => {
            "standard deviations by which it out-verifies the reference shifted by a beat or bar"
        }
        "query_frames" => "first and last upload frame with an aligned hash",
        "offset_frames" => "reference frame at upload frame 0 (the alignment checked)",
        "time_factor" => "reference frames per upload frame (the edit checked)",
        "freq_factor" => "upload frequency per reference frequency (the edit checked)",
        "frame_s" => "seconds per frame",
        _ => "",
    }
}

/// The numbers behind the confidence in plain sentences (HTML: no user text in them).
fn words(b: &Basis, m: &MatchRecord, rules: &Rules) -> Vec<String> {
    let a = &b.alignment;
    let p = nasheed::fingerprint::FingerprintParams::default();
    let hz = |bins: f64| bins * p.sample_rate as f64 / p.fft_size as f64;
    let mut out = vec![format!(
        "<b>Peaks.</b> Of the reference's {} stored peaks in the stretch checked, the upload has \
         {} at the same place (within ±1 frame = {:.0} ms and ±1 frequency bin = {:.1} Hz, \
         under the alignment below): <b>{:.1} %</b>. A match needs at least {:.0} %, and {} times \
         the chance rate below.",
        b.peaks_checked,
        b.peaks_found,
        a.frame_s * 1000.0,
        hz(1.0),
        100.0 * b.peak_share(),
        100.0 * rules.min_peak_share,
        rules.min_peak_lift
    )];
    out.push(format!(
        "<b>Chance.</b> At a wrong alignment a reference peak would be found by chance with \
         probability {} ({:.1} %: the larger of what the upload's density of peaks gives and what \
         eight deliberately wrong alignments of the same stretch found), so about {:.0} of the {} \
         would be found by chance; {} were.",
        num(b.peak_chance),
        100.0 * b.peak_chance,
        b.peak_chance * b.peaks_checked as f64,
        b.peaks_checked,
        b.peaks_found
    ));
    out.push(format!(
        "<b>Events.</b> The peaks of one reference frame (the harmonics of one note) align or \
         miss together, so the confidence counts frames: {} of {} found, against a chance of {} \
         ({:.1} %) each.",
        b.events_found,
        b.events,
        num(b.event_chance),
        100.0 * b.event_chance
    ));
    out.push(format!(
        "<b>Alignments searched.</b> {} (every offset of every reference the pass that found \
         this alignment touched: the upload as it is for landmark pairs, each of the {} speed, \
         tempo and pitch changes the triplets tell apart for triplets; counted twice, since the \
         two passes share the error rate). Among all of them, \
         the expected number of chance alignments at least this good is {}; the confidence is \
         exp(−{}) = <b>{}</b> (a match needs {}).",
        b.alignments_searched,
        rules.edits_tried,
        num(b.chance_alignments),
        num(b.chance_alignments),
        num(m.confidence),
        rules.min_confidence
    ));
    let lead = b.hits as i64 - b.rival_hits as i64;
    out.push(match b.rival_shift_s {
        None => format!(
            "<b>Rival.</b> {} landmark hashes aligned here; no other alignment of this reference \
             competes over this stretch.",
            b.hits
        ),
        Some(shift) => format!(
            "<b>Rival.</b> The reference's best other alignment of this stretch ({shift:+.3} s \
             away in the reference) has {} aligned hashes against {} here: a lead of {lead} \
             (a match needs {}, or a decisive lead on the peaks that tell the two apart).",
            b.rival_hits, b.hits, rules.min_lead_hits
        ),
    });
    if let Some(sd) = b.rival_lead_sd {
        out.push(format!(
            "<b>Close race.</b> On the peaks that tell the two alignments apart, this one is \
             better by {sd} standard deviations ({} settle it, as does the reference repeating \
             itself there).",
            rules.min_lead_sd
        ));
    }
    if let Some(sd) = b.period_lead_sd {
        out.push(format!(
            "<b>Groove.</b> Shifted by its own strongest repetition periods (a beat, a bar, a \
             loop), the reference fits the upload worse: on the peaks that tell the alignments \
             apart, this one is better by at least {sd} standard deviations (a match needs {}; \
             music in the same groove fits every shift alike).",
            rules.min_period_sd
        ));
    }
    out.push(format!("<b>Edit found.</b> {}", factors(m, a.freq_factor)));
    out
}

/// The edit the alignment found, in words.
fn factors(m: &MatchRecord, freq: f64) -> String {
    let cents = 1200.0 * freq.log2();
    let speed = m.speed;
    let same_speed = (speed - 1.0).abs() < 0.005;
    match m.pitch_cents {
        None if same_speed && (freq - 1.0).abs() < 1e-9 => format!(
            "None: the upload runs at the reference's speed and pitch (speed {speed}: reference \
             seconds per upload second)."
        ),
        None => format!(
            "Speed change: the upload plays {speed}× as fast as the reference, pitch and tempo \
             together (speed {speed}: reference seconds per upload second; frequencies × {freq:.4}, \
             {cents:+.0} cents)."
        ),
        Some(c) if same_speed => format!(
            "Pitch shift: {c:+.0} cents (frequencies × {freq:.4}) at the reference's tempo \
             (speed {speed})."
        ),
        Some(c) if c.abs() < 1.0 => format!(
            "Tempo change: the upload's tempo is {speed}× the reference's (speed {speed}: \
             reference seconds per upload second), pitch unchanged."
        ),
        Some(c) => format!(
            "Tempo change: the upload's tempo is {speed}× the reference's (speed {speed}: \
             reference seconds per upload second), pitch shifted by {c:+.0} cents."
        ),
    }
}

/// A rule that stopped a candidate, in words.
fn stop_words(s: &Stop, m: &MatchRecord) -> String {
    match s {
        Stop::TooFewHits { hits, need } => {
            format!("Only {hits} landmark hashes aligned; a match needs {need}.")
        }
        Stop::TooFewPeaks { share, need } => format!(
            "Only {:.1} % of the reference's peaks were found in the upload; a match needs {:.1} %.",
            100.0 * share,
            100.0 * need
        ),
        Stop::LowConfidence { confidence, need } => format!(
            "Confidence {} is below {need}: alignments this good are expected by chance \
             {} times among those searched.",
            num(*confidence),
            m.evidence
                .as_ref()
                .map_or("unknown".to_string(), |b| num(b.chance_alignments))
        ),
        Stop::Tie {
            lead_hits,
            need,
            lead_sd,
            need_sd,
        } => format!(
            "Another alignment of the same reference fits nearly as well: a lead of {lead_hits} \
             hashes (needs {need}); the peaks that tell the two apart do not settle it ({} \
             standard deviations, needs {need_sd}), nor does the reference repeat itself there.",
            lead_sd.map_or("no".to_string(), |x| x.to_string())
        ),
        Stop::Period { lead_sd, need_sd } => format!(
            "Shifted by one of its own repetition periods (a beat, a bar, a loop), the reference \
             fits the upload nearly as well: this alignment is better by only {lead_sd} standard \
             deviations on the peaks that tell them apart (needs {need_sd}). That is music in the \
             same groove, not this recording."
        ),
        Stop::Overruled => "It passes each rule on its own, but a stronger or ambiguous \
                            alignment over the same stretch of the upload was preferred."
            .to_string(),
        _ => "Not reported.".to_string(),
    }
}

/// A number as the JSON writes it (`1.71e-37`, `1.0`): the page shows what the scan printed.
fn num(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}

/// A two-cell row of a facts table (`value` is HTML already).
fn row(o: &mut String, key: &str, value: &str) {
    let _ = writeln!(o, "<tr><th>{key}</th><td>{value}</td></tr>");
}

/// Escapes text for HTML content and attribute values.
pub fn h(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters would be invisible (or break the line) in a filed report.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#111;line-height:1.45}\
h1{font-size:1.5em;word-break:break-all}h2{font-size:1.25em;margin-top:2em;border-top:2px solid #ccc;padding-top:.8em}h3{font-size:1.05em;margin-bottom:.3em}\
.verdict{font-size:1.1em;padding:.6em 1em;border-left:6px solid;margin:1em 0}.verdict ul{margin:.3em 0}\
.match{border-color:#009E73;background:#e6f5f0}.nomatch{border-color:#D55E00;background:#fbeee6}\
table{border-collapse:collapse}th,td{text-align:left;padding:.2em .7em;border-bottom:1px solid #e3e3e3;vertical-align:top}\
.mono,code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;word-break:break-all}\
figure{margin:.5em 0}svg{max-width:100%;height:auto}figcaption{font-size:.9em;color:#333}footer{margin-top:3em;font-size:.9em;color:#333}";

const CAPTION: &str = "From top: (1) the upload's spectrogram (darker: louder than its \
surroundings) over the stretch that was checked, its peaks as dots, and circled in green the \
peaks that a stored peak of the reference lands on; (2) the reference's stored peaks, moved into \
the upload's time and frequency by the edit found: green triangles were found in the upload, \
vermillion crosses were not; (3) each reference peak's time in the reference against where it \
lands in the upload: a real match lies on the straight line whose slope is the speed; (4) the \
whole upload, with the matched stretch shaded and the reference peaks found (green) and missing \
(vermillion) per step. Colours are readable with colour-blindness; shapes carry the same meaning.";

const FOOTER: &str = "<footer><h2>How to read this report</h2><p>nasheed keeps no audio of the \
references: the index holds, for each reference, its landmark hashes (pairs of spectral peaks) \
and its strongest spectral peaks. A match is found by voting: hashes of the upload that occur in \
a reference vote for an offset between the two, under each speed, pitch and tempo edit tried. \
The strongest alignments are then checked peak by peak against the reference's stored peaks. \
The confidence is exp(−E), where E is the expected number of alignments at least this good \
among all those searched if the upload had nothing to do with the reference: the count of \
reference frames found is compared with a binomial distribution at the chance rate measured on \
this very stretch. A match needs every rule listed: enough hashes aligned, enough of the \
reference's peaks found, a lead over the reference's other alignments of the same stretch, and \
the confidence.</p></footer>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            h("<script>alert('x')</script>&\"\u{1b}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x1b"
        );
    }
}
