//! `/steer?dict=..&feature=..&mode=add|clamp&coef=..&prompt=..&tokens=N`: unsteered and
//! steered greedy continuations side by side. Without a prompt it shows the form.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use maud::{html, Markup};
use saelab_interp::fires::start_token;
use saelab_interp::steer::{steer, Continuation, SteerMode, SteerRequest, Steered, Stop};
use saelab_interp::InterpError;
use saelab_model::TextTokenizer;

use super::layout::{feature_url, page as shell};
use crate::http_error::{HttpError, HttpResult};
use crate::params::{feature_index, Params};
use crate::state::{model_job, AppState, Shared};

pub const MAX_NEW_TOKENS: usize = 64;
pub const DEFAULT_NEW_TOKENS: usize = 24;
pub const MAX_PROMPT_CHARS: usize = 1000;
/// Generation stops here, whatever is left; the page says so.
pub const DEADLINE: Duration = Duration::from_secs(30);

struct Request {
    dict: String,
    feature: u32,
    mode: SteerMode,
    prompt: String,
    tokens: usize,
}

pub async fn page(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Markup> {
    let params = Params(query);
    let result = if params.text("prompt").is_some() {
        let request = parse(&state, &params)?;
        Some(model_job(&state, move |s| run(s, request)).await?)
    } else {
        None
    };
    let body = html! {
        h1 { "Steering" }
        (form(&state, &params))
        @if let Some((request, steered)) = &result { (outcome(&state, request, steered)) }
    };
    Ok(shell("Steering", body))
}

fn parse(state: &AppState, params: &Params) -> HttpResult<Request> {
    let dict = params.required_text("dict")?.to_string();
    let info = state.dictionary(&dict)?;
    let feature = feature_index(params.required_text("feature")?.trim(), info.d_sae)?;
    let coef = params
        .finite("coef")?
        .ok_or_else(|| HttpError::bad_request("missing parameter `coef`"))?;
    let mode = match params.text("mode").unwrap_or("add") {
        "add" => SteerMode::Add { coefficient: coef },
        "clamp" => SteerMode::Clamp { value: coef },
        other => {
            return Err(HttpError::bad_request(format!(
                "parameter `mode`: `{other}` is not add or clamp"
            )))
        }
    };
    let tokens: usize = params
        .number("tokens", "a whole number")?
        .unwrap_or(DEFAULT_NEW_TOKENS);
    if tokens == 0 || tokens > MAX_NEW_TOKENS {
        return Err(HttpError::bad_request(format!(
            "parameter `tokens`: {tokens} is outside 1..={MAX_NEW_TOKENS}"
        )));
    }
    let prompt = params.required_text("prompt")?.to_string();
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(HttpError::bad_request(format!(
            "parameter `prompt`: {chars} characters; the limit is {MAX_PROMPT_CHARS}"
        )));
    }
    Ok(Request {
        dict,
        feature,
        mode,
        prompt,
        tokens,
    })
}

fn run(s: &AppState, request: Request) -> HttpResult<(Request, Steered)> {
    let ready = s
        .live
        .dictionary(&request.dict)
        .map_err(|why| HttpError::unavailable(format!("cannot steer: {why}")))?;
    let steered = steer(
        &s.live.model,
        &SteerRequest {
            hook: ready.hook,
            out_hook: ready.out_hook,
            sae: &ready.sae,
            feature: request.feature as usize,
            mode: request.mode,
            prompt: &request.prompt,
            max_new: request.tokens,
            deadline: Instant::now() + DEADLINE,
        },
    )
    .map_err(|e| match e {
        InterpError::Invalid { .. } => HttpError::bad_request(e.to_string()),
        other => HttpError::unavailable(format!("cannot steer: {other}")),
    })?;
    Ok((request, steered))
}

fn form(state: &AppState, params: &Params) -> Markup {
    let chosen = params.text("dict").unwrap_or("");
    let mode = params.text("mode").unwrap_or("add");
    html! {
        form method="get" action="/steer" {
            div.row {
                label { "Dictionary " select name="dict" {
                    @for d in &state.catalog.dictionaries {
                        option value=(d.name) selected[d.name == chosen] { (d.name) }
                    }
                } }
                label { "Feature " input type="number" name="feature" min="0" value=(params.text("feature").unwrap_or("0")); }
                label { "Mode " select name="mode" {
                    option value="add" selected[mode == "add"] { "add c · direction" }
                    option value="clamp" selected[mode == "clamp"] { "clamp to value" }
                } }
                label { "Coefficient / value " input type="text" name="coef" size="8" value=(params.text("coef").unwrap_or("8")); }
                label { "New tokens " input type="number" name="tokens" min="1" max=(MAX_NEW_TOKENS) value=(params.text("tokens").unwrap_or("24")); }
            }
            p { textarea name="prompt" maxlength=(MAX_PROMPT_CHARS) placeholder="Prompt…" { (params.text("prompt").unwrap_or("")) } }
            p { button type="submit" { "Generate" } }
        }
        p.note {
            "add: the feature's decoder direction (in the hook's units) times the coefficient is added at every position; "
            "clamp: the feature's activation is moved to the value at every position. Greedy decoding, at most "
            (MAX_NEW_TOKENS) " new tokens, stopped after " (DEADLINE.as_secs()) " s."
        }
    }
}

fn outcome(state: &AppState, request: &Request, steered: &Steered) -> Markup {
    let (mode, amount) = match request.mode {
        SteerMode::Add { coefficient } => ("add", coefficient),
        SteerMode::Clamp { value } => ("clamp", value),
    };
    let tokenizer = &state.live.model.tokenizer;
    let start = steered
        .prompt_ids
        .first()
        .copied()
        .filter(|&first| start_token(tokenizer) == Some(first));
    html! {
        p {
            "Feature " a href=(feature_url(&request.dict, request.feature)) { (request.dict) " #" (request.feature) }
            ", " (mode) " " (amount)
            @if let Ok(ready) = state.live.dictionary(&request.dict) {
                @match ready.out_hook {
                    Some(out) => {
                        " at " code { (out) } " (a transcoder: pushed at the hook it predicts, its \
                        features read at " code { (ready.hook) } ")"
                    }
                    None => { " at " code { (ready.hook) } }
                }
            }
        }
        @if let Some(start) = start {
            p.note {
                "The model reads its start token " code { (state.catalog.vocabulary.text(start)) }
                " before the prompt, as before every window of the scan."
            }
        }
        div.side {
            div.unsteered { h3 { "Unsteered" } (continuation(tokenizer, request, steered, &steered.unsteered)) }
            div.steered { h3 { "Steered" } (continuation(tokenizer, request, steered, &steered.steered)) }
        }
    }
}

/// The prompt as typed, then the generated text decoded as a whole, one span per token.
fn continuation(
    tokenizer: &TextTokenizer,
    request: &Request,
    steered: &Steered,
    c: &Continuation,
) -> Markup {
    let pieces = token_pieces(tokenizer, &steered.prompt_ids, &c.ids);
    html! {
        span.ctx {
            span.muted { (request.prompt) }
            @for (id, piece) in c.ids.iter().zip(&pieces) {
                @if piece.is_empty() {
                    span.tok.gen data-token=(id) title=(format!("token {id}: the start of a character the next token completes")) {}
                } @else {
                    span.tok.gen data-token=(id) title=(format!("token {id}")) { (piece) }
                }
            }
        }
        p.note {
            (c.ids.len()) " new tokens; "
            @match c.stop {
                Stop::Length => "reached the requested length.",
                Stop::EndOfSequence => "the model ended the text.",
                Stop::Deadline => "stopped at the deadline.",
            }
        }
    }
}

/// Each generated token's share of the text: what the context and the tokens up to it
/// decode to, less what the tokens before it did. Decoding token by token would turn each
/// byte of a multi-byte character into U+FFFD; here a token that stops inside a character
/// gets nothing and the one that completes it carries the whole character. (The last token
/// keeps whatever it decodes to.) Should a tokenizer not decode prefix by prefix, a token
/// falls back to its own text.
fn token_pieces(tokenizer: &TextTokenizer, context: &[u32], ids: &[u32]) -> Vec<String> {
    let mut all = context.to_vec();
    let mut done = tokenizer.decode(&all).unwrap_or_default();
    let mut pieces = Vec::with_capacity(ids.len());
    for (k, &id) in ids.iter().enumerate() {
        all.push(id);
        let text = tokenizer.decode(&all).unwrap_or_default();
        let last = k + 1 == ids.len();
        match text.strip_prefix(done.as_str()) {
            Some(new) if new.ends_with('\u{FFFD}') && !last => pieces.push(String::new()),
            Some(new) => {
                pieces.push(new.to_string());
                done = text;
            }
            None => {
                pieces.push(tokenizer.decode(&[id]).unwrap_or_default());
                done = text;
            }
        }
    }
    pieces
}
