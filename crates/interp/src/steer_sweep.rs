//! A steering sweep: greedy generation with `x + α·d` at one hook, for several strengths α,
//! each with what it costs and what it does.
//!
//! For every α the same edit applies at every position of every forward, the prompt
//! included, and three things are measured:
//!
//! - the greedy continuation of the prompt (the prompt read as the scan reads a text: the
//!   corpus windows' start token first, see [`context_ids`]);
//! - the cost: the mean next-token cross-entropy of a neutral text, in nats, counted as
//!   `saelab eval` counts it (the positions whose input is a real, non-special token and
//!   that have a next token: the prediction made from the start token alone is left out);
//! - the effect, when target tokens are given: `log P(targets)` for the first generated
//!   token, where `P(targets)` sums the probabilities of the targets' distinct first token
//!   ids.
//!
//! Both measures are also reported as differences from α = 0, which is computed whether or
//! not the list holds it, by the same edited forward (`x + 0·d` is `x` exactly). So that α
//! can be read against the activations it is added to, the sweep also returns `‖d‖` and the
//! mean `‖x‖` of the hook over the neutral text's counted positions: α·‖d‖ / mean ‖x‖ is
//! the relative size of the push.
//!
//! Rows are computed independently of each other, so a continuation depends on its α only,
//! not on the list's order.

use candle_core::{DType, Tensor};
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel, TextTokenizer};

use crate::error::{InterpError, Result};
use crate::fires::{context_ids, start_token};
use crate::steer::{add_scaled, next_logits, Continuation, Generation};

pub struct SweepRequest<'a> {
    /// Where the direction is added.
    pub hook: HookPoint,
    /// `d`, in the hook's units: one value per component of the hook.
    pub direction: &'a [f32],
    /// The strengths, in the order the rows come back. Each must be finite.
    pub alphas: &'a [f32],
    pub prompt: &'a str,
    /// New tokens per continuation, at most (generation also stops after end-of-sequence).
    pub max_new: usize,
    /// The text whose cross-entropy measures what steering costs; a paragraph is enough.
    /// Only its first tokens up to the model's context are read.
    pub neutral: &'a str,
    /// Token texts (`" love"`, leading space included where the tokenizer has one) whose
    /// first tokens' probability measures the effect; empty for none.
    pub targets: &'a [String],
}

/// Where the sweep is: forwards done out of at most `total` (a continuation that ends early
/// counts its remaining forwards as done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepProgress {
    pub done: usize,
    pub total: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// The prompt as the model saw it (start token first).
    pub prompt_ids: Vec<u32>,
    /// `‖d‖`.
    pub direction_norm: f64,
    /// Mean `‖x‖` of the unedited hook over the neutral text's counted positions.
    pub activation_norm: f64,
    pub neutral: NeutralText,
    /// Present when targets were given.
    pub targets: Option<Targets>,
    /// One per α, in the request's order.
    pub rows: Vec<SweepRow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NeutralText {
    /// The tokens read: the text as the model saw it (start token first), cut at the
    /// model's context.
    pub ids: Vec<u32>,
    /// How many tokens the whole text encodes to (more than `ids` when it was cut).
    pub encoded: usize,
    /// How many next-token predictions the cross-entropy averages.
    pub predicted: usize,
    /// Its cross-entropy at α = 0, in nats.
    pub ce: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// Each target text with its first token.
    pub tokens: Vec<TargetToken>,
    /// The distinct first token ids, in the order given: `P(targets)` sums these.
    pub ids: Vec<u32>,
    /// `log P(targets)` at the first generated position, at α = 0.
    pub logprob: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    pub alpha: f32,
    pub continuation: Continuation,
    /// Mean next-token cross-entropy of the neutral text, in nats.
    pub neutral_ce: f64,
    /// `neutral_ce` minus its value at α = 0.
    pub neutral_ce_delta: f64,
    /// `log P(targets)` at the first generated position (None without targets).
    pub target_logprob: Option<f64>,
    /// `target_logprob` minus its value at α = 0.
    pub target_logprob_shift: Option<f64>,
}

/// Runs the sweep, calling `progress` after every forward.
pub fn sweep(
    loaded: &LoadedModel,
    request: &SweepRequest<'_>,
    progress: &mut dyn FnMut(SweepProgress),
) -> Result<Sweep> {
    let model = &loaded.model;
    let cfg = &model.cfg;
    let width = request.hook.width(cfg);
    check(request, width)?;
    let context = cfg.context_length;

    let prompt_ids = context_ids(&loaded.tokenizer, request.prompt)?;
    let total = prompt_ids.len().saturating_add(request.max_new);
    if total > context {
        return Err(InterpError::invalid(
            "prompt",
            format!(
                "{} tokens plus {} new ones exceed the model's context of {context} tokens",
                prompt_ids.len(),
                request.max_new
            ),
        ));
    }
    let mut neutral_ids = context_ids(&loaded.tokenizer, request.neutral)?;
    let neutral_encoded = neutral_ids.len();
    neutral_ids.truncate(context);
    let counted = counted_positions(&loaded.tokenizer, &neutral_ids);
    if counted.is_empty() {
        return Err(InterpError::invalid(
            "neutral",
            "the text must encode to at least two tokens that are not special",
        ));
    }
    let target_tokens = target_tokens(&loaded.tokenizer, request.targets)?;
    let target_ids = distinct_ids(&target_tokens);
    let direction = Tensor::from_slice(request.direction, width, model.device())?;
    let edit = Edit {
        hook: request.hook,
        direction: &direction,
    };

    // Forwards: the α = 0 baseline (neutral text, and the prompt when there are targets),
    // then per α the neutral text and up to max(1, max_new) generation steps.
    let steps = request.max_new.max(1);
    let mut meter = Meter {
        done: 0,
        total: 1 + usize::from(!target_ids.is_empty()) + request.alphas.len() * (1 + steps),
        progress,
    };
    let base = edit.neutral(loaded, 0.0, &neutral_ids, &counted, Capture::Norms)?;
    meter.tick(1);
    let base_logprob = match target_ids.is_empty() {
        true => None,
        false => {
            let logits = next_logits(loaded, &prompt_ids, edit.hooks(0.0))?;
            meter.tick(1);
            Some(log_prob_of(&logits, &target_ids))
        }
    };

    let stop_id = loaded.tokenizer.eos_id();
    let mut rows = Vec::with_capacity(request.alphas.len());
    for &alpha in request.alphas {
        let neutral = edit.neutral(loaded, alpha, &neutral_ids, &counted, Capture::Nothing)?;
        meter.tick(1);
        let mut generation = Generation::new(&prompt_ids);
        let mut first_logits = None;
        let mut forwards = 0;
        while forwards < steps && generation.running() {
            let logits = if forwards < request.max_new {
                generation.step(loaded, edit.hooks(alpha), stop_id)?
            } else {
                // Nothing to generate: one forward for the first position's distribution.
                next_logits(loaded, &prompt_ids, edit.hooks(alpha))?
            };
            first_logits.get_or_insert(logits);
            forwards += 1;
            meter.tick(1);
        }
        meter.tick(steps - forwards);
        let target_logprob = base_logprob.map(|_| {
            let logits = first_logits.as_deref().unwrap_or_default();
            log_prob_of(logits, &target_ids)
        });
        rows.push(SweepRow {
            alpha,
            continuation: generation.into_continuation(loaded, prompt_ids.len())?,
            neutral_ce: neutral.ce,
            neutral_ce_delta: neutral.ce - base.ce,
            target_logprob,
            target_logprob_shift: target_logprob.zip(base_logprob).map(|(lp, b)| lp - b),
        });
    }
    Ok(Sweep {
        prompt_ids,
        direction_norm: norm(request.direction),
        activation_norm: base.mean_norm,
        neutral: NeutralText {
            encoded: neutral_encoded,
            predicted: counted.len(),
            ids: neutral_ids,
            ce: base.ce,
        },
        targets: base_logprob.map(|logprob| Targets {
            tokens: target_tokens,
            ids: target_ids,
            logprob,
        }),
        rows,
    })
}

fn check(request: &SweepRequest<'_>, width: usize) -> Result<()> {
    if request.alphas.is_empty() {
        return Err(InterpError::invalid("alpha", "give at least one strength"));
    }
    if let Some(a) = request.alphas.iter().find(|a| !a.is_finite()) {
        return Err(InterpError::invalid(
            "alpha",
            format!("{a} is not a finite number"),
        ));
    }
    if request.direction.len() != width {
        return Err(InterpError::invalid(
            "direction",
            format!(
                "has {} values but hook {} has {width}",
                request.direction.len(),
                request.hook
            ),
        ));
    }
    if let Some(i) = request.direction.iter().position(|v| !v.is_finite()) {
        return Err(InterpError::invalid(
            "direction",
            format!("value {i} is {}, not a finite number", request.direction[i]),
        ));
    }
    Ok(())
}

/// One target text and the token that stands for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetToken {
    pub text: String,
    /// Its first token id (read without the start token).
    pub id: u32,
    /// How many tokens the text encodes to (only the first counts).
    pub tokens: usize,
}

/// Each text's first token; a text that encodes to no token is refused.
pub fn target_tokens(tokenizer: &TextTokenizer, texts: &[String]) -> Result<Vec<TargetToken>> {
    let skip = usize::from(start_token(tokenizer).is_some());
    texts
        .iter()
        .map(|text| {
            let encoded = context_ids(tokenizer, text)?;
            match encoded.get(skip) {
                Some(&id) => Ok(TargetToken {
                    text: text.clone(),
                    id,
                    tokens: encoded.len() - skip,
                }),
                None => Err(InterpError::invalid(
                    "targets",
                    format!("{text:?} encodes to no tokens"),
                )),
            }
        })
        .collect()
}

/// The distinct ids of `tokens`, in order.
fn distinct_ids(tokens: &[TargetToken]) -> Vec<u32> {
    let mut ids = Vec::new();
    for t in tokens {
        if !ids.contains(&t.id) {
            ids.push(t.id);
        }
    }
    ids
}

/// Positions whose next-token prediction counts: the input is a real token, not the start
/// token nor another special one, and a next token exists (as `saelab eval` counts CE).
fn counted_positions(tokenizer: &TextTokenizer, ids: &[u32]) -> Vec<usize> {
    let skip = usize::from(start_token(tokenizer).is_some());
    (skip..ids.len().saturating_sub(1))
        .filter(|&t| !tokenizer.is_special(ids[t]))
        .collect()
}

/// `ln Σ_{v ∈ ids} softmax(logits)_v`, in f64 with both sums shifted by the row's maximum.
fn log_prob_of(logits: &[f32], ids: &[u32]) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum = |values: &mut dyn Iterator<Item = f32>| -> f64 {
        values.map(|l| (l as f64 - m).exp()).sum::<f64>().ln()
    };
    let chosen = sum(&mut ids.iter().map(|&i| logits[i as usize]));
    chosen - sum(&mut logits.iter().copied())
}

fn norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

struct Meter<'p> {
    done: usize,
    total: usize,
    progress: &'p mut dyn FnMut(SweepProgress),
}

impl Meter<'_> {
    fn tick(&mut self, n: usize) {
        if n > 0 {
            self.done += n;
            (self.progress)(SweepProgress {
                done: self.done,
                total: self.total,
            });
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Capture {
    Norms,
    Nothing,
}

struct NeutralMeasure {
    ce: f64,
    /// Mean `‖x‖` over the counted positions (0 unless `Capture::Norms`).
    mean_norm: f64,
}

/// `x + α·d` at one hook.
struct Edit<'a> {
    hook: HookPoint,
    direction: &'a Tensor,
}

impl<'a> Edit<'a> {
    fn hooks(&self, alpha: f32) -> Hooks<'a> {
        let direction = self.direction;
        Hooks::default().edit(self.hook, move |x| add_scaled(x, direction, alpha))
    }

    /// The neutral text's mean CE over `counted` under the edit, and with `Capture::Norms`
    /// the mean norm of the hook's value there (the value after the edit: at α = 0, `x`).
    fn neutral(
        &self,
        loaded: &LoadedModel,
        alpha: f32,
        ids: &[u32],
        counted: &[usize],
        capture: Capture,
    ) -> Result<NeutralMeasure> {
        let mut hooks = self.hooks(alpha).with_logits();
        if capture == Capture::Norms {
            hooks = hooks.read(self.hook);
        }
        let out = loaded.model.forward(&Batch::single(ids), &mut hooks)?;
        let logits = out
            .logits
            .as_ref()
            .ok_or_else(|| InterpError::invalid("forward", "returned no logits"))?;
        let vocab = logits.dim(2)?;
        let logits_tv = logits
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let ce: f64 = counted
            .iter()
            .map(|&t| {
                let row = &logits_tv[t * vocab..(t + 1) * vocab];
                let target = row[ids[t + 1] as usize] as f64;
                log_sum_exp(row) - target
            })
            .sum::<f64>()
            / counted.len() as f64;
        let mean_norm = match out.get(self.hook) {
            Some(x) if capture == Capture::Norms => {
                let width = x.dim(2)?;
                let x_td = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                counted
                    .iter()
                    .map(|&t| norm(&x_td[t * width..(t + 1) * width]))
                    .sum::<f64>()
                    / counted.len() as f64
            }
            _ => 0.0,
        };
        Ok(NeutralMeasure { ce, mean_norm })
    }
}

/// `ln Σ exp(row)` in f64, shifted by the row's maximum.
fn log_sum_exp(row: &[f32]) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    m + row.iter().map(|&l| (l as f64 - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_probability_sums_the_ids() {
        let logits = [0.0f32, 1.0, 2.0, 3.0];
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        let p = (1f64.exp() + 3f64.exp()) / z;
        assert!((log_prob_of(&logits, &[1, 3]) - p.ln()).abs() < 1e-12);
        assert!((log_sum_exp(&logits) - z.ln()).abs() < 1e-12);
    }
}
