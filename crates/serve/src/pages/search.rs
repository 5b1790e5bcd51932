//! `/d/{name}/search?token=...`: features whose logit lens or top examples involve a token,
//! with why each matched.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};

use super::chip::chip;
use super::format::{count, value};
use super::layout::{dictionary_url, feature_url, page as shell};
use crate::database::feature::{stats, FeatureStats};
use crate::database::search::{search, SearchHit, MAX_RESULTS, MAX_TOKENS};
use crate::http_error::{HttpError, HttpResult};
use crate::params::Params;
use crate::state::{blocking, Shared};

pub async fn page(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Markup> {
    let dict = state.dictionary(&name)?.clone();
    let params = Params(query);
    let needle = params.required_text("token")?.to_string();
    let tokens = state.catalog.vocabulary.matching(&needle);
    let dict_id = dict.id;
    let searched = tokens.clone();
    let hits: Vec<(SearchHit, Option<FeatureStats>)> = blocking(&state, move |s| {
        s.pool.read(|conn| {
            let hits = search(conn, dict_id, &searched)?;
            let mut out = Vec::with_capacity(hits.len());
            for h in hits {
                let st = stats(conn, dict_id, h.feature)?.map(|(st, _)| st);
                out.push((h, st));
            }
            Ok::<_, HttpError>(out)
        })
    })
    .await?;
    let body = html! {
        p.note { a href=(dictionary_url(&dict.name)) { "← " (dict.name) } }
        h1 { "Features for " code { (needle) } }
        form.inline method="get" action=(format!("{}/search", dictionary_url(&dict.name))) {
            input type="text" name="token" value=(needle);
            button type="submit" { "Search" }
        }
        @if tokens.is_empty() {
            p.warn { "No vocabulary token reads " code { (needle.trim()) } " (ignoring case and surrounding spaces)." }
        } @else {
            p.note {
                "Matching tokens: "
                @for &t in tokens.iter().take(MAX_TOKENS) { (chip(&state, t)) " " }
                @if tokens.len() > MAX_TOKENS { "(only the first " (MAX_TOKENS) " are searched)" }
            }
            p.note { (hits.len()) " features" @if hits.len() == MAX_RESULTS { " (the first " (MAX_RESULTS) ")" } }
            table.results {
                tr { th.num { "feature" } th.num { "density" } th.num { "max act" } th { "why it matched" } }
                @for (h, st) in &hits {
                    tr {
                        td.num { a href=(feature_url(&dict.name, h.feature)) { (h.feature) } }
                        td.num { @if let Some(st) = st { (value(st.density * 100.0)) " %" } }
                        td.num { @if let Some(st) = st { (value(st.max_act)) } }
                        td {
                            @for (token, n, max) in &h.examples {
                                div { (count(*n)) @if *n == 1 { " top example fires on " } @else { " top examples fire on " } (chip(&state, *token)) " (highest " (value(*max)) ")" }
                            }
                            @for (side, rank, token, logit) in &h.lens {
                                div {
                                    "the logit lens " @if *side > 0 { "promotes" } @else { "suppresses" } " "
                                    (chip(&state, *token)) " (rank " (rank + 1) ", logit " (value(*logit)) ")"
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(&format!("Search · {}", dict.name), body))
}
