//! The run's charts, drawn once per backend: inline SVG for report.html and `charts/*.png`
//! (with the embedded CJK-capable font, so no system font is needed).
//!
//! - `rate`: planned vs achieved rate over time, phases shaded;
//! - `latency`: p50 / p90 / p99 / max per second (from latency.hlog);
//! - `spectrum`: the percentile spectrum on a log "1 in N" axis (90%, 99%, 99.9%…);
//! - `errors`: errors by kind per second;
//! - `monitor` (runs with a `monitor:` block): the target's water level, each monitor series;
//! - `clients` (runs with more than one client): each client's share of the requests, second by
//!   second (report.json `series[].clients`), so a shift of the mix at 00:00 shows.
//!
//! Live-control and rule events (report.json `timeline`) are marked on the rate chart as
//! dashed vertical lines with their names; scheduled actions (report.json `actions`) are marked
//! on every chart over time (rate, latency, errors, monitor), in red, with a second mark where
//! the target recovered. Marks are read from the typed fields, never from a sentence.

use super::chart::{fmt_time, fmt_value, register_font, FAMILY};
use super::glyphs::{outline_svg_text, OutlineText};
use super::model::PhaseRow;
use super::{Exporter, RunReport};
use anyhow::anyhow;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The charts, in the order report.html shows them: (file stem, title).
pub const CHARTS: [(&str, &str); 4] = [
    ("rate", "Planned vs achieved rate"),
    ("latency", "Latency over time (from the intended start)"),
    ("spectrum", "Latency by percentile"),
    ("errors", "Errors by kind over time"),
];

/// The monitor chart, drawn when the report has a `monitor` block.
pub const MONITOR_CHART: (&str, &str) = ("monitor", "The target's water level (monitor series)");

/// The client-mix chart, drawn when more than one client sent requests.
pub const CLIENTS_CHART: (&str, &str) = ("clients", "Client mix over time (share of requests)");

/// The clients that sent requests in some second, in the report's order of clients.
fn mix_clients(rep: &super::model::Report) -> Vec<String> {
    let mut names: Vec<String> = rep
        .clients
        .iter()
        .map(|c| c.name.clone())
        .filter(|n| {
            rep.series
                .iter()
                .any(|p| p.clients.get(n).is_some_and(|v| *v > 0))
        })
        .collect();
    for p in &rep.series {
        for n in p.clients.keys() {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// The charts this report has: [`CHARTS`], then the monitor chart when there is a monitor and
/// the client-mix chart when there is a mix.
pub fn charts_for(r: &RunReport) -> Vec<(&'static str, &'static str)> {
    let mut v = CHARTS.to_vec();
    if r.report.monitor.is_some() {
        v.push(MONITOR_CHART);
    }
    if mix_clients(&r.report).len() > 1 {
        v.push(CLIENTS_CHART);
    }
    v
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

struct Line {
    name: String,
    points: Vec<(f64, f64)>,
    filled: bool,
}

/// What one chart shows, independent of the backend.
struct Spec {
    title: String,
    y_label: String,
    x_label: String,
    lines: Vec<Line>,
    phases: Vec<PhaseRow>,
    x_end: f64,
    /// The spectrum's axis: x is log10(1 / (1 - q)).
    spectrum: bool,
    /// Shown in the middle when there is nothing to draw.
    empty_note: Option<String>,
    /// Vertical event marks.
    marks: Vec<Mark>,
    /// Labelled x ticks; empty: times (or the spectrum's percentiles).
    x_ticks: Vec<(f64, String)>,
}

/// A dashed vertical line at `t` with a label.
struct Mark {
    t: f64,
    label: String,
    /// A scheduled action (or its recovery): drawn in red.
    action: bool,
}

/// Every fired action, and where the target recovered from it.
fn action_marks(rep: &super::model::Report) -> Vec<Mark> {
    let mut out = Vec::new();
    for a in &rep.actions {
        let Some(t) = a.t else { continue };
        out.push(Mark {
            t,
            label: a.name.clone(),
            action: true,
        });
        if let Some(r) = a.recovery_s {
            out.push(Mark {
                t: t + r,
                label: format!("{} recovered", a.name),
                action: true,
            });
        }
    }
    out
}

fn q_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn spec(kind: &str, r: &RunReport) -> Spec {
    let rep = &r.report;
    let x_end = rep
        .run
        .duration_s
        .max(rep.series.last().map(|p| p.t as f64 + 1.0).unwrap_or(0.0))
        .max(1.0);
    let title = CHARTS
        .iter()
        .chain([&MONITOR_CHART, &CLIENTS_CHART])
        .find(|c| c.0 == kind)
        .map(|c| c.1.to_string())
        .unwrap_or_default();
    let mut s = Spec {
        title,
        y_label: String::new(),
        x_label: "time since start".into(),
        lines: Vec::new(),
        phases: rep.phases.clone(),
        x_end,
        spectrum: false,
        empty_note: None,
        marks: Vec::new(),
        x_ticks: Vec::new(),
    };
    let at = |t: u64| t as f64 + 0.5;
    match kind {
        "rate" => {
            s.y_label = "per second".into();
            s.lines.push(Line {
                name: "planned arrivals/s".into(),
                points: rep
                    .series
                    .iter()
                    .map(|p| (at(p.t), p.planned_rate))
                    .collect(),
                filled: true,
            });
            s.lines.push(Line {
                name: "sessions started/s".into(),
                points: rep
                    .series
                    .iter()
                    .map(|p| (at(p.t), p.sessions_started as f64))
                    .collect(),
                filled: false,
            });
            s.lines.push(Line {
                name: "requests/s".into(),
                points: rep
                    .series
                    .iter()
                    .map(|p| (at(p.t), p.requests as f64))
                    .collect(),
                filled: false,
            });
            if rep
                .series
                .iter()
                .any(|p| (p.rate_factor - 1.0).abs() > 1e-9)
            {
                s.lines.push(Line {
                    name: "planned × live factor".into(),
                    points: rep
                        .series
                        .iter()
                        .map(|p| (at(p.t), p.planned_rate * p.rate_factor))
                        .collect(),
                    filled: false,
                });
            }
            s.marks = rep
                .timeline
                .iter()
                .filter(|e| !matches!(e.kind, crate::run::timeline::Kind::Action(_)))
                .map(|e| Mark {
                    t: e.t,
                    label: e.label(),
                    action: false,
                })
                .collect();
        }
        "monitor" => {
            s.y_label = "as scraped (CPU busy in %)".into();
            let names = rep
                .monitor
                .as_ref()
                .map(|m| m.series.clone())
                .unwrap_or_default();
            for name in names {
                s.lines.push(Line {
                    points: rep
                        .series
                        .iter()
                        .filter_map(|p| {
                            p.monitor
                                .as_ref()
                                .and_then(|m| m.get(&name))
                                .map(|v| (at(p.t), *v))
                        })
                        .collect(),
                    name,
                    filled: false,
                });
            }
            if s.lines.iter().all(|l| l.points.is_empty()) {
                s.empty_note = Some("no scrape answered".into());
            }
        }
        "clients" => {
            // Each client's share of the second's requests; seconds without requests are gaps.
            s.y_label = "% of the second's requests".into();
            for name in mix_clients(rep) {
                s.lines.push(Line {
                    points: rep
                        .series
                        .iter()
                        .filter(|p| p.requests > 0)
                        .map(|p| {
                            let n = p.clients.get(&name).copied().unwrap_or(0);
                            (at(p.t), n as f64 * 100.0 / p.requests as f64)
                        })
                        .collect(),
                    name,
                    filled: false,
                });
            }
        }
        "latency" => {
            s.y_label = "milliseconds".into();
            if r.hlog.seconds.is_empty() {
                // No interval log: the series' own percentiles.
                s.lines.push(Line {
                    name: "p50".into(),
                    points: rep.series.iter().map(|p| (at(p.t), p.p50_ms)).collect(),
                    filled: false,
                });
                s.lines.push(Line {
                    name: "p99".into(),
                    points: rep.series.iter().map(|p| (at(p.t), p.p99_ms)).collect(),
                    filled: false,
                });
            } else {
                for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
                    s.lines.push(Line {
                        name: name.into(),
                        points: r
                            .hlog
                            .seconds
                            .iter()
                            .map(|(t, h)| (at(*t), q_ms(h, q)))
                            .collect(),
                        filled: false,
                    });
                }
            }
        }
        "spectrum" => {
            s.spectrum = true;
            s.phases.clear();
            s.y_label = "milliseconds".into();
            s.x_label = "percentile (log scale: 1 in N requests above)".into();
            let mut hists: Vec<(String, Histogram<u64>)> =
                vec![("all requests".into(), r.hlog.all())];
            for t in &r.hlog.tags {
                match hists.iter_mut().skip(1).find(|h| h.0 == t.name) {
                    Some(h) => {
                        let _ = h.1.add(&t.total);
                    }
                    None => hists.push((t.name.clone(), t.total.clone())),
                }
            }
            if hists.len() == 2 {
                hists.truncate(1); // one request name: its line is the total
            }
            hists.truncate(7);
            let n_max = hists.iter().map(|h| h.1.len()).max().unwrap_or(0);
            // Up to the percentile the sample size supports (1 in N for N requests).
            let x_max = (n_max.max(10) as f64).log10().clamp(2.0, 6.0);
            s.x_end = x_max;
            for (name, h) in hists.into_iter().filter(|h| !h.1.is_empty()) {
                let points = (0..=200)
                    .map(|i| {
                        let x = x_max * i as f64 / 200.0;
                        let q = 1.0 - 10f64.powf(-x);
                        (x, q_ms(&h, q))
                    })
                    .collect();
                s.lines.push(Line {
                    name,
                    points,
                    filled: false,
                });
            }
        }
        _ => {
            s.y_label = "errors per second".into();
            let mut kinds: Vec<&String> = Vec::new();
            for p in &rep.series {
                for k in p.errors_by_kind.keys() {
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
            }
            for k in kinds {
                s.lines.push(Line {
                    name: k.clone(),
                    points: rep
                        .series
                        .iter()
                        .map(|p| {
                            (
                                at(p.t),
                                p.errors_by_kind.get(k).copied().unwrap_or(0) as f64,
                            )
                        })
                        .collect(),
                    filled: false,
                });
            }
            if s.lines.is_empty() {
                s.empty_note = Some("no errors".into());
            }
        }
    }
    if !s.spectrum {
        s.marks.extend(action_marks(rep));
        s.marks.sort_by(|a, b| a.t.total_cmp(&b.t));
    }
    if s.empty_note.is_none() && s.lines.iter().all(|l| l.points.is_empty()) {
        s.empty_note = Some("nothing measured".into());
    }
    s
}

/// Labels of the spectrum's x axis: 0 → 0%, 1 → 90%, 2 → 99%, 3 → 99.9%…
fn spectrum_label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    let n = x.round() as i32;
    if n <= 0 {
        return "0%".into();
    }
    let nines = "9".repeat((n - 2).max(0) as usize);
    if n == 1 {
        "90%".into()
    } else if n == 2 {
        "99%".into()
    } else {
        format!("99.{nines}%")
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Spec,
    big: bool,
) -> anyhow::Result<()> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let (w, _) = root.dim_in_pixel();
    let k = if big { 1.0 } else { 1.1 };
    let font = |px: f64| (FAMILY, px * k);
    root.fill(&WHITE).map_err(e)?;
    let y_top = s
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .caption(&s.title, font(24.0))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..s.x_end, 0f64..y_max)
        .map_err(e)?;
    let bands = [RGBColor(232, 238, 248), RGBColor(248, 248, 248)];
    chart
        .draw_series(s.phases.iter().enumerate().map(|(i, p)| {
            Rectangle::new(
                [(p.start_s.min(s.x_end), 0.0), (p.end_s.min(s.x_end), y_max)],
                bands[i % 2].filled(),
            )
        }))
        .map_err(e)?;
    let spectrum = s.spectrum;
    let ticks = s.x_ticks.clone();
    let x_fmt = move |x: &f64| {
        if !ticks.is_empty() {
            ticks
                .iter()
                .find(|(t, _)| (t - x).abs() < 1e-6)
                .map(|(_, l)| l.clone())
                .unwrap_or_default()
        } else if spectrum {
            spectrum_label(*x)
        } else {
            fmt_time(*x)
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(220, 220, 220))
        .x_desc(s.x_label.as_str())
        .y_desc(s.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&|v| fmt_value(*v))
        .label_style(font(14.0))
        .axis_desc_style(font(15.0));
    if spectrum {
        mesh.x_labels(s.x_end.round() as usize + 1);
    } else if !s.x_ticks.is_empty() {
        // Integer positions 0..=x_end, labelled where a tick is.
        mesh.x_labels(s.x_end.round() as usize + 1);
    }
    mesh.draw().map_err(e)?;

    // Phase names along the top, on two rows when they crowd.
    let px_per_x = w as f64 / s.x_end;
    let mut row_ends = [f64::MIN; 2];
    for p in &s.phases {
        if p.start_s >= s.x_end {
            continue;
        }
        let width = (p.name.chars().count() as f64 * 9.0 + 10.0) / px_per_x;
        let Some(row) = row_ends.iter().position(|end| p.start_s >= *end) else {
            continue;
        };
        row_ends[row] = p.start_s + width;
        chart
            .draw_series(std::iter::once(Text::new(
                p.name.clone(),
                (
                    p.start_s + 4.0 / px_per_x,
                    y_max * (0.98 - 0.06 * row as f64),
                ),
                font(13.0).into_font().color(&RGBColor(70, 70, 70)),
            )))
            .map_err(e)?;
    }

    // Events and actions: a dashed line and the name (actions in red), each label on the first
    // row it does not overlap (marks close in time stack down).
    let mut label_ends = [f64::MIN; 6];
    for m in &s.marks {
        if m.t > s.x_end {
            continue;
        }
        let width = (m.label.chars().count() as f64 * 7.0 + 8.0) / px_per_x;
        let row = label_ends
            .iter()
            .position(|end| m.t >= *end)
            .unwrap_or(label_ends.len() - 1);
        label_ends[row] = m.t + width;
        let color = if m.action {
            RGBColor(200, 30, 30)
        } else {
            RGBColor(90, 90, 90)
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(m.t, 0.0), (m.t, y_max)],
                6,
                4,
                color.stroke_width(if m.action { 2 } else { 1 }),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                m.label.clone(),
                (m.t + 3.0 / px_per_x, y_max * (0.86 - 0.06 * row as f64)),
                font(12.0).into_font().color(&color),
            )))
            .map_err(e)?;
    }

    for (i, l) in s.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let drawn = if l.filled {
            chart
                .draw_series(
                    AreaSeries::new(l.points.iter().copied(), 0.0, color.mix(0.18))
                        .border_style(color.stroke_width(2)),
                )
                .map_err(e)?
        } else {
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(e)?
        };
        drawn.label(l.name.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
        });
    }
    if let Some(note) = &s.empty_note {
        chart
            .draw_series(std::iter::once(Text::new(
                note.clone(),
                (s.x_end * 0.45, y_max * 0.5),
                font(20.0).into_font().color(&RGBColor(120, 120, 120)),
            )))
            .map_err(e)?;
    } else if !s.lines.is_empty() {
        chart
            .configure_series_labels()
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(if s.spectrum {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::UpperRight
            })
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// The chart `kind` (a stem of [`CHARTS`]) as an SVG document.
pub fn svg(kind: &str, r: &RunReport) -> anyhow::Result<String> {
    register_font()?;
    let s = spec(kind, r);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1000, 400)).into_drawing_area();
        draw(&root, &s, false)?;
    }
    Ok(outline_svg_text(&out))
}

/// The chart `kind` as a PNG file.
pub fn png(kind: &str, r: &RunReport, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let s = spec(kind, r);
    let root = OutlineText(BitMapBackend::new(path, (1200, 520))).into_drawing_area();
    draw(&root, &s, true)
}

/// Writes `charts/*.png`.
pub struct Png;

impl Exporter for Png {
    fn name(&self) -> &'static str {
        "charts/*.png"
    }

    fn write(&self, r: &RunReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let charts = dir.join("charts");
        std::fs::create_dir_all(&charts)?;
        let mut out = Vec::new();
        for (kind, _) in charts_for(r) {
            // Drawn to a temporary name, then renamed: a reader never sees half a chart.
            let tmp = charts.join(format!(".{kind}.tmp-{}.png", std::process::id()));
            png(kind, r, &tmp)?;
            let path = charts.join(format!("{kind}.png"));
            std::fs::rename(&tmp, &path)?;
            out.push(path);
        }
        if let Some(c) = &r.report.capacity {
            for (kind, chart) in crate::capacity::charts(c) {
                let tmp = charts.join(format!(".{kind}.tmp-{}.png", std::process::id()));
                chart.png(&tmp)?;
                let path = charts.join(format!("{kind}.png"));
                std::fs::rename(&tmp, &path)?;
                out.push(path);
            }
        }
        Ok(out)
    }
}

/// A chart drawn from lines given by the caller (compare, the capacity drill), in the style of
/// the run's charts. `spectrum`: x is log10(1 / (1 − q)) with percentile labels.
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (name, points); drawn as lines, the first filled when `fill_first`.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
    pub fill_first: bool,
    pub spectrum: bool,
    pub x_end: f64,
    /// Phases shaded behind the lines (as the run charts shade them).
    pub phases: Vec<PhaseRow>,
    /// Labelled x ticks (a step drill's `1 · 300/s`); empty: the axis formats times.
    pub x_ticks: Vec<(f64, String)>,
}

impl Lines {
    fn spec(&self) -> Spec {
        let mut s = Spec {
            title: self.title.clone(),
            y_label: self.y_label.clone(),
            x_label: self.x_label.clone(),
            marks: Vec::new(),
            lines: self
                .lines
                .iter()
                .enumerate()
                .map(|(i, (name, points))| Line {
                    name: name.clone(),
                    points: points.clone(),
                    filled: self.fill_first && i == 0,
                })
                .collect(),
            phases: self.phases.clone(),
            x_end: self.x_end.max(1e-9),
            spectrum: self.spectrum,
            empty_note: None,
            x_ticks: self.x_ticks.clone(),
        };
        if s.lines.iter().all(|l| l.points.is_empty()) {
            s.empty_note = Some("nothing measured".into());
        }
        s
    }

    pub fn svg(&self) -> anyhow::Result<String> {
        register_font()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (1000, 400)).into_drawing_area();
            draw(&root, &self.spec(), false)?;
        }
        Ok(outline_svg_text(&out))
    }

    pub fn png(&self, path: &Path) -> anyhow::Result<()> {
        register_font()?;
        let root = OutlineText(BitMapBackend::new(path, (1200, 520))).into_drawing_area();
        draw(&root, &self.spec(), true)
    }
}

/// The x of percentile `q` on the spectrum axis.
pub fn spectrum_x(q: f64) -> f64 {
    -(1.0 - q).max(1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_axis_reads_as_nines() {
        assert_eq!(spectrum_label(0.0), "0%");
        assert_eq!(spectrum_label(1.0), "90%");
        assert_eq!(spectrum_label(2.0), "99%");
        assert_eq!(spectrum_label(3.0), "99.9%");
        assert_eq!(spectrum_label(5.0), "99.999%");
        assert_eq!(spectrum_label(2.5), "");
    }
}
