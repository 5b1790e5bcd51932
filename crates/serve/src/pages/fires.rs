//! `/fires?text=...`: a text's tokens with each dictionary's strongest features on them.

use std::collections::HashMap;

use axum::extract::{Query, State};
use maud::{html, Markup};
use saelab_interp::fires::{what_fires, FiresLimits, HookedDictionary, TokenFires};
use saelab_interp::InterpError;

use super::chip::chip;
use super::format::value;
use super::layout::{feature_url, page as shell};
use crate::http_error::{HttpError, HttpResult};
use crate::params::Params;
use crate::state::{model_job, AppState, Shared};

/// Longest text accepted, in characters (before tokenizing it).
pub const MAX_TEXT_CHARS: usize = 2000;
/// Most tokens read (the model's context may be smaller).
pub const MAX_TOKENS: usize = 256;
/// Features shown per token and dictionary.
pub const TOP_N: usize = 5;

pub async fn page(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Markup> {
    let params = Params(query);
    let text = params.text("text").map(str::to_string);
    let unavailable: Vec<(String, String)> = state
        .live
        .dictionaries
        .iter()
        .filter_map(|d| d.state.as_ref().err().map(|w| (d.name.clone(), w.clone())))
        .collect();
    let result = match &text {
        None => None,
        Some(t) => {
            let chars = t.chars().count();
            if chars > MAX_TEXT_CHARS {
                return Err(HttpError::bad_request(format!(
                    "parameter `text`: {chars} characters; the limit is {MAX_TEXT_CHARS}"
                )));
            }
            let t = t.clone();
            Some(model_job(&state, move |s| run(s, &t)).await?)
        }
    };
    let body = html! {
        h1 { "What fires here" }
        form method="get" action="/fires" {
            textarea name="text" maxlength=(MAX_TEXT_CHARS) placeholder="Type a text…" { (text.as_deref().unwrap_or("")) }
            p { button type="submit" { "Run" } }
        }
        @for (name, why) in &unavailable {
            p.warn { (name) " is left out: " (why) }
        }
        @if let Some((names, tokens)) = &result {
            (table(&state, names, tokens))
        }
    };
    Ok(shell("What fires here", body))
}

fn run(s: &AppState, text: &str) -> HttpResult<(Vec<String>, Vec<TokenFires>)> {
    let ready: Vec<HookedDictionary<'_>> = s
        .live
        .dictionaries
        .iter()
        .filter_map(|d| {
            d.state.as_ref().ok().map(|r| HookedDictionary {
                name: &d.name,
                hook: r.hook,
                sae: &r.sae,
            })
        })
        .collect();
    if ready.is_empty() {
        return Err(HttpError::unavailable(
            "no dictionary of this database can run on the loaded model",
        ));
    }
    let limits = FiresLimits {
        max_tokens: MAX_TOKENS,
        top_n: TOP_N,
    };
    let tokens = what_fires(&s.live.model, text, &ready, limits).map_err(|e| match e {
        InterpError::Invalid { .. } => HttpError::bad_request(e.to_string()),
        other => HttpError::unavailable(format!("cannot run the model on this text: {other}")),
    })?;
    Ok((ready.iter().map(|d| d.name.to_string()).collect(), tokens))
}

fn table(state: &AppState, names: &[String], tokens: &[TokenFires]) -> Markup {
    html! {
        table.fires {
            tr {
                th.num { "pos" } th { "token" }
                @for n in names { th { (n) } }
            }
            @for (pos, t) in tokens.iter().enumerate() {
                tr {
                    td.num { (pos) }
                    td { (chip(state, t.id)) @if t.special { " " span.muted { "(special)" } } }
                    @for (k, top) in t.top.iter().enumerate() {
                        td {
                            @for (j, (feature, v)) in top.iter().enumerate() {
                                @if j > 0 { " · " }
                                span.hit {
                                    a.fire href=(feature_url(&names[k], *feature)) data-value=(v) { (feature) }
                                    span.muted { " " (value(f64::from(*v))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
