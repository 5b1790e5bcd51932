//! Text shown token by token: one `<span>` per token, its background set by a value, the
//! exact value in `title` (hover) and `data-value` (for scripts and tests).

use maud::{html, Markup};

use crate::database::feature::ShownToken;

/// Background opacity for an activation: value / max_act, clipped to [0, 1].
fn activation_alpha(act: f32, max_act: f64) -> f64 {
    if max_act <= 0.0 || act <= 0.0 {
        return 0.0;
    }
    (f64::from(act) / max_act).clamp(0.0, 1.0)
}

/// Activations in orange; the example's own token outlined.
pub fn highlighted(tokens: &[ShownToken], marked: Option<usize>, max_act: f64) -> Markup {
    html! {
        span.ctx {
            @for (i, t) in tokens.iter().enumerate() {
                @let alpha = activation_alpha(t.act, max_act);
                span.tok.at[marked == Some(i)]
                    style=(format!("background:rgba(255,130,0,{alpha:.3})"))
                    title=(format!("activation {} · token {}", t.act, t.id))
                    data-value=(t.act) { (t.text) }
            }
        }
    }
}

/// An ablation: each token coloured by how removing it changes the activation at the
/// marked position. Red: removing it lowers the activation (the token helps the feature
/// fire); blue: removing it raises it. Tokens after the ablated range are uncoloured.
pub fn ablated(tokens: &[ShownToken], marked: Option<usize>, deltas: &[f32], base: f32) -> Markup {
    let scale = deltas
        .iter()
        .filter(|d| d.is_finite())
        .fold(base.abs(), |m, d| m.max(d.abs()))
        .max(f32::MIN_POSITIVE);
    html! {
        span.ctx {
            @for (i, t) in tokens.iter().enumerate() {
                @match deltas.get(i) {
                    Some(d) if d.is_finite() => {
                        @let alpha = (d.abs() / scale).clamp(0.0, 1.0);
                        @let colour = if *d < 0.0 { "220,38,38" } else { "37,99,235" };
                        span.tok.at[marked == Some(i)]
                            style=(format!("background:rgba({colour},{alpha:.3})"))
                            title=(format!("removing it changes the activation by {d}"))
                            data-delta=(d) { (t.text) }
                    }
                    Some(_) => {
                        span.tok.at[marked == Some(i)] title="kept (special token)" data-delta="kept" { (t.text) }
                    }
                    None => {
                        span.tok.at[marked == Some(i)] title=(format!("activation {}", t.act)) { (t.text) }
                    }
                }
            }
        }
    }
}
