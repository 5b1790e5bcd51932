//! A chart canvas: a plot area inside margins, axes with gridlines, and marks. Data marks carry
//! `class="mark"` (what the page's render check counts) and an optional hover text (`data-tip`).

use super::escape::escape;
use super::scale::{Scale, TickFormat};
use std::fmt::Write;

/// Space around the plot area for tick labels, axis titles and legends.
#[derive(Clone, Copy, Debug)]
pub struct Margin {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

#[derive(Clone, Copy, Debug)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn attr(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

pub struct Chart {
    kind: String,
    width: f64,
    height: f64,
    pub margin: Margin,
    attrs: Vec<(String, String)>,
    label: String,
    body: String,
}

/// Coordinates with one decimal (a tenth of a pixel is plenty) and no trailing ".0".
pub fn px(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some("-0") => "0".to_string(),
        Some(whole) => whole.to_string(),
        None => s,
    }
}

/// A rough text width for layout (labels use an 11 px sans-serif font).
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

fn tip_attr(tip: Option<&str>) -> String {
    match tip {
        Some(t) => format!(r#" data-tip="{}""#, escape(t)),
        None => String::new(),
    }
}

impl Chart {
    /// `kind` becomes the svg's `data-plot` attribute.
    pub fn new(kind: &str, width: f64, height: f64) -> Self {
        Chart {
            kind: kind.to_string(),
            width,
            height,
            margin: Margin {
                left: 58.0,
                right: 16.0,
                top: 26.0,
                bottom: 44.0,
            },
            attrs: Vec::new(),
            label: kind.to_string(),
            body: String::new(),
        }
    }

    pub fn with_margin(mut self, margin: Margin) -> Self {
        self.margin = margin;
        self
    }

    /// Adds a `data-<key>` attribute to the svg element.
    pub fn data(mut self, key: &str, value: &str) -> Self {
        self.attrs.push((format!("data-{key}"), value.to_string()));
        self
    }

    /// The accessible name of the plot.
    pub fn describe(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    pub fn width(&self) -> f64 {
        self.width
    }

    pub fn left(&self) -> f64 {
        self.margin.left
    }
    pub fn right(&self) -> f64 {
        self.width - self.margin.right
    }
    pub fn top(&self) -> f64 {
        self.margin.top
    }
    pub fn bottom(&self) -> f64 {
        self.height - self.margin.bottom
    }

    /// A scale across the plot area's width.
    pub fn x_linear(&self, lo: f64, hi: f64) -> Scale {
        Scale::linear(lo, hi, self.left(), self.right())
    }
    /// A scale up the plot area's height.
    pub fn y_linear(&self, lo: f64, hi: f64) -> Scale {
        Scale::linear(lo, hi, self.bottom(), self.top())
    }

    /// Ticks, vertical gridlines and a title below the plot area.
    pub fn x_axis(&mut self, scale: &Scale, title: &str, format: TickFormat, ticks: usize) {
        for v in scale.ticks(ticks) {
            let x = scale.map(v);
            if x < self.left() - 0.5 || x > self.right() + 0.5 {
                continue;
            }
            self.raw(&format!(
                r#"<line class="grid" x1="{x}" y1="{t}" x2="{x}" y2="{b}"/>"#,
                x = px(x),
                t = px(self.top()),
                b = px(self.bottom())
            ));
            self.x_tick(x, &format.label(v));
        }
        self.x_title(title);
        self.raw(&format!(
            r#"<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>"#,
            l = px(self.left()),
            r = px(self.right()),
            b = px(self.bottom())
        ));
    }

    /// A tick mark and its label under the plot area at pixel `x`.
    pub fn x_tick(&mut self, x: f64, label: &str) {
        let b = self.bottom();
        self.raw(&format!(
            r#"<line class="axis" x1="{x}" y1="{b}" x2="{x}" y2="{b2}"/>"#,
            x = px(x),
            b = px(b),
            b2 = px(b + 4.0)
        ));
        self.text(x, b + 15.0, label, Anchor::Middle, "tick");
    }

    pub fn x_title(&mut self, title: &str) {
        let x = (self.left() + self.right()) / 2.0;
        let y = self.bottom() + 33.0;
        self.text(x, y, title, Anchor::Middle, "title");
    }

    /// Ticks, horizontal gridlines and a rotated title left of the plot area.
    pub fn y_axis(&mut self, scale: &Scale, title: &str, format: TickFormat, ticks: usize) {
        for v in scale.ticks(ticks) {
            let y = scale.map(v);
            if y < self.top() - 0.5 || y > self.bottom() + 0.5 {
                continue;
            }
            self.raw(&format!(
                r#"<line class="grid" x1="{l}" y1="{y}" x2="{r}" y2="{y}"/>"#,
                l = px(self.left()),
                r = px(self.right()),
                y = px(y)
            ));
            let label = format.label(v);
            self.text(self.left() - 6.0, y + 3.5, &label, Anchor::End, "tick");
        }
        let (x, y) = (14.0, (self.top() + self.bottom()) / 2.0);
        self.raw(&format!(
            r#"<text class="title" text-anchor="middle" transform="translate({x},{y}) rotate(-90)">{t}</text>"#,
            x = px(x),
            y = px(y),
            t = escape(title)
        ));
        self.raw(&format!(
            r#"<line class="axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"/>"#,
            l = px(self.left()),
            t = px(self.top()),
            b = px(self.bottom())
        ));
    }

    /// A data rectangle (histogram or bar); nothing is drawn for an empty or invalid box.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, tip: Option<&str>) {
        if !(w > 0.0 && h > 0.0 && x.is_finite() && y.is_finite()) {
            return;
        }
        let _ = write!(
            self.body,
            r#"<rect class="mark" x="{}" y="{}" width="{}" height="{}" fill="{}"{}/>"#,
            px(x),
            px(y),
            px(w.max(0.1)),
            px(h.max(0.1)),
            fill,
            tip_attr(tip)
        );
    }

    /// A data point.
    pub fn circle(&mut self, x: f64, y: f64, r: f64, fill: &str, tip: Option<&str>) {
        if !(x.is_finite() && y.is_finite()) {
            return;
        }
        let _ = write!(
            self.body,
            r#"<circle class="mark" cx="{}" cy="{}" r="{}" fill="{}"{}/>"#,
            px(x),
            px(y),
            r,
            fill,
            tip_attr(tip)
        );
    }

    /// A data line through pixel points (non-finite points are skipped).
    pub fn line(&mut self, points: &[(f64, f64)], stroke: &str, tip: Option<&str>) {
        let d = path_data(points);
        if d.is_empty() {
            return;
        }
        let _ = write!(
            self.body,
            r#"<path class="mark line" d="{d}" stroke="{stroke}"{}/>"#,
            tip_attr(tip)
        );
    }

    /// A dashed vertical guide (not a data mark) with a label at its top.
    pub fn v_guide(&mut self, x: f64, label: &str, colour: &str) {
        if !x.is_finite() {
            return;
        }
        self.raw(&format!(
            r#"<line class="guide" x1="{x}" y1="{t}" x2="{x}" y2="{b}" stroke="{colour}"/>"#,
            x = px(x),
            t = px(self.top()),
            b = px(self.bottom())
        ));
        let anchor = if x > (self.left() + self.right()) / 2.0 {
            Anchor::End
        } else {
            Anchor::Start
        };
        let dx = if matches!(anchor, Anchor::End) {
            -3.0
        } else {
            3.0
        };
        self.text(x + dx, self.top() + 10.0, label, anchor, "guide-label");
    }

    /// A dashed horizontal guide (not a data mark) with a label at its right end.
    pub fn h_guide(&mut self, y: f64, label: &str, colour: &str) {
        if !y.is_finite() {
            return;
        }
        self.raw(&format!(
            r#"<line class="guide" x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="{colour}"/>"#,
            l = px(self.left()),
            r = px(self.right()),
            y = px(y)
        ));
        self.text(
            self.right() - 3.0,
            y - 3.0,
            label,
            Anchor::End,
            "guide-label",
        );
    }

    /// Escaped text; `class` picks its style in the page's CSS.
    pub fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, class: &str) {
        let _ = write!(
            self.body,
            r#"<text class="{class}" x="{}" y="{}" text-anchor="{}">{}</text>"#,
            px(x),
            px(y),
            anchor.attr(),
            escape(text)
        );
    }

    /// A message across the plot area, for plots with nothing to draw.
    pub fn note(&mut self, message: &str) {
        let x = (self.left() + self.right()) / 2.0;
        let y = (self.top() + self.bottom()) / 2.0;
        self.text(x, y, message, Anchor::Middle, "note");
    }

    /// Pre-built SVG markup; callers escape any text in it.
    pub fn raw(&mut self, markup: &str) {
        self.body.push_str(markup);
    }

    pub fn finish(self) -> String {
        let mut attrs = String::new();
        for (k, v) in &self.attrs {
            let _ = write!(attrs, r#" {k}="{}""#, escape(v));
        }
        format!(
            r#"<svg class="plot" data-plot="{kind}"{attrs} viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">{body}</svg>"#,
            kind = escape(&self.kind),
            w = px(self.width),
            h = px(self.height),
            label = escape(&self.label),
            body = self.body
        )
    }
}

/// SVG path data: a move to the first finite point, lines to the rest.
fn path_data(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for &(x, y) in points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
    {
        let cmd = if d.is_empty() { 'M' } else { 'L' };
        let _ = write!(d, "{cmd}{},{}", px(x), px(y));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_carries_kind_data_and_escaped_text() {
        let mut c = Chart::new("density-histogram", 300.0, 200.0)
            .data("dictionary", "a<b")
            .describe("x & y");
        c.rect(10.0, 10.0, 5.0, 20.0, "#000", Some("bin <1>"));
        c.rect(10.0, 10.0, 5.0, 0.0, "#000", None); // empty: not drawn
        c.circle(f64::NAN, 1.0, 2.0, "#000", None); // invalid: not drawn
        c.text(1.0, 2.0, "<i>", Anchor::Start, "tick");
        let svg = c.finish();
        assert!(svg.starts_with(
            r#"<svg class="plot" data-plot="density-histogram" data-dictionary="a&lt;b""#
        ));
        assert_eq!(svg.matches("class=\"mark\"").count(), 1);
        assert!(svg.contains(r#"data-tip="bin &lt;1&gt;""#));
        assert!(svg.contains("&lt;i&gt;") && svg.contains(r#"aria-label="x &amp; y""#));
    }

    #[test]
    fn coordinates_are_short() {
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.345), "12.3");
        assert_eq!(px(-0.01), "0");
        assert_eq!(px(f64::NAN), "0");
        assert_eq!(
            path_data(&[(0.0, 1.0), (f64::NAN, 2.0), (3.0, 4.5)]),
            "M0,1L3,4.5"
        );
    }
}
