//! Legends (colour swatch + name) and colour bars, drawn inside a chart's margins.

use super::chart::{px, text_width, Anchor, Chart, Margin};
use super::colour::ColourScale;
use super::scale::{linear_ticks, TickFormat};

/// A row of swatches and names starting at (x, y), wrapping at the chart's right edge.
/// Returns the y below the last row.
pub fn legend(chart: &mut Chart, entries: &[(String, String)], x: f64, y: f64) -> f64 {
    let (mut cx, mut cy) = (x, y);
    for (colour, name) in entries {
        let w = 14.0 + text_width(name, 11.0) + 14.0;
        if cx + w > chart.width() - 4.0 && cx > x {
            cx = x;
            cy += 16.0;
        }
        chart.raw(&format!(
            r#"<rect class="swatch" x="{}" y="{}" width="10" height="10" rx="2" fill="{colour}"/>"#,
            px(cx),
            px(cy - 9.0)
        ));
        chart.text(cx + 14.0, cy, name, Anchor::Start, "legend");
        cx += w;
    }
    cy + 16.0
}

/// How many legend rows `entries` take in a chart `width` wide, for sizing the top margin.
pub fn legend_rows(entries: &[(String, String)], x: f64, width: f64) -> usize {
    let mut rows = 1;
    let mut cx = x;
    for (_, name) in entries {
        let w = 28.0 + text_width(name, 11.0);
        if cx + w > width - 4.0 && cx > x {
            rows += 1;
            cx = x;
        }
        cx += w;
    }
    rows
}

/// Where legends start, from a chart's left edge.
const LEGEND_X: f64 = 16.0;

/// A chart `width` wide whose plot area is `plot_height` tall below a legend of `entries`
/// (as many rows as they need), with room on the left for a y axis and `right` on the right.
pub fn legend_chart(
    kind: &str,
    width: f64,
    plot_height: f64,
    right: f64,
    entries: &[(String, String)],
) -> Chart {
    let rows = legend_rows(entries, LEGEND_X, width) as f64;
    let mut chart = Chart::new(kind, width, plot_height + rows * 16.0).with_margin(Margin {
        left: 58.0,
        right,
        top: 22.0 + rows * 16.0,
        bottom: 44.0,
    });
    legend(&mut chart, entries, LEGEND_X, 16.0);
    chart
}

/// A vertical colour bar at `x` spanning the plot area's height, with ticks and a title.
pub fn colour_bar(chart: &mut Chart, scale: &ColourScale, x: f64, title: &str) {
    const SLICES: usize = 48;
    const WIDTH: f64 = 12.0;
    let (top, bottom) = (chart.top(), chart.bottom());
    let slice = (bottom - top) / SLICES as f64;
    for i in 0..SLICES {
        // Slice i covers the values from its bottom edge up; the top slice is the high end.
        let t = (i as f64 + 0.5) / SLICES as f64;
        let v = scale.lo + t * (scale.hi - scale.lo);
        let y = bottom - (i + 1) as f64 * slice;
        chart.raw(&format!(
            r#"<rect class="bar-slice" x="{}" y="{}" width="{}" height="{}" fill="{}"/>"#,
            px(x),
            px(y),
            px(WIDTH),
            px(slice + 0.6),
            scale.colour(v)
        ));
    }
    for v in linear_ticks(scale.lo, scale.hi, 4) {
        let y = bottom - (v - scale.lo) / (scale.hi - scale.lo) * (bottom - top);
        chart.text(
            x + WIDTH + 4.0,
            y + 3.5,
            &TickFormat::Plain.label(v),
            Anchor::Start,
            "tick",
        );
    }
    chart.text(x + WIDTH / 2.0, top - 8.0, title, Anchor::Middle, "legend");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legends_wrap_to_the_chart_width() {
        let entries: Vec<(String, String)> = (0..6)
            .map(|i| ("#000".to_string(), format!("dictionary-{i}")))
            .collect();
        assert_eq!(legend_rows(&entries[..1], 10.0, 400.0), 1);
        assert!(legend_rows(&entries, 10.0, 400.0) >= 2);
        let mut chart = Chart::new("t", 400.0, 200.0);
        let below = legend(&mut chart, &entries, 10.0, 14.0);
        assert_eq!(
            below,
            14.0 + 16.0 * legend_rows(&entries, 10.0, 400.0) as f64
        );
    }
}
