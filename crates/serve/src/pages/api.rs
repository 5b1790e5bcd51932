//! JSON for scripts, load tests and tests: the dictionaries, and a feature page's data.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use crate::database::feature::FeatureData;
use crate::http_error::HttpResult;
use crate::state::Shared;

#[derive(Serialize)]
pub struct DictionarySummary {
    name: String,
    hook: String,
    architecture: String,
    d_in: u32,
    d_sae: u32,
    positions: u64,
    l0: f64,
    dead: u64,
    /// Why live pages cannot run for it, when they cannot.
    unavailable: Option<String>,
}

pub async fn dictionaries(State(state): State<Shared>) -> Json<Vec<DictionarySummary>> {
    let out = state
        .catalog
        .dictionaries
        .iter()
        .map(|d| DictionarySummary {
            name: d.name.clone(),
            hook: d.hook.clone(),
            architecture: d.architecture.clone(),
            d_in: d.d_in,
            d_sae: d.d_sae,
            positions: d.positions,
            l0: d.l0,
            dead: d.density.dead,
            unavailable: state.live.dictionary(&d.name).err(),
        })
        .collect();
    Json(out)
}

pub async fn feature(
    State(state): State<Shared>,
    Path((name, feature)): Path<(String, String)>,
) -> HttpResult<Json<FeatureData>> {
    Ok(Json(super::feature::load(&state, &name, &feature).await?))
}
