//! Chart text drawn from the embedded font's own outlines, so that a chart reads the same on
//! any machine: in a PNG (rasterized here, glyph by glyph, with each glyph's bearing and the
//! font's kerning) and in the SVG charts of report.html (a `<text>` whose characters a system
//! font may lack, such as `下单` on a machine without CJK fonts, becomes a `<path>`).
//!
//! This file lays out and draws single lines of text. It decides nothing about charts: the
//! chart code places labels; [`OutlineText`] is a plotters backend wrapper that routes their
//! text here and everything else to the backend it wraps.

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve, PxScale, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use std::sync::OnceLock;

/// The embedded chart font (the first face of the collection).
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice_and_index(super::chart::FONT, 0)
            .expect("the embedded chart font parses")
    })
}

/// One line of text laid out at a pixel size: glyphs with their pen positions.
struct Line {
    glyphs: Vec<(GlyphId, f32)>,
    width: f32,
    ascent: f32,
    height: f32,
    scale: PxScale,
}

/// Lays out `text` at `px` pixels from the descender to the ascender (plotters' font size).
fn layout(text: &str, px: f32) -> Line {
    let f = font();
    let scale = PxScale::from(px);
    let s = f.as_scaled(scale);
    let mut pen = 0.0f32;
    let mut prev: Option<GlyphId> = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = s.glyph_id(c);
        if let Some(p) = prev {
            pen += s.kern(p, id);
        }
        glyphs.push((id, pen));
        pen += s.h_advance(id);
        prev = Some(id);
    }
    Line {
        glyphs,
        width: pen,
        ascent: s.ascent(),
        height: s.ascent() - s.descent(),
        scale,
    }
}

/// From the anchor point to the line's baseline start, in pixels.
fn origin(l: &Line, h: HPos, v: VPos) -> (f32, f32) {
    let dx = match h {
        HPos::Left => 0.0,
        HPos::Center => -l.width / 2.0,
        HPos::Right => -l.width,
    };
    let top = match v {
        VPos::Top => 0.0,
        VPos::Center => -l.height / 2.0,
        VPos::Bottom => -l.height,
    };
    (dx, top + l.ascent)
}

/// The size of `text` at `px`: advance width and line height, whole pixels.
pub fn text_size(text: &str, px: f32) -> (u32, u32) {
    let l = layout(text, px);
    (l.width.ceil() as u32, l.height.ceil() as u32)
}

/// Rasterizes `text` anchored at (0, 0): `put(x, y, coverage)` for every touched pixel.
pub fn raster(text: &str, px: f32, h: HPos, v: VPos, mut put: impl FnMut(i32, i32, f32)) {
    let l = layout(text, px);
    let (ox, oy) = origin(&l, h, v);
    let f = font();
    for &(id, x) in &l.glyphs {
        let g = id.with_scale_and_position(l.scale, ab_glyph::point(ox + x, oy));
        if let Some(o) = f.outline_glyph(g) {
            let b = o.px_bounds();
            o.draw(|gx, gy, c| put(b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32, c));
        }
    }
}

/// The outlines of `text` anchored at (`x`, `y`), as SVG path data.
pub fn path_data(text: &str, px: f32, x: f32, y: f32, h: HPos, v: VPos) -> String {
    use std::fmt::Write;
    let l = layout(text, px);
    let (ox, oy) = origin(&l, h, v);
    let f = font();
    let k = f.as_scaled(l.scale).scale_factor();
    let mut d = String::new();
    for &(id, gx) in &l.glyphs {
        let Some(outline) = f.outline(id) else {
            continue;
        };
        // Font units are y-up from the baseline; the page is y-down.
        let at = |p: ab_glyph::Point| (x + ox + gx + p.x * k.horizontal, y + oy - p.y * k.vertical);
        let mut last: Option<ab_glyph::Point> = None;
        for c in &outline.curves {
            let (start, end) = match c {
                OutlineCurve::Line(a, b) => (*a, *b),
                OutlineCurve::Quad(a, _, b) => (*a, *b),
                OutlineCurve::Cubic(a, _, _, b) => (*a, *b),
            };
            if last != Some(start) {
                let (sx, sy) = at(start);
                let _ = write!(d, "M{sx:.2} {sy:.2}");
            }
            match c {
                OutlineCurve::Line(_, b) => {
                    let (bx, by) = at(*b);
                    let _ = write!(d, "L{bx:.2} {by:.2}");
                }
                OutlineCurve::Quad(_, c1, b) => {
                    let ((cx, cy), (bx, by)) = (at(*c1), at(*b));
                    let _ = write!(d, "Q{cx:.2} {cy:.2} {bx:.2} {by:.2}");
                }
                OutlineCurve::Cubic(_, c1, c2, b) => {
                    let ((c1x, c1y), (c2x, c2y), (bx, by)) = (at(*c1), at(*c2), at(*b));
                    let _ = write!(d, "C{c1x:.2} {c1y:.2} {c2x:.2} {c2y:.2} {bx:.2} {by:.2}");
                }
            }
            last = Some(end);
        }
        if last.is_some() {
            d.push('Z');
        }
    }
    d
}

/// `text` as a small inline SVG of the embedded font's outlines, `px` high, for a heading that
/// must read on a machine without the fonts for it; the text stays its `aria-label`.
pub fn inline_svg(text: &str, px: f32, fill: &str) -> String {
    let (w, h) = text_size(text, px);
    format!(
        "<svg class=\"glyphs\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><path d=\"{}\" fill=\"{fill}\"/></svg>",
        crate::report::html::esc(text),
        path_data(text, px, 0.0, 0.0, HPos::Left, VPos::Top)
    )
}

/// Replaces each `<text>` element of a plotters SVG whose text is not plain ASCII with a `<path>`
/// of the embedded font's outlines (same place, anchor, size, colour and rotation; the text kept
/// as its `aria-label`). ASCII text stays text: every system has a font for it.
pub fn outline_svg_text(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find("<text ") {
        out.push_str(&rest[..i]);
        let Some(close) = rest[i..].find("</text>") else {
            break;
        };
        let element = &rest[i..i + close + "</text>".len()];
        rest = &rest[i + element.len()..];
        match text_to_path(element) {
            Some(p) => out.push_str(&p),
            None => out.push_str(element),
        }
    }
    out.push_str(rest);
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let n = tag[i..].find('"')?;
    Some(&tag[i..i + n])
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn text_to_path(element: &str) -> Option<String> {
    let open_end = element.find('>')?;
    let tag = &element[..open_end];
    let body = &element[open_end + 1..element.len() - "</text>".len()];
    let text = unescape(body.trim());
    if text.is_ascii() || text.contains('<') {
        return None;
    }
    let x: f32 = attr(tag, "x")?.parse().ok()?;
    let y: f32 = attr(tag, "y")?.parse().ok()?;
    // plotters writes the CSS em size, its pixel size / 1.24, and says the vertical anchor
    // with dy: 0.76em top, 0.5ex centre, -0.5ex bottom.
    let px = attr(tag, "font-size")?.parse::<f32>().ok()? * 1.24;
    let v = match attr(tag, "dy") {
        Some("0.76em") => VPos::Top,
        Some("0.5ex") => VPos::Center,
        Some("-0.5ex") => VPos::Bottom,
        _ => VPos::Top,
    };
    let h = match attr(tag, "text-anchor") {
        Some("middle") => HPos::Center,
        Some("end") => HPos::Right,
        _ => HPos::Left,
    };
    let mut p = format!(
        "<path d=\"{}\" fill=\"{}\"",
        path_data(&text, px, x, y, h, v),
        attr(tag, "fill").unwrap_or("#000000")
    );
    for a in ["opacity", "transform"] {
        if let Some(val) = attr(tag, a) {
            p.push_str(&format!(" {a}=\"{val}\""));
        }
    }
    p.push_str(&format!(
        " role=\"img\" aria-label=\"{}\"/>",
        crate::report::html::esc(&text)
    ));
    Some(p)
}

/// A plotters backend whose text is drawn by [`raster`] (the embedded font, correct bearings
/// and kerning) and whose shapes go to the backend it wraps.
pub struct OutlineText<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for OutlineText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        Ok(text_size(text, style.size() as f32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        let trans = style.transform();
        let (w, h) = self.0.get_size();
        let mut pixels = Vec::new();
        raster(
            text,
            style.size() as f32,
            anchor.h_pos,
            anchor.v_pos,
            |x, y, c| pixels.push((x, y, c)),
        );
        for (x, y, c) in pixels {
            let (x, y) = trans.transform(x, y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h && c > 0.0 {
                let px = BackendColor {
                    alpha: color.alpha * c.min(1.0) as f64,
                    rgb: color.rgb,
                };
                self.0.draw_pixel((x, y), px)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerning_and_bearings_give_even_advances() {
        // "mm" is two advances of "m": no gap is added after a wide glyph.
        let (m, _) = text_size("m", 20.0);
        let (mm, _) = text_size("mm", 20.0);
        assert!((mm as i32 - 2 * m as i32).abs() <= 1, "m {m}, mm {mm}");
        // A CJK glyph is about a full em wide.
        let (cjk, h) = text_size("下单", 20.0);
        assert!(
            (29..44).contains(&cjk),
            "two CJK glyphs at 20 px: {cjk} wide"
        );
        assert!((18..=24).contains(&h), "line height {h}");
    }

    #[test]
    fn raster_pixels_fall_inside_the_anchored_box() {
        let (w, h) = text_size("time since start", 16.0);
        let mut n = 0;
        raster(
            "time since start",
            16.0,
            HPos::Center,
            VPos::Top,
            |x, y, _| {
                n += 1;
                assert!(x.abs() <= w as i32 / 2 + 2, "x {x} outside ±{}", w / 2);
                assert!((-2..=h as i32 + 2).contains(&y), "y {y} outside 0..{h}");
            },
        );
        assert!(n > 100, "only {n} pixels drawn");
    }

    #[test]
    fn non_ascii_svg_text_becomes_a_path_and_ascii_stays_text() {
        let svg = "<svg><text x=\"97\" y=\"50\" dy=\"0.76em\" text-anchor=\"start\" \
                   font-family=\"sans-serif\" font-size=\"11.5\" opacity=\"1\" fill=\"#464646\">\n预热\n</text>\
                   <text x=\"5\" y=\"5\" dy=\"0.5ex\" text-anchor=\"end\" font-size=\"12\" fill=\"#000000\">p99</text></svg>";
        let out = outline_svg_text(svg);
        assert!(!out.contains(">\n预热\n</text>"), "{out}");
        assert!(out.contains("<path d=\"M"), "{out}");
        assert!(
            out.contains("fill=\"#464646\" opacity=\"1\" role=\"img\" aria-label=\"预热\"/>"),
            "{out}"
        );
        assert!(out.contains(">p99</text>"), "{out}");
        assert!(out.starts_with("<svg>") && out.ends_with("</svg>"));
    }
}
