//! Training the temporal SAE (arXiv 2511.01836) on whole windows, with the forward SAELens
//! runs ([`TemporalSae::forward`], batched over windows) and autograd for every parameter,
//! the attention layers included.
//!
//! **Loss**, as in the authors' published training script (`train_temporal_saes.py` of
//! github.com/eslubana/temporalSAEs): the squared error summed over `d_in` and averaged over
//! positions, `Σ_t ‖x_t − x̂_t‖² / positions`; with ReLU novel codes (no TopK) plus
//! `novel_norm_coefficient` (their `gamma_reg`, 10 in their configs) times the mean over
//! positions of the L2 norm ‖z_novel,t‖₂ (not an L1 penalty). TopK adds nothing. Their
//! script also clips gradients, decays weights and warms the learning rate up; this one is
//! plain Adam at a constant rate.
//!
//! **Units**: the first batch fixes an input scale s with E‖x·s‖² = d_in (their scaling
//! factor aims at the same ‖x‖ ≈ √d_in), losses are in those units, and
//! [`TemporalTrainer::dictionary`] stores s as SAELens's `constant_scalar_rescale`, so the
//! saved SAE takes raw activations.
//!
//! **Gradients** are those of PyTorch's autograd on SAELens's `TemporalSAE` (checked in
//! `tests/temporal_train.rs` against `reference/temporal_gradients.py`): ReLU's derivative
//! is 0 at 0, a zero vector's norm has gradient 0, TopK's mask is a constant (the gradient
//! flows through the values kept), and the causal softmax is shifted by its detached maximum.

use candle_core::{DType, Device, Tensor, Var, D};

use super::state::{self, Stored};
use super::ContextStepStats;
use crate::error::{Result, SaeError};
use crate::format::saelens_temporal::{temporal_metadata, TemporalAttention, TemporalSae};
use crate::rng::SplitMix64;
use crate::train::adam::{Adam, AdamStep};
use crate::weights::transpose;

/// A temporal SAE to train: SAELens's architecture fields, then the optimiser's.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemporalConfig {
    pub d_in: usize,
    pub d_sae: usize,
    pub n_heads: usize,
    pub n_attn_layers: usize,
    /// Queries and keys are `d_sae / bottleneck_factor` wide.
    pub bottleneck_factor: usize,
    /// TopK's k for the novel codes; `None`: ReLU (with the norm penalty).
    pub k: Option<usize>,
    /// W_enc = W_decᵀ.
    pub tied: bool,
    pub apply_b_dec_to_input: bool,
    /// Weight of the mean ‖z_novel‖₂ in the loss, ReLU only (the authors' `gamma_reg`).
    pub novel_norm_coefficient: f32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Scale inputs so that E‖x‖² = d_in on the first batch (otherwise s = 1).
    pub normalize_activations: bool,
    pub seed: u64,
}

impl TemporalConfig {
    /// The authors' published settings where they fit any width (4 heads, one layer, no
    /// bottleneck, tied weights, b_dec subtracted from the input, lr 1e-3, gamma_reg 10)
    /// and PyTorch's Adam defaults.
    pub fn new(d_in: usize, d_sae: usize, k: Option<usize>) -> Self {
        TemporalConfig {
            d_in,
            d_sae,
            n_heads: 4,
            n_attn_layers: 1,
            bottleneck_factor: 1,
            k,
            tied: true,
            apply_b_dec_to_input: true,
            novel_norm_coefficient: 10.0,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            normalize_activations: true,
            seed: 0,
        }
    }

    /// The architecture of `sae`, with [`TemporalConfig::new`]'s optimiser settings.
    pub fn for_sae(sae: &TemporalSae) -> Self {
        TemporalConfig {
            n_heads: sae.n_heads,
            n_attn_layers: sae.layers.len(),
            bottleneck_factor: sae.bottleneck_factor(),
            tied: sae.tied,
            apply_b_dec_to_input: sae.apply_b_dec_to_input,
            ..TemporalConfig::new(sae.d_in, sae.d_sae, sae.k)
        }
    }

    /// Query and key width.
    pub fn n_embds(&self) -> usize {
        self.d_sae / self.bottleneck_factor.max(1)
    }

    /// Refuses settings the architecture or the optimiser cannot run, naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("d_in", self.d_in),
            ("d_sae", self.d_sae),
            ("n_heads", self.n_heads),
            ("n_attn_layers", self.n_attn_layers),
            ("bottleneck_factor", self.bottleneck_factor),
        ] {
            if v == 0 {
                return Err(SaeError::config(field, "must be positive"));
            }
        }
        if !self
            .d_sae
            .is_multiple_of(self.bottleneck_factor * self.n_heads)
        {
            return Err(SaeError::config(
                "bottleneck_factor",
                format!(
                    "× n_heads = {} must divide d_sae = {} (each head gets a whole share of the \
                     query width d_sae / bottleneck_factor)",
                    self.bottleneck_factor * self.n_heads,
                    self.d_sae
                ),
            ));
        }
        if let Some(k) = self.k {
            if k == 0 || k > self.d_sae {
                return Err(SaeError::config(
                    "k",
                    format!("= {k} must be in 1..=d_sae = {}", self.d_sae),
                ));
            }
        }
        let positive = |field: &'static str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(SaeError::config(
                    field,
                    format!("= {v} must be a positive number"),
                ))
            }
        };
        positive("lr", self.lr)?;
        positive("eps", self.eps)?;
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(SaeError::config(field, format!("= {b} must be in [0, 1)")));
            }
        }
        let c = self.novel_norm_coefficient;
        if !(c.is_finite() && c >= 0.0) {
            return Err(SaeError::config(
                "novel_norm_coefficient",
                format!("= {c} must be a non-negative number"),
            ));
        }
        Ok(())
    }
}

/// One parameter: SAELens's name and shape, its values and its Adam moments (plain vectors,
/// so a checkpoint can store them as they are).
#[derive(Clone, Debug)]
struct Param {
    name: String,
    shape: Vec<usize>,
    value: Vec<f32>,
    adam: Adam,
}

impl Param {
    fn new(name: String, shape: Vec<usize>, value: Vec<f32>) -> Self {
        let adam = Adam::new(value.len());
        Param {
            name,
            shape,
            value,
            adam,
        }
    }
}

/// The loss of one batch and its gradient for every parameter, by SAELens's names.
#[derive(Clone, Debug)]
pub struct TemporalGradients {
    pub loss: f64,
    /// `(name, gradient)` in the order W_dec, b_dec, W_enc (untied), then each attention
    /// layer's k_ctx, q_target, v_ctx, c_proj weight and bias.
    pub grads: Vec<(String, Vec<f32>)>,
}

pub struct TemporalTrainer {
    cfg: TemporalConfig,
    params: Vec<Param>,
    /// Raw activations to training units; `None` until the first batch fixes it.
    input_scale: Option<f32>,
    step: u64,
}

/// The values a forward pass leaves for the statistics and the backward pass.
struct Pass {
    loss: Tensor,
    reconstruction: Tensor,
    z_novel: Tensor,
    z_pred: Tensor,
}

const CPU: Device = Device::Cpu;

fn graph_error(e: candle_core::Error) -> SaeError {
    SaeError::Input(format!("the temporal SAE's tensor graph failed: {e}"))
}

impl TemporalTrainer {
    /// A fresh SAE initialised as SAELens's `TemporalSAE.__init__` does: W_dec (and W_enc)
    /// N(0, 1), b_dec 0; each attention projection as `nn.Linear` (weights and biases
    /// uniform in ±1/√d_sae), then its weight rows rescaled to norm 1/√(head width) for
    /// queries, keys and values and 1/√d_sae for the output.
    pub fn new(cfg: TemporalConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, f, h, e) = (cfg.d_in, cfg.d_sae, cfg.n_heads, cfg.n_embds());
        let mut rng = SplitMix64::new(cfg.seed);
        let mut params = Vec::new();
        let mut normal = |n: usize| (0..n).map(|_| rng.normal()).collect::<Vec<f32>>();
        params.push(Param::new("W_dec".into(), vec![f, d], normal(f * d)));
        params.push(Param::new("b_dec".into(), vec![d], vec![0.0; d]));
        if !cfg.tied {
            params.push(Param::new("W_enc".into(), vec![d, f], normal(d * f)));
        }
        let bound = 1.0 / (f as f32).sqrt();
        for i in 0..cfg.n_attn_layers {
            for (proj, out, row_norm) in [
                ("k_ctx", e, (e / h) as f32),
                ("q_target", e, (e / h) as f32),
                ("v_ctx", f, (f / h) as f32),
                ("c_proj", f, f as f32),
            ] {
                let mut w: Vec<f32> = (0..out * f).map(|_| rng.uniform(-bound, bound)).collect();
                let b: Vec<f32> = (0..out).map(|_| rng.uniform(-bound, bound)).collect();
                let target = 1.0 / row_norm.sqrt();
                for row in w.chunks_mut(f) {
                    let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                    row.iter_mut().for_each(|v| *v *= target / (1e-6 + n));
                }
                let name = format!("attn_layers.{i}.{proj}");
                params.push(Param::new(format!("{name}.weight"), vec![out, f], w));
                params.push(Param::new(format!("{name}.bias"), vec![out], b));
            }
        }
        Ok(TemporalTrainer {
            cfg,
            params,
            input_scale: None,
            step: 0,
        })
    }

    /// Continues training `sae`: its parameters, its scale kept as the input scale (no new
    /// scale from the first batch), `cfg`'s optimiser settings. `cfg`'s architecture fields
    /// must describe `sae` ([`TemporalConfig::for_sae`] makes such a config).
    pub fn from_sae(sae: &TemporalSae, cfg: TemporalConfig) -> Result<Self> {
        cfg.validate()?;
        sae.check()?;
        let wanted = TemporalConfig::for_sae(sae);
        let mismatch = |field: &'static str, ours: String, theirs: String| {
            Err(SaeError::config(
                field,
                format!("= {ours} but the SAE has {theirs}"),
            ))
        };
        macro_rules! same {
            ($field:ident) => {
                if cfg.$field != wanted.$field {
                    return mismatch(
                        stringify!($field),
                        format!("{:?}", cfg.$field),
                        format!("{:?}", wanted.$field),
                    );
                }
            };
        }
        same!(d_in);
        same!(d_sae);
        same!(n_heads);
        same!(n_attn_layers);
        same!(bottleneck_factor);
        same!(k);
        same!(tied);
        same!(apply_b_dec_to_input);
        let (d, f, e) = (sae.d_in, sae.d_sae, sae.n_embds);
        let mut params = vec![
            Param::new("W_dec".into(), vec![f, d], sae.w_dec.clone()),
            Param::new("b_dec".into(), vec![d], sae.b_dec.clone()),
        ];
        if !sae.tied {
            params.push(Param::new("W_enc".into(), vec![d, f], sae.w_enc.clone()));
        }
        for (i, l) in sae.layers.iter().enumerate() {
            for (proj, out, w, b) in [
                ("k_ctx", e, &l.k_w, &l.k_b),
                ("q_target", e, &l.q_w, &l.q_b),
                ("v_ctx", f, &l.v_w, &l.v_b),
                ("c_proj", f, &l.o_w, &l.o_b),
            ] {
                let name = format!("attn_layers.{i}.{proj}");
                params.push(Param::new(
                    format!("{name}.weight"),
                    vec![out, f],
                    w.clone(),
                ));
                params.push(Param::new(format!("{name}.bias"), vec![out], b.clone()));
            }
        }
        Ok(TemporalTrainer {
            cfg,
            params,
            input_scale: Some(sae.scale),
            step: 0,
        })
    }

    /// Writes the whole state into `dir` (see [`super::state`]).
    pub fn save_checkpoint(&self, dir: &std::path::Path) -> Result<()> {
        let stored: Vec<Stored> = self
            .params
            .iter()
            .map(|p| Stored {
                name: &p.name,
                shape: p.shape.clone(),
                value: &p.value,
                adam: &p.adam,
            })
            .collect();
        let scalars = TemporalScalars {
            config: self.cfg.clone(),
            step: self.step,
            input_scale: self.input_scale,
        };
        state::save(dir, &stored, &scalars)
    }

    /// The trainer saved in `dir`; `cfg` must be the config it was saved with.
    pub fn load_checkpoint(cfg: TemporalConfig, dir: &std::path::Path) -> Result<Self> {
        let scalars: TemporalScalars = state::read_scalars(dir)?;
        state::check_config(dir, &scalars.config, &cfg)?;
        let mut t = TemporalTrainer::new(cfg)?;
        let file = state::open(dir)?;
        for p in &mut t.params {
            state::read_param(&file, &p.name, &p.shape, &mut p.value, &mut p.adam)?;
        }
        t.step = scalars.step;
        t.input_scale = scalars.input_scale;
        Ok(t)
    }

    pub fn config(&self) -> &TemporalConfig {
        &self.cfg
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Raw activations to training units (1 until the first batch when normalising).
    pub fn input_scale(&self) -> f32 {
        self.input_scale.unwrap_or(1.0)
    }

    /// One Adam step on a batch of whole windows, row-major `[windows · len, d_in]`,
    /// positions in order. The statistics are of the batch before the step.
    pub fn step(&mut self, windows: &[f32], len: usize) -> Result<ContextStepStats> {
        let n_windows = self.check_windows(windows, len)?;
        if self.input_scale.is_none() {
            self.input_scale = Some(match self.cfg.normalize_activations {
                true => unit_scale(windows, self.cfg.d_in)?,
                false => 1.0,
            });
        }
        let (vars, x) = self.leaves(windows)?;
        let pass = self
            .forward(&vars, &x, n_windows, len)
            .map_err(graph_error)?;
        let stats = self.stats(&pass, &vars, &x).map_err(graph_error)?;
        if !stats.loss.is_finite() {
            return Err(SaeError::Input(format!(
                "step {}: the loss is not finite ({}); a lower lr may help",
                self.step, stats.loss
            )));
        }
        let grads = self.grads(&pass, &vars).map_err(graph_error)?;
        let t = self.step + 1;
        let adam = AdamStep {
            lr: self.cfg.lr,
            beta1: self.cfg.beta1,
            beta2: self.cfg.beta2,
            eps: self.cfg.eps,
            t,
        };
        for (p, g) in self.params.iter_mut().zip(&grads) {
            p.adam.update(&mut p.value, g, adam);
        }
        self.step = t;
        Ok(stats)
    }

    /// The loss of a batch and its gradient for each parameter, without stepping (the
    /// scale: the trainer's, or the one this batch would fix).
    pub fn gradients(&self, windows: &[f32], len: usize) -> Result<TemporalGradients> {
        let n_windows = self.check_windows(windows, len)?;
        let scale = match (self.input_scale, self.cfg.normalize_activations) {
            (Some(s), _) => s,
            (None, true) => unit_scale(windows, self.cfg.d_in)?,
            (None, false) => 1.0,
        };
        let scaled: Vec<f32> = windows.iter().map(|v| v * scale).collect();
        let vars = self.vars()?;
        let x = Tensor::from_slice(&scaled, (scaled.len() / self.cfg.d_in, self.cfg.d_in), &CPU)
            .map_err(graph_error)?;
        let pass = self
            .forward(&vars, &x, n_windows, len)
            .map_err(graph_error)?;
        let loss = pass.loss.to_scalar::<f32>().map_err(graph_error)? as f64;
        let grads = self.grads(&pass, &vars).map_err(graph_error)?;
        Ok(TemporalGradients {
            loss,
            grads: self
                .params
                .iter()
                .map(|p| p.name.clone())
                .zip(grads)
                .collect(),
        })
    }

    /// The SAE as trained, with the input scale as its `scale` (written as
    /// `constant_scalar_rescale`), ready for [`TemporalSae::save`].
    pub fn dictionary(&self) -> TemporalSae {
        let cfg = &self.cfg;
        let (d, f) = (cfg.d_in, cfg.d_sae);
        let value = |name: &str| -> Vec<f32> {
            self.params
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.clone())
                .unwrap_or_default()
        };
        let w_dec = value("W_dec");
        let w_enc = match cfg.tied {
            true => transpose(&w_dec, f, d),
            false => value("W_enc"),
        };
        let layers = (0..cfg.n_attn_layers)
            .map(|i| {
                let t = |p: &str| value(&format!("attn_layers.{i}.{p}"));
                TemporalAttention {
                    k_w: t("k_ctx.weight"),
                    k_b: t("k_ctx.bias"),
                    q_w: t("q_target.weight"),
                    q_b: t("q_target.bias"),
                    v_w: t("v_ctx.weight"),
                    v_b: t("v_ctx.bias"),
                    o_w: t("c_proj.weight"),
                    o_b: t("c_proj.bias"),
                }
            })
            .collect();
        TemporalSae {
            d_in: d,
            d_sae: f,
            n_heads: cfg.n_heads,
            n_embds: cfg.n_embds(),
            w_dec,
            w_enc,
            b_dec: value("b_dec"),
            tied: cfg.tied,
            apply_b_dec_to_input: cfg.apply_b_dec_to_input,
            k: cfg.k,
            scale: self.input_scale(),
            layers,
            metadata: temporal_metadata(),
        }
    }

    /// The number of windows in `windows`, or an error that says what does not fit.
    fn check_windows(&self, windows: &[f32], len: usize) -> Result<usize> {
        let d = self.cfg.d_in;
        if len == 0 {
            return Err(SaeError::Input(
                "len (positions per window) must be positive".into(),
            ));
        }
        if windows.is_empty() || !windows.len().is_multiple_of(len * d) {
            return Err(SaeError::Input(format!(
                "a batch of {} values is not whole windows of len = {len} positions × d_in = {d}",
                windows.len()
            )));
        }
        if let Some(i) = windows.iter().position(|v| !v.is_finite()) {
            return Err(SaeError::Input(format!(
                "the batch holds a non-finite value at position {} (row {}, column {})",
                i,
                i / d,
                i % d
            )));
        }
        Ok(windows.len() / (len * d))
    }

    fn vars(&self) -> Result<Vec<Var>> {
        self.params
            .iter()
            .map(|p| Var::from_slice(&p.value, p.shape.as_slice(), &CPU))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(graph_error)
    }

    /// The parameters as autograd leaves and the batch in training units.
    fn leaves(&self, windows: &[f32]) -> Result<(Vec<Var>, Tensor)> {
        let s = self.input_scale();
        let scaled: Vec<f32> = windows.iter().map(|v| v * s).collect();
        let rows = scaled.len() / self.cfg.d_in;
        let x = Tensor::from_vec(scaled, (rows, self.cfg.d_in), &CPU).map_err(graph_error)?;
        Ok((self.vars()?, x))
    }

    /// SAELens's forward on `n_windows` windows of `len` positions (`x`: `[n_windows · len,
    /// d_in]` in training units) and the loss.
    fn forward(
        &self,
        vars: &[Var],
        x: &Tensor,
        n_windows: usize,
        len: usize,
    ) -> candle_core::Result<Pass> {
        let cfg = &self.cfg;
        let (d, f) = (cfg.d_in, cfg.d_sae);
        let rows = n_windows * len;
        let lam = 1.0 / (4.0 * d as f64);
        let w_dec = vars[0].as_tensor();
        let b_dec = vars[1].as_tensor();
        let (w_enc, first_layer) = match cfg.tied {
            true => (w_dec.t()?, 2),
            false => (vars[2].as_tensor().clone(), 3),
        };
        let mut r = match cfg.apply_b_dec_to_input {
            true => x.broadcast_sub(b_dec)?,
            false => x.clone(),
        };
        let mut z_pred = Tensor::zeros((rows, f), DType::F32, &CPU)?;
        for layer in vars[first_layer..].chunks(8) {
            let z_in = relu(&r.affine(lam, 0.0)?.matmul(&w_enc)?)?;
            let p = relu(&self.attend(layer, &z_in, n_windows, len)?)?;
            let dz = p.matmul(w_dec)?;
            let denom = norm_rows(&dz)?.affine(1.0, 1e-6)?.sqr()?;
            let a = (&dz * &r)?.sum_keepdim(1)?.div(&denom)?;
            z_pred = (z_pred + p.broadcast_mul(&a)?)?;
            r = (r - dz.broadcast_mul(&a)?)?;
        }
        let mut z_novel = relu(&r.affine(lam, 0.0)?.matmul(&w_enc)?)?;
        if let Some(k) = cfg.k {
            z_novel = (&z_novel * top_k_mask(&z_novel, k)?)?;
        }
        let mut reconstruction = (&z_novel + &z_pred)?.matmul(w_dec)?;
        if !cfg.tied || cfg.apply_b_dec_to_input {
            reconstruction = reconstruction.broadcast_add(b_dec)?;
        }
        let mut loss = ((&reconstruction - x)?.sqr()?.sum_all()? / rows as f64)?;
        if cfg.k.is_none() && cfg.novel_norm_coefficient > 0.0 {
            let penalty = norm_rows(&z_novel)?.mean_all()?;
            loss = (loss + (penalty * cfg.novel_norm_coefficient as f64)?)?;
        }
        Ok(Pass {
            loss,
            reconstruction,
            z_novel,
            z_pred,
        })
    }

    /// c_proj(causal multi-head attention) for one layer: queries from `z_in` at t, keys and
    /// values from `z_in` at t − 1 (zeros before the first position), positions ≤ t.
    fn attend(
        &self,
        p: &[Var],
        z_in: &Tensor,
        n_windows: usize,
        len: usize,
    ) -> candle_core::Result<Tensor> {
        let (f, e, h) = (self.cfg.d_sae, self.cfg.n_embds(), self.cfg.n_heads);
        let (b, rows) = (n_windows, n_windows * len);
        let z3 = z_in.reshape((b, len, f))?;
        let ctx = match len {
            1 => z3.zeros_like()?,
            _ => Tensor::cat(
                &[
                    &Tensor::zeros((b, 1, f), DType::F32, &CPU)?,
                    &z3.narrow(1, 0, len - 1)?,
                ],
                1,
            )?,
        }
        .reshape((rows, f))?;
        let linear = |input: &Tensor, w: &Var, bias: &Var| -> candle_core::Result<Tensor> {
            input
                .matmul(&w.as_tensor().t()?)?
                .broadcast_add(bias.as_tensor())
        };
        let heads = |t: Tensor, width: usize| -> candle_core::Result<Tensor> {
            t.reshape((b, len, h, width / h))?
                .transpose(1, 2)?
                .contiguous()
        };
        let k = heads(linear(&ctx, &p[0], &p[1])?, e)?;
        let q = heads(linear(z_in, &p[2], &p[3])?, e)?;
        let v = heads(linear(&ctx, &p[4], &p[5])?, f)?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / ((e / h) as f64).sqrt()))?;
        let scores = scores.broadcast_add(&causal_mask(len)?)?;
        let max = scores.max_keepdim(D::Minus1)?.detach();
        let w = scores.broadcast_sub(&max)?.exp()?;
        let w = w.broadcast_div(&w.sum_keepdim(D::Minus1)?)?;
        let out = w
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((rows, f))?;
        linear(&out, &p[6], &p[7])
    }

    /// Each parameter's gradient (zeros for one the loss does not reach, such as b_dec of a
    /// tied SAE that never applies it).
    fn grads(&self, pass: &Pass, vars: &[Var]) -> candle_core::Result<Vec<Vec<f32>>> {
        let store = pass.loss.backward()?;
        vars.iter()
            .zip(&self.params)
            .map(|(v, p)| match store.get(v.as_tensor()) {
                Some(g) => g.flatten_all()?.to_vec1::<f32>(),
                None => Ok(vec![0.0; p.value.len()]),
            })
            .collect()
    }

    fn stats(
        &self,
        pass: &Pass,
        vars: &[Var],
        x: &Tensor,
    ) -> candle_core::Result<ContextStepStats> {
        let d = self.cfg.d_in;
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let recon = pass.reconstruction.flatten_all()?.to_vec1::<f32>()?;
        let rows = xv.len() / d;
        let sse: f64 = xv
            .iter()
            .zip(&recon)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum();
        let mut mean = vec![0.0f64; d];
        for row in xv.chunks(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += *v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let variance: f64 = xv
            .chunks(d)
            .map(|row| {
                row.iter()
                    .zip(&mean)
                    .map(|(v, m)| (*v as f64 - m).powi(2))
                    .sum::<f64>()
            })
            .sum();
        let z_novel = pass.z_novel.flatten_all()?.to_vec1::<f32>()?;
        let l0 = z_novel.iter().filter(|v| **v != 0.0).count() as f64 / rows as f64;
        let w_dec = vars[0].as_detached_tensor();
        let energy = |z: &Tensor| -> candle_core::Result<f64> {
            Ok(z.detach()
                .matmul(&w_dec)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f32>()? as f64)
        };
        let (pred, novel) = (energy(&pass.z_pred)?, energy(&pass.z_novel)?);
        Ok(ContextStepStats {
            step: self.step,
            lr: self.cfg.lr,
            loss: pass.loss.to_scalar::<f32>()? as f64,
            mse: sse / xv.len() as f64,
            fvu: sse / variance.max(f64::MIN_POSITIVE),
            l0,
            context_share: if pred + novel > 0.0 {
                pred / (pred + novel)
            } else {
                0.0
            },
        })
    }
}

/// max(x, 0) with PyTorch's derivative at 0 (0; candle's own ReLU passes the gradient there).
fn relu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? * x.gt(0f32)?.to_dtype(DType::F32)?
}

/// Each row's L2 norm `[rows, 1]`, with gradient 0 at a zero row (as PyTorch's `norm`)
/// where √ would give 0·∞.
fn norm_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let sq = x.sqr()?.sum_keepdim(1)?;
    let zero = sq.eq(0f32)?.to_dtype(DType::F32)?;
    (sq + &zero)?.sqrt()? * zero.affine(-1.0, 1.0)?
}

/// `[len, len]`: 0 where position t may look at s ≤ t, −∞ after it.
fn causal_mask(len: usize) -> candle_core::Result<Tensor> {
    let mask: Vec<f32> = (0..len * len)
        .map(|i| match i % len <= i / len {
            true => 0.0,
            false => f32::NEG_INFINITY,
        })
        .collect();
    Tensor::from_vec(mask, (len, len), &CPU)
}

/// 1 at each row's k largest values, 0 elsewhere: a constant, so the gradient reaches only
/// the values kept (ties: the lower index, as [`TemporalSae::forward`]).
fn top_k_mask(z: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    let (rows, f) = z.dims2()?;
    let values = z.flatten_all()?.to_vec1::<f32>()?;
    let mut mask = vec![0.0f32; rows * f];
    let mut order: Vec<usize> = Vec::with_capacity(f);
    for (row, out) in values.chunks(f).zip(mask.chunks_mut(f)) {
        order.clear();
        order.extend(0..f);
        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &j in &order[..k] {
            out[j] = 1.0;
        }
    }
    Tensor::from_vec(mask, (rows, f), &CPU)
}

/// The factor that makes the batch's mean squared norm d_in.
fn unit_scale(x: &[f32], d: usize) -> Result<f32> {
    let rows = x.len() / d;
    let mean_sq = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / rows as f64;
    if mean_sq <= 0.0 {
        return Err(SaeError::Input(
            "the first batch is all zeros: there is no scale to normalise by".into(),
        ));
    }
    Ok((d as f64 / mean_sq).sqrt() as f32)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TemporalScalars {
    config: TemporalConfig,
    step: u64,
    input_scale: Option<f32>,
}
