//! `/d/{name}/f/{feature}/ablation/{example}`: how each earlier token of a top example
//! contributes to the feature's activation there. Computed on first request (one model job
//! at a time), stored in the database, read back afterwards.

use axum::extract::{Path, State};
use maud::{html, Markup};
use saelab_interp::ablation::{ablate, AblationRequest, METHOD};

use super::chip::chip;
use super::format::value;
use super::layout::{feature_url, page as shell};
use super::tokens::ablated;
use crate::database::ablations::{self, Stored, Target};
use crate::database::feature::shown_tokens;
use crate::http_error::{HttpError, HttpResult};
use crate::params::feature_index;
use crate::state::{blocking, model_job, AppState, Shared};

/// Where the ablation shown came from.
enum Origin {
    Stored,
    ComputedAndStored,
    ComputedNotStored(String),
}

pub async fn page(
    State(state): State<Shared>,
    Path((name, feature, example)): Path<(String, String, String)>,
) -> HttpResult<Markup> {
    let dict = state.dictionary(&name)?.clone();
    let feature = feature_index(&feature, dict.d_sae)?;
    let example: i64 = example.parse().map_err(|_| {
        HttpError::bad_request(format!("`{example}` is not an example id (a whole number)"))
    })?;
    let dict_id = dict.id;
    let (target, stored) = blocking(&state, move |s| {
        s.pool.read(|conn| {
            let target = ablations::target(conn, dict_id, feature, example)?;
            Ok::<_, HttpError>((target, ablations::stored(conn, example)?))
        })
    })
    .await?;
    let target = target.ok_or_else(|| {
        HttpError::not_found(format!(
            "example {example} is not one of feature {feature}'s examples in `{name}`"
        ))
    })?;
    let (result, origin, target) = match stored {
        Some(s) => (s, Origin::Stored, target),
        None => {
            let name = name.clone();
            model_job(&state, move |s| {
                let (result, origin) = compute_and_store(s, &name, feature, example, &target)?;
                Ok((result, origin, target))
            })
            .await?
        }
    };
    let tokens = shown_tokens(&state.catalog, &target.ids, target.start, &target.acts);
    let marked = target
        .pos
        .checked_sub(target.start)
        .map(|m| m as usize)
        .filter(|&m| m < tokens.len());
    let mut strongest: Vec<(usize, f32)> = result
        .deltas
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, d)| d.is_finite() && *d != 0.0)
        .collect();
    strongest.sort_by(|a, b| a.1.abs().total_cmp(&b.1.abs()).reverse());
    strongest.truncate(10);
    let back = feature_url(&dict.name, feature);
    let body = html! {
        p.note { a href=(back) { "← " (dict.name) " · feature " (feature) } }
        h1 { "Ablation of example " (example) }
        div.stats {
            div.stat { b { (value(f64::from(result.base))) } span { "activation with nothing removed" } }
            div.stat { b { (value(f64::from(target.value))) } span { "activation recorded by the scan" } }
            div.stat { b { (result.deltas.len()) } span { "tokens ablated" } }
        }
        p.note { "Method: " (result.method) }
        p.note {
            @match &origin {
                Origin::Stored => "Read from the database.",
                Origin::ComputedAndStored => "Computed now and stored in the database.",
                Origin::ComputedNotStored(why) => { "Computed now; could not be stored: " (why) }
            }
        }
        p.legend {
            span style="background:rgba(220,38,38,0.6)" { "red" } "removing the token lowers the activation"
            span style="background:rgba(37,99,235,0.6); margin-left:16px" { "blue" } "removing it raises the activation"
        }
        div.example.ablated { (ablated(&tokens, marked, &result.deltas, result.base)) }
        h2 { "Largest effects" }
        table {
            tr { th { "position" } th { "token" } th.num { "change when removed" } }
            @for (i, d) in &strongest {
                tr {
                    td.num { (target.start as usize + i) }
                    td { @if let Some(t) = tokens.get(*i) { (chip(&state, t.id)) } }
                    td.num { (value(f64::from(*d))) }
                }
            }
            @if strongest.is_empty() { tr { td.muted colspan="3" { "no token before this position could be removed" } } }
        }
    };
    Ok(shell(&format!("Ablation · feature {feature}"), body))
}

/// Runs in a model job; rechecks the database first, since a request queued before this
/// one may have stored the same ablation.
fn compute_and_store(
    s: &AppState,
    name: &str,
    feature: u32,
    example: i64,
    target: &Target,
) -> HttpResult<(Stored, Origin)> {
    if let Some(found) = s.pool.read(|conn| ablations::stored(conn, example))? {
        return Ok((found, Origin::Stored));
    }
    let ready = s
        .live
        .dictionary(name)
        .map_err(|why| HttpError::unavailable(format!("cannot compute the ablation: {why}")))?;
    let request = AblationRequest {
        hook: ready.hook,
        ids: &target.ids,
        pos: target.pos as usize,
        feature: feature as usize,
        range: target.start as usize..target.pos as usize,
    };
    let tokenizer = &s.live.model.tokenizer;
    let result = ablate(&s.live.model.model, &ready.sae, &request, |id| {
        tokenizer.is_special(id)
    })
    .map_err(|e| HttpError::unavailable(format!("cannot compute the ablation: {e}")))?;
    let stored = Stored {
        method: METHOD.to_string(),
        base: result.base,
        deltas: result.deltas,
    };
    let origin = match s
        .pool
        .write(|conn| ablations::insert(conn, example, &stored))
    {
        Ok(()) => Origin::ComputedAndStored,
        Err(e) => Origin::ComputedNotStored(e.to_string()),
    };
    Ok((stored, origin))
}
