//! Charts of a quantity over time with the plan's phases marked: a PNG drawn with plotters (the
//! font is embedded, so it renders the same on a machine without fonts) and a few lines of
//! unicode block characters for the terminal.
//!
//! This file draws what it is given. It computes no statistics and reads no files; callers turn
//! a plan or a run into `Series` and columns.

use crate::plan::Phase;
use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// WenQuanYi Micro Hei (Apache-2.0, see assets/fonts/wqy-microhei-LICENSE.txt): Latin and CJK
/// glyphs in one font, so names like `下单` draw on a machine without any fonts.
pub(crate) static FONT: &[u8] = include_bytes!("../../assets/fonts/wqy-microhei.ttc");

/// The family name charts ask plotters for.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process.
pub fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded chart font could not be loaded"))
    }
}

/// One line on a chart: `(t seconds, value)` points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

pub use crate::scenario::units::fmt_time;

/// Formats a value compactly: whole numbers as such, large ones rounded, small ones with up to
/// two decimals (`300`, `1034`, `12.5`, `0.33`).
pub fn fmt_value(v: f64) -> String {
    if (v - v.round()).abs() < 0.005 || v.abs() >= 100.0 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Writes a PNG chart of `series` over time to `path`, phases shaded in alternating bands and
/// named along the top. The first series is drawn as a filled area, the others as lines.
pub fn rate_chart(
    path: &Path,
    title: &str,
    series: &[Series],
    phases: &[Phase],
    y_label: &str,
) -> anyhow::Result<()> {
    register_font()?;
    draw(path, title, series, phases, y_label)
        .with_context(|| format!("cannot draw the chart {}", path.display()))
}

fn draw(
    path: &Path,
    title: &str,
    series: &[Series],
    phases: &[Phase],
    y_label: &str,
) -> anyhow::Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let t_end = points
        .clone()
        .map(|p| p.0)
        .chain(phases.iter().map(|p| p.end))
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let y_top = points.map(|p| p.1).fold(0.0f64, f64::max);
    let y_max = if y_top > 0.0 { y_top * 1.15 } else { 1.0 };

    let root =
        super::glyphs::OutlineText(BitMapBackend::new(path, (1200, 560))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 26))
        .margin(18)
        .x_label_area_size(56)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..t_end, 0f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;

    // Phase bands first, so that the series are drawn over them.
    let bands = [RGBColor(236, 240, 247), RGBColor(250, 250, 250)];
    chart
        .draw_series(
            phases.iter().enumerate().map(|(i, p)| {
                Rectangle::new([(p.start, 0.0), (p.end, y_max)], bands[i % 2].filled())
            }),
        )
        .map_err(|e| anyhow!("{e}"))?;

    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(215, 215, 215))
        .x_desc("time since start")
        .y_desc(y_label)
        .x_label_formatter(&|t| fmt_time(*t))
        .y_label_formatter(&|v| fmt_value(*v))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;

    // Phase boundaries and names. A name goes on a second row when the first one is taken.
    let grey = RGBColor(120, 120, 120);
    let px_per_s = 1200.0 / t_end;
    let mut row_ends = [f64::MIN; 2];
    for p in phases {
        if p.start > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(p.start, 0.0), (p.start, y_max)],
                    grey.stroke_width(1),
                )))
                .map_err(|e| anyhow!("{e}"))?;
        }
        let width_s = (p.name.chars().count() as f64 * 8.0 + 10.0) / px_per_s;
        let Some(row) = row_ends.iter().position(|end| p.start >= *end) else {
            continue;
        };
        row_ends[row] = p.start + width_s;
        let y = y_max * (0.985 - 0.05 * row as f64);
        chart
            .draw_series(std::iter::once(Text::new(
                p.name.clone(),
                (p.start + 4.0 / px_per_s, y),
                (FAMILY, 14).into_font().color(&RGBColor(60, 60, 60)),
            )))
            .map_err(|e| anyhow!("{e}"))?;
    }

    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let drawn = if i == 0 {
            chart
                .draw_series(
                    AreaSeries::new(s.points.iter().copied(), 0.0, color.mix(0.25))
                        .border_style(color.stroke_width(2)),
                )
                .map_err(|e| anyhow!("{e}"))?
        } else {
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow!("{e}"))?
        };
        drawn.label(s.name.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
        });
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(grey)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A terminal chart: one column per entry of `columns` (values over equal slices of
/// `[0, duration)`), `height` rows of block characters scaled so `top` fills the chart, the axis,
/// phase starts marked `┬` on it with their names below, and the time at both ends. `unit` follows
/// the value labels (`/s`, or empty for users).
pub fn text_chart(
    columns: &[f64],
    duration: f64,
    phases: &[Phase],
    height: usize,
    top: f64,
    unit: &str,
) -> String {
    let width = columns.len();
    let height = height.max(1);
    let cells = (height * 8) as f64;
    let levels: Vec<usize> = columns
        .iter()
        .map(|v| {
            if top <= 0.0 || *v <= 0.0 {
                0
            } else {
                // A column with any load shows at least a sliver.
                ((v / top * cells).round() as usize).clamp(1, height * 8)
            }
        })
        .collect();
    let top_label = format!("{}{unit}", fmt_value(top));
    let zero_label = format!("0{unit}");
    let lw = top_label.chars().count().max(zero_label.chars().count());
    let mut out = String::new();
    for row in (0..height).rev() {
        let label = if row == height - 1 {
            top_label.as_str()
        } else {
            ""
        };
        out += &format!("{label:>lw$} {}", if row == height - 1 { '┤' } else { '│' });
        let line: String = levels
            .iter()
            .map(|l| BLOCKS[l.saturating_sub(row * 8).min(8)])
            .collect();
        out += line.trim_end();
        out.push('\n');
    }
    let col_of = |t: f64| -> usize {
        if duration <= 0.0 {
            0
        } else {
            (((t / duration) * width as f64).round() as usize).min(width.saturating_sub(1))
        }
    };
    let mut axis: Vec<char> = vec!['─'; width];
    for p in phases.iter().filter(|p| p.start > 0.0) {
        if let Some(c) = axis.get_mut(col_of(p.start)) {
            *c = '┬';
        }
    }
    out += &format!("{zero_label:>lw$} └{}\n", axis.iter().collect::<String>());

    // Names on up to three rows under the axis, each at its phase's start column; when phases
    // crowd (a short rise and peak), a name that fits nowhere at its column is set a little to
    // the right of it rather than left out.
    const ROWS: usize = 3;
    let room = width + 24;
    let mut rows: Vec<Vec<char>> = vec![vec![' '; room]; ROWS];
    let mut row_ends = [0usize; ROWS];
    for p in phases {
        let col = col_of(p.start);
        let name: Vec<char> = p.name.chars().collect();
        let at_col = (0..ROWS).find(|r| col >= row_ends[*r] && col + name.len() <= room);
        let placed = at_col.map(|r| (r, col)).or_else(|| {
            (0..ROWS)
                .min_by_key(|r| row_ends[*r])
                .map(|r| (r, row_ends[r].max(col)))
                .filter(|(_, c)| c + name.len() <= room)
        });
        if let Some((r, c)) = placed {
            rows[r][c..c + name.len()].copy_from_slice(&name);
            row_ends[r] = c + name.len() + 1;
        }
    }
    let pad = " ".repeat(lw + 2);
    for row in rows {
        let line: String = row.into_iter().collect();
        if !line.trim().is_empty() {
            out += &format!("{pad}{}\n", line.trim_end());
        }
    }
    let (t0, t1) = ("0s".to_string(), fmt_time(duration));
    let gap = width.saturating_sub(t0.len() + t1.len()).max(1);
    out += &format!("{pad}{t0}{}{t1}\n", " ".repeat(gap));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, start: f64, end: f64) -> Phase {
        Phase {
            name: name.into(),
            start,
            end,
        }
    }

    #[test]
    fn text_chart_fills_columns_in_eighths() {
        let cols = [0.0, 50.0, 100.0, 100.0];
        let s = text_chart(
            &cols,
            4.0,
            &[phase("a", 0.0, 2.0), phase("b", 2.0, 4.0)],
            1,
            100.0,
            "/s",
        );
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "100/s ┤ ▄██");
        assert_eq!(lines[1], "  0/s └──┬─");
        assert_eq!(lines[2], "       a b");
        assert_eq!(lines[3], "       0s 4s");
    }

    #[test]
    fn crowded_phase_names_are_all_shown() {
        // A short rise and peak right after `before`: every name still appears under the axis.
        let cols = vec![10.0; 40];
        let ph = [
            phase("before", 0.0, 20.0),
            phase("rise", 20.0, 21.0),
            phase("peak", 21.0, 22.0),
            phase("decay", 22.0, 30.0),
            phase("after", 30.0, 40.0),
        ];
        let s = text_chart(&cols, 40.0, &ph, 2, 10.0, "/s");
        for name in ["before", "rise", "peak", "decay", "after"] {
            assert!(s.contains(name), "`{name}` missing:\n{s}");
        }
    }

    #[test]
    fn values_format_compactly() {
        assert_eq!(fmt_value(300.0), "300");
        assert_eq!(fmt_value(1033.69), "1034");
        assert_eq!(fmt_value(12.5), "12.5");
        assert_eq!(fmt_value(0.333), "0.33");
        assert_eq!(fmt_time(146.0), "2m26s");
        assert_eq!(fmt_time(0.0), "0s");
        assert_eq!(fmt_time(1.5), "1.5s");
        assert_eq!(fmt_time(6.083), "6.08s");
        assert_eq!(fmt_time(0.25), "250ms");
        assert_eq!(fmt_time(26.0), "26s");
        assert_eq!(fmt_time(150.0), "2m30s");
        assert_eq!(fmt_time(120.0), "2m");
        assert_eq!(fmt_time(59.999), "1m");
        assert_eq!(fmt_time(5400.0), "1h30m");
        assert_eq!(fmt_time(7200.0), "2h");
        assert_eq!(fmt_time(14726.0), "4h5m26s");
    }

    #[test]
    fn rate_chart_writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.png");
        let series = [Series {
            name: "planned".into(),
            points: vec![(0.0, 10.0), (5.0, 10.0), (5.0, 40.0), (10.0, 20.0)],
        }];
        let phases = [phase("warmup", 0.0, 5.0), phase("burst", 5.0, 10.0)];
        rate_chart(&path, "test", &series, &phases, "arrivals/s").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 5_000, "{} bytes", bytes.len());
    }
}
