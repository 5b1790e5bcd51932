//! One optimisation step at a time: a batch in, step statistics out. The trainer owns the
//! weights, Adam's moments, the schedules and the firing statistics; `dictionary()` gives
//! the trained dictionary in its inference form.

use serde::Serialize;

use super::adam::AdamStep;
use super::arch::{Batch, Gradients, TrainArchitecture};
use super::config::{BDecInit, Optimizer, TrainConfig};
use super::dead::FiringTracker;
use super::geometric_median::geometric_median;
use super::objective::{
    forward_pre, normalize_rows, remove_parallel_component, DownstreamLoss, DownstreamTerm, Path,
    Scratch,
};
use super::optimizer::{OptimStep, ParamState};
use super::schedule::{aux_scale_at, lr_at, penalty_at};
use super::signum::{AverageWeights, SignumStep};
use super::target_l0::L0Controller;
use super::transcoder;
use crate::dictionary::{Sae, Transcoder, MATRYOSHKA_WIDTHS_KEY};
use crate::error::{Result, SaeError};
use crate::kernels::select;
use crate::kernels::vector::{dot, sum_f64, sum_rows};
use crate::weights::SaeWeights;

/// Above this fraction of nonzero features (open gates for Gated), a penalised trainer's
/// step uses dense products: at high density a GEMM does the same arithmetic many times
/// faster than gathers and scatters.
pub const DENSE_PATH_DENSITY: f64 = 0.05;

/// What one step did. Losses are in training units (after the input scale).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepStats {
    /// 0-based index of the step just taken.
    pub step: u64,
    pub lr: f32,
    /// The sparsity penalty's coefficient this step (L1, or JumpReLU's L0; 0 for TopK).
    pub sparsity_coefficient: f32,
    pub loss: f64,
    pub recon_loss: f64,
    /// AuxK, Gated's aux reconstruction, or ghost grads.
    pub aux_loss: f64,
    pub l1_loss: f64,
    /// JumpReLU's L0 penalty.
    pub l0_loss: f64,
    /// Mean squared error per element.
    pub mse: f64,
    /// Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over the batch.
    pub fvu: f64,
    /// Mean number of nonzero features per token.
    pub l0: f64,
    /// Fraction of latents silent for `dead_after_tokens` tokens.
    pub dead_fraction: f64,
    /// BatchTopK's running threshold.
    pub threshold: Option<f64>,
    pub dense_path: bool,
    /// Dead latents re-initialised after this step.
    pub resampled: usize,
    /// End-to-end training's downstream loss (e.g. the model's KL with x̂ spliced in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downstream_loss: Option<f64>,
}

/// The control set: `round(fraction · d_sae)` latents drawn by `seed` (the same on every
/// resume, since it depends on the config alone).
pub fn control_latents(d_sae: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let count = (fraction * d_sae as f64).round() as usize;
    let mut order: Vec<usize> = (0..d_sae).collect();
    let mut rng = crate::rng::SplitMix64::new(seed ^ 0xC0_47_20_15);
    // A partial Fisher–Yates: the first `count` places are a uniform draw.
    for i in 0..count.min(d_sae) {
        let j = i + rng.below((d_sae - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut control = vec![false; d_sae];
    for &j in &order[..count.min(d_sae)] {
        control[j] = true;
    }
    control
}

/// A parameter beside the shared four (JumpReLU's `threshold`, Gated's `r_mag` and `b_mag`,
/// a transcoder's `W_skip`), with its gradient and optimiser state.
pub(crate) struct ExtraParam {
    pub name: &'static str,
    pub initial: f32,
    /// `[d_sae]` for the per-latent ones; `[d_in, d_in]` for a transcoder's `W_skip`.
    pub shape: Vec<usize>,
    pub value: Vec<f32>,
    pub grad: Vec<f32>,
    pub opt: ParamState,
}

impl ExtraParam {
    fn new(optimizer: Optimizer, name: &'static str, initial: f32, shape: Vec<usize>) -> Self {
        let len = shape.iter().product();
        ExtraParam {
            name,
            initial,
            shape,
            value: vec![initial; len],
            grad: vec![0.0; len],
            opt: ParamState::new(optimizer, len),
        }
    }
}

pub struct Trainer {
    pub(super) cfg: TrainConfig,
    pub(super) weights: SaeWeights,
    /// Optimiser state of `w_enc_t`, `b_enc`, `w_dec`, `b_dec`.
    pub(super) opt: [ParamState; 4],
    /// Schedule-free averaging's weights (unused by Adam).
    pub(super) average: AverageWeights,
    pub(super) grads: SaeWeights,
    pub(super) extra: Vec<ExtraParam>,
    pub(super) step: u64,
    pub(super) input_scale: f32,
    /// A transcoder's target scale (the input scale for a sparse autoencoder).
    pub(super) output_scale: f32,
    pub(super) firing: FiringTracker,
    /// `control[j]`: latent j is in the control set (`TrainConfig::control_fraction`).
    pub(super) control: Vec<bool>,
    pub(super) threshold: Option<f64>,
    /// Steers the sparsity coefficient when the config asks for a `target_l0`.
    pub(super) l0_control: Option<L0Controller>,
    pub(super) pre: Vec<f32>,
    pub(super) scratch: Scratch,
    /// A trained dictionary's weights in its hook's units, taken over at the first batch.
    warm_start: Option<SaeWeights>,
}

impl Trainer {
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, f) = (cfg.d_in, cfg.d_sae);
        let row_norm = if cfg.unit_norm_decoder() {
            1.0
        } else {
            cfg.decoder_init_norm
        };
        let mut weights = SaeWeights::init_tied(d, f, row_norm, cfg.seed);
        let enc_scale = cfg.encoder_init_scale();
        if enc_scale != 1.0 {
            weights.w_enc_t.iter_mut().for_each(|v| *v *= enc_scale);
        }
        let o = cfg.optimizer;
        let mut extra: Vec<ExtraParam> = (cfg.architecture.rule().params(&cfg))
            .into_iter()
            .map(|p| ExtraParam::new(o, p.name, p.initial, p.shape))
            .collect();
        if cfg.skip_connection {
            extra.push(ExtraParam::new(o, SKIP, 0.0, vec![d, d]));
        }
        Ok(Trainer {
            extra,
            opt: [
                ParamState::new(o, d * f),
                ParamState::new(o, f),
                ParamState::new(o, d * f),
                ParamState::new(o, d),
            ],
            average: AverageWeights::default(),
            grads: SaeWeights::zeros(d, f),
            weights,
            step: 0,
            input_scale: 1.0,
            output_scale: 1.0,
            firing: FiringTracker::new(f, cfg.sparsity_window_steps),
            control: control_latents(f, cfg.control_fraction, cfg.seed),
            threshold: None,
            l0_control: cfg
                .target_l0
                .map(|_| L0Controller::new(cfg.sparsity_coefficient())),
            pre: Vec::new(),
            scratch: Scratch::default(),
            warm_start: None,
            cfg,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn weights(&self) -> &SaeWeights {
        &self.weights
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Tokens since each latent last fired.
    pub fn firing_tokens_since(&self) -> &[u64] {
        self.firing.tokens_since_fired()
    }

    pub fn input_scale(&self) -> f32 {
        self.input_scale
    }

    /// The full sparsity coefficient now: as configured, or as steered towards `target_l0`.
    pub fn sparsity_coefficient(&self) -> f32 {
        match &self.l0_control {
            Some(control) => control.coefficient(),
            None => self.cfg.sparsity_coefficient(),
        }
    }

    /// Continues from a trained dictionary's weights instead of a fresh start (fine-tuning):
    /// they are taken over at the first batch, converted to the training units that batch
    /// sets, and `b_dec`'s initialisation and the start at a target L0 are skipped.
    pub fn warm_start(&mut self, sae: &Sae) -> Result<()> {
        let w = &sae.weights;
        if self.step > 0 {
            return Err(SaeError::Input(
                "a warm start must come before the first step".into(),
            ));
        }
        if (w.d_in, w.d_sae) != (self.cfg.d_in, self.cfg.d_sae) {
            return Err(SaeError::Input(format!(
                "the dictionary to start from is {} × {}, the trainer {} × {}",
                w.d_in, w.d_sae, self.cfg.d_in, self.cfg.d_sae
            )));
        }
        if sae.transcoder.is_some() || self.cfg.transcoder {
            return Err(SaeError::Input(
                "a warm start takes a sparse autoencoder, not a transcoder".into(),
            ));
        }
        if sae.apply_b_dec_to_input != self.cfg.apply_b_dec_to_input() {
            return Err(SaeError::Input(format!(
                "the dictionary to start from {} b_dec from its input, the trainer's \
                 architecture {}",
                if sae.apply_b_dec_to_input {
                    "subtracts"
                } else {
                    "does not subtract"
                },
                if self.cfg.apply_b_dec_to_input() {
                    "does"
                } else {
                    "does not"
                },
            )));
        }
        self.warm_start = Some(crate::format::saelens::folded_weights(sae));
        Ok(())
    }

    /// One optimisation step on a row-major `[rows, d_in]` batch.
    pub fn step(&mut self, batch: &[f32]) -> Result<StepStats> {
        if self.cfg.transcoder {
            return Err(SaeError::Input(
                "a transcoder learns from (input, target) pairs: call step_transcoder".into(),
            ));
        }
        self.step_on(batch, None, None)
    }

    /// Whether this trainer can take end-to-end steps (`step_downstream`) with this weight
    /// of the MSE: checked before a run starts, so that a refused run leaves nothing.
    pub fn check_downstream(&self, mse_coefficient: f32) -> Result<()> {
        let supported = matches!(
            self.cfg.architecture,
            TrainArchitecture::TopK { .. }
                | TrainArchitecture::BatchTopK { .. }
                | TrainArchitecture::ReluL1 { .. }
        );
        if !supported || self.cfg.transcoder || self.cfg.ghost_grads {
            return Err(SaeError::Input(format!(
                "end-to-end training takes TopK, BatchTopK or ReLU-L1 dictionaries without \
                 ghost grads, not {:?}{}",
                self.cfg.architecture,
                if self.cfg.transcoder {
                    " transcoder"
                } else {
                    ""
                }
            )));
        }
        if !mse_coefficient.is_finite() || mse_coefficient < 0.0 {
            return Err(SaeError::Config {
                field: "mse_coefficient",
                message: format!("must be finite and ≥ 0, got {mse_coefficient}"),
            });
        }
        Ok(())
    }

    /// One optimisation step of end-to-end training: the dictionary learns from `loss`,
    /// measured downstream of its reconstruction (through the rest of a model), plus
    /// `mse_coefficient` times the plain reconstruction loss. `loss` gets x̂ in the batch's own
    /// units and returns its value and ∂L/∂x̂ in those units. TopK, BatchTopK and ReLU-L1
    /// only: the others' extra terms (JumpReLU's threshold, Gated's gate, Matryoshka's inner
    /// levels, ghost grads) are defined through the reconstruction error.
    pub fn step_downstream(
        &mut self,
        batch: &[f32],
        loss: &DownstreamLoss<'_>,
        mse_coefficient: f32,
    ) -> Result<StepStats> {
        self.check_downstream(mse_coefficient)?;
        self.step_on(batch, None, Some((loss, mse_coefficient)))
    }

    /// One optimisation step of a transcoder: `input` at its input hook, `target` at its
    /// output hook, both row-major `[rows, d_in]` over the same tokens.
    pub fn step_transcoder(&mut self, input: &[f32], target: &[f32]) -> Result<StepStats> {
        if !self.cfg.transcoder {
            return Err(SaeError::Input(
                "step_transcoder needs a config with `transcoder` set".into(),
            ));
        }
        if target.len() != input.len() {
            return Err(SaeError::Input(format!(
                "the target holds {} values, the input {}: they must cover the same tokens",
                target.len(),
                input.len()
            )));
        }
        self.step_on(input, Some(target), None)
    }

    fn step_on(
        &mut self,
        batch: &[f32],
        target: Option<&[f32]>,
        downstream: Option<(&DownstreamLoss<'_>, f32)>,
    ) -> Result<StepStats> {
        let rows = self.weights.batch_rows(batch)?;
        let (d, f_n) = (self.cfg.d_in, self.cfg.d_sae);
        if self.step == 0 {
            self.first_batch(batch, target, rows)?;
        }
        let x = scaled(batch, self.input_scale);
        let y = target.map(|t| scaled(t, self.output_scale));
        let y: &[f32] = y.as_deref().unwrap_or(&x);
        // With a skip connection the dictionary's sparse part learns what it leaves.
        let skip_index = self.extra.iter().position(|p| p.name == SKIP);
        let sparse_target: Option<Vec<f32>> =
            skip_index.map(|i| transcoder::sparse_target(y, &x, &self.extra[i].value, d));
        let sparse_target: &[f32] = sparse_target.as_deref().unwrap_or(y);

        let xc = forward_pre(
            &self.weights,
            &x,
            self.cfg.apply_b_dec_to_input(),
            &mut self.pre,
        );
        let penalty = match self.cfg.penalised() {
            true => penalty_at(&self.cfg, self.step, self.sparsity_coefficient()),
            false => 0.0,
        };
        let rule = self.cfg.architecture.rule();
        let batch_in = Batch {
            x: sparse_target,
            xc: &xc,
            rows,
            penalty,
            aux_scale: aux_scale_at(&self.cfg, self.step),
            want_error: skip_index.is_some(),
            downstream: downstream.map(|(loss, mse_coefficient)| DownstreamTerm {
                loss,
                input_scale: self.input_scale,
                mse_coefficient,
            }),
        };
        let Gradients {
            parts,
            features,
            path,
            error,
        } = rule.grads(self, &batch_in)?;
        if let (Some(i), Some(e)) = (skip_index, &error) {
            transcoder::skip_grad(e, &x, d, &mut self.extra[i].grad);
        }
        if !parts.total().is_finite() {
            return Err(SaeError::Input(format!(
                "step {}: the loss is not finite ({}); lower the learning rate or normalise the inputs",
                self.step,
                parts.total()
            )));
        }

        let unit = self.cfg.unit_norm_decoder();
        if unit {
            remove_parallel_component(&self.weights.w_dec, &mut self.grads.w_dec, d);
        }
        let lr = lr_at(&self.cfg, self.step);
        let s = OptimStep {
            adam: AdamStep {
                lr,
                beta1: self.cfg.adam_beta1,
                beta2: self.cfg.adam_beta2,
                eps: self.cfg.adam_eps,
                t: self.step + 1,
            },
            signum: SignumStep {
                lr,
                momentum: self.cfg.signum_momentum,
                average_weight: match self.cfg.optimizer {
                    Optimizer::Signum => self.average.next(lr),
                    Optimizer::Adam => 0.0,
                },
            },
        };
        let [o_enc, o_benc, o_dec, o_bdec] = &mut self.opt;
        o_enc.update(&mut self.weights.w_enc_t, &self.grads.w_enc_t, s);
        o_benc.update(&mut self.weights.b_enc, &self.grads.b_enc, s);
        o_dec.update(&mut self.weights.w_dec, &self.grads.w_dec, s);
        o_bdec.update(&mut self.weights.b_dec, &self.grads.b_dec, s);
        for extra in &mut self.extra {
            extra.opt.update(&mut extra.value, &extra.grad, s);
        }
        rule.after_update(self);
        if unit {
            normalize_rows(&mut self.weights.w_dec, d);
        }

        self.firing.record(&features);
        let steered = match self.cfg.target_l0 {
            Some(target) => rule.steer_l0(self, features.l0(), target),
            None => false,
        };
        if let (Some(control), Some(target), false) =
            (&mut self.l0_control, self.cfg.target_l0, steered)
        {
            // Not while the penalty warms up: its coefficient is not yet the one steered.
            if self.step + 1 >= self.cfg.l1_warmup_steps {
                control.observe(features.l0(), target);
            }
        }
        let every = self.cfg.resample_every_steps;
        let resampled = match every > 0 && (self.step + 1).is_multiple_of(every) {
            true => self.resample_dead(batch, &x)?,
            false => 0,
        };
        let dead_after = self.firing.dead(self.cfg.dead_after_tokens).len();
        let stats = StepStats {
            step: self.step,
            lr,
            sparsity_coefficient: penalty,
            loss: parts.total(),
            recon_loss: parts.recon,
            aux_loss: parts.aux,
            l1_loss: parts.l1,
            l0_loss: parts.l0,
            mse: parts.sse / (rows * d) as f64,
            fvu: parts.sse / total_variance(y, d).max(f64::MIN_POSITIVE),
            l0: features.l0(),
            dead_fraction: dead_after as f64 / f_n as f64,
            threshold: self.threshold,
            dense_path: path == Path::Dense,
            resampled,
            downstream_loss: downstream.map(|_| parts.downstream),
        };
        self.step += 1;
        Ok(stats)
    }

    /// Input (and a transcoder's output) scale and `b_dec` from the first batch.
    fn first_batch(&mut self, batch: &[f32], target: Option<&[f32]>, rows: usize) -> Result<()> {
        let d = self.cfg.d_in;
        if self.cfg.normalize_activations {
            self.input_scale = unit_scale(batch, rows, d, "the first batch")?;
            self.output_scale = match target {
                Some(t) => unit_scale(t, rows, d, "the first batch's target")?,
                None => self.input_scale,
            };
        } else {
            self.output_scale = self.input_scale;
        }
        if let Some(mut w) = self.warm_start.take() {
            // Unit-norm decoder rows pin the scale the dictionary was trained at (its rows
            // have norm 1/s in the hook's units); renormalising them at another scale would
            // change which latents a TopK keeps.
            if self.cfg.unit_norm_decoder() {
                let norms: Vec<f32> = w.decoder_norms().into_iter().filter(|n| *n > 0.0).collect();
                if !norms.is_empty() {
                    let mean = norms.iter().map(|&n| n as f64).sum::<f64>() / norms.len() as f64;
                    self.input_scale = (1.0 / mean) as f32;
                    self.output_scale = self.input_scale;
                }
            }
            // Hook units to training units: W_enc / s, W_dec · s, b_dec · s.
            let s = self.input_scale;
            w.w_enc_t.iter_mut().for_each(|v| *v /= s);
            w.w_dec.iter_mut().for_each(|v| *v *= s);
            w.b_dec.iter_mut().for_each(|v| *v *= s);
            self.weights = w;
            return Ok(());
        }
        // b_dec is where reconstructions start: in the target's space.
        let (out, s) = match target {
            Some(t) => (t, self.output_scale),
            None => (batch, self.input_scale),
        };
        match self.cfg.b_dec_init {
            BDecInit::Zeros => {}
            BDecInit::Mean => {
                let mut mean = sum_rows(out, d);
                let scale = s / rows as f32;
                mean.iter_mut().for_each(|v| *v *= scale);
                self.weights.b_dec = mean;
            }
            BDecInit::GeometricMedian => {
                self.weights.b_dec = geometric_median(&scaled(out, s), d, 100, 1e-5)
            }
        }
        if let Some(target) = self.cfg.target_l0 {
            let x = scaled(batch, self.input_scale);
            self.start_at_target(&x, rows, target);
        }
        Ok(())
    }

    /// Starts a penalised trainer at its target L0 rather than with half of all latents
    /// firing: one cut τ over the first batch's pre-activations keeps `target` per token (as
    /// BatchTopK's threshold does), and becomes JumpReLU's threshold or, for ReLU and Gated,
    /// a bias of −τ on every latent. Every latent starts with about the same firing rate.
    /// From a dense start the penalty needs hundreds of Adam steps to bring L0 down, since
    /// biases and thresholds move by about the lr per step whatever the coefficient.
    fn start_at_target(&mut self, x: &[f32], rows: usize, target: f64) {
        let f_n = self.cfg.d_sae;
        forward_pre(
            &self.weights,
            x,
            self.cfg.apply_b_dec_to_input(),
            &mut self.pre,
        );
        let keep = ((target * rows as f64).round() as usize).clamp(1, rows * f_n);
        let (_, cut) = select::batch_top_k(&self.pre, rows, f_n, keep);
        let tau = cut.unwrap_or(0.0).max(0.0);
        self.cfg.architecture.rule().start_at_cut(self, tau);
    }

    /// The weights to evaluate and save: the parameters, or with schedule-free sign descent
    /// their running average.
    pub fn evaluated_weights(&self) -> SaeWeights {
        let w = &self.weights;
        let beta = self.cfg.signum_momentum;
        SaeWeights {
            d_in: w.d_in,
            d_sae: w.d_sae,
            w_enc_t: self.opt[0].evaluated(&w.w_enc_t, beta),
            b_enc: self.opt[1].evaluated(&w.b_enc, beta),
            w_dec: self.opt[2].evaluated(&w.w_dec, beta),
            b_dec: self.opt[3].evaluated(&w.b_dec, beta),
        }
    }

    /// The parameter `name` beside the shared four; `Trainer::new` creates every one the
    /// architecture declares, so a missing name is a bug in an architecture's file.
    pub(crate) fn param(&self, name: &str) -> &ExtraParam {
        self.extra
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("the trainer holds no parameter `{name}`"))
    }

    pub(crate) fn param_mut(&mut self, name: &str) -> &mut ExtraParam {
        named_mut(&mut self.extra, name)
    }

    /// The parameter `name` as evaluated and saved (its average with schedule-free sign
    /// descent).
    pub(crate) fn evaluated_param(&self, name: &str) -> Vec<f32> {
        let p = self.param(name);
        p.opt.evaluated(&p.value, self.cfg.signum_momentum)
    }

    /// The trained dictionary in inference form (each architecture's `inference`): TopK
    /// stays TopK, BatchTopK becomes JumpReLU with its running threshold for every latent,
    /// ReLU-L1 is `standard`, JumpReLU and Gated stay themselves.
    pub fn dictionary(&self) -> Sae {
        let activation = self.cfg.architecture.rule().inference(self);
        let mut weights = self.evaluated_weights();
        let mut input_scale = self.input_scale;
        let transcoder = self.cfg.transcoder.then(|| {
            // Both scales folded in: W_enc·s_in reads raw inputs, W_dec and b_dec over s_out
            // write raw targets, W_skip·s_in/s_out maps raw to raw.
            let (s_in, s_out) = (self.input_scale, self.output_scale);
            weights.w_enc_t.iter_mut().for_each(|v| *v *= s_in);
            weights.w_dec.iter_mut().for_each(|v| *v /= s_out);
            weights.b_dec.iter_mut().for_each(|v| *v /= s_out);
            input_scale = 1.0;
            let skip = self.cfg.skip_connection.then(|| {
                let mut w = self.evaluated_param(SKIP);
                w.iter_mut().for_each(|v| *v *= s_in / s_out);
                w
            });
            Transcoder { skip }
        });
        let mut metadata = self.cfg.metadata.clone();
        if !self.cfg.matryoshka_widths.is_empty() {
            // The nested prefixes, so that a reader can cut the dictionary at a level.
            metadata.extra.insert(
                MATRYOSHKA_WIDTHS_KEY.into(),
                serde_json::json!(self.cfg.matryoshka_widths),
            );
        }
        Sae {
            weights,
            activation,
            apply_b_dec_to_input: self.cfg.apply_b_dec_to_input(),
            input_scale,
            metadata,
            log_density: Some(self.firing.log_density()),
            transcoder,
        }
    }
}

/// The parameter `name` of `params` (see `Trainer::param`), borrowed alone so that the
/// trainer's other fields stay free.
pub(crate) fn named_mut<'a>(params: &'a mut [ExtraParam], name: &str) -> &'a mut ExtraParam {
    params
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("the trainer holds no parameter `{name}`"))
}

/// The name of a transcoder's skip connection among the extra parameters.
const SKIP: &str = "W_skip";

/// `v · s`, or `v` itself when `s` is 1.
fn scaled(v: &[f32], s: f32) -> Vec<f32> {
    match s == 1.0 {
        true => v.to_vec(),
        false => v.iter().map(|a| a * s).collect(),
    }
}

/// The scale s with E‖s·x‖² = d over `rows` rows of `x`.
pub(crate) fn unit_scale(x: &[f32], rows: usize, d: usize, what: &str) -> Result<f32> {
    let mean_sq = sum_f64(rows, |t| {
        let r = &x[t * d..(t + 1) * d];
        dot(r, r) as f64
    }) / rows as f64;
    if mean_sq <= 0.0 {
        return Err(SaeError::Input(format!(
            "{what} is all zeros: there is no scale to normalise by"
        )));
    }
    Ok((d as f64 / mean_sq).sqrt() as f32)
}

/// Σ_t ‖x_t − μ‖² with μ the batch mean.
pub(crate) fn total_variance(x: &[f32], d: usize) -> f64 {
    let rows = x.len() / d;
    let mut mu = sum_rows(x, d);
    mu.iter_mut().for_each(|v| *v /= rows as f32);
    sum_f64(rows, |t| {
        x[t * d..(t + 1) * d]
            .iter()
            .zip(&mu)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum()
    })
}
