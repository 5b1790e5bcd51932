//! Everything a training run needs to be reproduced, with the checks that turn an
//! impossible value into an error naming its field.

use serde::{Deserialize, Serialize};

pub use super::arch::{L1Variant, TrainArchitecture};
use crate::dictionary::Metadata;
use crate::error::{Result, SaeError};

/// Most latents a dictionary may have (2^28), and most values in one of its weight matrices
/// (2^32, 16 GiB of f32; training holds several such matrices): checked before anything is
/// sized from a width given in a flag or a file.
pub const MAX_LATENTS: usize = 1 << 28;
pub const MAX_MATRIX: usize = 1 << 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BDecInit {
    Zeros,
    /// Mean of the first batch.
    Mean,
    /// Geometric median of the first batch (Weiszfeld iterations).
    GeometricMedian,
}

/// How parameters are updated from their gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    /// Adam with bias correction, under the lr schedule (warm-up, decay).
    #[default]
    Adam,
    /// Sign descent with schedule-free averaging (`signum.rs`); the averaged weights are
    /// the ones evaluated and saved.
    Signum,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub architecture: TrainArchitecture,
    pub d_in: usize,
    pub d_sae: usize,
    pub seed: u64,
    /// Planned number of steps: the lr decay ends here.
    pub total_steps: u64,
    /// Absent from configs written before there was a choice: those trained with Adam.
    #[serde(default)]
    pub optimizer: Optimizer,
    pub lr: f32,
    pub adam_beta1: f32,
    pub adam_beta2: f32,
    pub adam_eps: f32,
    /// Schedule-free sign descent's β: gradients are taken at β·average + (1 − β)·iterate.
    #[serde(default = "default_signum_momentum")]
    pub signum_momentum: f32,
    /// Linear lr warm-up from lr/warmup to lr over these first steps.
    pub lr_warmup_steps: u64,
    /// Linear lr decay to 0 over these last steps of `total_steps` (0: none).
    pub lr_decay_steps: u64,
    /// L1 coefficient (ReLU-L1 and Gated), reached linearly over `l1_warmup_steps`.
    pub l1_coefficient: f32,
    /// Steps of the linear warm-up of the sparsity penalty (L1, or JumpReLU's L0).
    pub l1_warmup_steps: u64,
    /// Steps of the linear warm-up of the auxiliary losses: AuxK, ghost grads, Gated's
    /// auxiliary reconstruction (default 0: none).
    #[serde(default)]
    pub aux_warmup_steps: u64,
    /// Steer the sparsity coefficient (L1, or JumpReLU's L0) during training so that the
    /// batches' L0 approaches this; the configured coefficient is the starting point
    /// (`target_l0.rs`). Penalised trainers only.
    #[serde(default)]
    pub target_l0: Option<f64>,
    /// JumpReLU's L0 coefficient: the loss adds `l0_coefficient · E[L0]`.
    #[serde(default = "default_l0_coefficient")]
    pub l0_coefficient: f32,
    /// Width of the rectangle kernel in JumpReLU's threshold gradient.
    #[serde(default = "default_jumprelu_bandwidth")]
    pub jumprelu_bandwidth: f32,
    /// JumpReLU's threshold for every latent at the start.
    #[serde(default = "default_jumprelu_init_threshold")]
    pub jumprelu_init_threshold: f32,
    /// Ghost grads (ReLU-L1 only): dead latents learn to reconstruct the residual through
    /// `exp(pre)`, at the scale of the main loss (Anthropic, January 2024).
    #[serde(default)]
    pub ghost_grads: bool,
    /// TopK's firing floor: a latent that fired on fewer than round(min_density·B) (at
    /// least 1) of a batch's B tokens has its encoder bias raised by the least amount that
    /// would have made it fire that often on the batch (`floor.rs`). Default 0: off. Runs
    /// saved before the floor existed read as 0 and resume as they were.
    #[serde(default)]
    pub min_density: f64,
    /// Latents used by AuxK per token (default d_in / 2); 0 turns AuxK off.
    pub aux_k: Option<usize>,
    pub aux_coefficient: f32,
    /// A latent that has not fired for this many tokens counts as dead.
    pub dead_after_tokens: u64,
    /// Weight of the newest batch in BatchTopK's running threshold (default: 0.01, as the
    /// peers use, or 10 / steps on runs shorter than 1,000 steps).
    pub batchtopk_threshold_lr: f64,
    /// Train a transcoder: the encoder reads one activation and the decoder predicts another
    /// of the same width (`Trainer::step_transcoder`); `b_dec` is an output bias.
    #[serde(default, skip_serializing_if = "is_false")]
    pub transcoder: bool,
    /// A transcoder's linear skip connection `ŷ += x W_skipᵀ`, learned from zeros.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_connection: bool,
    /// Matryoshka's nested prefix widths, strictly increasing and ending at `d_sae`: the
    /// loss adds the reconstruction error of the first `w` latents for every `w` here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matryoshka_widths: Vec<usize>,
    /// Scale inputs so that E‖x‖² = d_in (measured on the first batch).
    pub normalize_activations: bool,
    pub b_dec_init: BDecInit,
    /// Norm of the initial decoder rows (April variant only: the others keep unit rows).
    pub decoder_init_norm: f32,
    /// The encoder starts as the decoder's transpose times this. `None`: 1, except for
    /// standard ReLU-L1, JumpReLU and Gated, where about half of all latents fire at first and
    /// min(1, 2·d_in/d_sae) keeps the first reconstructions at the inputs' scale (with 1,
    /// they start d_sae/(2·d_in) times too large and the first steps kill most latents);
    /// April with a `target_l0` gets unit encoder rows.
    pub encoder_init_scale: Option<f32>,
    /// Steps per window of the firing frequencies saved as `sparsity.safetensors`.
    pub sparsity_window_steps: u64,
    /// Every this many steps, re-initialise latents dead for `dead_after_tokens` from badly
    /// reconstructed inputs (Anthropic's resampling); 0: never.
    #[serde(default)]
    pub resample_every_steps: u64,
    /// The share of latents (picked by seed) kept out of resampling, so that their dying can
    /// be watched undisturbed next to the others (`Trainer::control_latents`).
    #[serde(default)]
    pub control_fraction: f64,
    /// Keep the control latents out of AuxK and ghost grads too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub control_aux: bool,
    pub metadata: Metadata,
}

/// Runs at least this long get Gao et al.'s lr for TopK, 2e-4·(2^14/d_sae)^½; shorter ones
/// a larger lr, by (LONG_RUN_STEPS/steps)^½ (`arch/topk.rs`).
pub const LONG_RUN_STEPS: u64 = 7_500;

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_signum_momentum() -> f32 {
    0.95
}

fn default_l0_coefficient() -> f32 {
    1.0
}

fn default_jumprelu_bandwidth() -> f32 {
    0.05
}

fn default_jumprelu_init_threshold() -> f32 {
    0.01
}

impl TrainConfig {
    /// Defaults: Adam (0.9, 0.999, 1e-8) at each architecture's `default_lr` (TopK's rises
    /// for short runs, BatchTopK's and Matryoshka's stay at Gao et al.'s, the penalised ones
    /// have 1e-3), lr decay over the last 20%, AuxK 1/32 with k_aux = d_in/2, dead after 10M
    /// tokens, inputs scaled to E‖x‖² = d_in as `saelab train` does; then the architecture's
    /// own defaults (`Architecture::configure`).
    pub fn new(
        architecture: TrainArchitecture,
        d_in: usize,
        d_sae: usize,
        total_steps: u64,
    ) -> Self {
        let rule = architecture.rule();
        // Trainers whose sparsity comes from a penalty: about half of all latents fire at
        // first, and they start with warm-ups of the lr and of the penalty.
        let penalised = rule.k().is_none();
        let lr = rule.default_lr(d_sae, total_steps);
        let mut cfg = TrainConfig {
            architecture,
            d_in,
            d_sae,
            seed: 0,
            total_steps,
            optimizer: Optimizer::Adam,
            lr,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_eps: 1e-8,
            signum_momentum: default_signum_momentum(),
            lr_warmup_steps: if penalised {
                1000.min(total_steps / 10)
            } else {
                0
            },
            lr_decay_steps: total_steps / 5,
            l1_coefficient: 5.0,
            l1_warmup_steps: total_steps / 20,
            aux_warmup_steps: 0,
            target_l0: None,
            l0_coefficient: default_l0_coefficient(),
            jumprelu_bandwidth: default_jumprelu_bandwidth(),
            jumprelu_init_threshold: default_jumprelu_init_threshold(),
            ghost_grads: false,
            min_density: 0.0,
            aux_k: None,
            aux_coefficient: 1.0 / 32.0,
            dead_after_tokens: 10_000_000,
            batchtopk_threshold_lr: batchtopk_threshold_lr(total_steps),
            transcoder: false,
            skip_connection: false,
            matryoshka_widths: Vec::new(),
            normalize_activations: true,
            b_dec_init: BDecInit::GeometricMedian,
            decoder_init_norm: 1.0,
            encoder_init_scale: None,
            sparsity_window_steps: 2000,
            resample_every_steps: 0,
            control_fraction: 0.0,
            control_aux: false,
            metadata: Metadata::default(),
        };
        rule.configure(&mut cfg);
        cfg
    }

    /// Switches to `optimizer` with its default lr and schedule: schedule-free sign descent
    /// at 5e-3·(2^14/d_sae)^½ (the width scaling of Gao et al.) with no warm-up or decay, which
    /// its averaging replaces; Adam as `new` sets it.
    pub fn use_optimizer(&mut self, optimizer: Optimizer) {
        let fresh = TrainConfig::new(self.architecture, self.d_in, self.d_sae, self.total_steps);
        self.optimizer = optimizer;
        match optimizer {
            Optimizer::Adam => {
                self.lr = fresh.lr;
                self.lr_warmup_steps = fresh.lr_warmup_steps;
                self.lr_decay_steps = fresh.lr_decay_steps;
            }
            Optimizer::Signum => {
                self.lr = 5e-3 / ((self.d_sae.max(1) as f32) / 16384.0).sqrt();
                self.lr_warmup_steps = 0;
                self.lr_decay_steps = 0;
            }
        }
    }

    /// Latents kept per token by the TopK family; `None` for the penalised trainers.
    pub fn k(&self) -> Option<usize> {
        self.architecture.rule().k()
    }

    /// Whether sparsity comes from a penalty (ReLU-L1, JumpReLU, Gated) rather than a
    /// fixed count of latents per token (TopK, BatchTopK).
    pub fn penalised(&self) -> bool {
        self.k().is_none()
    }

    /// The sparsity coefficient asked for (L1, or JumpReLU's L0), before its warm-up.
    pub fn sparsity_coefficient(&self) -> f32 {
        self.architecture.rule().sparsity_coefficient(self)
    }

    pub fn aux_k(&self) -> usize {
        match self.k() {
            Some(_) => self.aux_k.unwrap_or(self.d_in / 2),
            None => 0,
        }
    }

    /// Decoder rows kept at unit norm (all but the April variant, whose L1 reads the norms).
    pub fn unit_norm_decoder(&self) -> bool {
        self.architecture.rule().unit_norm_decoder()
    }

    pub fn encoder_init_scale(&self) -> f32 {
        match self.encoder_init_scale {
            Some(s) => s,
            // Every penalised trainer but April, whose small decoder rows do the same job.
            None if self.penalised() && self.unit_norm_decoder() => {
                (2.0 * self.d_in as f32 / self.d_sae.max(1) as f32).min(1.0)
            }
            // April starting at its target L0 (`Trainer::start_at_target`): encoder rows of
            // norm 0.1 give pre-activations so small that Adam's first steps, about the lr
            // per weight, rescale them many times over and L0 swings far from the target.
            // Unit rows measured best (held-out fvu 0.24 and 0.3% silent latents, against
            // 0.31 and 2.1% with rows of norm 2·d_in/d_sae and 0.36 and 9.6% with 0.1).
            None if self.target_l0.is_some() => 1.0 / self.decoder_init_norm,
            None => 1.0,
        }
    }

    /// `b_dec` is subtracted from the input before encoding (a sparse autoencoder), or is
    /// an output bias only (a transcoder).
    pub fn apply_b_dec_to_input(&self) -> bool {
        !self.transcoder
    }

    fn validate_transcoder(&self) -> Result<()> {
        if self.skip_connection && !self.transcoder {
            return Err(SaeError::config(
                "skip_connection",
                "applies to transcoders only",
            ));
        }
        if !self.transcoder {
            return Ok(());
        }
        if self.ghost_grads {
            return Err(SaeError::config(
                "ghost_grads",
                "are not supported for transcoders",
            ));
        }
        if self.resample_every_steps > 0 {
            return Err(SaeError::config(
                "resample_every_steps",
                "is not supported for transcoders",
            ));
        }
        Ok(())
    }

    /// Nested prefix widths belong to Matryoshka, which checks them (`arch/matryoshka.rs`).
    fn validate_matryoshka_widths(&self) -> Result<()> {
        let matryoshka = matches!(
            self.architecture,
            TrainArchitecture::MatryoshkaBatchTopK { .. }
        );
        if !matryoshka && !self.matryoshka_widths.is_empty() {
            return Err(SaeError::config(
                "matryoshka_widths",
                "apply to Matryoshka BatchTopK dictionaries only",
            ));
        }
        Ok(())
    }

    /// The firing floor acts on TopK's per-token selection (`floor.rs`).
    fn validate_min_density(&self) -> Result<()> {
        let m = self.min_density;
        if !(m.is_finite() && (0.0..=1.0).contains(&m)) {
            return Err(SaeError::config(
                "min_density",
                format!("= {m} must be in [0, 1]"),
            ));
        }
        let topk = matches!(self.architecture, TrainArchitecture::TopK { .. });
        if m > 0.0 && !topk {
            return Err(SaeError::config(
                "min_density",
                "applies to TopK dictionaries only",
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.control_fraction) {
            return Err(SaeError::config(
                "control_fraction",
                format!(
                    "= {}: the share of control latents must be at least 0 and below 1",
                    self.control_fraction
                ),
            ));
        }
        if self.d_in == 0 {
            return Err(SaeError::config(
                "d_in",
                "= 0: activations need at least one dimension",
            ));
        }
        if self.d_sae == 0 {
            return Err(SaeError::config(
                "d_sae",
                "= 0: a dictionary needs at least one latent",
            ));
        }
        if self.d_sae > MAX_LATENTS {
            return Err(SaeError::config(
                "d_sae",
                format!(
                    "= {} is larger than saelab's bound {MAX_LATENTS}",
                    self.d_sae
                ),
            ));
        }
        if self
            .d_in
            .checked_mul(self.d_sae)
            .is_none_or(|n| n > MAX_MATRIX)
        {
            return Err(SaeError::config(
                "d_sae",
                format!(
                    "d_in × d_sae = {} × {} is more than saelab's bound of {MAX_MATRIX} values \
                     per weight matrix",
                    self.d_in, self.d_sae
                ),
            ));
        }
        if let Some(k) = self.k() {
            if k == 0 {
                return Err(SaeError::config("k", "= 0: at least one latent must fire"));
            }
            if k > self.d_sae {
                return Err(SaeError::config(
                    "k",
                    format!("= {k} is larger than d_sae = {}", self.d_sae),
                ));
            }
        }
        if self.total_steps == 0 {
            return Err(SaeError::config(
                "total_steps",
                "= 0: nothing would be trained",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(SaeError::config(
                "lr",
                format!("= {} must be a positive number", self.lr),
            ));
        }
        for (field, b) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(SaeError::config(field, format!("= {b} must be in [0, 1)")));
            }
        }
        if !(self.signum_momentum > 0.0 && self.signum_momentum < 1.0) {
            return Err(SaeError::config(
                "signum_momentum",
                format!("= {} must be in (0, 1)", self.signum_momentum),
            ));
        }
        if !(self.adam_eps.is_finite() && self.adam_eps > 0.0) {
            return Err(SaeError::config(
                "adam_eps",
                format!("= {} must be positive", self.adam_eps),
            ));
        }
        if self.lr_warmup_steps + self.lr_decay_steps > self.total_steps {
            return Err(SaeError::config(
                "lr_decay_steps",
                format!(
                    "= {} plus lr_warmup_steps = {} exceeds total_steps = {}",
                    self.lr_decay_steps, self.lr_warmup_steps, self.total_steps
                ),
            ));
        }
        if !(self.l1_coefficient.is_finite() && self.l1_coefficient >= 0.0) {
            return Err(SaeError::config(
                "l1_coefficient",
                format!("= {} must be ≥ 0", self.l1_coefficient),
            ));
        }
        if !(self.l0_coefficient.is_finite() && self.l0_coefficient >= 0.0) {
            return Err(SaeError::config(
                "l0_coefficient",
                format!("= {} must be ≥ 0", self.l0_coefficient),
            ));
        }
        if let Some(t) = self.target_l0 {
            if !self.penalised() {
                return Err(SaeError::config(
                    "target_l0",
                    "applies to penalised trainers only (TopK and BatchTopK fix L0 by k)",
                ));
            }
            if !(t.is_finite() && t > 0.0 && t <= self.d_sae as f64) {
                return Err(SaeError::config(
                    "target_l0",
                    format!("= {t} must be in (0, d_sae = {}]", self.d_sae),
                ));
            }
            if self.sparsity_coefficient() <= 0.0 {
                return Err(SaeError::config(
                    "target_l0",
                    "needs a positive starting coefficient (l1_coefficient or l0_coefficient)",
                ));
            }
        }
        for (field, v) in [
            ("jumprelu_bandwidth", self.jumprelu_bandwidth),
            ("jumprelu_init_threshold", self.jumprelu_init_threshold),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SaeError::config(field, format!("= {v} must be positive")));
            }
        }
        if self.ghost_grads && !self.architecture.rule().ghost_grads() {
            return Err(SaeError::config(
                "ghost_grads",
                "apply to ReLU-L1 dictionaries only (TopK and BatchTopK have AuxK)",
            ));
        }
        if !(self.aux_coefficient.is_finite() && self.aux_coefficient >= 0.0) {
            return Err(SaeError::config(
                "aux_coefficient",
                format!("= {} must be ≥ 0", self.aux_coefficient),
            ));
        }
        self.validate_min_density()?;
        if let Some(a) = self.aux_k {
            if a > self.d_sae {
                return Err(SaeError::config(
                    "aux_k",
                    format!("= {a} is larger than d_sae = {}", self.d_sae),
                ));
            }
        }
        if !(self.batchtopk_threshold_lr > 0.0 && self.batchtopk_threshold_lr <= 1.0) {
            return Err(SaeError::config(
                "batchtopk_threshold_lr",
                format!("= {} must be in (0, 1]", self.batchtopk_threshold_lr),
            ));
        }
        self.validate_matryoshka_widths()?;
        self.validate_transcoder()?;
        self.architecture.rule().validate(self)?;
        if !(self.decoder_init_norm.is_finite() && self.decoder_init_norm > 0.0) {
            return Err(SaeError::config(
                "decoder_init_norm",
                format!("= {} must be positive", self.decoder_init_norm),
            ));
        }
        if let Some(s) = self.encoder_init_scale {
            if !(s.is_finite() && s > 0.0) {
                return Err(SaeError::config(
                    "encoder_init_scale",
                    format!("= {s} must be positive"),
                ));
            }
        }
        if self.sparsity_window_steps == 0 {
            return Err(SaeError::config(
                "sparsity_window_steps",
                "= 0 must be at least 1",
            ));
        }
        Ok(())
    }
}

/// BatchTopK's running threshold averages the batches' cuts, which drift while the weights
/// learn: on a run of 94 steps the peers' weight of 0.01 still gives the first batch's cut 39%
/// of the average, and the trained dictionary fires on 200 latents per token instead of 32
/// (BENCHMARKS.md). Ten steps' memory on short runs follows the cut; long runs keep 0.01.
fn batchtopk_threshold_lr(total_steps: u64) -> f64 {
    (10.0 / total_steps.max(1) as f64).clamp(0.01, 1.0)
}
