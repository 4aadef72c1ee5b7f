//! The evidence page's figure for one alignment, drawn with plotters' SVG backend into a string:
//! the upload's spectrogram with its aligned peaks, the reference's stored peaks in the upload's
//! coordinates, reference time against upload time, and a timeline of aligned peaks.
//!
//! Colours are the Okabe–Ito palette (distinguishable with every common colour-vision
//! deficiency), and every colour has its own marker shape as well: a circle is an upload peak,
//! a triangle a reference peak found in the upload, a cross a reference peak the upload lacks.
//! The spectrogram is grey so that the markers stand out on it. No text from the index or the
//! upload is drawn here (titles and metadata are escaped in the page around the figure).

use std::ops::Range;

use anyhow::anyhow;
use nasheed::engine::evidence::{Item, Spectrogram};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, DrawingErrorKind};

/// Okabe–Ito bluish green: aligned peaks (upload and reference alike).
pub const ALIGNED: RGBColor = RGBColor(0x00, 0x9E, 0x73);
/// Okabe–Ito vermillion: reference peaks the upload lacks.
pub const MISSING: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Okabe–Ito sky blue: the matched stretch on the timeline.
pub const STRETCH: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
/// Okabe–Ito blue: the reported alignment line.
pub const LINE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Near-black: upload peaks that no reference peak aligns with.
pub const OTHER: RGBColor = RGBColor(0x30, 0x30, 0x30);

/// Figure width in pixels.
pub const WIDTH: u32 = 960;
/// Heights of the four panels.
const PANELS: [u32; 4] = [270, 250, 220, 170];
/// Frequencies drawn (Hz): the analysed band (94–3625 Hz) and a little room for pitch shifts.
const HZ: Range<f64> = 0.0..4000.0;
const FONT: &str = "sans-serif";

/// The figure for `item` of an upload `duration_s` long, as an SVG document.
pub fn figure(item: &Item, duration_s: f64) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let height = PANELS.iter().sum();
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut edges = Vec::new();
        let mut y = 0;
        for h in &PANELS[..PANELS.len() - 1] {
            y += *h as i32;
            edges.push(y);
        }
        let panels = root.split_by_breakpoints::<i32, i32, _, _>([], edges);
        upload_panel(&panels[0], item)?;
        reference_panel(&panels[1], item)?;
        alignment_panel(&panels[2], item)?;
        timeline_panel(&panels[3], item, duration_s)?;
        root.present().map_err(drawing)?;
    }
    // plotters-svg labels its embedded PNG `data:png`; browsers sniff it, but the registered
    // media type is image/png.
    Ok(svg.replace("\"data:png;base64,", "\"data:image/png;base64,"))
}

/// Any drawing error as one line.
fn drawing(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the evidence figure: {e}")
}

/// The upload time axis of the first three panels: the stretch checked.
fn time_range(item: &Item) -> Range<f64> {
    let [a, b] = item.shown_s;
    a..b.max(a + 0.1)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A panel's chart builder: its caption and the label areas every panel shares.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: impl AsRef<str>,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56);
    builder
}

/// Panel 1: the upload's spectrogram (grey) with its aligned peaks (green circles) and its
/// other peaks (small dark dots).
fn upload_panel(area: &Area<'_>, item: &Item) -> anyhow::Result<()> {
    let mut chart = panel(
        area,
        "Upload: spectrogram and peaks (green circle: a peak the reference also has)",
    )
    .build_cartesian_2d(time_range(item), HZ)
    .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("upload time (s)")
        .y_desc("frequency (Hz)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(drawing)?;
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let size = (
        (xs.end - xs.start).max(1) as u32,
        (ys.end - ys.start).max(1) as u32,
    );
    let range = time_range(item);
    let raster = Raster {
        pos: (range.start, HZ.end),
        size,
        rgb: shade(&item.spectrogram, range, size),
    };
    chart.plotting_area().draw(&raster).map_err(drawing)?;
    chart
        .draw_series(
            item.other_upload_peaks
                .iter()
                .map(|&[t, hz]| Circle::new((t, hz), 1, OTHER.filled())),
        )
        .map_err(drawing)?
        .label("upload peak, no reference peak there")
        .legend(|(x, y)| Circle::new((x, y), 2, OTHER.filled()));
    chart
        .draw_series(
            item.peaks
                .iter()
                .filter_map(|p| p.found)
                .map(|[t, hz]| Circle::new((t, hz), 4, ALIGNED.stroke_width(2))),
        )
        .map_err(drawing)?
        .label("upload peak aligned with a reference peak")
        .legend(|(x, y)| Circle::new((x, y), 4, ALIGNED.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Panel 2: the reference's stored peaks placed in the upload's time and frequency under the
/// alignment: found (green triangles) or missing (vermillion crosses).
fn reference_panel(area: &Area<'_>, item: &Item) -> anyhow::Result<()> {
    let mut chart = panel(
        area,
        "Reference: its stored peaks, moved into the upload's time and frequency",
    )
    .build_cartesian_2d(time_range(item), HZ)
    .map_err(drawing)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .x_desc("upload time (s)")
        .y_desc("frequency (Hz)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(drawing)?;
    chart
        .draw_series(
            item.peaks
                .iter()
                .filter(|p| p.found.is_none())
                .map(|p| Cross::new((p.at_s, p.at_hz), 3, MISSING.stroke_width(2))),
        )
        .map_err(drawing)?
        .label("reference peak missing in the upload")
        .legend(|(x, y)| Cross::new((x, y), 3, MISSING.stroke_width(2)));
    chart
        .draw_series(
            item.peaks
                .iter()
                .filter(|p| p.found.is_some())
                .map(|p| TriangleMarker::new((p.at_s, p.at_hz), 5, ALIGNED.filled())),
        )
        .map_err(drawing)?
        .label("reference peak found in the upload")
        .legend(|(x, y)| TriangleMarker::new((x, y), 5, ALIGNED.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Panel 3: each reference peak's reference time against the upload time it maps to, with the
/// reported alignment as a line (its slope is the speed): a real match lies on it.
fn alignment_panel(area: &Area<'_>, item: &Item) -> anyhow::Result<()> {
    let m = &item.record;
    let x = time_range(item);
    let at = |t: f64| m.ref_start_s + (t - m.query_start_s) * m.speed;
    let ys = item.peaks.iter().map(|p| p.ref_s);
    let lo = ys.clone().fold(at(x.start), f64::min);
    let hi = ys.fold(at(x.end), f64::max);
    let mut chart = panel(
        area,
        format!(
            "Alignment: reference time against upload time (line: speed {})",
            m.speed
        ),
    )
    .build_cartesian_2d(x.clone(), lo..hi.max(lo + 0.1))
    .map_err(drawing)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .x_desc("upload time (s)")
        .y_desc("reference time (s)")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(drawing)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(x.start, at(x.start)), (x.end, at(x.end))],
            LINE.stroke_width(1),
        )))
        .map_err(drawing)?
        .label("reported alignment")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], LINE.stroke_width(1)));
    chart
        .draw_series(
            item.peaks
                .iter()
                .filter(|p| p.found.is_none())
                .map(|p| Cross::new((p.at_s, p.ref_s), 3, MISSING.stroke_width(1))),
        )
        .map_err(drawing)?;
    chart
        .draw_series(
            item.peaks
                .iter()
                .filter(|p| p.found.is_some())
                .map(|p| TriangleMarker::new((p.at_s, p.ref_s), 4, ALIGNED.filled())),
        )
        .map_err(drawing)?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Panel 4: the whole upload, with the matched stretch shaded and, per step, the reference
/// peaks found (green, below) and missing (vermillion, above).
fn timeline_panel(area: &Area<'_>, item: &Item, duration_s: f64) -> anyhow::Result<()> {
    let t = &item.timeline;
    let top = t
        .found
        .iter()
        .zip(&t.missed)
        .map(|(f, m)| f + m)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = panel(
        area,
        "Timeline of the whole upload: reference peaks aligned per step",
    )
    .build_cartesian_2d(0.0..duration_s.max(0.1), 0.0..top * 1.9)
    .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("upload time (s)")
        .y_desc("peaks")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 12))
        .draw()
        .map_err(drawing)?;
    let m = &item.record;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(m.query_start_s, 0.0), (m.query_end_s, top * 1.9)],
            STRETCH.mix(0.25).filled(),
        )))
        .map_err(drawing)?
        .label("matched stretch")
        .legend(|(x, y)| {
            Rectangle::new([(x - 6, y - 5), (x + 6, y + 5)], STRETCH.mix(0.25).filled())
        });
    let step = t.step_s;
    let bar = |i: usize, from: u32, to: u32| {
        let x0 = i as f64 * step;
        [(x0, from as f64), (x0 + step * 0.9, to as f64)]
    };
    chart
        .draw_series(
            t.found
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| Rectangle::new(bar(i, 0, n), ALIGNED.filled())),
        )
        .map_err(drawing)?
        .label("found")
        .legend(|(x, y)| Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], ALIGNED.filled()));
    chart
        .draw_series(
            t.found
                .iter()
                .zip(&t.missed)
                .enumerate()
                .filter(|(_, (_, &m))| m > 0)
                .map(|(i, (&f, &m))| Rectangle::new(bar(i, f, f + m), MISSING.stroke_width(1))),
        )
        .map_err(drawing)?
        .label("missing")
        .legend(|(x, y)| Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], MISSING.stroke_width(1)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Draws a chart's legend at `at`, on white.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xAA, 0xAA, 0xAA))
        .label_font((FONT, 12))
        .draw()
        .map_err(drawing)
}

/// The spectrogram resampled to the plotting area's pixels (`size`), as grey RGB: white for
/// quiet, darker for louder than the local envelope, in 16 steps (compresses well as PNG).
fn shade(spec: &Spectrogram, range: Range<f64>, (w, h): (u32, u32)) -> Vec<u8> {
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    if spec.columns.is_empty() || spec.column_s <= 0.0 {
        return rgb;
    }
    let span = range.end - range.start;
    for x in 0..w {
        let t = range.start + (x as f64 + 0.5) / w as f64 * span;
        let col = ((t - spec.start_s) / spec.column_s).floor();
        let Some(column) = (col >= 0.0)
            .then(|| spec.columns.get(col as usize))
            .flatten()
        else {
            continue;
        };
        for y in 0..h {
            let hz = HZ.end - (y as f64 + 0.5) / h as f64 * (HZ.end - HZ.start);
            let bin = (hz / spec.hz_per_bin).round() - spec.first_bin as f64;
            let Some(&v) = (bin >= 0.0).then(|| column.get(bin as usize)).flatten() else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            // Whitened log power: 0 is the local envelope, peaks sit from 1 up.
            let level = ((v as f64 + 1.0) / 6.0).clamp(0.0, 1.0);
            let grey = 255 - (level * 15.0).round() as u8 * 11;
            let i = ((y * w + x) * 3) as usize;
            rgb[i..i + 3].fill(grey);
        }
    }
    rgb
}

/// A bitmap placed with its top-left corner at a chart coordinate: the spectrogram. The SVG
/// backend embeds it as one PNG.
struct Raster<C> {
    pos: C,
    size: (u32, u32),
    rgb: Vec<u8>,
}

impl<'a, C> PointCollection<'a, C> for &'a Raster<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.pos)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Raster<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        match points.next() {
            Some(at) => backend.blit_bitmap(at, self.size, &self.rgb),
            None => Ok(()),
        }
    }
}
