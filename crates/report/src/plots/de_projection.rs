//! Encoder/decoder geometry: each latent's D/E projection against its log10 density,
//! coloured by its encoder bias. The projection is METRICS.md's, scaled to the units where
//! E‖x‖² = d (so "near 1" means a latent writes back what it reads); a file from before the
//! scale has only the raw ratio, and the plot says so.

use super::histogram::{APART_BAND, APART_WIDTH, APART_X};
use super::{jitter, per_latent_caption, stride_for, Figure};
use crate::eval_file::DictionaryEval;
use crate::format;
use crate::svg::chart::Margin;
use crate::svg::colour::NEUTRAL;
use crate::svg::legend::colour_bar;
use crate::svg::scale::{nice_extent, Scale};
use crate::svg::{Chart, ColourScale, TickFormat};

/// More points than this make the page heavy and the plot no clearer.
pub const MAX_POINTS: usize = 4000;
const WIDTH: f64 = 416.0;
const HEIGHT: f64 = 300.0;

/// The y range: the 0.5th to 99.5th percentile, so that a handful of extreme latents do not
/// squeeze the rest into a line (they are drawn on the edge instead).
fn robust_range(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.005), at(0.995));
    let pad = ((hi - lo) * 0.05).max(1e-6);
    nice_extent(lo - pad, hi + pad, 5)
}

struct Point {
    latent: usize,
    density: f64,
    projection: f64,
    b_enc: Option<f64>,
}

pub fn figure(d: &DictionaryEval, colour: &str, domain: (f64, f64)) -> Figure {
    let lat = &d.latents;
    let scaled = d.de_projection_is_scaled();
    let values = match scaled {
        true => d.de_projection_scaled(),
        false => d.de_projection_raw(),
    };
    let n = lat.density.len().max(values.len());
    let b_enc = lat.b_enc.as_deref();
    let all: Vec<Point> = (0..n)
        .filter_map(|i| {
            Some(Point {
                latent: i,
                density: lat.density.get(i)?.finite()?,
                projection: values.get(i)?.finite()?,
                b_enc: b_enc.and_then(|b| b.get(i)).and_then(|v| v.finite()),
            })
        })
        .collect();
    let missing = n - all.len();
    let colours = b_enc.and_then(|b| ColourScale::robust(b.iter().filter_map(|v| v.finite())));
    let projections: Vec<f64> = all.iter().map(|p| p.projection).collect();
    let (y_lo, y_hi) = robust_range(&projections);

    let mut chart = Chart::new("de-projection", WIDTH, HEIGHT)
        .with_margin(Margin {
            left: 58.0,
            right: if colours.is_some() { 64.0 } else { 16.0 },
            top: 26.0,
            bottom: 44.0,
        })
        .data("dictionary", d.label())
        .describe(&format!("D/E projection against density, {}", d.label()));
    // Dead latents have no log density: they go in a band left of the axis, as in the
    // density histogram.
    let band_x = chart.left() + APART_X;
    let x = Scale::linear(domain.0, domain.1, chart.left() + APART_BAND, chart.right());
    let y = chart.y_linear(y_lo, y_hi);
    let y_title = match scaled {
        true => "D/E projection (E‖x‖² = d units)",
        false => "D/E projection (raw ratio)",
    };
    chart.y_axis(&y, y_title, TickFormat::Plain, 5);
    chart.x_axis(
        &x,
        "fraction of tokens on which the latent fires (log scale)",
        TickFormat::Exponent,
        6,
    );
    chart.x_tick(band_x + APART_WIDTH / 2.0, "dead");
    // 1 is what a faithful latent gives only in the scaled units.
    if scaled && y.contains(1.0) {
        chart.h_guide(y.map(1.0), "1", "#999");
    }
    if all.is_empty() {
        chart.note("no per-latent values");
    }

    let stride = stride_for(all.len(), MAX_POINTS);
    let mut clipped = 0;
    let mut shown = 0;
    for p in all.iter().step_by(stride) {
        let px = if p.density > 0.0 {
            x.map_clamped(p.density.log10())
        } else {
            band_x + 2.0 + jitter(p.latent) * (APART_WIDTH - 4.0)
        };
        if !y.contains(p.projection) {
            clipped += 1;
        }
        let fill = match (&colours, p.b_enc) {
            (Some(c), Some(b)) => c.colour(b),
            (Some(_), None) => NEUTRAL.to_string(),
            (None, _) => colour.to_string(),
        };
        let b_text = p.b_enc.map_or("n/a".to_string(), format::number);
        let tip = format!(
            "latent {}: density {}, D/E {}, b_enc {}",
            p.latent,
            format::number(p.density),
            format::number(p.projection),
            b_text
        );
        chart.circle(px, y.map_clamped(p.projection), 1.8, &fill, Some(&tip));
        shown += 1;
    }
    if let Some(c) = &colours {
        let bar_x = chart.right() + 14.0;
        colour_bar(&mut chart, c, bar_x, "b_enc");
    }

    let mut caption = per_latent_caption(stride, shown, all.len());
    caption.push_str(&units_note(d, scaled));
    caption.push_str(" Dead latents sit in the band at the left. ");
    caption.push_str(match colours {
        Some(_) => "Colour: b_enc, scaled over its 1st to 99th percentile.",
        None => "b_enc is n/a for this dictionary: one colour.",
    });
    if clipped > 0 {
        caption.push_str(&format!(
            " {} drawn points lie beyond the y range and sit on its edge.",
            format::count(clipped)
        ));
    }
    if missing > 0 {
        caption.push_str(&format!(
            " {} latents have no density or D/E value and are not drawn.",
            format::count(missing as u64)
        ));
    }
    if let Some(p) = &d.pruned {
        caption.push_str(&format!(
            " This entry is evaluated with its {} densest latents removed; their weights are \
             unchanged, so they are drawn as dead.",
            p.count.show_count()
        ));
    }
    Figure {
        title: format!("D/E projection vs density: {}", d.label()),
        svg: chart.finish(),
        caption,
    }
}

/// What the y values are, with the scale when the file gives it.
fn units_note(d: &DictionaryEval, scaled: bool) -> String {
    if !scaled {
        return ". D/E projection = ⟨W_dec[i], W_enc[:, i]⟩ / ‖W_enc[:, i]‖², the raw ratio in \
                units of ‖x‖²: this file predates the scaled projection, so 1 is not the \
                faithful value here."
            .to_string();
    }
    let mut note = String::from(
        ". D/E projection = s²·⟨W_dec[i], W_enc[:, i]⟩ / ‖W_enc[:, i]‖² with s² = d / E‖x‖², \
         so that 1 is a latent that writes back what it reads",
    );
    let d_in = d.d_in.finite();
    match (d.geometry.input_mean_sq_norm.finite(), d_in) {
        (Some(m), Some(d_in)) if m > 0.0 => note.push_str(&format!(
            " (here E‖x‖² = {}, s² = {}); the raw ratio (`de_projection_raw`) is the value ÷ s².",
            format::number(m),
            format::number(d_in / m)
        )),
        _ => note.push_str("; the raw ratio (`de_projection_raw`) is the value ÷ s²."),
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dictionary(n: usize, b_enc: serde_json::Value) -> DictionaryEval {
        let density: Vec<f64> = (0..n)
            .map(|i| if i % 10 == 0 { 0.0 } else { 1e-3 })
            .collect();
        let projection: Vec<f64> = (0..n).map(|i| 0.9 + (i % 7) as f64 * 0.01).collect();
        serde_json::from_value(json!({
            "name": "d",
            "latents": {"density": density, "de_projection": projection, "b_enc": b_enc}
        }))
        .unwrap()
    }

    #[test]
    fn many_latents_are_subsampled_and_the_caption_says_so() {
        let f = figure(&dictionary(16384, json!(null)), "#123456", (-6.0, 0.0));
        let points = f.svg.matches("<circle").count();
        assert!(points <= MAX_POINTS && points > 3000, "{points}");
        assert!(f
            .caption
            .contains("every 5th latent: 3,277 of 16,384 drawn"));
        assert!(f.caption.contains("one colour") && f.svg.contains("#123456"));
    }

    #[test]
    fn encoder_bias_colours_the_points_with_a_bar() {
        let b: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let f = figure(&dictionary(100, json!(b)), "#123456", (-6.0, 0.0));
        assert!(f.svg.contains("bar-slice") && !f.svg.contains("#123456"));
        assert!(!f.caption.contains("every"));
    }

    #[test]
    fn the_units_follow_the_file() {
        let raw: Vec<f64> = (0..50).map(|i| 30.0 + i as f64 * 0.2).collect();
        let scaled: Vec<f64> = raw.iter().map(|r| r / 32.0).collect();
        let density = vec![1e-3; 50];
        let new: DictionaryEval = serde_json::from_value(json!({
            "d_in": 576,
            "geometry": {"input_mean_sq_norm": 18432.0},
            "latents": {"density": density, "de_projection": scaled, "de_projection_raw": raw}
        }))
        .unwrap();
        let f = figure(&new, "#000", (-6.0, 0.0));
        assert!(f.svg.contains("E‖x‖² = d units"), "{}", f.svg);
        assert!(f.caption.contains("s² = 0.03125") && f.caption.contains("de_projection_raw"));
        let old: DictionaryEval = serde_json::from_value(json!({
            "latents": {"density": density, "de_projection": raw}
        }))
        .unwrap();
        let f = figure(&old, "#000", (-6.0, 0.0));
        assert!(f.svg.contains("raw ratio") && f.caption.contains("predates"));
        assert_eq!(f.svg.matches("<circle").count(), 50);
    }

    #[test]
    fn missing_values_are_counted_not_drawn() {
        let d: DictionaryEval = serde_json::from_value(json!({
            "latents": {"density": [0.1, null, 0.2], "de_projection": [1.0, 1.0, "NaN"]}
        }))
        .unwrap();
        let f = figure(&d, "#000", (-6.0, 0.0));
        assert_eq!(f.svg.matches("<circle").count(), 1);
        assert!(f.caption.contains("2 latents have no density"));
    }
}
