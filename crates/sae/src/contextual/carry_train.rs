//! Training the carry dictionary ([`super::carry`]) on whole windows, with gradients derived
//! by hand through the window (back-propagation through time over the held codes).
//!
//! Loss: L = (1/N) Σ_t ‖x̂_t − x_t‖² over the N positions of the batch, in training units
//! (inputs scaled so E‖x‖² = d_in on the first batch). With g_t = ∂L/∂x̂_t and G_tj the
//! gradient reaching code a_tj (its own ⟨w_dec_j, g_t⟩ plus λ_j ∂L/∂c_{t+1,j} where the
//! next position carries it, c_{t+1,j} = λ_j a_tj):
//!
//! ```text
//! onset that passes (a = c + p):   ∂L/∂p_tj = G_tj,  ∂L/∂c_tj = G_tj
//! onset that ends a hold (a = 0):  ∂L/∂p_tj = 0,     ∂L/∂c_tj = 0
//! no onset (a = c):                                  ∂L/∂c_tj = G_tj
//! ```
//!
//! then W_enc and b_enc from ∂L/∂p and u_t, b_dec from g_t and −W_encᵀ ∂L/∂p, W_dec from
//! a_t ⊗ g_t, λ_j from Σ_t a_tj ∂L/∂c_{t+1,j}. The carried reconstruction inside u_t is a
//! constant to the gradient; so are the selection (which k latents, as in every TopK) and
//! the floor below which a carried code is dropped. λ is kept in [0, 1] after each step.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::carry::{reconstruct, run, CarrySae, CarryTrace};
use super::state::{self, Stored};
use super::ContextStepStats;
use crate::error::{Result, SaeError};
use crate::kernels::sparse::{decode, entry_dots, ByLatent};
use crate::kernels::vector::{sum_f64, sum_rows};
use crate::train::adam::{Adam, AdamStep};
use crate::train::objective::{normalize_rows, remove_parallel_component};
use crate::train::trainer::{total_variance, unit_scale};
use crate::weights::SaeWeights;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CarryConfig {
    pub d_in: usize,
    pub d_sae: usize,
    /// Onsets per position.
    pub k: usize,
    /// λ_j at the start, for every latent.
    pub decay_init: f32,
    /// Carried codes below this (training units) are dropped.
    pub floor: f32,
    pub lr: f32,
    /// Adam's lr for λ; `None`: `lr`. λ moves at most about this much per step, so a run of
    /// a few hundred steps needs a larger one for λ to travel from its start to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decay_lr: Option<f32>,
    pub seed: u64,
    /// Scale inputs so E‖x‖² = d_in (measured on the first batch).
    pub normalize_activations: bool,
}

impl CarryConfig {
    /// λ starts at 0.02, near a plain TopK: a latent that carried much before it meant
    /// anything would be pushed off by the errors it causes downstream (on the synthetic
    /// benchmark a start at ½ left 13% of token features unlearned, 0.02 none); region
    /// latents climb to λ ≈ 1 within a few hundred steps. Codes carried below 0.01 are
    /// dropped. Adam at 2e-3.
    pub fn new(d_in: usize, d_sae: usize, k: usize) -> Self {
        CarryConfig {
            d_in,
            d_sae,
            k,
            decay_init: 0.02,
            floor: 0.01,
            lr: 2e-3,
            decay_lr: None,
            seed: 0,
            normalize_activations: true,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.d_in == 0 || self.d_sae == 0 {
            return Err(SaeError::config("d_sae", "d_in and d_sae must be positive"));
        }
        if self.k == 0 || self.k > self.d_sae {
            return Err(SaeError::config(
                "k",
                format!("= {} must be in 1..=d_sae ({})", self.k, self.d_sae),
            ));
        }
        if !(0.0..=1.0).contains(&self.decay_init) {
            return Err(SaeError::config(
                "decay_init",
                format!("= {} must be in [0, 1]", self.decay_init),
            ));
        }
        if !(self.floor.is_finite() && self.floor > 0.0) {
            return Err(SaeError::config(
                "floor",
                format!("= {} must be positive", self.floor),
            ));
        }
        for (name, lr) in [("lr", Some(self.lr)), ("decay_lr", self.decay_lr)] {
            match lr {
                Some(v) if !(v.is_finite() && v > 0.0) => {
                    return Err(SaeError::config(name, format!("= {v} must be positive")));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub struct CarryTrainer {
    cfg: CarryConfig,
    weights: SaeWeights,
    decay: Vec<f32>,
    /// Adam's state of `w_enc_t`, `b_enc`, `w_dec`, `b_dec`, `decay`.
    opt: [Adam; 5],
    step: u64,
    input_scale: f32,
    started: bool,
}

/// The loss and its gradients on one batch.
pub struct CarryGradients {
    pub loss: f64,
    pub fvu: f64,
    pub l0: f64,
    pub context_share: f64,
    pub grads: SaeWeights,
    pub decay: Vec<f32>,
}

impl CarryTrainer {
    pub fn new(cfg: CarryConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, f) = (cfg.d_in, cfg.d_sae);
        let weights = SaeWeights::init_tied(d, f, 1.0, cfg.seed);
        Ok(CarryTrainer {
            decay: vec![cfg.decay_init; f],
            opt: [
                Adam::new(f * d),
                Adam::new(f),
                Adam::new(f * d),
                Adam::new(d),
                Adam::new(f),
            ],
            weights,
            step: 0,
            input_scale: 1.0,
            started: false,
            cfg,
        })
    }

    /// A trainer at given weights in training units, input scale 1 and no first-batch
    /// set-up (for checking gradients).
    pub fn from_weights(cfg: CarryConfig, weights: SaeWeights, decay: Vec<f32>) -> Result<Self> {
        let mut t = CarryTrainer::new(cfg)?;
        super::carry::check_sizes(&weights, t.cfg.k, &decay, t.cfg.floor)?;
        t.weights = weights;
        t.decay = decay;
        t.started = true;
        Ok(t)
    }

    pub fn config(&self) -> &CarryConfig {
        &self.cfg
    }

    pub fn input_scale(&self) -> f32 {
        self.input_scale
    }

    /// The loss and gradients at the current weights on windows `x` (training units).
    pub fn gradients(&self, x: &[f32], len: usize) -> Result<CarryGradients> {
        let w = &self.weights;
        let d = w.d_in;
        let trace = run(w, self.cfg.k, &self.decay, self.cfg.floor, x, len)?;
        let recon = reconstruct(w, &trace);
        let n = trace.codes.rows;
        let sse = sum_f64(n, |t| {
            let (a, b) = (&recon[t * d..(t + 1) * d], &x[t * d..(t + 1) * d]);
            a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum()
        });
        let g: Vec<f32> = recon
            .iter()
            .zip(x)
            .map(|(r, v)| 2.0 * (r - v) / n as f32)
            .collect();
        let (grads, decay) = backward(w, &self.decay, &trace, &g)?;
        Ok(CarryGradients {
            loss: sse / n as f64,
            fvu: sse / total_variance(x, d).max(f64::MIN_POSITIVE),
            l0: trace.l0(),
            context_share: trace.context_share(&w.w_dec, d),
            grads,
            decay,
        })
    }

    /// One Adam step on windows `batch` (`[windows · len, d_in]`, the hook's units).
    pub fn step(&mut self, batch: &[f32], len: usize) -> Result<ContextStepStats> {
        let d = self.cfg.d_in;
        if batch.is_empty() || !batch.len().is_multiple_of(len.max(1) * d) {
            return Err(SaeError::Input(format!(
                "a batch of {} values is not whole windows of {len} positions × d_in {d}",
                batch.len()
            )));
        }
        if !self.started {
            self.first_batch(batch)?;
        }
        let s = self.input_scale;
        let x: Vec<f32> = batch.iter().map(|v| v * s).collect();
        let mut out = self.gradients(&x, len)?;
        remove_parallel_component(&self.weights.w_dec, &mut out.grads.w_dec, d);
        let adam = AdamStep {
            lr: self.cfg.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: self.step + 1,
        };
        let (w, g) = (&mut self.weights, &out.grads);
        self.opt[0].update(&mut w.w_enc_t, &g.w_enc_t, adam);
        self.opt[1].update(&mut w.b_enc, &g.b_enc, adam);
        self.opt[2].update(&mut w.w_dec, &g.w_dec, adam);
        self.opt[3].update(&mut w.b_dec, &g.b_dec, adam);
        let decay_adam = AdamStep {
            lr: self.cfg.decay_lr.unwrap_or(self.cfg.lr),
            ..adam
        };
        self.opt[4].update(&mut self.decay, &out.decay, decay_adam);
        normalize_rows(&mut w.w_dec, d);
        self.decay.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        let stats = ContextStepStats {
            step: self.step,
            lr: self.cfg.lr,
            loss: out.loss,
            mse: out.loss / d as f64,
            fvu: out.fvu,
            l0: out.l0,
            context_share: out.context_share,
        };
        self.step += 1;
        Ok(stats)
    }

    fn first_batch(&mut self, batch: &[f32]) -> Result<()> {
        let d = self.cfg.d_in;
        let rows = batch.len() / d;
        if self.cfg.normalize_activations {
            self.input_scale = unit_scale(batch, rows, d, "the first batch")?;
        }
        // b_dec starts at the batch mean, where reconstructions start.
        let mut mean = sum_rows(batch, d);
        let s = self.input_scale;
        mean.iter_mut().for_each(|v| *v *= s / rows as f32);
        self.weights.b_dec = mean;
        self.started = true;
        Ok(())
    }

    /// The trained dictionary in the hook's units (W_enc·s, W_dec/s, b_dec/s: the same
    /// onsets from raw inputs, reconstructions in raw units).
    pub fn dictionary(&self) -> CarrySae {
        let s = self.input_scale;
        let mut w = self.weights.clone();
        w.w_enc_t.iter_mut().for_each(|v| *v *= s);
        w.w_dec.iter_mut().for_each(|v| *v /= s);
        w.b_dec.iter_mut().for_each(|v| *v /= s);
        CarrySae {
            weights: w,
            k: self.cfg.k,
            decay: self.decay.clone(),
            floor: self.cfg.floor,
            metadata: Default::default(),
        }
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Writes the whole state into `dir` (see [`super::state`]).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let (d, f) = (self.cfg.d_in, self.cfg.d_sae);
        let w = &self.weights;
        let values: [(&str, Vec<usize>, &[f32]); 5] = [
            ("w_enc_t", vec![f, d], &w.w_enc_t),
            ("b_enc", vec![f], &w.b_enc),
            ("w_dec", vec![f, d], &w.w_dec),
            ("b_dec", vec![d], &w.b_dec),
            ("decay", vec![f], &self.decay),
        ];
        let stored: Vec<Stored> = values
            .into_iter()
            .zip(&self.opt)
            .map(|((name, shape, value), adam)| Stored {
                name,
                shape,
                value,
                adam,
            })
            .collect();
        let scalars = CarryScalars {
            config: self.cfg.clone(),
            step: self.step,
            input_scale: self.input_scale,
            started: self.started,
        };
        state::save(dir, &stored, &scalars)
    }

    /// The trainer saved in `dir`; `cfg` must be the config it was saved with.
    pub fn load_checkpoint(cfg: CarryConfig, dir: &Path) -> Result<Self> {
        let scalars: CarryScalars = state::read_scalars(dir)?;
        state::check_config(dir, &scalars.config, &cfg)?;
        let mut t = CarryTrainer::new(cfg)?;
        let (d, f) = (t.cfg.d_in, t.cfg.d_sae);
        let file = state::open(dir)?;
        let w = &mut t.weights;
        let [o0, o1, o2, o3, o4] = &mut t.opt;
        state::read_param(&file, "w_enc_t", &[f, d], &mut w.w_enc_t, o0)?;
        state::read_param(&file, "b_enc", &[f], &mut w.b_enc, o1)?;
        state::read_param(&file, "w_dec", &[f, d], &mut w.w_dec, o2)?;
        state::read_param(&file, "b_dec", &[d], &mut w.b_dec, o3)?;
        state::read_param(&file, "decay", &[f], &mut t.decay, o4)?;
        t.step = scalars.step;
        t.input_scale = scalars.input_scale;
        t.started = scalars.started;
        Ok(t)
    }
}

#[derive(Serialize, Deserialize)]
struct CarryScalars {
    config: CarryConfig,
    step: u64,
    input_scale: f32,
    started: bool,
}

/// ∂L/∂(weights) and ∂L/∂λ from g_t = ∂L/∂x̂_t (`[rows, d_in]`).
fn backward(
    w: &SaeWeights,
    decay: &[f32],
    trace: &CarryTrace,
    g: &[f32],
) -> Result<(SaeWeights, Vec<f32>)> {
    let (d, f) = (w.d_in, w.d_sae);
    let (codes, onsets) = (&trace.codes, &trace.onsets);
    let local = entry_dots(codes, g, &w.w_dec, d);
    let windows = codes.rows / trace.len;
    // Back through each window's positions, last first; windows in parallel, summed in
    // window order (the same result on any number of threads).
    let per_window: Vec<(Vec<f32>, Vec<f32>)> = (0..windows)
        .into_par_iter()
        .map(|b| window_grads(trace, &local, decay, b))
        .collect();
    let mut d_decay = vec![0.0f32; f];
    let mut d_pre = Vec::with_capacity(onsets.nnz());
    for (p, l) in &per_window {
        d_pre.extend_from_slice(p);
        d_decay.iter_mut().zip(l).for_each(|(a, b)| *a += b);
    }
    let mut grads = SaeWeights::zeros(d, f);
    let by_code = ByLatent::new(codes);
    by_code.accumulate(&codes.val, g, d, &mut grads.w_dec, false);
    let by_onset = ByLatent::new(onsets);
    by_onset.accumulate(&d_pre, &trace.inputs, d, &mut grads.w_enc_t, false);
    grads.b_enc = by_onset.sums(&d_pre);
    let mut back = vec![0.0f32; onsets.rows * d];
    decode(onsets, Some(&d_pre), &w.w_enc_t, d, None, &mut back);
    let (g_sum, back_sum) = (sum_rows(g, d), sum_rows(&back, d));
    grads.b_dec = g_sum.iter().zip(&back_sum).map(|(a, b)| a - b).collect();
    if grads.w_dec.iter().chain(&d_decay).any(|v| !v.is_finite()) {
        return Err(SaeError::Input(
            "the carry dictionary's gradient is not finite".into(),
        ));
    }
    Ok((grads, d_decay))
}

/// For window `b`: ∂L/∂p at its onset entries (entry order) and its part of ∂L/∂λ.
fn window_grads(
    trace: &CarryTrace,
    local: &[f32],
    decay: &[f32],
    b: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (codes, onsets, carried) = (&trace.codes, &trace.onsets, &trace.carried);
    let (len, f) = (trace.len, codes.d_sae);
    let first = onsets.row_ptr[b * len];
    let mut d_pre = vec![0.0f32; onsets.row_ptr[(b + 1) * len] - first];
    let mut d_decay = vec![0.0f32; f];
    // ∂L/∂c_{t+1,j}: nonzero only at the latents position t+1 starts from, all of them
    // codes of position t.
    let mut from_next = vec![0.0f32; f];
    let mut total: Vec<(u32, f32)> = Vec::new();
    for t in (0..len).rev() {
        let r = b * len + t;
        total.clear();
        let entries = codes.row_ptr[r]..codes.row_ptr[r + 1];
        for ((&j, &a), &own) in codes.idx[entries.clone()]
            .iter()
            .zip(&codes.val[entries.clone()])
            .zip(&local[entries])
        {
            let next = std::mem::take(&mut from_next[j as usize]);
            d_decay[j as usize] += next * a;
            total.push((j, own + decay[j as usize] * next));
        }
        let code_grad = |j: u32| -> f32 {
            total
                .binary_search_by_key(&j, |e| e.0)
                .map_or(0.0, |i| total[i].1)
        };
        let mut ended: Vec<u32> = Vec::new();
        for e in onsets.row_ptr[r]..onsets.row_ptr[r + 1] {
            let j = onsets.idx[e];
            match trace.passes[e] {
                true => d_pre[e - first] = code_grad(j),
                false => ended.push(j),
            }
        }
        for e in carried.row_ptr[r]..carried.row_ptr[r + 1] {
            let j = carried.idx[e];
            if !ended.contains(&j) {
                from_next[j as usize] = code_grad(j);
            }
        }
    }
    (d_pre, d_decay)
}
