//! `/d/{name}/f/{feature}`: one feature's statistics, activation histogram, logit lens,
//! nearest features in the other dictionaries, and its top and quantile examples.

use axum::extract::{Path, State};
use maud::{html, Markup};

use super::chip::chip;
use super::format::{count, density, persistence, value};
use super::layout::{dictionary_url, encode, feature_url, page as shell};
use super::plots::{bars, log_ticks, Bars};
use super::tokens::highlighted;
use crate::database::feature::{self, Example, FeatureData, LensEntry};
use crate::http_error::{HttpError, HttpResult};
use crate::params::feature_index;
use crate::state::{blocking, AppState, Shared};

/// Reads the feature's data after checking the dictionary and index (shared with the API).
pub async fn load(state: &Shared, name: &str, feature: &str) -> HttpResult<FeatureData> {
    let dict = state.dictionary(name)?.clone();
    let feature = feature_index(feature, dict.d_sae)?;
    blocking(state, move |s| {
        s.pool
            .read(|conn| feature::read(conn, &s.catalog, &dict, feature))?
            .ok_or_else(|| {
                HttpError::not_found(format!(
                    "feature {feature} of `{}` has no row in the database",
                    dict.name
                ))
            })
    })
    .await
}

/// Carry and temporal dictionaries record the codes that are on, not only those paid for.
fn contextual(architecture: &str) -> bool {
    matches!(architecture, "carry" | "temporal")
}

pub async fn page(
    State(state): State<Shared>,
    Path((name, feature)): Path<(String, String)>,
) -> HttpResult<Markup> {
    let data = load(&state, &name, &feature).await?;
    let dict = state.dictionary(&name)?;
    let title = format!("{} · feature {}", data.dictionary, data.feature);
    let live = state.live.dictionary(&name).err();
    let excluded = state.catalog.lens_excluded.len();
    let body = html! {
        p.note {
            a href=(dictionary_url(&data.dictionary)) { (data.dictionary) } " · "
            code { (dict.hook) }
            " · "
            @if data.feature > 0 { a href=(feature_url(&data.dictionary, data.feature - 1)) { "← " (data.feature - 1) } " " }
            @if data.feature + 1 < dict.d_sae { a href=(feature_url(&data.dictionary, data.feature + 1)) { (data.feature + 1) " →" } }
        }
        h1 { "Feature " (data.feature) }
        div.stats {
            div.stat { b { (density(data.stats.density)) } span { "density" } }
            div.stat { b { (count(data.stats.count)) } span { "firing positions" } }
            div.stat { b { (value(data.stats.mean_act)) } span { "mean activation (when firing)" } }
            div.stat { b { (value(data.stats.max_act)) } span { "max activation" } }
            div.stat title="P(fires at the next token | fires here), over counted positions of the same window" {
                b { (persistence(data.stats.p_stay)) } span { "P(stays on at the next token)" }
            }
            @if let Some(run) = data.stats.mean_run {
                div.stat { b { (format!("{run:.1}")) } span { "mean run (tokens)" } }
            }
        }
        p {
            a href=(format!("/steer?dict={}&feature={}", encode(&data.dictionary), data.feature)) { "Steer with this feature" }
        }
        div.row {
            div {
                h2 { "Activation histogram" }
                (activation_plot(&data))
                p.note { "Firing positions per log-spaced activation bin (values outside the range count in the end bins)." }
            }
            div.lens-block {
                h2 { "Logit lens" }
                p.note { (dict.lens) }
                div.row {
                    (lens_table(&state, "Promotes", &data.lens_promoted))
                    (lens_table(&state, "Suppresses", &data.lens_suppressed))
                }
                @if excluded > 0 {
                    p.note {
                        (count(excluded as u64))
                        @if excluded == 1 { " token is" } @else { " tokens are" }
                        " left out of every lens (special or unused tokens)."
                    }
                }
            }
        }
        @if !data.nearest.is_empty() {
            h2 { "Nearest features (decoder cosine)" }
            div.row {
                @for group in &data.nearest {
                    table {
                        tr { th colspan="2" { (group.other) } }
                        @for n in &group.entries {
                            tr {
                                td { a href=(feature_url(&group.other, n.feature)) { "feature " (n.feature) } }
                                td.num { (format!("{:.3}", n.cosine)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Top examples" }
        @if contextual(&dict.architecture) {
            p.note {
                "A contextual (" (dict.architecture) ") dictionary: the values are the codes on at \
                 each position, carried ones included, so a feature that holds shows on through \
                 its region; counts and densities are of positions where it is on."
            }
        }
        @if data.top.is_empty() { p.muted { "This feature never fired in the scan." } }
        div.examples.top {
            @for e in &data.top {
                (example(&data, e, &format!("#{}", e.rank + 1), live.is_none()))
            }
        }
        @if !data.quantiles.is_empty() {
            h2 { "Examples across the activation range" }
            p.note { "Uniform samples from equal-width activation bins, strongest bin first." }
            @for g in data.quantiles.iter().rev() {
                h3 {
                    "Bin " (g.bin) ": activation " (value(g.lo)) " to " (value(g.hi))
                    span.muted { " · " (count(g.count)) " positions" }
                }
                div.examples.quantile {
                    @for e in &g.examples { (example(&data, e, "", false)) }
                }
            }
        }
    };
    Ok(shell(&title, body))
}

fn example(data: &FeatureData, e: &Example, label: &str, can_ablate: bool) -> Markup {
    html! {
        div.example data-example=(e.id) {
            div.meta {
                (label) " " b { (value(f64::from(e.value))) }
                br;
                "window " (e.window) ", pos " (e.pos)
                @if !label.is_empty() && (e.ablated || can_ablate) {
                    br;
                    a href=(format!("{}/ablation/{}", feature_url(&data.dictionary, data.feature), e.id)) {
                        @if e.ablated { "ablation" } @else { "compute ablation" }
                    }
                }
            }
            (highlighted(&e.tokens, e.marked(), data.stats.max_act))
        }
    }
}

fn lens_table(state: &AppState, title: &str, entries: &[LensEntry]) -> Markup {
    html! {
        table.lens {
            tr { th { (title) } th.num { "logit" } }
            @for e in entries {
                tr { td { (chip(state, e.token)) } td.num { (value(e.value)) } }
            }
            @if entries.is_empty() { tr { td.muted colspan="2" { "none" } } }
        }
    }
}

fn activation_plot(data: &FeatureData) -> Markup {
    let edges = &data.hist_edges;
    let counts: Vec<u64> = data.hist.iter().map(|&c| u64::from(c)).collect();
    let edge = |i: usize| edges.get(i).copied().unwrap_or(f64::NAN);
    let titles = (0..counts.len())
        .map(|i| {
            format!(
                "{} to {}: {} positions",
                value(edge(i)),
                value(edge(i + 1)),
                counts[i]
            )
        })
        .collect();
    let ticks = if edges.len() == counts.len() + 1 && edges.iter().all(|&e| e > 0.0) {
        log_ticks(&edges.iter().map(|e| e.log10()).collect::<Vec<_>>())
    } else {
        Vec::new()
    };
    bars(&Bars {
        counts: &counts,
        titles,
        ticks,
        x_label: "activation (log scale)",
        class: "activations",
    })
}
