//! Steering: greedy generation with one feature pushed at its hook, next to the unsteered
//! continuation of the same prompt.
//!
//! The direction is the feature's decoder row in the hook's own units. A [`Sae`] keeps
//! `W_dec` in training units (inputs were multiplied by `input_scale` before encoding and
//! reconstructions divided by it), so the direction added to the activations is
//! `d = W_dec[i] / input_scale`: one unit of feature activation moves the reconstruction
//! by exactly `d`.
//!
//! A transcoder reads one hook and predicts another: its direction is added at the output
//! hook (where its prediction lands), and clamping reads the feature's current value from
//! the input hook of the same forward.

use std::cell::RefCell;
use std::time::Instant;

use candle_core::{DType, IndexOp, Tensor};
use saelab_model::generate::argmax;
use saelab_model::{Batch, HookPoint, Hooks, LoadedModel};
use saelab_sae::{Dictionary, Sae};

use crate::error::{InterpError, Result};
use crate::fires::context_ids;

/// How the feature is pushed at every position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SteerMode {
    /// `x + c·d`.
    Add { coefficient: f32 },
    /// `x + (v − f_i(x))·d`: the feature's activation moved to `v` (its other features and
    /// the reconstruction error untouched).
    Clamp { value: f32 },
}

pub struct SteerRequest<'a> {
    /// The hook the dictionary reads.
    pub hook: HookPoint,
    /// A transcoder's output hook (it must come after `hook`); `None` for an SAE.
    pub out_hook: Option<HookPoint>,
    pub sae: &'a Sae,
    pub feature: usize,
    pub mode: SteerMode,
    pub prompt: &'a str,
    /// New tokens per continuation, at most.
    pub max_new: usize,
    /// Generation stops here, whatever is left to generate.
    pub deadline: Instant,
}

/// Why a continuation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It reached the requested number of tokens.
    Length,
    /// The model produced its end-of-sequence token.
    EndOfSequence,
    /// The deadline passed first.
    Deadline,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Continuation {
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: Stop,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Steered {
    /// The prompt as the model saw it (start token first, as in the scan's windows).
    pub prompt_ids: Vec<u32>,
    pub unsteered: Continuation,
    pub steered: Continuation,
}

/// Generates both continuations a token at a time, in lockstep, so a deadline cuts both at
/// about the same length.
pub fn steer(loaded: &LoadedModel, request: &SteerRequest<'_>) -> Result<Steered> {
    let model = &loaded.model;
    let sae = request.sae;
    let width = request.hook.width(&model.cfg);
    if sae.d_in() != width {
        return Err(InterpError::invalid(
            "dictionary",
            format!(
                "reads {} values per token but hook {} has {width}",
                sae.d_in(),
                request.hook
            ),
        ));
    }
    let write_hook = match (request.out_hook, sae.transcoder.is_some()) {
        (None, false) => request.hook,
        (Some(out), true) if request.hook.precedes(out) && out.width(&model.cfg) == width => out,
        (Some(out), true) => {
            return Err(InterpError::invalid(
                "dictionary",
                format!(
                    "a transcoder from {} to {out} cannot be steered: its output hook must come \
                     after its input hook and have the same width",
                    request.hook
                ),
            ))
        }
        (None, true) => {
            return Err(InterpError::invalid(
                "dictionary",
                "a transcoder is steered at its output hook, and none was given",
            ))
        }
        (Some(_), false) => {
            return Err(InterpError::invalid(
                "dictionary",
                "only a transcoder has an output hook",
            ))
        }
    };
    if request.feature >= sae.d_sae() {
        return Err(InterpError::invalid(
            "feature",
            format!(
                "{} is outside the dictionary's {} features",
                request.feature,
                sae.d_sae()
            ),
        ));
    }
    let strength = match request.mode {
        SteerMode::Add { coefficient } => coefficient,
        SteerMode::Clamp { value } => value,
    };
    if !strength.is_finite() {
        return Err(InterpError::invalid(
            "coefficient",
            "must be a finite number",
        ));
    }
    let prompt_ids = context_ids(&loaded.tokenizer, request.prompt)?;
    let total = prompt_ids.len() + request.max_new;
    if total > model.cfg.context_length {
        return Err(InterpError::invalid(
            "prompt",
            format!(
                "{} tokens plus {} new ones exceed the model's context of {} tokens",
                prompt_ids.len(),
                request.max_new,
                model.cfg.context_length
            ),
        ));
    }
    let direction = decoder_direction(sae, request.feature);
    let direction_d = Tensor::from_slice(&direction, width, model.device())?;
    let stop_id = loaded.tokenizer.eos_id();

    let mut plain = Generation::new(&prompt_ids);
    let mut pushed = Generation::new(&prompt_ids);
    for _ in 0..request.max_new {
        if Instant::now() >= request.deadline {
            plain.finish(Stop::Deadline);
            pushed.finish(Stop::Deadline);
            break;
        }
        if plain.running() {
            plain.step(loaded, Hooks::default(), stop_id)?;
        }
        if pushed.running() {
            // A transcoder's feature is read at its input hook, earlier in the same forward.
            let input: RefCell<Option<Tensor>> = RefCell::new(None);
            let mut hooks = Hooks::default();
            if write_hook != request.hook {
                hooks = hooks.edit(request.hook, |x| {
                    *input.borrow_mut() = Some(x.clone());
                    Ok(x.clone())
                });
            }
            let hooks = hooks.edit(write_hook, |x| {
                let read = input.borrow();
                let source = read.as_ref().unwrap_or(x);
                push_feature(x, source, &direction_d, sae, request.feature, request.mode)
            });
            pushed.step(loaded, hooks, stop_id)?;
        }
        if !plain.running() && !pushed.running() {
            break;
        }
    }
    let prompt_len = prompt_ids.len();
    Ok(Steered {
        unsteered: plain.into_continuation(loaded, prompt_len)?,
        steered: pushed.into_continuation(loaded, prompt_len)?,
        prompt_ids,
    })
}

/// Feature `i`'s decoder row in the hook's units (see the module's note on `input_scale`).
pub fn decoder_direction(sae: &Sae, feature: usize) -> Vec<f32> {
    let d_in = sae.d_in();
    sae.weights.w_dec[feature * d_in..(feature + 1) * d_in]
        .iter()
        .map(|v| v / sae.input_scale)
        .collect()
}

/// The edit applied at the hook: `x [batch, seq, d_in]` plus the direction scaled per
/// position; `source` is what the dictionary encodes (`x` itself, or a transcoder's input).
fn push_feature(
    x: &Tensor,
    source: &Tensor,
    direction_d: &Tensor,
    sae: &Sae,
    feature: usize,
    mode: SteerMode,
) -> candle_core::Result<Tensor> {
    let value = match mode {
        SteerMode::Add { coefficient } => return add_scaled(x, direction_d, coefficient),
        SteerMode::Clamp { value } => value,
    };
    let x32 = x.to_dtype(DType::F32)?;
    let (batch, seq, d_in) = x32.dims3()?;
    let source_td = source
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let features = sae
        .encode(&source_td)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let shift_t: Vec<f32> = (0..batch * seq)
        .map(|t| {
            let (idx, val) = features.row(t);
            let current = idx.binary_search(&(feature as u32)).map_or(0.0, |k| val[k]);
            value - current
        })
        .collect();
    let shift = Tensor::from_vec(shift_t, (batch, seq, 1), x.device())?;
    let direction = direction_d.to_dtype(DType::F32)?.reshape((1, 1, d_in))?;
    (x32 + shift.broadcast_mul(&direction)?)?.to_dtype(x.dtype())
}

/// `x + α·d` at every position of `x [batch, seq, d_in]`, computed in f32 and returned in
/// `x`'s dtype. With α = 0 it returns `x` exactly (adding ±0 changes no value).
pub(crate) fn add_scaled(
    x: &Tensor,
    direction_d: &Tensor,
    alpha: f32,
) -> candle_core::Result<Tensor> {
    let x32 = x.to_dtype(DType::F32)?;
    let push = (direction_d.to_dtype(DType::F32)? * f64::from(alpha))?;
    x32.broadcast_add(&push)?.to_dtype(x.dtype())
}

/// Logits at the last position of `ids` under `hooks`' edits, computed as
/// `Transformer::next_token_logits` computes them (only the last position unembedded), so
/// that a forward whose edits change nothing picks exactly `generate_greedy`'s tokens.
pub(crate) fn next_logits(loaded: &LoadedModel, ids: &[u32], hooks: Hooks<'_>) -> Result<Vec<f32>> {
    let mut hooks = hooks.read(HookPoint::LnFinal);
    let out = loaded.model.forward(&Batch::single(ids), &mut hooks)?;
    let normed = out
        .get(HookPoint::LnFinal)
        .ok_or_else(|| InterpError::invalid("forward", "returned no final activations"))?;
    let last = normed.i((.., ids.len() - 1..ids.len(), ..))?.contiguous()?;
    Ok(loaded
        .model
        .unembed
        .forward(&last)?
        .flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?)
}

/// One greedy continuation in progress.
pub(crate) struct Generation {
    ids: Vec<u32>,
    stop: Option<Stop>,
}

impl Generation {
    pub(crate) fn new(prompt: &[u32]) -> Self {
        Generation {
            ids: prompt.to_vec(),
            stop: None,
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.stop.is_none()
    }

    /// One greedy token under `hooks`' edits; returns the logits it was chosen from.
    pub(crate) fn step(
        &mut self,
        loaded: &LoadedModel,
        hooks: Hooks<'_>,
        stop_id: Option<u32>,
    ) -> Result<Vec<f32>> {
        let logits = next_logits(loaded, &self.ids, hooks)?;
        self.push(argmax(&logits), stop_id);
        Ok(logits)
    }

    fn push(&mut self, id: u32, stop_id: Option<u32>) {
        self.ids.push(id);
        if Some(id) == stop_id {
            self.stop = Some(Stop::EndOfSequence);
        }
    }

    pub(crate) fn finish(&mut self, why: Stop) {
        self.stop.get_or_insert(why);
    }

    pub(crate) fn into_continuation(
        self,
        loaded: &LoadedModel,
        prompt_len: usize,
    ) -> Result<Continuation> {
        let ids = self.ids[prompt_len..].to_vec();
        Ok(Continuation {
            text: loaded.tokenizer.decode(&ids)?,
            ids,
            stop: self.stop.unwrap_or(Stop::Length),
        })
    }
}
