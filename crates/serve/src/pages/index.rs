//! `/`: the database's meta and its dictionaries.

use axum::extract::State;
use maud::{html, Markup};

use super::format::{count, value};
use super::layout::{dictionary_url, page as shell};
use crate::state::Shared;

pub async fn page(State(state): State<Shared>) -> Markup {
    let catalog = &state.catalog;
    let body = html! {
        h1 { "Feature database" }
        p.note { (state.pool.path().display()) }
        h2 { "Dictionaries" }
        table {
            tr {
                th { "name" } th { "hook" } th { "architecture" } th.num { "d_in" }
                th.num { "features" } th.num { "positions" } th.num { "L0" } th.num { "dead" } th { "live pages" }
            }
            @for d in &catalog.dictionaries {
                tr {
                    td { a href=(dictionary_url(&d.name)) { (d.name) } }
                    td { code { (d.hook) } }
                    td { (d.architecture) }
                    td.num { (d.d_in) }
                    td.num { (count(u64::from(d.d_sae))) }
                    td.num { (count(d.positions)) }
                    td.num { (value(d.l0)) }
                    td.num { (count(d.density.dead)) }
                    td {
                        @match state.live.dictionary(&d.name) {
                            Ok(_) => "ready",
                            Err(why) => span.muted { "unavailable: " (why) },
                        }
                    }
                }
            }
        }
        h2 { "Scan" }
        table {
            @for (k, v) in &catalog.meta {
                tr { th { (k) } td { code { (v) } } }
            }
            tr { th { "model loaded" } td { code { (state.live.model.name) } } }
        }
    };
    shell("Feature database", body)
}
