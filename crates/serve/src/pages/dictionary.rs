//! `/d/{name}`: a dictionary's overview (density histogram, statistics, token search, jump
//! to a feature) and its feature table, sorted and paginated server-side.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use maud::{html, Markup};

use super::chip::chip;
use super::format::{count, persistence, value};
use super::layout::{dictionary_url, feature_url, page as shell};
use super::plots::{bars, log_ticks, Bars};
use crate::database::catalog::{DensityHistogram, DictionaryInfo, DENSITY_BIN_WIDTH};
use crate::database::listing::{self, FeatureRow, Listing, SortKey};
use crate::http_error::{HttpError, HttpResult};
use crate::params::{feature_index, Params};
use crate::state::{blocking, AppState, Shared};

pub const PER_PAGE: u64 = 100;

pub async fn page(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Markup> {
    let params = Params(query);
    let sort = match params.text("sort") {
        None => SortKey::Density,
        Some(s) => SortKey::parse(s).ok_or_else(|| {
            HttpError::bad_request(format!(
                "parameter `sort`: `{s}` is not one of density, max, mean, persistence, index"
            ))
        })?,
    };
    let descending = match params.text("order") {
        None => sort != SortKey::Index,
        Some("desc") => true,
        Some("asc") => false,
        Some(o) => {
            return Err(HttpError::bad_request(format!(
                "parameter `order`: `{o}` is not asc or desc"
            )))
        }
    };
    let page_number: u64 = params.number("page", "a page number")?.unwrap_or(1);
    if page_number == 0 {
        return Err(HttpError::bad_request("parameter `page`: pages start at 1"));
    }
    let listing = Listing {
        sort,
        descending,
        page: page_number - 1,
        per_page: PER_PAGE,
    };
    let dict = state.dictionary(&name)?.clone();
    let id = dict.id;
    let (total, rows) = blocking(&state, move |s| {
        s.pool.read(|conn| {
            Ok::<_, HttpError>((listing::count(conn, id)?, listing::page(conn, id, listing)?))
        })
    })
    .await?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    if page_number > pages {
        return Err(HttpError::not_found(format!(
            "page {page_number} is past the last page ({pages})"
        )));
    }
    let body = html! {
        h1 { (dict.name) }
        (overview(&dict, &state.live.dictionary(&dict.name).err()))
        h2 { "Find features" }
        form.inline method="get" action=(format!("{}/search", dictionary_url(&dict.name))) {
            label for="token" { "Token" }
            input #token type="text" name="token" placeholder="e.g. Paris";
            button type="submit" { "Search" }
            span.muted { "features whose logit lens or top examples involve the token" }
        }
        form.inline method="get" action=(format!("{}/jump", dictionary_url(&dict.name))) {
            label for="feature" { "Feature" }
            input #feature type="number" name="feature" min="0" max=(dict.d_sae.saturating_sub(1));
            button type="submit" { "Open" }
        }
        h2 { "Features" }
        (pager(&dict.name, listing, pages))
        table.features {
            tr {
                @for key in SortKey::ALL {
                    th.num { a href=(sort_url(&dict.name, key, listing)) { (column_title(key)) (arrow(key, listing)) } }
                }
                th.num { "count" }
                th { "lens: promotes" }
            }
            @for row in &rows {
                (feature_row(&state, &dict.name, row))
            }
        }
        (pager(&dict.name, listing, pages))
    };
    Ok(shell(&dict.name, body))
}

fn overview(dict: &DictionaryInfo, unavailable: &Option<String>) -> Markup {
    html! {
        div.stats {
            div.stat { b { code { (dict.hook) } } span { "hook" } }
            div.stat { b { (dict.architecture) } span { "architecture" } }
            div.stat { b { (count(u64::from(dict.d_sae))) } span { "features" } }
            div.stat { b { (dict.d_in) } span { "d_in" } }
            div.stat { b { (value(dict.l0)) } span { "L0 (mean active features)" } }
            div.stat { b { (count(dict.positions)) } span { "positions scanned" } }
            div.stat { b { (count(dict.density.dead)) } span { "dead (never fired)" } }
        }
        @if let Some(why) = unavailable {
            p.warn { "Live pages (ablation, what fires here, steering) are unavailable for this dictionary: " (why) }
        }
        p.note { "Logit lens: " (dict.lens) }
        h2 { "Feature density" }
        (density_plot(&dict.density))
        p.note {
            "Features per 0.25-wide bin of log10 density (the fraction of scanned positions where the feature fires); "
            (count(dict.density.dead)) " dead features are not in the plot."
        }
    }
}

pub fn density_plot(h: &DensityHistogram) -> Markup {
    let edge = |i: usize| h.first_edge + i as f64 * DENSITY_BIN_WIDTH;
    let titles = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "log10 density {:.2} to {:.2}: {c} features",
                edge(i),
                edge(i + 1)
            )
        })
        .collect();
    let edges: Vec<f64> = (0..=h.counts.len()).map(edge).collect();
    let ticks = log_ticks(&edges);
    bars(&Bars {
        counts: &h.counts,
        titles,
        ticks,
        x_label: "density (log scale)",
        class: "density",
    })
}

fn feature_row(state: &AppState, name: &str, row: &FeatureRow) -> Markup {
    html! {
        tr {
            td.num { a href=(feature_url(name, row.feature)) { (row.feature) } }
            td.num { @if row.density > 0.0 { (value(row.density * 100.0)) " %" } @else { span.muted { "dead" } } }
            td.num { (value(row.mean_act)) }
            td.num { (value(row.max_act)) }
            td.num { (persistence(row.p_stay)) }
            td.num { (count(row.count)) }
            td { @for &t in &row.promoted { (chip(state, t)) " " } }
        }
    }
}

fn column_title(key: SortKey) -> &'static str {
    match key {
        SortKey::Index => "feature",
        SortKey::Density => "density",
        SortKey::MeanAct => "mean act",
        SortKey::MaxAct => "max act",
        SortKey::Persistence => "P(stay)",
    }
}

fn arrow(key: SortKey, listing: Listing) -> &'static str {
    match (key == listing.sort, listing.descending) {
        (false, _) => "",
        (true, true) => " ▼",
        (true, false) => " ▲",
    }
}

/// Clicking the sorted column flips its order; another column sorts descending (index
/// ascending).
fn sort_url(name: &str, key: SortKey, listing: Listing) -> String {
    let descending = if key == listing.sort {
        !listing.descending
    } else {
        key != SortKey::Index
    };
    let order = if descending { "desc" } else { "asc" };
    format!("{}?sort={}&order={order}", dictionary_url(name), key.name())
}

fn page_url(name: &str, listing: Listing, page: u64) -> String {
    let order = if listing.descending { "desc" } else { "asc" };
    format!(
        "{}?sort={}&order={order}&page={page}",
        dictionary_url(name),
        listing.sort.name()
    )
}

fn pager(name: &str, listing: Listing, pages: u64) -> Markup {
    let page = listing.page + 1;
    html! {
        div.pager {
            @if page > 1 { a href=(page_url(name, listing, page - 1)) { "← previous" } }
            span { "page " (page) " of " (pages) }
            @if page < pages { a href=(page_url(name, listing, page + 1)) { "next →" } }
        }
    }
}

/// `/d/{name}/jump?feature=N`: to the feature's page.
pub async fn jump(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Redirect> {
    let dict = state.dictionary(&name)?;
    let params = Params(query);
    let feature = params.required_text("feature")?;
    let feature = feature_index(feature.trim(), dict.d_sae)?;
    Ok(Redirect::to(&feature_url(&dict.name, feature)))
}
